//! Whatever TAP puts in its arrays, decoding and mapping never panic: each
//! element either maps or becomes a rejection.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    arbitrary::tap_json(arbitrary::LARGE)
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
