//! Whatever ThreatQ answers, the client never panics and keeps its word:
//! a 2xx is a success exactly when it is JSON without `errors`, every
//! object of a forward is accepted or rejected with a reason, no error
//! text carries the password or a token, and the same answer gives the
//! same outcome twice.
//!
//! The response readers are private to the client, so the answers are
//! served by a minimal HTTP server on 127.0.0.1 and read through the
//! public API (`login`, `forward`, `connector_settings`, `proxy_setting`,
//! `indicator_statuses`).
//! Bounded (a few hundred cases) so the suite stays fast; the open-ended
//! search is the `threatq_responses` cargo-fuzz target in fuzz/.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use threatq_client::{
    Batch, Client, Collection, ConnectorSettings, ForwardOptions, RetryPolicy, ThreatqConfig,
    ThreatqError, TqObject,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "prop-Pa55word!";
const TOKEN: &str = "prop-shared-token-51d2";
const CONNECTOR: &str = "tq-conn-proofpoint-tap";

fn good_token_answer() -> Vec<u8> {
    // A year, so the shared client never logs in again mid-test.
    json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 31_536_000})
        .to_string()
        .into_bytes()
}

/// (status, body) for `/api/token` and for every other path.
#[derive(Clone, Default)]
struct Answers {
    token: (u16, Vec<u8>),
    api: (u16, Vec<u8>),
}

/// A fake ThreatQ that answers whatever it is told to, and a client
/// logged in to it. Client and server share one current-thread runtime.
struct Fake {
    runtime: tokio::runtime::Runtime,
    address: SocketAddr,
    answers: Arc<Mutex<Answers>>,
    http: reqwest::Client,
    shared: Client,
}

/// Serves one connection: HTTP/1.1 with keep-alive, requests with a
/// `content-length` body (what reqwest sends), answers from `answers`.
async fn serve(mut stream: tokio::net::TcpStream, answers: Arc<Mutex<Answers>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let length = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let (status, body) = {
            let answers = answers.lock().unwrap();
            if path.starts_with("/api/token") {
                answers.token.clone()
            } else {
                answers.api.clone()
            }
        };
        let mut response = format!(
            "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

impl Fake {
    fn start() -> Fake {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answers = Arc::new(Mutex::new(Answers {
            token: (200, good_token_answer()),
            api: (404, Vec::new()),
        }));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let served = answers.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, served.clone()));
            }
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let shared = client(address, &http);
        runtime.block_on(shared.login()).expect("the fake logs in");
        Fake {
            runtime,
            address,
            answers,
            http,
            shared,
        }
    }

    fn answer(&self, token: (u16, &[u8]), api: (u16, &[u8])) {
        *self.answers.lock().unwrap() = Answers {
            token: (token.0, token.1.to_vec()),
            api: (api.0, api.1.to_vec()),
        };
    }
}

fn client(address: SocketAddr, http: &reqwest::Client) -> Client {
    let config = ThreatqConfig {
        base_url: format!("http://{address}").parse().unwrap(),
        client_id: "prop-client".to_owned(),
        username: "analyst@example.com".to_owned(),
        password: PASSWORD.into(),
    };
    let once = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    Client::new(config, http.clone(), once)
}

fn object(collection: Collection, value: &str, type_name: Option<&str>) -> TqObject {
    TqObject {
        collection,
        value: value.to_owned(),
        type_name: type_name.map(str::to_owned),
        happened_at: None,
        description: None,
        attributes: vec![("Threat ID".to_owned(), "t-1".to_owned())],
    }
}

/// Five objects in four collections and five distinct relations (plus a
/// self-relation and a repeat, which never count).
fn batch() -> Batch {
    let mut event = object(
        Collection::Events,
        "Proofpoint TAP message [m1]",
        Some("Email"),
    );
    event.happened_at = Some("2024-03-25 20:10:11".to_owned());
    Batch {
        objects: vec![
            object(
                Collection::Indicators,
                "http://badguy.zz/login",
                Some("URL"),
            ),
            object(Collection::Indicators, "badguy.zz", Some("FQDN")),
            event,
            object(Collection::Adversaries, "TA511", None),
            object(Collection::Campaign, "Tordal", None),
        ],
        relations: vec![(0, 2), (1, 2), (2, 3), (4, 0), (4, 1), (0, 0), (2, 0)],
    }
}
const DISTINCT_RELATIONS: usize = 5;

fn options() -> ForwardOptions {
    ForwardOptions {
        source: "Proofpoint TAP".to_owned(),
        tlp_id: None,
        indicator_status: "Review".to_owned(),
    }
}

/// The `errors` member, top level or under `data`.
fn errors_member(json: &Value) -> Option<&Value> {
    json.get("errors")
        .or_else(|| json.get("data").and_then(|data| data.get("errors")))
}

/// Whether an `errors` member holds a message that is not blank.
fn has_message(errors: &Value) -> bool {
    match errors {
        Value::Null => false,
        Value::String(text) => !text.trim().is_empty(),
        Value::Array(items) => items.iter().any(has_message),
        Value::Object(fields) => fields.values().any(has_message),
        _ => true,
    }
}

/// The documented reading of a 2xx body (docs/threatq-api.md, "Errors"):
/// `Ok(json)` when the client must accept it, `Err(())` when it must fail.
fn success_body(body: &[u8]) -> Result<Value, ()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let json: Value = serde_json::from_slice(body).map_err(|_| ())?;
    let errors = errors_member(&json);
    fn says_something(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Array(items) => items.iter().any(says_something),
            Value::Object(fields) => fields.values().any(says_something),
            _ => true,
        }
    }
    if errors.is_some_and(says_something) {
        return Err(());
    }
    Ok(json)
}

/// The password, and (for the shared client, which received it) its token,
/// are never quoted. A fresh client cannot know the shared token.
fn no_secret(text: &str, shared: bool) -> Result<(), TestCaseError> {
    prop_assert!(!text.contains(PASSWORD), "password leaked: {}", text);
    if shared {
        prop_assert!(!text.contains(TOKEN), "token leaked: {}", text);
    }
    Ok(())
}

/// A 2xx the client refused: the variant that fits the body.
fn refused_2xx(
    error: &ThreatqError,
    documented: &Result<Value, ()>,
    shared: bool,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let documented_errors = json.as_ref().and_then(errors_member);
    no_secret(&error.to_string(), shared)?;
    match error {
        ThreatqError::ErrorsInSuccess { reason, .. } => {
            prop_assert!(
                documented.is_err(),
                "errors found in a clean body: {}",
                error
            );
            // Known issue (fuzz/README.md, "Findings"): an `errors` member
            // of only blank strings, e.g. `{"errors": ""}`, fails the call
            // with an empty reason. Any other empty reason is a new bug.
            if reason.trim().is_empty() {
                prop_assert!(
                    !documented_errors.is_some_and(has_message),
                    "errors with a message gave an empty reason: {}",
                    error
                );
            }
        }
        // Not JSON, or JSON in a shape the call cannot use.
        ThreatqError::UnexpectedResponse { .. } => {}
        other => prop_assert!(false, "a 2xx answer gave {:?}", other),
    }
    Ok(())
}

/// Drives every call with `body` as ThreatQ's answer, checking each
/// outcome; returns them all for the determinism check.
fn outcomes(fake: &Fake, body: &[u8]) -> Result<Vec<String>, TestCaseError> {
    let documented = success_body(body);
    let mut out = Vec::new();
    let rt = &fake.runtime;

    // Token answer, 200.
    fake.answer((200, body), (404, b""));
    let login = rt.block_on(client(fake.address, &fake.http).login());
    let has_token = documented.as_ref().is_ok_and(|json| {
        json.get("access_token")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    });
    match &login {
        Ok(()) => prop_assert!(has_token, "login took an answer without a token"),
        Err(error) => {
            prop_assert!(!has_token, "usable token refused: {}", error);
            refused_2xx(error, &documented, false, body)?;
        }
    }
    out.push(format!("{:?}", login.map_err(|e| e.to_string())));

    // Token endpoint failing, 503: ThreatQ's words, scrubbed.
    fake.answer((503, body), (404, b""));
    let login = rt.block_on(client(fake.address, &fake.http).login());
    match &login {
        Err(ThreatqError::GaveUp { last, .. }) => match last.as_ref() {
            ThreatqError::Unavailable {
                status: 503,
                reason,
                ..
            } => {
                prop_assert!(!reason.trim().is_empty());
                no_secret(reason, false)?;
            }
            other => prop_assert!(false, "503 gave {:?}", other),
        },
        other => prop_assert!(false, "503 gave {:?}", other),
    }
    out.push(format!("{:?}", login.map_err(|e| e.to_string())));

    let batch = batch();
    let token = good_token_answer();

    // Consume, 201: all accepted, relations stored or skipped.
    fake.answer((200, &token), (201, body));
    let forward = rt.block_on(fake.shared.forward(&batch, &options()));
    match &forward {
        Ok(report) => {
            prop_assert!(documented.is_ok(), "forward took a 2xx with errors");
            prop_assert!(report.rejected.is_empty(), "{:?}", report);
            prop_assert_eq!(report.accepted_total(), batch.objects.len());
            prop_assert_eq!(
                report.relations + report.relations_skipped,
                DISTINCT_RELATIONS
            );
        }
        Err(error) => refused_2xx(error, &documented, true, body)?,
    }
    out.push(format!("{:?}", forward.map_err(|e| e.to_string())));

    // Consume, 422: bisected to single objects, each rejected with a reason.
    fake.answer((200, &token), (422, body));
    let report = rt
        .block_on(fake.shared.forward(&batch, &options()))
        .map_err(|e| TestCaseError::fail(format!("a 422 is per object, not fatal: {e}")))?;
    prop_assert_eq!(report.accepted_total(), 0);
    prop_assert_eq!(report.rejected.len(), batch.objects.len());
    for rejected in &report.rejected {
        prop_assert!(!rejected.reason.trim().is_empty());
        no_secret(&rejected.reason, true)?;
    }
    prop_assert_eq!(
        (report.relations, report.relations_skipped),
        (0, DISTINCT_RELATIONS)
    );
    // Indicators: 1 refused pair + 2 singles; events, adversaries, campaign.
    prop_assert_eq!(report.requests, 6);
    out.push(format!("{report:?}"));

    // Consume, 403 (a web firewall's page, say): bisected just like a 422.
    fake.answer((200, &token), (403, body));
    let blocked = rt
        .block_on(fake.shared.forward(&batch, &options()))
        .map_err(|e| TestCaseError::fail(format!("a 403 is per object, not fatal: {e}")))?;
    prop_assert_eq!(blocked.rejected.len(), batch.objects.len());
    for (position, rejected) in blocked.rejected.iter().enumerate() {
        prop_assert_eq!(rejected.status, Some(403));
        prop_assert!(!rejected.relations_only);
        prop_assert!(rejected.index < batch.objects.len());
        prop_assert_eq!(
            &rejected.identity,
            &batch.objects[rejected.index].identity(),
            "rejection {} names its object",
            position
        );
        no_secret(&rejected.reason, true)?;
    }
    prop_assert_eq!(blocked.requests, 6);
    out.push(format!("{blocked:?}"));

    // Connector settings and proxy, 200.
    fake.answer((200, &token), (200, body));
    let settings = rt.block_on(fake.shared.connector_settings(CONNECTOR));
    if documented.is_err() {
        prop_assert!(settings.is_err(), "settings read from a 2xx with errors");
    }
    match &settings {
        Ok(Some(found)) => {
            prop_assert!(documented.is_ok());
            // Debug shows everything except the secret.
            let mut expected = format!(
                "{:?}",
                ConnectorSettings {
                    secret: None,
                    ..found.clone()
                }
            );
            if found.secret.is_some() {
                let at = expected.rfind("secret: None").unwrap();
                expected.replace_range(at..at + 12, "secret: Some(\"[redacted]\")");
            }
            prop_assert_eq!(format!("{found:?}"), expected);
        }
        Ok(None) => {}
        Err(error) => refused_2xx(error, &documented, true, body)?,
    }
    out.push(format!("{:?}", settings.map_err(|e| e.to_string())));
    let proxy = rt.block_on(fake.shared.proxy_setting());
    match &proxy {
        Ok(Some(proxy)) => prop_assert!(!proxy.is_empty() && proxy.trim() == proxy),
        Ok(None) => prop_assert!(documented.is_ok()),
        Err(error) => {
            prop_assert!(
                documented.is_err(),
                "proxy refused a clean answer: {}",
                error
            );
            refused_2xx(error, &documented, true, body)?;
        }
    }
    out.push(format!("{:?}", proxy.map_err(|e| e.to_string())));

    // Indicator statuses, 200: names, or an error that fits the body.
    let statuses = rt.block_on(fake.shared.indicator_statuses());
    match &statuses {
        Ok(names) => {
            prop_assert!(documented.is_ok(), "statuses read from a 2xx with errors");
            for name in names {
                prop_assert!(!name.is_empty() && name.trim() == name, "name {:?}", name);
            }
        }
        Err(error) => refused_2xx(error, &documented, true, body)?,
    }
    out.push(format!("{:?}", statuses.map_err(|e| e.to_string())));
    Ok(out)
}

fn check(fake: &Fake, body: &[u8]) -> Result<(), TestCaseError> {
    let first = outcomes(fake, body)?;
    let second = outcomes(fake, body)?;
    prop_assert_eq!(first, second, "the same answer gave different outcomes");
    Ok(())
}

/// JSON in ThreatQ's shapes: its keys, our objects' identities, secrets.
fn threatq_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..40).prop_map(|n| json!(n)),
        ".{0,10}".prop_map(Value::String),
        prop::sample::select(vec![
            CONNECTOR,
            "http://badguy.zz/login",
            "BADGUY.ZZ",
            "URL",
            "FQDN",
            "TA511",
            "Tordal",
            "Proofpoint TAP message [m1]",
            "2024-03-25 20:10:11",
            "Yes",
            "off",
            " 24 ",
            "http://proxy:3128",
            PASSWORD,
            TOKEN,
            "",
        ])
        .prop_map(|s| json!(s)),
    ];
    let keys = prop::sample::select(vec![
        "access_token",
        "expires_in",
        "data",
        "errors",
        "message",
        "error",
        "error_description",
        "name",
        "id",
        "value",
        "type",
        "title",
        "happened_at",
        "options",
        "active",
        "enabled",
        "proxy",
        "hostname",
        "api_secret",
        "api_principal",
        "history_hours",
        "create_incidents",
    ]);
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn run<S: Strategy>(cases: u32, strategy: S, to_body: impl Fn(S::Value) -> Vec<u8>)
where
    S::Value: std::fmt::Debug,
{
    let fake = Fake::start();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&strategy, |value| check(&fake, &to_body(value))) {
        panic!("{failure}");
    }
}

#[test]
fn arbitrary_json_answers_are_read_without_panic_and_as_documented() {
    run(256, threatq_json(), |json| json.to_string().into_bytes());
}

#[test]
fn arbitrary_byte_answers_are_read_without_panic_and_as_documented() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        // JSON cut short or with a stray byte, which are near misses.
        (threatq_json(), any::<u8>(), any::<prop::sample::Index>()).prop_map(|(json, byte, at)| {
            let mut text = json.to_string().into_bytes();
            let at = at.index(text.len() + 1);
            if byte % 2 == 0 {
                text.truncate(at);
            } else {
                text.insert(at, byte);
            }
            text
        }),
    ];
    run(128, bytes, |body| body);
}
