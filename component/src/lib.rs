//! Proofpoint TAP knowledge as a WASI 0.2 component: fetch one SIEM window
//! (plus the threat summaries, campaigns and forensics it names) and map it
//! to ThreatQ objects, map SIEM records the host kept from an earlier call,
//! or read TAP's people lists. No policy lives here: windows, budgets, credentials and
//! checkpoints belong to the host.
//!
//! The TAP logic works on the types generated from the WIT file
//! (`bindings`), which compile natively too; only `wasi_http` and the
//! exports are wasm32-only, so the TAP logic is tested with
//! `cargo test -p tap-component`.

pub mod dates;
pub mod map;
pub mod people;
pub mod sync;
pub mod tap;
pub mod transport;

mod bindings;
#[cfg(target_arch = "wasm32")]
mod wasi_http;

pub use bindings::{
    Attribute, CampaignRef, Counters, Credentials, EnrichmentReport, MessageLink, NamedRef,
    ObjectKind, PeopleAnswer, PeopleList, PeopleRequest, Person, PersonMark, QuarantinedRecord,
    RecordKey, Rejection, Relation, Settings, SummaryRef, SyncError, SyncResult, TapAccess,
    TapFailure, ThreatRef, ThreatqObject, Verdict, VerdictStatus, Window,
};
pub use people::read_people;
pub use sync::{map_records, sync};
pub use transport::{HostServices, LogLevel, Scheme, TapBaseUrl, TapResponse, Transport};
