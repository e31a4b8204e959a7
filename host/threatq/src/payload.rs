//! The JSON ThreatQ's consume endpoint takes for each object
//! (docs/threatq-api.md, "What we send"), including its quirks: adversary
//! descriptions as `[{"value": ..}]`, type and status by name, sources on
//! every attribute.

use serde_json::{Map, Value, json};

use crate::model::{Collection, ForwardOptions, TqObject};

/// ThreatQ keeps at most 65,500 characters of a description (threatqsdk
/// cuts there). Cutting at 65,500 *bytes* also keeps multi-byte text under
/// the MariaDB TEXT column's 65,535-byte limit.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 65_500;

/// Why `object` cannot be sent at all, or None when it can.
pub(crate) fn unsendable_because(object: &TqObject) -> Option<String> {
    let field = object.collection.identity_field();
    if object.value.trim().is_empty() {
        return Some(format!(
            "not sent: its {field} is empty and ThreatQ requires one"
        ));
    }
    let needs_type = matches!(
        object.collection,
        Collection::Indicators | Collection::Events
    );
    if needs_type
        && object
            .type_name
            .as_deref()
            .is_none_or(|name| name.trim().is_empty())
    {
        return Some(format!(
            "not sent: ThreatQ requires a type for {}",
            object.collection
        ));
    }
    if object.collection == Collection::Events && object.happened_at.is_none() {
        return Some("not sent: ThreatQ requires happened_at for events".to_owned());
    }
    None
}

/// The whole object, for the first pass.
pub(crate) fn full(object: &TqObject, options: &ForwardOptions) -> Value {
    let mut payload = identity(object, options);
    if let Some(description) = object
        .description
        .as_deref()
        .filter(|text| !text.is_empty())
    {
        let description = cut(description, MAX_DESCRIPTION_BYTES);
        payload.insert(
            "description".to_owned(),
            match object.collection {
                Collection::Adversaries => json!([{ "value": description }]),
                _ => json!(description),
            },
        );
    }
    let attributes = attributes(object, options);
    if !attributes.is_empty() {
        payload.insert("attributes".to_owned(), Value::Array(attributes));
    }
    Value::Object(payload)
}

/// Just what names the object, plus its links, for the relations pass:
/// consuming it again with relationship keys adds links without touching
/// anything else.
pub(crate) fn with_links(
    object: &TqObject,
    options: &ForwardOptions,
    links: &[(Collection, u64)],
) -> Value {
    let mut payload = identity(object, options);
    for (collection, id) in links {
        let key = collection.api_name().to_owned();
        if let Value::Array(ids) = payload.entry(key).or_insert_with(|| json!([])) {
            ids.push(json!({ "id": id }));
        }
    }
    Value::Object(payload)
}

fn identity(object: &TqObject, options: &ForwardOptions) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert(
        object.collection.identity_field().to_owned(),
        json!(object.value),
    );
    match object.collection {
        Collection::Indicators => {
            payload.insert("type".to_owned(), json!({ "name": object.type_name }));
            // ThreatQ applies this to new indicators only; existing ones keep
            // the status an analyst gave them.
            payload.insert(
                "status".to_owned(),
                json!({ "name": options.indicator_status }),
            );
        }
        Collection::Events => {
            payload.insert("type".to_owned(), json!({ "name": object.type_name }));
            payload.insert("happened_at".to_owned(), json!(object.happened_at));
        }
        _ => {}
    }
    // Always name the source: without one ThreatQ credits the login user's
    // own source, which would misattribute the data.
    payload.insert("sources".to_owned(), sources(options));
    payload
}

fn sources(options: &ForwardOptions) -> Value {
    let mut source = Map::new();
    source.insert("name".to_owned(), json!(options.source));
    if let Some(tlp_id) = options.tlp_id {
        source.insert("tlp_id".to_owned(), json!(tlp_id));
    }
    json!([source])
}

/// Attributes without duplicate (name, value) pairs or empty parts: ThreatQ
/// refuses an object whose attribute has no value, and an empty one says
/// nothing.
fn attributes(object: &TqObject, options: &ForwardOptions) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    object
        .attributes
        .iter()
        .filter(|(name, value)| !name.trim().is_empty() && !value.trim().is_empty())
        .filter(|pair| seen.insert(*pair))
        .map(|(name, value)| json!({ "name": name, "value": value, "sources": sources(options) }))
        .collect()
}

/// The longest prefix of `text` within `max_bytes` that ends on a character
/// boundary.
fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(tlp_id: Option<u8>) -> ForwardOptions {
        ForwardOptions {
            source: "Proofpoint TAP".to_owned(),
            tlp_id,
            indicator_status: "Review".to_owned(),
        }
    }

    fn object(collection: Collection, value: &str) -> TqObject {
        TqObject {
            collection,
            value: value.to_owned(),
            type_name: None,
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn indicators_carry_type_status_and_source_with_tlp() {
        let url = TqObject {
            type_name: Some("URL".to_owned()),
            attributes: vec![
                ("Threat ID".into(), "t1".into()),
                ("Threat ID".into(), "t1".into()),
                ("Empty".into(), " ".into()),
            ],
            ..object(Collection::Indicators, "http://x.example/")
        };
        assert_eq!(
            full(&url, &options(Some(3))),
            json!({
                "value": "http://x.example/",
                "type": { "name": "URL" },
                "status": { "name": "Review" },
                "sources": [{ "name": "Proofpoint TAP", "tlp_id": 3 }],
                "attributes": [{
                    "name": "Threat ID", "value": "t1",
                    "sources": [{ "name": "Proofpoint TAP", "tlp_id": 3 }],
                }],
            })
        );
    }

    #[test]
    fn adversary_descriptions_use_threatqs_list_form() {
        let actor = TqObject {
            description: Some("Financially motivated".to_owned()),
            ..object(Collection::Adversaries, "TA505")
        };
        let payload = full(&actor, &options(None));
        assert_eq!(payload["name"], "TA505");
        assert_eq!(
            payload["description"],
            json!([{ "value": "Financially motivated" }])
        );
        assert_eq!(payload["sources"], json!([{ "name": "Proofpoint TAP" }]));
    }

    #[test]
    fn descriptions_are_cut_on_a_character_boundary_within_the_limit() {
        let long = "é".repeat(MAX_DESCRIPTION_BYTES);
        let malware = TqObject {
            description: Some(long),
            ..object(Collection::Malware, "Emotet")
        };
        let payload = full(&malware, &options(None));
        let description = payload["description"].as_str().unwrap();
        assert_eq!(description.len(), MAX_DESCRIPTION_BYTES);
        assert!(description.chars().all(|c| c == 'é'));
    }

    #[test]
    fn link_payloads_group_ids_under_each_related_collection() {
        let event = TqObject {
            type_name: Some("Spearphish".to_owned()),
            happened_at: Some("2024-05-01 10:00:00".to_owned()),
            description: Some("not resent".to_owned()),
            ..object(Collection::Events, "TAP Click")
        };
        let payload = with_links(
            &event,
            &options(None),
            &[
                (Collection::Indicators, 4),
                (Collection::Campaign, 2),
                (Collection::Indicators, 9),
            ],
        );
        assert_eq!(payload["title"], "TAP Click");
        assert_eq!(payload["happened_at"], "2024-05-01 10:00:00");
        assert_eq!(payload["indicators"], json!([{ "id": 4 }, { "id": 9 }]));
        assert_eq!(payload["campaign"], json!([{ "id": 2 }]));
        assert!(payload.get("description").is_none());
    }

    #[test]
    fn objects_missing_what_threatq_requires_are_not_sent() {
        assert!(unsendable_because(&object(Collection::Malware, " ")).is_some());
        assert!(unsendable_because(&object(Collection::Indicators, "x")).is_some());
        let event = TqObject {
            type_name: Some("Incident".to_owned()),
            ..object(Collection::Events, "E")
        };
        assert!(unsendable_because(&event).is_some());
        assert!(unsendable_because(&object(Collection::Campaign, "C")).is_none());
    }
}
