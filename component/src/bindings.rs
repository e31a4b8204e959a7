//! The only code that touches the generated bindings: the `sync` and
//! `map-records` exports, conversions between the WIT types and `model`,
//! and the `host` import.

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
});

use exports::proofpoint::tap::connector as wit;
use proofpoint::tap::host;

use crate::model;
use crate::transport::{HostServices, LogLevel, basic_authorization};
use crate::wasi_http::WasiHttpTransport;

struct Component;

impl wit::Guest for Component {
    fn sync(
        settings: wit::Settings,
        window: wit::Window,
    ) -> Result<wit::SyncResult, wit::SyncError> {
        let (settings, authorization) = settings_from_wit(settings)?;
        let window = model::Window {
            start: window.start,
            end: window.end,
        };
        let connect = |base| WasiHttpTransport::new(base, authorization);
        crate::sync::sync(&settings, &window, connect, &mut WitHost)
            .map(result_to_wit)
            .map_err(error_to_wit)
    }

    fn map_records(
        settings: wit::Settings,
        records: Vec<wit::QuarantinedRecord>,
    ) -> Result<wit::SyncResult, wit::SyncError> {
        let (settings, authorization) = settings_from_wit(settings)?;
        let records: Vec<model::QuarantinedRecord> = records
            .into_iter()
            .map(|r| model::QuarantinedRecord {
                section: r.section,
                raw: r.raw,
            })
            .collect();
        let connect = |base| WasiHttpTransport::new(base, authorization);
        crate::sync::map_records(&settings, &records, connect, &mut WitHost)
            .map(result_to_wit)
            .map_err(error_to_wit)
    }
}

/// The settings as `model` has them, and the `Authorization` value to send
/// when the host handed over credentials.
fn settings_from_wit(
    settings: wit::Settings,
) -> Result<(model::Settings, Option<String>), wit::SyncError> {
    let authorization = match &settings.credentials {
        Some(c) => Some(
            basic_authorization(&c.principal, &c.secret).map_err(wit::SyncError::InvalidInput)?,
        ),
        None => None,
    };
    let settings = model::Settings {
        tap_base_url: settings.tap_base_url,
        create_incidents: settings.create_incidents,
        known_campaigns: settings
            .known_campaigns
            .into_iter()
            .map(|c| model::CampaignRef {
                id: c.id,
                name: c.name,
            })
            .collect(),
        already_sent: settings.already_sent,
        campaign_allowance: settings.campaign_allowance,
        threat_forensics_allowance: settings.threat_forensics_allowance,
    };
    Ok((settings, authorization))
}

export!(Component);

/// The `host` import behind `HostServices`.
struct WitHost;

impl HostServices for WitHost {
    fn log(&mut self, level: LogLevel, message: &str, fields: &[(&str, String)]) {
        let level = match level {
            LogLevel::Error => host::LogLevel::Error,
            LogLevel::Warn => host::LogLevel::Warn,
            LogLevel::Info => host::LogLevel::Info,
            LogLevel::Debug => host::LogLevel::Debug,
            LogLevel::Trace => host::LogLevel::Trace,
        };
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

fn result_to_wit(r: model::SyncResult) -> wit::SyncResult {
    wit::SyncResult {
        query_end_time: r.query_end_time,
        objects: r.objects.into_iter().map(object_to_wit).collect(),
        relations: r
            .relations
            .into_iter()
            .map(|rel| wit::Relation { a: rel.a, b: rel.b })
            .collect(),
        rejections: r
            .rejections
            .into_iter()
            .map(|rej| wit::Rejection {
                key: rej.key,
                reason: rej.reason,
                section: rej.section,
                raw: rej.raw,
            })
            .collect(),
        record_keys: r
            .record_keys
            .into_iter()
            .map(|k| wit::RecordKey {
                key: k.key,
                created_ms: k.created_ms,
            })
            .collect(),
        campaigns_fetched: r
            .campaigns_fetched
            .into_iter()
            .map(|c| wit::CampaignRef {
                id: c.id,
                name: c.name,
            })
            .collect(),
        counters: counters_to_wit(r.counters),
    }
}

fn object_to_wit(o: model::ThreatqObject) -> wit::ThreatqObject {
    wit::ThreatqObject {
        kind: match o.kind {
            model::ObjectKind::Indicator => wit::ObjectKind::Indicator,
            model::ObjectKind::Event => wit::ObjectKind::Event,
            model::ObjectKind::Campaign => wit::ObjectKind::Campaign,
            model::ObjectKind::Malware => wit::ObjectKind::Malware,
            model::ObjectKind::Adversary => wit::ObjectKind::Adversary,
            model::ObjectKind::AttackPattern => wit::ObjectKind::AttackPattern,
        },
        value: o.value,
        type_name: o.type_name,
        happened_at: o.happened_at,
        description: o.description,
        attributes: o
            .attributes
            .into_iter()
            .map(|a| wit::Attribute {
                name: a.name,
                value: a.value,
            })
            .collect(),
    }
}

fn counters_to_wit(c: model::Counters) -> wit::Counters {
    wit::Counters {
        messages_delivered: c.messages_delivered,
        messages_blocked: c.messages_blocked,
        clicks_permitted: c.clicks_permitted,
        clicks_blocked: c.clicks_blocked,
        already_sent_skipped: c.already_sent_skipped,
        false_positives: c.false_positives,
        siem_requests: c.siem_requests,
        campaign_requests: c.campaign_requests,
        campaign_forensics_requests: c.campaign_forensics_requests,
        threat_forensics_requests: c.threat_forensics_requests,
        threat_forensics_deferred: c.threat_forensics_deferred,
        evidence_used: c.evidence_used,
        evidence_dropped: c.evidence_dropped,
    }
}

fn failure_to_wit(f: model::TapFailure) -> wit::TapFailure {
    wit::TapFailure {
        endpoint: f.endpoint,
        status: f.status,
        message: f.message,
    }
}

fn error_to_wit(e: model::SyncError) -> wit::SyncError {
    match e {
        model::SyncError::Unauthorized(f) => wit::SyncError::Unauthorized(failure_to_wit(f)),
        model::SyncError::Forbidden(f) => wit::SyncError::Forbidden(failure_to_wit(f)),
        model::SyncError::RateLimited(f) => wit::SyncError::RateLimited(failure_to_wit(f)),
        model::SyncError::BadRequest(f) => wit::SyncError::BadRequest(failure_to_wit(f)),
        model::SyncError::ServerError(f) => wit::SyncError::ServerError(failure_to_wit(f)),
        model::SyncError::BadResponse(m) => wit::SyncError::BadResponse(m),
        model::SyncError::Transport(m) => wit::SyncError::Transport(m),
        model::SyncError::InvalidInput(m) => wit::SyncError::InvalidInput(m),
    }
}
