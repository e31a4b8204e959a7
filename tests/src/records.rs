//! TAP records in the shape the SIEM API gives them, for tests that write
//! a tenant by hand: a delivered message with one URL threat, and the names
//! its threat gets.

use serde_json::{Value, json};
use time::OffsetDateTime;

pub fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub fn threat_id(name: &str) -> String {
    format!("{name:0>64}")
}

pub fn url(name: &str) -> String {
    format!("https://evil.zz/{name}")
}

/// A delivered message with one campaign-less URL threat `threat`.
pub fn message(guid: &str, at: OffsetDateTime, threat: &str, status: &str) -> Value {
    json!({
        "GUID": guid,
        "id": format!("{guid}-1"),
        "QID": "r2FNwRHF004109",
        "messageTime": ts(at),
        "messageID": format!("<{guid}@mail.example.com>"),
        "recipient": ["victim@example.com"],
        "sender": "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "senderIP": "192.0.2.10",
        "fromAddress": ["billing@evil.zz"],
        "subject": format!("Invoice {guid}"),
        "spamScore": 10, "phishScore": 90, "malwareScore": 0, "impostorScore": 0.0,
        "messageParts": [],
        "threatsInfoMap": [{
            "threatID": threat_id(threat),
            "threat": url(threat),
            "threatType": "url",
            "threatStatus": status,
            "classification": "phish",
            "threatTime": ts(at),
            "threatUrl": "https://threatinsight.proofpoint.com/x/threat/email/1",
            "campaignID": null
        }]
    })
}
