//! The TAP component in another runtime: Node with jco (docs/embedding.md).
//!
//! The very `.wasm` our binary embeds is transpiled by jco and called from
//! `tests/embedding/run-sync.mjs` with the TAP credential in
//! `settings.credentials`, as any embedder that cannot add `Authorization`
//! below the component would. Our host runs the same windows against the
//! same TAP simulator with no credential in the settings (its outbound hook
//! adds the header). Objects, relations, rejections (section and raw text
//! included), record keys, fetched campaigns and counters must be equal,
//! field by field.
//!
//! The npm packages are pinned by `tests/embedding/package-lock.json` and
//! installed by this test (`npm ci`) into the cargo target dir. Without
//! `node` and `npm` the test says so loudly; under CI (`CI=true`) it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use tap_runtime::{
    ComponentSource, EMBEDDED_COMPONENT, Limits, ObjectKind, OutboundPolicy, Runtime,
    RuntimeConfig, Settings, SyncError, SyncResult, TapFailure, VerdictStatus, Window,
};
use tap_sim::{TapSim, TapSimConfig, TenantSpec};
use time::Duration;

/// The files of the Node host, copied next to its `node_modules`.
const NODE_HOST_FILES: [&str; 4] = [
    "package.json",
    "package-lock.json",
    "run-sync.mjs",
    "host.mjs",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_component_under_node_with_credentials_returns_what_our_host_returns() {
    let Some(node_dir) = prepare_node_host() else {
        return;
    };

    let tap = TapSim::start(TapSimConfig::default())
        .await
        .expect("TAP simulator starts");
    let now = e2e_tests::now();
    let end = now - Duration::minutes(10);
    let start = end - Duration::hours(2);
    let mut spec = TenantSpec::new(12, start, end);
    spec.messages_per_hour = 40;
    spec.clicks_per_hour = 15;
    tap.load_tenant(&tap_sim::generator::generate(&spec));
    // One record the component cannot map, so rejections (with their
    // section and raw text) are compared too.
    tap.add_message(
        tap_sim::MessageKind::Blocked,
        json!({"GUID": "unmappable", "messageTime": rfc3339(start + Duration::minutes(5)), "spamScore": "high",
               "threatsInfoMap": [{"threat": "https://evil.zz/x", "threatType": "url", "threatStatus": "active"}]}),
    )
    .expect("the simulator serves it");
    let windows = [
        window(start, start + Duration::hours(1)),
        window(start + Duration::hours(1), end),
    ];
    let settings = Settings {
        tap_base_url: tap.base_url(),
        create_incidents: true,
        known_campaigns: Vec::new(),
        already_sent: Vec::new(),
        fresh_threats: Vec::new(),
        queued_campaigns: Vec::new(),
        queued_threats: Vec::new(),
        campaign_allowance: 20,
        threat_forensics_allowance: 4,
        credentials: None,
    };

    // Our host: the credential stays outside the sandbox.
    let runtime = Runtime::new(RuntimeConfig {
        component: ComponentSource::Embedded,
        cache_dir: None,
        limits: Limits::default(),
    })
    .expect("the embedded component loads");
    let policy = OutboundPolicy {
        origin: tap_runtime::TapOrigin::parse(&tap.base_url()).expect("sim URL"),
        principal: tap.principal().to_owned(),
        secret: tap.secret().into(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        request_timeout: StdDuration::from_secs(60),
        max_response_bytes: OutboundPolicy::DEFAULT_MAX_RESPONSE_BYTES,
    };
    let mut ours = Vec::new();
    for w in &windows {
        let answer = runtime
            .sync(&policy, &settings, w)
            .await
            .answer
            .expect("the component ran");
        ours.push(answer_as_jco_json(&answer));
    }
    assert!(
        ours.iter().all(|a| a.get("ok").is_some()),
        "our host synced both windows: {ours:?}"
    );
    let rejected = &ours[0]["ok"]["rejections"];
    assert!(
        rejected
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["section"] == "messagesBlocked"
                && r["raw"]
                    .as_str()
                    .is_some_and(|raw| raw.contains("unmappable")))),
        "the unmappable record is rejected with its section and raw text: {rejected}"
    );
    let our_requests = tap.requests().len();
    tap.clear_requests();

    // Node: the same windows, the credential handed to the component.
    let request = json!({
        "settings": settings_as_jco_json(&settings, Some((tap.principal(), tap.secret()))),
        "windows": windows.iter().map(|w| json!({"start": w.start, "end": w.end})).collect::<Vec<_>>(),
    });
    let theirs = run_under_node(&node_dir, &request);
    assert_eq!(theirs.len(), windows.len(), "one answer per window");
    for (i, (node, host)) in theirs.iter().zip(&ours).enumerate() {
        assert_same(&format!("window {i}"), node, host);
    }
    let node_requests = tap.requests();
    assert_eq!(
        node_requests.len(),
        our_requests,
        "Node made the same TAP requests as our host"
    );
    assert!(
        node_requests
            .iter()
            .all(|r| r.principal.as_deref() == Some(tap.principal())),
        "every request from Node carried the credential the settings gave"
    );
    let produced = ours[0]["ok"]["objects"].as_array().map_or(0, Vec::len)
        + ours[1]["ok"]["objects"].as_array().map_or(0, Vec::len);
    assert!(
        produced > 50,
        "a real workload was compared: {produced} objects"
    );

    // Without the credential, Node's requests are refused: it is the
    // settings field, nothing else, that authenticated them.
    let anonymous = json!({
        "settings": settings_as_jco_json(&settings, None),
        "windows": [{"start": windows[0].start, "end": windows[0].end}],
    });
    let refused = run_under_node(&node_dir, &anonymous);
    assert_eq!(refused[0]["err"]["tag"], "unauthorized", "{refused:?}");

    // A credential the component cannot send is refused before any request.
    tap.clear_requests();
    let bad = json!({
        "settings": settings_as_jco_json(&settings, Some(("has:colon", "s"))),
        "windows": [{"start": windows[0].start, "end": windows[0].end}],
    });
    let invalid = run_under_node(&node_dir, &bad);
    assert_eq!(invalid[0]["err"]["tag"], "invalid-input", "{invalid:?}");
    assert!(tap.requests().is_empty(), "nothing was sent");
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

fn window(start: time::OffsetDateTime, end: time::OffsetDateTime) -> Window {
    Window {
        start: rfc3339(start),
        end: rfc3339(end),
    }
}

/// Copies the Node host into the target dir and installs its locked npm
/// packages there (once per lock file). `None` when node or npm is missing
/// outside CI, after saying so loudly.
fn prepare_node_host() -> Option<PathBuf> {
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            let message = format!(
                "`{tool}` is not installed, so the component was NOT tested under Node/jco \
                 (docs/embedding.md). Install Node.js 20 or later with npm."
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message}");
            }
            eprintln!("\n!!! SKIPPED: {message}\n");
            return None;
        }
    }

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("embedding");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("embedding-node");
    std::fs::create_dir_all(&dir).expect("node host dir");
    for file in NODE_HOST_FILES {
        std::fs::copy(source.join(file), dir.join(file))
            .unwrap_or_else(|e| panic!("copy tests/embedding/{file}: {e}"));
    }
    let lock = std::fs::read(dir.join("package-lock.json")).expect("lock file");
    let installed_from = dir.join("node_modules").join(".installed-lock.json");
    if std::fs::read(&installed_from).ok().as_deref() != Some(lock.as_slice()) {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir)
            .output()
            .expect("npm starts");
        assert!(
            output.status.success(),
            "npm ci failed in {}:\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&installed_from, &lock).expect("install marker");
    }
    std::fs::write(dir.join("tap_component.wasm"), EMBEDDED_COMPONENT).expect("component written");
    Some(dir)
}

/// Runs `run-sync.mjs` for `request`; one JSON answer per window.
fn run_under_node(dir: &Path, request: &Value) -> Vec<Value> {
    let request_file = dir.join("request.json");
    std::fs::write(&request_file, request.to_string()).expect("request written");
    let output = Command::new("node")
        .arg("run-sync.mjs")
        .arg("tap_component.wasm")
        .arg("transpiled")
        .arg(&request_file)
        .current_dir(dir)
        .output()
        .expect("node starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "run-sync.mjs failed ({}):\n{stderr}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON answer ({e}): {line}\n{stderr}"))
        })
        .collect()
}

/// Compares two answers, naming the first difference rather than dumping
/// thousands of objects.
fn assert_same(what: &str, node: &Value, host: &Value) {
    if node == host {
        return;
    }
    for key in ["ok", "err"] {
        if node.get(key).is_some() != host.get(key).is_some() {
            panic!("{what}: Node answered {node:.300}, our host {host:.300}");
        }
    }
    let (Some(node_ok), Some(host_ok)) = (node["ok"].as_object(), host["ok"].as_object()) else {
        panic!("{what}: errors differ: Node {node}, our host {host}");
    };
    for (field, expected) in host_ok {
        let got = &node_ok[field];
        if got == expected {
            continue;
        }
        if let (Some(got), Some(expected)) = (got.as_array(), expected.as_array()) {
            assert_eq!(got.len(), expected.len(), "{what}: length of `{field}`");
            for (i, (g, e)) in got.iter().zip(expected).enumerate() {
                assert_eq!(g, e, "{what}: `{field}[{i}]`");
            }
        }
        assert_eq!(got, expected, "{what}: `{field}`");
    }
    assert_eq!(
        node_ok.keys().collect::<Vec<_>>(),
        host_ok.keys().collect::<Vec<_>>(),
        "{what}: fields of the result"
    );
}

// ---------------------------------------------------------------------------
// Our host's values in jco's JavaScript shape: camelCase fields, enum cases
// as their WIT names, `option::none` as null, `result` as {ok}/{err}.

fn settings_as_jco_json(settings: &Settings, credentials: Option<(&str, &str)>) -> Value {
    json!({
        "tapBaseUrl": settings.tap_base_url,
        "createIncidents": settings.create_incidents,
        "knownCampaigns": settings.known_campaigns.iter()
            .map(|c| json!({"id": c.id, "name": c.name})).collect::<Vec<_>>(),
        "alreadySent": settings.already_sent,
        "freshThreats": settings.fresh_threats,
        "queuedCampaigns": settings.queued_campaigns,
        "queuedThreats": settings.queued_threats,
        "campaignAllowance": settings.campaign_allowance,
        "threatForensicsAllowance": settings.threat_forensics_allowance,
        "credentials": credentials.map(|(principal, secret)| json!({"principal": principal, "secret": secret})),
    })
}

fn answer_as_jco_json(answer: &Result<SyncResult, SyncError>) -> Value {
    match answer {
        Ok(result) => json!({ "ok": result_as_jco_json(result) }),
        Err(error) => json!({ "err": error_as_jco_json(error) }),
    }
}

fn result_as_jco_json(r: &SyncResult) -> Value {
    let c = &r.counters;
    json!({
        "queryEndTime": r.query_end_time,
        "objects": r.objects.iter().map(|o| json!({
            "kind": kind_name(o.kind),
            "value": o.value,
            "typeName": o.type_name,
            "happenedAt": o.happened_at,
            "description": o.description,
            "attributes": o.attributes.iter()
                .map(|a| json!({"name": a.name, "value": a.value})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "relations": r.relations.iter().map(|rel| json!({"a": rel.a, "b": rel.b})).collect::<Vec<_>>(),
        "rejections": r.rejections.iter()
            .map(|rej| json!({"key": rej.key, "reason": rej.reason, "section": rej.section, "raw": rej.raw}))
            .collect::<Vec<_>>(),
        "recordKeys": r.record_keys.iter()
            .map(|k| json!({"key": k.key, "createdMs": k.created_ms})).collect::<Vec<_>>(),
        "campaignsFetched": r.campaigns_fetched.iter()
            .map(|c| json!({"id": c.id, "name": c.name})).collect::<Vec<_>>(),
        "messageEvents": r.message_events.iter()
            .map(|l| json!({"guid": l.guid, "object": l.object})).collect::<Vec<_>>(),
        "unresolvedMessages": r.unresolved_messages.iter()
            .map(|l| json!({"guid": l.guid, "object": l.object})).collect::<Vec<_>>(),
        "unresolvedCampaigns": r.unresolved_campaigns.iter()
            .map(|l| json!({"campaignId": l.campaign_id, "object": l.object})).collect::<Vec<_>>(),
        "enrichment": {
            "threatsEnriched": r.enrichment.threats_enriched,
            "campaignsDeferred": r.enrichment.campaigns_deferred,
            "threatsDeferred": r.enrichment.threats_deferred,
        },
        "verdicts": r.verdicts.iter().map(|v| json!({
            "threatId": v.threat_id,
            "status": match v.status {
                VerdictStatus::Active => "active",
                VerdictStatus::Cleared => "cleared",
                VerdictStatus::FalsePositive => "false-positive",
            },
            "threatTimeMs": v.threat_time_ms,
            "indicatorType": v.indicator_type,
            "indicatorValue": v.indicator_value,
        })).collect::<Vec<_>>(),
        "counters": {
            "messagesDelivered": c.messages_delivered,
            "messagesBlocked": c.messages_blocked,
            "clicksPermitted": c.clicks_permitted,
            "clicksBlocked": c.clicks_blocked,
            "alreadySentSkipped": c.already_sent_skipped,
            "falsePositives": c.false_positives,
            "siemRequests": c.siem_requests,
            "campaignRequests": c.campaign_requests,
            "campaignForensicsRequests": c.campaign_forensics_requests,
            "threatForensicsRequests": c.threat_forensics_requests,
            "threatForensicsDeferred": c.threat_forensics_deferred,
            "evidenceUsed": c.evidence_used,
            "evidenceDropped": c.evidence_dropped,
        },
    })
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Indicator => "indicator",
        ObjectKind::Event => "event",
        ObjectKind::Campaign => "campaign",
        ObjectKind::Malware => "malware",
        ObjectKind::Adversary => "adversary",
        ObjectKind::AttackPattern => "attack-pattern",
    }
}

fn error_as_jco_json(e: &SyncError) -> Value {
    let failure = |tag: &str, f: &TapFailure| json!({"tag": tag, "val": {"endpoint": f.endpoint, "status": f.status, "message": f.message}});
    match e {
        SyncError::Unauthorized(f) => failure("unauthorized", f),
        SyncError::Forbidden(f) => failure("forbidden", f),
        SyncError::RateLimited(f) => failure("rate-limited", f),
        SyncError::BadRequest(f) => failure("bad-request", f),
        SyncError::ServerError(f) => failure("server-error", f),
        SyncError::BadResponse(m) => json!({"tag": "bad-response", "val": m}),
        SyncError::Transport(m) => json!({"tag": "transport", "val": m}),
        SyncError::InvalidInput(m) => json!({"tag": "invalid-input", "val": m}),
    }
}
