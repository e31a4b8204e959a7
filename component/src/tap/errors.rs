//! What a TAP status code means for the call.

use crate::bindings::{SyncError, TapFailure};

/// TAP's error texts are one line; an HTML error page from a proxy can be
/// kilobytes, which would drown the log line it ends up in.
const MAX_MESSAGE_CHARS: usize = 300;

/// TAP's own message from an error body: UTF-8 (lossy), trimmed, shortened.
pub fn tap_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.chars().count() <= MAX_MESSAGE_CHARS {
        return trimmed.to_string();
    }
    let mut short: String = trimmed.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

/// The failure of a whole call for a non-success status of `endpoint`.
pub fn status_error(endpoint: &str, status: u16, body: &[u8]) -> SyncError {
    let failure = TapFailure {
        endpoint: endpoint.to_string(),
        status,
        message: tap_message(body),
    };
    match status {
        400 => SyncError::BadRequest(failure),
        401 => SyncError::Unauthorized(failure),
        403 => SyncError::Forbidden(failure),
        429 => SyncError::RateLimited(failure),
        _ => SyncError::ServerError(failure),
    }
}

/// 401, 403 and 429 concern the credential or its budget, so after one of
/// them every further request in the call would fail the same way.
pub fn stops_all_requests(status: u16) -> bool {
    matches!(status, 401 | 403 | 429)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_maps_to_its_error_with_tap_text_trimmed() {
        let e = status_error(
            "/v2/siem/all",
            400,
            b"  The requested interval is still current.\n",
        );
        assert_eq!(
            e,
            SyncError::BadRequest(TapFailure {
                endpoint: "/v2/siem/all".into(),
                status: 400,
                message: "The requested interval is still current.".into(),
            })
        );
        assert!(matches!(
            status_error("/x", 401, b""),
            SyncError::Unauthorized(_)
        ));
        assert!(matches!(
            status_error("/x", 403, b""),
            SyncError::Forbidden(_)
        ));
        assert!(matches!(
            status_error("/x", 429, b""),
            SyncError::RateLimited(_)
        ));
        assert!(matches!(
            status_error("/x", 503, b""),
            SyncError::ServerError(_)
        ));
        assert!(matches!(
            status_error("/x", 404, b""),
            SyncError::ServerError(_)
        ));
    }

    #[test]
    fn long_error_pages_are_shortened() {
        let page = "x".repeat(5000);
        let message = tap_message(page.as_bytes());
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
