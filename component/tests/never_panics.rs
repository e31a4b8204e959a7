//! Whatever TAP puts in its arrays, decoding and mapping never panic: each
//! element either maps or becomes a rejection.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Arbitrary JSON, biased towards the keys TAP uses so the lenient field
/// readers (not just "unknown field, ignored") are exercised.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("2026-11-28T10:15:30.000Z")),
        Just(json!("falsePositive")),
        Just(json!("URL")),
        Just(json!("http://x.zz/")),
        Just(json!("a@b.zz")),
    ];
    let keys = prop_oneof![
        Just("GUID"),
        Just("id"),
        Just("messageTime"),
        Just("clickTime"),
        Just("url"),
        Just("threatsInfoMap"),
        Just("messageParts"),
        Just("recipient"),
        Just("fromAddress"),
        Just("threatID"),
        Just("threatId"),
        Just("campaignID"),
        Just("threatStatus"),
        Just("threatType"),
        Just("threat"),
        Just("completelyRewritten"),
        Just("spamScore"),
        Just("senderIP"),
        Just("sender"),
        Just("subject"),
        Just("disposition"),
        Just("sha256"),
        Just("threatTime"),
        Just("cluster"),
        Just("clusterId"),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_values_in_siem_arrays_never_panic(
        delivered in prop::collection::vec(arbitrary_json(), 0..4),
        permitted in prop::collection::vec(arbitrary_json(), 0..4),
        base_message_change in arbitrary_json(),
    ) {
        let mut messages = delivered;
        // Also vary one field-level aspect of an otherwise valid message.
        messages.push(with(message(), base_message_change));
        let body = json!({"messagesDelivered": messages, "clicksPermitted": permitted, "clicksBlocked": [click()]});
        let s = tap_component::Settings { create_incidents: true, ..settings() };
        let mut tap = FakeTap::siem_json(body);
        let (result, _) = run_with(&mut tap, &s);
        let r = result.expect("a well-formed envelope always maps");
        prop_assert_eq!(r.counters.clicks_blocked, 1);
        for object in &r.objects {
            prop_assert!(!object.value.trim().is_empty(), "blank object value: {:?}", object);
        }
        for relation in &r.relations {
            prop_assert!(relation.a != relation.b);
            prop_assert!((relation.b as usize) < r.objects.len());
        }
    }

    #[test]
    fn arbitrary_forensics_answers_never_panic(answer in arbitrary_json()) {
        let lone = with(message(), json!({"threatsInfoMap": [{"threatID": "t1", "threat": "http://l.zz/", "threatType": "url"}]}));
        let mut tap = FakeTap::siem_json(delivered(vec![lone])).threat_forensics("t1", answer);
        let (result, _) = run_with(&mut tap, &settings());
        prop_assert!(result.is_ok());
    }
}
