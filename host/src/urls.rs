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
        // The whole text is one URL, so its user info runs to its last `@`
        // whatever the password holds: a `/`, `?` or `#` written as is
        // would end the authority for a URL parser, and for `redact_url`.
        let shown = redact_proxy_text(text);
        let url = Url::parse(text).map_err(|e| {
            format!(
                "`{shown}` is not a proxy URL ({e}); write it like `http://proxy.example.com:3128`{}",
                encode_hint(text)
            )
        })?;
        // `http://user:12/ss@proxy` parses, as host `user`, port 12 and a
        // path: the password's `/` ended the authority and the proxy would
        // be the wrong host, without its password.
        if after_authority(text).contains('@') {
            return Err(format!(
                "`{shown}` has an `@` after its host, so its user info was not read as such{}",
                encode_hint(text)
            ));
        }
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
        f.write_str(&redact_proxy_text(&self.text))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({})", redact_proxy_text(&self.text))
    }
}

/// A proxy URL as written, with everything between the first `:` of its
/// user info and the last `@` masked. The text is one URL, so that is the
/// password whatever characters it holds (`/`, `?`, `#`, `@`, spaces), and
/// also when the scheme is missing (`user:pass@proxy:3128`).
fn redact_proxy_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |at| at + 3);
    let rest = &text[start..];
    if let Some(at) = rest.rfind('@')
        && let Some(colon) = rest[..at].find(':')
    {
        return format!("{}{}:***{}", &text[..start], &rest[..colon], &rest[at..]);
    }
    text.to_owned()
}

/// What follows the authority of a URL text, by the parser's rule (the
/// first `/`, `?` or `#` after `scheme://`).
fn after_authority(text: &str) -> &str {
    let start = text.find("://").map_or(0, |at| at + 3);
    let rest = &text[start..];
    rest.find(['/', '?', '#']).map_or("", |end| &rest[end..])
}

/// The advice for a proxy URL whose password holds a character that ends
/// the authority, when the text has user info at all.
fn encode_hint(text: &str) -> &'static str {
    if text.contains('@') {
        "; a `/`, `?`, `#` or `@` in the user name or password must be \
         percent-encoded (`%2F`, `%3F`, `%23`, `%40`)"
    } else {
        ""
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
/// credentials; it works on text that does not parse as a URL too, since a
/// malformed URL is exactly the one that ends up in an error message.
///
/// The user info runs to the last `@` of the authority (up to the first
/// `/`, `?` or `#`). When the authority has no `@` but the URL has one
/// further on (before the next blank or quote), a password holding `/`,
/// `?` or `#` written as is (`http://user:pa/ss@proxy`) is masked too:
/// `user:` followed by anything up to that `@`, where the user name has
/// none of `/?#`. Left alone is what reads as a port and a path
/// (`https://host:8443/login?u=a@b.example`), which TAP's click URLs often
/// are; such a proxy URL is refused by [`ProxyUrl::parse`], whose message
/// masks it whole, and a parsed proxy's password is also masked by value
/// in the log (`logging::register_secret`).
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let span_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(tail.len());
        let authority_end = tail[..span_end].find(['/', '?', '#']).unwrap_or(span_end);
        let userinfo_end = tail[..authority_end].rfind('@').or_else(|| {
            let at = tail[..span_end].rfind('@')?;
            let (user, password) = tail[..at].split_once(':')?;
            let port_then_path = {
                let digits = password.chars().take_while(char::is_ascii_digit).count();
                (1..=5).contains(&digits) && password[digits..].starts_with(['/', '?', '#'])
            };
            (!user.contains(['/', '?', '#']) && !port_then_path).then_some(at)
        });
        let end = match userinfo_end {
            Some(sep) => {
                let userinfo = &tail[..sep];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                sep
            }
            None => 0,
        };
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr/et?pa#ss@word";

    /// The password above written as is in every position of a proxy URL
    /// a maintainer or operator might write.
    fn proxies() -> Vec<String> {
        vec![
            format!("http://squid:{SECRET}@proxy.example:3128"),
            format!("http://squid:{SECRET}@proxy.example:3128/"),
            format!("socks5h://squid:{SECRET}@10.0.0.1:1080"),
            format!("squid:{SECRET}@proxy.example:3128"),
            format!("http://squid:{}@proxy.example:3128", "12/ab"),
        ]
    }

    #[test]
    fn a_proxy_password_is_masked_whatever_it_contains() {
        for text in proxies() {
            let secret_parts = ["s3cr", "et?pa", "ss@word", "12/ab"];
            let shown = redact_proxy_text(&text);
            assert!(shown.contains("squid:***@"), "{shown}");
            let in_line = redact_url(&format!("proxy={text} next"));
            for part in secret_parts {
                assert!(!shown.contains(part), "{part} in {shown}");
                // In a log line, `user:12/ab@` reads as a port and a path
                // (see `redact_url`); the parse error and the registered
                // secret cover that one.
                if text.contains("://") && !text.contains("12/ab") {
                    assert!(!in_line.contains(part), "{part} in {in_line}");
                }
            }
        }
    }

    #[test]
    fn no_proxy_parse_error_quotes_its_password() {
        for text in proxies() {
            let error = match ProxyUrl::parse(&text) {
                Err(error) => error,
                Ok(proxy) => panic!("{proxy} parsed"),
            };
            for part in ["s3cr", "et?pa", "ss@word", "12/ab"] {
                assert!(!error.contains(part), "{part} in {error}");
            }
            assert!(error.contains("squid:***@"), "{error}");
            assert!(error.contains("percent-encoded"), "{error}");
        }
        let encoded = ProxyUrl::parse("http://squid:s3cr%2Fet%3Fpa%23ss%40word@proxy.example:3128")
            .expect("percent-encoded, it parses");
        assert_eq!(encoded.to_string(), "http://squid:***@proxy.example:3128");
        assert_eq!(encoded.password(), Some("s3cr%2Fet%3Fpa%23ss%40word"));
    }

    #[test]
    fn urls_with_a_port_and_an_address_in_the_query_are_left_alone() {
        for text in [
            "https://tap.example:8443/login?user=victim@corp.example",
            "https://tap.example/v2/siem?x=a@b",
            "https://x.example/a?t=1:2&u=v@c.example",
            "mailto-like http://host:80#frag@x",
        ] {
            assert_eq!(redact_url(text), text);
        }
    }
}
