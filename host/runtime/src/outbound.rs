//! The sandbox's only way out: outbound HTTP to the configured TAP origin.
//!
//! `OutboundHttp` is the capability. wasi-http hands every guest request to
//! its `send_request` hook, which refuses any other origin (`TapOrigin`,
//! an exact comparison), refuses a request body over the cap without
//! buffering it, sends the rest with the host's own `reqwest::Client` (the
//! operator's proxy and TLS choices, no redirects), adds the TAP credentials
//! the guest never sees, bounds time and response size, and counts per TAP
//! pool what it actually sent, in a counter that outlives the call.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::{HeaderValue, Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use secrecy::{ExposeSecret, SecretString};
use wasmtime_wasi_http::{Error as WasiHttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::{RuntimeError, TapOrigin};

/// Where the component may send HTTP, and how.
#[derive(Clone)]
pub struct OutboundPolicy {
    /// The TAP API origin. Requests must name its scheme, host and port
    /// exactly ([`TapOrigin::admits`]); any path below it is allowed.
    pub origin: TapOrigin,
    /// The TAP service principal, sent as the Basic auth user.
    pub principal: String,
    /// The TAP secret, sent as the Basic auth password. It stays in the host;
    /// its Debug prints a placeholder.
    pub secret: SecretString,
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
    // Hand-written to leave out the HTTP client; the secret's own Debug is
    // a placeholder.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("origin", &self.origin)
            .field("principal", &self.principal)
            .field("secret", &self.secret)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// The requests one call made, as the host counted them: per TAP pool, the
/// requests the hook actually dispatched to TAP, and the requests it
/// refused (another origin, a body over the cap), which never left the
/// host. Counted as they happen, so the figures stand whatever ended the
/// call (an answer, a TAP error, a trap, a limit, the wall clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `/v2/siem/...`.
    pub siem: u32,
    /// `/v2/campaign/<id>`.
    pub campaign: u32,
    /// `/v2/forensics?campaignId=...`.
    pub campaign_forensics: u32,
    /// `/v2/forensics?threatId=...`.
    pub threat_forensics: u32,
    /// `/v2/threat/summary/<id>`.
    pub threat_summary: u32,
    /// `/v2/people/vap`.
    pub people_vap: u32,
    /// `/v2/people/top-clickers`.
    pub people_top_clickers: u32,
    /// Any other path on the TAP origin (counted in no pool).
    pub other: u32,
    /// Refused by the hook and never sent.
    pub refused: u32,
    /// Sent, but the answer was cut off for exceeding the response size
    /// cap: the host splits such a window (docs/sync.md, "Windows that fit").
    pub oversized: u32,
}

impl RequestCounts {
    /// The requests sent in `pool`.
    pub fn get(&self, pool: Pool) -> u32 {
        match pool {
            Pool::Siem => self.siem,
            Pool::Campaign => self.campaign,
            Pool::CampaignForensics => self.campaign_forensics,
            Pool::ThreatForensics => self.threat_forensics,
            Pool::ThreatSummary => self.threat_summary,
            Pool::PeopleVap => self.people_vap,
            Pool::PeopleTopClickers => self.people_top_clickers,
        }
    }

    /// The requests sent in each pool, in [`Pool::ALL`]'s order: what the
    /// budgets spend.
    pub fn by_pool(&self) -> [(Pool, u32); 7] {
        Pool::ALL.map(|pool| (pool, self.get(pool)))
    }

    /// Every request sent to TAP, whatever its pool.
    pub fn sent(&self) -> u32 {
        self.siem
            .saturating_add(self.campaign)
            .saturating_add(self.campaign_forensics)
            .saturating_add(self.threat_forensics)
            .saturating_add(self.threat_summary)
            .saturating_add(self.people_vap)
            .saturating_add(self.people_top_clickers)
            .saturating_add(self.other)
    }

    fn count(&mut self, endpoint: Endpoint) {
        let slot = match endpoint {
            Endpoint::Siem => &mut self.siem,
            Endpoint::Campaign => &mut self.campaign,
            Endpoint::CampaignForensics => &mut self.campaign_forensics,
            Endpoint::ThreatForensics => &mut self.threat_forensics,
            Endpoint::ThreatSummary => &mut self.threat_summary,
            Endpoint::PeopleVap => &mut self.people_vap,
            Endpoint::PeopleTopClickers => &mut self.people_top_clickers,
            Endpoint::Other => &mut self.other,
        };
        *slot = slot.saturating_add(1);
    }
}

/// TAP's request pools, each throttled over a rolling 24 hours per
/// credential (docs/tap-api.md, "Rate limits"; how we count them:
/// docs/sync.md, "TAP budgets and pools").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// `/v2/siem/*` except clicks/permitted: 1800 a day, shared.
    Siem,
    /// `/v2/campaign/{id}`: documented as unthrottled; we still count it and
    /// hold it to the forensics-by-campaign figure, since every look-up is
    /// followed by one of those.
    Campaign,
    /// `/v2/forensics?campaignId=`: 1800 a day.
    CampaignForensics,
    /// `/v2/forensics?threatId=`: 50 a day.
    ThreatForensics,
    /// `/v2/threat/summary/{id}`: TAP documents no throttle; we hold it to
    /// `[tap] threat_summaries_per_day` (1000 unless set) to stay polite.
    ThreatSummary,
    /// `/v2/people/vap`: 50 a day.
    PeopleVap,
    /// `/v2/people/top-clickers`: 50 a day.
    PeopleTopClickers,
}

impl Pool {
    pub const ALL: [Pool; 7] = [
        Pool::Siem,
        Pool::Campaign,
        Pool::CampaignForensics,
        Pool::ThreatForensics,
        Pool::ThreatSummary,
        Pool::PeopleVap,
        Pool::PeopleTopClickers,
    ];

    /// TAP's documented limit; for the summaries, which TAP does not
    /// throttle, our default politeness (the config may set another).
    pub fn daily_limit(self) -> u32 {
        match self {
            Pool::Siem | Pool::Campaign | Pool::CampaignForensics => 1800,
            Pool::ThreatForensics | Pool::PeopleVap | Pool::PeopleTopClickers => 50,
            Pool::ThreatSummary => 1000,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Pool::Siem => "siem",
            Pool::Campaign => "campaign",
            Pool::CampaignForensics => "forensics-by-campaign",
            Pool::ThreatForensics => "forensics-by-threat",
            Pool::ThreatSummary => "threat-summary",
            Pool::PeopleVap => "people-vap",
            Pool::PeopleTopClickers => "people-top-clickers",
        }
    }

    pub fn from_label(label: &str) -> Option<Pool> {
        Pool::ALL.into_iter().find(|pool| pool.label() == label)
    }
}

/// The counter one call's hook writes and `Runtime::sync` reads, shared so
/// it survives the store being dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestCounter(Arc<Mutex<RequestCounts>>);

impl RequestCounter {
    fn update(&self, change: impl FnOnce(&mut RequestCounts)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn snapshot(&self) -> RequestCounts {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which TAP pool a request draws on (docs/tap-api.md, "Rate limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Siem,
    Campaign,
    CampaignForensics,
    ThreatForensics,
    ThreatSummary,
    PeopleVap,
    PeopleTopClickers,
    Other,
}

impl Endpoint {
    /// Classifies by path and query as TAP would read them: percent-decoded
    /// and without regard to case, so a guest cannot move a request out of
    /// its pool by spelling it differently. `/v2/campaign/ids` (a pool the
    /// host does not track, and the component does not call) is `Other`.
    pub(crate) fn of(uri: &http::Uri) -> Endpoint {
        let path = percent_decode(uri.path()).to_ascii_lowercase();
        let path = path.strip_suffix('/').unwrap_or(&path);
        if path == "/v2/siem" || path.starts_with("/v2/siem/") {
            return Endpoint::Siem;
        }
        if let Some(id) = path.strip_prefix("/v2/campaign/") {
            return if id.is_empty() || id.contains('/') || id == "ids" {
                Endpoint::Other
            } else {
                Endpoint::Campaign
            };
        }
        if let Some(id) = path.strip_prefix("/v2/threat/summary/") {
            if !id.is_empty() && !id.contains('/') {
                return Endpoint::ThreatSummary;
            }
            return Endpoint::Other;
        }
        if path == "/v2/people/vap" {
            return Endpoint::PeopleVap;
        }
        if path == "/v2/people/top-clickers" {
            return Endpoint::PeopleTopClickers;
        }
        if path == "/v2/forensics" {
            let keys: Vec<String> =
                url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .map(|(key, _)| key.to_ascii_lowercase())
                    .collect();
            // Both at once is refused by TAP; count the scarcer pool.
            if keys.iter().any(|key| key == "threatid") {
                return Endpoint::ThreatForensics;
            }
            if keys.iter().any(|key| key == "campaignid") {
                return Endpoint::CampaignForensics;
            }
        }
        Endpoint::Other
    }
}

/// `%XX` sequences decoded (invalid ones kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The capability installed as the wasi-http hooks of one store.
pub(crate) struct OutboundHttp {
    exchange: Arc<Exchange>,
}

/// Everything one request needs, shared with the spawned request futures.
struct Exchange {
    origin: TapOrigin,
    /// The same origin as the URL parser the client uses reads it.
    client_origin: url::Origin,
    authorization: HeaderValue,
    http: reqwest::Client,
    request_timeout: Duration,
    max_response_bytes: u64,
    max_request_body_bytes: usize,
    counts: RequestCounter,
}

impl OutboundHttp {
    pub(crate) fn new(
        policy: &OutboundPolicy,
        max_request_body_bytes: usize,
        counts: RequestCounter,
    ) -> Result<Self, RuntimeError> {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            policy.principal,
            policy.secret.expose_secret()
        ));
        let mut authorization =
            HeaderValue::from_str(&format!("Basic {credentials}")).map_err(|_| {
                RuntimeError::Policy("the TAP credentials cannot form an HTTP header".into())
            })?;
        authorization.set_sensitive(true);
        let client_origin = url::Url::parse(&policy.origin.base_url())
            .map(|url| url.origin())
            .map_err(|err| {
                RuntimeError::Policy(format!(
                    "the TAP origin {} is not a URL the HTTP client can use: {err}",
                    policy.origin
                ))
            })?;
        Ok(OutboundHttp {
            exchange: Arc::new(Exchange {
                origin: policy.origin.clone(),
                client_origin,
                authorization,
                http: policy.http.clone(),
                request_timeout: policy.request_timeout,
                max_response_bytes: u64::try_from(policy.max_response_bytes).unwrap_or(u64::MAX),
                max_request_body_bytes,
                counts,
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
            self.counts.update(|counts| counts.refused += 1);
            tracing::warn!(
                refused = %refused_authority(&parts.uri),
                allowed = %self.origin,
                "refused an outbound request from the TAP component: it may only reach the TAP API"
            );
            return Err(WasiHttpError::HttpRequestDenied);
        }

        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|_| WasiHttpError::HttpRequestUriInvalid)?;
        // Belt and braces: the client must read the URL as the origin too.
        if url.origin() != self.client_origin {
            self.counts.update(|counts| counts.refused += 1);
            tracing::warn!(
                refused = %refused_authority(&parts.uri),
                allowed = %self.origin,
                "refused an outbound request from the TAP component: the HTTP client reads its URL differently"
            );
            return Err(WasiHttpError::HttpRequestDenied);
        }

        // TAP requests are GETs without a body. A body is read through a
        // limit, so one over the cap is refused without being buffered.
        let limit = self.max_request_body_bytes;
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let body = match declared {
            Some(declared) if declared > limit as u64 => Err(declared),
            _ => match Limited::new(body, limit).collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(err) if err.is::<LengthLimitError>() => Err(limit as u64 + 1),
                Err(err) => {
                    return Err(match err.downcast::<WasiHttpError>() {
                        Ok(code) => *code,
                        Err(other) => WasiHttpError::InternalError(Some(other.to_string())),
                    });
                }
            },
        };
        let body = match body {
            Ok(body) => body,
            Err(at_least) => {
                self.counts.update(|counts| counts.refused += 1);
                tracing::warn!(
                    %method, %path, limit_bytes = limit, body_bytes_at_least = at_least,
                    "refused an outbound request from the TAP component: its body is larger than the request body limit of {limit} bytes"
                );
                return Err(WasiHttpError::HttpRequestBodySize(Some(limit as u64)));
            }
        };

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

        // Dispatched from here on: it counts against TAP's budgets whatever
        // happens next.
        self.counts
            .update(|counts| counts.count(Endpoint::of(&parts.uri)));
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
            self.counts.update(|counts| counts.oversized += 1);
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
            counts: self.counts.clone(),
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
    counts: RequestCounter,
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
                        self.counts.update(|counts| counts.oversized += 1);
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

    fn uri(text: &str) -> http::Uri {
        text.parse().expect("test URI parses")
    }

    fn endpoint(path_and_query: &str) -> Endpoint {
        Endpoint::of(&uri(&format!("https://tap.example{path_and_query}")))
    }

    fn policy(origin: &str) -> OutboundPolicy {
        OutboundPolicy {
            origin: TapOrigin::parse(origin).expect("test origin"),
            principal: "principal".into(),
            secret: "s3cr3t-value".into(),
            http: reqwest::Client::new(),
            request_timeout: OutboundPolicy::DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: OutboundPolicy::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    #[test]
    fn requests_are_classified_into_tap_pools_by_path_and_query() {
        use Endpoint::*;
        for (path, pool) in [
            ("/v2/siem/all?format=json&interval=a%2Fb", Siem),
            ("/v2/siem/clicks/blocked", Siem),
            ("/v2/siem", Siem),
            ("/v2/%73iem/all", Siem),
            ("/V2/SIEM/all", Siem),
            ("/v2/campaign/46e01b8a-c899", Campaign),
            ("/v2/campaign/46e01b8a-c899/", Campaign),
            ("/v2/campaign/ids?interval=x", Other),
            ("/v2/campaign/", Other),
            ("/v2/forensics?campaignId=46e01b8a", CampaignForensics),
            ("/v2/forensics?threatId=abc", ThreatForensics),
            ("/v2/forensics?threatid=abc", ThreatForensics),
            ("/v2/forensics?%74hreatId=abc", ThreatForensics),
            ("/v2/forensics?campaignId=1&threatId=2", ThreatForensics),
            ("/v2/forensics", Other),
            ("/v2/forensics?other=1", Other),
            ("/v2/people/vap?window=30&size=1000&page=1", PeopleVap),
            ("/v2/people/%76ap", PeopleVap),
            ("/v2/people/top-clickers?window=30", PeopleTopClickers),
            ("/v2/people/", Other),
            ("/v2/threat/summary/abc", ThreatSummary),
            ("/v2/threat/summary/abc/", ThreatSummary),
            ("/v2/threat/summary/", Other),
            ("/v2/threat/summary/a/b", Other),
            ("/echo", Other),
        ] {
            assert_eq!(endpoint(path), pool, "{path}");
        }
    }

    #[test]
    fn the_request_counts_add_up_and_the_counter_is_shared() {
        let counter = RequestCounter::default();
        let clone = counter.clone();
        for endpoint in [
            Endpoint::Siem,
            Endpoint::Siem,
            Endpoint::Campaign,
            Endpoint::CampaignForensics,
            Endpoint::ThreatForensics,
            Endpoint::ThreatSummary,
            Endpoint::PeopleVap,
            Endpoint::PeopleTopClickers,
            Endpoint::Other,
        ] {
            clone.update(|counts| counts.count(endpoint));
        }
        clone.update(|counts| counts.refused += 1);
        let counts = counter.snapshot();
        assert_eq!(
            counts,
            RequestCounts {
                siem: 2,
                campaign: 1,
                campaign_forensics: 1,
                threat_forensics: 1,
                threat_summary: 1,
                people_vap: 1,
                people_top_clickers: 1,
                other: 1,
                refused: 1,
                oversized: 0,
            }
        );
        assert_eq!(counts.sent(), 9);
    }

    #[test]
    fn the_request_counts_read_by_pool_leave_out_what_no_pool_counts() {
        let counts = RequestCounts {
            siem: 4,
            campaign: 3,
            campaign_forensics: 2,
            threat_forensics: 1,
            threat_summary: 5,
            people_vap: 6,
            people_top_clickers: 8,
            other: 7,
            refused: 7,
            oversized: 7,
        };
        assert_eq!(
            counts.by_pool(),
            [
                (Pool::Siem, 4),
                (Pool::Campaign, 3),
                (Pool::CampaignForensics, 2),
                (Pool::ThreatForensics, 1),
                (Pool::ThreatSummary, 5),
                (Pool::PeopleVap, 6),
                (Pool::PeopleTopClickers, 8),
            ]
        );
        assert_eq!(counts.get(Pool::ThreatForensics), 1);
    }

    #[test]
    fn pool_labels_round_trip() {
        for pool in Pool::ALL {
            assert_eq!(Pool::from_label(pool.label()), Some(pool));
        }
        assert_eq!(Pool::from_label("nope"), None);
    }

    /// A 16 MiB request body in 1 KiB frames, counting what was pulled
    /// from it.
    struct EndlessBody {
        pulled: Arc<std::sync::atomic::AtomicUsize>,
    }

    const BOMB_BYTES: usize = 16 * 1024 * 1024;

    impl Body for EndlessBody {
        type Data = Bytes;
        type Error = WasiHttpError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, WasiHttpError>>> {
            const CHUNK: usize = 1024;
            let before = self
                .pulled
                .fetch_add(CHUNK, std::sync::atomic::Ordering::SeqCst);
            if before >= BOMB_BYTES {
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; CHUNK])))))
        }
    }

    #[tokio::test]
    async fn a_request_body_over_the_cap_is_refused_without_being_buffered_or_sent() {
        let counts = RequestCounter::default();
        let hook = OutboundHttp::new(&policy("http://127.0.0.1:9"), 64 * 1024, counts.clone())
            .expect("hook");
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let request = http::Request::post("http://127.0.0.1:9/v2/siem/all")
            .body(
                EndlessBody {
                    pulled: Arc::clone(&pulled),
                }
                .boxed_unsync(),
            )
            .expect("request");
        let answer = hook.exchange.send(request).await;
        assert!(
            matches!(answer, Err(WasiHttpError::HttpRequestBodySize(Some(65536)))),
            "{:?}",
            answer.err()
        );
        // Read one chunk past the cap at most, then stopped.
        assert!(
            pulled.load(std::sync::atomic::Ordering::SeqCst) <= 64 * 1024 + 1024,
            "pulled {} bytes",
            pulled.load(std::sync::atomic::Ordering::SeqCst)
        );
        assert_eq!(
            counts.snapshot(),
            RequestCounts {
                refused: 1,
                ..RequestCounts::default()
            }
        );
    }

    #[tokio::test]
    async fn a_declared_content_length_over_the_cap_is_refused_before_reading() {
        let counts = RequestCounter::default();
        let hook =
            OutboundHttp::new(&policy("http://127.0.0.1:9"), 1024, counts.clone()).expect("hook");
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let request = http::Request::post("http://127.0.0.1:9/v2/siem/all")
            .header(CONTENT_LENGTH, "1000000")
            .body(
                EndlessBody {
                    pulled: Arc::clone(&pulled),
                }
                .boxed_unsync(),
            )
            .expect("request");
        let answer = hook.exchange.send(request).await;
        assert!(matches!(
            answer,
            Err(WasiHttpError::HttpRequestBodySize(Some(1024)))
        ));
        assert_eq!(pulled.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(counts.snapshot().refused, 1);
    }

    #[tokio::test]
    async fn a_request_to_another_origin_is_refused_and_counted_as_refused() {
        let counts = RequestCounter::default();
        let hook =
            OutboundHttp::new(&policy("http://127.0.0.1:9"), 1024, counts.clone()).expect("hook");
        let request = http::Request::get("http://2130706433:9/v2/siem/all")
            .body(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("request");
        let answer = hook.exchange.send(request).await;
        assert!(matches!(answer, Err(WasiHttpError::HttpRequestDenied)));
        assert_eq!(
            counts.snapshot(),
            RequestCounts {
                refused: 1,
                ..RequestCounts::default()
            }
        );
    }

    #[tokio::test]
    async fn a_dispatched_request_counts_in_its_pool_even_when_it_fails() {
        // Port 9 on 127.0.0.1 refuses the connection: sent, but no answer.
        let counts = RequestCounter::default();
        let hook =
            OutboundHttp::new(&policy("http://127.0.0.1:9"), 1024, counts.clone()).expect("hook");
        let request = http::Request::get("http://127.0.0.1:9/v2/forensics?threatId=abc")
            .body(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("request");
        assert!(hook.exchange.send(request).await.is_err());
        assert_eq!(
            counts.snapshot(),
            RequestCounts {
                threat_forensics: 1,
                ..RequestCounts::default()
            }
        );
    }

    #[test]
    fn the_policy_debug_output_hides_the_secret() {
        let policy = policy("https://tap.example");
        let text = format!("{policy:?}");
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
        assert!(text.contains("https://tap.example"), "{text}");
    }
}
