//! The simulator's object store and ThreatQ's consume (upsert) rules.
//!
//! Rules (docs/threatq-api.md, "Merge rules", and the inferences marked
//! there where ThreatQ's own are not public): indicators are unique on
//! (value, type name), events on (title, happened_at), adversaries on name,
//! custom objects on value. An existing indicator keeps its status;
//! attributes are merged without duplicate (name, value) pairs; sources are
//! merged; relations are symmetric and stored once. A request with any
//! invalid item changes nothing and answers with every problem, keyed like
//! Laravel's validator (`"3.type.name"`), because that is what makes a
//! client bisect.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value, json};
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::catalog::{
    DEFAULT_INDICATOR_STATUS, EVENT_TYPES, INDICATOR_STATUSES, INDICATOR_TYPES, IdentityField,
    MAX_DESCRIPTION_CHARS, identity_field,
};

/// One value of a named attribute, with the sources that asserted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredAttribute {
    pub name: String,
    pub value: String,
    pub sources: Vec<String>,
}

/// An object as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredObject {
    /// Unique within its collection, as ThreatQ ids are.
    pub id: u64,
    pub collection: String,
    /// The identifying value: `value`, `name` or `title` by collection.
    pub value: String,
    pub type_name: Option<String>,
    pub status: Option<String>,
    pub happened_at: Option<String>,
    pub description: Option<String>,
    pub attributes: Vec<StoredAttribute>,
    pub sources: Vec<String>,
    /// (collection, id) of every related object.
    pub relations: Vec<(String, u64)>,
}

impl StoredObject {
    /// The values of every attribute called `name`.
    pub fn attribute_values(&self, name: &str) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|attribute| attribute.name == name)
            .map(|attribute| attribute.value.as_str())
            .collect()
    }
}

/// Everything the simulator stores, copied at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub objects: Vec<StoredObject>,
}

impl Snapshot {
    /// How many objects `collection` holds.
    pub fn count(&self, collection: &str) -> usize {
        self.objects
            .iter()
            .filter(|object| object.collection == collection)
            .count()
    }

    /// The first object of `collection` whose identifying value is `value`.
    pub fn find(&self, collection: &str, value: &str) -> Option<&StoredObject> {
        self.objects
            .iter()
            .find(|object| object.collection == collection && object.value == value)
    }

    /// Every event of the given type.
    pub fn events_of_type(&self, type_name: &str) -> Vec<&StoredObject> {
        self.objects
            .iter()
            .filter(|object| {
                object.collection == "events" && object.type_name.as_deref() == Some(type_name)
            })
            .collect()
    }

    /// Every object related to `object`.
    pub fn related(&self, object: &StoredObject) -> Vec<&StoredObject> {
        object
            .relations
            .iter()
            .filter_map(|(collection, id)| {
                self.objects
                    .iter()
                    .find(|other| &other.collection == collection && other.id == *id)
            })
            .collect()
    }
}

/// Field errors keyed like Laravel's validator, e.g. `"0.type.name"`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// What one item of a consume request asks for, after validation.
struct ConsumeItem {
    identity: String,
    type_name: Option<String>,
    status: Option<String>,
    happened_at: Option<String>,
    description: Option<String>,
    attributes: Vec<StoredAttribute>,
    sources: Vec<String>,
    relations: Vec<(String, u64)>,
}

#[derive(Default)]
pub(crate) struct Store {
    objects: Vec<StoredObject>,
    by_identity: HashMap<String, usize>,
    by_id: HashMap<(String, u64), usize>,
    last_id: HashMap<String, u64>,
    /// (position, position) of every stored relation, both directions, so
    /// relating a popular object (a campaign with 100k events) stays O(1)
    /// per link instead of scanning its whole relation list.
    related: HashSet<(usize, usize)>,
}

impl Store {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            objects: self.objects.clone(),
        }
    }

    /// Applies a consume request atomically: either every item is stored
    /// and one row per item comes back, or nothing changes and the field
    /// errors come back. Items whose identifying value contains one of
    /// `rejected_values` fail validation (a test's fault rule).
    pub fn consume(
        &mut self,
        collection: &str,
        body: &Value,
        rejected_values: &[String],
    ) -> Result<Vec<Value>, FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(field) = identity_field(collection) else {
            errors.insert(
                "collection".to_owned(),
                vec![format!("The collection {collection} does not exist.")],
            );
            return Err(errors);
        };
        let Some(elements) = body.as_array() else {
            errors.insert(
                "data".to_owned(),
                vec!["The request body must be a JSON array.".to_owned()],
            );
            return Err(errors);
        };
        let items: Vec<Option<ConsumeItem>> = elements
            .iter()
            .enumerate()
            .map(|(index, element)| {
                self.parse_item(
                    collection,
                    field,
                    index,
                    element,
                    rejected_values,
                    &mut errors,
                )
            })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(items
            .into_iter()
            .flatten()
            .map(|item| {
                let position = self.upsert(collection, item);
                row(&self.objects[position], field)
            })
            .collect())
    }

    /// Objects of `collection`, all or those whose `field` equals `value`.
    pub fn list(&self, collection: &str, filter: Option<(&str, &str)>) -> Option<Vec<Value>> {
        let field = identity_field(collection)?;
        Some(
            self.objects
                .iter()
                .filter(|object| object.collection == collection)
                .filter(|object| match filter {
                    None => true,
                    Some(("id", id)) => id.parse() == Ok(object.id),
                    Some((key, wanted)) if key == field.key() => object.value == wanted,
                    Some(("happened_at", wanted)) => object.happened_at.as_deref() == Some(wanted),
                    Some(_) => true,
                })
                .map(|object| full_json(object, field))
                .collect(),
        )
    }

    pub fn get(&self, collection: &str, id: u64) -> Option<Value> {
        let field = identity_field(collection)?;
        let position = *self.by_id.get(&(collection.to_owned(), id))?;
        Some(full_json(&self.objects[position], field))
    }

    fn parse_item(
        &self,
        collection: &str,
        field: IdentityField,
        index: usize,
        element: &Value,
        rejected_values: &[String],
        errors: &mut FieldErrors,
    ) -> Option<ConsumeItem> {
        let before = errors.len();
        let mut fail = |key: String, message: String| {
            errors
                .entry(format!("{index}.{key}"))
                .or_default()
                .push(message);
        };
        let Some(object) = element.as_object() else {
            fail(
                "item".to_owned(),
                format!("The {index} item must be an object."),
            );
            return None;
        };

        let key = field.key();
        let identity = match object.get(key).and_then(Value::as_str).map(str::trim) {
            Some(identity) if !identity.is_empty() => identity.to_owned(),
            _ => {
                fail(
                    key.to_owned(),
                    format!("The {index}.{key} field is required."),
                );
                String::new()
            }
        };
        if rejected_values
            .iter()
            .any(|pattern| identity.contains(pattern.as_str()))
        {
            fail(
                key.to_owned(),
                format!("The {index}.{key} format is invalid."),
            );
        }

        let mut type_name = None;
        let mut status = None;
        let mut happened_at = None;
        match collection {
            "indicators" => {
                type_name = named_reference(object, "type", INDICATOR_TYPES, index, &mut fail);
                if type_name.is_none()
                    && !object.contains_key("type")
                    && !object.contains_key("type_id")
                {
                    fail(
                        "type.name".to_owned(),
                        format!("The {index}.type.name field is required."),
                    );
                }
                status = named_reference(object, "status", INDICATOR_STATUSES, index, &mut fail);
            }
            "events" => {
                type_name = named_reference(object, "type", EVENT_TYPES, index, &mut fail);
                if type_name.is_none()
                    && !object.contains_key("type")
                    && !object.contains_key("type_id")
                {
                    fail(
                        "type.name".to_owned(),
                        format!("The {index}.type.name field is required."),
                    );
                }
                match object.get("happened_at").and_then(Value::as_str) {
                    Some(date) if is_threatq_date(date) => happened_at = Some(date.to_owned()),
                    Some(_) => fail(
                        "happened_at".to_owned(),
                        format!("The {index}.happened_at does not match the format Y-m-d H:i:s."),
                    ),
                    None => fail(
                        "happened_at".to_owned(),
                        format!("The {index}.happened_at field is required."),
                    ),
                }
            }
            _ => {}
        }

        let description = parse_description(object.get("description"), index, &mut fail);
        let sources = parse_sources(
            object.get("sources"),
            &format!("{index}.sources"),
            &mut fail,
        );
        let attributes = parse_attributes(object.get("attributes"), index, &mut fail);

        let mut relations = Vec::new();
        for (related_collection, links) in object {
            if identity_field(related_collection).is_none() {
                continue;
            }
            let Some(links) = links.as_array() else {
                fail(
                    related_collection.clone(),
                    format!("The {index}.{related_collection} must be an array."),
                );
                continue;
            };
            for (position, link) in links.iter().enumerate() {
                let id = link.get("id").and_then(|id| {
                    id.as_u64()
                        .or_else(|| id.as_str().and_then(|text| text.parse().ok()))
                });
                match id {
                    Some(id) if self.by_id.contains_key(&(related_collection.clone(), id)) => {
                        relations.push((related_collection.clone(), id));
                    }
                    _ => fail(
                        format!("{related_collection}.{position}.id"),
                        format!(
                            "The selected {index}.{related_collection}.{position}.id is invalid."
                        ),
                    ),
                }
            }
        }

        (errors.len() == before).then_some(ConsumeItem {
            identity,
            type_name,
            status,
            happened_at,
            description,
            attributes,
            sources,
            relations,
        })
    }

    /// Stores one validated item and returns its position.
    fn upsert(&mut self, collection: &str, item: ConsumeItem) -> usize {
        let key = identity_key(collection, &item);
        let position = match self.by_identity.get(&key) {
            Some(&position) => position,
            None => {
                let id = self.last_id.entry(collection.to_owned()).or_insert(0);
                *id += 1;
                let status = (collection == "indicators").then(|| {
                    item.status
                        .clone()
                        .unwrap_or_else(|| DEFAULT_INDICATOR_STATUS.to_owned())
                });
                self.objects.push(StoredObject {
                    id: *id,
                    collection: collection.to_owned(),
                    value: item.identity.clone(),
                    type_name: item.type_name.clone(),
                    status,
                    happened_at: item.happened_at.clone(),
                    description: None,
                    attributes: Vec::new(),
                    sources: Vec::new(),
                    relations: Vec::new(),
                });
                let position = self.objects.len() - 1;
                self.by_identity.insert(key, position);
                self.by_id.insert((collection.to_owned(), *id), position);
                position
            }
        };

        let object = &mut self.objects[position];
        if item.description.is_some() {
            object.description = item.description;
        }
        merge_names(&mut object.sources, item.sources);
        for attribute in item.attributes {
            match object
                .attributes
                .iter_mut()
                .find(|held| held.name == attribute.name && held.value == attribute.value)
            {
                Some(held) => merge_names(&mut held.sources, attribute.sources),
                None => object.attributes.push(attribute),
            }
        }

        let own = (collection.to_owned(), object.id);
        for link in item.relations {
            if link == own {
                continue;
            }
            let other = self.by_id[&link];
            for (from, (to_position, to)) in [
                (position, (other, link.clone())),
                (other, (position, own.clone())),
            ] {
                if self.related.insert((from, to_position)) {
                    self.objects[from].relations.push(to);
                }
            }
        }
        position
    }
}

fn identity_key(collection: &str, item: &ConsumeItem) -> String {
    // U+001F cannot appear in the parts, so distinct tuples give distinct keys.
    let qualifier = match collection {
        "indicators" => item.type_name.as_deref().unwrap_or_default(),
        "events" => item.happened_at.as_deref().unwrap_or_default(),
        _ => "",
    };
    format!("{collection}\u{1f}{}\u{1f}{qualifier}", item.identity)
}

fn is_threatq_date(text: &str) -> bool {
    PrimitiveDateTime::parse(
        text,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .is_ok()
}

/// Reads `type`/`status` given as `{"name": ..}`, a bare name, or `<key>_id`.
fn named_reference(
    object: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    index: usize,
    fail: &mut impl FnMut(String, String),
) -> Option<String> {
    let name = match object.get(key) {
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Object(reference)) => match reference.get("name").and_then(Value::as_str) {
            Some(name) => Some(name.to_owned()),
            None => {
                fail(
                    format!("{key}.name"),
                    format!("The {index}.{key}.name field is required."),
                );
                return None;
            }
        },
        Some(_) => {
            fail(key.to_owned(), format!("The {index}.{key} is invalid."));
            return None;
        }
        None => match object.get(&format!("{key}_id")).and_then(Value::as_u64) {
            Some(id) => match usize::try_from(id).ok().and_then(|id| id.checked_sub(1)) {
                Some(position) if position < allowed.len() => Some(allowed[position].to_owned()),
                _ => {
                    fail(
                        format!("{key}_id"),
                        format!("The selected {index}.{key}_id is invalid."),
                    );
                    return None;
                }
            },
            None => return None,
        },
    };
    match name {
        Some(name) if allowed.contains(&name.as_str()) => Some(name),
        Some(_) => {
            fail(
                format!("{key}.name"),
                format!("The selected {index}.{key}.name is invalid."),
            );
            None
        }
        None => None,
    }
}

/// A description is a string, or (ThreatQ's adversary quirk) `[{"value": ..}]`.
fn parse_description(
    description: Option<&Value>,
    index: usize,
    fail: &mut impl FnMut(String, String),
) -> Option<String> {
    let text = match description? {
        Value::Null => return None,
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            let values: Option<Vec<&str>> = parts
                .iter()
                .map(|part| part.get("value").and_then(Value::as_str))
                .collect();
            match values {
                Some(values) => values.join("\n"),
                None => {
                    fail(
                        "description".to_owned(),
                        format!("The {index}.description.*.value field is required."),
                    );
                    return None;
                }
            }
        }
        _ => {
            fail(
                "description".to_owned(),
                format!("The {index}.description must be a string."),
            );
            return None;
        }
    };
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        fail(
            "description".to_owned(),
            format!(
                "The {index}.description may not be greater than {MAX_DESCRIPTION_CHARS} characters."
            ),
        );
        return None;
    }
    Some(text)
}

fn parse_sources(
    sources: Option<&Value>,
    path: &str,
    fail: &mut impl FnMut(String, String),
) -> Vec<String> {
    let key = path
        .split_once('.')
        .map_or(path, |(_, rest)| rest)
        .to_owned();
    let Some(sources) = sources else {
        return Vec::new();
    };
    let Some(sources) = sources.as_array() else {
        fail(key, format!("The {path} must be an array."));
        return Vec::new();
    };
    let mut names = Vec::new();
    for (position, source) in sources.iter().enumerate() {
        match source.get("name").and_then(Value::as_str) {
            Some(name) if !name.trim().is_empty() => names.push(name.to_owned()),
            _ => fail(
                format!("{key}.{position}.name"),
                format!("The {path}.{position}.name field is required."),
            ),
        }
        if let Some(tlp) = source.get("tlp_id")
            && !matches!(tlp.as_u64(), Some(1..=4))
        {
            fail(
                format!("{key}.{position}.tlp_id"),
                format!("The selected {path}.{position}.tlp_id is invalid."),
            );
        }
    }
    names
}

fn parse_attributes(
    attributes: Option<&Value>,
    index: usize,
    fail: &mut impl FnMut(String, String),
) -> Vec<StoredAttribute> {
    let Some(attributes) = attributes else {
        return Vec::new();
    };
    let Some(attributes) = attributes.as_array() else {
        fail(
            "attributes".to_owned(),
            format!("The {index}.attributes must be an array."),
        );
        return Vec::new();
    };
    let mut parsed = Vec::new();
    for (position, attribute) in attributes.iter().enumerate() {
        let name = attribute.get("name").and_then(Value::as_str).map(str::trim);
        let value = match attribute.get("value") {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            Some(Value::Bool(flag)) => Some(if *flag { "Yes" } else { "No" }.to_owned()),
            _ => None,
        };
        let sources = parse_sources(
            attribute.get("sources"),
            &format!("{index}.attributes.{position}.sources"),
            fail,
        );
        match (name, value) {
            (Some(name), Some(value)) if !name.is_empty() && !value.trim().is_empty() => {
                parsed.push(StoredAttribute {
                    name: name.to_owned(),
                    value,
                    sources,
                });
            }
            (Some(name), _) if !name.is_empty() => fail(
                format!("attributes.{position}.value"),
                format!("The {index}.attributes.{position}.value field is required."),
            ),
            _ => fail(
                format!("attributes.{position}.name"),
                format!("The {index}.attributes.{position}.name field is required."),
            ),
        }
    }
    parsed
}

fn merge_names(held: &mut Vec<String>, incoming: Vec<String>) {
    for name in incoming {
        if !held.contains(&name) {
            held.push(name);
        }
    }
}

/// The short row a consume response carries for each item.
fn row(object: &StoredObject, field: IdentityField) -> Value {
    let mut row = json!({ "id": object.id, field.key(): object.value });
    decorate(&mut row, object);
    row
}

/// The object as `GET /api/<collection>/{id}?with=...` would show it.
fn full_json(object: &StoredObject, field: IdentityField) -> Value {
    let mut full = json!({
        "id": object.id,
        field.key(): object.value,
        "description": object.description,
        "sources": object.sources.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
        "attributes": object.attributes.iter().map(|attribute| json!({
            "name": attribute.name,
            "value": attribute.value,
            "sources": attribute.sources.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    decorate(&mut full, object);
    full
}

fn decorate(target: &mut Value, object: &StoredObject) {
    if let Some(type_name) = &object.type_name {
        target["type"] = json!({ "name": type_name });
    }
    if let Some(status) = &object.status {
        target["status"] = json!({ "name": status });
    }
    if let Some(happened_at) = &object.happened_at {
        target["happened_at"] = json!(happened_at);
    }
}
