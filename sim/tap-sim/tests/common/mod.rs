//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use serde_json::Value;
use tap_sim::{TapSim, TapSimConfig};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

pub struct Answer {
    pub status: u16,
    pub text: String,
    pub content_type: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

pub async fn start() -> TapSim {
    start_with(TapSimConfig::default()).await
}

pub async fn start_with(config: TapSimConfig) -> TapSim {
    TapSim::start(config).await.expect("simulator starts")
}

/// One client for all tests: building one loads the system's root
/// certificates, which is slow. No idle pooling, because each test has its
/// own runtime and a pooled connection would outlive it.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client builds")
    })
}

pub async fn get_as(sim: &TapSim, principal: Option<(&str, &str)>, path_and_query: &str) -> Answer {
    let client = client();
    let mut request = client.get(format!("{}{path_and_query}", sim.base_url()));
    if let Some((p, s)) = principal {
        request = request.basic_auth(p, Some(s));
    }
    let response = request.send().await.expect("request reaches the simulator");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.expect("body arrives");
    Answer {
        status,
        text,
        content_type,
    }
}

/// GET with the simulator's own credentials.
pub async fn get(sim: &TapSim, path_and_query: &str) -> Answer {
    let (p, s) = (sim.principal().to_owned(), sim.secret().to_owned());
    get_as(sim, Some((&p, &s)), path_and_query).await
}

pub fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// `interval=<start>/<end>` with `+` encoded, as a query parameter.
pub fn interval(start: OffsetDateTime, end: OffsetDateTime) -> String {
    format!("interval={}/{}", iso(start), iso(end)).replace('+', "%2B")
}

/// A whole-minute instant `minutes_ago` minutes before now.
pub fn minutes_ago(minutes: i64) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        - Duration::minutes(minutes)
}

pub fn array_len(body: &Value, key: &str) -> usize {
    body[key].as_array().map_or(0, Vec::len)
}
