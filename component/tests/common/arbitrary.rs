//! Arbitrary JSON biased towards the keys and values TAP uses, so the
//! lenient field readers (not just "unknown field, ignored") are exercised.
//! One generator for every property test; each picks a size.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// How big the generated values get.
#[derive(Clone, Copy)]
pub struct JsonShape {
    pub depth: u32,
    pub nodes: u32,
    pub items: u32,
    /// Longest arbitrary string, in characters.
    pub max_string: usize,
}

/// Deep enough to reach nested TAP structures (threatsInfoMap elements).
pub const LARGE: JsonShape = JsonShape {
    depth: 4,
    nodes: 48,
    items: 8,
    max_string: 12,
};

/// Small, for properties that run a whole sync per record.
pub const SMALL: JsonShape = JsonShape {
    depth: 3,
    nodes: 24,
    items: 6,
    max_string: 8,
};

const KEYS: [&str; 26] = [
    "GUID",
    "id",
    "messageTime",
    "clickTime",
    "url",
    "threatsInfoMap",
    "messageParts",
    "recipient",
    "fromAddress",
    "threatID",
    "threatId",
    "campaignID",
    "campaignId",
    "threatStatus",
    "threatType",
    "threat",
    "completelyRewritten",
    "spamScore",
    "senderIP",
    "sender",
    "subject",
    "disposition",
    "sha256",
    "threatTime",
    "cluster",
    "clusterId",
];

pub fn tap_json(shape: JsonShape) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::string::string_regex(&format!(".{{0,{}}}", shape.max_string))
            .expect("a valid pattern")
            .prop_map(Value::String),
        Just(json!("2026-11-28T10:15:30.000Z")),
        Just(json!("falsePositive")),
        Just(json!("URL")),
        Just(json!("url")),
        Just(json!("http://x.zz/")),
        Just(json!("a@b.zz")),
    ];
    let keys = prop::sample::select(KEYS.to_vec());
    let items = shape.items as usize;
    leaf.prop_recursive(shape.depth, shape.nodes, shape.items, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..items / 2).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..items).prop_map(|pairs| {
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
