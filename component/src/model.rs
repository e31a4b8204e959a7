//! Plain-Rust mirror of the types in `wit/tap-connector.wit`.
//!
//! Every piece of TAP logic works on these types rather than on the
//! generated bindings, so the whole crate compiles and is tested natively;
//! `bindings.rs` converts at the boundary. Field meanings are documented in
//! the WIT file and not repeated here.

/// A campaign already known to the host in this run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CampaignRef {
    pub id: String,
    pub name: String,
}

/// What one `sync` (or `map_records`) call needs besides the window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub tap_base_url: String,
    pub create_incidents: bool,
    pub known_campaigns: Vec<CampaignRef>,
    pub already_sent: Vec<String>,
    pub campaign_allowance: u32,
    pub threat_forensics_allowance: u32,
}

/// A half-open SIEM query window `[start, end)` as RFC 3339 strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: String,
    pub end: String,
}

/// The ThreatQ collection an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Indicator,
    Event,
    Campaign,
    Malware,
    Adversary,
    AttackPattern,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreatqObject {
    pub kind: ObjectKind,
    pub value: String,
    pub type_name: Option<String>,
    pub happened_at: Option<String>,
    pub description: Option<String>,
    pub attributes: Vec<Attribute>,
}

/// An undirected link between two indices of `SyncResult::objects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub a: u32,
    pub b: u32,
}

/// One SIEM record that could not be mapped. `section` and `raw` are the
/// array it came from and its JSON text, so the host can keep it and map it
/// again (`QuarantinedRecord`, `map_records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub key: String,
    pub reason: String,
    pub section: String,
    pub raw: String,
}

/// A SIEM record kept by the host, handed back to `map_records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRecord {
    pub section: String,
    pub raw: String,
}

impl From<Rejection> for QuarantinedRecord {
    fn from(rejection: Rejection) -> QuarantinedRecord {
        QuarantinedRecord {
            section: rejection.section,
            raw: rejection.raw,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub key: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub messages_delivered: u32,
    pub messages_blocked: u32,
    pub clicks_permitted: u32,
    pub clicks_blocked: u32,
    pub already_sent_skipped: u32,
    pub false_positives: u32,
    pub siem_requests: u32,
    pub campaign_requests: u32,
    pub campaign_forensics_requests: u32,
    pub threat_forensics_requests: u32,
    pub threat_forensics_deferred: u32,
    pub evidence_used: u32,
    pub evidence_dropped: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub query_end_time: String,
    pub objects: Vec<ThreatqObject>,
    pub relations: Vec<Relation>,
    pub rejections: Vec<Rejection>,
    pub record_keys: Vec<RecordKey>,
    pub campaigns_fetched: Vec<CampaignRef>,
    pub counters: Counters,
}

/// Which TAP request failed and what TAP said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapFailure {
    pub endpoint: String,
    pub status: u16,
    pub message: String,
}

/// Why a `sync` or `map_records` call failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    Unauthorized(TapFailure),
    Forbidden(TapFailure),
    RateLimited(TapFailure),
    BadRequest(TapFailure),
    ServerError(TapFailure),
    BadResponse(String),
    Transport(String),
    InvalidInput(String),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tap = |f: &mut std::fmt::Formatter<'_>, what: &str, t: &TapFailure| {
            write!(f, "{what}: TAP answered {} on {}", t.status, t.endpoint)?;
            if !t.message.is_empty() {
                write!(f, ": {}", t.message)?;
            }
            Ok(())
        };
        match self {
            SyncError::Unauthorized(t) => tap(f, "unauthorized", t),
            SyncError::Forbidden(t) => tap(f, "forbidden", t),
            SyncError::RateLimited(t) => tap(f, "rate limited", t),
            SyncError::BadRequest(t) => tap(f, "bad request", t),
            SyncError::ServerError(t) => tap(f, "server error", t),
            SyncError::BadResponse(m) => write!(f, "bad response: {m}"),
            SyncError::Transport(m) => write!(f, "transport: {m}"),
            SyncError::InvalidInput(m) => write!(f, "invalid input: {m}"),
        }
    }
}

impl std::error::Error for SyncError {}
