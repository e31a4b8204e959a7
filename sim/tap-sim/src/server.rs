//! The simulator itself: an HTTP server on 127.0.0.1 and what it holds.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration as StdDuration;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::body::{self, SimBody};
use crate::config::TapSimConfig;
use crate::faults::{FaultsHandle, SiemFault};
use crate::generator::Tenant;
use crate::params::Params;
use crate::pools::{Pool, Pools, THROTTLED_TEXT};
use crate::records::{
    Campaign, ClickEvent, ClickKind, ForensicsReport, ForensicsScope, MessageEvent, MessageKind,
    Person, ThreatStatus,
};
use crate::reply::Reply;
use crate::siem::{self, Format};
use crate::store::{self, SiemArray, Store};
use crate::{campaigns, fixtures, forensics, people, threat};

/// TAP's 403 text (docs/tap-api.md, "Status codes and error texts").
const NOT_ENTITLED_TEXT: &str = "The user is authenticated for the service but is not authorized to access data for the given customer.";

/// What a [`SiemFault::NotJson`] answer looks like: a proxy's error page
/// labelled as JSON.
const NOT_JSON_BODY: &str =
    "<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>";

/// One request the simulator answered, for tests to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, still percent-encoded ("" when none).
    pub query: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The principal of a well-formed Basic header, whether or not accepted.
    pub principal: Option<String>,
    pub status: u16,
    /// Size of the response body as sent (after gzip, if any); `None` for
    /// streamed bodies, whose size is not known up front.
    pub body_bytes: Option<u64>,
    /// The simulator's clock (including any offset) when it arrived.
    pub at: OffsetDateTime,
}

struct Shared {
    config: TapSimConfig,
    store: RwLock<Store>,
    pools: Mutex<Pools>,
    faults: FaultsHandle,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// A locked value whose previous holder panicked is still plain data;
/// a simulator keeps serving rather than failing every later test.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.faults.clock_offset()
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lag_ms(&self) -> i64 {
        i64::try_from(self.config.indexing_lag.whole_milliseconds()).unwrap_or(i64::MAX)
    }

    /// Whether the tenant is licensed for the People API right now.
    fn people_api(&self) -> bool {
        self.faults.people_api().unwrap_or(self.config.people_api)
    }
}

/// A running TAP simulator. It stops when dropped.
pub struct TapSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for TapSim {
    fn drop(&mut self) {
        // The accept task owns every connection task, so this ends them too.
        self.server.abort();
    }
}

impl TapSim {
    /// Binds 127.0.0.1 (port from the config, 0 = any free port) and
    /// serves until dropped. Must be called inside a Tokio runtime.
    pub async fn start(config: TapSimConfig) -> anyhow::Result<TapSim> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .await
            .with_context(|| {
                format!(
                    "the TAP simulator could not listen on 127.0.0.1:{}; choose another port or 0",
                    config.port
                )
            })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: RwLock::new(Store::default()),
            pools: Mutex::new(Pools::new(config.limits)),
            faults: FaultsHandle::default(),
            requests: Mutex::new(Vec::new()),
            config,
        });
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(TapSim {
            shared,
            addr,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted principal and secret.
    pub fn principal(&self) -> &str {
        &self.shared.config.principal
    }

    pub fn secret(&self) -> &str {
        &self.shared.config.secret
    }

    /// The simulator's "now": the real UTC clock plus any fault offset.
    pub fn now(&self) -> OffsetDateTime {
        self.shared.now()
    }

    /// Adds every record, campaign, forensics report and threat summary of
    /// a generated tenant, and serves its Very Attacked People and top
    /// clickers in place of any earlier lists.
    pub fn load_tenant(&self, tenant: &Tenant) {
        let lag = self.shared.lag_ms();
        let mut store = self.shared.write();
        for (kind, events) in [
            (MessageKind::Delivered, &tenant.messages_delivered),
            (MessageKind::Blocked, &tenant.messages_blocked),
        ] {
            for event in events {
                let (created, record) = store::stored_message(event, lag);
                store.insert_siem(kind.into(), created, record);
            }
        }
        for (kind, events) in [
            (ClickKind::Permitted, &tenant.clicks_permitted),
            (ClickKind::Blocked, &tenant.clicks_blocked),
        ] {
            for event in events {
                let (created, record) = store::stored_click(event, lag);
                store.insert_siem(kind.into(), created, record);
            }
        }
        for campaign in &tenant.campaigns {
            store.insert_campaign(campaign.id.clone(), store::stored_campaign(campaign));
        }
        for (scope, report) in &tenant.forensics {
            store.insert_report(scope.clone(), store::report_json(report));
        }
        for (threat_id, summary) in &tenant.threat_summaries {
            store.insert_summary(threat_id.clone(), summary.clone());
        }
        store.set_very_attacked_people(tenant.very_attacked_people.clone());
        store.set_top_clickers(tenant.top_clickers.clone());
    }

    /// Adds a hand-written message record, served exactly as given. It is
    /// indexed by its creation time: the later of `messageTime` and the
    /// newest `threatTime` in `threatsInfoMap`.
    pub fn add_message(&self, kind: MessageKind, record: Value) -> anyhow::Result<()> {
        let (created, stored) = store::stored_raw(kind.into(), &record, self.shared.lag_ms())
            .context("the message record cannot be served")?;
        self.shared
            .write()
            .insert_siem(kind.into(), created, stored);
        Ok(())
    }

    /// Adds a hand-written click record, indexed by the later of
    /// `clickTime` and `threatTime`.
    pub fn add_click(&self, kind: ClickKind, record: Value) -> anyhow::Result<()> {
        let (created, stored) = store::stored_raw(kind.into(), &record, self.shared.lag_ms())
            .context("the click record cannot be served")?;
        self.shared
            .write()
            .insert_siem(kind.into(), created, stored);
        Ok(())
    }

    /// Adds a typed message record.
    pub fn add_message_event(&self, kind: MessageKind, event: &MessageEvent) {
        let (created, stored) = store::stored_message(event, self.shared.lag_ms());
        self.shared
            .write()
            .insert_siem(kind.into(), created, stored);
    }

    /// Adds a typed click record.
    pub fn add_click_event(&self, kind: ClickKind, event: &ClickEvent) {
        let (created, stored) = store::stored_click(event, self.shared.lag_ms());
        self.shared
            .write()
            .insert_siem(kind.into(), created, stored);
    }

    /// Adds a hand-written `/v2/campaign/{id}` response (replacing one with
    /// the same `id`).
    pub fn add_campaign(&self, campaign: Value) -> anyhow::Result<()> {
        let (id, stored) = store::stored_raw_campaign(&campaign)?;
        self.shared.write().insert_campaign(id, stored);
        Ok(())
    }

    /// Adds a typed campaign.
    pub fn add_campaign_record(&self, campaign: &Campaign) {
        self.shared
            .write()
            .insert_campaign(campaign.id.clone(), store::stored_campaign(campaign));
    }

    /// Adds one hand-written report (an element of `reports`) to the
    /// answers for `scope`.
    pub fn add_forensics(&self, scope: ForensicsScope, report: Value) -> anyhow::Result<()> {
        if !report.is_object() {
            anyhow::bail!(
                "a forensics report must be a JSON object with scope, id, name and forensics; found {report}"
            );
        }
        self.shared.write().insert_report(scope, report);
        Ok(())
    }

    /// Adds one typed report to the answers for `scope`.
    pub fn add_forensics_report(&self, scope: ForensicsScope, report: &ForensicsReport) {
        self.shared
            .write()
            .insert_report(scope, store::report_json(report));
    }

    /// Serves exactly `summary` for `/v2/threat/summary/{threat_id}`
    /// (replacing any summary of that id). It must be a JSON object.
    pub fn add_threat_summary(&self, threat_id: &str, summary: Value) -> anyhow::Result<()> {
        if !summary.is_object() {
            anyhow::bail!(
                "a threat summary must be a JSON object (id, identifiedAt, name, type, category, status, ...); found {summary}"
            );
        }
        self.shared
            .write()
            .insert_summary(threat_id.to_owned(), summary);
        Ok(())
    }

    /// Forgets the summary of `threat_id`: its summary requests get 404
    /// `threatId not found` from now on. Nothing else of the threat changes.
    pub fn remove_threat_summary(&self, threat_id: &str) {
        self.shared.write().remove_summary(threat_id);
    }

    /// Replaces the Very Attacked People `/v2/people/vap` serves. They are
    /// served highest `attack_index` first, whatever the order given.
    pub fn set_very_attacked_people(&self, people: Vec<Person>) {
        self.shared.write().set_very_attacked_people(people);
    }

    /// Replaces the people `/v2/people/top-clickers` serves, highest
    /// `click_count` first.
    pub fn set_top_clickers(&self, people: Vec<Person>) {
        self.shared.write().set_top_clickers(people);
    }

    /// Changes a threat's verdict at `at`, as TAP does when Proofpoint or
    /// the customer re-classifies it (say, `falsePositive` after a
    /// dispute). Every SIEM record carrying the threat, hand-written or
    /// generated, re-surfaces as a new copy in which that threat has the
    /// new `threatStatus` and `threatTime = at`; the copy is created at
    /// `at` (plus the indexing lag), so it is served in the window holding
    /// `at`. Earlier copies stay in their own windows, as TAP's history
    /// does. The threat's forensics reports (its own, and its entries in
    /// campaign forensics) and its summary's `status` take the new status.
    /// Returns how many SIEM records re-surfaced (0 when no record carries
    /// the threat).
    pub fn change_verdict(
        &self,
        threat_id: &str,
        status: ThreatStatus,
        at: OffsetDateTime,
    ) -> usize {
        let lag = self.shared.lag_ms();
        self.shared
            .write()
            .change_verdict(threat_id, status, at, lag)
    }

    /// Loads every `*.json` file of `dir` (see [`crate::fixtures`]).
    pub fn load_fixtures(&self, dir: &Path) -> anyhow::Result<()> {
        fixtures::load_dir(self, dir)
    }

    /// Switches faults while the simulator runs.
    pub fn faults(&self) -> FaultsHandle {
        self.shared.faults.clone()
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Counts `count` requests against the accepted principal's `pool`
    /// now, as if made earlier today: tests reach a 429 without making
    /// 1800 requests.
    pub fn spend_pool(&self, pool: Pool, count: u32) {
        let now = self.now();
        lock(&self.shared.pools).spend(&self.shared.config.principal, pool, count, now);
    }

    /// Requests the accepted principal made from `pool` in the last 24 hours.
    pub fn pool_used(&self, pool: Pool) -> u32 {
        let now = self.now();
        lock(&self.shared.pools).used(&self.shared.config.principal, pool, now)
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            let shared = Arc::clone(&shared);
                            async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                        });
                        // A client hanging up mid-response is its own business.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: pause instead of spinning.
                Err(_) => tokio::time::sleep(StdDuration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Who is calling, by the Basic header.
enum Caller {
    Entitled,
    NotEntitled,
    Unknown(&'static str),
}

fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    // The scheme name is case-insensitive (RFC 9110 11.1).
    let (scheme, encoded) = authorization?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (principal, secret) = text.split_once(':')?;
    Some((principal.to_owned(), secret.to_owned()))
}

fn identify(config: &TapSimConfig, credentials: Option<&(String, String)>) -> Caller {
    let Some((principal, secret)) = credentials else {
        return Caller::Unknown(
            "Unauthorized: send HTTP Basic credentials (service principal and secret).",
        );
    };
    if *principal == config.principal && *secret == config.secret {
        return Caller::Entitled;
    }
    if let Some(other) = &config.not_entitled
        && *principal == other.principal
        && *secret == other.secret
    {
        return Caller::NotEntitled;
    }
    Caller::Unknown("Unauthorized: the service principal or secret is wrong.")
}

/// What to send and how.
struct Answer {
    response: Response<SimBody>,
    delay: Option<StdDuration>,
    /// The whole body, when it is sent in one piece and may be compressed.
    whole_body: Option<Bytes>,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        let has_body = !reply.body.is_empty();
        let content_type = if reply.is_json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        let whole_body = has_body.then(|| reply.body.clone());
        let body = if has_body {
            body::full(reply.body)
        } else {
            body::empty()
        };
        let mut response = Response::new(body);
        *response.status_mut() = reply.status;
        if has_body {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        Answer {
            response,
            delay: None,
            whole_body,
        }
    }
}

/// Compresses a whole body for a client that accepts gzip, as TAP does.
fn gzip(answer: &mut Answer) {
    let Some(plain) = answer.whole_body.take() else {
        return;
    };
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let compressed = match encoder.write_all(&plain).and_then(|()| encoder.finish()) {
        Ok(compressed) => compressed,
        // Writing to memory does not fail; if it did, plain is still right.
        Err(_) => return,
    };
    *answer.response.body_mut() = body::full(compressed);
    let headers = answer.response.headers_mut();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Encoding, User-Agent"),
    );
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<SimBody> {
    let at = shared.now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let credentials = basic_credentials(authorization.as_deref());
    let accepts_gzip = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|coding| coding.trim().starts_with("gzip")));

    let mut answer = route(
        shared,
        &method,
        &path,
        query.as_deref(),
        credentials.as_ref(),
        at,
    );
    if shared.config.gzip && accepts_gzip {
        gzip(&mut answer);
    }
    let mut response = answer.response;
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    lock(&shared.requests).push(RecordedRequest {
        method: method.to_string(),
        path,
        query: query.unwrap_or_default(),
        authorization,
        principal: credentials.map(|(p, _)| p),
        status: response.status().as_u16(),
        body_bytes: http_body::Body::size_hint(response.body()).exact(),
        at,
    });
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    response
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    credentials: Option<&(String, String)>,
    now: OffsetDateTime,
) -> Answer {
    match identify(&shared.config, credentials) {
        Caller::Entitled => {}
        Caller::NotEntitled => return Reply::text(StatusCode::FORBIDDEN, NOT_ENTITLED_TEXT).into(),
        Caller::Unknown(why) => return Reply::text(StatusCode::UNAUTHORIZED, why).into(),
    }
    if method != Method::GET {
        let mut answer: Answer = Reply::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET is supported here.",
        )
        .into();
        answer
            .response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return answer;
    }
    let params = Params::parse(query);
    let principal = shared.config.principal.as_str();
    if let Some(endpoint) = path.strip_prefix("/v2/siem/") {
        if let Some(arrays) = siem::arrays_of(endpoint) {
            return siem_answer(shared, arrays, &params, now);
        }
    } else if path == "/v2/campaign/ids" {
        if !lock(&shared.pools).try_take(principal, Pool::CampaignIds, now) {
            return throttled();
        }
        return campaigns::ids(&shared.read(), &params, now).into();
    } else if let Some(id) = path.strip_prefix("/v2/campaign/") {
        if !id.is_empty() && !id.contains('/') {
            return campaigns::one(&shared.read(), id).into();
        }
    } else if path == "/v2/forensics" {
        let query = match forensics::parse(&params) {
            Ok(query) => query,
            Err(text) => return Reply::bad_request(text).into(),
        };
        if !lock(&shared.pools).try_take(principal, query.pool(), now) {
            return throttled();
        }
        return forensics::answer(&shared.read(), &query, now).into();
    } else if let Some(id) = path.strip_prefix("/v2/threat/summary/") {
        if !id.is_empty() && !id.contains('/') {
            if let Some(status) = shared.faults.take_summary_failure() {
                return threat::failure(status).into();
            }
            return threat::summary(&shared.read(), id, shared.faults.drift()).into();
        }
    } else if let Some(list) = people::List::of(path) {
        // Unlicensed is a 403 before anything else is looked at, and
        // costs nothing.
        if !shared.people_api() {
            return Reply::text(StatusCode::FORBIDDEN, NOT_ENTITLED_TEXT).into();
        }
        let query = match people::parse(list, &params) {
            Ok(query) => query,
            Err(text) => return Reply::bad_request(text).into(),
        };
        if !lock(&shared.pools).try_take(principal, list.pool(), now) {
            return throttled();
        }
        return people::answer(&shared.read(), &query, now).into();
    }
    Reply::empty(StatusCode::NOT_FOUND).into()
}

fn throttled() -> Answer {
    Reply::text(StatusCode::TOO_MANY_REQUESTS, THROTTLED_TEXT).into()
}

fn siem_answer(
    shared: &Shared,
    arrays: &'static [SiemArray],
    params: &Params,
    now: OffsetDateTime,
) -> Answer {
    let fault = shared.faults.take_siem_fault();
    if let Some(SiemFault::Status { status, body }) = &fault {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Reply::text(status, body.clone()).into();
    }
    let pool = if arrays == [SiemArray::ClicksPermitted] {
        Pool::ClicksPermitted
    } else {
        Pool::Siem
    };
    if !lock(&shared.pools).try_take(&shared.config.principal, pool, now) {
        return throttled();
    }
    let request = match siem::parse_request(params, now) {
        Ok(request) => request,
        Err(text) => return Reply::bad_request(text).into(),
    };
    let rendered = {
        let store = shared.read();
        match request.format {
            Format::Json => siem::render_json(&store, arrays, &request, now, shared.faults.drift()),
            Format::Syslog => siem::render_syslog(&store, arrays, &request, now),
        }
    };
    let nothing_to_say = rendered.records == 0
        && (request.format == Format::Syslog || shared.faults.empty_as_no_content());
    let reply = if nothing_to_say {
        Reply::empty(StatusCode::NO_CONTENT)
    } else if request.format == Format::Syslog {
        Reply::text(StatusCode::OK, rendered.text)
    } else {
        Reply::json(rendered.text)
    };
    match fault {
        None | Some(SiemFault::Status { .. }) => reply.into(),
        Some(SiemFault::NotJson) => {
            Reply::json(Bytes::from_static(NOT_JSON_BODY.as_bytes())).into()
        }
        Some(SiemFault::Oversized { bytes }) => {
            streamed(body::oversized_json(bytes, &request.query_end))
        }
        Some(SiemFault::SlowHeaders(delay)) => Answer {
            delay: Some(delay),
            ..reply.into()
        },
        Some(SiemFault::StalledBody(stall)) => {
            let content = reply.body.clone();
            let mut answer: Answer = reply.into();
            *answer.response.body_mut() = body::stalled(content, stall);
            answer.whole_body = None;
            answer
        }
    }
}

fn streamed(body: SimBody) -> Answer {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Answer {
        response,
        delay: None,
        whole_body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Drift;
    use crate::generator::{TenantSpec, generate};
    use crate::people::PEOPLE_BAD_REQUEST;
    use crate::threat::THREAT_NOT_FOUND;
    use crate::times::format_event_time;
    use serde_json::json;
    use time::Duration;

    const EVERY_STATUS: &str =
        "&threatStatus=active&threatStatus=cleared&threatStatus=falsePositive";

    fn minute_floor(t: OffsetDateTime) -> OffsetDateTime {
        t.replace_second(0)
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(t)
    }

    async fn get(sim: &TapSim, path_and_query: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}{path_and_query}", sim.base_url()))
            .basic_auth(sim.principal(), Some(sim.secret()))
            .send()
            .await
            .expect("the simulator answers");
        assert_eq!(response.status(), 200, "{path_and_query}");
        response.json().await.expect("JSON")
    }

    /// `/v2/siem/all` for the minute starting at `from`, plus `filter`.
    async fn minute(sim: &TapSim, from: OffsetDateTime, filter: &str) -> Value {
        let interval = format!(
            "{}/{}",
            format_event_time(from),
            format_event_time(from + Duration::MINUTE)
        );
        get(
            sim,
            &format!("/v2/siem/all?format=json&interval={interval}{filter}"),
        )
        .await
    }

    fn threat_statuses(body: &Value) -> (Vec<Value>, Vec<Value>) {
        let messages = body["messagesDelivered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["threatsInfoMap"][0]["threatStatus"].clone())
            .collect();
        let clicks = body["clicksPermitted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["threatStatus"].clone())
            .collect();
        (messages, clicks)
    }

    #[tokio::test]
    async fn a_changed_verdict_is_served_in_the_window_of_its_time_and_filtered_as_tap_does() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        let sent = minute_floor(sim.now()) - Duration::hours(3);
        let disputed = minute_floor(sim.now()) - Duration::minutes(30);
        let id = "f".repeat(64);
        sim.add_message(
            MessageKind::Delivered,
            json!({
                "GUID": "guid-1",
                "messageTime": format_event_time(sent),
                "threatsInfoMap": [{
                    "threatID": id,
                    "threat": "https://evil.zz/a",
                    "threatType": "url",
                    "threatStatus": "active",
                    "threatTime": format_event_time(sent),
                }],
            }),
        )
        .unwrap();
        sim.add_click(
            ClickKind::Permitted,
            json!({
                "GUID": "guid-1",
                "clickTime": format_event_time(sent + Duration::seconds(20)),
                "threatID": id,
                "threatStatus": "active",
                "threatTime": format_event_time(sent),
            }),
        )
        .unwrap();
        sim.add_forensics(
            ForensicsScope::Threat(id.clone()),
            json!({"scope": "THREAT", "id": id, "name": "https://evil.zz/a",
                   "threatStatus": "active", "forensics": []}),
        )
        .unwrap();

        assert_eq!(
            sim.change_verdict(&id, ThreatStatus::FalsePositive, disputed),
            2
        );

        let active = || (vec![json!("active")], vec![json!("active")]);
        let false_positive = (vec![json!("falsePositive")], vec![json!("falsePositive")]);
        // TAP's default hides the new copies; asked for every status, they come.
        assert_eq!(
            threat_statuses(&minute(&sim, disputed, "").await),
            (vec![], vec![])
        );
        assert_eq!(
            threat_statuses(&minute(&sim, disputed, EVERY_STATUS).await),
            false_positive
        );
        // The earlier window still serves the records as they were.
        assert_eq!(threat_statuses(&minute(&sim, sent, "").await), active());
        assert_eq!(
            threat_statuses(&minute(&sim, sent, EVERY_STATUS).await),
            active()
        );
        let body = minute(&sim, disputed, EVERY_STATUS).await;
        assert_eq!(
            body["messagesDelivered"][0]["threatsInfoMap"][0]["threatTime"],
            format_event_time(disputed)
        );

        let forensics = get(&sim, &format!("/v2/forensics?threatId={id}")).await;
        assert_eq!(forensics["reports"][0]["threatStatus"], "falsePositive");
    }

    #[tokio::test]
    async fn generated_records_resurface_after_the_indexing_lag() {
        let config = TapSimConfig {
            indexing_lag: Duration::minutes(10),
            ..TapSimConfig::default()
        };
        let sim = TapSim::start(config).await.unwrap();
        let end = minute_floor(sim.now()) - Duration::hours(2);
        let tenant = generate(&TenantSpec::new(3, end - Duration::hours(4), end));
        sim.load_tenant(&tenant);
        let threat = tenant
            .clicks_permitted
            .first()
            .expect("a permitted click")
            .threat_id
            .clone();
        let carries = |m: &&MessageEvent| m.threats_info_map.iter().any(|t| t.threat_id == threat);
        let delivered = tenant.messages_delivered.iter().filter(carries).count();
        let blocked = tenant.messages_blocked.iter().filter(carries).count();
        let clicks = |list: &[ClickEvent]| list.iter().filter(|c| c.threat_id == threat).count();
        let (permitted, clicks_blocked) = (
            clicks(&tenant.clicks_permitted),
            clicks(&tenant.clicks_blocked),
        );
        let disputed = minute_floor(sim.now()) - Duration::minutes(5);
        let resurfaced = sim.change_verdict(&threat, ThreatStatus::Cleared, disputed);
        assert_eq!(resurfaced, delivered + blocked + permitted + clicks_blocked);

        // Five minutes after the verdict, a ten-minute lag still hides it.
        let early = minute(&sim, disputed, EVERY_STATUS).await;
        assert_eq!(threat_statuses(&early), (vec![], vec![]));
        sim.faults().set_clock_offset(Duration::minutes(6));
        let body = minute(&sim, disputed, EVERY_STATUS).await;
        let (messages, clicks_served) = threat_statuses(&body);
        assert_eq!(clicks_served, vec![json!("cleared"); permitted]);
        assert_eq!(messages.len(), delivered);
        assert_eq!(body["messagesBlocked"].as_array().unwrap().len(), blocked);
        assert_eq!(
            body["clicksBlocked"].as_array().unwrap().len(),
            clicks_blocked
        );
    }

    /// Status and body text of a GET with the accepted credential.
    async fn get_text(sim: &TapSim, path_and_query: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("{}{path_and_query}", sim.base_url()))
            .basic_auth(sim.principal(), Some(sim.secret()))
            .send()
            .await
            .expect("the simulator answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    fn person(name: &str, attack_index: u32, click_count: u32) -> Person {
        Person {
            guid: format!("guid-{name}"),
            emails: vec![format!("{name}@example.com")],
            name: name.to_owned(),
            department: "Finance".to_owned(),
            title: "Clerk".to_owned(),
            vip: false,
            attack_index,
            click_count,
        }
    }

    fn small_tenant() -> Tenant {
        let end = minute_floor(OffsetDateTime::now_utc()) - Duration::hours(1);
        generate(&TenantSpec::new(5, end - Duration::hours(3), end))
    }

    #[tokio::test]
    async fn a_loaded_threat_has_its_summary_unthrottled_and_an_unknown_one_is_404() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        let tenant = small_tenant();
        sim.load_tenant(&tenant);
        let (id, summary) = &tenant.threat_summaries[0];
        let served = get(&sim, &format!("/v2/threat/summary/{id}")).await;
        assert_eq!(&served, summary);
        assert_eq!(served["id"], json!(id));

        let (status, body) =
            get_text(&sim, &format!("/v2/threat/summary/{}", "0".repeat(64))).await;
        assert_eq!((status, body.as_str()), (404, "threatId not found"));
        sim.remove_threat_summary(id);
        let (status, body) = get_text(&sim, &format!("/v2/threat/summary/{id}")).await;
        assert_eq!((status, body.as_str()), (404, THREAT_NOT_FOUND));

        // Recorded like any request, and charged to no pool.
        let paths: Vec<_> = sim
            .requests()
            .into_iter()
            .map(|r| (r.path, r.status))
            .collect();
        assert_eq!(paths.len(), 3);
        assert_eq!(paths[0], (format!("/v2/threat/summary/{id}"), 200));
        for pool in [Pool::Siem, Pool::ForensicsThreat, Pool::PeopleVap] {
            assert_eq!(sim.pool_used(pool), 0, "{pool:?}");
        }
    }

    #[tokio::test]
    async fn a_hand_written_summary_is_served_as_given_and_must_be_an_object() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        let summary = json!({"id": "t1", "severityScore": 740, "attackSpread": 62,
                             "actors": null, "status": "active"});
        sim.add_threat_summary("t1", summary.clone()).unwrap();
        assert_eq!(get(&sim, "/v2/threat/summary/t1").await, summary);
        let err = sim.add_threat_summary("t2", json!([1, 2])).unwrap_err();
        assert!(err.to_string().contains("JSON object"), "{err}");

        sim.faults().set_drift(Drift {
            summary_numbers_as_strings: true,
            ..Drift::default()
        });
        let drifted = get(&sim, "/v2/threat/summary/t1").await;
        assert_eq!(
            (&drifted["severityScore"], &drifted["attackSpread"]),
            (&json!("740"), &json!("62"))
        );
        sim.faults().clear();

        // A verdict change reaches the summary too.
        sim.change_verdict("t1", ThreatStatus::FalsePositive, sim.now());
        let changed = get(&sim, "/v2/threat/summary/t1").await;
        assert_eq!(changed["status"], "falsePositive");
    }

    #[tokio::test]
    async fn queued_summary_failures_answer_their_status_then_the_summary_returns() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        sim.add_threat_summary("t1", json!({"id": "t1"})).unwrap();
        sim.faults().fail_next_threat_summaries(2, 500);
        for _ in 0..2 {
            let (status, body) = get_text(&sim, "/v2/threat/summary/t1").await;
            assert_eq!(status, 500);
            assert!(!body.is_empty() && body.len() < 100, "{body}");
        }
        assert_eq!(get(&sim, "/v2/threat/summary/t1").await["id"], "t1");
        // The SIEM endpoints are not touched by summary faults.
        sim.faults().fail_next_threat_summaries(1, 503);
        let (status, _) = get_text(&sim, "/v2/siem/all?format=json&sinceSeconds=60").await;
        assert_eq!(status, 200);
        assert_eq!(get_text(&sim, "/v2/threat/summary/t1").await.0, 503);
    }

    #[tokio::test]
    async fn very_attacked_people_come_in_pages_highest_index_first_with_constant_totals() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        sim.set_very_attacked_people(vec![
            person("low", 900, 0),
            person("top", 2400, 1),
            person("mid", 1500, 0),
        ]);
        let names = |body: &Value| -> Vec<String> {
            body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["identity"]["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let page1 = get(&sim, "/v2/people/vap?window=30&size=2").await;
        let page2 = get(&sim, "/v2/people/vap?window=30&size=2&page=2").await;
        let page3 = get(&sim, "/v2/people/vap?window=30&size=2&page=3").await;
        assert_eq!(names(&page1), ["top", "mid"]);
        assert_eq!(names(&page2), ["low"]);
        assert_eq!(names(&page3), Vec::<String>::new());
        for page in [&page1, &page2, &page3] {
            assert_eq!(page["totalVapUsers"], 3);
            assert_eq!(page["averageAttackIndex"], 1600.0);
            assert_eq!(page["vapAttackIndexThreshold"], 900.0);
        }
        let user = &page1["users"][0];
        assert_eq!(user["threatStatistics"]["attackIndex"], 2400);
        let scores: u64 = user["threatStatistics"]["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["score"].as_u64().unwrap())
            .sum();
        assert_eq!(scores, 2400);
        assert_eq!(user["identity"]["emails"], json!(["top@example.com"]));
        assert_eq!(user["identity"]["customerUserId"], Value::Null);
        // The interval is the last `window` days, ending now.
        let interval = page1["interval"].as_str().unwrap();
        let (start, end) = crate::times::parse_interval(interval).unwrap();
        assert_eq!(end - start, Duration::days(30));
        assert!((sim.now() - end).abs() < Duration::minutes(1), "{interval}");
        assert!(
            interval.ends_with('Z') && !interval.contains('.'),
            "{interval}"
        );
        // The default page holds everyone.
        assert_eq!(names(&get(&sim, "/v2/people/vap?window=90").await).len(), 3);
    }

    #[tokio::test]
    async fn top_clickers_are_ordered_by_clicks_and_empty_lists_keep_their_shape() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        let empty = get(&sim, "/v2/people/top-clickers?window=14").await;
        assert!(empty["interval"].is_string());
        assert_eq!(
            empty,
            json!({"users": [], "totalTopClickers": 0, "interval": empty["interval"]})
        );
        let empty_vap = get(&sim, "/v2/people/vap?window=14").await;
        assert_eq!(empty_vap["users"], json!([]));
        assert_eq!(empty_vap["totalVapUsers"], 0);
        sim.set_top_clickers(vec![person("one", 0, 1), person("seven", 0, 7)]);
        let body = get(&sim, "/v2/people/top-clickers?window=14&size=200").await;
        assert_eq!(body["totalTopClickers"], 2);
        let stats = &body["users"][0]["clickStatistics"];
        assert_eq!(stats["clickCount"], 7);
        let clicks: u64 = stats["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["clicks"].as_u64().unwrap())
            .sum();
        assert_eq!(clicks, 7);
        assert_eq!(body["users"][1]["clickStatistics"]["clickCount"], 1);
    }

    #[tokio::test]
    async fn malformed_people_requests_get_taps_400_and_cost_nothing() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        for bad in [
            "/v2/people/vap",
            "/v2/people/vap?window=7",
            "/v2/people/vap?window=thirty",
            "/v2/people/vap?window=30&window=30",
            "/v2/people/vap?window=30&size=0",
            "/v2/people/vap?window=30&page=0",
            "/v2/people/vap?window=30&page=-1",
            "/v2/people/top-clickers?window=14&size=201",
            "/v2/people/top-clickers?window=15",
        ] {
            let (status, body) = get_text(&sim, bad).await;
            assert_eq!((status, body.as_str()), (400, PEOPLE_BAD_REQUEST), "{bad}");
        }
        assert_eq!(sim.pool_used(Pool::PeopleVap), 0);
        assert_eq!(sim.pool_used(Pool::PeopleTopClickers), 0);
        assert_eq!(
            get_text(&sim, "/v2/people/vap?window=30&size=5000").await.0,
            200
        );
        assert_eq!(sim.pool_used(Pool::PeopleVap), 1);
    }

    #[tokio::test]
    async fn the_51st_vap_request_in_a_day_is_throttled_while_top_clickers_still_answer() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        sim.spend_pool(Pool::PeopleVap, 49);
        assert_eq!(get_text(&sim, "/v2/people/vap?window=30").await.0, 200);
        assert_eq!(sim.pool_used(Pool::PeopleVap), 50);
        let (status, body) = get_text(&sim, "/v2/people/vap?window=30").await;
        assert_eq!((status, body.as_str()), (429, THROTTLED_TEXT));
        assert_eq!(
            get_text(&sim, "/v2/people/top-clickers?window=30").await.0,
            200
        );
        assert_eq!(sim.pool_used(Pool::PeopleTopClickers), 1);
        // A day later the oldest requests have aged out.
        sim.faults().set_clock_offset(Duration::hours(24));
        assert_eq!(get_text(&sim, "/v2/people/vap?window=30").await.0, 200);
    }

    #[tokio::test]
    async fn without_the_people_licence_both_lists_are_403_after_the_401_check() {
        let sim = TapSim::start(TapSimConfig {
            people_api: false,
            ..TapSimConfig::default()
        })
        .await
        .unwrap();
        sim.set_very_attacked_people(vec![person("top", 2400, 0)]);
        for path in [
            "/v2/people/vap?window=30",
            "/v2/people/top-clickers?window=30",
            "/v2/people/vap",
        ] {
            let (status, body) = get_text(&sim, path).await;
            assert_eq!((status, body.as_str()), (403, NOT_ENTITLED_TEXT), "{path}");
        }
        assert_eq!(sim.pool_used(Pool::PeopleVap), 0);
        assert_eq!(sim.pool_used(Pool::PeopleTopClickers), 0);
        let wrong = reqwest::Client::new()
            .get(format!("{}/v2/people/vap?window=30", sim.base_url()))
            .basic_auth(sim.principal(), Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        // The rest of TAP is licensed as before.
        assert_eq!(
            get_text(&sim, "/v2/siem/all?format=json&sinceSeconds=60")
                .await
                .0,
            200
        );

        // Switched on at run time, then back to the config by `clear`.
        sim.faults().set_people_api(true);
        assert_eq!(
            get(&sim, "/v2/people/vap?window=30").await["totalVapUsers"],
            1
        );
        sim.faults().clear();
        assert_eq!(get_text(&sim, "/v2/people/vap?window=30").await.0, 403);
    }

    #[tokio::test]
    async fn the_people_licence_can_be_withdrawn_between_runs() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        assert_eq!(
            get_text(&sim, "/v2/people/top-clickers?window=90").await.0,
            200
        );
        sim.faults().set_people_api(false);
        assert_eq!(
            get_text(&sim, "/v2/people/top-clickers?window=90").await.0,
            403
        );
        assert_eq!(get_text(&sim, "/v2/people/vap?window=90").await.0, 403);
        assert_eq!(sim.pool_used(Pool::PeopleTopClickers), 1);
        assert_eq!(sim.pool_used(Pool::PeopleVap), 0);
        sim.faults().set_people_api(true);
        assert_eq!(get_text(&sim, "/v2/people/vap?window=90").await.0, 200);
    }

    #[tokio::test]
    async fn a_loaded_tenant_serves_its_people() {
        let sim = TapSim::start(TapSimConfig::default()).await.unwrap();
        let tenant = small_tenant();
        sim.load_tenant(&tenant);
        let vap = get(&sim, "/v2/people/vap?window=14").await;
        assert_eq!(vap["totalVapUsers"], tenant.very_attacked_people.len());
        assert_eq!(
            vap["users"][0]["identity"]["emails"],
            json!(tenant.very_attacked_people[0].emails)
        );
        let clickers = get(&sim, "/v2/people/top-clickers?window=14").await;
        assert_eq!(clickers["totalTopClickers"], tenant.top_clickers.len());
    }
}
