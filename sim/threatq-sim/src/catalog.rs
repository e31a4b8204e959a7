//! ThreatQ's default reference data (docs/threatq-api.md, "Collections and
//! identity" and "Types and statuses"): the collections the simulator
//! serves and the type and status names it accepts, so a client that
//! misspells one (`User-Agent` for `User-agent`) fails here as it would on
//! a real instance.

/// Indicator type names, spelled exactly as ThreatQ's mapping file has them.
pub const INDICATOR_TYPES: &[&str] = &[
    "ASN",
    "Binary String",
    "CIDR Block",
    "CVE",
    "Email Address",
    "Email Attachment",
    "Email Subject",
    "File Mapping",
    "File Path",
    "Filename",
    "FQDN",
    "Fuzzy Hash",
    "GOST Hash",
    "Hash ION",
    "IP Address",
    "IPv6 Address",
    "MAC Address",
    "MD5",
    "Mutex",
    "Password",
    "Registry Key",
    "Service Name",
    "SHA-1",
    "SHA-256",
    "SHA-384",
    "SHA-512",
    "String",
    "x509 Serial",
    "x509 Subject",
    "URL",
    "URL Path",
    "User-agent",
    "Username",
    "X-Mailer",
];

/// Default indicator statuses; the position plus one is the default id.
pub const INDICATOR_STATUSES: &[&str] = &["Active", "Expired", "Indirect", "Review", "Whitelisted"];

/// Status a new indicator gets when the request names none (ThreatQ's
/// import default).
pub const DEFAULT_INDICATOR_STATUS: &str = "Review";

/// Default event types; the position plus one is the default id.
pub const EVENT_TYPES: &[&str] = &[
    "Spearphish",
    "Watering Hole",
    "SQL Injection Attack",
    "DoS Attack",
    "Malware",
    "Watchlist",
    "Command and Control",
    "Anonymization",
    "Exfiltration",
    "Host Characteristics",
    "Compromised PKI Certificate",
    "Login Compromise",
    "Incident",
    "Sighting",
];

/// Threat-library custom objects: identified by `value`.
const CUSTOM_OBJECTS: &[&str] = &[
    "malware",
    "campaign",
    "attack_pattern",
    "course_of_action",
    "exploit_target",
    "incident",
    "identity",
    "intrusion_set",
    "report",
    "tool",
    "ttp",
    "vulnerability",
    "stix_pattern",
];

/// Longest description ThreatQ stores (MariaDB TEXT, as threatqsdk cuts it).
pub const MAX_DESCRIPTION_CHARS: usize = 65_500;

/// How a collection names its objects (docs/threatq-api.md, "Collections
/// and identity").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    Value,
    Name,
    Title,
}

impl IdentityField {
    pub fn key(self) -> &'static str {
        match self {
            IdentityField::Value => "value",
            IdentityField::Name => "name",
            IdentityField::Title => "title",
        }
    }
}

/// The identifying field of a collection the simulator serves, or `None` for
/// a path segment that is not a collection.
pub fn identity_field(collection: &str) -> Option<IdentityField> {
    match collection {
        "indicators" => Some(IdentityField::Value),
        "adversaries" => Some(IdentityField::Name),
        "events" => Some(IdentityField::Title),
        custom if CUSTOM_OBJECTS.contains(&custom) => Some(IdentityField::Value),
        _ => None,
    }
}
