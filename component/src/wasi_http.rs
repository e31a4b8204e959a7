//! The only code that touches `wasi:http`: a blocking GET over the raw
//! `wasip2` outgoing handler.
//!
//! Raw `wasip2` rather than `wstd`: `wstd` sends the request and finishes
//! its body concurrently, so a host denial reaches the guest as "connection
//! reset" and quick-closing servers race (docs/sandbox.md, "Why raw
//! `wasip2`, not `wstd`"). Here the empty body is finished before `handle`,
//! and every error code reaches the operator by name.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme as WasiScheme,
};
use wasip2::io::streams::StreamError;

use crate::transport::{Scheme, TapBaseUrl, TapResponse, Transport};

/// Bytes asked for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// A busy TAP hour is tens of MiB of JSON; beyond this the component would
/// only run out of memory less clearly than this error says it.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

pub struct WasiHttpTransport {
    base: TapBaseUrl,
    /// `Authorization` value when the embedder handed us the credential;
    /// `None` when the host adds the header below the component.
    authorization: Option<String>,
}

impl WasiHttpTransport {
    pub fn new(base: TapBaseUrl, authorization: Option<String>) -> WasiHttpTransport {
        WasiHttpTransport {
            base,
            authorization,
        }
    }
}

impl Transport for WasiHttpTransport {
    fn get(&mut self, path_and_query: &str) -> Result<TapResponse, String> {
        let headers = Fields::new();
        headers
            .append("accept", b"application/json")
            .map_err(|e| format!("could not set the Accept header: {e:?}"))?;
        if let Some(authorization) = &self.authorization {
            headers
                .append("authorization", authorization.as_bytes())
                .map_err(|e| format!("could not set the Authorization header: {e:?}"))?;
        }
        let request = OutgoingRequest::new(headers);
        let scheme = match self.base.scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        };
        request
            .set_method(&Method::Get)
            .map_err(|()| "the host refused the GET method".to_string())?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| "the host refused the URL scheme".to_string())?;
        request
            .set_authority(Some(&self.base.authority))
            .map_err(|()| format!("the host refused the authority `{}`", self.base.authority))?;
        request
            .set_path_with_query(Some(path_and_query))
            .map_err(|()| format!("the host refused the path `{path_and_query}`"))?;
        // A GET has no body, but it must be finished before `handle` so the
        // request is complete when the host sends it.
        let body = request
            .body()
            .map_err(|()| "the request body was already taken".to_string())?;
        OutgoingBody::finish(body, None).map_err(|code| describe(&code))?;

        let pending = outgoing_handler::handle(request, None).map_err(|code| describe(&code))?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(describe(&code)),
            Some(Err(())) => return Err("the response was already taken".to_string()),
            None => return Err("the response was not ready after waiting for it".to_string()),
        };
        let status = response.status();
        let incoming = response
            .consume()
            .map_err(|()| "the response body was already taken".to_string())?;
        let stream = incoming
            .stream()
            .map_err(|()| "the response body stream was already taken".to_string())?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_BODY_BYTES {
                        return Err(format!(
                            "the response body is larger than {} MiB",
                            MAX_BODY_BYTES / (1024 * 1024)
                        ));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(error)) => {
                    return Err(format!(
                        "reading the response body failed: {}",
                        error.to_debug_string()
                    ));
                }
            }
        }
        // The stream is a child of the body; it must go first.
        drop(stream);
        drop(incoming);
        Ok(TapResponse {
            status,
            body: bytes,
        })
    }
}

/// A WASI HTTP error code in words, naming the code so it can be searched.
fn describe(code: &ErrorCode) -> String {
    let (name, meaning): (&str, String) = match code {
        ErrorCode::DnsTimeout => ("DnsTimeout", "the DNS lookup timed out".into()),
        ErrorCode::DnsError(p) => (
            "DnsError",
            format!(
                "the DNS lookup failed ({})",
                p.rcode.clone().unwrap_or_else(|| "no rcode".into())
            ),
        ),
        ErrorCode::DestinationNotFound => (
            "DestinationNotFound",
            "the host name does not resolve".into(),
        ),
        ErrorCode::DestinationUnavailable => {
            ("DestinationUnavailable", "the server is unavailable".into())
        }
        ErrorCode::DestinationIpProhibited => (
            "DestinationIpProhibited",
            "the destination IP is prohibited".into(),
        ),
        ErrorCode::DestinationIpUnroutable => (
            "DestinationIpUnroutable",
            "the destination IP is unroutable".into(),
        ),
        ErrorCode::ConnectionRefused => (
            "ConnectionRefused",
            "the server refused the connection".into(),
        ),
        ErrorCode::ConnectionTerminated => (
            "ConnectionTerminated",
            "the connection was closed early".into(),
        ),
        ErrorCode::ConnectionTimeout => ("ConnectionTimeout", "connecting timed out".into()),
        ErrorCode::ConnectionReadTimeout => (
            "ConnectionReadTimeout",
            "reading the answer timed out".into(),
        ),
        ErrorCode::ConnectionWriteTimeout => (
            "ConnectionWriteTimeout",
            "sending the request timed out".into(),
        ),
        ErrorCode::ConnectionLimitReached => {
            ("ConnectionLimitReached", "too many connections".into())
        }
        ErrorCode::TlsProtocolError => ("TlsProtocolError", "the TLS handshake failed".into()),
        ErrorCode::TlsCertificateError => (
            "TlsCertificateError",
            "the server's TLS certificate was not accepted".into(),
        ),
        ErrorCode::TlsAlertReceived(p) => (
            "TlsAlertReceived",
            format!(
                "the server sent a TLS alert ({})",
                p.alert_message
                    .clone()
                    .unwrap_or_else(|| "no message".into())
            ),
        ),
        ErrorCode::HttpRequestDenied => (
            "HttpRequestDenied",
            "is the TAP host on the host's allowlist of outbound destinations?".into(),
        ),
        ErrorCode::HttpRequestLengthRequired => (
            "HttpRequestLengthRequired",
            "the request needs a length".into(),
        ),
        ErrorCode::HttpRequestBodySize(_) => (
            "HttpRequestBodySize",
            "the request body is too large".into(),
        ),
        ErrorCode::HttpRequestMethodInvalid => {
            ("HttpRequestMethodInvalid", "the method is invalid".into())
        }
        ErrorCode::HttpRequestUriInvalid => ("HttpRequestUriInvalid", "the URL is invalid".into()),
        ErrorCode::HttpRequestUriTooLong => ("HttpRequestUriTooLong", "the URL is too long".into()),
        ErrorCode::HttpRequestHeaderSectionSize(_) => (
            "HttpRequestHeaderSectionSize",
            "the request headers are too large".into(),
        ),
        ErrorCode::HttpRequestHeaderSize(_) => (
            "HttpRequestHeaderSize",
            "a request header is too large".into(),
        ),
        ErrorCode::HttpRequestTrailerSectionSize(_) => (
            "HttpRequestTrailerSectionSize",
            "the request trailers are too large".into(),
        ),
        ErrorCode::HttpRequestTrailerSize(_) => (
            "HttpRequestTrailerSize",
            "a request trailer is too large".into(),
        ),
        ErrorCode::HttpResponseIncomplete => {
            ("HttpResponseIncomplete", "the answer ended early".into())
        }
        ErrorCode::HttpResponseHeaderSectionSize(_) => (
            "HttpResponseHeaderSectionSize",
            "the answer's headers are too large".into(),
        ),
        ErrorCode::HttpResponseHeaderSize(_) => (
            "HttpResponseHeaderSize",
            "an answer header is too large".into(),
        ),
        ErrorCode::HttpResponseBodySize(limit) => (
            "HttpResponseBodySize",
            match limit {
                Some(limit) => format!("the answer is larger than the host allows ({limit} bytes)"),
                None => "the answer is larger than the host allows".into(),
            },
        ),
        ErrorCode::HttpResponseTrailerSectionSize(_) => (
            "HttpResponseTrailerSectionSize",
            "the answer's trailers are too large".into(),
        ),
        ErrorCode::HttpResponseTrailerSize(_) => (
            "HttpResponseTrailerSize",
            "an answer trailer is too large".into(),
        ),
        ErrorCode::HttpResponseTransferCoding(c) => (
            "HttpResponseTransferCoding",
            format!(
                "unsupported transfer coding {}",
                c.clone().unwrap_or_default()
            ),
        ),
        ErrorCode::HttpResponseContentCoding(c) => (
            "HttpResponseContentCoding",
            format!(
                "unsupported content coding {}",
                c.clone().unwrap_or_default()
            ),
        ),
        ErrorCode::HttpResponseTimeout => (
            "HttpResponseTimeout",
            "the answer did not come in time".into(),
        ),
        ErrorCode::HttpUpgradeFailed => ("HttpUpgradeFailed", "the protocol upgrade failed".into()),
        ErrorCode::HttpProtocolError => (
            "HttpProtocolError",
            "the server broke the HTTP protocol".into(),
        ),
        ErrorCode::LoopDetected => ("LoopDetected", "a request loop was detected".into()),
        ErrorCode::ConfigurationError => (
            "ConfigurationError",
            "the host's HTTP configuration is wrong".into(),
        ),
        ErrorCode::InternalError(detail) => (
            "InternalError",
            format!(
                "the host's HTTP client failed: {}",
                detail.clone().unwrap_or_else(|| "no detail".into())
            ),
        ),
    };
    let summary = match code {
        ErrorCode::HttpRequestDenied => "the host denied the request",
        _ => "the request failed",
    };
    format!("{summary} ({name}): {meaning}")
}
