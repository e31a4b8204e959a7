//! The authenticated HTTP session with ThreatQ: OAuth password grant, a
//! shared token cache, one re-login on 401, retries of transient failures,
//! and reading ThreatQ's answers (a 2xx that carries `errors` is a failure,
//! as threatqsdk treats it).
//!
//! Token request: `grant_type` and `client_id` in the query string, `email`
//! and `password` in a JSON body: the encoding of threatqsdk, ThreatQuotient's
//! own SDK (docs/threatq-api.md, "OAuth token"), so the password never
//! sits in a URL.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use crate::error::{ThreatqError, errors_of, reason_from_body, shorten};
use crate::retry::RetryPolicy;

/// Where ThreatQ is and who the connector logs in as.
#[derive(Clone)]
pub struct ThreatqConfig {
    /// `scheme://host[:port]`; any path is ignored.
    pub base_url: Url,
    /// The OAuth client id from ThreatQ's *OAuth Management* page.
    pub client_id: String,
    /// The ThreatQ user's login (sent as `email`).
    pub username: String,
    /// Its Debug prints a placeholder; only the token request exposes it.
    pub password: SecretString,
}

impl fmt::Debug for ThreatqConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ThreatqConfig")
            // The origin alone: never a `user:password@` a caller put in
            // the URL (the path is ignored anyway).
            .field("base_url", &self.base_url.origin().ascii_serialization())
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Token lifetime assumed when ThreatQ does not state one (threatqsdk's).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Renew this long before expiry so a request never leaves with a token
/// that dies in flight.
const RENEW_EARLY: Duration = Duration::from_secs(60);

/// Longest token lifetime believed. A larger `expires_in` (a misconfigured
/// ThreatQ, or a hostile answer of `u64::MAX`) would overflow `Instant`
/// arithmetic; a day is far longer than any run, and a token that really is
/// longer-lived is simply renewed early.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Largest ThreatQ answer read: 16 MiB, twice the largest request the
/// client sends (a consume of at most 8 MiB, `forward.rs`), whose answer
/// names each object sent with its id. The real answers are far smaller
/// (consume results for 500 objects are well under a megabyte); anything
/// larger is a proxy error page gone wrong or a hostile server, and is
/// refused before it fills memory.
///
/// Why not more: every answer is parsed whole into a `serde_json::Value`
/// ([`Client::call`] hands that to the modules that read lookups, consume
/// results and settings), and a `Value` costs up to 16 times the text it
/// came from (`[0,0,0,...]`: a 32-byte `Value` per 2 bytes). At the former
/// 32 MiB one hostile answer could take half a gigabyte; at 16 MiB a
/// quarter. Decoding each answer into a typed struct instead (skipping
/// what is not read) would remove that cost, but belongs to the modules
/// that read them.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Tokens remembered for scrubbing: the current one and a few before it.
const REMEMBERED_TOKENS: usize = 4;

struct CachedToken {
    access: SecretString,
    renew_at: Instant,
}

/// A ThreatQ API client. Clones share one connection pool and token cache.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ThreatqConfig,
    http: reqwest::Client,
    retry: RetryPolicy,
    /// An async mutex: the holder may log in while others wait, so a burst
    /// of calls with an expired token triggers one login, not many.
    token: tokio::sync::Mutex<Option<CachedToken>>,
    issued_tokens: Mutex<Vec<SecretString>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Client")
            .field("config", &self.inner.config)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One API call, described once so every retry sends the same thing.
pub(crate) struct ApiRequest {
    pub method: Method,
    /// Absolute path, e.g. `/api/indicators/consume`.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    /// A JSON body, already serialised.
    pub body: Option<Bytes>,
    /// What the call is for, as error messages say it ("sending 12 events").
    pub what: String,
}

impl ApiRequest {
    pub fn get(path: String, what: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
            what: what.into(),
        }
    }
}

impl Client {
    /// `http` carries the caller's proxy, TLS and timeout choices.
    pub fn new(config: ThreatqConfig, http: reqwest::Client, retry: RetryPolicy) -> Client {
        Client {
            inner: Arc::new(Inner {
                config,
                http,
                retry,
                token: tokio::sync::Mutex::new(None),
                issued_tokens: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Logs in afresh to check the credentials, keeping the token for later
    /// calls. A refusal is [`ThreatqError::BadCredentials`].
    pub async fn login(&self) -> Result<(), ThreatqError> {
        let counter = AtomicUsize::new(0);
        let mut cached = self.inner.token.lock().await;
        let token = self
            .with_retries("logging in to ThreatQ", || self.request_token(&counter))
            .await?;
        *cached = Some(token);
        Ok(())
    }

    /// Sends `request` with a valid token, re-logging in once on a 401 and
    /// retrying transient failures per the policy; returns the JSON body of
    /// a successful answer. Counts every HTTP request in `counter`.
    pub(crate) async fn call(
        &self,
        request: &ApiRequest,
        counter: &AtomicUsize,
    ) -> Result<Value, ThreatqError> {
        self.with_retries(&request.what, || self.attempt(request, counter))
            .await
    }

    async fn with_retries<T, F, Fut>(&self, what: &str, op: F) -> Result<T, ThreatqError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ThreatqError>>,
    {
        let retry = &self.inner.retry;
        retry.run(what, op).await.map_err(|error| {
            if error.is_transient() {
                ThreatqError::GaveUp {
                    attempts: retry.max_attempts.max(1),
                    last: Box::new(error),
                }
            } else {
                error
            }
        })
    }

    async fn attempt(
        &self,
        request: &ApiRequest,
        counter: &AtomicUsize,
    ) -> Result<Value, ThreatqError> {
        let token = self.bearer(counter).await.map_err(login_failure)?;
        let (mut status, mut body) = self.send(request, &token, counter).await?;
        if status == StatusCode::UNAUTHORIZED {
            tracing::debug!(
                "ThreatQ answered 401 while {}; logging in again",
                request.what
            );
            self.forget(&token).await;
            let token = self.bearer(counter).await.map_err(login_failure)?;
            (status, body) = self.send(request, &token, counter).await?;
            if status == StatusCode::UNAUTHORIZED {
                return Err(ThreatqError::Unauthorized {
                    what: request.what.clone(),
                });
            }
        }
        self.interpret(&request.what, status, &body)
    }

    /// A token that is valid for at least `RENEW_EARLY` more.
    async fn bearer(&self, counter: &AtomicUsize) -> Result<SecretString, ThreatqError> {
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.access.clone());
        }
        let token = self.request_token(counter).await?;
        let access = token.access.clone();
        *cached = Some(token);
        Ok(access)
    }

    /// Drops `token` from the cache unless another caller already replaced it.
    async fn forget(&self, token: &SecretString) {
        let mut cached = self.inner.token.lock().await;
        if cached
            .as_ref()
            .is_some_and(|held| held.access.expose_secret() == token.expose_secret())
        {
            *cached = None;
        }
    }

    async fn request_token(&self, counter: &AtomicUsize) -> Result<CachedToken, ThreatqError> {
        let what = "logging in to ThreatQ";
        let config = &self.inner.config;
        let url = self.url("/api/token")?;
        let body = json!({ "email": config.username, "password": config.password.expose_secret() });
        counter.fetch_add(1, Ordering::Relaxed);
        let response = self
            .inner
            .http
            .post(url)
            .query(&[("grant_type", "password"), ("client_id", &config.client_id)])
            .header(ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|error| self.unreachable(what, error))?;
        let status = response.status();
        let body = self.read_body(what, response).await?;
        tracing::debug!("POST /api/token -> {}", status.as_u16());
        // 400 is what ThreatQ answers a wrong password; 401 and 403 are
        // what a proxy or a locked account may answer. All three refuse who
        // logs in, not a request's data.
        if matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(ThreatqError::BadCredentials {
                status: status.as_u16(),
            });
        }
        let json = self.interpret(what, status, &body)?;
        let access: SecretString = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ThreatqError::UnexpectedResponse {
                what: what.to_owned(),
                detail: "the token answer has no access_token".to_owned(),
            })?
            .into();
        let lifetime = json
            .get("expires_in")
            .and_then(|value| {
                value
                    .as_u64()
                    .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
            })
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .min(MAX_TOKEN_LIFETIME);
        // A token shorter-lived than twice the margin is renewed at half-life.
        let usable = if lifetime > RENEW_EARLY * 2 {
            lifetime - RENEW_EARLY
        } else {
            lifetime / 2
        };
        self.remember_token(&access);
        Ok(CachedToken {
            access,
            // Cannot overflow: `usable` is at most a day.
            renew_at: Instant::now() + usable,
        })
    }

    async fn send(
        &self,
        request: &ApiRequest,
        token: &SecretString,
        counter: &AtomicUsize,
    ) -> Result<(StatusCode, Bytes), ThreatqError> {
        let started = Instant::now();
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), self.url(&request.path)?)
            // reqwest marks the header sensitive.
            .bearer_auth(token.expose_secret())
            .header(ACCEPT, "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        counter.fetch_add(1, Ordering::Relaxed);
        let response = builder
            .send()
            .await
            .map_err(|error| self.unreachable(&request.what, error))?;
        let status = response.status();
        let body = self.read_body(&request.what, response).await?;
        tracing::debug!(
            "{} {} -> {} ({} bytes sent, {} ms)",
            request.method,
            request.path,
            status.as_u16(),
            request.body.as_ref().map_or(0, Bytes::len),
            started.elapsed().as_millis()
        );
        Ok((status, body))
    }

    /// Reads an answer's body, refusing one larger than
    /// [`MAX_RESPONSE_BYTES`] as soon as it is (by its declared length, or
    /// while it streams in) instead of buffering it whole.
    async fn read_body(
        &self,
        what: &str,
        mut response: reqwest::Response,
    ) -> Result<Bytes, ThreatqError> {
        let status = response.status().as_u16();
        let too_large = |bytes: u64| ThreatqError::UnexpectedResponse {
            what: what.to_owned(),
            detail: format!(
                "HTTP {} with a body of {bytes} bytes or more, over the {} MiB limit; \
                 is something other than ThreatQ answering at this address?",
                status,
                MAX_RESPONSE_BYTES / (1024 * 1024)
            ),
        };
        if let Some(declared) = response.content_length()
            && declared > MAX_RESPONSE_BYTES as u64
        {
            return Err(too_large(declared));
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.unreachable(what, error))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Turns an answer into its JSON body or the matching error.
    fn interpret(
        &self,
        what: &str,
        status: StatusCode,
        body: &[u8],
    ) -> Result<Value, ThreatqError> {
        if status.is_success() {
            let json = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(body).map_err(|error| ThreatqError::UnexpectedResponse {
                    what: what.to_owned(),
                    detail: format!(
                        "HTTP {} with a body that is not JSON ({error})",
                        status.as_u16()
                    ),
                })?
            };
            return match errors_of(&json) {
                Some(reason) => Err(ThreatqError::ErrorsInSuccess {
                    status: status.as_u16(),
                    what: what.to_owned(),
                    reason: shorten(self.scrub(reason)),
                }),
                None => Ok(json),
            };
        }
        let reason = shorten(self.scrub(reason_from_body(body)));
        let transient = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        Err(if transient {
            ThreatqError::Unavailable {
                status: status.as_u16(),
                what: what.to_owned(),
                reason,
            }
        } else {
            ThreatqError::Refused {
                status: status.as_u16(),
                what: what.to_owned(),
                reason,
            }
        })
    }

    fn url(&self, path: &str) -> Result<Url, ThreatqError> {
        self.inner
            .config
            .base_url
            .join(path)
            .map_err(|_| ThreatqError::InvalidBaseUrl {
                base_url: self.origin(),
            })
    }

    /// The base URL without any user info or path, for messages.
    fn origin(&self) -> String {
        self.inner.config.base_url.origin().ascii_serialization()
    }

    fn unreachable(&self, what: &str, error: reqwest::Error) -> ThreatqError {
        // Without the URL: the query may hold the client id, and the path is
        // already named by `what`.
        let error = error.without_url();
        let mut detail = String::new();
        let mut cause: Option<&dyn std::error::Error> = Some(&error);
        while let Some(current) = cause {
            let text = current.to_string();
            if !detail.contains(&text) {
                if !detail.is_empty() {
                    detail.push_str(": ");
                }
                detail.push_str(&text);
            }
            cause = current.source();
        }
        ThreatqError::Unreachable {
            base_url: self.origin(),
            what: what.to_owned(),
            detail: self.scrub(detail),
        }
    }

    fn remember_token(&self, token: &SecretString) {
        let mut issued = self
            .inner
            .issued_tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        issued.push(token.clone());
        if issued.len() > REMEMBERED_TOKENS {
            issued.remove(0);
        }
    }

    /// Removes the password and any token this client holds from a text
    /// quoted from ThreatQ or the network stack, in case either echoed it.
    pub(crate) fn scrub(&self, text: String) -> String {
        let issued = self
            .inner
            .issued_tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let secrets = issued
            .iter()
            .chain([&self.inner.config.password])
            .map(ExposeSecret::expose_secret);
        let mut text = text;
        for secret in secrets {
            // Very short passwords would blank out ordinary words; such a
            // password cannot be told apart from the words anyway.
            if secret.len() < 4 {
                continue;
            }
            // As sent, and as it reads inside re-serialised JSON (a `"` or
            // `\` in the password comes back escaped).
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            for form in [secret, escaped] {
                if text.contains(form) {
                    text = text.replace(form, "[redacted]");
                }
            }
        }
        text
    }
}

/// A login made on the way to an API call that the token endpoint refused
/// with a status other than the credential ones (a 404 or 422 from
/// `/api/token`). As a `Refused` it would read as the call's own refusal:
/// a consume request's 404 means "no such collection", its 4xx is
/// bisected as bad data. It is neither, so it becomes an answer this
/// connector cannot use.
fn login_failure(error: ThreatqError) -> ThreatqError {
    match error {
        ThreatqError::Refused {
            status,
            what,
            reason,
        } => ThreatqError::UnexpectedResponse {
            what,
            detail: format!("the token endpoint /api/token answered HTTP {status}: {reason}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_debug_shows_neither_the_password_nor_url_credentials() {
        let config = ThreatqConfig {
            base_url: Url::parse("https://admin:url-pass-77@threatq.example:8443/ignored").unwrap(),
            client_id: "client".to_owned(),
            username: "analyst@example.com".to_owned(),
            password: "tq-password-9f2".into(),
        };
        let text = format!("{config:?}");
        assert!(!text.contains("tq-password-9f2"), "{text}");
        assert!(!text.contains("url-pass-77"), "{text}");
        assert!(text.contains("https://threatq.example:8443"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
    }
}
