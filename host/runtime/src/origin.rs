//! The one TAP origin: a scheme, a host and a port, parsed once from what
//! the operator wrote, and the exact check every guest request must pass.
//!
//! The host name is kept in one canonical spelling (lower case; IPv4 as four
//! decimal numbers; IPv6 in brackets, RFC 5952 form), and the operator's
//! text is refused when a URL parser would read it as something else
//! (`2130706433`, `0177.0.0.1`, `%74ap.example`, a trailing dot), so what
//! the operator sees in the config is what is reached. A guest request is
//! admitted only when its scheme and authority are, character for
//! character, that origin: no URL parser's normalisation decides it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `https://` unless the operator wrote `http://` (a local test server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    Https,
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }
}

/// The TAP API origin: the only place the sandboxed component may reach.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TapOrigin {
    scheme: Scheme,
    /// Canonical: a lower-case DNS name, a dotted-quad IPv4 address, or a
    /// bracketed IPv6 address in RFC 5952 form.
    host: String,
    /// The effective port (the scheme's default when none was written).
    port: u16,
}

/// Why operator text is not a usable TAP origin. Its message quotes the
/// value and says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` {problem}")]
pub struct OriginError {
    value: String,
    problem: String,
}

impl OriginError {
    fn new(value: &str, problem: impl Into<String>) -> Self {
        OriginError {
            value: without_userinfo(value),
            problem: problem.into(),
        }
    }
}

/// The value as it may be quoted in an error: anything before the last `@`
/// of the authority (a user and password someone pasted in) becomes `***`.
fn without_userinfo(value: &str) -> String {
    let authority_start = value.find("://").map_or(0, |at| at + 3);
    let authority_end = value[authority_start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |end| authority_start + end);
    match value[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &value[..authority_start],
            &value[authority_start + at..]
        ),
        None => value.to_owned(),
    }
}

const EXAMPLE: &str = "e.g. tap-api-v2.proofpoint.com or https://tap-api-v2.proofpoint.com";

impl TapOrigin {
    /// Reads a bare host name (`tap-api-v2.proofpoint.com`, which means
    /// HTTPS), `host:port`, or an `https://` (or `http://`) URL with at most
    /// a `/` after the authority. Surrounding white space is ignored and the
    /// host name's case does not matter; anything else a URL parser would
    /// rewrite is refused with a message naming the value and the fix.
    pub fn parse(text: &str) -> Result<TapOrigin, OriginError> {
        let value = text.trim();
        let err = |problem: String| OriginError::new(value, problem);
        if value.is_empty() {
            return Err(err(format!("is empty: write the TAP API host, {EXAMPLE}")));
        }
        if let Some(bad) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!(
                "contains {}: write only the TAP API host, {EXAMPLE}",
                describe_char(bad)
            )));
        }

        let (scheme, rest) = match value.find("://") {
            Some(at) => {
                let scheme = &value[..at];
                let scheme = if scheme.eq_ignore_ascii_case("https") {
                    Scheme::Https
                } else if scheme.eq_ignore_ascii_case("http") {
                    Scheme::Http
                } else {
                    return Err(err(format!(
                        "uses the scheme `{scheme}`: only https:// (or http:// for a local test server) is allowed, {EXAMPLE}"
                    )));
                };
                (scheme, &value[at + 3..])
            }
            None => (Scheme::Https, value),
        };

        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let suggestion = format!(
            "{}://{}",
            scheme.as_str(),
            authority.rsplit('@').next().unwrap_or(authority)
        );
        if authority.contains('@') {
            return Err(err(format!(
                "carries user credentials (`…@`): remove them and set the API principal and secret instead, e.g. `{suggestion}`"
            )));
        }
        if tail.contains('#') {
            return Err(err(format!(
                "has a fragment (`#…`): give only the scheme, host and port, e.g. `{suggestion}`"
            )));
        }
        if tail.contains('?') {
            return Err(err(format!(
                "has a query (`?…`): give only the scheme, host and port, e.g. `{suggestion}`"
            )));
        }
        if !tail.is_empty() && tail != "/" {
            return Err(err(format!(
                "has a path (`{tail}`): give only the scheme, host and port, e.g. `{suggestion}` (the API paths are the component's)"
            )));
        }

        let (host, port) = split_host_port(authority).map_err(&err)?;
        let host = canonical_host(host).map_err(&err)?;
        let port = match port {
            None => scheme.default_port(),
            Some(port) => parse_port(port).map_err(&err)?,
        };
        Ok(TapOrigin { scheme, host, port })
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        self.scheme.as_str()
    }

    /// The host in its canonical spelling (IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The effective port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://host[:port]` with no trailing slash, the port only when it
    /// is not the scheme's default: what the component's `tap-base-url`
    /// setting receives.
    pub fn base_url(&self) -> String {
        if self.port == self.scheme.default_port() {
            format!("{}://{}", self.scheme.as_str(), self.host)
        } else {
            format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }

    /// Whether a guest request may go to `uri`: its scheme must be this
    /// origin's, and its authority exactly `host` or `host:port` as this
    /// origin spells them (the bare host only when the port is the scheme's
    /// default). Anything else is refused, whatever a URL parser would make
    /// of it: user info, another spelling of the same address (`2130706433`,
    /// `0177.0.0.1`, `[0:0::1]`), percent-encoding, a trailing dot, upper
    /// case, a port with leading zeros.
    pub fn admits(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        if scheme != self.scheme.as_str() {
            return false;
        }
        let authority = authority.as_str();
        if authority == self.host {
            return self.port == self.scheme.default_port();
        }
        authority
            .strip_prefix(self.host.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|port| port == self.port.to_string())
    }
}

impl fmt::Display for TapOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())
    }
}

impl fmt::Debug for TapOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TapOrigin({})", self.base_url())
    }
}

fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".to_owned()
    } else {
        format!("the character {}", c.escape_default())
    }
}

/// `host` and the text after its `:`, if any. IPv6 literals are bracketed.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let Some(close) = authority.find(']') else {
            return Err(format!(
                "has an IPv6 address without its closing `]`: write it as e.g. [2001:db8::1], {EXAMPLE}"
            ));
        };
        let (host, after) = authority.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!(
                    "has `{after}` after the IPv6 address: only `:port` may follow it"
                )),
            },
        };
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => Err(
            "has more than one `:`: write an IPv6 address in brackets, e.g. [2001:db8::1]:8443"
                .to_owned(),
        ),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    let problem = || {
        format!(
            "has the port `{port}`: a port is a number from 1 to 65535 written without leading zeros, e.g. tap.example.com:8443"
        )
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.starts_with('0') {
        return Err(problem());
    }
    match port.parse::<u16>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(problem()),
    }
}

/// The host in its one spelling, or why it has none.
fn canonical_host(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err(format!("has no host name: {EXAMPLE}"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        let Ok(address) = inner.parse::<Ipv6Addr>() else {
            return Err(format!(
                "has `{host}`, which is not an IPv6 address (zone ids are not supported): write e.g. [2001:db8::1]"
            ));
        };
        let canonical = format!("[{address}]");
        if !canonical.eq_ignore_ascii_case(host) {
            return Err(format!(
                "writes the IPv6 address {canonical} in another form: write it as {canonical}"
            ));
        }
        return Ok(canonical);
    }
    if host.ends_with('.') {
        return Err(format!(
            "ends with a dot: write the host without the trailing dot, e.g. {}",
            host.trim_end_matches('.')
        ));
    }
    if let Some(bad) = host.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "contains the non-ASCII character `{bad}`: write an internationalised name in its xn-- (punycode) form"
        ));
    }
    if host.contains('%') {
        return Err(
            "contains percent-encoding (`%`): write the host name with plain letters".to_owned(),
        );
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "contains `{bad}`, which cannot appear in a host name: {EXAMPLE}"
        ));
    }
    let host = host.to_ascii_lowercase();
    if host.split('.').any(str::is_empty) {
        return Err(format!(
            "has an empty label (a leading dot or `..`): {EXAMPLE}"
        ));
    }
    if host.len() > 253 || host.split('.').any(|label| label.len() > 63) {
        return Err("is too long for a host name (253 characters, 63 per label)".to_owned());
    }
    // A URL parser reads a name whose last label is a number as an IPv4
    // address, in any of several spellings; only the dotted-quad one is
    // accepted, so the address is plain to see.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return match host.parse::<Ipv4Addr>() {
            Ok(address) if address.to_string() == host => Ok(host),
            _ => Err(match url::Host::parse(&host) {
                Ok(url::Host::Ipv4(address)) => {
                    format!("is read as the IPv4 address {address}: write it as {address}")
                }
                _ => {
                    "is not a valid IPv4 address: write it as four decimal numbers, e.g. 192.0.2.10"
                        .to_owned()
                }
            }),
        };
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_never_quotes_the_credentials_it_refuses() {
        let err = TapOrigin::parse("https://svc:hunter2@tap.example").expect_err("refused");
        let text = err.to_string();
        assert!(!text.contains("hunter2") && !text.contains("svc"), "{text}");
        assert!(text.contains("https://***@tap.example"), "{text}");
        assert_eq!(without_userinfo("tap.example/a@b"), "tap.example/a@b");
    }

    fn origin(text: &str) -> TapOrigin {
        TapOrigin::parse(text).unwrap_or_else(|err| panic!("{text} should parse: {err}"))
    }

    fn refusal(text: &str) -> String {
        match TapOrigin::parse(text) {
            Ok(origin) => panic!("{text} should be refused, got {origin}"),
            Err(err) => err.to_string(),
        }
    }

    fn uri(text: &str) -> http::Uri {
        text.parse()
            .unwrap_or_else(|err| panic!("test URI {text}: {err}"))
    }

    #[test]
    fn a_bare_host_means_https_on_the_default_port() {
        let tap = origin("tap-api-v2.proofpoint.com");
        assert_eq!(tap.scheme(), "https");
        assert_eq!(tap.host(), "tap-api-v2.proofpoint.com");
        assert_eq!(tap.port(), 443);
        assert_eq!(tap.base_url(), "https://tap-api-v2.proofpoint.com");
        assert_eq!(tap.to_string(), "https://tap-api-v2.proofpoint.com");
    }

    #[test]
    fn every_accepted_form_gives_one_origin() {
        let expected = origin("tap-api-v2.proofpoint.com");
        for text in [
            "  tap-api-v2.proofpoint.com  ",
            "tap-api-v2.proofpoint.com/",
            "tap-api-v2.proofpoint.com:443",
            "https://tap-api-v2.proofpoint.com",
            "https://tap-api-v2.proofpoint.com/",
            "HTTPS://TAP-API-V2.Proofpoint.com:443/",
        ] {
            assert_eq!(origin(text), expected, "{text}");
        }
    }

    #[test]
    fn host_port_and_http_urls_keep_their_port() {
        let custom = origin("tap.example.com:8443");
        assert_eq!(custom.base_url(), "https://tap.example.com:8443");
        let local = origin("http://127.0.0.1:8080");
        assert_eq!(local.scheme(), "http");
        assert_eq!(local.port(), 8080);
        assert_eq!(local.base_url(), "http://127.0.0.1:8080");
        assert_eq!(origin("http://localhost:80").base_url(), "http://localhost");
        let v6 = origin("http://[::1]:9000/");
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.base_url(), "http://[::1]:9000");
        assert_eq!(origin("[2001:DB8::1]").host(), "[2001:db8::1]");
        assert_eq!(
            origin("tap_internal.example").host(),
            "tap_internal.example"
        );
    }

    #[test]
    fn each_refusal_names_the_value_and_the_fix() {
        let cases = [
            ("", "is empty"),
            ("   ", "is empty"),
            ("ftp://tap.example", "uses the scheme `ftp`"),
            ("file:///etc/passwd", "uses the scheme `file`"),
            ("https://user:pw@tap.example", "user credentials"),
            ("user@tap.example", "user credentials"),
            (
                "https://tap.example/v2/siem/all",
                "has a path (`/v2/siem/all`)",
            ),
            ("https://tap.example//", "has a path"),
            ("https://tap.example?x=1", "has a query"),
            ("https://tap.example/?x=1", "has a query"),
            ("https://tap.example#top", "has a fragment"),
            ("https://", "has no host name"),
            ("https://:8443", "has no host name"),
            ("tap.example.", "ends with a dot"),
            ("https://tap.example.:8443", "ends with a dot"),
            ("tap..example", "empty label"),
            (".tap.example", "empty label"),
            ("%74ap.example", "percent-encoding"),
            ("tap\u{e9}.example", "non-ASCII"),
            ("tap example", "a space"),
            ("tap.example:", "has the port ``"),
            ("tap.example:0", "has the port `0`"),
            ("tap.example:08443", "has the port `08443`"),
            ("tap.example:65536", "has the port `65536`"),
            ("tap.example:https", "has the port `https`"),
            ("::1", "more than one `:`"),
            ("[::1", "closing `]`"),
            ("[::1]x", "after the IPv6 address"),
            ("[0:0::1]", "write it as [::1]"),
            ("[fe80::1%25eth0]", "not an IPv6 address"),
            ("2130706433", "is read as the IPv4 address 127.0.0.1"),
            (
                "http://0177.0.0.1:8080",
                "is read as the IPv4 address 127.0.0.1",
            ),
            ("0x7f.0.0.1", "is read as the IPv4 address 127.0.0.1"),
            ("127.1", "is read as the IPv4 address 127.0.0.1"),
            ("999.1.1.1", "not a valid IPv4 address"),
            ("tap!.example", "contains `!`"),
        ];
        for (text, says) in cases {
            let message = refusal(text);
            assert!(message.contains(says), "{text:?}: {message}");
            // Quoted as given, except that credentials are masked.
            assert!(
                message.starts_with(&format!("`{}`", without_userinfo(text.trim()))),
                "{message}"
            );
        }
    }

    #[test]
    fn a_path_refusal_suggests_the_origin_alone() {
        let message = refusal("https://tap.example:8443/v2/siem");
        assert!(
            message.contains("e.g. `https://tap.example:8443`"),
            "{message}"
        );
    }

    #[test]
    fn admits_exactly_the_scheme_host_and_port() {
        let tap = origin("tap-api-v2.proofpoint.com");
        assert!(tap.admits(&uri(
            "https://tap-api-v2.proofpoint.com/v2/siem/all?format=json"
        )));
        assert!(tap.admits(&uri("https://tap-api-v2.proofpoint.com:443/v2/siem/all")));
        for refused in [
            "http://tap-api-v2.proofpoint.com/v2/siem/all",
            "https://tap-api-v2.proofpoint.com:8443/v2/siem/all",
            "https://tap-api-v2.proofpoint.com.evil.example/",
            "https://evil.example/tap-api-v2.proofpoint.com",
            "https://example.com/",
            "/v2/siem/all",
        ] {
            assert!(!tap.admits(&uri(refused)), "{refused}");
        }
    }

    #[test]
    fn admits_refuses_every_other_spelling_of_the_origin() {
        let tap = origin("tap.example");
        let local = origin("http://127.0.0.1:8080");
        let v6 = origin("http://[::1]:8080");
        for (who, refused) in [
            (&tap, "https://TAP.example/"),
            (&tap, "https://tap.example./"),
            (&tap, "https://%74ap.example/"),
            (&tap, "https://user@tap.example/"),
            (&tap, "https://tap.example:0443/"),
            (&tap, "https://tap.example:/"),
            (&local, "http://127.0.0.1/"),
            (&local, "http://127.0.0.1:8081/"),
            (&local, "http://127.0.0.1:08080/"),
            (&local, "http://localhost:8080/"),
            (&local, "http://2130706433:8080/"),
            (&local, "http://0177.0.0.1:8080/"),
            (&local, "http://0x7f.0.0.1:8080/"),
            (&local, "http://127.1:8080/"),
            (&local, "http://[::ffff:127.0.0.1]:8080/"),
            (&local, "http://probe:secret@127.0.0.1:8080/"),
            (&local, "http://127.0.0.1:8080@evil.example/"),
            (&v6, "http://[0:0::1]:8080/"),
            (&v6, "http://[0000::1]:8080/"),
            (&v6, "http://[::0:1]:8080/"),
        ] {
            // Some of these the http crate already refuses to parse (the
            // guest then gets HttpRequestUriInvalid); the rest must be
            // refused here.
            if let Ok(parsed) = refused.parse::<http::Uri>() {
                assert!(!who.admits(&parsed), "{who} admitted {refused}");
            }
        }
        assert!(local.admits(&uri("http://127.0.0.1:8080/v2/siem/all")));
        assert!(v6.admits(&uri("http://[::1]:8080/v2/siem/all")));
    }
}
