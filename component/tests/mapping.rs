//! One test per rule of `docs/mapping.md`, run through `sync` with a fake
//! TAP so each rule is checked end to end.

mod common;

use common::*;
use serde_json::json;
use tap_component::{ObjectKind, Settings};

// ---- conventions ----

#[test]
fn dates_are_sent_as_utc_yyyy_mm_dd_hh_mm_ss() {
    let r = map_siem(delivered(vec![with(
        message(),
        json!({"messageTime": "2026-11-28T12:15:30.250+02:00"}),
    )]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(
        r.objects[event].happened_at.as_deref(),
        Some("2026-11-28 10:15:30")
    );
}

#[test]
fn the_same_window_maps_to_the_same_result_every_time() {
    let body = json!({"messagesDelivered": [message()], "clicksPermitted": [click()]});
    assert_eq!(map_siem(body.clone()), map_siem(body));
}

#[test]
fn tap_threat_link_is_an_attribute_never_an_indicator() {
    let r = map_siem(json!({"messagesDelivered": [message()], "clicksPermitted": [click()]}));
    let link = format!("https://threatinsight.proofpoint.com/org/threat/email/{THREAT_URL_ID}");
    assert!(
        indicator_values(&r)
            .iter()
            .all(|(_, v)| !v.contains("threatinsight"))
    );
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(attr(&r, event, "TAP Threat Link"), [link.as_str()]);
}

#[test]
fn click_ip_and_user_agent_are_attributes_never_indicators() {
    let r = map_siem(json!({"clicksPermitted": [click()]}));
    assert_eq!(indicator(&r, "IP Address", "10.1.2.3"), None);
    assert!(indicator_values(&r).iter().all(|(t, _)| *t != "User-agent"));
    let event = event_titled(&r, "TAP Click Permitted").unwrap();
    assert_eq!(attr(&r, event, "Click IP"), ["10.1.2.3"]);
    assert_eq!(
        attr(&r, event, "User Agent"),
        ["Mozilla/5.0 (Windows NT 10.0)"]
    );
}

#[test]
fn recipients_are_attributes_never_indicators() {
    let r = map_siem(json!({"messagesDelivered": [message()], "clicksPermitted": [click()]}));
    assert_eq!(
        indicator(&r, "Email Address", "bruce.wayne@pharmtech.zz"),
        None
    );
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(attr(&r, event, "Recipient"), ["bruce.wayne@pharmtech.zz"]);
}

#[test]
fn inline_message_parts_are_attributes_never_indicators() {
    let r = map_siem(delivered(vec![message()]));
    assert_eq!(indicator(&r, "Filename", "text.html"), None);
    assert_eq!(
        indicator(&r, "MD5", "008c5926ca861023c1d2a36653fd88e2"),
        None
    );
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    let parts = attr(&r, event, "Message Body Part");
    assert_eq!(parts.len(), 1);
    assert!(
        parts[0].starts_with("text.html (text/html) SHA-256 85738f8f"),
        "{parts:?}"
    );
}

#[test]
fn a_body_part_keeps_its_hash_exactly_as_tap_sent_it() {
    let mut body = message();
    body["messageParts"][1]["sha256"] = json!("85738F8F-NOT-A-SHA256");
    let r = map_siem(delivered(vec![body]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(
        attr(&r, event, "Message Body Part"),
        ["text.html (text/html) SHA-256 85738F8F-NOT-A-SHA256"]
    );
    assert!(
        indicator_values(&r)
            .iter()
            .all(|(_, v)| !v.contains("85738F8F")),
        "an inline part's hash never becomes an indicator"
    );
}

#[test]
fn false_positive_threat_is_never_an_indicator_but_stays_an_event_attribute() {
    let fp = with(
        message(),
        json!({"threatsInfoMap": [{
            "threatID": THREAT_URL_ID, "threat": "http://benign.zz/", "threatType": "url",
            "threatStatus": "falsePositive", "classification": "phish"
        }]}),
    );
    let r = map_siem(delivered(vec![fp]));
    assert_eq!(indicator(&r, "URL", "http://benign.zz/"), None);
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(attr(&r, event, "Threat Status"), ["falsePositive"]);
    assert_eq!(attr(&r, event, "Threat ID"), [THREAT_URL_ID]);
    assert_eq!(r.counters.false_positives, 1);
}

#[test]
fn a_false_positive_in_one_record_keeps_the_same_threat_out_of_every_record() {
    let fp_click = with(click(), json!({"threatStatus": "falsePositive"}));
    let r = map_siem(json!({"messagesDelivered": [message()], "clicksPermitted": [fp_click]}));
    assert_eq!(indicator(&r, "URL", "http://badguy.zz/login"), None);
}

// ---- messages ----

#[test]
fn per_recipient_copies_fold_into_one_event() {
    let first = message();
    let second = with(
        message(),
        json!({"id": "second-copy", "recipient": ["robin@pharmtech.zz"]}),
    );
    let r = map_siem(delivered(vec![first, second]));
    let events = events(&r, "Spearphish");
    assert_eq!(events.len(), 1);
    assert_eq!(
        attr(&r, events[0].0, "Recipient"),
        ["bruce.wayne@pharmtech.zz", "robin@pharmtech.zz"]
    );
    assert_eq!(r.record_keys.len(), 2, "each copy keeps its own key");
}

#[test]
fn message_event_is_spearphish_titled_with_disposition_subject_and_guid() {
    let r = map_siem(json!({"messagesDelivered": [message()], "messagesBlocked": [message()]}));
    let delivered = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(
        r.objects[delivered].value,
        format!("TAP Message Delivered: Invoice overdue [{GUID}]")
    );
    assert_eq!(
        r.objects[delivered].type_name.as_deref(),
        Some("Spearphish")
    );
    let blocked = event_titled(&r, "TAP Message Blocked").unwrap();
    assert_eq!(
        r.objects[blocked].value,
        format!("TAP Message Blocked: Invoice overdue [{GUID}]")
    );
    assert_eq!(attr(&r, delivered, "Disposition"), ["Delivered"]);
    assert_eq!(attr(&r, blocked, "Disposition"), ["Blocked"]);
}

#[test]
fn empty_subject_is_titled_no_subject() {
    for subject in [json!(""), json!(null), json!("  ")] {
        let r = map_siem(delivered(vec![with(
            message(),
            json!({"subject": subject}),
        )]));
        let event = event_titled(&r, "TAP Message Delivered").unwrap();
        assert_eq!(
            r.objects[event].value,
            format!("TAP Message Delivered: (no subject) [{GUID}]")
        );
        assert!(
            indicator_values(&r)
                .iter()
                .all(|(t, _)| *t != "Email Subject")
        );
    }
}

#[test]
fn message_happened_at_is_message_time() {
    let r = map_siem(delivered(vec![message()]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert_eq!(
        r.objects[event].happened_at.as_deref(),
        Some("2026-11-28 10:15:30")
    );
}

#[test]
fn message_event_carries_every_listed_attribute() {
    let blocked = with(
        message(),
        json!({"quarantineFolder": "Phish", "quarantineRule": "module.sandbox.threat"}),
    );
    let r = map_siem(json!({"messagesBlocked": [blocked]}));
    let e = event_titled(&r, "TAP Message Blocked").unwrap();
    let expect: &[(&str, &[&str])] = &[
        ("Message GUID", &[GUID]),
        ("Message ID", &["<20260101.1234@evil.zz>"]),
        ("QID", &["r2FNwRHF004109"]),
        ("Recipient", &["bruce.wayne@pharmtech.zz"]),
        ("Sender", &["e99d7ed5580193f36a51f597bc2c0210@evil.zz"]),
        ("Sender IP", &["192.0.2.10"]),
        ("From", &["billing@evil.zz"]),
        ("Reply-To", &["reply@evil.zz"]),
        ("To", &["bruce.wayne@pharmtech.zz"]),
        ("CC", &["alfred@pharmtech.zz"]),
        ("Spam Score", &["4"]),
        ("Phish Score", &["46"]),
        ("Malware Score", &["0"]),
        ("Impostor Score", &["0.5"]),
        ("Quarantine Folder", &["Phish"]),
        ("Quarantine Rule", &["module.sandbox.threat"]),
        ("Policy Route", &["default_inbound", "executives"]),
        ("Module Run", &["av", "spam", "urldefense"]),
        ("Cluster", &["pharmtech_hosted"]),
        ("Completely Rewritten", &["true"]),
        ("Message Size", &["5295"]),
        ("Disposition", &["Blocked"]),
        ("Classification", &["phish"]),
        ("Threat ID", &[THREAT_URL_ID]),
        ("Threat Status", &["active"]),
        ("Campaign ID", &[CAMPAIGN_ID]),
    ];
    for (name, values) in expect {
        assert_eq!(&attr(&r, e, name), values, "attribute {name}");
    }
}

#[test]
fn sender_from_and_reply_to_become_related_email_address_indicators() {
    let r = map_siem(delivered(vec![message()]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    for address in [
        "e99d7ed5580193f36a51f597bc2c0210@evil.zz",
        "billing@evil.zz",
        "reply@evil.zz",
    ] {
        let i = indicator(&r, "Email Address", address).unwrap_or_else(|| panic!("{address}"));
        assert!(related(&r, event, i), "{address} related to the event");
    }
}

#[test]
fn sender_ip_becomes_ip_address_or_ipv6_address() {
    let r = map_siem(delivered(vec![message()]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert!(related(
        &r,
        event,
        indicator(&r, "IP Address", "192.0.2.10").unwrap()
    ));
    let r = map_siem(delivered(vec![with(
        message(),
        json!({"senderIP": "2001:db8::25"}),
    )]));
    assert!(indicator(&r, "IPv6 Address", "2001:db8::25").is_some());
}

#[test]
fn subject_becomes_email_subject_and_xmailer_becomes_x_mailer() {
    let r = map_siem(delivered(vec![message()]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    assert!(related(
        &r,
        event,
        indicator(&r, "Email Subject", "Invoice overdue").unwrap()
    ));
    assert!(related(
        &r,
        event,
        indicator(&r, "X-Mailer", "Spambot v2.5").unwrap()
    ));
}

#[test]
fn url_threat_becomes_url_indicator_with_threat_attributes() {
    let r = map_siem(delivered(vec![message()]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    let url = indicator(&r, "URL", "http://badguy.zz/login").unwrap();
    assert!(related(&r, event, url));
    assert_eq!(attr(&r, url, "Classification"), ["phish"]);
    assert_eq!(attr(&r, url, "Threat ID"), [THREAT_URL_ID]);
    assert_eq!(attr(&r, url, "Threat Status"), ["active"]);
    assert_eq!(attr(&r, url, "Campaign ID"), [CAMPAIGN_ID]);
    assert_eq!(attr(&r, url, "Detection Type"), ["URL_DEFENSE"]);
    assert_eq!(attr(&r, url, "TAP Threat Link").len(), 1);
}

#[test]
fn attachment_threat_becomes_sha256_indicator() {
    let m = with(
        message(),
        json!({"threatsInfoMap": [{
            "threatID": ATTACHMENT_SHA, "threat": ATTACHMENT_SHA.to_uppercase(), "threatType": "attachment",
            "threatStatus": "active", "classification": "malware"
        }]}),
    );
    let r = map_siem(delivered(vec![m]));
    let sha = indicator(&r, "SHA-256", ATTACHMENT_SHA).unwrap();
    assert_eq!(attr(&r, sha, "Classification"), ["malware"]);
    assert!(related(&r, event_titled(&r, "TAP Message").unwrap(), sha));
}

#[test]
fn message_text_threat_is_an_email_address_only_when_it_is_an_address() {
    let threat = |value: &str| {
        with(
            message(),
            json!({"threatsInfoMap": [{
                "threatID": "c".repeat(64), "threat": value, "threatType": "messageText",
                "threatStatus": "active", "classification": "impostor"
            }]}),
        )
    };
    let r = map_siem(delivered(vec![threat("ceo@impostor.zz")]));
    assert!(indicator(&r, "Email Address", "ceo@impostor.zz").is_some());
    let r = map_siem(delivered(vec![threat("CEO Name")]));
    assert!(indicator_values(&r).iter().all(|(_, v)| *v != "CEO Name"));
    let event = event_titled(&r, "TAP Message").unwrap();
    assert_eq!(attr(&r, event, "Classification"), ["impostor"]);
}

#[test]
fn attached_parts_become_md5_sha256_and_filename_with_content_type_and_sandbox_status() {
    let r = map_siem(delivered(vec![message()]));
    let event = event_titled(&r, "TAP Message Delivered").unwrap();
    let md5 = indicator(&r, "MD5", "5873c7d37608e0d49bcaa6f32b6c731f").unwrap();
    let sha = indicator(&r, "SHA-256", ATTACHMENT_SHA).unwrap();
    let name = indicator(&r, "Filename", "invoice.pdf").unwrap();
    for i in [md5, sha, name] {
        assert!(related(&r, event, i));
        assert_eq!(attr(&r, i, "Content Type"), ["application/pdf"]);
        assert_eq!(attr(&r, i, "Sandbox Status"), ["threat"]);
    }
    assert!(
        related(&r, md5, sha) && related(&r, sha, name),
        "one file's indicators relate"
    );
}

// ---- clicks ----

#[test]
fn each_click_id_is_one_spearphish_event_titled_with_url_and_id() {
    let second = with(click(), json!({"id": "second-click"}));
    let r = map_siem(
        json!({"clicksPermitted": [click(), click(), second], "clicksBlocked": [with(click(), json!({"id": "blocked-1"}))]}),
    );
    let permitted = events(&r, "Spearphish");
    assert_eq!(permitted.len(), 3);
    let event = event_titled(&r, "TAP Click Permitted").unwrap();
    assert_eq!(
        r.objects[event].value,
        "TAP Click Permitted: http://badguy.zz/login [8c8b4895-a277-449f-9797-547e3c89b25a]"
    );
    assert_eq!(
        r.objects[event].happened_at.as_deref(),
        Some("2026-11-28 10:30:00")
    );
    let blocked = event_titled(&r, "TAP Click Blocked").unwrap();
    assert_eq!(
        r.objects[blocked].value,
        "TAP Click Blocked: http://badguy.zz/login [blocked-1]"
    );
    assert_eq!(attr(&r, blocked, "Disposition"), ["Blocked"]);
}

#[test]
fn click_without_id_is_identified_by_guid_threat_and_click_time() {
    let r = map_siem(json!({"clicksPermitted": [without(click(), &["id"])]}));
    let event = event_titled(&r, "TAP Click Permitted").unwrap();
    assert_eq!(
        r.objects[event].value,
        format!("TAP Click Permitted: http://badguy.zz/login [{GUID}:{THREAT_URL_ID}]")
    );
    assert_eq!(
        r.record_keys[0].key,
        format!("c:{GUID}:{THREAT_URL_ID}:2026-11-28T10:30:00.000Z")
    );
}

#[test]
fn click_event_carries_every_listed_attribute() {
    let r = map_siem(json!({"clicksPermitted": [click()]}));
    let e = event_titled(&r, "TAP Click Permitted").unwrap();
    let expect: &[(&str, &str)] = &[
        ("Recipient", "bruce.wayne@pharmtech.zz"),
        ("Click IP", "10.1.2.3"),
        ("User Agent", "Mozilla/5.0 (Windows NT 10.0)"),
        ("Click ID", "8c8b4895-a277-449f-9797-547e3c89b25a"),
        ("Message GUID", GUID),
        ("Message ID", "<20260101.1234@evil.zz>"),
        ("Classification", "phish"),
        ("Threat ID", THREAT_URL_ID),
        ("Threat Status", "active"),
        ("Campaign ID", CAMPAIGN_ID),
        ("Disposition", "Permitted"),
    ];
    for (name, value) in expect {
        assert_eq!(attr(&r, e, name), [*value], "attribute {name}");
    }
    assert_eq!(attr(&r, e, "TAP Threat Link").len(), 1);
}

#[test]
fn click_url_sender_ip_and_sender_become_related_indicators() {
    let r = map_siem(json!({"clicksPermitted": [click()]}));
    let e = event_titled(&r, "TAP Click Permitted").unwrap();
    assert!(related(
        &r,
        e,
        indicator(&r, "URL", "http://badguy.zz/login").unwrap()
    ));
    assert!(related(
        &r,
        e,
        indicator(&r, "IP Address", "192.0.2.10").unwrap()
    ));
    assert!(related(
        &r,
        e,
        indicator(
            &r,
            "Email Address",
            "e99d7ed5580193f36a51f597bc2c0210@evil.zz"
        )
        .unwrap()
    ));
}

#[test]
fn click_relates_to_the_message_event_with_the_same_guid() {
    let other = with(click(), json!({"id": "other", "GUID": "another-guid"}));
    let r =
        map_siem(json!({"messagesDelivered": [message()], "clicksPermitted": [click(), other]}));
    let message_event = event_titled(&r, "TAP Message Delivered").unwrap();
    let click_event =
        event_titled(&r, "TAP Click Permitted: http://badguy.zz/login [8c8b").unwrap();
    let other_event =
        event_titled(&r, "TAP Click Permitted: http://badguy.zz/login [other]").unwrap();
    assert!(related(&r, message_event, click_event));
    assert!(!related(&r, message_event, other_event));
}

#[test]
fn event_titles_are_one_line_whatever_tap_put_in_them() {
    let hostile = with(
        click(),
        json!({
            "url": "http://badguy.zz/login\r\nTAP Click Blocked: forged\u{1b}[2J",
            "recipient": ["bruce.wayne@pharmtech.zz\n\u{85}\u{2028}x"],
            "id": "click\tid\u{7f}"
        }),
    );
    let message = with(message(), json!({"GUID": "guid\u{9b}31m\n"}));
    let mut tap =
        FakeTap::siem_json(json!({"clicksPermitted": [hostile], "messagesDelivered": [message]}));
    let (r, _) = run_with(&mut tap, &incidents_on());
    let r = r.unwrap();
    let titles: Vec<&str> = r
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Event)
        .map(|o| o.value.as_str())
        .collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    for title in &titles {
        assert!(
            !title
                .chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
            "{title:?}"
        );
    }
    assert!(
        titles.contains(
            &"TAP Click Permitted: http://badguy.zz/login  TAP Click Blocked: forged [2J [click id ]"
        ),
        "{titles:?}"
    );
    assert!(
        titles.contains(
            &"TAP Incident: bruce.wayne@pharmtech.zz   x clicked http://badguy.zz/login  TAP Click Blocked: forged [2J [click id ]"
        ),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"TAP Message Delivered: Invoice overdue [guid 31m]"),
        "{titles:?}"
    );
}

// ---- incidents ----

fn incidents_on() -> Settings {
    Settings {
        create_incidents: true,
        ..settings()
    }
}

#[test]
fn permitted_click_also_becomes_an_incident_when_the_setting_is_on() {
    let mut tap = FakeTap::siem_json(json!({"clicksPermitted": [click()]}))
        .campaign(CAMPAIGN_ID, campaign_body());
    let (r, _) = run_with(&mut tap, &incidents_on());
    let r = r.unwrap();
    let incidents = events(&r, "Incident");
    assert_eq!(incidents.len(), 1);
    let (i, incident) = incidents[0];
    assert_eq!(
        incident.value,
        "TAP Incident: bruce.wayne@pharmtech.zz clicked http://badguy.zz/login [8c8b4895-a277-449f-9797-547e3c89b25a]"
    );
    assert_eq!(incident.happened_at.as_deref(), Some("2026-11-28 10:30:00"));
    let click_event = event_titled(&r, "TAP Click Permitted").unwrap();
    assert_eq!(
        incident.attributes, r.objects[click_event].attributes,
        "the click's attributes"
    );
    assert!(related(&r, i, click_event));
    assert!(related(
        &r,
        i,
        indicator(&r, "URL", "http://badguy.zz/login").unwrap()
    ));
    let campaign = find(
        &r,
        ObjectKind::Campaign,
        None,
        "Tordal \"2203_78291\" | US Targeting | URLs",
    )
    .unwrap();
    assert!(related(&r, i, campaign));
}

#[test]
fn blocked_clicks_never_create_incidents() {
    let r = map_siem_with(json!({"clicksBlocked": [click()]}), &incidents_on());
    assert!(events(&r, "Incident").is_empty());
}

#[test]
fn no_incidents_are_created_when_the_setting_is_off() {
    let r = map_siem(json!({"clicksPermitted": [click()]}));
    assert!(events(&r, "Incident").is_empty());
}

// ---- campaigns ----

fn with_campaign() -> tap_component::SyncResult {
    let mut tap =
        FakeTap::siem_json(json!({"messagesDelivered": [message()], "clicksPermitted": [click()]}))
            .campaign(CAMPAIGN_ID, campaign_body());
    let (r, _) = run_with(&mut tap, &settings());
    r.unwrap()
}

const CAMPAIGN_NAME: &str = "Tordal \"2203_78291\" | US Targeting | URLs";

#[test]
fn campaign_becomes_a_campaign_object_named_by_its_name_with_description_and_attributes() {
    let r = with_campaign();
    let c = find(&r, ObjectKind::Campaign, None, CAMPAIGN_NAME).unwrap();
    assert_eq!(
        r.objects[c].description.as_deref(),
        Some("A phishing campaign\r\ntargeting finance.")
    );
    assert_eq!(attr(&r, c, "Campaign ID"), [CAMPAIGN_ID]);
    assert_eq!(attr(&r, c, "Start Date"), ["2026-11-20 00:01:00"]);
    assert_eq!(attr(&r, c, "Notable"), ["false"]);
    assert_eq!(attr(&r, c, "Malware Family"), ["Downloader"]);
    assert_eq!(attr(&r, c, "Targeted Brand"), ["DocuSign"]);
}

#[test]
fn campaign_actors_malware_and_techniques_become_related_objects() {
    let r = with_campaign();
    let c = find(&r, ObjectKind::Campaign, None, CAMPAIGN_NAME).unwrap();
    for (kind, name) in [
        (ObjectKind::Adversary, "TA511"),
        (ObjectKind::Malware, "Tordal"),
        (ObjectKind::AttackPattern, "Office VBA Macro"),
    ] {
        let o = find(&r, kind, None, name).unwrap_or_else(|| panic!("{name}"));
        assert!(related(&r, c, o), "{name} related to the campaign");
    }
}

#[test]
fn campaign_members_become_related_indicators_except_false_positives() {
    let r = with_campaign();
    let c = find(&r, ObjectKind::Campaign, None, CAMPAIGN_NAME).unwrap();
    let member = indicator(&r, "URL", "http://member.zz/a").unwrap();
    assert!(related(&r, c, member));
    assert_eq!(attr(&r, member, "Threat ID"), ["d".repeat(64).as_str()]);
    assert_eq!(attr(&r, member, "Threat Status"), ["active"]);
    assert_eq!(attr(&r, member, "Sub Type"), ["COMPLETE_URL"]);
    assert_eq!(indicator(&r, "SHA-256", &"f".repeat(64)), None);
}

#[test]
fn every_event_and_indicator_naming_the_campaign_relates_to_it() {
    let r = with_campaign();
    let c = find(&r, ObjectKind::Campaign, None, CAMPAIGN_NAME).unwrap();
    assert!(related(
        &r,
        c,
        event_titled(&r, "TAP Message Delivered").unwrap()
    ));
    assert!(related(
        &r,
        c,
        event_titled(&r, "TAP Click Permitted").unwrap()
    ));
    assert!(related(
        &r,
        c,
        indicator(&r, "URL", "http://badguy.zz/login").unwrap()
    ));
    assert!(!related(
        &r,
        c,
        indicator(&r, "Email Subject", "Invoice overdue").unwrap()
    ));
    assert_eq!(
        r.campaigns_fetched,
        [tap_component::CampaignRef {
            id: CAMPAIGN_ID.into(),
            name: CAMPAIGN_NAME.into()
        }]
    );
}

// ---- forensics ----

fn forensics_report(
    scope: &str,
    id: &str,
    name: &str,
    evidence: serde_json::Value,
) -> serde_json::Value {
    json!({"generated": "2026-11-28T11:00:00Z", "reports": [{"scope": scope, "id": id, "name": name, "threatStatus": "active", "forensics": evidence}]})
}

#[test]
fn forensic_indicators_relate_to_the_threat_indicator_and_its_campaign() {
    let evidence = json!([
        {"type": "dns", "malicious": true, "what": {"host": "c2.evil.zz", "ips": ["198.51.100.7"]}},
        {"type": "network", "malicious": false, "what": {"ip": "203.0.113.1", "port": 443, "type": "tcp"}}
    ]);
    let mut tap = FakeTap::siem_json(delivered(vec![message()]))
        .campaign(CAMPAIGN_ID, campaign_body())
        .campaign_forensics(
            CAMPAIGN_ID,
            forensics_report("THREAT", THREAT_URL_ID, "http://badguy.zz/login", evidence),
        );
    let (r, _) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    let threat = indicator(&r, "URL", "http://badguy.zz/login").unwrap();
    let campaign = find(&r, ObjectKind::Campaign, None, CAMPAIGN_NAME).unwrap();
    for (t, v) in [("FQDN", "c2.evil.zz"), ("IP Address", "198.51.100.7")] {
        let i = indicator(&r, t, v).unwrap();
        assert!(related(&r, i, threat) && related(&r, i, campaign), "{v}");
    }
    assert_eq!(
        indicator(&r, "IP Address", "203.0.113.1"),
        None,
        "benign evidence is dropped"
    );
    assert_eq!(
        (r.counters.evidence_used, r.counters.evidence_dropped),
        (1, 1)
    );
}

#[test]
fn threat_forensics_evidence_hangs_on_the_threat_indicator() {
    let no_campaign = with(
        message(),
        json!({"threatsInfoMap": [{
            "threatID": THREAT_URL_ID, "threat": "http://badguy.zz/login", "threatType": "url", "threatStatus": "active"
        }]}),
    );
    let evidence = json!([
        {"type": "behavior", "malicious": true, "note": "Drops a script", "what": {"rule": "x"}},
        {"type": "ids", "malicious": true, "what": {"name": "ET TROJAN Beacon", "signatureId": 2000001}}
    ]);
    let mut tap = FakeTap::siem_json(delivered(vec![no_campaign])).threat_forensics(
        THREAT_URL_ID,
        forensics_report("THREAT", THREAT_URL_ID, "http://badguy.zz/login", evidence),
    );
    let (r, _) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    let threat = indicator(&r, "URL", "http://badguy.zz/login").unwrap();
    assert_eq!(attr(&r, threat, "Behavior"), ["Drops a script"]);
    assert_eq!(attr(&r, threat, "IDS Signature"), ["ET TROJAN Beacon"]);
    assert_eq!(r.counters.threat_forensics_requests, 1);
}

#[test]
fn a_report_for_a_threat_not_otherwise_known_gets_its_indicator_from_the_report_name() {
    let evidence = json!([{"type": "mutex", "malicious": true, "what": {"name": "Global\\evil"}}]);
    let other_threat = "a".repeat(64);
    let mut tap = FakeTap::siem_json(delivered(vec![message()]))
        .campaign(CAMPAIGN_ID, campaign_body())
        .campaign_forensics(
            CAMPAIGN_ID,
            forensics_report(
                "THREAT",
                &other_threat,
                &ATTACHMENT_SHA.to_uppercase(),
                evidence,
            ),
        );
    let (r, _) = run_with(&mut tap, &settings());
    let r = r.unwrap();
    let from_report = indicator(&r, "SHA-256", ATTACHMENT_SHA).unwrap();
    assert_eq!(attr(&r, from_report, "Threat ID"), [other_threat.as_str()]);
    let mutex = indicator(&r, "Mutex", "Global\\evil").unwrap();
    assert!(related(&r, mutex, from_report));
}
