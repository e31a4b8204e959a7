//! The plain data the client forwards and reports, independent of the wasm
//! contract: the lead converts the component's output into these.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The ThreatQ collections this connector writes, in the order `forward`
/// sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Indicators,
    Events,
    Adversaries,
    Campaign,
    Malware,
    AttackPattern,
}

impl Collection {
    pub const ALL: [Collection; 6] = [
        Collection::Indicators,
        Collection::Events,
        Collection::Adversaries,
        Collection::Campaign,
        Collection::Malware,
        Collection::AttackPattern,
    ];

    /// The collection's API name: its URL path segment and its relationship
    /// key in consume bodies.
    pub fn api_name(self) -> &'static str {
        match self {
            Collection::Indicators => "indicators",
            Collection::Events => "events",
            Collection::Adversaries => "adversaries",
            Collection::Campaign => "campaign",
            Collection::Malware => "malware",
            Collection::AttackPattern => "attack_pattern",
        }
    }

    /// The field that names an object of this collection
    /// (docs/threatq-api.md, "Collections and identity").
    pub fn identity_field(self) -> &'static str {
        match self {
            Collection::Events => "title",
            Collection::Adversaries => "name",
            Collection::Indicators
            | Collection::Campaign
            | Collection::Malware
            | Collection::AttackPattern => "value",
        }
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.api_name())
    }
}

/// One object to upsert into ThreatQ. Serialisable, so an object ThreatQ
/// refused can be kept in the dead-letter store and sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TqObject {
    pub collection: Collection,
    /// The identifying text: an indicator's or custom object's value, an
    /// adversary's name, an event's title.
    pub value: String,
    /// Indicator or event type name, e.g. `URL`, `Spearphish`.
    pub type_name: Option<String>,
    /// Events only: `YYYY-MM-DD HH:MM:SS` UTC (see [`crate::format_threatq_date`]).
    pub happened_at: Option<String>,
    pub description: Option<String>,
    /// (name, value) pairs; a name may repeat with different values.
    pub attributes: Vec<(String, String)>,
}

impl TqObject {
    /// How reports name the object: the value, plus what makes it unique
    /// beside the value (an indicator's type, an event's time).
    pub fn identity(&self) -> String {
        match (self.collection, &self.type_name, &self.happened_at) {
            (Collection::Indicators, Some(type_name), _) => format!("{} ({type_name})", self.value),
            (Collection::Events, _, Some(happened_at)) => format!("{} @ {happened_at}", self.value),
            _ => self.value.clone(),
        }
    }

    /// The object as its identity alone (no description, no attributes):
    /// what ThreatQ's upsert matches to the object it already holds, so
    /// sending it changes nothing but what comes with it, a relation.
    pub fn bare(&self) -> TqObject {
        TqObject {
            description: None,
            attributes: Vec::new(),
            ..self.clone()
        }
    }

    /// The object's [`ObjectKey`]: its collection and [`TqObject::identity`].
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            collection: self.collection,
            identity: self.identity(),
        }
    }
}

/// What names one object across a run: its collection and its
/// [`TqObject::identity`]. The identity alone is not enough (a campaign and
/// a malware family may share a name), so every set or map of objects
/// (refused ones, a merge of dead letters) is keyed by both, and this type
/// is the one place the pair is formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub collection: Collection,
    pub identity: String,
}

impl ObjectKey {
    pub fn new(collection: Collection, identity: impl Into<String>) -> ObjectKey {
        ObjectKey {
            collection,
            identity: identity.into(),
        }
    }
}

/// As the logs name an object: `indicators 'evil.example (FQDN)'`.
impl fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} '{}'", self.collection, self.identity)
    }
}

/// Objects plus the undirected relations between them, by index into `objects`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub objects: Vec<TqObject>,
    pub relations: Vec<(usize, usize)>,
}

/// How forwarded objects are attributed and labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Source name on every object and attribute, e.g. `Proofpoint TAP`.
    pub source: String,
    /// TLP id on the source: 1 RED, 2 AMBER, 3 GREEN, 4 WHITE.
    pub tlp_id: Option<u8>,
    /// Status given to new indicators, e.g. `Review`; existing ones keep theirs.
    pub indicator_status: String,
}

/// What a forward achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForwardReport {
    /// Objects ThreatQ stored, per collection.
    pub accepted: BTreeMap<Collection, usize>,
    /// Objects ThreatQ refused (or that could not be sent), with the reason.
    pub rejected: Vec<RejectedObject>,
    /// Relations ThreatQ stored.
    pub relations: usize,
    /// Relations not sent because one side was rejected or ThreatQ returned
    /// no id for it.
    pub relations_skipped: usize,
    /// HTTP requests made, retries and token requests included.
    pub requests: usize,
}

impl ForwardReport {
    pub fn accepted_total(&self) -> usize {
        self.accepted.values().sum()
    }
}

/// An object ThreatQ refused (or that could not be sent), in ThreatQ's
/// words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedObject {
    /// The object's index in [`Batch::objects`].
    pub index: usize,
    pub collection: Collection,
    /// See [`TqObject::identity`].
    pub identity: String,
    /// ThreatQ's HTTP status for the request that held this object alone
    /// (or, for a missing collection, any request of it); `None` when the
    /// object was rejected here without a request (it lacks what ThreatQ
    /// requires).
    pub status: Option<u16>,
    /// True when the object itself was stored (in the first pass) and only
    /// the request carrying its relations was refused (the linking pass);
    /// false when the object was not stored.
    pub relations_only: bool,
    /// ThreatQ's text (a relations-only rejection starts with "its
    /// relations were not stored: "); our own for a missing collection and
    /// an object not sent.
    pub reason: String,
}

impl RejectedObject {
    /// The refused object's [`ObjectKey`].
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(self.collection, self.identity.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_collection_and_the_identity_as_the_logs_show_them() {
        let object = TqObject {
            collection: Collection::Indicators,
            value: "evil.example".to_owned(),
            type_name: Some("FQDN".to_owned()),
            happened_at: None,
            description: None,
            attributes: Vec::new(),
        };
        let key = object.key();
        assert_eq!(
            key,
            ObjectKey::new(Collection::Indicators, "evil.example (FQDN)")
        );
        assert_eq!(key.to_string(), "indicators 'evil.example (FQDN)'");
        assert_ne!(
            ObjectKey::new(Collection::Campaign, "x"),
            ObjectKey::new(Collection::Malware, "x")
        );
    }
}
