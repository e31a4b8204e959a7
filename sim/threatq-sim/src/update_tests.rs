//! The update endpoints over HTTP: status `PUT`, attribute `POST`, `PUT`
//! and `DELETE`, `with=` on lookups, and the record of updates.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{ThreatqSim, ThreatqSimConfig, Update, UpdateKind};

struct Session {
    sim: ThreatqSim,
    http: reqwest::Client,
    token: String,
}

impl Session {
    async fn start() -> Session {
        let sim = ThreatqSim::start(ThreatqSimConfig::default())
            .await
            .expect("sim starts");
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{}/api/token", sim.base_url()))
            .json(&json!({
                "grant_type": "password",
                "client_id": "sim-client",
                "email": "analyst@example.com",
                "password": "sim-password",
            }))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token JSON");
        let token = answer["access_token"].as_str().expect("token").to_owned();
        Session { sim, http, token }
    }

    /// Sends `body` (raw when a string) and returns the status and the
    /// JSON answer (`Null` for an empty one).
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth(&self.token);
        request = match body {
            Some(Value::String(raw)) => request.body(raw),
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        (status, body)
    }

    /// Stores an indicator with two `Threat Status` values and returns its id.
    async fn indicator(&self, value: &str) -> u64 {
        let (status, answer) = self
            .send(
                Method::POST,
                "/api/indicators/consume",
                Some(json!([{
                    "value": value,
                    "type": { "name": "URL" },
                    "attributes": [
                        { "name": "Threat Status", "value": "active" },
                        { "name": "Threat Status", "value": "stale" },
                        { "name": "Threat ID", "value": "t-1" },
                    ],
                    "sources": [{ "name": "Proofpoint TAP" }],
                }])),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["data"][0]["id"].as_u64().expect("id")
    }

    fn status_of(&self, value: &str) -> Option<String> {
        self.sim
            .snapshot()
            .find("indicators", value)?
            .status
            .clone()
    }
}

fn status_update(id: u64, from: &str, to: &str) -> Update {
    Update {
        collection: "indicators".to_owned(),
        id,
        what: UpdateKind::Status {
            from: Some(from.to_owned()),
            to: to.to_owned(),
        },
    }
}

#[tokio::test]
async fn a_status_put_takes_a_name_object_a_bare_name_or_an_id_and_is_recorded() {
    let session = Session::start().await;
    let id = session.indicator("https://a.example/").await;
    let path = format!("/api/indicators/{id}");

    let (status, answer) = session
        .send(
            Method::PUT,
            &path,
            Some(json!({ "status": { "name": "Whitelisted" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["status"]["name"], "Whitelisted");
    assert_eq!(answer["data"]["status"]["id"], 5);
    let (status, _) = session
        .send(Method::PUT, &path, Some(json!({ "status": "Expired" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = session
        .send(Method::PUT, &path, Some(json!({ "status_id": "1" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A body without a status changes nothing and records nothing.
    let (status, _) = session
        .send(Method::PUT, &path, Some(json!({ "description": "x" })))
        .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        session.status_of("https://a.example/").as_deref(),
        Some("Active")
    );
    assert_eq!(
        session.sim.updates(),
        [
            status_update(id, "Review", "Whitelisted"),
            status_update(id, "Whitelisted", "Expired"),
            status_update(id, "Expired", "Active"),
        ]
    );
    let puts = session
        .sim
        .requests()
        .into_iter()
        .filter(|request| request.method == "PUT" && request.path == path)
        .count();
    assert_eq!(puts, 4);
    session.sim.clear_updates();
    assert!(session.sim.updates().is_empty());
}

#[tokio::test]
async fn an_unknown_status_is_a_laravel_422_that_changes_nothing() {
    let session = Session::start().await;
    let id = session.indicator("https://b.example/").await;
    let path = format!("/api/indicators/{id}");
    for (body, key) in [
        (json!({ "status": { "name": "False Positive" } }), "status"),
        (json!({ "status": "review" }), "status"),
        (json!({ "status": 3 }), "status"),
        (json!({ "status": {} }), "status"),
        (json!({ "status_id": 99 }), "status_id"),
    ] {
        let (status, answer) = session.send(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(
            answer["data"]["errors"][key][0].is_string(),
            "{body}: {answer}"
        );
    }
    let (status, _) = session
        .send(Method::PUT, &path, Some(json!("not json")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        session.status_of("https://b.example/").as_deref(),
        Some("Review")
    );
    assert!(session.sim.updates().is_empty());
}

#[tokio::test]
async fn writes_to_unknown_objects_collections_or_attribute_values_are_404() {
    let session = Session::start().await;
    let id = session.indicator("https://c.example/").await;
    let status_body = json!({ "status": "Active" });
    let value_body = json!({ "value": "x" });
    let attribute_body = json!({ "name": "Threat Status", "value": "x" });
    for (method, path, body) in [
        (
            Method::PUT,
            "/api/indicators/4242".to_owned(),
            Some(status_body.clone()),
        ),
        (
            Method::PUT,
            "/api/indicators/abc".to_owned(),
            Some(status_body.clone()),
        ),
        (
            Method::PUT,
            format!("/api/nonsense/{id}"),
            Some(status_body),
        ),
        (
            Method::POST,
            "/api/indicators/4242/attributes".to_owned(),
            Some(attribute_body),
        ),
        (
            Method::PUT,
            format!("/api/indicators/{id}/attributes/4242"),
            Some(value_body.clone()),
        ),
        (
            Method::PUT,
            "/api/indicators/4242/attributes/1".to_owned(),
            Some(value_body),
        ),
        (
            Method::DELETE,
            format!("/api/indicators/{id}/attributes/4242"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/indicators/{id}/attributes/x"),
            None,
        ),
        (
            Method::DELETE,
            "/api/indicators/4242/attributes/1".to_owned(),
            None,
        ),
    ] {
        let (status, answer) = session.send(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    assert!(session.sim.updates().is_empty());
    // An attribute value id of another object is not this object's.
    let other = session.indicator("https://d.example/").await;
    let other_value = session
        .sim
        .snapshot()
        .find("indicators", "https://d.example/")
        .unwrap()
        .attributes[0]
        .id;
    let (status, _) = session
        .send(
            Method::DELETE,
            &format!("/api/indicators/{id}/attributes/{other_value}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ne!(id, other);
}

#[tokio::test]
async fn lookups_honour_with_and_every_attribute_value_has_its_own_id() {
    let session = Session::start().await;
    let id = session.indicator("https://e.example/?q=a&b=c d").await;
    let (status, found) = session
        .send(
            Method::GET,
            "/api/indicators?value=https%3A%2F%2Fe.example%2F%3Fq%3Da%26b%3Dc+d&with=attributes,status,type",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["total"], 1, "{found}");
    let entry = &found["data"][0];
    assert_eq!(entry["id"], id);
    assert_eq!(entry["status"], json!({ "id": 4, "name": "Review" }));
    assert_eq!(entry["type"]["name"], "URL");
    assert!(entry.get("sources").is_none(), "{entry}");
    let attributes = entry["attributes"].as_array().expect("attributes");
    assert_eq!(attributes.len(), 3);
    let ids: Vec<u64> = attributes
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    // One attribute_id per name.
    assert_eq!(attributes[0]["attribute_id"], attributes[1]["attribute_id"]);
    assert_ne!(attributes[0]["attribute_id"], attributes[2]["attribute_id"]);
    assert_eq!(attributes[0]["name"], "Threat Status");
    assert_eq!(attributes[0]["value"], "active");
    assert!(
        attributes[0].get("sources").is_none(),
        "attribute sources only with attributes.sources: {entry}"
    );

    // Only what `with` names; without `with`, everything as before.
    let (_, bare) = session
        .send(Method::GET, "/api/indicators?value=x&with=type", None)
        .await;
    assert_eq!(bare["total"], 0);
    let (_, typed) = session
        .send(
            Method::GET,
            &format!("/api/indicators/{id}?with=type"),
            None,
        )
        .await;
    assert!(typed["data"].get("attributes").is_none(), "{typed}");
    assert!(typed["data"].get("status").is_none(), "{typed}");
    assert_eq!(typed["data"]["status_id"], 4);
    let (_, full) = session
        .send(Method::GET, &format!("/api/indicators/{id}"), None)
        .await;
    assert_eq!(full["data"]["sources"][0]["name"], "Proofpoint TAP");
    assert_eq!(full["data"]["attributes"][2]["id"], ids[2]);

    // Ids are stable: a second consume of the same pairs keeps them.
    session.indicator("https://e.example/?q=a&b=c d").await;
    let snapshot = session.sim.snapshot();
    let stored = snapshot
        .find("indicators", "https://e.example/?q=a&b=c d")
        .unwrap();
    assert_eq!(
        stored.attributes.iter().map(|a| a.id).collect::<Vec<_>>(),
        ids
    );
}

#[tokio::test]
async fn attribute_values_are_added_set_and_deleted_and_each_write_is_recorded() {
    let session = Session::start().await;
    let id = session.indicator("https://f.example/").await;
    let value = "https://f.example/";
    let held = session
        .sim
        .snapshot()
        .find("indicators", value)
        .unwrap()
        .clone();
    let (active, stale) = (held.attributes[0].id, held.attributes[1].id);
    let base = format!("/api/indicators/{id}/attributes");

    let (status, set) = session
        .send(
            Method::PUT,
            &format!("{base}/{active}"),
            Some(json!({ "value": "false positive" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["data"]["id"], active);
    assert_eq!(set["data"]["value"], "false positive");
    let (status, _) = session
        .send(Method::DELETE, &format!("{base}/{stale}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, added) = session
        .send(
            Method::POST,
            &base,
            Some(json!({ "name": "Verdict", "value": "clean", "sources": [{ "name": "Proofpoint TAP" }] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["total"], 1);
    let added_id = added["data"][0]["id"].as_u64().expect("new value id");
    assert!(
        added["data"][0]["attribute_id"].as_u64().is_some(),
        "{added}"
    );
    assert!(added_id > stale);
    // The same pair again is not stored twice and not recorded.
    let (status, again) = session
        .send(
            Method::POST,
            &base,
            Some(json!({ "name": "Verdict", "value": "clean" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["data"][0]["id"], added_id);

    let stored = session
        .sim
        .snapshot()
        .find("indicators", value)
        .unwrap()
        .clone();
    assert_eq!(stored.attribute_values("Threat Status"), ["false positive"]);
    assert_eq!(stored.attribute_values("Verdict"), ["clean"]);
    let verdict = stored
        .attributes
        .iter()
        .find(|a| a.name == "Verdict")
        .unwrap();
    assert_eq!(verdict.sources, ["Proofpoint TAP"]);
    let update = |what| Update {
        collection: "indicators".to_owned(),
        id,
        what,
    };
    assert_eq!(
        session.sim.updates(),
        [
            update(UpdateKind::AttributeSet {
                name: "Threat Status".to_owned(),
                from: "active".to_owned(),
                to: "false positive".to_owned(),
            }),
            update(UpdateKind::AttributeDeleted {
                name: "Threat Status".to_owned(),
                value: "stale".to_owned(),
            }),
            update(UpdateKind::AttributeAdded {
                name: "Verdict".to_owned(),
                value: "clean".to_owned(),
            }),
        ]
    );
    // A second DELETE of the same value finds nothing.
    let (status, _) = session
        .send(Method::DELETE, &format!("{base}/{stale}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn attribute_bodies_without_a_name_or_value_or_that_duplicate_a_value_are_422() {
    let session = Session::start().await;
    let id = session.indicator("https://g.example/").await;
    let held = session
        .sim
        .snapshot()
        .find("indicators", "https://g.example/")
        .unwrap()
        .clone();
    let active = held.attributes[0].id;
    let base = format!("/api/indicators/{id}/attributes");
    for (method, path, body, key) in [
        (Method::POST, base.clone(), json!({ "value": "x" }), "name"),
        (
            Method::POST,
            base.clone(),
            json!({ "name": " ", "value": "x" }),
            "name",
        ),
        (
            Method::POST,
            base.clone(),
            json!({ "name": "Verdict" }),
            "value",
        ),
        (
            Method::POST,
            base.clone(),
            json!({ "name": "Verdict", "value": " " }),
            "value",
        ),
        (
            Method::POST,
            base.clone(),
            json!({ "name": "V", "value": "x", "sources": [{}] }),
            "sources.0.name",
        ),
        (
            Method::POST,
            base.clone(),
            json!(["not", "an", "object"]),
            "data",
        ),
        (Method::PUT, format!("{base}/{active}"), json!({}), "value"),
        // "stale" is the other Threat Status value already.
        (
            Method::PUT,
            format!("{base}/{active}"),
            json!({ "value": "stale" }),
            "value",
        ),
    ] {
        let (status, answer) = session
            .send(method.clone(), &path, Some(body.clone()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {body}: {answer}"
        );
        assert!(
            answer["data"]["errors"][key][0].is_string(),
            "{body}: {answer}"
        );
    }
    assert!(session.sim.updates().is_empty());
    let stored = session
        .sim
        .snapshot()
        .find("indicators", "https://g.example/")
        .unwrap()
        .clone();
    assert_eq!(stored.attributes, held.attributes);
}

#[tokio::test]
async fn an_analysts_status_change_is_stored_but_not_an_update() {
    let session = Session::start().await;
    session.indicator("https://h.example/").await;
    session.sim.clear_requests();
    assert!(
        session
            .sim
            .set_status("indicators", "https://h.example/", "Active")
    );
    assert!(
        !session
            .sim
            .set_status("indicators", "https://nowhere.example/", "Active")
    );
    assert_eq!(
        session.status_of("https://h.example/").as_deref(),
        Some("Active")
    );
    assert!(session.sim.updates().is_empty());
    assert!(session.sim.requests().is_empty());
}

#[tokio::test]
async fn sources_come_with_their_time_and_attribute_sources_with_attributes_sources() {
    let session = Session::start().await;
    // Another feed makes the indicator, with its own Threat Status; then
    // the connector sends the same indicator and the same pair.
    session
        .sim
        .consume(
            "indicators",
            &json!([{
                "value": "https://g.example/",
                "type": { "name": "URL" },
                "attributes": [{ "name": "Threat Status", "value": "active",
                                 "sources": [{ "name": "Other Feed" }] }],
                "sources": [{ "name": "Other Feed" }],
            }]),
        )
        .expect("the other feed's consume");
    assert!(
        session
            .sim
            .requests()
            .iter()
            .all(|r| r.path == "/api/token"),
        "a direct consume is not a request"
    );
    let ours = json!([{
        "value": "https://g.example/",
        "type": { "name": "URL" },
        "attributes": [
            { "name": "Threat Status", "value": "active", "sources": [{ "name": "Proofpoint TAP" }] },
            { "name": "Threat Status", "value": "stale", "sources": [{ "name": "Proofpoint TAP" }] },
        ],
        "sources": [{ "name": "Proofpoint TAP" }],
    }]);
    let (status, answer) = session
        .send(Method::POST, "/api/indicators/consume", Some(ours.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["data"][0]["id"].as_u64().expect("id");

    let (status, found) = session
        .send(
            Method::GET,
            "/api/indicators?value=https%3A%2F%2Fg.example%2F&with=attributes.sources,sources",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entry = &found["data"][0];
    assert_eq!(entry["id"], id);
    let sources = entry["sources"].as_array().expect("sources");
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Other Feed", "Proofpoint TAP"]);
    let times: Vec<&str> = sources
        .iter()
        .map(|s| s["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times
            .iter()
            .all(|t| t.len() == 19 && t.as_bytes()[10] == b' '),
        "ThreatQ's date form: {times:?}"
    );
    assert!(
        times[0] < times[1],
        "the first source is the earlier: {times:?}"
    );

    // `attributes.sources` loads the attributes too, each with its sources:
    // the pair both sent holds both.
    let attributes = entry["attributes"].as_array().expect("attributes");
    let active = attributes
        .iter()
        .find(|a| a["name"] == "Threat Status" && a["value"] == "active")
        .expect("the shared value");
    assert_eq!(
        active["sources"],
        json!([{ "name": "Other Feed" }, { "name": "Proofpoint TAP" }])
    );
    let stale = attributes
        .iter()
        .find(|a| a["value"] == "stale")
        .expect("the connector's own value");
    assert_eq!(stale["sources"], json!([{ "name": "Proofpoint TAP" }]));

    let stored = session.sim.snapshot();
    let stored = stored.find("indicators", "https://g.example/").unwrap();
    assert_eq!(stored.sources, ["Other Feed", "Proofpoint TAP"]);
    assert_eq!(stored.sources[0].created_at, times[0]);
    // Sending a source again keeps its first time.
    let (status, _) = session
        .send(Method::POST, "/api/indicators/consume", Some(ours))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let again = session.sim.snapshot();
    let again = again.find("indicators", "https://g.example/").unwrap();
    assert_eq!(again.sources, stored.sources);
}
