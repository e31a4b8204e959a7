//! `/v2/threat/summary/{threatId}`: what TAP knows of one threat (its
//! category, severity, actors, malware...). Not throttled by TAP; answers
//! are served as loaded, with the summary drift applied.

use http::StatusCode;

use crate::drift;
use crate::faults::Drift;
use crate::reply::Reply;
use crate::store::Store;

/// TAP's 404 text for a threat id it does not know.
pub const THREAT_NOT_FOUND: &str = "threatId not found";

/// The summary loaded for `id`; 404 `threatId not found` when none is.
pub fn summary(store: &Store, id: &str, drift: Drift) -> Reply {
    let Some(summary) = store.summary(id) else {
        return Reply::text(StatusCode::NOT_FOUND, THREAT_NOT_FOUND);
    };
    let mut summary = summary.clone();
    drift::apply_to_summary(drift, &mut summary);
    Reply::json(summary.to_string())
}

/// A queued failure: the status with a one-line text, as TAP's errors are
/// plain text. A status no HTTP response can carry becomes 500.
pub fn failure(status: u16) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    Reply::text(
        status,
        format!("{reason} (simulated threat summary failure)"),
    )
}
