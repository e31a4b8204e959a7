//! Request paths. Every value that goes into a path or query is
//! percent-encoded, so ids from TAP responses cannot change the request.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986 unreserved characters stay as they are; everything else
/// (including `:` and `/` in intervals) is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub const SIEM_ALL: &str = "/v2/siem/all";
pub const FORENSICS: &str = "/v2/forensics";
pub const PEOPLE_VAP: &str = "/v2/people/vap";
pub const PEOPLE_TOP_CLICKERS: &str = "/v2/people/top-clickers";

fn encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// TAP leaves `falsePositive` threats out unless asked; the connector asks
/// for every status so a verdict TAP changes later reaches ThreatQ
/// (docs/mapping.md, "Verdict changes").
const ALL_THREAT_STATUSES: &str =
    "&threatStatus=active&threatStatus=cleared&threatStatus=falsePositive";

/// `/v2/siem/all?format=json&interval=<start>/<end>&threatStatus=...`; the
/// bounds are already RFC 3339 UTC strings.
pub fn siem_all(start: &str, end: &str) -> String {
    format!(
        "{SIEM_ALL}?format=json&interval={}{ALL_THREAT_STATUSES}",
        encode(&format!("{start}/{end}"))
    )
}

/// `/v2/campaign/{id}`.
pub fn campaign(id: &str) -> String {
    format!("/v2/campaign/{}", encode(id))
}

/// `/v2/forensics?campaignId={id}` (the 1800-a-day pool).
pub fn campaign_forensics(campaign_id: &str) -> String {
    format!("{FORENSICS}?campaignId={}", encode(campaign_id))
}

/// `/v2/forensics?threatId={id}` (the 50-a-day pool).
pub fn threat_forensics(threat_id: &str) -> String {
    format!("{FORENSICS}?threatId={}", encode(threat_id))
}

/// `/v2/threat/summary/{id}` (no throttle documented).
pub fn threat_summary(threat_id: &str) -> String {
    format!("/v2/threat/summary/{}", encode(threat_id))
}

/// One page of a people list: `{list}?window={days}&size={size}&page={page}`
/// (`list` is [`PEOPLE_VAP`] or [`PEOPLE_TOP_CLICKERS`]; pages count from 1).
pub fn people(list: &str, window_days: u32, size: u32, page: u32) -> String {
    format!("{list}?window={window_days}&size={size}&page={page}")
}

/// The path of a request without its query, as reported in `tap-failure`.
pub fn endpoint_of(path_and_query: &str) -> &str {
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siem_query_asks_for_json_and_every_threat_status_and_encodes_the_interval() {
        assert_eq!(
            siem_all("2026-11-28T10:00:00Z", "2026-11-28T11:00:00Z"),
            "/v2/siem/all?format=json&interval=2026-11-28T10%3A00%3A00Z%2F2026-11-28T11%3A00%3A00Z\
             &threatStatus=active&threatStatus=cleared&threatStatus=falsePositive"
        );
    }

    #[test]
    fn ids_from_tap_cannot_inject_path_or_query() {
        assert_eq!(campaign("a/../b?x=1"), "/v2/campaign/a%2F..%2Fb%3Fx%3D1");
        assert_eq!(
            threat_forensics("abc&campaignId=1"),
            "/v2/forensics?threatId=abc%26campaignId%3D1"
        );
        assert_eq!(
            campaign_forensics("46e01b8a-c899"),
            "/v2/forensics?campaignId=46e01b8a-c899"
        );
        assert_eq!(
            threat_summary("../people/vap?window=90"),
            "/v2/threat/summary/..%2Fpeople%2Fvap%3Fwindow%3D90"
        );
        assert_eq!(
            people(PEOPLE_TOP_CLICKERS, 30, 200, 2),
            "/v2/people/top-clickers?window=30&size=200&page=2"
        );
    }

    #[test]
    fn endpoint_drops_the_query() {
        assert_eq!(endpoint_of("/v2/siem/all?format=json"), "/v2/siem/all");
        assert_eq!(endpoint_of("/v2/campaign/x"), "/v2/campaign/x");
    }
}
