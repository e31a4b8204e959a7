//! Forensics API answers: malicious evidence becomes indicators (or
//! attributes of the threat's indicator), each related to the threat's own
//! indicator and to its campaign.

use super::Mapping;
use super::graph::ObjectId;
use super::names::{attributes as attr, types};
use super::values::{fqdn, ip_address, md5, present, sha256, url};
use crate::tap::forensics::{Evidence, EvidenceKind, ForensicsResponse, Report, ReportScope};
use crate::tap::siem::ThreatStatus;

/// What a forensics answer was fetched for.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// `?campaignId=`; `campaign` is the campaign object when known.
    Campaign { campaign: Option<ObjectId> },
    /// `?threatId=` for this threat id.
    Threat { threat_id: &'a str },
}

/// An indicator one piece of evidence yields, with its own attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceIndicator {
    pub type_name: &'static str,
    pub value: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// What one piece of evidence yields per the mapping table: indicators,
/// and attributes for the threat's own indicator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceYield {
    pub indicators: Vec<EvidenceIndicator>,
    pub threat_attributes: Vec<(&'static str, String)>,
}

impl EvidenceYield {
    fn is_empty(&self) -> bool {
        self.indicators.is_empty() && self.threat_attributes.is_empty()
    }

    fn indicator(&mut self, type_name: &'static str, value: Option<String>) {
        if let Some(value) = value {
            self.indicators.push(EvidenceIndicator {
                type_name,
                value,
                attributes: Vec::new(),
            });
        }
    }

    fn ip(&mut self, raw: &str, attributes: Vec<(&'static str, String)>) {
        if let Some((type_name, value)) = ip_address(raw) {
            self.indicators.push(EvidenceIndicator {
                type_name,
                value,
                attributes,
            });
        }
    }
}

/// Reads one piece of evidence. Benign evidence, and types the mapping does
/// not use, yield nothing.
pub fn evidence_yield(evidence: &Evidence) -> EvidenceYield {
    let mut out = EvidenceYield::default();
    if evidence.malicious != Some(true) {
        return out;
    }
    let Some(kind) = &evidence.kind else {
        return out;
    };
    let text = |key: &str| evidence.text(key);
    match kind {
        EvidenceKind::Url | EvidenceKind::RedirectChain => {
            out.indicator(types::URL, text("url").as_deref().and_then(url));
        }
        EvidenceKind::Dns => {
            out.indicator(types::FQDN, text("host").as_deref().and_then(fqdn));
            for ip in evidence.texts("ips") {
                out.ip(&ip, Vec::new());
            }
        }
        EvidenceKind::Network => {
            let mut attributes = Vec::new();
            if let Some(port) = text("port") {
                attributes.push((attr::PORT, port));
            }
            if let Some(protocol) = text("type") {
                attributes.push((attr::PROTOCOL, protocol));
            }
            if let Some(ip) = text("ip") {
                out.ip(&ip, attributes);
            }
        }
        EvidenceKind::File | EvidenceKind::Dropper => {
            out.indicator(types::FILE_PATH, text("path"));
            out.indicator(types::MD5, text("md5").as_deref().and_then(md5));
            out.indicator(types::SHA256, text("sha256").as_deref().and_then(sha256));
            if *kind == EvidenceKind::Dropper {
                out.indicator(types::URL, text("url").as_deref().and_then(url));
            }
        }
        EvidenceKind::Attachment => {
            out.indicator(types::MD5, text("md5").as_deref().and_then(md5));
            out.indicator(types::SHA256, text("sha256").as_deref().and_then(sha256));
        }
        EvidenceKind::Mutex => out.indicator(types::MUTEX, text("name")),
        EvidenceKind::Registry => out.indicator(types::REGISTRY_KEY, text("key")),
        EvidenceKind::Process => out.indicator(types::FILE_PATH, text("path")),
        EvidenceKind::Ids => {
            if let Some(signature) = text("name").or_else(|| text("signatureId")) {
                out.threat_attributes.push((attr::IDS_SIGNATURE, signature));
            }
        }
        EvidenceKind::Behavior => {
            let note =
                present(evidence.note.as_deref()).or_else(|| present(evidence.display.as_deref()));
            if let Some(note) = note {
                out.threat_attributes
                    .push((attr::BEHAVIOR, note.to_string()));
            }
        }
        EvidenceKind::Cookie | EvidenceKind::Screenshot | EvidenceKind::Other(_) => {}
    }
    out
}

/// How the evidence of one answer was used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceTally {
    pub used: u32,
    pub dropped: u32,
    /// Evidence types we do not know, as TAP spelled them, with the raw
    /// evidence JSON, for the debug log.
    pub unknown: Vec<(String, String)>,
    /// Evidence elements that were not readable at all.
    pub unreadable: u32,
}

pub fn map_forensics(
    m: &mut Mapping,
    answer: &ForensicsResponse,
    origin: Origin<'_>,
) -> EvidenceTally {
    let mut tally = EvidenceTally::default();
    let campaign = match origin {
        Origin::Campaign { campaign } => campaign,
        Origin::Threat { .. } => None,
    };
    for report in &answer.reports {
        let anchor = match report_threat(m, report, origin, campaign) {
            Ok(anchor) => anchor,
            Err(FalsePositive) => {
                tally.dropped += count(report.forensics.len());
                continue;
            }
        };
        for raw in &report.forensics {
            let evidence = match Evidence::read(raw) {
                Ok(evidence) => evidence,
                Err(_) => {
                    tally.unreadable += 1;
                    tally.dropped += 1;
                    continue;
                }
            };
            if let Some(EvidenceKind::Other(kind)) = &evidence.kind {
                tally.unknown.push((kind.clone(), raw.to_string()));
            }
            let found = evidence_yield(&evidence);
            if apply(m, &found, anchor, campaign) {
                tally.used += 1;
            } else {
                tally.dropped += 1;
            }
        }
    }
    tally
}

struct FalsePositive;

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The indicator a report's evidence hangs on: the threat's indicator from
/// the SIEM data (or a campaign member) when known; otherwise one made from
/// the report's `name`, which is the URL or the SHA-256 (the `id` is a TAP
/// threat ID, equal to the SHA-256 only for attachments, so it is not used
/// as a value). Campaign-scoped reports hang on the campaign alone.
fn report_threat(
    m: &mut Mapping,
    report: &Report,
    origin: Origin<'_>,
    campaign: Option<ObjectId>,
) -> Result<Option<ObjectId>, FalsePositive> {
    if report.scope == Some(ReportScope::Campaign) {
        return Ok(None);
    }
    let report_id = present(report.id.as_deref());
    let false_positive = report.threat_status == Some(ThreatStatus::FalsePositive)
        || report_id.is_some_and(|id| m.is_false_positive(id));
    if false_positive {
        return Err(FalsePositive);
    }
    if let Some(known) = report_id.and_then(|id| m.threat_indicator(id)) {
        return Ok(Some(known));
    }
    let name = present(report.name.as_deref());
    let from_name = name.and_then(|name| {
        sha256(name).map(|v| (types::SHA256, v)).or_else(|| {
            url(name)
                .filter(|_| name.contains("://"))
                .map(|v| (types::URL, v))
        })
    });
    if let Some((type_name, value)) = from_name
        && let Some(indicator) = m.indicator(type_name, &value)
    {
        if let Some(id) = report_id {
            m.graph.attribute(indicator, attr::THREAT_ID, id);
            m.register_threat(id, indicator);
        }
        if let Some(status) = &report.threat_status {
            m.graph
                .attribute(indicator, attr::THREAT_STATUS, status.as_str());
        }
        if let Some(campaign) = campaign {
            m.graph.relate(indicator, campaign);
        }
        return Ok(Some(indicator));
    }
    Ok(match origin {
        Origin::Threat { threat_id } => m.threat_indicator(threat_id),
        Origin::Campaign { .. } => None,
    })
}

/// Writes one evidence's yield into the mapping; `true` when anything was
/// used. Attributes meant for the threat's indicator go on the campaign
/// when the report has no threat.
fn apply(
    m: &mut Mapping,
    found: &EvidenceYield,
    threat: Option<ObjectId>,
    campaign: Option<ObjectId>,
) -> bool {
    if found.is_empty() {
        return false;
    }
    let mut used = false;
    for item in &found.indicators {
        let Some(indicator) = m.indicator(item.type_name, &item.value) else {
            continue;
        };
        used = true;
        for (name, value) in &item.attributes {
            m.graph.attribute(indicator, name, value);
        }
        for anchor in [threat, campaign].into_iter().flatten() {
            m.graph.relate(indicator, anchor);
        }
    }
    if let Some(holder) = threat.or(campaign) {
        for (name, value) in &found.threat_attributes {
            m.graph.attribute(holder, name, value);
            used = true;
        }
    }
    used
}

#[cfg(test)]
mod tests {
    //! One test per row of the forensics table in docs/mapping.md.

    use super::*;
    use serde_json::{Value, json};

    fn yield_of(evidence: Value) -> EvidenceYield {
        evidence_yield(&Evidence::read(&evidence).expect("evidence reads"))
    }

    fn indicators(y: &EvidenceYield) -> Vec<(&str, &str)> {
        y.indicators
            .iter()
            .map(|i| (i.type_name, i.value.as_str()))
            .collect()
    }

    #[test]
    fn only_malicious_evidence_yields_anything() {
        let what = json!({"url": "http://x.zz/"});
        assert!(yield_of(json!({"type": "url", "malicious": false, "what": what})).is_empty());
        assert!(yield_of(json!({"type": "url", "what": what})).is_empty());
        assert!(!yield_of(json!({"type": "url", "malicious": true, "what": what})).is_empty());
    }

    #[test]
    fn url_and_redirect_chain_evidence_become_url() {
        for kind in ["url", "redirect_chain"] {
            let y = yield_of(
                json!({"type": kind, "malicious": true, "what": {"url": "http://x.zz/a"}}),
            );
            assert_eq!(indicators(&y), [("URL", "http://x.zz/a")], "{kind}");
        }
    }

    #[test]
    fn dns_evidence_becomes_fqdn_and_an_ip_address_per_ip() {
        let y = yield_of(
            json!({"type": "dns", "malicious": true, "what": {"host": "C2.Evil.zz", "ips": ["198.51.100.7", "2001:db8::7"]}}),
        );
        assert_eq!(
            indicators(&y),
            [
                ("FQDN", "c2.evil.zz"),
                ("IP Address", "198.51.100.7"),
                ("IPv6 Address", "2001:db8::7")
            ]
        );
    }

    #[test]
    fn network_evidence_becomes_ip_address_with_port_and_protocol() {
        let y = yield_of(
            json!({"type": "network", "malicious": true, "what": {"action": "connect", "ip": "203.0.113.9", "port": 443, "type": "tcp"}}),
        );
        assert_eq!(indicators(&y), [("IP Address", "203.0.113.9")]);
        assert_eq!(
            y.indicators[0].attributes,
            [("Port", "443".to_string()), ("Protocol", "tcp".to_string())]
        );
    }

    #[test]
    fn file_evidence_becomes_file_path_md5_and_sha256() {
        let what = json!({"path": "C:\\Users\\a\\evil.exe", "md5": "0f".repeat(16), "sha256": "AB".repeat(32)});
        let y = yield_of(json!({"type": "file", "malicious": true, "what": what}));
        assert_eq!(
            indicators(&y),
            [
                ("File Path", "C:\\Users\\a\\evil.exe"),
                ("MD5", "0f".repeat(16).as_str()),
                ("SHA-256", "ab".repeat(32).as_str())
            ]
        );
    }

    #[test]
    fn dropper_evidence_also_becomes_its_url() {
        let y = yield_of(
            json!({"type": "dropper", "malicious": true, "what": {"path": "/tmp/x", "url": "http://drop.zz/x"}}),
        );
        assert_eq!(
            indicators(&y),
            [("File Path", "/tmp/x"), ("URL", "http://drop.zz/x")]
        );
    }

    #[test]
    fn attachment_evidence_becomes_md5_and_sha256() {
        let y = yield_of(
            json!({"type": "attachment", "malicious": true, "what": {"md5": "0f".repeat(16), "sha256": "ab".repeat(32), "size": 10}}),
        );
        assert_eq!(
            indicators(&y),
            [
                ("MD5", "0f".repeat(16).as_str()),
                ("SHA-256", "ab".repeat(32).as_str())
            ]
        );
    }

    #[test]
    fn mutex_evidence_becomes_mutex() {
        let y = yield_of(
            json!({"type": "mutex", "malicious": true, "what": {"name": "Global\\m", "path": "x"}}),
        );
        assert_eq!(indicators(&y), [("Mutex", "Global\\m")]);
    }

    #[test]
    fn registry_evidence_becomes_registry_key() {
        let y = yield_of(
            json!({"type": "registry", "malicious": true, "what": {"key": "HKCU\\Run", "name": "x", "value": "y"}}),
        );
        assert_eq!(indicators(&y), [("Registry Key", "HKCU\\Run")]);
    }

    #[test]
    fn process_evidence_becomes_file_path() {
        let y = yield_of(
            json!({"type": "process", "malicious": true, "what": {"action": "create", "path": "C:\\evil.exe"}}),
        );
        assert_eq!(indicators(&y), [("File Path", "C:\\evil.exe")]);
    }

    #[test]
    fn ids_and_idsrule_evidence_become_an_ids_signature_attribute() {
        for kind in ["ids", "idsrule"] {
            let y = yield_of(
                json!({"type": kind, "malicious": true, "what": {"name": "ET Beacon", "signatureId": 7}}),
            );
            assert!(y.indicators.is_empty());
            assert_eq!(
                y.threat_attributes,
                [("IDS Signature", "ET Beacon".to_string())],
                "{kind}"
            );
        }
    }

    #[test]
    fn behavior_evidence_becomes_a_behavior_attribute_from_its_note() {
        let y = yield_of(
            json!({"type": "behavior", "malicious": true, "note": "Injects code", "what": {"rule": "r"}}),
        );
        assert_eq!(
            y.threat_attributes,
            [("Behavior", "Injects code".to_string())]
        );
    }

    #[test]
    fn cookie_screenshot_and_unknown_evidence_yield_nothing() {
        for kind in ["cookie", "screenshot", "brand_new_type"] {
            let y = yield_of(
                json!({"type": kind, "malicious": true, "what": {"url": "http://x.zz/", "domain": "x.zz"}}),
            );
            assert!(y.is_empty(), "{kind}");
        }
    }
}
