//! ThreatQ side: fuzzed bytes become ThreatQ's answer to the public
//! `threatq_client::Client` calls.
//!
//! Why over HTTP: the client's response readers (`Client::interpret`, the
//! token answer in `request_token`, `row_identity`/`assign_ids` in
//! forward.rs, `parse_entry` in connector_settings.rs, `reason_from_body`
//! in error.rs) are private to their modules, and the only public way to
//! reach them is through a `Client` talking HTTP. So the harness runs a
//! small hyper server on 127.0.0.1 that answers with the fuzzed body, and
//! drives `login`, `forward`, `connector_settings` and `proxy_setting`.
//! This is slower than a direct call (about a dozen loopback requests per
//! input) but tests exactly what the connector runs.
//!
//! Properties checked for every body (a failed check panics):
//! * no panic, no hang (the client has a timeout and the harness treats
//!   "unreachable" as a harness failure);
//! * a 2xx answer is a success exactly when it is empty or JSON without a
//!   non-empty `errors` member (top level or under `data`), as documented
//!   in docs/threatq-api.md, "Errors"; a failed one is `UnexpectedResponse`
//!   or `ErrorsInSuccess`;
//! * login succeeds exactly when the answer also has a non-empty string
//!   `access_token`;
//! * forward accounting: every object is accepted or rejected with a
//!   non-empty reason, every relation is stored or skipped; a 422 makes the
//!   client bisect down to single objects (a known number of requests) and
//!   reject each with ThreatQ's reason;
//! * no error text or rejection reason carries the password, or a token
//!   the client received (a fresh client cannot know another one's token);
//! * the connector settings' Debug output never shows the secret; proxy
//!   and settings texts are trimmed and non-empty;
//! * determinism: the whole sequence gives the same outcomes twice (for
//!   one input in four, see [`fuzz_responses`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use threatq_client::{
    Batch, Client, Collection, ForwardOptions, RetryPolicy, ThreatqConfig, ThreatqError, TqObject,
};

pub const PASSWORD: &str = "fuzz-Pa55word!";
/// The token of the shared, logged-in client.
pub const SHARED_TOKEN: &str = "fuzz-shared-token-7f3c9a";
const GOOD_TOKEN_ANSWER: &str = concat!(
    r#"{"access_token": "fuzz-shared-token-7f3c9a", "token_type": "Bearer", "#,
    // A year: the shared client never logs in again during a run, so the
    // request counts below stay exact.
    r#""expires_in": 31536000, "refresh_token": "fuzz-refresh"}"#
);
pub const CONNECTOR_NAME: &str = "tq-conn-proofpoint-tap";

/// What the server answers: `/api/token` gets `token`, anything else `api`.
struct Answers {
    token: (u16, Bytes),
    api: (u16, Bytes),
}

static ANSWERS: Mutex<Answers> = Mutex::new(Answers {
    token: (200, Bytes::from_static(GOOD_TOKEN_ANSWER.as_bytes())),
    api: (404, Bytes::new()),
});

fn set_answers(token: (u16, &[u8]), api: (u16, &[u8])) {
    let mut answers = ANSWERS.lock().unwrap_or_else(|p| p.into_inner());
    answers.token = (token.0, Bytes::copy_from_slice(token.1));
    answers.api = (api.0, Bytes::copy_from_slice(api.1));
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let is_token = request.uri().path() == "/api/token";
    // Read the request to its end so the connection can be reused.
    let _ = request.into_body().collect().await;
    let (status, body) = {
        let answers = ANSWERS.lock().unwrap_or_else(|p| p.into_inner());
        if is_token {
            answers.token.clone()
        } else {
            answers.api.clone()
        }
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("a response from a valid status");
    Ok(response)
}

/// Starts the fake ThreatQ as a task on `runtime`, the same current-thread
/// runtime the client runs on: client and server take turns on one thread,
/// so no request waits for another thread to be scheduled (this machine is
/// shared, and cross-thread wake-ups made the target 10x slower).
fn start_server(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let address = listener.local_addr().expect("local address");
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
    address
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    address: SocketAddr,
    http: reqwest::Client,
    /// Logged in once with [`GOOD_TOKEN_ANSWER`]; used for the API calls so
    /// they need no token request.
    shared: Client,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let address = start_server(&runtime);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("reqwest client");
        let shared = new_client(address, &http);
        set_answers((200, GOOD_TOKEN_ANSWER.as_bytes()), (404, b""));
        runtime
            .block_on(shared.login())
            .expect("the shared client logs in against the fake ThreatQ");
        Harness {
            runtime,
            address,
            http,
            shared,
        }
    })
}

fn new_client(address: SocketAddr, http: &reqwest::Client) -> Client {
    let config = ThreatqConfig {
        base_url: reqwest::Url::parse(&format!("http://{address}")).expect("server URL"),
        client_id: "fuzz-client".to_owned(),
        username: "analyst@example.com".to_owned(),
        password: PASSWORD.into(),
    };
    // One attempt: a transient answer becomes GaveUp at once, no sleeping.
    let retry = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    Client::new(config, http.clone(), retry)
}

pub fn options() -> ForwardOptions {
    ForwardOptions {
        source: "Proofpoint TAP".to_owned(),
        tlp_id: Some(3),
        indicator_status: "Review".to_owned(),
    }
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

/// Five sendable objects in four collections; five distinct relations
/// (plus a self-relation and a repeat, which never count).
pub fn batch() -> Batch {
    let mut event = object(
        Collection::Events,
        "Proofpoint TAP message [b614fa76]",
        Some("Email"),
    );
    event.happened_at = Some("2024-03-25 20:10:11".to_owned());
    event.description = Some("Please find a totally safe invoice attached.".to_owned());
    Batch {
        objects: vec![
            object(
                Collection::Indicators,
                "http://badguy.zz/login",
                Some("URL"),
            ),
            object(
                Collection::Indicators,
                "2fab740f143fc1aa4c1cd0146d334c5593b1428f6d062b2c406e5efe8abe95ca",
                Some("SHA-256"),
            ),
            event,
            object(Collection::Adversaries, "TA511", None),
            object(Collection::Campaign, "Tordal", None),
        ],
        relations: vec![(0, 2), (1, 2), (2, 3), (4, 0), (4, 1), (0, 0), (2, 0)],
    }
}
const DISTINCT_RELATIONS: usize = 5;
/// Consume requests of a forward when every request is refused with 422:
/// indicators (2 objects: 1 refused + 2 single), events, adversaries and
/// campaign one each; no linking pass, since nothing got an id.
const REQUESTS_WHEN_ALL_REFUSED: usize = 6;

/// The documented rule for a 2xx answer (docs/threatq-api.md, "Errors"):
/// its JSON, or the failure the client must report.
#[derive(Debug, PartialEq)]
enum Success {
    Json(Value),
    NotJson,
    CarriesErrors,
}

fn success_body(body: &[u8]) -> Success {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Success::Json(Value::Null);
    }
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return Success::NotJson;
    };
    let errors = json
        .get("errors")
        .or_else(|| json.get("data").and_then(|data| data.get("errors")));
    if errors.is_some_and(says_something) {
        return Success::CarriesErrors;
    }
    Success::Json(json)
}

/// The `errors` member of a JSON body, top level or under `data`.
fn errors_member(body: &[u8]) -> Option<Value> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("errors")
        .or_else(|| json.get("data").and_then(|data| data.get("errors")))
        .cloned()
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

/// Whether an `errors` member holds any message (nulls and empty lists or
/// objects do not).
fn says_something(errors: &Value) -> bool {
    match errors {
        Value::Null => false,
        Value::Array(items) => items.iter().any(says_something),
        Value::Object(fields) => fields.values().any(says_something),
        _ => true,
    }
}

/// The password, and the token of the shared client, are never quoted.
/// (A fresh client never received the shared token, so for it only the
/// password is a secret: see [`assert_no_password`].)
fn assert_no_secret(text: &str) {
    assert_no_password(text);
    assert!(
        !text.contains(SHARED_TOKEN),
        "the token leaked into: {text}"
    );
}

fn assert_no_password(text: &str) {
    assert!(!text.contains(PASSWORD), "the password leaked into: {text}");
}

/// A 2xx answer the client refused: the right variant for what the body is,
/// with a message and no secret.
fn check_refused_success(error: &ThreatqError, expected: &Success, shared: bool, body: &[u8]) {
    let text = error.to_string();
    assert!(!text.trim().is_empty());
    if shared {
        assert_no_secret(&text);
    } else {
        assert_no_password(&text);
    }
    match (error, expected) {
        (ThreatqError::UnexpectedResponse { .. }, Success::NotJson) => {}
        (ThreatqError::ErrorsInSuccess { reason, .. }, Success::CarriesErrors) => {
            // Known issue (README.md, "Findings"): an `errors` member of
            // only blank strings, e.g. `{"errors": ""}`, fails the call
            // with an empty reason. Any other empty reason is a new bug.
            if reason.trim().is_empty() {
                assert!(
                    !errors_member(body).is_some_and(|e| has_message(&e)),
                    "errors with a message gave an empty reason: {error}"
                );
            }
        }
        // A JSON answer may still be refused for its shape (connector
        // settings with nonsense values).
        (ThreatqError::UnexpectedResponse { .. }, Success::Json(_)) => {}
        (error, expected) => panic!("2xx answer {expected:?} gave {error:?}"),
    }
}

/// Everything one body leads to, for the determinism check.
#[derive(Debug, PartialEq)]
struct Outcomes(Vec<String>);

fn scenarios(body: &[u8]) -> Outcomes {
    let h = harness();
    let expected = success_body(body);
    let mut out = Vec::new();

    // 1. The token answer, 200.
    set_answers((200, body), (404, b""));
    let fresh = new_client(h.address, &h.http);
    let login = h.runtime.block_on(fresh.login());
    let usable_token = match &expected {
        Success::Json(json) => json
            .get("access_token")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty()),
        _ => false,
    };
    match &login {
        Ok(()) => assert!(usable_token, "login accepted an answer without a token"),
        Err(error @ ThreatqError::UnexpectedResponse { detail, .. })
            if matches!(expected, Success::Json(_)) =>
        {
            assert!(
                !usable_token,
                "login refused a usable token answer: {error}"
            );
            assert!(detail.contains("access_token"), "{detail}");
            assert_no_password(&error.to_string());
        }
        Err(error) => check_refused_success(error, &expected, false, body),
    }
    out.push(format!("login 200: {:?}", login.map_err(|e| e.to_string())));

    // 2. The token endpoint failing, 503: ThreatQ's words in the error.
    set_answers((503, body), (404, b""));
    let fresh = new_client(h.address, &h.http);
    let login = h.runtime.block_on(fresh.login());
    match &login {
        Err(ThreatqError::GaveUp { attempts: 1, last }) => match last.as_ref() {
            ThreatqError::Unavailable {
                status: 503,
                reason,
                ..
            } => {
                assert!(
                    !reason.trim().is_empty(),
                    "an error answer without a reason"
                );
                assert_no_password(reason);
            }
            other => panic!("503 on login gave {other:?}"),
        },
        other => panic!("503 on login gave {other:?}"),
    }
    out.push(format!("login 503: {:?}", login.map_err(|e| e.to_string())));

    let batch = batch();
    let options = options();

    // 3. Consume answers, 201: ids are read from the rows.
    set_answers((200, GOOD_TOKEN_ANSWER.as_bytes()), (201, body));
    let forward = h.runtime.block_on(h.shared.forward(&batch, &options));
    match &forward {
        Ok(report) => {
            assert!(
                matches!(expected, Success::Json(_)),
                "forward accepted a 2xx that is {expected:?}"
            );
            assert_eq!(report.rejected, [], "a 201 rejected objects");
            assert_eq!(report.accepted_total(), batch.objects.len());
            assert_eq!(report.accepted.get(&Collection::Indicators), Some(&2));
            assert_eq!(
                report.relations + report.relations_skipped,
                DISTINCT_RELATIONS,
                "relations neither stored nor skipped: {report:?}"
            );
            let has_rows = matches!(&expected, Success::Json(json) if json.get("data").is_some_and(Value::is_array));
            if !has_rows {
                assert_eq!(
                    report.relations, 0,
                    "relations stored without ids: {report:?}"
                );
            }
            // 4 collections in pass 1; pass 2 at most one request per
            // collection that anchors a relation.
            assert!((4..=8).contains(&report.requests), "{report:?}");
        }
        Err(error) => check_refused_success(error, &expected, true, body),
    }
    out.push(format!(
        "forward 201: {:?}",
        forward.map_err(|e| e.to_string())
    ));

    // 4. Consume refused, 422: bisected to single objects, each rejected
    //    with ThreatQ's reason.
    set_answers((200, GOOD_TOKEN_ANSWER.as_bytes()), (422, body));
    let forward = h.runtime.block_on(h.shared.forward(&batch, &options));
    let report = forward
        .as_ref()
        .unwrap_or_else(|e| panic!("a 422 is per object, not fatal: {e}"));
    assert_eq!(report.accepted_total(), 0);
    assert_eq!(report.rejected.len(), batch.objects.len(), "{report:?}");
    for (rejected, object) in report.rejected.iter().zip(&batch.objects) {
        assert_eq!(rejected.collection, object.collection);
        assert_eq!(rejected.identity, object.identity());
        assert!(
            !rejected.reason.trim().is_empty(),
            "rejected without a reason"
        );
        assert_no_secret(&rejected.reason);
    }
    assert_eq!(
        (report.relations, report.relations_skipped),
        (0, DISTINCT_RELATIONS)
    );
    assert_eq!(report.requests, REQUESTS_WHEN_ALL_REFUSED, "{report:?}");
    out.push(format!("forward 422: {report:?}"));

    // 5. Connector settings, 200.
    set_answers((200, GOOD_TOKEN_ANSWER.as_bytes()), (200, body));
    let settings = h
        .runtime
        .block_on(h.shared.connector_settings(CONNECTOR_NAME));
    match &settings {
        Ok(None) => {}
        Ok(Some(found)) => {
            assert!(matches!(expected, Success::Json(_)));
            let secret = found
                .secret
                .as_ref()
                .map(|s| threatq_client::ExposeSecret::expose_secret(s).to_owned());
            for text in [&found.hostname, &found.principal, &secret]
                .into_iter()
                .flatten()
            {
                assert!(
                    !text.is_empty() && text.trim() == text,
                    "untrimmed: {text:?}"
                );
            }
            // Debug shows everything but the secret, which is redacted.
            let debug = format!("{found:?}");
            let mut without_secret = format!(
                "{:?}",
                threatq_client::ConnectorSettings {
                    secret: None,
                    ..found.clone()
                }
            );
            if found.secret.is_some() {
                // The secret field comes after the only free texts
                // (hostname, principal), so the last match is the field.
                let at = without_secret
                    .rfind("secret: None")
                    .expect("Debug names the secret field");
                without_secret.replace_range(
                    at..at + "secret: None".len(),
                    "secret: Some(\"[redacted]\")",
                );
            }
            assert_eq!(debug, without_secret, "Debug shows more than it should");
        }
        Err(error) => check_refused_success(error, &expected, true, body),
    }
    out.push(format!(
        "settings 200: {:?}",
        settings.map_err(|e| e.to_string())
    ));

    // 6. Proxy setting, 200.
    let proxy = h.runtime.block_on(h.shared.proxy_setting());
    match &proxy {
        Ok(Some(proxy)) => assert!(!proxy.is_empty() && proxy.trim() == proxy, "{proxy:?}"),
        Ok(None) => {}
        Err(error) => check_refused_success(error, &expected, true, body),
    }
    if matches!(expected, Success::Json(_)) {
        assert!(
            proxy.is_ok(),
            "proxy refused a clean JSON answer: {proxy:?}"
        );
    }
    out.push(format!("proxy 200: {:?}", proxy.map_err(|e| e.to_string())));

    // 7. Connector settings, 500: an error with ThreatQ's words.
    set_answers((200, GOOD_TOKEN_ANSWER.as_bytes()), (500, body));
    let settings = h
        .runtime
        .block_on(h.shared.connector_settings(CONNECTOR_NAME));
    match &settings {
        Err(ThreatqError::GaveUp { last, .. }) => {
            assert_eq!(last.status(), Some(500));
            assert_no_secret(&last.to_string());
        }
        other => panic!("500 on connector settings gave {other:?}"),
    }
    out.push(format!(
        "settings 500: {:?}",
        settings.map_err(|e| e.to_string())
    ));

    Outcomes(out)
}

/// `threatq_responses`: `data` is ThreatQ's answer body.
///
/// The determinism re-run doubles the cost of an input (a dozen loopback
/// requests, all instrumented), so it is done for one input in four,
/// chosen by length so that a crash still reproduces from the input alone.
pub fn fuzz_responses(data: &[u8]) {
    let first = scenarios(data);
    if data.len().is_multiple_of(4) {
        let second = scenarios(data);
        assert_eq!(first, second, "the same answers gave different outcomes");
    }
}
