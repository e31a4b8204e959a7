//! The sandbox's only way out: outbound HTTP to the configured TAP origin.
//!
//! `OutboundHttp` is the capability. wasi-http hands every guest request to
//! its `send_request` hook, which refuses any other origin, sends the rest
//! with the host's own `reqwest::Client` (the operator's proxy and TLS
//! choices, no redirects), adds the TAP credentials the guest never sees,
//! and bounds time and response size.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as WasiHttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::RuntimeError;

/// Where the component may send HTTP, and how.
#[derive(Clone)]
pub struct OutboundPolicy {
    /// The TAP API origin. Requests must match its scheme, host and port
    /// exactly; any path below it is allowed.
    pub tap_base_url: url::Url,
    /// The TAP service principal, sent as the Basic auth user.
    pub principal: String,
    /// The TAP secret, sent as the Basic auth password. It stays in the host.
    pub secret: String,
    /// The host's HTTP client. Build it with `redirect::Policy::none()`: a
    /// redirect is the guest's business to see, not the client's to follow.
    pub http: reqwest::Client,
    /// Bound on one request, from connecting to the last body byte.
    pub request_timeout: Duration,
    /// Bound on one (decompressed) response body.
    pub max_response_bytes: usize,
}

impl OutboundPolicy {
    /// Default bound on one request.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default bound on one response body: 256 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
}

impl fmt::Debug for OutboundPolicy {
    // Hand-written so the secret cannot end up in a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("tap_base_url", &self.tap_base_url.as_str())
            .field("principal", &self.principal)
            .field("secret", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// The one origin (scheme, host, port) the guest may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl AllowedOrigin {
    pub(crate) fn from_base_url(url: &url::Url) -> Result<Self, RuntimeError> {
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(RuntimeError::Policy(format!(
                "the TAP base URL {url} must start with https:// (or http:// for a local test server)"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RuntimeError::Policy(format!(
                "the TAP base URL must not carry credentials; set the principal and secret instead (got {}://…@{})",
                url.scheme(),
                url.host_str().unwrap_or("")
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| RuntimeError::Policy(format!("the TAP base URL {url} has no host")))?
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| RuntimeError::Policy(format!("the TAP base URL {url} has no port")))?;
        Ok(AllowedOrigin { scheme, host, port })
    }

    /// Whether `uri` points at this origin. Userinfo in the authority is
    /// refused outright: it has no business in a TAP request and would let
    /// the client send credentials of the guest's choosing.
    fn admits(&self, uri: &http::Uri) -> bool {
        let Some(scheme) = uri.scheme_str() else {
            return false;
        };
        let Some(authority) = uri.authority() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        scheme == self.scheme
            && authority.host().eq_ignore_ascii_case(&self.host)
            && authority.port_u16().unwrap_or(default_port) == self.port
    }
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The capability installed as the wasi-http hooks of one store.
pub(crate) struct OutboundHttp {
    exchange: Arc<Exchange>,
}

/// Everything one request needs, shared with the spawned request futures.
struct Exchange {
    origin: AllowedOrigin,
    authorization: HeaderValue,
    http: reqwest::Client,
    request_timeout: Duration,
    max_response_bytes: u64,
}

impl OutboundHttp {
    pub(crate) fn new(policy: &OutboundPolicy) -> Result<Self, RuntimeError> {
        let origin = AllowedOrigin::from_base_url(&policy.tap_base_url)?;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", policy.principal, policy.secret));
        let mut authorization =
            HeaderValue::from_str(&format!("Basic {credentials}")).map_err(|_| {
                RuntimeError::Policy("the TAP credentials cannot form an HTTP header".into())
            })?;
        authorization.set_sensitive(true);
        Ok(OutboundHttp {
            exchange: Arc::new(Exchange {
                origin,
                authorization,
                http: policy.http.clone(),
                request_timeout: policy.request_timeout,
                max_response_bytes: u64::try_from(policy.max_response_bytes).unwrap_or(u64::MAX),
            }),
        })
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
                ),
                WasiHttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send>,
    ) -> ResponseFuture {
        // The guest's own timeouts are ignored: the host's request timeout
        // is the policy, and a guest cannot extend it.
        let exchange = Arc::clone(&self.exchange);
        Box::new(async move {
            let response = exchange.send(request).await?;
            // reqwest drives the connection itself; nothing is left to await.
            let connection_done: Box<dyn Future<Output = Result<(), WasiHttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, connection_done))
        })
    }

    /// reqwest sets `Host` from the URL; a second one from wasi-http would
    /// only be a chance to disagree.
    fn set_host_header(&mut self) -> bool {
        false
    }
}

impl Exchange {
    async fn send(
        &self,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, WasiHttpError> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();

        if !self.origin.admits(&parts.uri) {
            tracing::warn!(
                refused = %refused_authority(&parts.uri),
                allowed = %self.origin,
                "refused an outbound request from the TAP component: it may only reach the TAP API"
            );
            return Err(WasiHttpError::HttpRequestDenied);
        }

        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|_| WasiHttpError::HttpRequestUriInvalid)?;
        // TAP requests are GETs; a body, if any, is small and bounded by the
        // guest's own memory limit, so collecting it is fine.
        let body = body.collect().await?.to_bytes();

        let mut headers = parts.headers;
        headers.remove(HOST);
        // Whatever the guest put here is replaced: only the host's
        // credentials go to TAP.
        headers.insert(AUTHORIZATION, self.authorization.clone());

        let mut builder = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers)
            .timeout(self.request_timeout);
        if !body.is_empty() {
            builder = builder.body(body);
        }

        let response = match builder.send().await {
            Ok(response) => response,
            Err(err) => {
                let code = transport_error(&err);
                tracing::debug!(
                    %method, %path, error = %error_chain(&err),
                    duration_ms = elapsed_ms(started),
                    "TAP request failed"
                );
                return Err(code);
            }
        };

        if response.url() != &url {
            tracing::error!(
                %method, %path, landed_on = %response.url().origin().ascii_serialization(),
                "the host HTTP client followed a redirect; refusing the response (build the client with redirect::Policy::none())"
            );
            return Err(WasiHttpError::HttpRequestDenied);
        }

        let status = response.status();
        if let Some(declared) = response.content_length()
            && declared > self.max_response_bytes
        {
            tracing::debug!(
                %method, %path, status = status.as_u16(), bytes = declared,
                limit = self.max_response_bytes, "TAP response refused: larger than the limit"
            );
            return Err(WasiHttpError::HttpResponseBodySize(Some(declared)));
        }

        let mut builder = http::Response::builder()
            .status(status)
            .version(response.version());
        if let Some(target) = builder.headers_mut() {
            *target = response.headers().clone();
        }
        let body = MeteredBody {
            inner: reqwest::Body::from(response),
            received: 0,
            limit: self.max_response_bytes,
            record: Some(ExchangeRecord {
                method,
                path,
                status,
                started,
            }),
        };
        builder
            .body(body.boxed_unsync())
            .map_err(|err| WasiHttpError::InternalError(Some(err.to_string())))
    }
}

/// What is logged about one request once its body is done. Never headers.
struct ExchangeRecord {
    method: Method,
    path: String,
    status: StatusCode,
    started: Instant,
}

impl ExchangeRecord {
    fn log(&self, bytes: u64, outcome: &str) {
        tracing::debug!(
            method = %self.method,
            path = %self.path,
            status = self.status.as_u16(),
            bytes,
            duration_ms = elapsed_ms(self.started),
            outcome,
            "TAP request"
        );
    }
}

/// A response body that counts what it passes on, refuses to pass more than
/// the limit (counted after decompression), and logs the exchange once.
struct MeteredBody {
    inner: reqwest::Body,
    received: u64,
    limit: u64,
    record: Option<ExchangeRecord>,
}

impl MeteredBody {
    fn finish(&mut self, outcome: &str) {
        if let Some(record) = self.record.take() {
            record.log(self.received, outcome);
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = WasiHttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiHttpError>>> {
        if self.record.is_none() {
            // Finished, failed or refused already: nothing more is passed on.
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.received = self.received.saturating_add(data.len() as u64);
                    if self.received > self.limit {
                        let limit = self.limit;
                        self.finish("refused: larger than the response size limit");
                        return Poll::Ready(Some(Err(WasiHttpError::HttpResponseBodySize(Some(
                            limit,
                        )))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                let code = transport_error(&err);
                self.finish(&format!("failed: {}", error_chain(&err)));
                Poll::Ready(Some(Err(code)))
            }
            None => {
                self.finish("complete");
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.record.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        self.finish("abandoned before the end of the body");
    }
}

/// The WASI error code for a failed reqwest exchange. Unclassified failures
/// (TLS, DNS, proxy) carry their full text, so the component can report
/// what actually went wrong.
fn transport_error(err: &reqwest::Error) -> WasiHttpError {
    if err.is_timeout() {
        return if err.is_connect() {
            WasiHttpError::ConnectionTimeout
        } else {
            WasiHttpError::ConnectionReadTimeout
        };
    }
    if let Some(io) = io_error_in(err) {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return WasiHttpError::ConnectionRefused,
            std::io::ErrorKind::TimedOut => return WasiHttpError::ConnectionTimeout,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                return WasiHttpError::ConnectionTerminated;
            }
            _ => {}
        }
    }
    if err.is_decode() {
        return WasiHttpError::HttpResponseContentCoding(Some(error_chain(err)));
    }
    if err.is_body() {
        return WasiHttpError::HttpResponseIncomplete;
    }
    WasiHttpError::InternalError(Some(error_chain(err)))
}

fn io_error_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut current = Some(err);
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = cause.source();
    }
    None
}

/// "outer: cause: root cause", without repeating identical layers.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(cause) = current {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        current = cause.source();
    }
    text
}

fn refused_authority(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("?"),
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    )
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(base: &str) -> AllowedOrigin {
        AllowedOrigin::from_base_url(&url::Url::parse(base).expect("test URL parses"))
            .expect("test URL is a valid origin")
    }

    fn uri(text: &str) -> http::Uri {
        text.parse().expect("test URI parses")
    }

    #[test]
    fn only_the_configured_scheme_host_and_port_are_admitted() {
        let tap = origin("https://tap-api-v2.proofpoint.com");
        assert!(tap.admits(&uri(
            "https://tap-api-v2.proofpoint.com/v2/siem/all?format=json"
        )));
        assert!(tap.admits(&uri("https://TAP-API-V2.proofpoint.com:443/v2/siem/all")));
        assert!(!tap.admits(&uri("http://tap-api-v2.proofpoint.com/v2/siem/all")));
        assert!(!tap.admits(&uri("https://tap-api-v2.proofpoint.com:8443/v2/siem/all")));
        assert!(!tap.admits(&uri("https://tap-api-v2.proofpoint.com.evil.example/")));
        assert!(!tap.admits(&uri("https://example.com/")));
    }

    #[test]
    fn an_explicit_port_must_match_exactly() {
        let local = origin("http://127.0.0.1:8080");
        assert!(local.admits(&uri("http://127.0.0.1:8080/v2/siem/all")));
        assert!(!local.admits(&uri("http://127.0.0.1/v2/siem/all")));
        assert!(!local.admits(&uri("http://127.0.0.1:8081/v2/siem/all")));
        assert!(!local.admits(&uri("http://localhost:8080/v2/siem/all")));
    }

    #[test]
    fn userinfo_in_a_request_authority_is_refused() {
        let local = origin("http://127.0.0.1:8080");
        assert!(!local.admits(&uri("http://user:pw@127.0.0.1:8080/")));
    }

    #[test]
    fn a_base_url_with_credentials_or_a_strange_scheme_is_rejected() {
        for bad in ["ftp://tap.example", "https://user:pw@tap.example"] {
            let url = url::Url::parse(bad).expect("test URL parses");
            assert!(AllowedOrigin::from_base_url(&url).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_policy_debug_output_hides_the_secret() {
        let policy = OutboundPolicy {
            tap_base_url: url::Url::parse("https://tap.example").expect("test URL parses"),
            principal: "principal".into(),
            secret: "s3cr3t-value".into(),
            http: reqwest::Client::new(),
            request_timeout: OutboundPolicy::DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: OutboundPolicy::DEFAULT_MAX_RESPONSE_BYTES,
        };
        assert!(!format!("{policy:?}").contains("s3cr3t-value"));
    }
}
