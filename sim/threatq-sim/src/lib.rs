//! A ThreatQ API simulator for tests, benchmarks and the demo.
//!
//! It serves the slice of ThreatQ's REST API a forwarding connector uses
//! (docs/threatq-api.md, "What the ThreatQ simulator serves") on 127.0.0.1
//! with an ephemeral port: OAuth tokens, consume upserts with ThreatQ's
//! merge and validation rules, lookups (honouring `with=`), updates of one
//! object (its status, and its attribute values one by one), the reference
//! lists, and the guessed connector-settings and proxy endpoints.
//! Tests inspect what arrived through [`ThreatqSim::snapshot`],
//! [`ThreatqSim::requests`] and [`ThreatqSim::updates`], play an analyst
//! through [`ThreatqSim::set_status`] and another feed through
//! [`ThreatqSim::consume`], and break things through
//! [`ThreatqSim::faults`].

mod auth;
mod catalog;
mod faults;
mod routes;
mod store;
#[cfg(test)]
mod update_tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use catalog::{EVENT_TYPES, INDICATOR_STATUSES, INDICATOR_TYPES, MAX_DESCRIPTION_CHARS};
pub use faults::ThreatqFaults;
pub use store::{Snapshot, StoredAttribute, StoredObject, StoredSource, Update, UpdateKind};

use auth::{Credentials, Tokens};
use faults::FaultState;
use store::Store;

/// The simulated instance's credentials and settings.
#[derive(Debug, Clone)]
pub struct ThreatqSimConfig {
    pub client_id: String,
    pub email: String,
    pub password: String,
    /// Lifetime of the access tokens it issues (`expires_in`).
    pub token_ttl: Duration,
    /// The `/api/connectors` entry, e.g. `{"id", "name", "category", "active", "options"}`.
    pub connector: Option<Value>,
    /// What `/api/configuration/proxy` reports.
    pub proxy: Option<String>,
    /// The access token every password grant issues, for tests that look
    /// for a known value where it must not appear; `None` issues a fresh
    /// random one each time.
    pub access_token: Option<String>,
}

impl Default for ThreatqSimConfig {
    fn default() -> Self {
        ThreatqSimConfig {
            client_id: "sim-client".to_owned(),
            email: "analyst@example.com".to_owned(),
            password: "sim-password".to_owned(),
            token_ttl: Duration::from_secs(3600),
            connector: None,
            proxy: None,
            access_token: None,
        }
    }
}

/// One request as the simulator received it, and how it answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub body_size: usize,
    pub body: Bytes,
    pub status: u16,
    pub had_bearer: bool,
    /// The bearer token sent, so tests can check it never leaks elsewhere.
    pub bearer: Option<String>,
}

impl RecordedRequest {
    /// The body parsed as JSON, when it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

pub(crate) struct Shared {
    credentials: Credentials,
    token_ttl: Duration,
    access_token: Option<String>,
    store: Mutex<Store>,
    tokens: Mutex<Tokens>,
    faults: Mutex<FaultState>,
    requests: Mutex<Vec<RecordedRequest>>,
    connector: Mutex<Option<Value>>,
    proxy: Mutex<Option<String>>,
}

/// A lock that survives a panicking test thread: the simulator's state is
/// still consistent because every mutation happens under one guard.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running simulator; it stops when dropped.
pub struct ThreatqSim {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: JoinHandle<()>,
}

impl ThreatqSim {
    /// Starts serving on 127.0.0.1 with a port the OS picks.
    pub async fn start(config: ThreatqSimConfig) -> anyhow::Result<ThreatqSim> {
        let shared = Arc::new(Shared {
            credentials: Credentials {
                client_id: config.client_id,
                email: config.email,
                password: config.password,
            },
            token_ttl: config.token_ttl,
            access_token: config.access_token,
            store: Mutex::new(Store::default()),
            tokens: Mutex::new(Tokens::default()),
            faults: Mutex::new(FaultState::default()),
            requests: Mutex::new(Vec::new()),
            connector: Mutex::new(config.connector),
            proxy: Mutex::new(config.proxy),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the ThreatQ simulator to 127.0.0.1")?;
        let address = listener.local_addr()?;
        let app = routes::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("ThreatQ simulator stopped: {error}");
            }
        });
        Ok(ThreatqSim {
            shared,
            address,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, with no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every stored object with its attributes, sources and relations.
    pub fn snapshot(&self) -> Snapshot {
        lock(&self.shared.store).snapshot()
    }

    pub fn faults(&self) -> ThreatqFaults {
        ThreatqFaults {
            shared: self.shared.clone(),
        }
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests (the store is kept).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Every write made through the update endpoints (`PUT
    /// /api/<collection>/{id}`, and `POST`, `PUT` and `DELETE` of
    /// `/api/<collection>/{id}/attributes[/{attr_id}]`) that the simulator
    /// applied, oldest first. Refused requests are not here (they are in
    /// [`ThreatqSim::requests`]), nor are consume upserts or
    /// [`ThreatqSim::set_status`].
    pub fn updates(&self) -> Vec<Update> {
        lock(&self.shared.store).updates().to_vec()
    }

    /// Forgets the recorded updates (the store is kept).
    pub fn clear_updates(&self) {
        lock(&self.shared.store).clear_updates();
    }

    /// Stores `items` (a consume body: a JSON array of objects) in
    /// `collection` under the consume rules, as another feed's consume
    /// request would, but without HTTP: not in [`ThreatqSim::requests`]
    /// nor in [`ThreatqSim::updates`]. For tests that need what other
    /// sources made (an indicator another feed created, its own Threat
    /// Status). Answers the stored rows, or the field errors as text.
    pub fn consume(&self, collection: &str, items: &Value) -> anyhow::Result<Vec<Value>> {
        lock(&self.shared.store)
            .consume(collection, items, &[])
            .map_err(|errors| anyhow::anyhow!("the simulator refused the objects: {errors:?}"))
    }

    /// Sets the status of the objects of `collection` whose identifying
    /// value is `value`, as an analyst changing it in ThreatQ's UI would:
    /// any name is taken, and it is not recorded in
    /// [`ThreatqSim::updates`] (nor in [`ThreatqSim::requests`]). False
    /// when no such object exists.
    pub fn set_status(&self, collection: &str, value: &str, status: &str) -> bool {
        lock(&self.shared.store).set_status_by_value(collection, value, status)
    }

    pub fn set_connector(&self, entry: Option<Value>) {
        *lock(&self.shared.connector) = entry;
    }

    pub fn set_proxy(&self, proxy: Option<String>) {
        *lock(&self.shared.proxy) = proxy;
    }
}

impl Drop for ThreatqSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}
