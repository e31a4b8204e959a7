//! OAuth tokens as ThreatQ issues them (docs/threatq-api.md, "OAuth
//! token"): the password grant in any of the three encodings clients use,
//! plus the refresh grant; bearer tokens expire after the configured
//! lifetime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Value, json};

/// Why a token request was refused (always HTTP 400, like ThreatQ).
#[derive(Debug)]
pub(crate) struct GrantRefused {
    pub error: &'static str,
    pub message: &'static str,
}

impl GrantRefused {
    pub fn body(&self) -> Value {
        json!({ "error": self.error, "message": self.message })
    }
}

pub(crate) struct Credentials {
    pub client_id: String,
    pub email: String,
    pub password: String,
}

#[derive(Default)]
pub(crate) struct Tokens {
    access: HashMap<String, Instant>,
    refresh: HashMap<String, ()>,
}

impl Tokens {
    /// Answers a token request whose parameters were gathered from the query
    /// string and the body, whatever the body's encoding; `fixed` is the
    /// access token to issue instead of a random one.
    pub fn grant(
        &mut self,
        credentials: &Credentials,
        params: &HashMap<String, String>,
        ttl: Duration,
        fixed: Option<&str>,
    ) -> Result<Value, GrantRefused> {
        let param = |name: &str| params.get(name).map(String::as_str);
        match param("grant_type") {
            Some("password") => {
                let matches = param("client_id") == Some(credentials.client_id.as_str())
                    && param("email") == Some(credentials.email.as_str())
                    && param("password") == Some(credentials.password.as_str());
                if !matches {
                    return Err(GrantRefused {
                        error: "invalid_grant",
                        message: "The user credentials were incorrect.",
                    });
                }
            }
            Some("refresh_token") => {
                let known =
                    param("refresh_token").is_some_and(|token| self.refresh.contains_key(token));
                if !known {
                    return Err(GrantRefused {
                        error: "invalid_request",
                        message: "The refresh token is invalid.",
                    });
                }
            }
            Some(_) => {
                return Err(GrantRefused {
                    error: "unsupported_grant_type",
                    message: "The authorization grant type is not supported by the authorization server.",
                });
            }
            None => {
                return Err(GrantRefused {
                    error: "invalid_request",
                    message: "The request is missing a required parameter: grant_type.",
                });
            }
        }
        let access = fixed.map_or_else(
            || Alphanumeric.sample_string(&mut rand::rng(), 40),
            str::to_owned,
        );
        let refresh = Alphanumeric.sample_string(&mut rand::rng(), 40);
        // A test may ask for an absurd lifetime (Duration::MAX) to see what
        // the client does with it; the sim itself just never expires it.
        let expires = Instant::now()
            .checked_add(ttl)
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(100 * 365 * 86_400));
        self.access.insert(access.clone(), expires);
        self.refresh.insert(refresh.clone(), ());
        Ok(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl.as_secs(),
            "refresh_token": refresh,
        }))
    }

    pub fn is_valid(&self, bearer: &str) -> bool {
        self.access
            .get(bearer)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for expires in self.access.values_mut() {
            *expires = now;
        }
    }
}
