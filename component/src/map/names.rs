//! The exact ThreatQ spellings the mapping uses: indicator and event type
//! names (case matters to ThreatQ) and attribute names.

pub mod types {
    pub const URL: &str = "URL";
    pub const SHA256: &str = "SHA-256";
    pub const MD5: &str = "MD5";
    pub const EMAIL_ADDRESS: &str = "Email Address";
    pub const EMAIL_SUBJECT: &str = "Email Subject";
    pub const X_MAILER: &str = "X-Mailer";
    pub const IP_ADDRESS: &str = "IP Address";
    pub const IPV6_ADDRESS: &str = "IPv6 Address";
    pub const FILENAME: &str = "Filename";
    pub const FILE_PATH: &str = "File Path";
    pub const FQDN: &str = "FQDN";
    pub const MUTEX: &str = "Mutex";
    pub const REGISTRY_KEY: &str = "Registry Key";

    pub const SPEARPHISH: &str = "Spearphish";
    pub const INCIDENT: &str = "Incident";
}

pub mod attributes {
    pub const MESSAGE_GUID: &str = "Message GUID";
    pub const MESSAGE_ID: &str = "Message ID";
    pub const QID: &str = "QID";
    pub const RECIPIENT: &str = "Recipient";
    pub const SENDER: &str = "Sender";
    pub const SENDER_IP: &str = "Sender IP";
    pub const FROM: &str = "From";
    pub const REPLY_TO: &str = "Reply-To";
    pub const TO: &str = "To";
    pub const CC: &str = "CC";
    pub const SPAM_SCORE: &str = "Spam Score";
    pub const PHISH_SCORE: &str = "Phish Score";
    pub const MALWARE_SCORE: &str = "Malware Score";
    pub const IMPOSTOR_SCORE: &str = "Impostor Score";
    pub const QUARANTINE_FOLDER: &str = "Quarantine Folder";
    pub const QUARANTINE_RULE: &str = "Quarantine Rule";
    pub const POLICY_ROUTE: &str = "Policy Route";
    pub const MODULE_RUN: &str = "Module Run";
    pub const CLUSTER: &str = "Cluster";
    pub const COMPLETELY_REWRITTEN: &str = "Completely Rewritten";
    pub const MESSAGE_SIZE: &str = "Message Size";
    pub const DISPOSITION: &str = "Disposition";
    pub const MESSAGE_BODY_PART: &str = "Message Body Part";

    pub const CLASSIFICATION: &str = "Classification";
    pub const THREAT_ID: &str = "Threat ID";
    pub const THREAT_STATUS: &str = "Threat Status";
    pub const TAP_THREAT_LINK: &str = "TAP Threat Link";
    pub const CAMPAIGN_ID: &str = "Campaign ID";
    pub const DETECTION_TYPE: &str = "Detection Type";

    pub const CONTENT_TYPE: &str = "Content Type";
    pub const SANDBOX_STATUS: &str = "Sandbox Status";

    pub const CLICK_IP: &str = "Click IP";
    pub const USER_AGENT: &str = "User Agent";
    pub const CLICK_ID: &str = "Click ID";

    pub const START_DATE: &str = "Start Date";
    pub const NOTABLE: &str = "Notable";
    pub const MALWARE_FAMILY: &str = "Malware Family";
    pub const TARGETED_BRAND: &str = "Targeted Brand";
    pub const SUB_TYPE: &str = "Sub Type";

    pub const TAP_SEVERITY: &str = "TAP Severity";
    pub const ATTACK_SPREAD: &str = "Attack Spread";
    pub const THREAT_CATEGORY: &str = "Threat Category";
    pub const IDENTIFIED_AT: &str = "Identified At";

    pub const VERY_ATTACKED_PERSON: &str = "Very Attacked Person";
    pub const ATTACK_INDEX: &str = "Attack Index";
    pub const TOP_CLICKER: &str = "Top Clicker";
    pub const VIP: &str = "VIP";

    pub const PORT: &str = "Port";
    pub const PROTOCOL: &str = "Protocol";
    pub const IDS_SIGNATURE: &str = "IDS Signature";
    pub const BEHAVIOR: &str = "Behavior";
}
