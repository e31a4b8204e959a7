//! URLs that may carry credentials (`user:password@`), as values that
//! never print them: the proxy URL of the config, and the one redaction
//! every printed URL goes through. Kept apart from `http` so the config,
//! the logger and the HTTP clients can all use them without depending on
//! each other.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// A proxy URL as the operator wrote it, possibly with `user:password@`.
///
/// Debug and Display show the password as `***`
/// (`http://user:***@proxy:3128`), so the proxy can be logged and named in
/// errors; only [`ProxyUrl::expose_url`] gives the credentials, to the HTTP
/// client.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// As written (trimmed), for messages (redacted) and for writing back.
    text: String,
    url: Url,
}

impl ProxyUrl {
    /// Parses and checks a proxy URL; the error says what is wrong with it
    /// and never repeats its password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let shown = redact_url(text);
        let url = Url::parse(text).map_err(|e| {
            format!(
                "`{shown}` is not a proxy URL ({e}); write it like `http://proxy.example.com:3128`"
            )
        })?;
        match url.scheme() {
            "http" | "https" | "socks5" | "socks5h" => {}
            other => {
                return Err(format!(
                    "`{shown}` uses scheme `{other}`; use http://, https:// or socks5://"
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "`{shown}` has no host; write it like `http://proxy.example.com:3128`"
            ));
        }
        Ok(ProxyUrl {
            text: text.to_owned(),
            url,
        })
    }

    /// The URL with its credentials: for the HTTP client, never for a message.
    pub fn expose_url(&self) -> &Url {
        &self.url
    }

    /// The password of the user info, as written in the URL (for the log
    /// redactor).
    pub fn password(&self) -> Option<&str> {
        self.url.password().filter(|p| !p.is_empty())
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.text))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({})", redact_url(&self.text))
    }
}

impl Serialize for ProxyUrl {
    /// The config writer needs the URL back as written, credentials too.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ProxyUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Masks the password of the user info of every URL in `text`:
/// `http://user:pass@proxy:3128` becomes `http://user:***@proxy:3128`. The
/// one helper for printing a URL or a URL-bearing text that could carry
/// credentials; it works on text that does not parse as a URL too (the
/// user info runs to the last `@` before the path), since a malformed URL
/// is exactly the one that ends up in an error message.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(sep) => {
                let userinfo = &authority[..sep];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[sep..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
