//! The client against the ThreatQ simulator: login, token handling,
//! batching, relations, rejections, retries and the settings guesses.

use std::time::Duration;

use serde_json::json;
use threatq_client::{
    Batch, Client, Collection, ForwardOptions, RetryPolicy, ThreatqConfig, ThreatqError, TqObject,
};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};

const PASSWORD: &str = "sim-password";

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn config(sim: &ThreatqSim, password: &str) -> ThreatqConfig {
    ThreatqConfig {
        base_url: sim.base_url().parse().expect("sim URL"),
        client_id: "sim-client".to_owned(),
        username: "analyst@example.com".to_owned(),
        password: password.into(),
    }
}

async fn start() -> (ThreatqSim, Client) {
    start_with(ThreatqSimConfig::default()).await
}

async fn start_with(sim_config: ThreatqSimConfig) -> (ThreatqSim, Client) {
    let sim = ThreatqSim::start(sim_config).await.expect("sim starts");
    let client = Client::new(
        config(&sim, PASSWORD),
        reqwest::Client::new(),
        quick_retries(5),
    );
    (sim, client)
}

fn options() -> ForwardOptions {
    ForwardOptions {
        source: "Proofpoint TAP".to_owned(),
        tlp_id: Some(3),
        indicator_status: "Review".to_owned(),
    }
}

fn indicator(value: &str, type_name: &str) -> TqObject {
    TqObject {
        collection: Collection::Indicators,
        value: value.to_owned(),
        type_name: Some(type_name.to_owned()),
        happened_at: None,
        description: None,
        attributes: vec![("Threat ID".to_owned(), "t-1".to_owned())],
    }
}

fn event(title: &str) -> TqObject {
    TqObject {
        collection: Collection::Events,
        value: title.to_owned(),
        type_name: Some("Spearphish".to_owned()),
        happened_at: Some("2024-05-01 10:00:00".to_owned()),
        description: Some("A delivered message".to_owned()),
        attributes: vec![("Recipient".to_owned(), "a@example.com".to_owned())],
    }
}

fn named(collection: Collection, value: &str) -> TqObject {
    TqObject {
        collection,
        value: value.to_owned(),
        type_name: None,
        happened_at: None,
        description: Some(format!("about {value}")),
        attributes: Vec::new(),
    }
}

/// An event, a campaign, an adversary and three indicators, all related.
fn linked_batch() -> Batch {
    Batch {
        objects: vec![
            event("TAP Message Delivered: invoice [guid-1]"),
            indicator("http://bad.example/a", "URL"),
            indicator("sender@bad.example", "Email Address"),
            indicator("203.0.113.9", "IP Address"),
            named(Collection::Campaign, "Invoice Lures"),
            named(Collection::Adversaries, "TA505"),
        ],
        relations: vec![(0, 1), (0, 2), (0, 3), (4, 1), (4, 5), (1, 0)],
    }
}

fn token_requests(sim: &ThreatqSim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path == "/api/token")
        .count()
}

fn consume_requests(sim: &ThreatqSim) -> Vec<threatq_sim::RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/consume"))
        .collect()
}

#[tokio::test]
async fn login_succeeds_with_the_right_credentials() {
    let (sim, client) = start().await;
    client.login().await.expect("login");
    assert_eq!(token_requests(&sim), 1);
}

#[tokio::test]
async fn wrong_credentials_are_reported_with_where_to_fix_them() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let client = Client::new(
        config(&sim, "not-the-password"),
        reqwest::Client::new(),
        quick_retries(5),
    );
    let error = client.login().await.unwrap_err();
    assert!(
        matches!(error, ThreatqError::BadCredentials { status: 400 }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("check [threatq] in tq-conn-proofpoint-tap.toml"),
        "{message}"
    );
    assert!(!message.contains("not-the-password"));
    assert_eq!(token_requests(&sim), 1, "bad credentials are not retried");
}

#[tokio::test]
async fn the_token_is_reused_across_calls() {
    let (sim, client) = start().await;
    client.forward(&linked_batch(), &options()).await.unwrap();
    client.forward(&linked_batch(), &options()).await.unwrap();
    client.connector_settings("Proofpoint TAP").await.unwrap();
    assert_eq!(token_requests(&sim), 1);
    assert!(
        sim.requests()
            .iter()
            .filter(|r| r.path != "/api/token")
            .all(|r| r.had_bearer)
    );
}

#[tokio::test]
async fn clones_share_one_token() {
    let (sim, client) = start().await;
    let (batch, options) = (linked_batch(), options());
    let other = client.clone();
    let (a, b) = tokio::join!(
        other.forward(&batch, &options),
        client.forward(&batch, &options)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(token_requests(&sim), 1);
}

#[tokio::test]
async fn an_expired_token_costs_one_relogin_and_no_failure() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().expire_all_tokens();
    let report = client.forward(&linked_batch(), &options()).await.unwrap();
    assert_eq!(token_requests(&sim), 2);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.accepted_total(), 6);
    let refused: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 401)
        .collect();
    assert_eq!(refused.len(), 1);
}

#[tokio::test]
async fn a_token_refused_right_after_login_is_an_unauthorized_error() {
    let (_sim, client) = start_with(ThreatqSimConfig {
        token_ttl: Duration::ZERO,
        ..ThreatqSimConfig::default()
    })
    .await;
    let error = client
        .forward(&linked_batch(), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ThreatqError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("ThreatQ user is active"));
}

#[tokio::test]
async fn more_than_500_objects_are_split_into_several_requests() {
    let (sim, client) = start().await;
    let batch = Batch {
        objects: (0..1201)
            .map(|n| indicator(&format!("host{n}.bad.example"), "FQDN"))
            .collect(),
        relations: Vec::new(),
    };
    let report = client.forward(&batch, &options()).await.unwrap();
    let mut sizes: Vec<usize> = consume_requests(&sim)
        .iter()
        .map(|r| r.body_json().unwrap().as_array().unwrap().len())
        .collect();
    // The three requests are in flight together and may land in any order.
    sizes.sort_unstable();
    assert_eq!(sizes, [201, 500, 500]);
    assert_eq!(report.accepted[&Collection::Indicators], 1201);
    assert_eq!(report.requests, 4, "one login and three consume requests");
    assert_eq!(sim.snapshot().count("indicators"), 1201);
}

#[tokio::test]
async fn relations_land_on_both_sides() {
    let (sim, client) = start().await;
    let report = client.forward(&linked_batch(), &options()).await.unwrap();
    assert_eq!(report.relations, 5, "the duplicate (1, 0) counts once");
    assert_eq!(report.relations_skipped, 0);

    let snapshot = sim.snapshot();
    let event = snapshot.events_of_type("Spearphish")[0];
    let url = snapshot.find("indicators", "http://bad.example/a").unwrap();
    let campaign = snapshot.find("campaign", "Invoice Lures").unwrap();
    let actor = snapshot.find("adversaries", "TA505").unwrap();
    let names = |object| {
        let mut names: Vec<String> = snapshot
            .related(object)
            .iter()
            .map(|o| o.value.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(event),
        ["203.0.113.9", "http://bad.example/a", "sender@bad.example"]
    );
    assert_eq!(
        names(url),
        ["Invoice Lures", "TAP Message Delivered: invoice [guid-1]"]
    );
    assert_eq!(names(campaign), ["TA505", "http://bad.example/a"]);
    assert_eq!(names(actor), ["Invoice Lures"]);
}

#[tokio::test]
async fn objects_arrive_with_source_tlp_attributes_and_threatqs_quirks() {
    let (sim, client) = start().await;
    client.forward(&linked_batch(), &options()).await.unwrap();
    let snapshot = sim.snapshot();
    let url = snapshot.find("indicators", "http://bad.example/a").unwrap();
    assert_eq!(url.status.as_deref(), Some("Review"));
    assert_eq!(url.type_name.as_deref(), Some("URL"));
    assert_eq!(url.sources, ["Proofpoint TAP"]);
    assert_eq!(url.attributes[0].sources, ["Proofpoint TAP"]);
    let event = snapshot.events_of_type("Spearphish")[0];
    assert_eq!(event.happened_at.as_deref(), Some("2024-05-01 10:00:00"));
    assert_eq!(event.attribute_values("Recipient"), ["a@example.com"]);
    let actor = snapshot.find("adversaries", "TA505").unwrap();
    assert_eq!(actor.description.as_deref(), Some("about TA505"));

    let adversary_body = consume_requests(&sim)
        .iter()
        .map(|r| r.body_json().unwrap())
        .find(|body| body[0].get("name").is_some())
        .unwrap();
    assert_eq!(
        adversary_body[0]["description"],
        json!([{ "value": "about TA505" }])
    );
    assert_eq!(
        adversary_body[0]["sources"],
        json!([{ "name": "Proofpoint TAP", "tlp_id": 3 }])
    );
}

#[tokio::test]
async fn rejected_objects_are_reported_with_threatqs_reason_and_the_rest_land() {
    let (sim, client) = start().await;
    sim.faults().reject_values_containing("poison");
    let mut objects: Vec<TqObject> = (0..100)
        .map(|n| indicator(&format!("host{n}.example"), "FQDN"))
        .collect();
    objects[37] = indicator("poison.example", "FQDN");
    objects[80] = indicator("curl/8.0", "User-Agent");
    objects.push(event("E"));
    let batch = Batch {
        objects,
        relations: vec![(100, 37), (100, 1)],
    };
    let report = client.forward(&batch, &options()).await.unwrap();

    assert_eq!(report.accepted[&Collection::Indicators], 98);
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    let poison = &report.rejected[0];
    assert_eq!(poison.identity, "poison.example (FQDN)");
    assert_eq!(poison.reason, "0.value: The 0.value format is invalid.");
    assert_eq!((poison.index, poison.status), (37, Some(422)));
    assert!(!poison.relations_only);
    let agent = &report.rejected[1];
    assert_eq!(agent.identity, "curl/8.0 (User-Agent)");
    assert_eq!((agent.index, agent.status), (80, Some(422)));
    assert!(
        agent.reason.contains("type.name is invalid"),
        "{}",
        agent.reason
    );
    assert_eq!(report.relations, 1);
    assert_eq!(report.relations_skipped, 1);
    assert_eq!(sim.snapshot().count("indicators"), 98);
    assert!(
        consume_requests(&sim).len() < 30,
        "bisection isolates two bad objects in a few requests"
    );
}

#[tokio::test]
async fn objects_without_what_threatq_requires_are_rejected_without_a_request() {
    let (sim, client) = start().await;
    let mut nameless = named(Collection::Malware, "  ");
    nameless.description = None;
    let batch = Batch {
        objects: vec![nameless, named(Collection::Malware, "Emotet")],
        relations: vec![(0, 1)],
    };
    let report = client.forward(&batch, &options()).await.unwrap();
    assert_eq!(report.rejected.len(), 1);
    assert!(report.rejected[0].reason.starts_with("not sent"));
    assert_eq!(report.rejected[0].index, 0);
    assert_eq!(
        report.rejected[0].status, None,
        "rejected without a request"
    );
    assert_eq!(report.relations_skipped, 1);
    assert_eq!(consume_requests(&sim).len(), 1);
}

#[tokio::test]
async fn two_503s_then_success_forward_everything() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().fail_next(2, 503);
    let report = client.forward(&linked_batch(), &options()).await.unwrap();
    assert_eq!(report.accepted_total(), 6);
    assert!(report.rejected.is_empty());
    let statuses: Vec<u16> = consume_requests(&sim)
        .iter()
        .map(|r| r.status)
        .take(3)
        .collect();
    assert_eq!(statuses, [503, 503, 201]);
}

#[tokio::test]
async fn a_persistent_503_fails_after_the_policys_attempts() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().fail_next(100, 503);
    let error = client
        .forward(&linked_batch(), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ThreatqError::GaveUp { attempts: 5, .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(503));
    let message = error.to_string();
    assert!(
        message.contains("HTTP 503") && message.contains("try again later"),
        "{message}"
    );
    assert_eq!(consume_requests(&sim).len(), 5);
}

#[tokio::test]
async fn a_timeout_is_transient_and_retried() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let client = Client::new(config(&sim, PASSWORD), http, quick_retries(2));
    client.login().await.unwrap();
    sim.faults().set_delay(Some(Duration::from_millis(600)));
    let error = client
        .forward(&linked_batch(), &options())
        .await
        .unwrap_err();
    let ThreatqError::GaveUp { attempts: 2, last } = &error else {
        panic!("expected GaveUp, got {error:?}");
    };
    assert!(
        matches!(**last, ThreatqError::Unreachable { .. }),
        "{last:?}"
    );
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn an_unreachable_threatq_is_a_clear_error() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let cfg = config(&sim, PASSWORD);
    drop(sim);
    let client = Client::new(cfg, reqwest::Client::new(), quick_retries(2));
    let error = client.login().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("could not reach ThreatQ at http://127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("check [threatq] base_url"), "{message}");
}

#[tokio::test]
async fn a_2xx_answer_carrying_errors_is_a_failure() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().errors_in_success_next(1);
    let error = client
        .forward(&linked_batch(), &options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ThreatqError::ErrorsInSuccess { status: 200, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("There was an error retrieving records.")
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_collection_threatq_lacks_rejects_its_objects_and_the_run_goes_on() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    let batch = Batch {
        objects: vec![
            named(Collection::AttackPattern, "Phishing"),
            named(Collection::AttackPattern, "Spearphishing Link"),
        ],
        relations: vec![(0, 1)],
    };
    sim.faults().fail_next(1, 404);
    let report = client.forward(&batch, &options()).await.unwrap();
    assert_eq!(report.rejected.len(), 2);
    assert!(
        report.rejected[0]
            .reason
            .contains("ThreatQ has no 'attack_pattern' collection"),
        "{}",
        report.rejected[0].reason
    );
    assert_eq!(report.relations_skipped, 1);
    assert_eq!(report.rejected[1].index, 1);
    assert!(report.rejected.iter().all(|r| r.status == Some(404)));
    assert_eq!(sim.snapshot().count("attack_pattern"), 0);
}

#[tokio::test]
async fn forwarding_the_same_batch_twice_creates_no_duplicates() {
    let (sim, client) = start().await;
    client.forward(&linked_batch(), &options()).await.unwrap();
    let first = sim.snapshot();
    let report = client.forward(&linked_batch(), &options()).await.unwrap();
    let second = sim.snapshot();
    assert_eq!(report.accepted_total(), 6);
    assert_eq!(first.objects, second.objects);
}

#[tokio::test]
async fn connector_settings_are_read_when_the_entry_exists() {
    let (sim, client) = start_with(ThreatqSimConfig {
        connector: Some(json!({
            "id": 7, "name": "Proofpoint TAP", "category": "Labs", "active": true,
            "options": {
                "hostname": "tap-api-v2.proofpoint.com", "api_principal": "principal-1",
                "api_secret": "secret-1", "history_hours": "24", "create_incidents": "Yes",
            },
        })),
        ..ThreatqSimConfig::default()
    })
    .await;
    let settings = client
        .connector_settings("Proofpoint TAP")
        .await
        .unwrap()
        .unwrap();
    assert!(settings.enabled);
    assert_eq!(
        settings.hostname.as_deref(),
        Some("tap-api-v2.proofpoint.com")
    );
    assert_eq!(settings.principal.as_deref(), Some("principal-1"));
    assert_eq!(
        settings
            .secret
            .as_ref()
            .map(threatq_client::ExposeSecret::expose_secret),
        Some("secret-1")
    );
    assert_eq!(settings.history_hours, Some(24));
    assert_eq!(settings.create_incidents, Some(true));

    sim.set_connector(Some(
        json!({ "name": "Proofpoint TAP", "active": "0", "options": {} }),
    ));
    let switched_off = client
        .connector_settings("Proofpoint TAP")
        .await
        .unwrap()
        .unwrap();
    assert!(!switched_off.enabled);
    assert_eq!(switched_off.history_hours, None);
}

#[tokio::test]
async fn connector_settings_are_none_when_absent_or_the_endpoint_is_missing() {
    let (sim, client) = start().await;
    assert_eq!(
        client.connector_settings("Proofpoint TAP").await.unwrap(),
        None
    );
    sim.set_connector(Some(json!({ "name": "Other Feed", "active": true })));
    assert_eq!(
        client.connector_settings("Proofpoint TAP").await.unwrap(),
        None
    );
    sim.faults().set_connectors_missing(true);
    assert_eq!(
        client.connector_settings("Proofpoint TAP").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn the_indicator_statuses_are_read_by_name() {
    let (sim, client) = start().await;
    let statuses = client.indicator_statuses().await.unwrap();
    assert_eq!(statuses, threatq_sim::INDICATOR_STATUSES);
    assert!(
        statuses
            .iter()
            .any(|status| status == &options().indicator_status)
    );
    let request = sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/indicator/statuses")
        .expect("the statuses were asked for");
    assert_eq!((request.method.as_str(), request.status), ("GET", 200));

    sim.faults().fail_next(2, 503);
    assert_eq!(client.indicator_statuses().await.unwrap(), statuses);
}

#[tokio::test]
async fn the_proxy_setting_is_read_or_none() {
    let (sim, client) = start().await;
    assert_eq!(client.proxy_setting().await.unwrap(), None);
    sim.set_proxy(Some("http://proxy.internal:3128".to_owned()));
    assert_eq!(
        client.proxy_setting().await.unwrap().as_deref(),
        Some("http://proxy.internal:3128")
    );
}

#[tokio::test]
async fn no_error_message_carries_the_password_or_a_token() {
    let (sim, client) = start().await;
    let mut messages = Vec::new();

    client.forward(&linked_batch(), &options()).await.unwrap();
    sim.faults().fail_next(100, 503);
    messages.push(
        client
            .forward(&linked_batch(), &options())
            .await
            .unwrap_err()
            .to_string(),
    );
    sim.faults().clear();
    sim.faults().errors_in_success_next(1);
    messages.push(
        client
            .forward(&linked_batch(), &options())
            .await
            .unwrap_err()
            .to_string(),
    );
    sim.faults().set_connectors_missing(false);
    sim.set_connector(Some(
        json!({ "name": "T", "options": { "history_hours": "soon" } }),
    ));
    messages.push(
        client
            .connector_settings("T")
            .await
            .unwrap_err()
            .to_string(),
    );

    let wrong = Client::new(
        config(&sim, "wrong-password"),
        reqwest::Client::new(),
        quick_retries(1),
    );
    messages.push(wrong.login().await.unwrap_err().to_string());
    let (short_lived, expiring) = start_with(ThreatqSimConfig {
        token_ttl: Duration::ZERO,
        ..ThreatqSimConfig::default()
    })
    .await;
    messages.push(
        expiring
            .forward(&linked_batch(), &options())
            .await
            .unwrap_err()
            .to_string(),
    );

    let tokens: Vec<String> = sim
        .requests()
        .into_iter()
        .chain(short_lived.requests())
        .filter_map(|r| r.bearer)
        .collect();
    assert!(tokens.len() > 3);
    for message in &messages {
        assert!(
            !message.contains(PASSWORD) && !message.contains("wrong-password"),
            "{message}"
        );
        for token in &tokens {
            assert!(!message.contains(token.as_str()), "{message}");
        }
    }
}
