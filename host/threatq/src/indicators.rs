//! Reading back and updating one indicator for verdicts TAP gives later
//! (a threat judged a false positive, cleared, or active again): find it
//! with its sources, change its status, and make the values of one
//! attribute that our source gave hold exactly one value.
//!
//! ```text
//! GET    /api/indicators?value=<v>&with=attributes,attributes.sources,sources,status,type
//!          {"total": n, "data": [{"id", "value", "type": {"name"},
//!            "status": {"id", "name"},
//!            "sources": [{"name", "created_at", ..}],
//!            "attributes": [{"id", "attribute_id", "name", "value",
//!                            "sources": [{"name", ..}], ..}]}]}
//! PUT    /api/indicators/{id}                            {"status": {"name": ..}}
//! PUT    /api/indicators/{id}/attributes/{value_id}      {"value": ..}
//! DELETE /api/indicators/{id}/attributes/{value_id}
//! POST   /api/indicators/{id}/attributes   {"name", "value", "sources": [{"name"}]}
//! ```
//!
//! These calls are isolated here because they are only partly verified
//! against a real ThreatQ. What rests on ThreatQuotient's own code
//! (threatqsdk and its Splunk SOAR / Phantom apps) or on answers of real
//! instances other integrations keep as test data, **verified**:
//! - the lookup `GET /api/indicators` with `value` and `with` parameters
//!   answers `{"total", "data": [...]}`, entries carrying `attributes`,
//!   `sources`, `type` and `status` when `with` names them;
//! - `with` takes nested relations with a dot (ThreatQuotient's SOAR app
//!   asks for `adversaries.sources` and `indicators.status`);
//! - an indicator's `sources` are objects with the source's `name` (and,
//!   in the answers Elastic's ThreatQ integration keeps, `created_at`,
//!   `source_type`, `creator_source_id` and more); threatqsdk also reads a
//!   `sources` list on each attribute value;
//! - `type` and `status` come as `{"name": ..}` objects, bare names, or a
//!   bare number (then an id, with no name);
//! - `PUT /api/indicators/{id}` with `{"status": {"name": ..}}` sets the
//!   status, and answers JSON;
//! - an attribute entry's `id` is that value's own id: `DELETE
//!   .../attributes/{id}` removes it;
//! - `POST .../attributes` takes `{name, value, sources: [{name}]}` and
//!   answers `{"total", "data": [{.., "attribute_id"}]}`.
//!
//! **Inferred**, and the first to check on a real instance:
//! - `attributes.sources` giving each attribute value its sources (asked
//!   for explicitly; an answer without them is refused, not guessed at);
//! - which source created an indicator: the one whose `created_at` is
//!   earlier than every other source's (ThreatQ documents no creator
//!   field we have seen; `creator_source_id` names who attached that one
//!   source, which for a feed is the feed itself);
//! - `PUT .../attributes/{value_id}` with `{"value": ..}` changing a value
//!   in place and keeping its sources (threatqsdk's own "modify" deletes
//!   the other values and posts the new one instead);
//! - `POST .../attributes` of a (name, value) pair another source already
//!   gave adding our source to that value rather than storing it twice;
//! - `value=` matching the value exactly rather than as a pattern (we pick
//!   the exact match among the entries anyway, so a looser match only
//!   costs a larger answer);
//! - attribute and source names compared ignoring case (ThreatQ's
//!   database collation is probably case-insensitive), so a `threat
//!   status` value is replaced, not joined by a `Threat Status` one;
//! - a `POST` retried after a lost answer not storing the pair twice;
//! - the answer to `DELETE` (its body is not read, like threatqsdk's).
//!
//! The simulator (`threatq-sim`) implements these guesses.

use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::error::ThreatqError;
use crate::reference::{data_list, kind};
use crate::session::{ApiRequest, Client};

const INDICATORS_PATH: &str = "/api/indicators";
/// What the lookup asks ThreatQ to include in each entry: the attribute
/// values with their sources (whose values may be replaced), the
/// indicator's own sources (who may decide its status), its status and
/// its type.
const LOOKUP_WITH: &str = "attributes,attributes.sources,sources,status,type";

/// An indicator as ThreatQ holds it, as much as the verdict update needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIndicator {
    pub id: u64,
    /// The status name, e.g. "Review"; None when the answer carries none.
    pub status: Option<String>,
    /// Every source ThreatQ lists for the indicator, in its order.
    pub sources: Vec<StoredSource>,
    pub attributes: Vec<StoredAttribute>,
}

/// One source of a [`StoredIndicator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSource {
    pub name: String,
    /// When the source was attached, `YYYY-MM-DD HH:MM:SS` (UTC); None
    /// when the answer gives no time in that form.
    pub created_at: Option<String>,
}

/// One attribute value of a [`StoredIndicator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttribute {
    /// This value's own id (not the attribute name's `attribute_id`): the
    /// one `PUT` and `DELETE .../attributes/{id}` take.
    pub id: u64,
    pub name: String,
    pub value: String,
    /// The names of the sources that gave this value.
    pub sources: Vec<String>,
}

/// Whether a source may decide an indicator's status
/// ([`StoredIndicator::ownership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The source is the indicator's only source.
    OnlySource,
    /// The source was attached before every other source: it created the
    /// indicator, others reported it later.
    Creator,
    /// Another source created it, which came first cannot be told (a time
    /// missing or shared), or the source is not among its sources at all.
    Others,
}

impl Ownership {
    /// The source created the indicator or is its only source.
    pub fn is_ours(self) -> bool {
        self != Ownership::Others
    }
}

/// Source names as ThreatQ matches them: ignoring case and surrounding
/// spaces.
fn same_source(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

impl StoredIndicator {
    /// Whether `source` made this indicator or is its only source: only
    /// then may a verdict of that source change the indicator's status
    /// (docs/mapping.md, "Verdict changes"). A creator is told by time: its
    /// `created_at` is strictly earlier than that of every other source;
    /// a tie, or a time missing, does not make it the creator.
    pub fn ownership(&self, source: &str) -> Ownership {
        let (ours, others): (Vec<&StoredSource>, Vec<&StoredSource>) = self
            .sources
            .iter()
            .partition(|held| same_source(&held.name, source));
        if ours.is_empty() {
            return Ownership::Others;
        }
        if others.is_empty() {
            return Ownership::OnlySource;
        }
        let earliest = |sources: &[&StoredSource]| -> Option<String> {
            sources
                .iter()
                .map(|held| held.created_at.clone())
                .collect::<Option<Vec<String>>>()
                .and_then(|times| times.into_iter().min())
        };
        match (earliest(&ours), earliest(&others)) {
            (Some(ours), Some(others)) if ours < others => Ownership::Creator,
            _ => Ownership::Others,
        }
    }

    /// The names of the indicator's sources other than `source`, for the
    /// log.
    pub fn other_sources(&self, source: &str) -> Vec<&str> {
        self.sources
            .iter()
            .filter(|held| !same_source(&held.name, source))
            .map(|held| held.name.as_str())
            .collect()
    }
}

impl Client {
    /// The indicator (type name, value), or None when ThreatQ has none.
    ///
    /// `GET /api/indicators?value=<value>&with=attributes,attributes.sources,sources,status,type`,
    /// then the entry whose type name equals `type_name` ignoring case and
    /// whose value equals `value` exactly (the first, should ThreatQ hold
    /// two). Lenient about the entries (ids as numbers or numeric text,
    /// `type`/`status` as objects or names, `type_name` when there is no
    /// `type`), but an answer this cannot read safely is
    /// [`ThreatqError::UnexpectedResponse`] describing the shape without
    /// quoting it: no `data` list, an entry that is not an object or has no
    /// value, or the matching entry without an id, a readable type, an
    /// `attributes` list with each value's `sources` (without them a later
    /// [`Client::set_indicator_attribute`] could not tell our values from
    /// another source's), or a `sources` list of named sources (without it
    /// [`StoredIndicator::ownership`] could not tell who made it).
    pub async fn find_indicator(
        &self,
        type_name: &str,
        value: &str,
    ) -> Result<Option<StoredIndicator>, ThreatqError> {
        let what = format!("looking up a {type_name} indicator in ThreatQ");
        let request = ApiRequest {
            method: Method::GET,
            path: INDICATORS_PATH.to_owned(),
            // reqwest form-encodes the query (via the url crate), so `&`,
            // `#`, `+`, spaces and non-ASCII in a URL indicator arrive intact.
            query: vec![
                ("value", value.to_owned()),
                ("with", LOOKUP_WITH.to_owned()),
            ],
            body: None,
            what,
        };
        let body = self.call(&request, &AtomicUsize::new(0)).await?;
        pick(&body, type_name, value).map_err(|detail| ThreatqError::UnexpectedResponse {
            what: request.what,
            detail,
        })
    }

    /// Sets the indicator's status by name: `PUT /api/indicators/{id}` with
    /// `{"status": {"name": status}}`. ThreatQ refuses a name it does not
    /// know (a [`ThreatqError::Refused`], 422 in the simulator). The caller
    /// checks beforehand that the status is still the one it gave.
    pub async fn set_indicator_status(&self, id: u64, status: &str) -> Result<(), ThreatqError> {
        let what = format!("setting the status of ThreatQ indicator {id} to {status}");
        let body = json!({ "status": { "name": status } });
        self.write(
            Method::PUT,
            format!("{INDICATORS_PATH}/{id}"),
            Some(body),
            what,
        )
        .await
    }

    /// Makes the values of the indicator's attribute `name` that `source`
    /// gave hold exactly `value`, working from `indicator.attributes` as
    /// [`Client::find_indicator`] read them (no extra lookup). Values other
    /// sources gave are never changed or removed, and neither is a value
    /// `source` gave together with another source (it is theirs too):
    ///
    /// - a value equal to `value` that `source` gave already: kept, nothing
    ///   written;
    /// - a value equal to `value` only other sources gave: `POST` it with
    ///   `source`, which adds our source to that value;
    /// - otherwise the first value only `source` gave is `PUT` to `value`
    ///   (so it keeps its id and source), or, when there is none, `value`
    ///   is `POST`ed with `source`;
    /// - then every other value only `source` gave is `DELETE`d. A
    ///   `DELETE` answered 404 is taken as done (the value is gone, perhaps
    ///   by a retried request).
    ///
    /// Names are compared ignoring case, values exactly. A failure part-way
    /// leaves the new value in place (it is written first); calling again
    /// after a fresh [`Client::find_indicator`] finishes the job.
    pub async fn set_indicator_attribute(
        &self,
        indicator: &StoredIndicator,
        name: &str,
        value: &str,
        source: &str,
    ) -> Result<(), ThreatqError> {
        let id = indicator.id;
        let plan = plan_attribute(&indicator.attributes, name, value, source);
        let base = format!("{INDICATORS_PATH}/{id}/attributes");
        let what = |verb: &str| format!("{verb} attribute {name} of ThreatQ indicator {id}");
        match plan.write {
            Write::Nothing => {}
            Write::Post => {
                let body = json!({ "name": name, "value": value, "sources": [{ "name": source }] });
                self.write(Method::POST, base.clone(), Some(body), what("adding"))
                    .await?;
            }
            Write::Put(value_id) => {
                let body = json!({ "value": value });
                self.write(
                    Method::PUT,
                    format!("{base}/{value_id}"),
                    Some(body),
                    what("setting"),
                )
                .await?;
            }
        }
        for value_id in plan.delete {
            let deleted = self
                .write(
                    Method::DELETE,
                    format!("{base}/{value_id}"),
                    None,
                    what("removing an old value of"),
                )
                .await;
            match deleted {
                Err(ThreatqError::Refused { status: 404, .. }) => {
                    tracing::debug!(
                        "attribute value {value_id} of ThreatQ indicator {id} was already gone"
                    );
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Sends one write; its answer's body is not needed beyond what
    /// `call` checks (a 2xx carrying `errors` is still a failure).
    async fn write(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
        what: String,
    ) -> Result<(), ThreatqError> {
        let request = ApiRequest {
            method,
            path,
            query: Vec::new(),
            body: body.map(|body| Bytes::from(body.to_string())),
            what,
        };
        self.call(&request, &AtomicUsize::new(0)).await.map(drop)
    }
}

/// What [`Client::set_indicator_attribute`] sends.
#[derive(Debug, PartialEq, Eq)]
struct AttributePlan {
    write: Write,
    /// Value ids to delete, after the write.
    delete: Vec<u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Write {
    Nothing,
    Post,
    /// The value id to set.
    Put(u64),
}

fn plan_attribute(
    current: &[StoredAttribute],
    name: &str,
    value: &str,
    source: &str,
) -> AttributePlan {
    let wanted = name.trim().to_lowercase();
    let same_name: Vec<&StoredAttribute> = current
        .iter()
        .filter(|attribute| attribute.name.trim().to_lowercase() == wanted)
        .collect();
    let gave =
        |attribute: &StoredAttribute| attribute.sources.iter().any(|s| same_source(s, source));
    // Ours alone: the only values this source may change or remove.
    let ours_alone = |attribute: &StoredAttribute| {
        gave(attribute) && attribute.sources.iter().all(|s| same_source(s, source))
    };
    let (write, kept) = if let Some(held) = same_name
        .iter()
        .find(|attribute| attribute.value == value && gave(attribute))
    {
        (Write::Nothing, Some(held.id))
    } else if same_name.iter().any(|attribute| attribute.value == value) {
        (Write::Post, None)
    } else if let Some(held) = same_name.iter().find(|attribute| ours_alone(attribute)) {
        (Write::Put(held.id), Some(held.id))
    } else {
        (Write::Post, None)
    };
    let mut delete: Vec<u64> = Vec::new();
    for attribute in &same_name {
        if ours_alone(attribute) && Some(attribute.id) != kept && !delete.contains(&attribute.id) {
            delete.push(attribute.id);
        }
    }
    AttributePlan { write, delete }
}

/// The entry of a lookup answer that is the indicator (type name, value).
/// Errors describe the shape only, never quote the answer.
fn pick(body: &Value, type_name: &str, value: &str) -> Result<Option<StoredIndicator>, String> {
    let entries = data_list(body, "indicators")?;
    let wanted_type = type_name.trim().to_lowercase();
    for (position, entry) in entries.iter().enumerate() {
        let Value::Object(fields) = entry else {
            return Err(format!(
                "entry {position} of \"data\" is {}, not an indicator",
                kind(entry)
            ));
        };
        let entry_value = match fields.get("value") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(other) => {
                return Err(format!(
                    "the \"value\" of entry {position} is {}, not text",
                    kind(other)
                ));
            }
            None => return Err(format!("entry {position} of \"data\" has no \"value\"")),
        };
        if entry_value != value {
            continue;
        }
        let Some(entry_type) = type_of(fields) else {
            return Err(format!(
                "entry {position}, the value looked up, has no type name (neither \"type\": {{\"name\"}} nor \"type_name\")"
            ));
        };
        if entry_type.trim().to_lowercase() == wanted_type {
            return indicator(fields, position).map(Some);
        }
    }
    Ok(None)
}

/// `type` as `{"name": ..}` or a bare name, else `type_name`. A bare
/// number is a type id, which names nothing.
fn type_of(fields: &Map<String, Value>) -> Option<&str> {
    let from_type = match fields.get("type") {
        Some(Value::Object(reference)) => reference.get("name").and_then(Value::as_str),
        Some(Value::String(name)) => Some(name.as_str()),
        _ => None,
    };
    from_type
        .or_else(|| fields.get("type_name").and_then(Value::as_str))
        .filter(|name| !name.trim().is_empty())
}

fn indicator(fields: &Map<String, Value>, position: usize) -> Result<StoredIndicator, String> {
    let id = fields
        .get("id")
        .and_then(id_of)
        .ok_or_else(|| format!("entry {position} has no numeric \"id\""))?;
    let status = match fields.get("status") {
        None | Some(Value::Null) | Some(Value::Number(_)) => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(Value::Object(reference)) => match reference.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.as_str()),
            Some(other) => {
                return Err(format!(
                    "the status name of entry {position} is {}, not text",
                    kind(other)
                ));
            }
        },
        Some(other) => {
            return Err(format!(
                "the \"status\" of entry {position} is {}, neither a name nor an object",
                kind(other)
            ));
        }
    }
    .map(str::trim)
    .filter(|name| !name.is_empty())
    .map(str::to_owned);
    let attributes = match fields.get("attributes") {
        Some(Value::Array(attributes)) => attributes,
        Some(other) => {
            return Err(format!(
                "the \"attributes\" of entry {position} are {}, not a list",
                kind(other)
            ));
        }
        None => {
            return Err(format!(
                "entry {position} has no \"attributes\" list (was with=attributes ignored?)"
            ));
        }
    };
    let attributes = attributes
        .iter()
        .enumerate()
        .map(|(index, attribute)| {
            read_attribute(attribute)
                .map_err(|problem| format!("attribute {index} of entry {position} {problem}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sources = match fields.get("sources") {
        Some(Value::Array(sources)) => sources,
        Some(other) => {
            return Err(format!(
                "the \"sources\" of entry {position} are {}, not a list",
                kind(other)
            ));
        }
        None => {
            return Err(format!(
                "entry {position} has no \"sources\" list (was with=sources ignored?)"
            ));
        }
    };
    let sources = sources
        .iter()
        .enumerate()
        .map(|(index, held)| {
            read_source(held)
                .map_err(|problem| format!("source {index} of entry {position} {problem}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StoredIndicator {
        id,
        status,
        sources,
        attributes,
    })
}

/// One entry of an indicator's `sources`: `{"name", "created_at"}` (the
/// time may sit in a `pivot` object instead, as Laravel writes a pivot
/// table's columns).
fn read_source(held: &Value) -> Result<StoredSource, String> {
    let Value::Object(fields) = held else {
        return Err(format!("is {}, not an object", kind(held)));
    };
    let name = source_name(fields)?;
    let created_at = fields
        .get("created_at")
        .or_else(|| {
            fields
                .get("pivot")
                .and_then(|pivot| pivot.get("created_at"))
        })
        .and_then(Value::as_str)
        .and_then(threatq_time);
    Ok(StoredSource { name, created_at })
}

fn source_name(fields: &Map<String, Value>) -> Result<String, String> {
    match fields.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(name.clone()),
        Some(Value::String(_)) => Err("has an empty \"name\"".to_owned()),
        Some(other) => Err(format!("has a \"name\" that is {}", kind(other))),
        None => Err("has no \"name\"".to_owned()),
    }
}

/// `YYYY-MM-DD HH:MM:SS` (what ThreatQ writes; a fraction after it is
/// dropped), else None: a time in another form cannot be compared.
fn threatq_time(text: &str) -> Option<String> {
    let text = text.trim();
    let head = text.get(..19)?;
    let rest = &text[19..];
    let shape = head.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let tail = rest.is_empty()
        || rest
            .strip_prefix('.')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    (shape && tail).then(|| head.to_owned())
}

fn read_attribute(attribute: &Value) -> Result<StoredAttribute, String> {
    let Value::Object(fields) = attribute else {
        return Err(format!("is {}, not an object", kind(attribute)));
    };
    let id = fields
        .get("id")
        .and_then(id_of)
        .ok_or_else(|| "has no numeric \"id\"".to_owned())?;
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(other) => return Err(format!("has a \"name\" that is {}", kind(other))),
        None => return Err("has no \"name\"".to_owned()),
    };
    // As ThreatQ (and the simulator) store non-text values.
    let value = match fields.get("value") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(flag)) => if *flag { "Yes" } else { "No" }.to_owned(),
        Some(other) => return Err(format!("has a \"value\" that is {}", kind(other))),
        None => return Err("has no \"value\"".to_owned()),
    };
    let sources = match fields.get("sources") {
        Some(Value::Array(sources)) => sources
            .iter()
            .enumerate()
            .map(|(index, held)| match held {
                Value::Object(fields) => source_name(fields)
                    .map_err(|problem| format!("has a source {index} that {problem}")),
                Value::String(name) if !name.trim().is_empty() => Ok(name.clone()),
                other => Err(format!("has a source {index} that is {}", kind(other))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(format!("has \"sources\" that are {}", kind(other))),
        None => {
            return Err(
                "has no \"sources\" list (was with=attributes.sources ignored?)".to_owned(),
            );
        }
    };
    Ok(StoredAttribute {
        id,
        name,
        value,
        sources,
    })
}

/// An id as a number or as numeric text.
fn id_of(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use threatq_sim::{ThreatqSim, ThreatqSimConfig, Update, UpdateKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::{RetryPolicy, ThreatqConfig};

    const SOURCE: &str = "Proofpoint TAP";
    const URL: &str = "https://phish.example/login?next=a&b=c d#x+y%20é";

    fn client_for(base_url: &str) -> Client {
        Client::new(
            ThreatqConfig {
                base_url: base_url.parse().expect("base URL"),
                client_id: "sim-client".to_owned(),
                username: "analyst@example.com".to_owned(),
                password: "sim-password".into(),
            },
            reqwest::Client::new(),
            RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
        )
    }

    /// A simulator holding `URL` as a URL indicator (status Review) with
    /// the given `Threat Status` values, and a client for it.
    async fn start(threat_statuses: &[&str]) -> (ThreatqSim, Client) {
        let sim = ThreatqSim::start(ThreatqSimConfig::default())
            .await
            .expect("sim starts");
        let client = client_for(&sim.base_url());
        let mut attributes: Vec<Value> = threat_statuses
            .iter()
            .map(|value| json!({ "name": "Threat Status", "value": value, "sources": [{ "name": SOURCE }] }))
            .collect();
        attributes.push(json!({ "name": "Threat ID", "value": "t-1" }));
        let items = json!([{
            "value": URL,
            "type": { "name": "URL" },
            "status": { "name": "Review" },
            "attributes": attributes,
            "sources": [{ "name": SOURCE }],
        }]);
        let request = ApiRequest {
            method: Method::POST,
            path: "/api/indicators/consume".to_owned(),
            query: Vec::new(),
            body: Some(Bytes::from(items.to_string())),
            what: "seeding the simulator".to_owned(),
        };
        client
            .call(&request, &AtomicUsize::new(0))
            .await
            .expect("seeded");
        sim.clear_requests();
        (sim, client)
    }

    /// An attribute value our source gave.
    fn attribute(id: u64, name: &str, value: &str) -> StoredAttribute {
        given(id, name, value, &[SOURCE])
    }

    /// An attribute value the named sources gave.
    fn given(id: u64, name: &str, value: &str, sources: &[&str]) -> StoredAttribute {
        StoredAttribute {
            id,
            name: name.to_owned(),
            value: value.to_owned(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn find_reads_the_indicator_with_its_status_and_attribute_value_ids() {
        let (sim, client) = start(&["active"]).await;
        let found = client
            .find_indicator("url", URL)
            .await
            .expect("lookup")
            .expect("found");
        let held = sim.snapshot().find("indicators", URL).unwrap().clone();
        assert_eq!(found.id, held.id);
        assert_eq!(found.status.as_deref(), Some("Review"));
        assert_eq!(
            found.attributes,
            held.attributes
                .iter()
                .map(|a| given(
                    a.id,
                    &a.name,
                    &a.value,
                    &a.sources.iter().map(String::as_str).collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            found.sources,
            [StoredSource {
                name: SOURCE.to_owned(),
                created_at: Some(held.sources[0].created_at.clone()),
            }]
        );
        assert_eq!(found.ownership(SOURCE), Ownership::OnlySource);
        let requests = sim.requests();
        let lookup = requests.last().expect("the lookup");
        assert_eq!(
            (lookup.method.as_str(), lookup.path.as_str()),
            ("GET", "/api/indicators")
        );
        let query = lookup.query.as_deref().unwrap_or_default();
        assert!(
            query.contains("with=attributes%2Cattributes.sources%2Csources%2Cstatus%2Ctype"),
            "{query}"
        );
        assert!(!query.contains(' ') && !query.contains('#'), "{query}");
    }

    #[tokio::test]
    async fn find_answers_none_for_an_absent_value_or_another_type() {
        let (_sim, client) = start(&["active"]).await;
        assert_eq!(
            client
                .find_indicator("URL", "https://other.example/")
                .await
                .unwrap(),
            None
        );
        assert_eq!(client.find_indicator("FQDN", URL).await.unwrap(), None);
        // A value differing only in case is another indicator.
        assert_eq!(
            client
                .find_indicator("URL", &URL.to_uppercase())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn the_status_is_set_by_name_and_an_unknown_name_is_refused() {
        let (sim, client) = start(&["active"]).await;
        let found = client.find_indicator("URL", URL).await.unwrap().unwrap();
        client
            .set_indicator_status(found.id, "Whitelisted")
            .await
            .expect("status set");
        assert_eq!(
            sim.updates(),
            [Update {
                collection: "indicators".to_owned(),
                id: found.id,
                what: UpdateKind::Status {
                    from: Some("Review".to_owned()),
                    to: "Whitelisted".to_owned(),
                },
            }]
        );
        let again = client.find_indicator("URL", URL).await.unwrap().unwrap();
        assert_eq!(again.status.as_deref(), Some("Whitelisted"));

        let error = client
            .set_indicator_status(found.id, "False Positive")
            .await
            .unwrap_err();
        assert!(
            matches!(error, ThreatqError::Refused { status: 422, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("status"), "{error}");
        let error = client
            .set_indicator_status(4242, "Active")
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(404), "{error:?}");
        assert_eq!(sim.updates().len(), 1);
    }

    #[tokio::test]
    async fn two_old_values_become_one_holding_the_new_verdict() {
        let (sim, client) = start(&["active", "stale"]).await;
        let found = client.find_indicator("URL", URL).await.unwrap().unwrap();
        let (first, second) = (found.attributes[0].id, found.attributes[1].id);
        client
            .set_indicator_attribute(&found, "Threat Status", "falsePositive", SOURCE)
            .await
            .expect("attribute set");

        let held = sim.snapshot().find("indicators", URL).unwrap().clone();
        assert_eq!(held.attribute_values("Threat Status"), ["falsePositive"]);
        assert_eq!(held.attribute_values("Threat ID"), ["t-1"]);
        let kept = held
            .attributes
            .iter()
            .find(|a| a.name == "Threat Status")
            .unwrap();
        assert_eq!(kept.id, first);
        assert_eq!(kept.sources, [SOURCE]);
        let update = |what| Update {
            collection: "indicators".to_owned(),
            id: found.id,
            what,
        };
        assert_eq!(
            sim.updates(),
            [
                update(UpdateKind::AttributeSet {
                    name: "Threat Status".to_owned(),
                    from: "active".to_owned(),
                    to: "falsePositive".to_owned(),
                }),
                update(UpdateKind::AttributeDeleted {
                    name: "Threat Status".to_owned(),
                    value: "stale".to_owned(),
                }),
            ]
        );
        let writes: Vec<(String, String)> = sim
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method, r.path))
            .collect();
        let base = format!("/api/indicators/{}/attributes", found.id);
        assert_eq!(
            writes,
            [
                ("PUT".to_owned(), format!("{base}/{first}")),
                ("DELETE".to_owned(), format!("{base}/{second}")),
            ]
        );

        // Again with the stale view: the kept value is set to what it
        // already holds, and the DELETE of the value already gone is taken
        // as done. With a fresh view nothing is written.
        sim.clear_updates();
        client
            .set_indicator_attribute(&found, "Threat Status", "falsePositive", SOURCE)
            .await
            .expect("second time");
        assert_eq!(
            sim.updates(),
            [update(UpdateKind::AttributeSet {
                name: "Threat Status".to_owned(),
                from: "falsePositive".to_owned(),
                to: "falsePositive".to_owned(),
            })]
        );
        sim.clear_updates();
        let fresh = client.find_indicator("URL", URL).await.unwrap().unwrap();
        client
            .set_indicator_attribute(&fresh, "threat status", "falsePositive", SOURCE)
            .await
            .expect("third time");
        assert!(sim.updates().is_empty());
    }

    #[tokio::test]
    async fn a_value_already_holding_the_verdict_is_kept_and_the_others_go() {
        let (sim, client) = start(&["active", "cleared", "stale"]).await;
        let found = client.find_indicator("URL", URL).await.unwrap().unwrap();
        client
            .set_indicator_attribute(&found, "Threat Status", "cleared", SOURCE)
            .await
            .expect("attribute set");
        let held = sim.snapshot().find("indicators", URL).unwrap().clone();
        assert_eq!(held.attribute_values("Threat Status"), ["cleared"]);
        assert!(
            sim.updates()
                .iter()
                .all(|u| matches!(u.what, UpdateKind::AttributeDeleted { .. })),
            "{:?}",
            sim.updates()
        );
        assert_eq!(sim.updates().len(), 2);
    }

    #[tokio::test]
    async fn an_attribute_the_indicator_lacks_is_added_with_the_source() {
        let (sim, client) = start(&[]).await;
        let found = client.find_indicator("URL", URL).await.unwrap().unwrap();
        assert_eq!(found.attributes.len(), 1);
        client
            .set_indicator_attribute(&found, "Threat Status", "cleared", SOURCE)
            .await
            .expect("attribute added");
        let held = sim.snapshot().find("indicators", URL).unwrap().clone();
        assert_eq!(held.attribute_values("Threat Status"), ["cleared"]);
        let added = held
            .attributes
            .iter()
            .find(|a| a.name == "Threat Status")
            .unwrap();
        assert_eq!(added.sources, [SOURCE]);
        assert_eq!(
            sim.updates(),
            [Update {
                collection: "indicators".to_owned(),
                id: found.id,
                what: UpdateKind::AttributeAdded {
                    name: "Threat Status".to_owned(),
                    value: "cleared".to_owned(),
                },
            }]
        );
    }

    #[tokio::test]
    async fn another_sources_values_survive_and_the_first_source_owns_the_indicator() {
        const OTHER: &str = "Other Feed";
        let (sim, client) = start(&["active"]).await;
        // Another feed reports the same indicator later, with its own
        // verdict and the same `active` our source gave.
        sim.consume(
            "indicators",
            &json!([{
                "value": URL,
                "type": { "name": "URL" },
                "attributes": [
                    { "name": "Threat Status", "value": "malicious", "sources": [{ "name": OTHER }] },
                    { "name": "Threat Status", "value": "active", "sources": [{ "name": OTHER }] },
                ],
                "sources": [{ "name": OTHER }],
            }]),
        )
        .expect("the other feed's objects");
        let found = client.find_indicator("URL", URL).await.unwrap().unwrap();
        assert_eq!(found.ownership(SOURCE), Ownership::Creator);
        assert_eq!(found.ownership(OTHER), Ownership::Others);
        assert_eq!(found.other_sources(SOURCE), [OTHER]);

        client
            .set_indicator_attribute(&found, "Threat Status", "falsePositive", SOURCE)
            .await
            .expect("attribute set");
        let held = sim.snapshot().find("indicators", URL).unwrap().clone();
        assert_eq!(
            held.attribute_values("Threat Status"),
            ["active", "malicious", "falsePositive"],
            "the shared value and the other feed's stay"
        );
        let sources_of = |held: &threatq_sim::StoredObject, value: &str| {
            held.attributes
                .iter()
                .find(|a| a.name == "Threat Status" && a.value == value)
                .map(|a| a.sources.clone())
                .unwrap()
        };
        assert_eq!(sources_of(&held, "falsePositive"), [SOURCE]);
        assert_eq!(sources_of(&held, "malicious"), [OTHER]);

        // Our verdict now equals the other feed's: our source joins that
        // value and our old one goes.
        let found = client.find_indicator("URL", URL).await.unwrap().unwrap();
        client
            .set_indicator_attribute(&found, "Threat Status", "malicious", SOURCE)
            .await
            .expect("attribute set");
        let held = sim.snapshot().find("indicators", URL).unwrap().clone();
        assert_eq!(
            held.attribute_values("Threat Status"),
            ["active", "malicious"]
        );
        assert_eq!(sources_of(&held, "malicious"), [OTHER, SOURCE]);
        assert_eq!(sources_of(&held, "active"), [SOURCE, OTHER]);
    }

    #[test]
    fn the_plan_keeps_one_value_and_deletes_the_rest() {
        let current = [
            attribute(7, "Threat Status", "active"),
            attribute(8, "Threat ID", "t-1"),
            attribute(9, "threat status ", "stale"),
            attribute(9, "Threat Status", "stale"),
            attribute(10, "Threat Status", "cleared"),
        ];
        assert_eq!(
            plan_attribute(&current, "Threat Status", "falsePositive", SOURCE),
            AttributePlan {
                write: Write::Put(7),
                delete: vec![9, 10]
            }
        );
        assert_eq!(
            plan_attribute(&current, "Threat Status", "cleared", SOURCE),
            AttributePlan {
                write: Write::Nothing,
                delete: vec![7, 9]
            }
        );
        assert_eq!(
            plan_attribute(&current[..2], "Threat Status", "active", SOURCE),
            AttributePlan {
                write: Write::Nothing,
                delete: vec![]
            }
        );
        assert_eq!(
            plan_attribute(&current[1..2], "Threat Status", "x", SOURCE),
            AttributePlan {
                write: Write::Post,
                delete: vec![]
            }
        );
        // Source names as ThreatQ matches them.
        assert_eq!(
            plan_attribute(
                &[given(7, "Threat Status", "active", &[" proofpoint tap"])],
                "Threat Status",
                "cleared",
                SOURCE
            ),
            AttributePlan {
                write: Write::Put(7),
                delete: vec![]
            }
        );
    }

    #[test]
    fn the_plan_never_changes_or_removes_another_sources_values() {
        const OTHER: &str = "Other Feed";
        // Another feed's verdict, and one value both gave.
        let theirs = given(1, "Threat Status", "malicious", &[OTHER]);
        let shared = given(2, "Threat Status", "active", &[OTHER, SOURCE]);
        let ours = attribute(3, "Threat Status", "cleared");
        let unsourced = given(4, "Threat Status", "unknown", &[]);

        // Only our own value is changed; theirs, the shared one and one
        // nobody can be shown to have given stay.
        assert_eq!(
            plan_attribute(
                &[
                    theirs.clone(),
                    shared.clone(),
                    ours.clone(),
                    unsourced.clone()
                ],
                "Threat Status",
                "falsePositive",
                SOURCE
            ),
            AttributePlan {
                write: Write::Put(3),
                delete: vec![]
            }
        );
        // With no value of our own to change, ours is added beside theirs.
        assert_eq!(
            plan_attribute(
                &[theirs.clone(), shared.clone(), unsourced.clone()],
                "Threat Status",
                "falsePositive",
                SOURCE
            ),
            AttributePlan {
                write: Write::Post,
                delete: vec![]
            }
        );
        // A value we share already holds the verdict: kept, and our other
        // value goes.
        assert_eq!(
            plan_attribute(
                &[theirs.clone(), shared.clone(), ours.clone()],
                "Threat Status",
                "active",
                SOURCE
            ),
            AttributePlan {
                write: Write::Nothing,
                delete: vec![3]
            }
        );
        // Another source holds the very verdict: our source is added to
        // that value (a POST of the pair), never a PUT that would make a
        // second value equal to theirs; our old value goes.
        assert_eq!(
            plan_attribute(
                &[theirs.clone(), ours.clone()],
                "Threat Status",
                "malicious",
                SOURCE
            ),
            AttributePlan {
                write: Write::Post,
                delete: vec![3]
            }
        );
    }

    #[test]
    fn the_source_that_came_first_or_alone_owns_the_indicator() {
        let source = |name: &str, at: Option<&str>| StoredSource {
            name: name.to_owned(),
            created_at: at.map(str::to_owned),
        };
        let indicator = |sources: Vec<StoredSource>| StoredIndicator {
            id: 1,
            status: Some("Review".to_owned()),
            sources,
            attributes: Vec::new(),
        };
        let ours = |at| source(SOURCE, at);
        let theirs = |at| source("Other Feed", at);
        let early = Some("2026-01-01 10:00:00");
        let late = Some("2026-01-01 10:00:01");
        for (sources, expected) in [
            (vec![ours(None)], Ownership::OnlySource),
            (
                vec![ours(early), source("proofpoint TAP ", late)],
                Ownership::OnlySource,
            ),
            (vec![ours(early), theirs(late)], Ownership::Creator),
            (vec![theirs(late), ours(early)], Ownership::Creator),
            (vec![theirs(early), ours(late)], Ownership::Others),
            // The same second: which came first cannot be told.
            (vec![ours(early), theirs(early)], Ownership::Others),
            (vec![ours(early), theirs(None)], Ownership::Others),
            (vec![ours(None), theirs(late)], Ownership::Others),
            (vec![theirs(early)], Ownership::Others),
            (vec![], Ownership::Others),
        ] {
            let held = indicator(sources.clone());
            assert_eq!(held.ownership(SOURCE), expected, "{sources:?}");
        }
        let shared = indicator(vec![ours(early), theirs(late)]);
        assert_eq!(shared.other_sources(SOURCE), ["Other Feed"]);
        assert!(Ownership::Creator.is_ours() && !Ownership::Others.is_ours());
    }

    #[test]
    fn source_times_are_read_in_threatqs_form_only() {
        assert_eq!(
            threatq_time("2020-09-11 14:35:53").as_deref(),
            Some("2020-09-11 14:35:53")
        );
        assert_eq!(
            threatq_time(" 2020-09-11 14:35:53.123456").as_deref(),
            Some("2020-09-11 14:35:53")
        );
        for odd in [
            "2020-09-11T14:35:53Z",
            "2020-09-11 14:35",
            "11/09/2020 14:35:53",
            "2020-09-11 14:35:53+02",
            "",
        ] {
            assert_eq!(threatq_time(odd), None, "{odd}");
        }
        let held =
            read_source(&json!({ "name": "A", "pivot": { "created_at": "2020-09-11 14:35:53" } }))
                .unwrap();
        assert_eq!(held.created_at.as_deref(), Some("2020-09-11 14:35:53"));
        let held = read_source(&json!({ "name": "A", "created_at": 7 })).unwrap();
        assert_eq!(held.created_at, None);
    }

    #[test]
    fn lookups_are_read_leniently() {
        let body = json!({
            "total": 4,
            "data": [
                { "id": 1, "value": "evil.example", "type": { "name": "URL" }, "attributes": [],
                  "sources": [] },
                { "id": 2, "value": "EVIL.example", "type": { "name": "FQDN" }, "attributes": [] },
                { "id": 3, "value": "evil.example", "type": 7, "attributes": 5 },
                { "id": "4", "value": "evil.example", "type": "fqdn", "type_name": "URL",
                  "status": { "id": 1, "name": " Active " },
                  "sources": [
                      { "id": 4, "source_id": 12, "name": "Proofpoint TAP", "source_type": "connectors",
                        "creator_source_id": 12, "created_at": "2020-09-11 14:35:53" },
                      { "name": "Other Feed", "created_at": "soon" },
                  ],
                  "attributes": [
                      { "id": "11", "attribute_id": 3, "name": "Threat Status", "value": "active",
                        "sources": [{ "name": "Proofpoint TAP", "tlp_id": 2 }, "Other Feed"] },
                      { "id": 12, "name": "Score", "value": 7, "sources": [] },
                      { "id": 13, "name": "Flag", "value": true, "sources": [] },
                  ] },
            ],
        });
        // Entry 3 (`type` a bare id and nothing else) has no type name.
        assert!(
            pick(&body, "FQDN", "evil.example")
                .unwrap_err()
                .contains("entry 2, the value looked up, has no type name")
        );
        let mut body = body;
        body["data"][2]["type_name"] = json!("Mutex");
        let found = pick(&body, "fqdn", "evil.example").unwrap().unwrap();
        assert_eq!(
            found,
            StoredIndicator {
                id: 4,
                status: Some("Active".to_owned()),
                sources: vec![
                    StoredSource {
                        name: "Proofpoint TAP".to_owned(),
                        created_at: Some("2020-09-11 14:35:53".to_owned()),
                    },
                    StoredSource {
                        name: "Other Feed".to_owned(),
                        created_at: None,
                    },
                ],
                attributes: vec![
                    given(11, "Threat Status", "active", &[SOURCE, "Other Feed"]),
                    given(12, "Score", "7", &[]),
                    given(13, "Flag", "Yes", &[]),
                ],
            }
        );
        let found = pick(&body, "URL", "evil.example").unwrap().unwrap();
        assert_eq!((found.id, found.status), (1, None));
        assert_eq!(pick(&body, "URL", "nowhere.example").unwrap(), None);
        assert_eq!(
            pick(&json!({ "total": 0, "data": [] }), "URL", "x").unwrap(),
            None
        );

        for status in [json!("Review"), json!({ "name": "Review" })] {
            let body = json!({ "data": [{ "id": 1, "value": "v", "type": "URL", "status": status, "attributes": [], "sources": [] }] });
            assert_eq!(
                pick(&body, "URL", "v").unwrap().unwrap().status.as_deref(),
                Some("Review")
            );
        }
        for status in [json!(4), json!({ "id": 4 }), json!(null), json!(" ")] {
            let body = json!({ "data": [{ "id": 1, "value": "v", "type": "URL", "status": status, "attributes": [], "sources": [] }] });
            assert_eq!(pick(&body, "URL", "v").unwrap().unwrap().status, None);
        }
    }

    #[test]
    fn odd_shapes_are_described_without_quoting_the_answer() {
        let secret = "secret-ish-7f3";
        let entry = |fields: Value| {
            let mut entry = json!({ "id": 1, "value": "v", "type": { "name": "URL" }, "attributes": [], "sources": [] });
            for (key, value) in fields.as_object().unwrap() {
                entry[key] = value.clone();
            }
            json!({ "data": [entry] })
        };
        for (body, expected) in [
            (json!({ "data": secret }), "\"data\" is a string"),
            (
                json!({ "data": { "value": secret } }),
                "\"data\" is an object",
            ),
            (json!([secret]), "the answer (a list) has no \"data\""),
            (
                json!({ "message": secret }),
                "the answer (an object) has no \"data\"",
            ),
            (
                json!({ "data": [secret] }),
                "entry 0 of \"data\" is a string",
            ),
            (
                json!({ "data": [{ "id": 1, "name": secret }] }),
                "entry 0 of \"data\" has no \"value\"",
            ),
            (
                json!({ "data": [{ "value": [secret] }] }),
                "the \"value\" of entry 0 is a list",
            ),
            (
                entry(json!({ "id": secret })),
                "entry 0 has no numeric \"id\"",
            ),
            (entry(json!({ "id": -1 })), "entry 0 has no numeric \"id\""),
            (
                entry(json!({ "status": [secret] })),
                "the \"status\" of entry 0 is a list",
            ),
            (
                entry(json!({ "status": { "name": [secret] } })),
                "the status name of entry 0 is a list",
            ),
            (
                entry(json!({ "attributes": null })),
                "the \"attributes\" of entry 0 are null",
            ),
            (
                entry(json!({ "attributes": { "name": secret } })),
                "are an object, not a list",
            ),
            (
                entry(json!({ "attributes": [secret] })),
                "attribute 0 of entry 0 is a string",
            ),
            (
                entry(json!({ "attributes": [{ "name": "n", "value": secret }] })),
                "attribute 0 of entry 0 has no numeric \"id\"",
            ),
            (
                entry(json!({ "attributes": [{ "id": 1, "name": [secret], "value": "v" }] })),
                "has a \"name\" that is a list",
            ),
            (
                entry(
                    json!({ "attributes": [{ "id": 1, "name": "n", "value": { "v": secret } }] }),
                ),
                "has a \"value\" that is an object",
            ),
            (
                entry(json!({ "attributes": [{ "id": 1, "name": "n" }] })),
                "has no \"value\"",
            ),
            (
                entry(json!({ "attributes": [{ "id": 1, "name": "n", "value": "v" }] })),
                "attribute 0 of entry 0 has no \"sources\" list (was with=attributes.sources ignored?)",
            ),
            (
                entry(
                    json!({ "attributes": [{ "id": 1, "name": "n", "value": "v", "sources": secret }] }),
                ),
                "has \"sources\" that are a string",
            ),
            (
                entry(
                    json!({ "attributes": [{ "id": 1, "name": "n", "value": "v", "sources": [[secret]] }] }),
                ),
                "has a source 0 that is a list",
            ),
            (
                entry(
                    json!({ "attributes": [{ "id": 1, "name": "n", "value": "v", "sources": [{ "name": 5 }] }] }),
                ),
                "has a source 0 that has a \"name\" that is a number",
            ),
            (
                entry(json!({ "sources": { "name": secret } })),
                "the \"sources\" of entry 0 are an object, not a list",
            ),
            (
                entry(json!({ "sources": [secret] })),
                "source 0 of entry 0 is a string, not an object",
            ),
            (
                entry(json!({ "sources": [{ "created_at": secret }] })),
                "source 0 of entry 0 has no \"name\"",
            ),
            (
                entry(json!({ "sources": [{ "name": " " }] })),
                "source 0 of entry 0 has an empty \"name\"",
            ),
        ] {
            let error = pick(&body, "URL", "v").unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains(secret), "{error}");
        }
        let mut missing = entry(json!({}));
        missing["data"][0]
            .as_object_mut()
            .unwrap()
            .remove("attributes");
        assert!(
            pick(&missing, "URL", "v")
                .unwrap_err()
                .contains("no \"attributes\" list (was with=attributes ignored?)")
        );
        let mut missing = entry(json!({}));
        missing["data"][0]
            .as_object_mut()
            .unwrap()
            .remove("sources");
        assert!(
            pick(&missing, "URL", "v")
                .unwrap_err()
                .contains("entry 0 has no \"sources\" list (was with=sources ignored?)")
        );
    }

    /// A server that answers every request, the token request included,
    /// with `body` (so it is both a token answer and a lookup answer).
    async fn fixed_server(body: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 8192];
                    let _ = socket.read(&mut request).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn an_odd_lookup_answer_is_an_unexpected_response_that_quotes_nothing() {
        let base = fixed_server(
            r#"{"access_token": "tok-1234", "expires_in": 3600, "data": [{"id": 1, "value": "https://v.example/", "type": {"name": "URL"}, "attributes": "secret-ish-7f3"}]}"#,
        )
        .await;
        let client = client_for(&base);
        let error = client
            .find_indicator("URL", "https://v.example/")
            .await
            .unwrap_err();
        let ThreatqError::UnexpectedResponse { what, detail } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(what, "looking up a URL indicator in ThreatQ");
        assert!(detail.contains("are a string, not a list"), "{detail}");
        let text = error.to_string();
        assert!(!text.contains("secret-ish-7f3"), "{text}");
        assert!(!text.contains("tok-1234"), "{text}");
    }
}
