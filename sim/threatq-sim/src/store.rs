//! The simulator's object store and ThreatQ's consume (upsert) rules.
//!
//! Rules (docs/threatq-api.md, "Merge rules", and the inferences marked
//! there where ThreatQ's own are not public): indicators are unique on
//! (value, type name), events on (title, happened_at), adversaries on name,
//! custom objects on value. An existing indicator keeps its status;
//! attributes are merged without duplicate (name, value) pairs; sources are
//! merged, each object source with the time it was first attached (its
//! `created_at`, which tells who made the object) and each attribute value
//! with the sources that asserted it; relations are symmetric and stored
//! once. A request with any
//! invalid item changes nothing and answers with every problem, keyed like
//! Laravel's validator (`"3.type.name"`), because that is what makes a
//! client bisect.

use std::collections::BTreeMap;

// FxHash, not std's SipHash: this is a test double holding the benchmark's
// million objects, where SipHash was a tenth of its time, and nothing here
// needs resistance to chosen keys.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde::Serialize;
use serde_json::{Map, Value, json};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::catalog::{
    DEFAULT_INDICATOR_STATUS, EVENT_TYPES, INDICATOR_STATUSES, INDICATOR_TYPES, IdentityField,
    MAX_DESCRIPTION_CHARS, identity_field,
};

/// One value of a named attribute, with the sources that asserted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredAttribute {
    /// This value's own id (ThreatQ's attribute value id, the `{attr_id}`
    /// of `PUT`/`DELETE /api/<collection>/{id}/attributes/{attr_id}`):
    /// given when the value is first stored, unique in the simulator and
    /// never reused.
    pub id: u64,
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
    /// In the order they were first attached.
    pub sources: Vec<StoredSource>,
    /// (collection, id) of every related object.
    pub relations: Vec<(String, u64)>,
}

/// One source of an object, as ThreatQ lists it under `with=sources`:
/// its name and when it was first attached to the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredSource {
    pub name: String,
    /// `YYYY-MM-DD HH:MM:SS` (UTC): the wall-clock second the source was
    /// first attached, moved one second past the object's latest source
    /// when it would not be later (see [`attach_sources`]).
    pub created_at: String,
}

/// So tests compare an object's sources with their names:
/// `assert_eq!(object.sources, ["Proofpoint TAP"])`.
impl PartialEq<&str> for StoredSource {
    fn eq(&self, name: &&str) -> bool {
        self.name == *name
    }
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
    /// (collection, identifying value) -> positions, so an exact lookup
    /// (`?value=`) does not scan every object: the benchmark's ThreatQ
    /// holds close to a million. Keyed by collection first, so a lookup
    /// borrows its keys instead of allocating a pair of owned strings per
    /// request and per relation.
    by_value: HashMap<String, HashMap<String, Vec<usize>>>,
    /// collection -> id -> position.
    by_id: HashMap<String, HashMap<u64, usize>>,
    last_id: HashMap<String, u64>,
    /// (position, position) of every stored relation, both directions, so
    /// relating a popular object (a campaign with 100k events) stays O(1)
    /// per link instead of scanning its whole relation list.
    related: HashSet<(usize, usize)>,
    /// The last attribute value id given (ids start at 1).
    last_attribute_value_id: u64,
    /// Attribute name -> its id (ThreatQ's `attribute_id`, one per name).
    attribute_ids: HashMap<String, u64>,
    /// Every write made through the update endpoints, oldest first.
    updates: Vec<Update>,
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

    /// Objects of `collection`, all or those whose `field` equals `value`,
    /// carrying the related data `with` names.
    pub fn list(
        &self,
        collection: &str,
        filter: Option<(&str, &str)>,
        with: With,
    ) -> Option<Vec<Value>> {
        let field = identity_field(collection)?;
        let by_value: Box<dyn Iterator<Item = &StoredObject>> = match filter {
            Some((key, wanted)) if key == field.key() => Box::new(
                self.by_value
                    .get(collection)
                    .and_then(|values| values.get(wanted))
                    .into_iter()
                    .flatten()
                    .map(|&position| &self.objects[position]),
            ),
            _ => Box::new(self.objects.iter()),
        };
        Some(
            by_value
                .filter(|object| object.collection == collection)
                .filter(|object| match filter {
                    None => true,
                    Some(("id", id)) => id.parse() == Ok(object.id),
                    Some((key, wanted)) if key == field.key() => object.value == wanted,
                    Some(("happened_at", wanted)) => object.happened_at.as_deref() == Some(wanted),
                    Some(_) => true,
                })
                .map(|object| self.full_json(object, field, with))
                .collect(),
        )
    }

    pub fn get(&self, collection: &str, id: u64, with: With) -> Option<Value> {
        let field = identity_field(collection)?;
        let position = self.position_of(collection, id)?;
        Some(self.full_json(&self.objects[position], field, with))
    }

    /// Every write made through the update endpoints, oldest first.
    pub fn updates(&self) -> &[Update] {
        &self.updates
    }

    pub fn clear_updates(&mut self) {
        self.updates.clear();
    }

    /// `PUT /api/<collection>/{id}`: sets the status named by `status`
    /// (`{"name": ..}`, `{"id": ..}` or a bare name) or `status_id`. Other
    /// fields are ignored. Answers the object as it now is.
    pub fn update_object(
        &mut self,
        collection: &str,
        id: u64,
        body: &Value,
    ) -> Result<Value, WriteError> {
        let (position, field) = self.position(collection, id)?;
        let Some(fields) = body.as_object() else {
            return Err(invalid("data", "The request body must be a JSON object."));
        };
        if let Some(status) = requested_status(fields)? {
            if collection != "indicators" {
                return Err(invalid(
                    "status",
                    &format!("The {collection} collection has no status."),
                ));
            }
            let object = &mut self.objects[position];
            let from = object.status.replace(status.clone());
            self.updates.push(Update {
                collection: collection.to_owned(),
                id,
                what: UpdateKind::Status { from, to: status },
            });
        }
        Ok(self.full_json(&self.objects[position], field, With::ALL))
    }

    /// `POST /api/<collection>/{id}/attributes` with `{name, value,
    /// sources?}`. A (name, value) pair the object already holds is not
    /// stored twice: its sources are merged, the existing value is
    /// answered and no update is recorded.
    pub fn add_attribute(
        &mut self,
        collection: &str,
        id: u64,
        body: &Value,
    ) -> Result<Value, WriteError> {
        let (position, _) = self.position(collection, id)?;
        let Some(fields) = body.as_object() else {
            return Err(invalid("data", "The request body must be a JSON object."));
        };
        let name = match fields.get("name").and_then(Value::as_str).map(str::trim) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => return Err(invalid("name", "The name field is required.")),
        };
        let value = attribute_value(fields.get("value"))?;
        let mut source_errors = FieldErrors::new();
        let sources = parse_sources(
            fields.get("sources"),
            "attribute.sources",
            &mut |key, message| source_errors.entry(key).or_default().push(message),
        );
        if !source_errors.is_empty() {
            return Err(WriteError::Invalid(source_errors));
        }
        let object = &mut self.objects[position];
        if let Some(held) = object
            .attributes
            .iter_mut()
            .find(|held| held.name == name && held.value == value)
        {
            merge_names(&mut held.sources, sources);
            let held = held.clone();
            return Ok(self.attribute_json(&held, true));
        }
        self.last_attribute_value_id += 1;
        register_attribute_name(&mut self.attribute_ids, &name);
        let attribute = StoredAttribute {
            id: self.last_attribute_value_id,
            name: name.clone(),
            value: value.clone(),
            sources,
        };
        object.attributes.push(attribute.clone());
        self.updates.push(Update {
            collection: collection.to_owned(),
            id,
            what: UpdateKind::AttributeAdded { name, value },
        });
        Ok(self.attribute_json(&attribute, true))
    }

    /// `PUT /api/<collection>/{id}/attributes/{attribute_value_id}` with
    /// `{value}`. A value another value of the same name already holds is
    /// refused (422), so the object never holds a (name, value) pair twice.
    pub fn set_attribute(
        &mut self,
        collection: &str,
        id: u64,
        attribute_value_id: u64,
        body: &Value,
    ) -> Result<Value, WriteError> {
        let (position, _) = self.position(collection, id)?;
        let Some(fields) = body.as_object() else {
            return Err(invalid("data", "The request body must be a JSON object."));
        };
        let value = attribute_value(fields.get("value"))?;
        let object = &mut self.objects[position];
        let index = object
            .attributes
            .iter()
            .position(|held| held.id == attribute_value_id)
            .ok_or(WriteError::NoAttribute)?;
        let name = object.attributes[index].name.clone();
        if object
            .attributes
            .iter()
            .any(|held| held.id != attribute_value_id && held.name == name && held.value == value)
        {
            return Err(invalid("value", "The value has already been taken."));
        }
        let from = std::mem::replace(&mut object.attributes[index].value, value.clone());
        let attribute = object.attributes[index].clone();
        self.updates.push(Update {
            collection: collection.to_owned(),
            id,
            what: UpdateKind::AttributeSet {
                name,
                from,
                to: value,
            },
        });
        Ok(self.attribute_json(&attribute, true))
    }

    /// `DELETE /api/<collection>/{id}/attributes/{attribute_value_id}`.
    pub fn delete_attribute(
        &mut self,
        collection: &str,
        id: u64,
        attribute_value_id: u64,
    ) -> Result<(), WriteError> {
        let (position, _) = self.position(collection, id)?;
        let object = &mut self.objects[position];
        let index = object
            .attributes
            .iter()
            .position(|held| held.id == attribute_value_id)
            .ok_or(WriteError::NoAttribute)?;
        let removed = object.attributes.remove(index);
        self.updates.push(Update {
            collection: collection.to_owned(),
            id,
            what: UpdateKind::AttributeDeleted {
                name: removed.name,
                value: removed.value,
            },
        });
        Ok(())
    }

    /// Sets the status of every object of `collection` whose identifying
    /// value is `value`, as an analyst would in ThreatQ's UI: not checked
    /// against the known statuses and not recorded as an update. False
    /// when no object matched.
    pub fn set_status_by_value(&mut self, collection: &str, value: &str, status: &str) -> bool {
        let mut found = false;
        for object in &mut self.objects {
            if object.collection == collection && object.value == value {
                object.status = Some(status.to_owned());
                found = true;
            }
        }
        found
    }

    fn position(&self, collection: &str, id: u64) -> Result<(usize, IdentityField), WriteError> {
        let field = identity_field(collection).ok_or(WriteError::NoCollection)?;
        let position = self
            .position_of(collection, id)
            .ok_or(WriteError::NoObject)?;
        Ok((position, field))
    }

    /// Where the object `id` of `collection` is in `objects`.
    fn position_of(&self, collection: &str, id: u64) -> Option<usize> {
        self.by_id.get(collection)?.get(&id).copied()
    }

    /// ThreatQ's id of the attribute `name` (one per name, by first use).
    fn attribute_id(&self, name: &str) -> u64 {
        self.attribute_ids.get(name).copied().unwrap_or(0)
    }

    /// One attribute value; its sources only when `with_sources`
    /// (`with=attributes.sources`; the answers of the attribute writes
    /// always carry them).
    fn attribute_json(&self, attribute: &StoredAttribute, with_sources: bool) -> Value {
        let mut json = json!({
            "id": attribute.id,
            "attribute_id": self.attribute_id(&attribute.name),
            "name": attribute.name,
            "value": attribute.value,
        });
        if with_sources {
            json["sources"] = names_json(&attribute.sources);
        }
        json
    }

    /// The object as `GET /api/<collection>/{id}?with=...` would show it.
    fn full_json(&self, object: &StoredObject, field: IdentityField, with: With) -> Value {
        let mut full = json!({
            "id": object.id,
            field.key(): object.value,
            "description": object.description,
        });
        if with.sources {
            full["sources"] = object
                .sources
                .iter()
                .map(|source| json!({ "name": source.name, "created_at": source.created_at }))
                .collect();
        }
        if with.attributes {
            full["attributes"] = object
                .attributes
                .iter()
                .map(|attribute| self.attribute_json(attribute, with.attribute_sources))
                .collect();
        }
        decorate(&mut full, object, with);
        full
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
                    Some(id) if self.position_of(related_collection, id).is_some() => {
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
                self.by_id
                    .entry(collection.to_owned())
                    .or_default()
                    .insert(*id, position);
                self.by_value
                    .entry(collection.to_owned())
                    .or_default()
                    .entry(item.identity.clone())
                    .or_default()
                    .push(position);
                position
            }
        };

        let object = &mut self.objects[position];
        if item.description.is_some() {
            object.description = item.description;
        }
        attach_sources(&mut object.sources, item.sources, OffsetDateTime::now_utc());
        for mut attribute in item.attributes {
            match object
                .attributes
                .iter_mut()
                .find(|held| held.name == attribute.name && held.value == attribute.value)
            {
                Some(held) => merge_names(&mut held.sources, attribute.sources),
                None => {
                    self.last_attribute_value_id += 1;
                    attribute.id = self.last_attribute_value_id;
                    register_attribute_name(&mut self.attribute_ids, &attribute.name);
                    object.attributes.push(attribute);
                }
            }
        }

        let own = (collection.to_owned(), object.id);
        for link in item.relations {
            if link == own {
                continue;
            }
            let other = self
                .position_of(&link.0, link.1)
                .expect("validated: every related id exists");
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
    parse_threatq_date(text).is_some()
}

fn parse_threatq_date(text: &str) -> Option<PrimitiveDateTime> {
    PrimitiveDateTime::parse(
        text,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .ok()
}

fn format_threatq_date(at: PrimitiveDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
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
                    // Given when stored (`Store::upsert`).
                    id: 0,
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

/// Attaches the `incoming` source names `held` lacks, each with its
/// `created_at`: the wall-clock second `now`, or one second after the
/// latest source already held when that is not earlier. ThreatQ records the
/// second a source was attached, and two feeds may well share one; the
/// simulator keeps an object's sources strictly in time order instead, so
/// a test can tell which source came first without waiting a second
/// between feeds (the client's rule for equal times is unit-tested on its
/// own, in `threatq-client`).
fn attach_sources(held: &mut Vec<StoredSource>, incoming: Vec<String>, now: OffsetDateTime) {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let now = PrimitiveDateTime::new(now.date(), now.time());
    for name in incoming {
        if held.iter().any(|source| source.name == name) {
            continue;
        }
        let after_latest = held
            .iter()
            .filter_map(|source| parse_threatq_date(&source.created_at))
            .max()
            .map(|latest| latest + Duration::seconds(1));
        let at = after_latest.map_or(now, |after| after.max(now));
        held.push(StoredSource {
            name,
            created_at: format_threatq_date(at),
        });
    }
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
    decorate(&mut row, object, With::ALL);
    row
}

/// Gives `name` the next attribute id the first time it is stored.
fn register_attribute_name(ids: &mut HashMap<String, u64>, name: &str) {
    if !ids.contains_key(name) {
        let next = ids.len() as u64 + 1;
        ids.insert(name.to_owned(), next);
    }
}

fn names_json(names: &[String]) -> Value {
    names.iter().map(|name| json!({ "name": name })).collect()
}

/// The default id of a reference name: its position in the list plus one.
fn reference_id(names: &[&str], name: &str) -> Option<usize> {
    names
        .iter()
        .position(|known| *known == name)
        .map(|position| position + 1)
}

fn decorate(target: &mut Value, object: &StoredObject, with: With) {
    if let Some(type_name) = &object.type_name {
        let types = if object.collection == "events" {
            EVENT_TYPES
        } else {
            INDICATOR_TYPES
        };
        let type_id = reference_id(types, type_name);
        target["type_id"] = json!(type_id);
        if with.type_ {
            target["type"] = json!({ "id": type_id, "name": type_name });
        }
    }
    if let Some(status) = &object.status {
        let status_id = reference_id(INDICATOR_STATUSES, status);
        target["status_id"] = json!(status_id);
        if with.status {
            target["status"] = json!({ "id": status_id, "name": status });
        }
    }
    if let Some(happened_at) = &object.happened_at {
        target["happened_at"] = json!(happened_at);
    }
}

/// Which related data an answer carries: ThreatQ's `with=` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct With {
    attributes: bool,
    /// `attributes.sources`: each attribute value with its sources.
    attribute_sources: bool,
    sources: bool,
    status: bool,
    type_: bool,
}

impl With {
    /// Everything: what the simulator answers when no `with` is given, so
    /// callers that never asked keep seeing what they always saw. (A real
    /// ThreatQ answers base fields only then.)
    pub const ALL: With = With {
        attributes: true,
        attribute_sources: true,
        sources: true,
        status: true,
        type_: true,
    };

    /// `with=attributes,status,type`: exactly the named relations (names
    /// the simulator does not serve are ignored); a nested one,
    /// `attributes.sources`, also loads its parent, as Laravel's eager
    /// loading does; `None`: [`With::ALL`].
    pub fn parse(list: Option<&str>) -> With {
        let Some(list) = list else {
            return With::ALL;
        };
        let named: Vec<String> = list
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        let has = |name: &str| named.iter().any(|named| named == name);
        With {
            attributes: has("attributes") || has("attributes.sources"),
            attribute_sources: has("attributes.sources"),
            sources: has("sources"),
            status: has("status"),
            type_: has("type"),
        }
    }
}

/// One write the simulator applied through its update endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The API name, e.g. `indicators`.
    pub collection: String,
    /// The object's id.
    pub id: u64,
    pub what: UpdateKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateKind {
    /// `PUT /api/<collection>/{id}` set the status (recorded even when
    /// `from` equals `to`: the request was still made).
    Status { from: Option<String>, to: String },
    /// `PUT .../attributes/{attr_id}` changed a value (recorded even when
    /// `from` equals `to`).
    AttributeSet {
        name: String,
        from: String,
        to: String,
    },
    /// `POST .../attributes` stored a new value.
    AttributeAdded { name: String, value: String },
    /// `DELETE .../attributes/{attr_id}` removed a value.
    AttributeDeleted { name: String, value: String },
}

/// Why an update endpoint refused.
#[derive(Debug)]
pub(crate) enum WriteError {
    NoCollection,
    NoObject,
    NoAttribute,
    /// Field errors, answered as a 422 in Laravel's shape.
    Invalid(FieldErrors),
}

fn invalid(key: &str, message: &str) -> WriteError {
    let mut errors = FieldErrors::new();
    errors.insert(key.to_owned(), vec![message.to_owned()]);
    WriteError::Invalid(errors)
}

/// The status a `PUT` body asks for, checked against the known names.
fn requested_status(fields: &Map<String, Value>) -> Result<Option<String>, WriteError> {
    let by_id = |id: Option<u64>, key: &str| {
        id.and_then(|id| usize::try_from(id).ok())
            .and_then(|id| id.checked_sub(1))
            .and_then(|position| INDICATOR_STATUSES.get(position))
            .map(|name| Some((*name).to_owned()))
            .ok_or_else(|| invalid(key, &format!("The selected {key} is invalid.")))
    };
    let as_id = |value: &Value| {
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
    };
    let name = match fields.get("status") {
        Some(Value::String(name)) => name.clone(),
        Some(Value::Object(reference)) => match reference.get("name") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(invalid("status", "The status.name must be a string.")),
            None => match reference.get("id") {
                Some(id) => return by_id(as_id(id), "status"),
                None => return Err(invalid("status", "The status.name field is required.")),
            },
        },
        Some(Value::Null) | None => match fields.get("status_id") {
            None | Some(Value::Null) => return Ok(None),
            Some(id) => return by_id(as_id(id), "status_id"),
        },
        Some(_) => return Err(invalid("status", "The status is invalid.")),
    };
    if INDICATOR_STATUSES.contains(&name.as_str()) {
        Ok(Some(name))
    } else {
        Err(invalid("status", "The selected status is invalid."))
    }
}

/// An attribute value as consume reads it: a string, number or boolean.
fn attribute_value(value: Option<&Value>) -> Result<String, WriteError> {
    let value = match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(flag)) => if *flag { "Yes" } else { "No" }.to_owned(),
        _ => String::new(),
    };
    if value.trim().is_empty() {
        Err(invalid("value", "The value field is required."))
    } else {
        Ok(value)
    }
}
