//! Shared fakes and builders for the sync-level tests: an in-memory TAP
//! that answers by path and records what was asked, a host that keeps the
//! log, and realistic TAP records to vary.
#![allow(dead_code)]

pub mod arbitrary;

use std::collections::HashMap;

use serde_json::{Value, json};
use tap_component::{
    HostServices, LogLevel, ObjectKind, QuarantinedRecord, Settings, SyncError, SyncResult,
    TapResponse, ThreatqObject, Transport, Window,
};

pub const THREAT_URL_ID: &str = "61f7622167144dba5e3ae4480eeee78b23d66f7dfed970cfc3d086cc0dabdf50";
pub const ATTACHMENT_SHA: &str = "25656596bc8a0d2e2c9e0f2a6d7e3b1f91a4a5b0a3f4c8e0d9b2c1a7e6f5d4c3";
pub const CAMPAIGN_ID: &str = "46e01b8a-c899-404d-bcd9-189bb393d1a7";
pub const GUID: &str = "N9Q2II2Isp8zHx_j7_qzDLKf80Thg2eM";

/// A TAP that answers each path from a table; anything else is a 404.
#[derive(Default)]
pub struct FakeTap {
    siem: Option<Result<TapResponse, String>>,
    routes: HashMap<String, TapResponse>,
    pub requests: Vec<String>,
}

impl FakeTap {
    pub fn siem_json(body: Value) -> FakeTap {
        FakeTap::siem_raw(200, body.to_string().as_bytes())
    }

    pub fn siem_raw(status: u16, body: &[u8]) -> FakeTap {
        FakeTap {
            siem: Some(Ok(TapResponse {
                status,
                body: body.to_vec(),
            })),
            ..FakeTap::default()
        }
    }

    pub fn siem_unreachable(error: &str) -> FakeTap {
        FakeTap {
            siem: Some(Err(error.to_string())),
            ..FakeTap::default()
        }
    }

    pub fn route(mut self, path: &str, status: u16, body: Value) -> FakeTap {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.routes
            .insert(path.to_string(), TapResponse { status, body });
        self
    }

    pub fn campaign(self, id: &str, body: Value) -> FakeTap {
        self.route(&format!("/v2/campaign/{id}"), 200, body)
    }

    pub fn campaign_forensics(self, id: &str, body: Value) -> FakeTap {
        self.route(&format!("/v2/forensics?campaignId={id}"), 200, body)
    }

    pub fn threat_forensics(self, id: &str, body: Value) -> FakeTap {
        self.route(&format!("/v2/forensics?threatId={id}"), 200, body)
    }

    pub fn requests_starting(&self, prefix: &str) -> Vec<&str> {
        self.requests
            .iter()
            .filter(|r| r.starts_with(prefix))
            .map(String::as_str)
            .collect()
    }
}

impl Transport for FakeTap {
    fn get(&mut self, path_and_query: &str) -> Result<TapResponse, String> {
        self.requests.push(path_and_query.to_string());
        if path_and_query.starts_with("/v2/siem/all?") {
            return self.siem.clone().unwrap_or(Ok(TapResponse {
                status: 204,
                body: Vec::new(),
            }));
        }
        Ok(self
            .routes
            .get(path_and_query)
            .cloned()
            .unwrap_or(TapResponse {
                status: 404,
                body: b"The campaign ID or threat ID does not exist.".to_vec(),
            }))
    }
}

/// One log line: level, message, fields.
pub type LogLine = (LogLevel, String, Vec<(String, String)>);

/// A host whose clock advances 5 ms per reading and which keeps every log
/// line.
#[derive(Default)]
pub struct RecordingHost {
    pub lines: Vec<LogLine>,
    clock: i64,
}

impl RecordingHost {
    pub fn logged(&self, level: LogLevel, message_part: &str) -> bool {
        self.lines
            .iter()
            .any(|(l, m, _)| *l == level && m.contains(message_part))
    }
}

impl HostServices for RecordingHost {
    fn log(&mut self, level: LogLevel, message: &str, fields: &[(&str, String)]) {
        self.lines.push((
            level,
            message.to_string(),
            fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        ));
    }

    fn now_ms(&mut self) -> i64 {
        self.clock += 5;
        self.clock
    }
}

pub fn settings() -> Settings {
    Settings {
        tap_base_url: "http://127.0.0.1:9".to_string(),
        create_incidents: false,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 10,
        threat_forensics_allowance: 10,
        credentials: None,
        summarised_threats: Vec::new(),
        queued_summaries: Vec::new(),
        // Off unless a test is about summaries: the others count their
        // TAP requests and compare whole enrichment reports.
        threat_summary_allowance: 0,
        people: Vec::new(),
    }
}

pub fn window() -> Window {
    Window {
        start: "2026-11-28T10:00:00Z".to_string(),
        end: "2026-11-28T11:00:00Z".to_string(),
    }
}

pub fn run_with(
    tap: &mut FakeTap,
    settings: &Settings,
) -> (Result<SyncResult, SyncError>, RecordingHost) {
    let mut host = RecordingHost::default();
    let result = tap_component::sync(settings, &window(), |_| &mut *tap, &mut host);
    (result, host)
}

/// Runs one `map_records` call against `tap`.
pub fn map_records_with(
    tap: &mut FakeTap,
    settings: &Settings,
    records: &[QuarantinedRecord],
) -> (Result<SyncResult, SyncError>, RecordingHost) {
    let mut host = RecordingHost::default();
    let result = tap_component::map_records(settings, records, |_| &mut *tap, &mut host);
    (result, host)
}

/// A quarantined record of `section` whose raw text is `record` as JSON.
pub fn quarantined(section: &str, record: &Value) -> QuarantinedRecord {
    QuarantinedRecord {
        section: section.to_string(),
        raw: record.to_string(),
    }
}

/// Runs a window whose SIEM answer is `body`, with default settings and no
/// enrichment answers, and expects success.
pub fn map_siem(body: Value) -> SyncResult {
    map_siem_with(body, &settings())
}

pub fn map_siem_with(body: Value, settings: &Settings) -> SyncResult {
    let mut tap = FakeTap::siem_json(body);
    let (result, _) = run_with(&mut tap, settings);
    result.expect("the window maps")
}

/// A delivered message as real TAP sends it (docs/tap-api.md, "Message
/// records"), with one URL threat in a campaign, an attachment and a body
/// part.
pub fn message() -> Value {
    json!({
        "GUID": GUID,
        "id": "b614fa76-5b4f-6a7c-7bb3-0b452881de25",
        "QID": "r2FNwRHF004109",
        "messageID": "<20260101.1234@evil.zz>",
        "messageTime": "2026-11-28T10:15:30.000Z",
        "subject": "Invoice overdue",
        "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "senderIP": "192.0.2.10",
        "xmailer": "Spambot v2.5",
        "recipient": ["bruce.wayne@pharmtech.zz"],
        "fromAddress": ["billing@evil.zz"],
        "replyToAddress": ["reply@evil.zz"],
        "toAddresses": ["bruce.wayne@pharmtech.zz"],
        "ccAddresses": ["alfred@pharmtech.zz"],
        "headerFrom": "\"Billing\" <billing@evil.zz>",
        "cluster": "pharmtech_hosted",
        "completelyRewritten": true,
        "spamScore": 4,
        "phishScore": 46,
        "malwareScore": 0,
        "impostorScore": 0.5,
        "messageSize": 5295,
        "quarantineFolder": null,
        "quarantineRule": null,
        "policyRoutes": ["default_inbound", "executives"],
        "modulesRun": ["av", "spam", "urldefense"],
        "threatsInfoMap": [{
            "threatID": THREAT_URL_ID,
            "campaignID": CAMPAIGN_ID,
            "classification": "phish",
            "threat": "http://badguy.zz/login",
            "threatStatus": "active",
            "threatTime": "2026-11-28T10:20:00.000Z",
            "threatType": "url",
            "threatUrl": format!("https://threatinsight.proofpoint.com/org/threat/email/{THREAT_URL_ID}"),
            "detectionType": "URL_DEFENSE"
        }],
        "messageParts": [
            {
                "contentType": "application/pdf",
                "oContentType": "application/pdf",
                "disposition": "attached",
                "filename": "invoice.pdf",
                "md5": "5873c7d37608e0d49bcaa6f32b6c731f",
                "sha256": ATTACHMENT_SHA,
                "sandboxStatus": "threat"
            },
            {
                "contentType": "text/html",
                "disposition": "inline",
                "filename": "text.html",
                "md5": "008c5926ca861023c1d2a36653fd88e2",
                "sha256": "85738f8f9a7f1b04b5329c590ebcb9e425925c6d0984089c43a022de4f19c281",
                "sandboxStatus": null
            }
        ]
    })
}

/// A permitted click on the message's URL threat (docs/tap-api.md, "Click
/// records").
pub fn click() -> Value {
    json!({
        "id": "8c8b4895-a277-449f-9797-547e3c89b25a",
        "GUID": GUID,
        "campaignId": CAMPAIGN_ID,
        "classification": "phish",
        "clickIP": "10.1.2.3",
        "clickTime": "2026-11-28T10:30:00.000Z",
        "messageID": "<20260101.1234@evil.zz>",
        "recipient": "bruce.wayne@pharmtech.zz",
        "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "senderIP": "192.0.2.10",
        "threatID": THREAT_URL_ID,
        "threatStatus": "active",
        "threatTime": "2026-11-28T10:20:00.000Z",
        "threatURL": format!("https://threatinsight.proofpoint.com/org/threat/u/{THREAT_URL_ID}"),
        "url": "http://badguy.zz/login",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0)"
    })
}

pub fn with(mut base: Value, changes: Value) -> Value {
    if let (Some(target), Some(changes)) = (base.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            target.insert(k.clone(), v.clone());
        }
    }
    base
}

pub fn without(mut base: Value, keys: &[&str]) -> Value {
    if let Some(target) = base.as_object_mut() {
        for k in keys {
            target.remove(*k);
        }
    }
    base
}

pub fn delivered(records: Vec<Value>) -> Value {
    json!({ "queryEndTime": "2026-11-28T11:00:00Z", "messagesDelivered": records })
}

pub fn campaign_body() -> Value {
    json!({
        "id": CAMPAIGN_ID,
        "name": "Tordal \"2203_78291\" | US Targeting | URLs",
        "description": "A phishing campaign\r\ntargeting finance.",
        "startDate": "2026-11-20T00:01:00.000Z",
        "notable": false,
        "actors": [{"id": "a1", "name": "TA511"}],
        "malware": [{"id": "m1", "name": "Tordal"}],
        "techniques": [{"id": "t1", "name": "Office VBA Macro"}],
        "families": [{"id": "f1", "name": "Downloader"}],
        "brands": [{"id": "b1", "name": "DocuSign"}],
        "campaignMembers": [
            {"id": "d".repeat(64), "threat": "http://member.zz/a", "type": "url", "subType": "COMPLETE_URL", "threatStatus": "active", "threatTime": "2026-11-20T00:00:00Z"},
            {"id": "e".repeat(64), "threat": "f".repeat(64), "type": "attachment", "subType": "ATTACHMENT", "threatStatus": "falsePositive"}
        ]
    })
}

// ---- reading results ----

pub fn find(
    result: &SyncResult,
    kind: ObjectKind,
    type_name: Option<&str>,
    value: &str,
) -> Option<usize> {
    result.objects.iter().position(|o| {
        o.kind == kind
            && o.value == value
            && (type_name.is_none() || o.type_name.as_deref() == type_name)
    })
}

pub fn indicator(result: &SyncResult, type_name: &str, value: &str) -> Option<usize> {
    find(result, ObjectKind::Indicator, Some(type_name), value)
}

pub fn events<'r>(result: &'r SyncResult, type_name: &str) -> Vec<(usize, &'r ThreatqObject)> {
    result
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == ObjectKind::Event && o.type_name.as_deref() == Some(type_name))
        .collect()
}

pub fn event_titled(result: &SyncResult, prefix: &str) -> Option<usize> {
    result
        .objects
        .iter()
        .position(|o| o.kind == ObjectKind::Event && o.value.starts_with(prefix))
}

pub fn attr<'r>(result: &'r SyncResult, object: usize, name: &str) -> Vec<&'r str> {
    result.objects[object]
        .attributes
        .iter()
        .filter(|a| a.name == name)
        .map(|a| a.value.as_str())
        .collect()
}

pub fn related(result: &SyncResult, a: usize, b: usize) -> bool {
    let (lo, hi) = (a.min(b) as u32, a.max(b) as u32);
    result.relations.iter().any(|r| r.a == lo && r.b == hi)
}

pub fn indicator_values(result: &SyncResult) -> Vec<(&str, &str)> {
    result
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Indicator)
        .map(|o| (o.type_name.as_deref().unwrap_or(""), o.value.as_str()))
        .collect()
}
