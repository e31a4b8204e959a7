//! The only code that touches the generated `tap-connector` bindings.
//!
//! WASI interfaces are mapped onto wasmtime_wasi(_http)'s own bindings with
//! `with:` so they are not regenerated and their host implementations link.

mod generated {
    wasmtime::component::bindgen!({
        world: "tap-connector",
        path: "../../wit",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
        require_store_data_send: true,
    });
}

pub use generated::TapConnectorPre;
pub use generated::exports::proofpoint::tap::connector::{
    Attribute, CampaignLink, CampaignRef, Counters, Credentials, EnrichmentReport, MessageLink,
    NamedRef, ObjectKind, PeopleAnswer, PeopleList, PeopleRequest, Person, PersonMark,
    QuarantinedRecord, RecordKey, Rejection, Relation, Settings, SummaryRef, SyncError, SyncResult,
    TapAccess, TapFailure, ThreatRef, ThreatqObject, Verdict, VerdictStatus, Window,
};
pub use generated::proofpoint::tap::host::{self as host_interface, LogField, LogLevel};
