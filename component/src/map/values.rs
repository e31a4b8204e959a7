//! Which TAP values make valid indicators, and their canonical spelling,
//! so the same artefact seen twice is one ThreatQ object.

use std::net::IpAddr;

use super::names::types;

/// An email address (`local@domain`), lower-cased; `None` for anything
/// else (an impostor's display name, a header with a friendly name).
pub fn email_address(raw: &str) -> Option<String> {
    let value = raw.trim();
    let (local, domain) = value.rsplit_once('@')?;
    let well_formed = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        && !domain.contains('@');
    well_formed.then(|| value.to_lowercase())
}

/// An IP address with its ThreatQ type (`IP Address` or `IPv6 Address`),
/// in canonical form.
pub fn ip_address(raw: &str) -> Option<(&'static str, String)> {
    match raw.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some((types::IP_ADDRESS, v4.to_string())),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some((types::IP_ADDRESS, v4.to_string())),
            None => Some((types::IPV6_ADDRESS, v6.to_string())),
        },
    }
}

fn hex_of_len(raw: &str, len: usize) -> Option<String> {
    let value = raw.trim();
    (value.len() == len && value.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

pub fn sha256(raw: &str) -> Option<String> {
    hex_of_len(raw, 64)
}

pub fn md5(raw: &str) -> Option<String> {
    hex_of_len(raw, 32)
}

/// A URL as TAP gives it, trimmed; refuses blanks and values with spaces,
/// which are descriptions rather than URLs.
pub fn url(raw: &str) -> Option<String> {
    let value = raw.trim();
    (!value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| value.to_string())
}

/// A host name, lower-cased, without a trailing dot.
pub fn fqdn(raw: &str) -> Option<String> {
    let value = raw.trim().trim_end_matches('.');
    let valid = value.contains('.')
        && value.parse::<IpAddr>().is_err()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    valid.then(|| value.to_ascii_lowercase())
}

/// Free text for an indicator value or a title: control characters (C0
/// such as line breaks and ESC, DEL, C1) and the Unicode line and
/// paragraph separators become spaces, the ends are trimmed.
pub fn one_line(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Trimmed text, or `None` when blank.
pub fn present(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_lower_cased_and_display_names_refused() {
        assert_eq!(
            email_address(" Bad@Evil.ZZ ").as_deref(),
            Some("bad@evil.zz")
        );
        assert_eq!(email_address("\"Bob\" <bob@x.zz>"), None);
        assert_eq!(email_address("not an address"), None);
        assert_eq!(email_address("a@localhost"), None);
    }

    #[test]
    fn ipv4_and_ipv6_get_their_own_types() {
        assert_eq!(
            ip_address("192.0.2.1"),
            Some((types::IP_ADDRESS, "192.0.2.1".into()))
        );
        assert_eq!(
            ip_address("2001:DB8::1"),
            Some((types::IPV6_ADDRESS, "2001:db8::1".into()))
        );
        assert_eq!(
            ip_address("::ffff:192.0.2.1"),
            Some((types::IP_ADDRESS, "192.0.2.1".into()))
        );
        assert_eq!(ip_address("unknown"), None);
    }

    #[test]
    fn hashes_must_be_hex_of_the_right_length() {
        assert_eq!(sha256(&"AB".repeat(32)), Some("ab".repeat(32)));
        assert_eq!(sha256(&"ab".repeat(31)), None);
        assert_eq!(md5(&"0f".repeat(16)), Some("0f".repeat(16)));
        assert_eq!(md5(&"zz".repeat(16)), None);
    }

    #[test]
    fn fqdn_refuses_ips_and_single_labels() {
        assert_eq!(fqdn("Evil.ZZ.").as_deref(), Some("evil.zz"));
        assert_eq!(fqdn("10.0.0.1"), None);
        assert_eq!(fqdn("localhost"), None);
    }

    #[test]
    fn subjects_lose_line_breaks() {
        assert_eq!(one_line(" Invoice\r\n overdue "), "Invoice   overdue");
    }

    #[test]
    fn every_control_character_and_line_separator_becomes_a_space() {
        assert_eq!(
            one_line("a\u{1b}[31mb\u{7f}c\u{85}d\u{9b}e\u{2028}f\u{2029}g\th"),
            "a [31mb c d e f g h"
        );
    }
}
