//! The two things the TAP logic needs from its surroundings: a way to GET a
//! TAP path, and the host's logger and clock. The wasm build implements them
//! over `wasi:http` and the `host` import; native tests use in-memory fakes.

/// One HTTP answer from TAP: the status and the raw body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends GET requests to the TAP API whose base URL the transport was built
/// for. An `Err` means the request got no HTTP answer at all (refused, reset,
/// timed out, denied by the host); its text is shown to the operator.
pub trait Transport {
    fn get(&mut self, path_and_query: &str) -> Result<TapResponse, String>;
}

/// Lets a caller keep ownership of its transport (tests inspect the
/// requests afterwards).
impl<T: Transport + ?Sized> Transport for &mut T {
    fn get(&mut self, path_and_query: &str) -> Result<TapResponse, String> {
        (**self).get(path_and_query)
    }
}

/// Severity of a log line, most severe first: the WIT `log-level` itself.
pub use crate::bindings::LogLevel;

/// What the host offers besides HTTP.
pub trait HostServices {
    fn log(&mut self, level: LogLevel, message: &str, fields: &[(&str, String)]);
    /// Wall-clock milliseconds since the Unix epoch, UTC.
    fn now_ms(&mut self) -> i64;
}

/// One GET through `transport`, with a debug line on `host` saying what
/// TAP answered (or that it did not): every TAP request of a call goes
/// through here.
pub fn logged_get<T: Transport, H: HostServices>(
    transport: &mut T,
    host: &mut H,
    path: &str,
) -> Result<TapResponse, String> {
    let answer = transport.get(path);
    match &answer {
        Ok(response) => host.log(
            LogLevel::Debug,
            "TAP request",
            &[
                ("path", path.to_string()),
                ("status", response.status.to_string()),
            ],
        ),
        Err(e) => host.log(
            LogLevel::Debug,
            "TAP request got no answer",
            &[("path", path.to_string()), ("error", e.clone())],
        ),
    }
    answer
}

/// URL scheme TAP may be reached with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// `settings.tap-base-url` after validation: a scheme and an authority and
/// nothing else, so every request path is ours to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapBaseUrl {
    pub scheme: Scheme,
    /// `host` or `host:port`, as given.
    pub authority: String,
}

impl TapBaseUrl {
    /// Accepts `https://host[:port]` or `http://host[:port]`, with at most a
    /// trailing `/`. The error names the setting and the expected form.
    pub fn parse(raw: &str) -> Result<TapBaseUrl, String> {
        let trimmed = raw.trim();
        let expected = "expected scheme and host only, e.g. https://tap-api-v2.proofpoint.com";
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(trimmed, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!(
                "settings.tap-base-url `{raw}` must start with https:// or http:// ({expected})"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(format!(
                "settings.tap-base-url `{raw}` has no host ({expected})"
            ));
        }
        if let Some(bad) = authority
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "settings.tap-base-url `{raw}` contains `{bad}`: a path, query, user or spaces are not allowed ({expected})"
            ));
        }
        Ok(TapBaseUrl {
            scheme,
            authority: authority.to_string(),
        })
    }
}

/// The `Authorization` header value for a TAP service credential, for hosts
/// that hand the component `settings.credentials` instead of adding the
/// header below it. The error names the setting and the rule it breaks.
pub fn basic_authorization(principal: &str, secret: &str) -> Result<String, String> {
    use base64::Engine as _;
    if principal.is_empty() {
        return Err(
            "settings.credentials.principal is empty: give the TAP service principal".into(),
        );
    }
    // RFC 7617: the user-id of Basic auth cannot contain a colon.
    if principal.contains(':') {
        return Err("settings.credentials.principal contains `:`, which HTTP Basic cannot carry: check that principal and secret are not swapped or joined".into());
    }
    if let Some(bad) = principal
        .chars()
        .chain(secret.chars())
        .find(|c| c.is_control())
    {
        return Err(format!(
            "settings.credentials contains a control character (U+{:04X}): copy the principal and secret again without line breaks",
            u32::from(bad)
        ));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    Ok(format!("Basic {encoded}"))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_encodes_principal_colon_secret() {
        // RFC 7617's example credential.
        assert_eq!(
            basic_authorization("Aladdin", "open sesame").unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        // A secret may itself contain a colon; only the principal may not.
        assert_eq!(basic_authorization("p", "a:b").unwrap(), "Basic cDphOmI=");
    }

    #[test]
    fn basic_authorization_refuses_what_basic_cannot_carry_naming_the_setting() {
        let empty = basic_authorization("", "s").unwrap_err();
        assert!(
            empty.contains("settings.credentials.principal is empty"),
            "{empty}"
        );
        let colon = basic_authorization("a:b", "s").unwrap_err();
        assert!(colon.contains("contains `:`"), "{colon}");
        let newline = basic_authorization("p", "secret\n").unwrap_err();
        assert!(newline.contains("control character (U+000A)"), "{newline}");
        // The secret itself is never echoed in the error.
        assert!(!newline.contains("secret\n"));
    }

    #[test]
    fn base_url_accepts_scheme_and_authority_with_optional_trailing_slash() {
        let url = TapBaseUrl::parse("https://tap-api-v2.proofpoint.com/").unwrap();
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.authority, "tap-api-v2.proofpoint.com");
        let url = TapBaseUrl::parse("HTTP://127.0.0.1:8080").unwrap();
        assert_eq!(url.scheme, Scheme::Http);
        assert_eq!(url.authority, "127.0.0.1:8080");
    }

    #[test]
    fn base_url_with_path_user_or_other_scheme_is_refused_naming_the_setting() {
        for bad in [
            "ftp://x",
            "tap-api-v2.proofpoint.com",
            "https://",
            "https://host/v2",
            "https://user@host",
            "https://ho st",
        ] {
            let err = TapBaseUrl::parse(bad).unwrap_err();
            assert!(err.contains("settings.tap-base-url"), "{bad}: {err}");
        }
    }
}
