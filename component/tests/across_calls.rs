//! What one call hands the host so data stays right across calls
//! (docs/sync.md, "Across windows and runs"; docs/mapping.md, "Verdict
//! changes"): message events and the clicks whose message is elsewhere,
//! enrichment done, queued and deferred, and later verdicts.

mod common;

use common::*;
use serde_json::json;
use tap_component::{Settings, VerdictStatus};

fn message_without_campaign(n: usize, status: &str) -> serde_json::Value {
    with(
        message(),
        json!({"GUID": format!("lone-{n}"), "messageParts": [], "threatsInfoMap": [{
            "threatID": format!("t{n:063}"), "threat": format!("http://lone{n}.zz/"),
            "threatType": "url", "threatStatus": status
        }]}),
    )
}

fn threat_id(n: usize) -> String {
    format!("t{n:063}")
}

#[test]
fn a_click_whose_message_is_in_the_call_is_related_to_it_and_not_handed_out() {
    let s = Settings {
        create_incidents: true,
        ..settings()
    };
    let r = map_siem_with(
        json!({"messagesDelivered": [message()], "clicksPermitted": [click()]}),
        &s,
    );
    let message_event = event_titled(&r, "TAP Message Delivered").unwrap();
    let click_event = event_titled(&r, "TAP Click Permitted").unwrap();
    let incident = event_titled(&r, "TAP Incident").unwrap();
    assert!(related(&r, click_event, message_event));
    assert!(
        related(&r, incident, message_event),
        "the incident belongs to the message too"
    );
    assert!(r.unresolved_messages.is_empty());
    assert_eq!(r.message_events.len(), 1);
    assert_eq!(r.message_events[0].guid, GUID);
    assert_eq!(r.message_events[0].object as usize, message_event);
}

#[test]
fn a_click_whose_message_is_elsewhere_is_handed_out_with_its_incident() {
    let s = Settings {
        create_incidents: true,
        ..settings()
    };
    let r = map_siem_with(json!({"clicksPermitted": [click()]}), &s);
    let click_event = event_titled(&r, "TAP Click Permitted").unwrap();
    let incident = event_titled(&r, "TAP Incident").unwrap();
    let mut unresolved: Vec<(&str, usize)> = r
        .unresolved_messages
        .iter()
        .map(|l| (l.guid.as_str(), l.object as usize))
        .collect();
    unresolved.sort();
    let mut expected = vec![(GUID, click_event), (GUID, incident)];
    expected.sort();
    assert_eq!(unresolved, expected);
    assert!(r.message_events.is_empty());
    assert_eq!(
        attr(&r, click_event, "Message GUID"),
        [GUID],
        "the GUID stays an attribute"
    );
}

#[test]
fn a_false_positive_is_a_verdict_for_its_indicator_and_never_an_indicator() {
    let r = map_siem(delivered(vec![message_without_campaign(
        1,
        "falsePositive",
    )]));
    assert!(indicator(&r, "URL", "http://lone1.zz/").is_none());
    assert_eq!(r.verdicts.len(), 1, "{:?}", r.verdicts);
    let v = &r.verdicts[0];
    assert_eq!(v.status, VerdictStatus::FalsePositive);
    assert_eq!(
        (v.indicator_type.as_str(), v.indicator_value.as_str()),
        ("URL", "http://lone1.zz/")
    );
    assert_eq!(v.threat_id, threat_id(1));
}

#[test]
fn a_cleared_threat_keeps_its_indicator_and_is_a_verdict() {
    let r = map_siem(delivered(vec![message_without_campaign(2, "cleared")]));
    let url = indicator(&r, "URL", "http://lone2.zz/").expect("a cleared threat is an indicator");
    assert_eq!(attr(&r, url, "Threat Status"), ["cleared"]);
    assert_eq!(r.verdicts.len(), 1);
    assert_eq!(r.verdicts[0].status, VerdictStatus::Cleared);
}

#[test]
fn false_positive_wins_when_records_of_one_call_disagree_and_active_threats_are_verdicts_too() {
    let r = map_siem(delivered(vec![
        message_without_campaign(3, "cleared"),
        with(
            message_without_campaign(3, "falsePositive"),
            json!({"GUID": "other"}),
        ),
        message_without_campaign(4, "active"),
    ]));
    let verdicts: Vec<(&str, VerdictStatus)> = r
        .verdicts
        .iter()
        .map(|v| (v.indicator_value.as_str(), v.status))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("http://lone3.zz/", VerdictStatus::FalsePositive),
            ("http://lone4.zz/", VerdictStatus::Active)
        ]
    );
}

/// Message `n`'s threat with `status`, given at `threat_time`.
fn message_at(n: usize, guid: &str, status: &str, threat_time: &str) -> serde_json::Value {
    let mut message = with(message_without_campaign(n, status), json!({"GUID": guid}));
    message["threatsInfoMap"][0]["threatTime"] = json!(threat_time);
    message
}

#[test]
fn a_threats_latest_word_by_threat_time_is_its_verdict_whatever_the_order() {
    // TAP serves the threat again at each change: falsePositive, then
    // active again, in one window (the records in either order).
    let records = vec![
        message_at(7, "first", "active", "2026-11-28T10:00:00Z"),
        message_at(7, "first", "falsePositive", "2026-11-28T10:20:00Z"),
        message_at(7, "first", "active", "2026-11-28T10:40:00Z"),
    ];
    for order in [records.clone(), records.iter().rev().cloned().collect()] {
        let r = map_siem(delivered(order));
        assert_eq!(r.verdicts.len(), 1, "{:?}", r.verdicts);
        let v = &r.verdicts[0];
        assert_eq!(v.status, VerdictStatus::Active);
        assert_eq!(v.threat_id, threat_id(7));
        assert_eq!(
            v.threat_time_ms, 1_795_862_400_000,
            "10:40, the latest word"
        );
    }
    // Ending on falsePositive instead.
    let r = map_siem(delivered(vec![
        message_at(7, "first", "active", "2026-11-28T10:40:00Z"),
        message_at(7, "first", "falsePositive", "2026-11-28T10:50:00Z"),
    ]));
    assert_eq!(r.verdicts[0].status, VerdictStatus::FalsePositive);
    assert_eq!(r.verdicts[0].threat_time_ms, 1_795_863_000_000);
    // No readable threatTime: the record's own time (messageTime 10:15:30).
    let r = map_siem(delivered(vec![message_at(7, "first", "cleared", "soon")]));
    assert_eq!(r.verdicts[0].threat_time_ms, 1_795_860_930_000);
}

#[test]
fn records_already_sent_still_give_their_threats_word() {
    // The threat turned active again: TAP serves it under the key its
    // first, active, record had, which the host may still hold as sent.
    let first = map_siem(delivered(vec![message_without_campaign(8, "active")]));
    let key = first.record_keys[0].key.clone();
    let again = map_siem_with(
        delivered(vec![message_at(
            8,
            "lone-8",
            "active",
            "2026-11-28T10:59:00Z",
        )]),
        &Settings {
            already_sent: vec![key],
            ..settings()
        },
    );
    assert_eq!(again.counters.already_sent_skipped, 1);
    assert!(again.objects.is_empty(), "nothing is sent again");
    assert_eq!(again.verdicts.len(), 1, "{:?}", again.verdicts);
    assert_eq!(again.verdicts[0].status, VerdictStatus::Active);
    assert_eq!(again.verdicts[0].indicator_value, "http://lone8.zz/");
    assert_eq!(again.verdicts[0].threat_time_ms, 1_795_863_540_000);
}

#[test]
fn an_indicator_another_threat_still_condemns_is_not_cleared() {
    // Two threats stand for the same URL: one cleared later, one still
    // active. The indicator's verdict is active, at the later time.
    let mut other = message_at(9, "other", "active", "2026-11-28T10:00:00Z");
    other["threatsInfoMap"][0]["threatID"] = json!(threat_id(10));
    let r = map_siem(delivered(vec![
        message_at(9, "first", "cleared", "2026-11-28T10:30:00Z"),
        other,
    ]));
    assert_eq!(r.verdicts.len(), 1, "{:?}", r.verdicts);
    assert_eq!(r.verdicts[0].status, VerdictStatus::Active);
    assert_eq!(r.verdicts[0].threat_id, threat_id(10));
    assert_eq!(r.verdicts[0].threat_time_ms, 1_795_861_800_000);
}

#[test]
fn a_record_served_again_with_a_new_verdict_has_a_key_of_its_own() {
    let active = map_siem(delivered(vec![message_without_campaign(5, "active")]));
    let changed = map_siem(delivered(vec![message_without_campaign(
        5,
        "falsePositive",
    )]));
    let key = |r: &tap_component::SyncResult| r.record_keys[0].key.clone();
    assert_eq!(
        key(&active),
        "m:lone-5:b614fa76-5b4f-6a7c-7bb3-0b452881de25",
        "all-active keys are those of earlier versions"
    );
    assert_eq!(key(&changed), format!("{}|falsePositive", key(&active)));
    let skipped = map_siem_with(
        delivered(vec![message_without_campaign(5, "falsePositive")]),
        &Settings {
            already_sent: vec![key(&active)],
            ..settings()
        },
    );
    assert_eq!(
        skipped.counters.already_sent_skipped, 0,
        "the changed copy is not the record already sent"
    );
    let click_key =
        map_siem(json!({"clicksBlocked": [with(click(), json!({"threatStatus": "cleared"}))]}))
            .record_keys[0]
            .key
            .clone();
    assert_eq!(click_key, "c:8c8b4895-a277-449f-9797-547e3c89b25a|cleared");
}

#[test]
fn fresh_threats_are_not_asked_again_and_queued_ones_are_asked_first() {
    let s = Settings {
        fresh_threats: vec![threat_id(1)],
        queued_threats: vec![threat_id(9), threat_id(8)],
        threat_forensics_allowance: 3,
        ..settings()
    };
    let mut tap = FakeTap::siem_json(delivered(vec![
        message_without_campaign(1, "active"),
        message_without_campaign(2, "active"),
        message_without_campaign(3, "active"),
    ]));
    let r = run_with(&mut tap, &s).0.unwrap();
    assert_eq!(
        tap.requests_starting("/v2/forensics?threatId="),
        [
            format!("/v2/forensics?threatId={}", threat_id(9)),
            format!("/v2/forensics?threatId={}", threat_id(8)),
            format!("/v2/forensics?threatId={}", threat_id(2)),
        ],
        "queued first in the host's order (oldest first), then the window's own; the fresh one \
         not at all"
    );
    assert_eq!(
        r.enrichment.threats_enriched,
        [threat_id(9), threat_id(8), threat_id(2)],
        "a 404 is an answer: asked, not to be asked again soon"
    );
    assert_eq!(r.enrichment.threats_deferred, [threat_id(3)]);
    assert_eq!(r.counters.threat_forensics_deferred, 1);
}

#[test]
fn a_threat_whose_request_stopped_enrichment_is_deferred_not_enriched() {
    let s = Settings {
        queued_threats: vec![threat_id(1)],
        ..settings()
    };
    let mut tap = FakeTap::siem_json(delivered(vec![message_without_campaign(2, "active")])).route(
        &format!("/v2/forensics?threatId={}", threat_id(1)),
        429,
        json!(null),
    );
    let r = run_with(&mut tap, &s).0.unwrap();
    assert!(r.enrichment.threats_enriched.is_empty());
    assert_eq!(r.enrichment.threats_deferred, [threat_id(1), threat_id(2)]);
}

#[test]
fn queued_campaigns_are_looked_up_first_and_the_rest_deferred() {
    let s = Settings {
        queued_campaigns: vec!["queued-campaign".into()],
        campaign_allowance: 1,
        ..settings()
    };
    let mut tap =
        FakeTap::siem_json(delivered(vec![message()])).campaign("queued-campaign", campaign_body());
    let r = run_with(&mut tap, &s).0.unwrap();
    assert_eq!(
        tap.requests_starting("/v2/campaign/"),
        ["/v2/campaign/queued-campaign"]
    );
    assert_eq!(r.campaigns_fetched.len(), 1);
    assert_eq!(r.campaigns_fetched[0].id, "queued-campaign");
    assert_eq!(r.enrichment.campaigns_deferred, [CAMPAIGN_ID]);
    // The objects naming the deferred campaign are handed out, so the host
    // can relate them once a later call fetches it; each keeps its
    // Campaign ID attribute meanwhile.
    assert!(!r.unresolved_campaigns.is_empty());
    for link in &r.unresolved_campaigns {
        assert_eq!(link.campaign_id, CAMPAIGN_ID);
        let object = &r.objects[link.object as usize];
        assert!(
            object
                .attributes
                .iter()
                .any(|a| a.name == "Campaign ID" && a.value == CAMPAIGN_ID),
            "{object:?}"
        );
    }
}

#[test]
fn objects_naming_a_campaign_the_call_fetched_are_related_to_it_not_handed_out() {
    let mut tap =
        FakeTap::siem_json(delivered(vec![message()])).campaign(CAMPAIGN_ID, campaign_body());
    let r = run_with(&mut tap, &settings()).0.unwrap();
    assert_eq!(r.campaigns_fetched.len(), 1);
    assert!(
        r.unresolved_campaigns.is_empty(),
        "{:?}",
        r.unresolved_campaigns
    );
}

#[test]
fn forensics_tap_failed_to_give_are_deferred_not_held_as_enriched() {
    let s = Settings {
        queued_threats: vec![threat_id(1), threat_id(2)],
        ..settings()
    };
    let mut tap = FakeTap::siem_json(delivered(vec![]))
        .route(
            &format!("/v2/forensics?threatId={}", threat_id(1)),
            500,
            json!({"message": "oops"}),
        )
        .route(
            &format!("/v2/forensics?threatId={}", threat_id(2)),
            200,
            json!("not the JSON TAP documents"),
        );
    let r = run_with(&mut tap, &s).0.unwrap();
    assert!(
        r.enrichment.threats_enriched.is_empty(),
        "{:?}",
        r.enrichment
    );
    assert_eq!(r.enrichment.threats_deferred, [threat_id(1), threat_id(2)]);
}

#[test]
fn a_campaign_whose_forensics_tap_did_not_give_is_deferred_not_fresh() {
    let mut tap = FakeTap::siem_json(delivered(vec![message()]))
        .campaign(CAMPAIGN_ID, campaign_body())
        .route(
            &format!("/v2/forensics?campaignId={CAMPAIGN_ID}"),
            503,
            json!(null),
        );
    let r = run_with(&mut tap, &settings()).0.unwrap();
    assert!(r.campaigns_fetched.is_empty(), "{:?}", r.campaigns_fetched);
    assert_eq!(r.enrichment.campaigns_deferred, [CAMPAIGN_ID]);
}

#[test]
fn active_not_cleared_speaks_while_an_active_record_of_the_call_names_the_indicator() {
    let r = map_siem(delivered(vec![
        message_without_campaign(6, "cleared"),
        with(
            message_without_campaign(6, "active"),
            json!({"GUID": "again"}),
        ),
    ]));
    let statuses: Vec<VerdictStatus> = r.verdicts.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [VerdictStatus::Active], "{:?}", r.verdicts);
}
