//! The TAP component in another runtime: Node with jco (docs/embedding.md).
//!
//! The very `.wasm` our binary embeds is transpiled by jco and called from
//! `tests/embedding/run-sync.mjs` with the TAP credential in
//! `settings.credentials`, as any embedder that cannot add `Authorization`
//! below the component would. Our host runs the same windows against the
//! same TAP simulator with no credential in the settings (its outbound hook
//! adds the header). Objects, relations, rejections (section and raw text
//! included), record keys, fetched campaigns, message and campaign links,
//! the enrichment report (threat summaries included), verdicts and counters
//! must be equal, field by field. The settings carry every 0.6 field with
//! something in it (a summary held as fresh, a queued one, an allowance,
//! people marks), and the test checks each had its effect, so a field jco
//! were handed under the wrong name (which it reads as 0, false or empty)
//! cannot pass. Both hosts then read TAP's people lists (`read-people`),
//! and those answers must be equal too.
//!
//! The npm packages are pinned by `tests/embedding/package-lock.json` and
//! installed by this test (`npm ci`) into the cargo target dir. Without
//! `node` and `npm` the test says so loudly; under CI (`CI=true`) it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use tap_runtime::{
    ComponentSource, EMBEDDED_COMPONENT, Limits, NamedRef, ObjectKind, OutboundPolicy,
    PeopleAnswer, PeopleList, PeopleRequest, PersonMark, Runtime, RuntimeConfig, Settings,
    SummaryRef, SyncError, SyncResult, TapAccess, TapFailure, ThreatRef, VerdictStatus, Window,
};
use tap_sim::{TapSim, TapSimConfig, Tenant, TenantSpec, ThreatStatus, ThreatType};
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
    let tenant = tap_sim::generator::generate(&spec);
    tap.load_tenant(&tenant);
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
    let (summarised_threat, queued_summary) = summary_threats(&tenant);
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
        // One summary held as fresh, naming an adversary TAP's own
        // summaries do not, so its effect is unmistakable.
        summarised_threats: vec![SummaryRef {
            threat_id: summarised_threat.clone(),
            named: vec![NamedRef {
                kind: ObjectKind::Adversary,
                name: HELD_ADVERSARY.to_owned(),
            }],
        }],
        queued_summaries: vec![queued_summary.clone()],
        threat_summary_allowance: 50,
        people: people_marks(&tenant),
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
    // The people lists, read by our host as well.
    let access = TapAccess {
        tap_base_url: tap.base_url(),
        credentials: None,
    };
    let people_request = PeopleRequest {
        window_days: 30,
        very_attacked_allowance: 50,
        top_clickers_allowance: 50,
    };
    let our_people = runtime
        .read_people(&policy, &access, &people_request)
        .await
        .answer
        .expect("the component ran");
    assert_people_as_generated(&our_people, &tenant);
    let our_people = json!({ "people": people_answer_as_jco_json(&our_people) });
    let our_requests = tap.requests().len();
    tap.clear_requests();

    // Node: the same windows and people lists, the credential handed to the
    // component.
    let credentials = Some((tap.principal(), tap.secret()));
    let request = json!({
        "settings": settings_as_jco_json(&settings, credentials),
        "windows": windows.iter().map(|w| json!({"start": w.start, "end": w.end})).collect::<Vec<_>>(),
        "people": {
            "access": access_as_jco_json(&access, credentials),
            "request": {
                "windowDays": people_request.window_days,
                "veryAttackedAllowance": people_request.very_attacked_allowance,
                "topClickersAllowance": people_request.top_clickers_allowance,
            },
        },
    });
    let mut theirs = run_under_node(&node_dir, &request);
    assert_eq!(
        theirs.len(),
        windows.len() + 1,
        "one answer per window, then the people lists"
    );
    let their_people = theirs.pop().expect("the people line");
    for (i, (node, host)) in theirs.iter().zip(&ours).enumerate() {
        assert_same(&format!("window {i}"), node, host);
    }
    assert_the_new_settings_took_effect("our host", &ours, &settings);
    assert_the_new_settings_took_effect("Node", &theirs, &settings);
    assert_same_people(&their_people, &our_people);
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

/// The adversary the summary held as fresh names: no generated summary
/// names it, so an object of that name comes from the setting alone.
const HELD_ADVERSARY: &str = "Embedding Check Adversary";

/// The threat whose summary both hosts hold as fresh (an active URL threat
/// of a delivered message), and the one they have queued (an active
/// attachment threat, by its SHA-256).
fn summary_threats(tenant: &Tenant) -> (String, ThreatRef) {
    let summarised = tenant
        .messages_delivered
        .iter()
        .flat_map(|m| &m.threats_info_map)
        .find(|t| t.threat_status == ThreatStatus::Active && t.threat_type == ThreatType::Url)
        .map(|t| t.threat_id.clone())
        .expect("the tenant has a delivered message with an active URL threat");
    let queued = tenant
        .threats
        .iter()
        .find(|t| {
            t.kind == ThreatType::Attachment
                && t.status == ThreatStatus::Active
                && t.id != summarised
        })
        .expect("the tenant has an active attachment threat");
    let queued = ThreatRef {
        threat_id: queued.id.clone(),
        indicator_type: "SHA-256".to_owned(),
        indicator_value: queued.value.clone(),
    };
    (summarised, queued)
}

/// One mark per address of the tenant's people lists, as TAP lists them
/// (the first VAP's upper-case alias included), as our host makes them.
fn people_marks(tenant: &Tenant) -> Vec<PersonMark> {
    let mut marks: BTreeMap<&str, PersonMark> = BTreeMap::new();
    let lists = [
        (&tenant.very_attacked_people, true),
        (&tenant.top_clickers, false),
    ];
    for (list, very_attacked) in lists {
        for person in list {
            for email in &person.emails {
                let mark = marks.entry(email).or_insert(PersonMark {
                    email: email.clone(),
                    very_attacked: None,
                    top_clicker: false,
                    vip: false,
                });
                mark.vip |= person.vip;
                if very_attacked {
                    mark.very_attacked = Some(person.attack_index);
                } else {
                    mark.top_clicker = true;
                }
            }
        }
    }
    let marks: Vec<PersonMark> = marks.into_values().collect();
    assert!(
        marks.iter().any(|m| m.very_attacked.is_some())
            && marks.iter().any(|m| m.top_clicker)
            && marks.iter().any(|m| m.vip),
        "the tenant has very attacked people, top clickers and a VIP: {marks:?}"
    );
    marks
}

/// Each new settings field did what it says in `answers` (one per window),
/// so a field lost on the way into the component cannot go unnoticed.
fn assert_the_new_settings_took_effect(who: &str, answers: &[Value], settings: &Settings) {
    let results: Vec<&Value> = answers
        .iter()
        .map(|a| {
            a.get("ok")
                .unwrap_or_else(|| panic!("{who}: a window failed: {a:.300}"))
        })
        .collect();
    let total = |counter: &str| {
        results
            .iter()
            .map(|r| r["counters"][counter].as_u64().expect("a counter"))
            .sum::<u64>()
    };
    // `threat-summary-allowance`.
    assert!(
        total("threatSummaryRequests") > 0,
        "{who}: summaries were fetched"
    );
    let summarised: Vec<&str> = results
        .iter()
        .flat_map(|r| {
            r["enrichment"]["threatsSummarised"]
                .as_array()
                .expect("a list")
        })
        .map(|s| s["threatId"].as_str().expect("a threat id"))
        .collect();
    // `queued-summaries`: asked first.
    let queued = &settings.queued_summaries[0].threat_id;
    assert!(
        results[0]["enrichment"]["threatsSummarised"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["threatId"] == queued.as_str())),
        "{who}: the queued summary was fetched in the first window"
    );
    // `summarised-threats`: not asked again, and what it named is related.
    let held = &settings.summarised_threats[0].threat_id;
    assert!(
        !summarised.contains(&held.as_str()),
        "{who}: the summary held as fresh was not asked again"
    );
    let related_adversary = results.iter().any(|r| {
        let objects = r["objects"].as_array().expect("objects");
        objects
            .iter()
            .position(|o| o["kind"] == "adversary" && o["value"] == HELD_ADVERSARY)
            .is_some_and(|at| {
                r["relations"]
                    .as_array()
                    .expect("relations")
                    .iter()
                    .any(|rel| rel["a"] == at || rel["b"] == at)
            })
    });
    assert!(
        related_adversary,
        "{who}: the adversary the held summary names is an object, related to the threat"
    );
    // `people`: events marked with every part of a mark.
    assert!(total("peopleMarkedEvents") > 0, "{who}: events were marked");
    let attributes: Vec<(&str, &str)> = results
        .iter()
        .flat_map(|r| r["objects"].as_array().expect("objects"))
        .filter(|o| o["kind"] == "event")
        .flat_map(|o| o["attributes"].as_array().expect("attributes"))
        .map(|a| {
            (
                a["name"].as_str().expect("a name"),
                a["value"].as_str().expect("a value"),
            )
        })
        .collect();
    for name in ["Very Attacked Person", "Top Clicker", "VIP", "Attack Index"] {
        assert!(
            attributes.iter().any(|(n, _)| *n == name),
            "{who}: some event has a `{name}` attribute"
        );
    }
    let indexes: Vec<String> = settings
        .people
        .iter()
        .filter_map(|m| m.very_attacked.map(|i| i.to_string()))
        .collect();
    assert!(
        attributes
            .iter()
            .filter(|(n, _)| *n == "Attack Index")
            .all(|(_, v)| indexes.iter().any(|i| i == v)),
        "{who}: every `Attack Index` is one the marks gave ({indexes:?})"
    );
}

/// Our host's `read-people` answer is the tenant's lists, complete.
fn assert_people_as_generated(answer: &PeopleAnswer, tenant: &Tenant) {
    let lists = [
        (
            "very attacked",
            &answer.very_attacked,
            &tenant.very_attacked_people,
        ),
        ("top clickers", &answer.top_clickers, &tenant.top_clickers),
    ];
    for (what, list, generated) in lists {
        let list: &PeopleList = list
            .as_ref()
            .unwrap_or_else(|e| panic!("{what}: our host read no list: {e:?}"));
        assert!(
            list.complete && list.requests > 0,
            "{what}: read whole: {list:?}"
        );
        assert!(!list.interval.is_empty(), "{what}: TAP's interval is kept");
        assert_eq!(
            list.people.len(),
            generated.len(),
            "{what}: everyone on the list: {list:?}"
        );
        for person in generated {
            let primary = person.emails[0].to_lowercase();
            let got = list
                .people
                .iter()
                .find(|p| p.emails.first() == Some(&primary))
                .unwrap_or_else(|| panic!("{what}: {primary} is on the list: {list:?}"));
            let score = if what == "very attacked" {
                person.attack_index
            } else {
                person.click_count
            };
            assert_eq!(
                (got.vip, got.score),
                (person.vip, score),
                "{what}: {primary}"
            );
        }
    }
    assert!(
        answer
            .very_attacked
            .as_ref()
            .is_ok_and(|l| !l.people.is_empty()),
        "the VAP list is not empty"
    );
}

/// Compares the people lines: equal field by field, except TAP's
/// `interval`, which the simulator draws from its clock at each request;
/// each must span the requested 30 days, Node's ending no earlier than
/// ours and within minutes of it.
fn assert_same_people(node: &Value, host: &Value) {
    let (Some(node), Some(host)) = (node.get("people"), host.get("people")) else {
        panic!("a people line each: Node {node:.300}, our host {host:.300}");
    };
    for list in ["veryAttacked", "topClickers"] {
        let (node, host) = (&node[list], &host[list]);
        let (Some(node_ok), Some(host_ok)) = (node["ok"].as_object(), host["ok"].as_object())
        else {
            assert_eq!(node, host, "people: `{list}`");
            continue;
        };
        let interval = |list_ok: &serde_json::Map<String, Value>, who: &str| {
            let text = list_ok["interval"].as_str().unwrap_or_default();
            let parse = |t: &str| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|e| panic!("{who} `{list}.interval` {text:?}: {e}"))
            };
            let (from, to) = text
                .split_once('/')
                .unwrap_or_else(|| panic!("{who} `{list}.interval` is <start>/<end>: {text:?}"));
            let (from, to) = (parse(from), parse(to));
            assert_eq!(to - from, Duration::days(30), "{who} `{list}.interval`");
            to
        };
        let (node_end, host_end) = (interval(node_ok, "Node"), interval(host_ok, "our host"));
        assert!(
            node_end >= host_end && node_end - host_end < Duration::minutes(10),
            "people: `{list}.interval` ends {node_end} under Node, {host_end} under our host"
        );
        for (field, expected) in host_ok {
            if field != "interval" {
                assert_eq!(&node_ok[field], expected, "people: `{list}.{field}`");
            }
        }
        assert_eq!(
            node_ok.keys().collect::<Vec<_>>(),
            host_ok.keys().collect::<Vec<_>>(),
            "people: fields of `{list}`"
        );
    }
    assert_eq!(
        node.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        host.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        "people: fields of the answer"
    );
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

/// Runs `run-sync.mjs` for `request`; one JSON answer per window, then the
/// people line when the request asks for the people lists.
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
        "credentials": credentials_as_jco_json(credentials),
        "summarisedThreats": settings.summarised_threats.iter().map(|t| json!({
            "threatId": t.threat_id,
            "named": t.named.iter()
                .map(|n| json!({"kind": kind_name(n.kind), "name": n.name})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "queuedSummaries": settings.queued_summaries.iter().map(threat_ref_as_jco_json).collect::<Vec<_>>(),
        "threatSummaryAllowance": settings.threat_summary_allowance,
        "people": settings.people.iter().map(|p| json!({
            "email": p.email,
            "veryAttacked": p.very_attacked,
            "topClicker": p.top_clicker,
            "vip": p.vip,
        })).collect::<Vec<_>>(),
    })
}

fn credentials_as_jco_json(credentials: Option<(&str, &str)>) -> Value {
    json!(credentials.map(|(principal, secret)| json!({"principal": principal, "secret": secret})))
}

/// `access`, with `credentials` in place of its own (ours has none).
fn access_as_jco_json(access: &TapAccess, credentials: Option<(&str, &str)>) -> Value {
    json!({
        "tapBaseUrl": access.tap_base_url,
        "credentials": credentials_as_jco_json(credentials),
    })
}

fn threat_ref_as_jco_json(t: &ThreatRef) -> Value {
    json!({"threatId": t.threat_id, "indicatorType": t.indicator_type, "indicatorValue": t.indicator_value})
}

fn people_answer_as_jco_json(answer: &PeopleAnswer) -> Value {
    let list = |list: &Result<PeopleList, SyncError>| match list {
        Ok(l) => json!({"ok": {
            "interval": l.interval,
            "people": l.people.iter()
                .map(|p| json!({"emails": p.emails, "vip": p.vip, "score": p.score})).collect::<Vec<_>>(),
            "complete": l.complete,
            "requests": l.requests,
        }}),
        Err(error) => json!({"err": error_as_jco_json(error)}),
    };
    json!({
        "veryAttacked": list(&answer.very_attacked),
        "topClickers": list(&answer.top_clickers),
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
            "threatsSummarised": r.enrichment.threats_summarised.iter().map(|t| json!({
                "threatId": t.threat_id,
                "named": t.named.iter()
                    .map(|n| json!({"kind": kind_name(n.kind), "name": n.name})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "summariesDeferred": r.enrichment.summaries_deferred.iter()
                .map(threat_ref_as_jco_json).collect::<Vec<_>>(),
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
            "threatSummaryRequests": c.threat_summary_requests,
            "threatSummariesDeferred": c.threat_summaries_deferred,
            "peopleMarkedEvents": c.people_marked_events,
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
