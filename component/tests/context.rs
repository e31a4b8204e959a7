//! Threat summaries and people marks through `sync`, and `read_people`:
//! the context no other TAP integration gives (docs/mapping.md, "Threat
//! summaries", "People").

mod common;

use common::*;
use serde_json::{Value, json};
use tap_component::{
    LogLevel, NamedRef, ObjectKind, PeopleAnswer, PeopleRequest, PersonMark, Settings, SummaryRef,
    SyncError, SyncResult, TapAccess, ThreatRef,
};

fn summarised(result: &SyncResult) -> Vec<&str> {
    result
        .enrichment
        .threats_summarised
        .iter()
        .map(|s| s.threat_id.as_str())
        .collect()
}

fn named(kind: ObjectKind, name: &str) -> NamedRef {
    NamedRef {
        kind,
        name: name.into(),
    }
}

const THREAT_URL: &str = "http://badguy.zz/login";

/// The message with its URL threat in no campaign.
fn campaignless_message() -> Value {
    let mut message = message();
    message["threatsInfoMap"][0]
        .as_object_mut()
        .unwrap()
        .remove("campaignID");
    message
}

fn summary_path(id: &str) -> String {
    format!("/v2/threat/summary/{id}")
}

fn summary_body() -> Value {
    json!({
        "id": THREAT_URL_ID, "identifiedAt": "2026-11-27T08:00:00.000Z", "name": "x",
        "type": "url", "category": "phish", "status": "active",
        "severityScore": "740", "attackSpread": 12, "notable": true,
        "actors": [{"id": "a", "name": "TA4557"}],
        "families": [{"id": "f", "name": "Credential Phishing"}],
        "malware": [{"id": "m", "name": "DarkGate"}],
        "techniques": [{"id": "t", "name": "HTML smuggling"}],
        "brands": null
    })
}

fn with_summaries(allowance: u32) -> Settings {
    Settings {
        threat_summary_allowance: allowance,
        ..settings()
    }
}

#[test]
fn a_campaignless_threat_is_related_to_what_its_summary_names() {
    let mut tap = FakeTap::siem_json(delivered(vec![campaignless_message()])).route(
        &summary_path(THREAT_URL_ID),
        200,
        summary_body(),
    );
    let (result, _) = run_with(&mut tap, &with_summaries(5));
    let result = result.unwrap();
    let url = indicator(&result, "URL", THREAT_URL).unwrap();
    let event = event_titled(&result, "TAP Message").unwrap();
    for (kind, name) in [
        (ObjectKind::Adversary, "TA4557"),
        (ObjectKind::Malware, "DarkGate"),
        (ObjectKind::AttackPattern, "HTML smuggling"),
    ] {
        let object = find(&result, kind, None, name).unwrap_or_else(|| panic!("{name}"));
        assert!(related(&result, url, object), "{name} to the indicator");
        assert!(related(&result, event, object), "{name} to the event");
    }
    assert_eq!(
        attr(&result, url, "Malware Family"),
        ["Credential Phishing"]
    );
    assert_eq!(attr(&result, url, "TAP Severity"), ["740"]);
    assert_eq!(attr(&result, url, "Attack Spread"), ["12"]);
    assert_eq!(attr(&result, url, "Notable"), ["true"]);
    assert_eq!(attr(&result, url, "Threat Category"), ["phish"]);
    assert_eq!(attr(&result, url, "Identified At"), ["2026-11-27 08:00:00"]);
    assert!(
        attr(&result, url, "Targeted Brand").is_empty(),
        "brands: null"
    );
    assert_eq!(summarised(&result), [THREAT_URL_ID]);
    assert_eq!(
        result.enrichment.threats_summarised[0].named,
        [
            named(ObjectKind::Adversary, "TA4557"),
            named(ObjectKind::Malware, "DarkGate"),
            named(ObjectKind::AttackPattern, "HTML smuggling"),
        ]
    );
    assert!(result.enrichment.summaries_deferred.is_empty());
    assert_eq!(result.counters.threat_summary_requests, 1);
    assert_eq!(tap.requests_starting("/v2/threat/summary/").len(), 1);
}

#[test]
fn fresh_threats_are_not_asked_and_a_spent_allowance_defers_with_the_indicator() {
    let body = delivered(vec![campaignless_message()]);
    let mut tap = FakeTap::siem_json(body.clone());
    let fresh = Settings {
        summarised_threats: vec![SummaryRef {
            threat_id: THREAT_URL_ID.to_string(),
            named: vec![named(ObjectKind::Malware, "DarkGate")],
        }],
        ..with_summaries(5)
    };
    let (result, _) = run_with(&mut tap, &fresh);
    let result = result.unwrap();
    assert!(tap.requests_starting("/v2/threat/summary/").is_empty());
    assert!(result.enrichment.threats_summarised.is_empty());
    assert!(result.enrichment.summaries_deferred.is_empty());
    // What the earlier summary named is related as if fetched now.
    let malware = find(&result, ObjectKind::Malware, None, "DarkGate").unwrap();
    let event = event_titled(&result, "TAP Message").unwrap();
    assert!(related(&result, event, malware));
    assert!(related(
        &result,
        indicator(&result, "URL", THREAT_URL).unwrap(),
        malware
    ));

    let mut tap = FakeTap::siem_json(body);
    let (result, _) = run_with(&mut tap, &with_summaries(0));
    let result = result.unwrap();
    assert!(tap.requests_starting("/v2/threat/summary/").is_empty());
    assert_eq!(
        result.enrichment.summaries_deferred,
        [ThreatRef {
            threat_id: THREAT_URL_ID.into(),
            indicator_type: "URL".into(),
            indicator_value: THREAT_URL.into(),
        }]
    );
    assert_eq!(result.counters.threat_summaries_deferred, 1);
}

#[test]
fn a_404_is_an_answer_a_5xx_or_unreadable_body_defers_and_neither_fails_the_window() {
    for (status, body, answered) in [
        (404, json!("threatId not found"), true),
        (
            500,
            json!("The service has encountered an unexpected situation"),
            false,
        ),
        (200, json!(["not", "a", "summary"]), false),
    ] {
        let mut tap = FakeTap::siem_json(delivered(vec![campaignless_message()])).route(
            &summary_path(THREAT_URL_ID),
            status,
            body,
        );
        let (result, _) = run_with(&mut tap, &with_summaries(5));
        let result = result.expect("a failed summary never fails the window");
        assert_eq!(summarised(&result).len(), usize::from(answered), "{status}");
        assert_eq!(
            result.enrichment.summaries_deferred.len(),
            usize::from(!answered),
            "{status}"
        );
        assert!(indicator(&result, "URL", THREAT_URL).is_some());
    }
}

#[test]
fn queued_summaries_come_first_and_map_onto_the_indicator_they_name() {
    let queued = ThreatRef {
        threat_id: "q".repeat(64),
        indicator_type: "SHA-256".into(),
        indicator_value: ATTACHMENT_SHA.into(),
    };
    let mut tap = FakeTap::siem_json(delivered(vec![campaignless_message()]))
        .route(&summary_path(&"q".repeat(64)), 200, summary_body())
        .route(&summary_path(THREAT_URL_ID), 200, summary_body());
    let settings = Settings {
        queued_summaries: vec![queued.clone()],
        ..with_summaries(1)
    };
    let (result, _) = run_with(&mut tap, &settings);
    let result = result.unwrap();
    assert_eq!(
        tap.requests_starting("/v2/threat/summary/"),
        [summary_path(&"q".repeat(64))],
        "the queue first, then the allowance is spent"
    );
    let sha = indicator(&result, "SHA-256", ATTACHMENT_SHA).unwrap();
    let actor = find(&result, ObjectKind::Adversary, None, "TA4557").unwrap();
    assert!(related(&result, sha, actor));
    assert_eq!(attr(&result, sha, "TAP Severity"), ["740"]);
    assert_eq!(summarised(&result), ["q".repeat(64)]);
    assert_eq!(
        result.enrichment.summaries_deferred[0].threat_id,
        THREAT_URL_ID
    );
}

#[test]
fn a_403_from_the_threat_api_stops_only_the_summaries() {
    let other = "b".repeat(64);
    let mut second = campaignless_message();
    second["GUID"] = json!("other-guid");
    second["threatsInfoMap"][0]["threatID"] = json!(other);
    second["threatsInfoMap"][0]["threat"] = json!("http://other.zz/x");
    let mut tap = FakeTap::siem_json(delivered(vec![message(), second]))
        .route(&summary_path(THREAT_URL_ID), 403, json!("not entitled"))
        .campaign(CAMPAIGN_ID, campaign_body());
    let (result, host) = run_with(&mut tap, &with_summaries(5));
    let result = result.unwrap();
    assert_eq!(
        tap.requests_starting("/v2/threat/summary/").len(),
        1,
        "no second summary request after the 403"
    );
    assert_eq!(result.enrichment.summaries_deferred.len(), 2);
    assert_eq!(
        tap.requests_starting("/v2/campaign/").len(),
        1,
        "campaigns go on"
    );
    assert!(host.logged(LogLevel::Warn, "Threat API refused"));
}

#[test]
fn a_401_on_a_summary_stops_all_enrichment_but_the_window_maps() {
    let mut tap = FakeTap::siem_json(delivered(vec![message()])).route(
        &summary_path(THREAT_URL_ID),
        401,
        json!("no"),
    );
    let (result, host) = run_with(&mut tap, &with_summaries(5));
    let result = result.unwrap();
    assert!(tap.requests_starting("/v2/campaign/").is_empty());
    assert_eq!(result.enrichment.campaigns_deferred, [CAMPAIGN_ID]);
    assert_eq!(result.enrichment.summaries_deferred.len(), 1);
    assert!(host.logged(LogLevel::Warn, "enrichment stopped"));
}

fn vap(email: &str, index: u32, vip: bool) -> PersonMark {
    PersonMark {
        email: email.into(),
        very_attacked: Some(index),
        top_clicker: false,
        vip,
    }
}

#[test]
fn message_click_and_incident_events_of_a_listed_recipient_are_marked() {
    let body = json!({
        "queryEndTime": "2026-11-28T11:00:00Z",
        "messagesDelivered": [message()],
        "clicksPermitted": [click()],
    });
    let settings = Settings {
        create_incidents: true,
        people: vec![
            vap("Bruce.Wayne@PharmTech.zz", 2400, true),
            PersonMark {
                email: "bruce.wayne@pharmtech.zz".into(),
                very_attacked: Some(2400),
                top_clicker: true,
                vip: true,
            },
            vap("someone.else@pharmtech.zz", 9000, false),
        ],
        ..settings()
    };
    let result = map_siem_with(body, &settings);
    for prefix in ["TAP Message", "TAP Click Permitted", "TAP Incident"] {
        let event = event_titled(&result, prefix).unwrap_or_else(|| panic!("{prefix}"));
        assert_eq!(
            attr(&result, event, "Very Attacked Person"),
            ["bruce.wayne@pharmtech.zz"],
            "{prefix}"
        );
        assert_eq!(attr(&result, event, "Attack Index"), ["2400"], "{prefix}");
        assert_eq!(
            attr(&result, event, "Top Clicker"),
            ["bruce.wayne@pharmtech.zz"]
        );
        assert_eq!(attr(&result, event, "VIP"), ["bruce.wayne@pharmtech.zz"]);
    }
    assert_eq!(result.counters.people_marked_events, 3);
    // The incident carries the threat as its click does.
    let summarised = Settings {
        create_incidents: true,
        summarised_threats: vec![SummaryRef {
            threat_id: THREAT_URL_ID.into(),
            named: vec![named(ObjectKind::Adversary, "TA4557")],
        }],
        ..common::settings()
    };
    let result = map_siem_with(
        json!({"queryEndTime": "2026-11-28T11:00:00Z", "clicksPermitted": [click()]}),
        &summarised,
    );
    let actor = find(&result, ObjectKind::Adversary, None, "TA4557").unwrap();
    for prefix in ["TAP Click Permitted", "TAP Incident"] {
        assert!(
            related(&result, event_titled(&result, prefix).unwrap(), actor),
            "{prefix}"
        );
    }
    let url = indicator(&result, "URL", THREAT_URL).unwrap();
    assert!(attr(&result, url, "Very Attacked Person").is_empty());
}

// ---- read_people ----

fn people_page(list: &str, users: Vec<Value>, total: usize) -> Value {
    let total_key = if list == "vap" {
        "totalVapUsers"
    } else {
        "totalTopClickers"
    };
    json!({"users": users, total_key: total, "interval": "2026-11-08T10:00:00Z/2026-12-08T10:00:00Z"})
}

fn user(email: &str, score: u32) -> Value {
    json!({"identity": {"emails": [email], "name": "N", "vip": false},
           "threatStatistics": {"attackIndex": score}, "clickStatistics": {"clickCount": score}})
}

fn access() -> TapAccess {
    TapAccess {
        tap_base_url: "http://127.0.0.1:9".into(),
        credentials: None,
    }
}

fn read(tap: &mut FakeTap, request: PeopleRequest) -> PeopleAnswer {
    let mut host = RecordingHost::default();
    tap_component::read_people(&access(), &request, |_| &mut *tap, &mut host)
}

fn request(window_days: u32, allowance: u32) -> PeopleRequest {
    PeopleRequest {
        window_days,
        very_attacked_allowance: allowance,
        top_clickers_allowance: allowance,
    }
}

#[test]
fn both_lists_are_read_page_by_page_until_a_short_page() {
    let vap_users: Vec<Value> = (0..1000)
        .map(|i| user(&format!("v{i}@x.zz"), 5000 - i))
        .collect();
    let mut tap = FakeTap::default()
        .route(
            "/v2/people/vap?window=30&size=1000&page=1",
            200,
            people_page("vap", vap_users, 1001),
        )
        .route(
            "/v2/people/vap?window=30&size=1000&page=2",
            200,
            people_page("vap", vec![user("last@x.zz", 1)], 1001),
        )
        .route(
            "/v2/people/top-clickers?window=30&size=200&page=1",
            200,
            people_page("top", vec![user("C@X.zz", 7)], 1),
        );
    let answer = read(&mut tap, request(30, 50));
    let vap = answer.very_attacked.unwrap();
    assert!(vap.complete);
    assert_eq!(vap.requests, 2);
    assert_eq!(vap.people.len(), 1001);
    assert_eq!(vap.people[0].score, 5000);
    assert_eq!(vap.interval, "2026-11-08T10:00:00Z/2026-12-08T10:00:00Z");
    let top = answer.top_clickers.unwrap();
    assert_eq!(top.people[0].emails, ["c@x.zz"]);
    assert_eq!(top.people[0].score, 7);
    assert_eq!(tap.requests.len(), 3);
}

#[test]
fn a_403_fails_its_list_alone_and_a_spent_allowance_reads_nothing() {
    let mut tap = FakeTap::default()
        .route(
            "/v2/people/vap?window=14&size=1000&page=1",
            403,
            json!("The user is authenticated for the service but is not authorized to access data for the given customer."),
        )
        .route(
            "/v2/people/top-clickers?window=14&size=200&page=1",
            200,
            people_page("top", vec![], 0),
        );
    let answer = read(&mut tap, request(14, 50));
    assert!(matches!(answer.very_attacked, Err(SyncError::Forbidden(_))));
    assert!(answer.top_clickers.unwrap().complete);

    let mut tap = FakeTap::default();
    let answer = read(&mut tap, request(90, 0));
    let vap = answer.very_attacked.unwrap();
    assert!(!vap.complete && vap.people.is_empty() && vap.requests == 0);
    assert!(tap.requests.is_empty());
}

#[test]
fn a_window_tap_does_not_take_fails_both_lists_without_a_request() {
    let mut tap = FakeTap::default();
    let answer = read(&mut tap, request(7, 50));
    for list in [answer.very_attacked, answer.top_clickers] {
        match list {
            Err(SyncError::InvalidInput(why)) => assert!(why.contains("14, 30 or 90"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(tap.requests.is_empty());
}

#[test]
fn a_body_that_is_not_a_people_page_is_a_bad_response() {
    let mut tap = FakeTap::default().route(
        "/v2/people/vap?window=30&size=1000&page=1",
        200,
        json!("<html>"),
    );
    let answer = read(&mut tap, request(30, 50));
    assert!(matches!(
        answer.very_attacked,
        Err(SyncError::BadResponse(_))
    ));
}

#[test]
fn three_failures_in_a_row_stop_the_summaries_for_the_call() {
    let messages: Vec<Value> = (0..6)
        .map(|i| {
            let mut m = campaignless_message();
            m["GUID"] = json!(format!("guid-{i}"));
            m["threatsInfoMap"][0]["threatID"] = json!(format!("{i}").repeat(64));
            m["threatsInfoMap"][0]["threat"] = json!(format!("http://t{i}.zz/x"));
            m
        })
        .collect();
    let mut tap = FakeTap::siem_json(delivered(messages));
    for i in 0..6 {
        tap = tap.route(
            &summary_path(&format!("{i}").repeat(64)),
            502,
            json!("bad gateway"),
        );
    }
    let (result, host) = run_with(&mut tap, &with_summaries(10));
    let result = result.unwrap();
    assert_eq!(tap.requests_starting("/v2/threat/summary/").len(), 3);
    assert_eq!(result.enrichment.summaries_deferred.len(), 6);
    assert!(host.logged(LogLevel::Warn, "several summaries in a row"));
}
