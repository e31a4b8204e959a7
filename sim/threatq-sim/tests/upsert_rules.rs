//! The simulator's ThreatQ rules, exercised over HTTP as a client sees them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};

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
        let token = password_token_json(&http, &sim.base_url()).await;
        Session { sim, http, token }
    }

    async fn consume(&self, collection: &str, items: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/{collection}/consume", self.sim.base_url()))
            .bearer_auth(&self.token)
            .json(&items)
            .send()
            .await
            .expect("consume request");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.sim.base_url()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get request");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }
}

async fn password_token_json(http: &reqwest::Client, base: &str) -> String {
    let body: Value = http
        .post(format!("{base}/api/token"))
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
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn indicator(value: &str, type_name: &str, status: &str) -> Value {
    json!({
        "value": value,
        "type": { "name": type_name },
        "status": { "name": status },
        "sources": [{ "name": "Proofpoint TAP" }],
    })
}

#[tokio::test]
async fn password_grant_is_accepted_in_all_three_encodings() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = sim.base_url();

    let query_and_json = http
        .post(format!(
            "{base}/api/token?grant_type=password&client_id=sim-client"
        ))
        .json(&json!({ "email": "analyst@example.com", "password": "sim-password" }))
        .send()
        .await
        .unwrap();
    let form = http
        .post(format!("{base}/api/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "sim-client"),
            ("email", "analyst@example.com"),
            ("password", "sim-password"),
        ])
        .send()
        .await
        .unwrap();
    let all_json = password_token_json(&http, &base).await;

    for response in [query_and_json, form] {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert!(body["refresh_token"].is_string());
    }
    assert!(!all_json.is_empty());
}

#[tokio::test]
async fn wrong_password_gets_400_and_no_token() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/api/token", sim.base_url()))
        .json(&json!({
            "grant_type": "password",
            "client_id": "sim-client",
            "email": "analyst@example.com",
            "password": "wrong",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn api_calls_need_a_valid_unexpired_bearer() {
    let session = Session::start().await;
    let base = session.sim.base_url();
    let anonymous = session
        .http
        .get(format!("{base}/api/indicator/types"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(session.get("/api/indicator/types").await.0, StatusCode::OK);

    session.sim.faults().expire_all_tokens();
    assert_eq!(
        session.get("/api/indicator/types").await.0,
        StatusCode::UNAUTHORIZED
    );
    let requests = session.sim.requests();
    assert!(!requests[1].had_bearer);
    assert!(requests.last().unwrap().had_bearer);
}

#[tokio::test]
async fn short_token_ttl_expires_tokens_by_itself() {
    let sim = ThreatqSim::start(ThreatqSimConfig {
        token_ttl: Duration::from_millis(50),
        ..ThreatqSimConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let token = password_token_json(&http, &sim.base_url()).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let response = http
        .get(format!("{}/api/event/types", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn indicators_are_unique_on_value_and_type() {
    let session = Session::start().await;
    let (status, first) = session
        .consume(
            "indicators",
            json!([
                indicator("abc", "Filename", "Review"),
                indicator("abc", "String", "Review")
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, again) = session
        .consume(
            "indicators",
            json!([indicator("abc", "Filename", "Review")]),
        )
        .await;

    assert_eq!(first["total"], 2);
    assert_ne!(first["data"][0]["id"], first["data"][1]["id"]);
    assert_eq!(again["data"][0]["id"], first["data"][0]["id"]);
    assert_eq!(session.sim.snapshot().count("indicators"), 2);
}

#[tokio::test]
async fn an_existing_indicator_keeps_its_status() {
    let session = Session::start().await;
    session
        .consume(
            "indicators",
            json!([indicator("evil.example", "FQDN", "Active")]),
        )
        .await;
    session
        .consume(
            "indicators",
            json!([indicator("evil.example", "FQDN", "Review")]),
        )
        .await;
    let snapshot = session.sim.snapshot();
    let stored = snapshot.find("indicators", "evil.example").unwrap();
    assert_eq!(stored.status.as_deref(), Some("Active"));
}

#[tokio::test]
async fn attributes_merge_without_duplicate_pairs_and_sources_merge() {
    let session = Session::start().await;
    let with_attributes = |source: &str, values: &[&str]| {
        json!([{
            "value": "Campaign X",
            "sources": [{ "name": source }],
            "attributes": values.iter().map(|value| json!({
                "name": "Targeted Brand", "value": value, "sources": [{ "name": source }],
            })).collect::<Vec<_>>(),
        }])
    };
    session
        .consume(
            "campaign",
            with_attributes("Proofpoint TAP", &["Acme", "Globex"]),
        )
        .await;
    session
        .consume("campaign", with_attributes("Analyst", &["Acme", "Initech"]))
        .await;

    let snapshot = session.sim.snapshot();
    let campaign = snapshot.find("campaign", "Campaign X").unwrap();
    assert_eq!(
        campaign.attribute_values("Targeted Brand"),
        ["Acme", "Globex", "Initech"]
    );
    assert_eq!(
        campaign.attributes[0].sources,
        ["Proofpoint TAP", "Analyst"]
    );
    assert_eq!(campaign.sources, ["Proofpoint TAP", "Analyst"]);
}

#[tokio::test]
async fn events_are_unique_on_title_and_happened_at() {
    let session = Session::start().await;
    let event = |happened_at: &str| json!({ "title": "TAP Click", "type": { "name": "Spearphish" }, "happened_at": happened_at });
    session
        .consume(
            "events",
            json!([event("2024-05-01 10:00:00"), event("2024-05-01 10:00:00")]),
        )
        .await;
    session
        .consume("events", json!([event("2024-05-01 11:00:00")]))
        .await;
    assert_eq!(session.sim.snapshot().events_of_type("Spearphish").len(), 2);
}

#[tokio::test]
async fn relations_are_symmetric_and_stored_once() {
    let session = Session::start().await;
    let (_, events) = session
        .consume(
            "events",
            json!([{ "title": "E", "type": { "name": "Incident" }, "happened_at": "2024-05-01 10:00:00" }]),
        )
        .await;
    let event_id = events["data"][0]["id"].as_u64().unwrap();
    let linked = json!([{
        "value": "http://bad.example/x", "type": { "name": "URL" },
        "events": [{ "id": event_id }, { "id": event_id }],
    }]);
    session.consume("indicators", linked.clone()).await;
    session.consume("indicators", linked).await;

    let snapshot = session.sim.snapshot();
    let url = snapshot.find("indicators", "http://bad.example/x").unwrap();
    let event = snapshot.find("events", "E").unwrap();
    assert_eq!(url.relations, [("events".to_owned(), event_id)]);
    assert_eq!(snapshot.related(event), [url]);
}

#[tokio::test]
async fn an_invalid_item_rejects_the_whole_request_with_field_errors() {
    let session = Session::start().await;
    let (status, body) = session
        .consume(
            "indicators",
            json!([
                indicator("fine.example", "FQDN", "Review"),
                indicator("x", "User-Agent", "Review"),
                { "type": { "name": "URL" } },
                { "value": "y", "type": { "name": "URL" }, "events": [{ "id": 999 }] },
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = body["errors"].as_object().unwrap();
    assert!(errors.contains_key("1.type.name"), "{errors:?}");
    assert!(errors.contains_key("2.value"), "{errors:?}");
    assert!(errors.contains_key("3.events.0.id"), "{errors:?}");
    assert_eq!(session.sim.snapshot().objects.len(), 0);

    let (status, body) = session
        .consume(
            "events",
            json!([
                { "title": "A", "type": { "name": "Email" }, "happened_at": "2024-05-01 10:00:00" },
                { "title": "B", "type": { "name": "Incident" }, "happened_at": "2024-05-01T10:00:00Z" },
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["0.type.name"].is_array());
    assert!(body["errors"]["1.happened_at"].is_array());
}

#[tokio::test]
async fn overlong_descriptions_are_refused() {
    let session = Session::start().await;
    let long = "d".repeat(threatq_sim::MAX_DESCRIPTION_CHARS + 1);
    let (status, _) = session
        .consume(
            "malware",
            json!([{ "value": "Emotet", "description": long }]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn adversary_descriptions_in_the_list_form_are_stored() {
    let session = Session::start().await;
    let (status, body) = session
        .consume(
            "adversaries",
            json!([{ "name": "TA505", "description": [{ "value": "Financially motivated" }] }]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["data"][0]["name"], "TA505");
    let snapshot = session.sim.snapshot();
    let stored = snapshot.find("adversaries", "TA505").unwrap();
    assert_eq!(stored.description.as_deref(), Some("Financially motivated"));
}

#[tokio::test]
async fn objects_can_be_looked_up_by_identity_and_by_id() {
    let session = Session::start().await;
    let (_, created) = session
        .consume(
            "indicators",
            json!([indicator("1.2.3.4", "IP Address", "Review")]),
        )
        .await;
    let id = created["data"][0]["id"].as_u64().unwrap();

    let (_, by_value) = session.get("/api/indicators?value=1.2.3.4").await;
    assert_eq!(by_value["total"], 1);
    assert_eq!(by_value["data"][0]["id"], id);
    let (_, by_id) = session.get(&format!("/api/indicators/{id}")).await;
    assert_eq!(by_id["data"]["value"], "1.2.3.4");
    assert_eq!(by_id["data"]["sources"][0]["name"], "Proofpoint TAP");
    assert_eq!(
        session.get("/api/indicators/424242").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        session.get("/api/nonsense?value=x").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn faults_fail_requests_reject_values_and_fake_errors_in_success() {
    let session = Session::start().await;
    let faults = session.sim.faults();

    faults.fail_next(2, 503);
    assert_eq!(
        session.get("/api/event/types").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        session.get("/api/event/types").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(session.get("/api/event/types").await.0, StatusCode::OK);

    faults.reject_values_containing("poison");
    let (status, body) = session
        .consume(
            "indicators",
            json!([indicator("poison.example", "FQDN", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["0.value"].is_array());

    faults.errors_in_success_next(1);
    let (status, body) = session
        .consume(
            "indicators",
            json!([indicator("fine.example", "FQDN", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"].is_array());
    assert_eq!(session.sim.snapshot().objects.len(), 0);
}

#[tokio::test]
async fn a_waf_refuses_bodies_holding_a_needle_before_threatq_sees_them() {
    let session = Session::start().await;
    let faults = session.sim.faults();
    faults.refuse_bodies_containing("evil-needle", 403);
    let url = format!("{}/api/indicators/consume", session.sim.base_url());
    let send = |items: Value, token: Option<&str>| {
        let mut request = session.http.post(&url).json(&items);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let blocked = json!([
        indicator("fine.example", "FQDN", "Review"),
        indicator("http://x.example/evil-needle", "URL", "Review"),
    ]);
    // Blocked even without a token: the firewall answers first.
    let response = send(blocked.clone(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = send(blocked, Some(&session.token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|kind| kind.to_str().unwrap().starts_with("text/html"))
    );
    assert!(response.text().await.unwrap().contains("Request Rejected"));
    assert_eq!(session.sim.snapshot().objects.len(), 0, "nothing stored");

    let (status, _) = session
        .consume(
            "indicators",
            json!([indicator("fine.example", "FQDN", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Only consume requests are inspected.
    assert_eq!(
        session.get("/api/indicators?value=evil-needle").await.0,
        StatusCode::OK
    );
    let statuses: Vec<u16> = session.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[statuses.len() - 4..], [403, 403, 201, 200]);

    faults.clear();
    let (status, _) = session
        .consume(
            "indicators",
            json!([indicator("http://x.example/evil-needle", "URL", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_refused_collection_refuses_every_request_of_it_and_only_it() {
    let session = Session::start().await;
    let faults = session.sim.faults();
    faults.refuse_collection("indicators", 422, "The selected status is invalid.");
    let (status, body) = session
        .consume(
            "indicators",
            json!([indicator("fine.example", "FQDN", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({ "errors": ["The selected status is invalid."] })
    );
    let (status, _) = session
        .consume("malware", json!([{ "value": "Emotet" }]))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(session.sim.snapshot().count("indicators"), 0);

    faults.refuse_collection("indicators", 403, "Forbidden.");
    let (status, body) = session
        .consume(
            "indicators",
            json!([indicator("fine.example", "FQDN", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errors"][0], "Forbidden.");

    faults.clear();
    let (status, _) = session
        .consume(
            "indicators",
            json!([indicator("fine.example", "FQDN", "Review")]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn connectors_and_proxy_answer_the_guessed_shapes() {
    let session = Session::start().await;
    assert_eq!(
        session.get("/api/connectors?name=Proofpoint TAP").await.1["total"],
        0
    );

    session.sim.set_connector(Some(json!({
        "id": 7, "name": "Proofpoint TAP", "category": "Labs", "active": true,
        "options": { "hostname": "tap-api-v2.proofpoint.com" },
    })));
    let (_, found) = session.get("/api/connectors?name=Proofpoint%20TAP").await;
    assert_eq!(found["data"][0]["id"], 7);
    assert_eq!(
        session.get("/api/connectors?name=Other").await.1["total"],
        0
    );

    session.sim.faults().set_connectors_missing(true);
    assert_eq!(
        session.get("/api/connectors?name=x").await.0,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        session.get("/api/configuration/proxy").await.1["data"],
        json!({})
    );
    session
        .sim
        .set_proxy(Some("http://proxy.internal:3128".to_owned()));
    assert_eq!(
        session.get("/api/configuration/proxy").await.1["data"]["proxy"],
        "http://proxy.internal:3128"
    );
}

#[tokio::test]
async fn a_refresh_token_buys_a_new_access_token_and_a_made_up_one_does_not() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let first: Value = http
        .post(format!("{base}/api/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "sim-client"),
            ("email", "analyst@example.com"),
            ("password", "sim-password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    let renewed = http
        .post(format!(
            "{base}/api/token?grant_type=refresh_token&refresh_token={refresh}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), StatusCode::OK);
    let made_up = http
        .post(format!(
            "{base}/api/token?grant_type=refresh_token&refresh_token=nope"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), StatusCode::BAD_REQUEST);
}
