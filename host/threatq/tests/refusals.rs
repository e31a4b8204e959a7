//! Refusals against the simulator: which statuses are bisected down to the
//! refused object, which are retried or stop the forward, and the guard
//! that stops a collection ThreatQ refuses as a whole in a bounded number
//! of requests.

use std::time::Duration;

use threatq_client::{
    Batch, Client, Collection, ForwardOptions, RetryPolicy, SystemicRule, ThreatqConfig,
    ThreatqError, TqObject,
};
use threatq_sim::{RecordedRequest, ThreatqSim, ThreatqSimConfig};

/// Objects refused alone before the forward stops.
const SYSTEMIC_REFUSALS: usize = SystemicRule::DEFAULT.min_refusals;
/// The guard's promise for one collection in the all-refused case:
/// `2 * SYSTEMIC_REFUSALS * ceil(log2(500))`.
const SYSTEMIC_REQUEST_BOUND: usize = 2 * SYSTEMIC_REFUSALS * 9;

async fn start() -> (ThreatqSim, Client) {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .expect("sim starts");
    let config = ThreatqConfig {
        base_url: sim.base_url().parse().expect("sim URL"),
        client_id: "sim-client".to_owned(),
        username: "analyst@example.com".to_owned(),
        password: "sim-password".into(),
    };
    let retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    let client = Client::new(config, reqwest::Client::new(), retry);
    (sim, client)
}

fn options() -> ForwardOptions {
    ForwardOptions {
        source: "Proofpoint TAP".to_owned(),
        tlp_id: None,
        indicator_status: "Review".to_owned(),
    }
}

fn indicator(value: String) -> TqObject {
    TqObject {
        collection: Collection::Indicators,
        value,
        type_name: Some("URL".to_owned()),
        happened_at: None,
        description: None,
        attributes: vec![("Threat ID".to_owned(), "t-1".to_owned())],
    }
}

fn event(title: String) -> TqObject {
    TqObject {
        collection: Collection::Events,
        value: title,
        type_name: Some("Spearphish".to_owned()),
        happened_at: Some("2024-05-01 10:00:00".to_owned()),
        description: None,
        attributes: Vec::new(),
    }
}

/// `count` URL indicators, all with "bad.example" in their value.
fn urls(count: usize) -> Vec<TqObject> {
    (0..count)
        .map(|n| indicator(format!("http://host{n}.bad.example/login")))
        .collect()
}

fn consume_requests(sim: &ThreatqSim, collection: &str) -> Vec<RecordedRequest> {
    let path = format!("/api/{collection}/consume");
    sim.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn body_len(request: &RecordedRequest) -> usize {
    request
        .body_json()
        .and_then(|body| body.as_array().map(Vec::len))
        .expect("a JSON array body")
}

#[tokio::test]
async fn one_body_a_waf_blocks_with_403_costs_only_that_object() {
    let (sim, client) = start().await;
    sim.faults().refuse_bodies_containing("evil-needle", 403);
    let mut objects = urls(50);
    objects[29] = indicator("http://phish.example/evil-needle/login".to_owned());
    objects.push(event("TAP Message Delivered: invoice [guid-1]".to_owned()));
    let batch = Batch {
        objects,
        relations: (0..50).map(|n| (50, n)).collect(),
    };

    let report = client
        .forward(&batch, &options())
        .await
        .expect("one blocked body is not fatal");

    assert_eq!(report.accepted[&Collection::Indicators], 49);
    assert_eq!(report.accepted[&Collection::Events], 1);
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let blocked = &report.rejected[0];
    assert_eq!(blocked.index, 29);
    assert_eq!(blocked.collection, Collection::Indicators);
    assert_eq!(
        blocked.identity,
        "http://phish.example/evil-needle/login (URL)"
    );
    assert_eq!(blocked.status, Some(403));
    assert!(!blocked.relations_only);
    assert!(
        blocked.reason.contains("Request Rejected"),
        "the firewall's words: {}",
        blocked.reason
    );

    // The other objects' relations are stored; the blocked one's skipped.
    assert_eq!((report.relations, report.relations_skipped), (49, 1));
    let snapshot = sim.snapshot();
    assert_eq!(snapshot.count("indicators"), 49);
    assert!(
        snapshot
            .find("indicators", "http://phish.example/evil-needle/login")
            .is_none()
    );
    let stored_event = &snapshot.events_of_type("Spearphish")[0];
    assert_eq!(snapshot.related(stored_event).len(), 49);

    // Bisecting 50 for one: the first request, then two halves a level
    // for ceil(log2(50)) = 6 levels; the event and its links one each.
    let indicator_requests = consume_requests(&sim, "indicators").len();
    assert!(
        indicator_requests <= 1 + 2 * 6,
        "{indicator_requests} requests"
    );
    assert_eq!(consume_requests(&sim, "events").len(), 2);
}

#[tokio::test]
async fn bisection_cost_grows_with_the_bad_objects_not_the_batch() {
    let (sim, client) = start().await;
    sim.faults().refuse_bodies_containing("evil-needle", 403);
    let mut objects = urls(500);
    for bad in [3, 170, 171, 420] {
        objects[bad] = indicator(format!("http://x{bad}.example/evil-needle"));
    }
    let report = client
        .forward(
            &Batch {
                objects,
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap();
    let indices: Vec<usize> = report.rejected.iter().map(|r| r.index).collect();
    assert_eq!(indices, [3, 170, 171, 420]);
    assert_eq!(report.accepted[&Collection::Indicators], 496);
    // k bad among n: at most 1 + 2 k ceil(log2 n) requests.
    let requests = consume_requests(&sim, "indicators").len();
    assert!(requests <= 1 + 2 * 4 * 9, "{requests} requests");
}

#[tokio::test]
async fn a_waf_that_blocks_every_body_is_a_systemic_refusal_in_bounded_requests() {
    let (sim, client) = start().await;
    sim.faults().refuse_bodies_containing("bad.example", 403);
    let batch = Batch {
        objects: urls(500),
        relations: Vec::new(),
    };
    let error = client.forward(&batch, &options()).await.unwrap_err();

    let ThreatqError::SystemicRefusal {
        collection,
        status,
        reason,
        refused,
        sent,
        relations_only,
    } = &error
    else {
        panic!("expected SystemicRefusal, got {error:?}");
    };
    assert_eq!(*collection, Collection::Indicators);
    assert_eq!(*status, 403);
    assert!(reason.contains("Request Rejected"), "{reason}");
    assert_eq!(
        (*refused, *sent, *relations_only),
        (SYSTEMIC_REFUSALS, 500, false)
    );
    assert_eq!(error.status(), Some(403));
    assert!(!error.is_transient());
    let message = error.to_string();
    for expected in [
        "ThreatQ refuses every indicators object it is sent",
        "HTTP 403",
        "Request Rejected",
        "not bad data",
        "Nothing of the window was checkpointed",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }

    let requests = consume_requests(&sim, "indicators").len();
    println!("all 500 refused: {requests} consume requests");
    assert!(
        requests <= SYSTEMIC_REQUEST_BOUND,
        "{requests} requests for one collection"
    );
    assert_eq!(sim.snapshot().objects.len(), 0);
}

#[tokio::test]
async fn the_guard_bounds_a_collection_of_several_requests_too() {
    let (sim, client) = start().await;
    sim.faults().refuse_bodies_containing("bad.example", 403);
    let batch = Batch {
        objects: urls(2000),
        relations: Vec::new(),
    };
    let error = client.forward(&batch, &options()).await.unwrap_err();
    assert!(
        matches!(error, ThreatqError::SystemicRefusal { sent: 2000, .. }),
        "{error:?}"
    );
    let requests = consume_requests(&sim, "indicators").len();
    println!("all 2000 refused: {requests} consume requests");
    assert!(requests <= SYSTEMIC_REQUEST_BOUND, "{requests} requests");
}

#[tokio::test]
async fn an_indicator_status_threatq_does_not_know_is_a_systemic_refusal() {
    let (sim, client) = start().await;
    let options = ForwardOptions {
        indicator_status: "Reviewed".to_owned(),
        ..options()
    };
    let mut objects = urls(60);
    objects.push(event("E".to_owned()));
    let batch = Batch {
        objects,
        relations: vec![(60, 0)],
    };
    let error = client.forward(&batch, &options).await.unwrap_err();
    let ThreatqError::SystemicRefusal {
        collection: Collection::Indicators,
        status: 422,
        reason,
        ..
    } = &error
    else {
        panic!("expected an indicators SystemicRefusal, got {error:?}");
    };
    assert!(reason.contains("status"), "{reason}");
    assert!(error.to_string().contains("[threatq] status"), "{error}");
    // Stopped at the first collection: events were never sent.
    assert!(consume_requests(&sim, "events").is_empty());
    assert!(consume_requests(&sim, "indicators").len() <= SYSTEMIC_REQUEST_BOUND);
}

#[tokio::test]
async fn a_422_on_every_indicator_is_a_systemic_refusal() {
    let (sim, client) = start().await;
    sim.faults()
        .refuse_collection("indicators", 422, "The selected status is invalid.");
    let error = client
        .forward(
            &Batch {
                objects: urls(300),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            ThreatqError::SystemicRefusal { status: 422, reason, refused: 8, sent: 300, .. }
                if reason == "The selected status is invalid."
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("(HTTP 422: \"The selected status is invalid.\")"),
        "{error}"
    );
    assert!(consume_requests(&sim, "indicators").len() <= SYSTEMIC_REQUEST_BOUND);
}

#[tokio::test]
async fn fewer_refused_objects_than_the_threshold_are_rejected_one_by_one() {
    let (sim, client) = start().await;
    sim.faults()
        .refuse_collection("indicators", 422, "The selected status is invalid.");
    let report = client
        .forward(
            &Batch {
                objects: urls(SYSTEMIC_REFUSALS - 1),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .expect("seven refusals are seven rejected objects");
    assert_eq!(report.rejected.len(), SYSTEMIC_REFUSALS - 1);
    assert!(report.rejected.iter().all(|r| r.status == Some(422)));

    let error = client
        .forward(
            &Batch {
                objects: urls(SYSTEMIC_REFUSALS),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ThreatqError::SystemicRefusal { .. }),
        "{error:?}"
    );
    drop(sim);
}

#[tokio::test]
async fn accepted_objects_keep_the_guard_off_however_many_are_refused() {
    let (sim, client) = start().await;
    sim.faults().refuse_bodies_containing("evil-needle", 403);
    let mut objects = urls(40);
    for (bad, object) in objects.iter_mut().enumerate().take(30).skip(10) {
        *object = indicator(format!("http://x{bad}.example/evil-needle"));
    }
    let report = client
        .forward(
            &Batch {
                objects,
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .expect("20 bad among 40 is bad data, not a setting");
    assert_eq!(report.rejected.len(), 20);
    assert_eq!(report.accepted[&Collection::Indicators], 20);
    drop(sim);
}

#[tokio::test]
async fn refused_relations_are_reported_as_relations_only() {
    let (sim, client) = start().await;
    // Only linking bodies of non-indicator anchors name "indicators".
    sim.faults()
        .refuse_bodies_containing("\"indicators\":[", 403);
    let mut objects = urls(4);
    objects.push(event("E1".to_owned()));
    let batch = Batch {
        objects,
        relations: vec![(4, 0), (4, 1), (4, 2)],
    };
    let report = client.forward(&batch, &options()).await.unwrap();
    assert_eq!(report.accepted_total(), 5);
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let refused = &report.rejected[0];
    assert_eq!(refused.index, 4);
    assert_eq!(refused.collection, Collection::Events);
    assert!(refused.relations_only);
    assert_eq!(refused.status, Some(403));
    assert!(
        refused
            .reason
            .starts_with("its relations were not stored: "),
        "{}",
        refused.reason
    );
    assert_eq!((report.relations, report.relations_skipped), (0, 3));
    assert_eq!(sim.snapshot().count("events"), 1);
}

#[tokio::test]
async fn refused_relations_of_a_whole_collection_are_a_systemic_refusal() {
    let (sim, client) = start().await;
    sim.faults()
        .refuse_bodies_containing("\"indicators\":[", 403);
    let mut objects = urls(20);
    let events: Vec<usize> = (20..30).collect();
    objects.extend(events.iter().map(|n| event(format!("E{n}"))));
    // Each event relates to two indicators, so the events carry the links.
    let relations = events
        .iter()
        .flat_map(|&e| [(e, (e - 20) * 2), (e, (e - 20) * 2 + 1)])
        .collect();
    let error = client
        .forward(&Batch { objects, relations }, &options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ThreatqError::SystemicRefusal {
                collection: Collection::Events,
                status: 403,
                sent: 10,
                relations_only: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("refuses the relations of every events object"),
        "{error}"
    );
    drop(sim);
}

#[tokio::test]
async fn a_429_is_retried_not_bisected() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().fail_next(2, 429);
    let report = client
        .forward(
            &Batch {
                objects: urls(50),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap();
    assert!(report.rejected.is_empty());
    assert_eq!(report.accepted[&Collection::Indicators], 50);
    let requests = consume_requests(&sim, "indicators");
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 201]);
    assert!(requests.iter().all(|r| body_len(r) == 50), "not split");
}

#[tokio::test]
async fn a_401_logs_in_again_and_is_not_bisected() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().expire_all_tokens();
    let report = client
        .forward(
            &Batch {
                objects: urls(50),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap();
    assert!(report.rejected.is_empty());
    let tokens = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/token")
        .count();
    assert_eq!(tokens, 2, "one login, one re-login");
    let requests = consume_requests(&sim, "indicators");
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 201]);
    assert!(requests.iter().all(|r| body_len(r) == 50), "not split");
}

#[tokio::test]
async fn a_407_stops_the_forward_without_bisecting() {
    let (sim, client) = start().await;
    client.login().await.unwrap();
    sim.faults().fail_next(1, 407);
    let error = client
        .forward(
            &Batch {
                objects: urls(50),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ThreatqError::Refused { status: 407, .. }),
        "{error:?}"
    );
    assert_eq!(consume_requests(&sim, "indicators").len(), 1);
}

#[tokio::test]
async fn a_403_from_the_token_endpoint_is_bad_credentials() {
    let (sim, client) = start().await;
    sim.faults().fail_next(1, 403);
    let error = client.login().await.unwrap_err();
    assert!(
        matches!(error, ThreatqError::BadCredentials { status: 403 }),
        "{error:?}"
    );
    // Also when the login happens on the way to a consume request: the
    // forward fails as a whole, nothing is bisected or rejected.
    sim.faults().fail_next(1, 403);
    let error = client
        .forward(
            &Batch {
                objects: urls(20),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ThreatqError::BadCredentials { status: 403 }),
        "{error:?}"
    );
    assert!(consume_requests(&sim, "indicators").is_empty());
}

#[tokio::test]
async fn another_refusal_of_the_token_endpoint_is_not_taken_for_the_requests_own() {
    let (sim, client) = start().await;
    // A 404 from /api/token must not read as "no such collection".
    sim.faults().fail_next(1, 404);
    let error = client
        .forward(
            &Batch {
                objects: urls(20),
                relations: Vec::new(),
            },
            &options(),
        )
        .await
        .unwrap_err();
    let ThreatqError::UnexpectedResponse { detail, .. } = &error else {
        panic!("expected UnexpectedResponse, got {error:?}");
    };
    assert!(detail.contains("/api/token answered HTTP 404"), "{detail}");
    assert!(consume_requests(&sim, "indicators").is_empty());
    assert_eq!(sim.snapshot().objects.len(), 0);
}
