//! Reading back and updating one indicator the connector created earlier,
//! for verdicts TAP gives later (a threat judged a false positive, or
//! cleared): find it, change its status, make one attribute hold exactly
//! one value.
//!
//! ```text
//! GET    /api/indicators?value=<v>&with=attributes,status,type
//!          {"total": n, "data": [{"id", "value", "type": {"name"},
//!            "status": {"id", "name"},
//!            "attributes": [{"id", "attribute_id", "name", "value", ..}]}]}
//! PUT    /api/indicators/{id}                            {"status": {"name": ..}}
//! PUT    /api/indicators/{id}/attributes/{value_id}      {"value": ..}
//! DELETE /api/indicators/{id}/attributes/{value_id}
//! POST   /api/indicators/{id}/attributes   {"name", "value", "sources": [{"name"}]}
//! ```
//!
//! These calls are isolated here because they are only partly verified
//! against a real ThreatQ. What rests on ThreatQuotient's own code
//! (threatqsdk and its Splunk SOAR / Phantom apps), **verified**:
//! - the lookup `GET /api/indicators` with `value` and `with` parameters
//!   answers `{"total", "data": [...]}`, entries carrying `attributes`,
//!   `type` and `status` when `with` names them;
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
//! - `PUT .../attributes/{value_id}` with `{"value": ..}` changing a value
//!   in place and keeping its sources (threatqsdk's own "modify" deletes
//!   the other values and posts the new one instead);
//! - `value=` matching the value exactly rather than as a pattern (we pick
//!   the exact match among the entries anyway, so a looser match only
//!   costs a larger answer);
//! - attribute names compared ignoring case (ThreatQ's database collation
//!   is probably case-insensitive), so a `threat status` value is
//!   replaced, not joined by a `Threat Status` one;
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
/// What the lookup asks ThreatQ to include in each entry.
const LOOKUP_WITH: &str = "attributes,status,type";

/// An indicator as ThreatQ holds it, as much as the verdict update needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIndicator {
    pub id: u64,
    /// The status name, e.g. "Review"; None when the answer carries none.
    pub status: Option<String>,
    pub attributes: Vec<StoredAttribute>,
}

/// One attribute value of a [`StoredIndicator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttribute {
    /// This value's own id (not the attribute name's `attribute_id`): the
    /// one `PUT` and `DELETE .../attributes/{id}` take.
    pub id: u64,
    pub name: String,
    pub value: String,
}

impl Client {
    /// The indicator (type name, value), or None when ThreatQ has none.
    ///
    /// `GET /api/indicators?value=<value>&with=attributes,status,type`,
    /// then the entry whose type name equals `type_name` ignoring case and
    /// whose value equals `value` exactly (the first, should ThreatQ hold
    /// two). Lenient about the entries (ids as numbers or numeric text,
    /// `type`/`status` as objects or names, `type_name` when there is no
    /// `type`), but an answer this cannot read safely is
    /// [`ThreatqError::UnexpectedResponse`] describing the shape without
    /// quoting it: no `data` list, an entry that is not an object or has no
    /// value, or the matching entry without an id, a readable type or an
    /// `attributes` list (without it a later
    /// [`Client::set_indicator_attribute`] would add a value instead of
    /// replacing one).
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

    /// Makes the indicator's attribute `name` hold exactly `value` (with
    /// source `source`), working from `indicator.attributes` as
    /// [`Client::find_indicator`] read them (no extra lookup):
    ///
    /// - no value of that name (compared ignoring case): `POST` one, with
    ///   the source;
    /// - otherwise one value is kept, the one already equal to `value` if
    ///   there is one, else the first, and `PUT` to `value` unless it
    ///   already is (so the kept value keeps its id and sources); then every
    ///   other value of that name is `DELETE`d. A `DELETE` answered 404 is
    ///   taken as done (the value is gone, perhaps by a retried request).
    ///
    /// Values are compared exactly. A failure part-way leaves the new
    /// value in place (it is written first); calling again after a fresh
    /// [`Client::find_indicator`] finishes the job.
    pub async fn set_indicator_attribute(
        &self,
        indicator: &StoredIndicator,
        name: &str,
        value: &str,
        source: &str,
    ) -> Result<(), ThreatqError> {
        let id = indicator.id;
        let plan = plan_attribute(&indicator.attributes, name, value);
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

fn plan_attribute(current: &[StoredAttribute], name: &str, value: &str) -> AttributePlan {
    let wanted = name.trim().to_lowercase();
    let same_name: Vec<&StoredAttribute> = current
        .iter()
        .filter(|attribute| attribute.name.trim().to_lowercase() == wanted)
        .collect();
    let Some(kept) = same_name
        .iter()
        .find(|attribute| attribute.value == value)
        .or(same_name.first())
    else {
        return AttributePlan {
            write: Write::Post,
            delete: Vec::new(),
        };
    };
    let write = if kept.value == value {
        Write::Nothing
    } else {
        Write::Put(kept.id)
    };
    let mut delete: Vec<u64> = Vec::new();
    for attribute in &same_name {
        if attribute.id != kept.id && !delete.contains(&attribute.id) {
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
    Ok(StoredIndicator {
        id,
        status,
        attributes,
    })
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
    Ok(StoredAttribute { id, name, value })
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

    fn attribute(id: u64, name: &str, value: &str) -> StoredAttribute {
        StoredAttribute {
            id,
            name: name.to_owned(),
            value: value.to_owned(),
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
                .map(|a| attribute(a.id, &a.name, &a.value))
                .collect::<Vec<_>>()
        );
        let requests = sim.requests();
        let lookup = requests.last().expect("the lookup");
        assert_eq!(
            (lookup.method.as_str(), lookup.path.as_str()),
            ("GET", "/api/indicators")
        );
        let query = lookup.query.as_deref().unwrap_or_default();
        assert!(query.contains("with=attributes%2Cstatus%2Ctype"), "{query}");
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
            plan_attribute(&current, "Threat Status", "falsePositive"),
            AttributePlan {
                write: Write::Put(7),
                delete: vec![9, 10]
            }
        );
        assert_eq!(
            plan_attribute(&current, "Threat Status", "cleared"),
            AttributePlan {
                write: Write::Nothing,
                delete: vec![7, 9]
            }
        );
        assert_eq!(
            plan_attribute(&current[..2], "Threat Status", "active"),
            AttributePlan {
                write: Write::Nothing,
                delete: vec![]
            }
        );
        assert_eq!(
            plan_attribute(&current[1..2], "Threat Status", "x"),
            AttributePlan {
                write: Write::Post,
                delete: vec![]
            }
        );
    }

    #[test]
    fn lookups_are_read_leniently() {
        let body = json!({
            "total": 4,
            "data": [
                { "id": 1, "value": "evil.example", "type": { "name": "URL" }, "attributes": [] },
                { "id": 2, "value": "EVIL.example", "type": { "name": "FQDN" }, "attributes": [] },
                { "id": 3, "value": "evil.example", "type": 7, "attributes": 5 },
                { "id": "4", "value": "evil.example", "type": "fqdn", "type_name": "URL",
                  "status": { "id": 1, "name": " Active " },
                  "attributes": [
                      { "id": "11", "attribute_id": 3, "name": "Threat Status", "value": "active" },
                      { "id": 12, "name": "Score", "value": 7 },
                      { "id": 13, "name": "Flag", "value": true },
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
                attributes: vec![
                    attribute(11, "Threat Status", "active"),
                    attribute(12, "Score", "7"),
                    attribute(13, "Flag", "Yes"),
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
            let body = json!({ "data": [{ "id": 1, "value": "v", "type": "URL", "status": status, "attributes": [] }] });
            assert_eq!(
                pick(&body, "URL", "v").unwrap().unwrap().status.as_deref(),
                Some("Review")
            );
        }
        for status in [json!(4), json!({ "id": 4 }), json!(null), json!(" ")] {
            let body = json!({ "data": [{ "id": 1, "value": "v", "type": "URL", "status": status, "attributes": [] }] });
            assert_eq!(pick(&body, "URL", "v").unwrap().unwrap().status, None);
        }
    }

    #[test]
    fn odd_shapes_are_described_without_quoting_the_answer() {
        let secret = "secret-ish-7f3";
        let entry = |fields: Value| {
            let mut entry =
                json!({ "id": 1, "value": "v", "type": { "name": "URL" }, "attributes": [] });
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
