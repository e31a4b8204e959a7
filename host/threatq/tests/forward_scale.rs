//! A forward at the scale of a busy day (5,000 messages), against the
//! simulator: everything lands, in bounded requests. Ignored by default
//! because it takes seconds in a debug build; run with
//! `cargo test -p threatq-client --test forward_scale -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use threatq_client::{
    Batch, Client, Collection, ForwardOptions, RetryPolicy, ThreatqConfig, TqObject,
};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};

const MESSAGES: usize = 5_000;

fn object(collection: Collection, value: String, type_name: Option<&str>) -> TqObject {
    TqObject {
        collection,
        value,
        type_name: type_name.map(str::to_owned),
        happened_at: (collection == Collection::Events).then(|| "2024-05-01 10:00:00".to_owned()),
        description: None,
        attributes: vec![
            ("Classification".to_owned(), "phish".to_owned()),
            ("Threat ID".to_owned(), "0123456789abcdef".repeat(4)),
        ],
    }
}

/// Per message: one event, a URL, a sender and a subject; every 50 messages
/// share one campaign.
fn busy_day() -> Batch {
    let mut batch = Batch::default();
    for message in 0..MESSAGES {
        let event = batch.objects.len();
        batch.objects.push(object(
            Collection::Events,
            format!("TAP Message Delivered: invoice {message} [guid-{message}]"),
            Some("Spearphish"),
        ));
        for (value, type_name) in [
            (format!("http://bad{message}.example/login"), "URL"),
            (format!("sender{message}@bad.example"), "Email Address"),
            (format!("Invoice {message} overdue"), "Email Subject"),
        ] {
            batch.relations.push((event, batch.objects.len()));
            batch
                .objects
                .push(object(Collection::Indicators, value, Some(type_name)));
        }
        if message % 50 == 0 {
            batch.objects.push(object(
                Collection::Campaign,
                format!("Campaign {}", message / 50),
                None,
            ));
        }
        let campaign = batch
            .objects
            .iter()
            .rposition(|o| o.collection == Collection::Campaign)
            .expect("a campaign precedes");
        batch.relations.push((campaign, event));
    }
    batch
}

#[tokio::test]
#[ignore = "scale measurement; run explicitly"]
async fn a_busy_day_forwards_completely_in_bounded_requests() {
    let sim = ThreatqSim::start(ThreatqSimConfig::default())
        .await
        .unwrap();
    let config = ThreatqConfig {
        base_url: sim.base_url().parse().unwrap(),
        client_id: "sim-client".to_owned(),
        username: "analyst@example.com".to_owned(),
        password: "sim-password".into(),
    };
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    let client = Client::new(config, reqwest::Client::new(), retry);
    let options = ForwardOptions {
        source: "Proofpoint TAP".to_owned(),
        tlp_id: None,
        indicator_status: "Review".to_owned(),
    };
    let batch = busy_day();

    let started = Instant::now();
    let report = client.forward(&batch, &options).await.unwrap();
    let elapsed = started.elapsed();

    let bytes: usize = sim.requests().iter().map(|r| r.body_size).sum();
    println!(
        "{} objects, {} relations: {:?}, {} requests, {:.1} MB sent",
        batch.objects.len(),
        report.relations,
        elapsed,
        report.requests,
        bytes as f64 / 1e6
    );
    assert_eq!(report.accepted_total(), batch.objects.len());
    assert_eq!(report.relations, batch.relations.len());
    assert!(report.rejected.is_empty());
    let pass1 = batch.objects.len().div_ceil(500) + Collection::ALL.len();
    assert!(
        report.requests <= 1 + pass1 * 2,
        "{} requests",
        report.requests
    );
}
