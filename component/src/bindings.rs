//! The bindings generated from `wit/tap-connector.wit`, on every target.
//!
//! The TAP logic works on the generated WIT types themselves (re-exported
//! below and from the crate root), so there is no second copy of them to
//! keep in step. Off wasm32, wit-bindgen stubs the imports; they are never
//! called there, because `HostServices` and `Transport` stand in for them.
//! Only on wasm32 are the `sync` and `map-records` exports wired up and the
//! `host` import put behind `HostServices` (module `guest`).

wit_bindgen::generate!({
    world: "tap-connector",
    path: "../wit",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
    // Relations and attributes are de-duplicated in sets, kinds are part of
    // object identities, and tests compare whole results. (Clone, and Copy
    // for the plain ones, come by default; Debug is generated.)
    additional_derives: [PartialEq, Eq, Hash, PartialOrd, Ord],
    additional_type_attributes: {
        "proofpoint:tap/connector@0.6.0/counters": [#[derive(Default)]],
        "proofpoint:tap/connector@0.6.0/enrichment-report": [#[derive(Default)]],
    },
});

pub use exports::proofpoint::tap::connector::{
    Attribute, CampaignLink, CampaignRef, Counters, Credentials, EnrichmentReport, MessageLink,
    NamedRef, ObjectKind, PeopleAnswer, PeopleList, PeopleRequest, Person, PersonMark,
    QuarantinedRecord, RecordKey, Rejection, Relation, Settings, SummaryRef, SyncError, SyncResult,
    TapAccess, TapFailure, ThreatRef, ThreatqObject, Verdict, VerdictStatus, Window,
};
pub use proofpoint::tap::host::LogLevel;

/// A rejection kept by the host is the record to hand back to `map-records`.
impl From<Rejection> for QuarantinedRecord {
    fn from(rejection: Rejection) -> QuarantinedRecord {
        QuarantinedRecord {
            section: rejection.section,
            raw: rejection.raw,
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use super::exports::proofpoint::tap::connector::Guest;
    use super::proofpoint::tap::host;
    use super::{
        LogLevel, PeopleAnswer, PeopleRequest, QuarantinedRecord, Settings, SyncError, SyncResult,
        TapAccess, Window,
    };
    use crate::transport::{HostServices, basic_authorization};
    use crate::wasi_http::WasiHttpTransport;

    struct Component;

    impl Guest for Component {
        fn sync(settings: Settings, window: Window) -> Result<SyncResult, SyncError> {
            let authorization = authorization(settings.credentials.as_ref())?;
            let connect = |base| WasiHttpTransport::new(base, authorization);
            crate::sync::sync(&settings, &window, connect, &mut WitHost)
        }

        fn map_records(
            settings: Settings,
            records: Vec<QuarantinedRecord>,
        ) -> Result<SyncResult, SyncError> {
            let authorization = authorization(settings.credentials.as_ref())?;
            let connect = |base| WasiHttpTransport::new(base, authorization);
            crate::sync::map_records(&settings, &records, connect, &mut WitHost)
        }

        fn read_people(access: TapAccess, request: PeopleRequest) -> PeopleAnswer {
            match authorization(access.credentials.as_ref()) {
                Ok(authorization) => {
                    let connect = |base| WasiHttpTransport::new(base, authorization);
                    crate::people::read_people(&access, &request, connect, &mut WitHost)
                }
                Err(e) => PeopleAnswer {
                    very_attacked: Err(e.clone()),
                    top_clickers: Err(e),
                },
            }
        }
    }

    /// The `Authorization` value to send when the host handed over
    /// credentials.
    fn authorization(
        credentials: Option<&super::Credentials>,
    ) -> Result<Option<String>, SyncError> {
        match credentials {
            Some(c) => basic_authorization(&c.principal, &c.secret)
                .map(Some)
                .map_err(SyncError::InvalidInput),
            None => Ok(None),
        }
    }

    super::export!(Component with_types_in super);

    /// The `host` import behind `HostServices`.
    struct WitHost;

    impl HostServices for WitHost {
        fn log(&mut self, level: LogLevel, message: &str, fields: &[(&str, String)]) {
            let fields: Vec<host::LogField> = fields
                .iter()
                .map(|(key, value)| host::LogField {
                    key: (*key).to_string(),
                    value: value.clone(),
                })
                .collect();
            host::log(level, message, &fields);
        }

        fn now_ms(&mut self) -> i64 {
            host::now_ms()
        }
    }
}
