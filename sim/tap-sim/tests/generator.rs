//! The generated tenant is deterministic, realistic, and served whole.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::*;
use tap_sim::generator::{EVIDENCE_TYPES, TenantSpec, generate};
use tap_sim::{ForensicsScope, ThreatStatus, ThreatType};
use time::Duration;

fn spec(hours: i64) -> TenantSpec {
    let end = minutes_ago(5);
    TenantSpec::new(42, end - Duration::hours(hours), end)
}

#[test]
fn the_same_seed_gives_the_same_tenant_and_another_seed_a_different_one() {
    let spec = spec(6);
    assert_eq!(generate(&spec), generate(&spec));
    let other = TenantSpec {
        seed: 43,
        ..spec.clone()
    };
    assert_ne!(
        generate(&spec).messages_delivered,
        generate(&other).messages_delivered
    );
}

#[test]
fn messages_to_several_recipients_yield_one_record_per_recipient_with_the_same_guid() {
    let tenant = generate(&spec(6));
    let mut by_guid: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for m in tenant
        .messages_delivered
        .iter()
        .chain(&tenant.messages_blocked)
    {
        by_guid.entry(m.guid.as_str()).or_default().push(m);
    }
    let multi: Vec<_> = by_guid.values().filter(|copies| copies.len() > 1).collect();
    assert!(!multi.is_empty(), "no per-recipient copies generated");
    for copies in multi {
        let ids: BTreeSet<_> = copies.iter().map(|m| &m.id).collect();
        let recipients: BTreeSet<_> = copies.iter().map(|m| &m.recipient).collect();
        assert_eq!((ids.len(), recipients.len()), (copies.len(), copies.len()));
        assert!(
            copies
                .iter()
                .all(|m| m.message_time == copies[0].message_time)
        );
        assert!(copies.iter().all(|m| m.recipient.len() == 1));
    }
}

#[test]
fn the_summary_reads_as_one_line_with_the_counts() {
    let summary = generate(&spec(2)).summary();
    let line = summary.to_string();
    assert!(!line.contains('\n'));
    let records = summary.all.messages_delivered + summary.all.messages_blocked;
    assert!(line.contains(&format!("as {records} records")), "{line}");
    assert!(
        line.contains(&format!("{} campaigns", summary.campaigns)),
        "{line}"
    );
}

#[test]
fn forensics_cover_every_evidence_type_malicious_and_benign() {
    let summary = generate(&spec(2)).summary();
    for kind in EVIDENCE_TYPES {
        let count = summary.evidence.get(*kind).copied().unwrap_or_default();
        assert!(count.malicious > 0 && count.benign > 0, "{kind}: {count:?}");
    }
}

#[test]
fn the_tenant_exercises_every_mapping_rule() {
    let tenant = generate(&spec(12));
    let summary = tenant.summary();
    let messages: Vec<_> = tenant
        .messages_delivered
        .iter()
        .chain(&tenant.messages_blocked)
        .collect();
    let threats: Vec<_> = messages.iter().flat_map(|m| &m.threats_info_map).collect();
    for kind in [
        ThreatType::Url,
        ThreatType::Attachment,
        ThreatType::MessageText,
    ] {
        assert!(threats.iter().any(|t| t.threat_type == kind), "{kind:?}");
    }
    assert!(threats.iter().any(|t| t.campaign_id.is_some()));
    assert!(threats.iter().any(|t| t.campaign_id.is_none()));
    assert!(
        threats
            .iter()
            .any(|t| t.threat_status == ThreatStatus::FalsePositive)
    );
    assert!(
        threats.iter().any(|t| t.threat.contains('@')),
        "impostor addresses"
    );
    assert!(
        threats
            .iter()
            .any(|t| t.threat_type == ThreatType::MessageText && !t.threat.contains('@'))
    );
    assert!(summary.late_verdict_records > 0);
    assert!(summary.all.messages_blocked > 0 && summary.all.clicks_blocked > 0);
    assert!(summary.visible.messages_delivered < summary.all.messages_delivered + 1);
    assert!(
        messages.iter().any(|m| m.sender_ip.contains(':')),
        "IPv6 sender"
    );
    assert!(
        messages.iter().any(|m| m.sender_ip.contains('.')),
        "IPv4 sender"
    );
    assert!(messages.iter().any(|m| !m.reply_to_address.is_empty()));
    assert!(messages.iter().any(|m| !m.cc_addresses.is_empty()));
    assert!(messages.iter().any(|m| m.xmailer.is_some()));
    assert!(
        messages
            .iter()
            .any(|m| m.subject.as_deref().is_none_or(str::is_empty))
    );
    let parts: Vec<_> = messages.iter().flat_map(|m| &m.message_parts).collect();
    assert!(parts.iter().any(|p| p.disposition == "inline"));
    assert!(
        parts
            .iter()
            .any(|p| p.disposition == "attached" && p.sandbox_status.as_deref() == Some("threat"))
    );
    assert!(
        messages
            .iter()
            .filter(|m| m.quarantine_folder.is_some())
            .count()
            == summary.all.messages_blocked
    );
    let campaign = &tenant.campaigns[0];
    assert!(
        !campaign.malware.is_empty()
            && !campaign.techniques.is_empty()
            && !campaign.families.is_empty()
    );
    assert!(tenant.campaigns.iter().any(|c| !c.actors.is_empty()));
    assert!(tenant.campaigns.iter().any(|c| !c.brands.is_empty()));
    assert!(
        tenant
            .forensics
            .iter()
            .any(|(scope, _)| matches!(scope, ForensicsScope::Threat(_)))
    );
    assert!(
        tenant
            .forensics
            .iter()
            .any(|(scope, _)| matches!(scope, ForensicsScope::Campaign(_)))
    );
}

#[test]
fn clicks_point_at_delivered_messages_and_their_url_threats() {
    let tenant = generate(&spec(6));
    assert!(!tenant.clicks_permitted.is_empty());
    for click in tenant.clicks_permitted.iter().chain(&tenant.clicks_blocked) {
        let copy = tenant
            .messages_delivered
            .iter()
            .find(|m| m.guid == click.guid && m.recipient == [click.recipient.clone()])
            .expect("clicked message was delivered to the clicker");
        let threat = copy
            .threats_info_map
            .iter()
            .find(|t| t.threat_id == click.threat_id)
            .expect("clicked threat is in the message");
        assert_eq!(
            (threat.threat_type, &threat.threat),
            (ThreatType::Url, &click.url)
        );
        assert!(click.click_time > copy.message_time);
    }
    for click in &tenant.clicks_blocked {
        assert!(
            click.threat_time <= click.click_time,
            "a blocked click needs an earlier verdict"
        );
    }
}

#[test]
fn generated_values_use_only_reserved_ranges_and_domains() {
    let tenant = generate(&spec(6));
    let text = serde_json::to_string(&(
        &tenant.messages_delivered,
        &tenant.messages_blocked,
        &tenant.clicks_permitted,
        &tenant.clicks_blocked,
        &tenant.campaigns,
        &tenant.forensics.iter().map(|(_, r)| r).collect::<Vec<_>>(),
    ))
    .unwrap();
    let allowed_domain = |d: &str| {
        d.ends_with("example.com")
            || d.ends_with("example.net")
            || d.ends_with("example.org")
            || d.ends_with(".zz")
            || d == "threatinsight.proofpoint.com"
    };
    for word in text.split(|c: char| {
        !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '@' || c == ':')
    }) {
        if let Some((_, domain)) = word.split_once('@') {
            assert!(
                allowed_domain(domain.trim_end_matches('.')),
                "address {word}"
            );
        }
        let octets: Vec<&str> = word.split('.').collect();
        if octets.len() == 4
            && octets
                .iter()
                .all(|o| !o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit()))
        {
            assert!(
                ["192.0.2.", "198.51.100.", "203.0.113."]
                    .iter()
                    .any(|p| word.starts_with(p)),
                "IPv4 {word}"
            );
        }
    }
    for m in &tenant.messages_delivered {
        assert!(
            m.sender_ip.contains('.') || m.sender_ip.starts_with("2001:db8:"),
            "{}",
            m.sender_ip
        );
    }
}

/// Counts what the simulator serves for `spec`'s span, hour by hour, with
/// `filter` added to each query: (delivered, blocked, distinct GUIDs,
/// permitted, blocked clicks).
async fn served_hour_by_hour(
    sim: &tap_sim::TapSim,
    spec: &TenantSpec,
    filter: &str,
) -> (usize, usize, usize, usize, usize) {
    let (mut delivered, mut blocked, mut permitted, mut clicks_blocked) = (0, 0, 0, 0);
    let mut guids = BTreeSet::new();
    let mut from = spec.start;
    while from < spec.end {
        let to = (from + Duration::HOUR).min(spec.end);
        let body = get(
            sim,
            &format!("/v2/siem/all?format=json&{}{filter}", interval(from, to)),
        )
        .await
        .json();
        delivered += array_len(&body, "messagesDelivered");
        blocked += array_len(&body, "messagesBlocked");
        permitted += array_len(&body, "clicksPermitted");
        clicks_blocked += array_len(&body, "clicksBlocked");
        for key in ["messagesDelivered", "messagesBlocked"] {
            for m in body[key].as_array().unwrap() {
                guids.insert(m["GUID"].as_str().unwrap().to_owned());
            }
        }
        from = to;
    }
    (delivered, blocked, guids.len(), permitted, clicks_blocked)
}

fn counts(v: tap_sim::generator::SiemCounts) -> (usize, usize, usize, usize, usize) {
    (
        v.messages_delivered,
        v.messages_blocked,
        v.distinct_message_guids,
        v.clicks_permitted,
        v.clicks_blocked,
    )
}

#[tokio::test]
async fn the_summary_matches_what_the_simulator_serves_hour_by_hour() {
    let spec = spec(6);
    let tenant = generate(&spec);
    let summary = tenant.summary();
    let sim = start().await;
    sim.load_tenant(&tenant);
    let every_status = "&threatStatus=active&threatStatus=cleared&threatStatus=falsePositive";
    assert_eq!(
        served_hour_by_hour(&sim, &spec, every_status).await,
        counts(summary.visible),
        "asked for every status, as the connector does"
    );
    assert_eq!(
        served_hour_by_hour(&sim, &spec, "").await,
        counts(summary.visible_without_false_positives),
        "TAP's default hides falsePositive"
    );
    let v = summary.visible;
    assert_eq!(v, summary.all, "every generated status is a known one");
    assert!(
        summary.visible_without_false_positives.messages_delivered < v.messages_delivered,
        "the tenant has false positives to hide"
    );
    assert!(summary.all.messages_delivered >= v.messages_delivered);
    // Every campaign and every threat's forensics can be fetched.
    for campaign in &tenant.campaigns {
        assert_eq!(
            get(&sim, &format!("/v2/campaign/{}", campaign.id))
                .await
                .status,
            200
        );
        assert_eq!(
            get(&sim, &format!("/v2/forensics?campaignId={}", campaign.id))
                .await
                .status,
            200
        );
    }
}

/// Generates, loads and serves a 48-hour tenant hour by hour; returns
/// the slowest hour.
async fn serve_48_hours(messages_per_hour: u32, clicks_per_hour: u32) -> std::time::Duration {
    let end = minutes_ago(5);
    let spec = TenantSpec {
        messages_per_hour,
        clicks_per_hour,
        ..TenantSpec::new(7, end - Duration::hours(48), end)
    };
    let started = Instant::now();
    let tenant = generate(&spec);
    let generated_in = started.elapsed();
    let sim = start().await;
    let started = Instant::now();
    sim.load_tenant(&tenant);
    let loaded_in = started.elapsed();
    let summary = tenant.summary();
    let all = summary.all;
    let records =
        all.messages_delivered + all.messages_blocked + all.clicks_permitted + all.clicks_blocked;
    let mut slowest = std::time::Duration::ZERO;
    let (mut served, mut bytes) = (0, 0);
    for hour in 0..48 {
        let from = spec.start + Duration::hours(hour);
        let query = format!(
            "/v2/siem/all?format=json&{}",
            interval(from, from + Duration::HOUR)
        );
        let started = Instant::now();
        let answer = get(&sim, &query).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(answer.status, 200);
        bytes += answer.text.len();
        let body = answer.json();
        served += [
            "messagesDelivered",
            "messagesBlocked",
            "clicksPermitted",
            "clicksBlocked",
        ]
        .iter()
        .map(|k| array_len(&body, k))
        .sum::<usize>();
    }
    eprintln!(
        "48 h tenant: {records} records ({} per hour), generated in {generated_in:?}, loaded in {loaded_in:?}; \
         served {served} records / {} MB, slowest hour (request + body) {slowest:?}",
        records / 48,
        bytes / 1_000_000
    );
    assert!(served <= records && served > records / 2);
    slowest
}

#[tokio::test]
async fn a_48_hour_tenant_serves_each_hour_quickly() {
    let slowest = serve_48_hours(100, 30).await;
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "slowest hour took {slowest:?}"
    );
}

/// The project's benchmark size (~2,800 records an hour); run with
/// `cargo test -p tap-sim --release --test generator -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark-sized; slow in debug builds"]
async fn a_busy_48_hour_tenant_serves_each_hour_in_milliseconds() {
    let slowest = serve_48_hours(1000, 300).await;
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "slowest hour took {slowest:?}"
    );
}
