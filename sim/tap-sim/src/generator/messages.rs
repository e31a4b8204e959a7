//! Messages: one email to several recipients becomes one SIEM record per
//! recipient (same GUID, own `recipient` and `id`).

use time::{Duration, OffsetDateTime};

use super::dice::{self, Dice};
use super::threats::Threat;
use crate::records::{MessageEvent, MessageKind, MessagePart, ThreatInfo, ThreatType};

pub struct MessageParams<'a> {
    pub end: OffsetDateTime,
    pub org_id: &'a str,
    pub max_recipients: u32,
    pub blocked_fraction: f64,
    pub late_fraction: f64,
}

/// The link to a threat in the TAP dashboard.
pub fn threat_link(org_id: &str, threat_id: &str) -> String {
    format!("https://threatinsight.proofpoint.com/{org_id}/threat/email/{threat_id}")
}

fn person(dice: &mut Dice) -> (String, String) {
    let first = *dice.pick(dice::FIRST_NAMES);
    let last = *dice.pick(dice::LAST_NAMES);
    let domain = dice.pick(dice::CUSTOMER_DOMAINS);
    let display = format!(
        "{}{} {}{}",
        first[..1].to_uppercase(),
        &first[1..],
        last[..1].to_uppercase(),
        &last[1..]
    );
    (display, format!("{first}.{last}@{domain}"))
}

fn header_list(people: &[(String, String)]) -> String {
    people
        .iter()
        .map(|(name, address)| format!("\"{name}\" <{address}>"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn body_parts(dice: &mut Dice) -> Vec<MessagePart> {
    [("text.txt", "text/plain"), ("text.html", "text/html")]
        .into_iter()
        .map(|(filename, content_type)| MessagePart {
            content_type: content_type.to_owned(),
            o_content_type: content_type.to_owned(),
            disposition: "inline".to_owned(),
            filename: filename.to_owned(),
            md5: dice.hex(32),
            sha256: dice.hex(64),
            sandbox_status: None,
        })
        .collect()
}

fn attached(dice: &mut Dice, md5: String, sha256: String, sandbox_status: &str) -> MessagePart {
    let (filename, content_type) = *dice.pick(dice::ATTACHMENT_NAMES);
    MessagePart {
        content_type: content_type.to_owned(),
        o_content_type: if dice.chance(0.2) {
            "application/octet-stream".to_owned()
        } else {
            content_type.to_owned()
        },
        disposition: "attached".to_owned(),
        filename: filename.to_owned(),
        md5,
        sha256,
        sandbox_status: Some(sandbox_status.to_owned()),
    }
}

/// The verdict time for one threat of a message: usually around delivery,
/// sometimes (a late verdict) well after it, but always before the tenant
/// ends so every record can be fetched.
fn verdict_time(
    dice: &mut Dice,
    at: OffsetDateTime,
    late: bool,
    end: OffsetDateTime,
) -> OffsetDateTime {
    let latest = end - Duration::SECOND;
    if late {
        let candidate = at + Duration::minutes(dice.between(10, 240) as i64);
        let clamped = candidate.min(latest);
        if clamped > at + Duration::minutes(1) {
            return clamped;
        }
    }
    if dice.chance(0.7) {
        at - Duration::seconds(dice.between(0, 600) as i64)
    } else {
        (at + Duration::seconds(dice.between(1, 5) as i64)).min(latest)
    }
}

/// All per-recipient records of one message.
pub fn message(
    dice: &mut Dice,
    at: OffsetDateTime,
    threats: &[&Threat],
    p: &MessageParams,
) -> (MessageKind, Vec<MessageEvent>) {
    let kind = if dice.chance(p.blocked_fraction) {
        MessageKind::Blocked
    } else {
        MessageKind::Delivered
    };
    let guid = dice.message_guid();
    let hostile = *dice.pick(dice::HOSTILE_DOMAINS);
    let sender = format!("{}@{hostile}", dice.hex(32));
    let from_name = *dice.pick(dice::DISPLAY_NAMES);
    let from_address = format!(
        "{}@{hostile}",
        dice.pick(&["no-reply", "support", "billing", "hr"])
    );
    let reply_to = dice.chance(0.3).then(|| {
        format!(
            "{}@{}",
            dice.pick(dice::FIRST_NAMES),
            dice.pick(dice::HOSTILE_DOMAINS)
        )
    });
    let recipient_count = dice.between(1, u64::from(p.max_recipients.max(1))) as usize;
    let mut recipients: Vec<(String, String)> = Vec::new();
    while recipients.len() < recipient_count {
        let candidate = person(dice);
        if recipients.iter().all(|(_, a)| *a != candidate.1) {
            recipients.push(candidate);
        } else if recipients.len() >= dice::FIRST_NAMES.len() {
            break;
        }
    }
    let cc: Vec<(String, String)> = (0..dice.between(0, 2)).map(|_| person(dice)).collect();
    let late = dice.chance(p.late_fraction);
    let threats_info_map: Vec<ThreatInfo> = threats
        .iter()
        .enumerate()
        .map(|(i, t)| ThreatInfo {
            threat_id: t.id.clone(),
            campaign_id: t.campaign_id.clone(),
            classification: t.classification.clone(),
            threat: t.value.clone(),
            threat_status: t.status,
            threat_time: verdict_time(dice, at, late && i == 0, p.end),
            threat_type: t.kind,
            threat_url: threat_link(p.org_id, &t.id),
            detection_type: t.detection_type.clone(),
        })
        .collect();
    let mut parts = body_parts(dice);
    for t in threats.iter().filter(|t| t.kind == ThreatType::Attachment) {
        parts.push(attached(dice, t.md5.clone(), t.value.clone(), "threat"));
    }
    if dice.chance(0.2) {
        let status = *dice.pick(&[
            "clean",
            "unsupported",
            "prefilter",
            "uploaded",
            "inprogress",
            "uploaddisabled",
        ]);
        let (md5, sha256) = (dice.hex(32), dice.hex(64));
        parts.push(attached(dice, md5, sha256, status));
    }
    let has_url = threats.iter().any(|t| t.kind == ThreatType::Url);
    let classification = threats
        .first()
        .map_or("phish", |t| t.classification.as_str());
    let mut score = |wanted: &str| {
        if classification == wanted {
            dice.between(80, 100) as u32
        } else {
            dice.between(0, 20) as u32
        }
    };
    let (malware_score, phish_score, spam_score) =
        (score("malware"), score("phish"), score("spam"));
    let impostor_score = if matches!(classification, "impostor" | "toad") {
        95.0
    } else {
        0.0
    };
    let (quarantine_folder, quarantine_rule) = match kind {
        MessageKind::Delivered => (None, None),
        MessageKind::Blocked => {
            let (folder, rule) = *dice.pick(&[
                ("Attachment Defense", "module.sandbox.threat"),
                ("Malware", "malware"),
                ("Phish", "phish"),
                ("Impostor", "module.impostor.threat"),
            ]);
            (Some(folder.to_owned()), Some(rule.to_owned()))
        }
    };
    let subject = match *dice.pick(dice::SUBJECTS) {
        "" if dice.chance(0.5) => None,
        s => Some(s.to_owned()),
    };
    let modules_run: Vec<String> = dice
        .pick(&[
            &["av", "spf", "spam", "dmarc", "urldefense"][..],
            &["pdr", "sandbox", "spam", "urldefense"][..],
            &["av", "dkimv", "spf", "dmarc", "sandbox"][..],
        ])
        .iter()
        .map(|m| m.to_string())
        .collect();
    let mut policy_routes = vec!["default_inbound".to_owned()];
    if dice.chance(0.2) {
        policy_routes.push("executives".to_owned());
    }
    let template = MessageEvent {
        guid,
        id: String::new(),
        qid: dice.chance(0.9).then(|| dice.qid()),
        cc_addresses: cc.iter().map(|(_, a)| a.clone()).collect(),
        cluster: "example_hosted".to_owned(),
        completely_rewritten: has_url && dice.chance(0.8),
        from_address: vec![from_address.clone()],
        header_cc: (!cc.is_empty()).then(|| header_list(&cc)),
        header_from: format!("\"{from_name}\" <{from_address}>"),
        header_reply_to: reply_to.as_ref().map(|r| format!("<{r}>")),
        header_to: header_list(&recipients),
        impostor_score,
        malware_score,
        phish_score,
        spam_score,
        message_id: format!("<{}.{}@{hostile}>", dice.hex(12), dice.hex(8)),
        message_parts: parts,
        message_size: dice.between(3_000, 900_000),
        message_time: at,
        modules_run,
        policy_routes,
        quarantine_folder,
        quarantine_rule,
        recipient: Vec::new(),
        reply_to_address: reply_to.into_iter().collect(),
        sender,
        sender_ip: dice.ip(),
        subject,
        threats_info_map,
        to_addresses: recipients.iter().map(|(_, a)| a.clone()).collect(),
        xmailer: dice
            .chance(0.7)
            .then(|| dice.pick(dice::XMAILERS).to_string()),
    };
    let copies = recipients
        .iter()
        .map(|(_, address)| MessageEvent {
            id: dice.uuid(),
            recipient: vec![address.clone()],
            ..template.clone()
        })
        .collect();
    (kind, copies)
}
