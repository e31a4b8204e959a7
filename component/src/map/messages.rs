//! `messagesDelivered` / `messagesBlocked`: one Spearphish event per
//! message GUID, with its senders, subject, threats and attachments as
//! related indicators.

use std::collections::HashMap;

use super::Mapping;
use super::graph::ObjectId;
use super::names::{attributes as attr, types};
use super::threats::{Threat, map_threat};
use super::values::{email_address, ip_address, md5, one_line, present, sha256};
use crate::dates::threatq_date;
use crate::tap::siem::{Message, MessagePart, PartDisposition};

/// Which array a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageDisposition {
    Delivered,
    Blocked,
}

impl MessageDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageDisposition::Delivered => "Delivered",
            MessageDisposition::Blocked => "Blocked",
        }
    }
}

/// Maps the messages of one array. Per-recipient copies (same GUID,
/// different `recipient`/`id`) fold into one event, which takes the
/// earliest `messageTime` of the copies and the first non-empty subject.
pub fn map_messages(m: &mut Mapping, disposition: MessageDisposition, messages: &[&Message]) {
    let mut order: Vec<&str> = Vec::new();
    let mut copies: HashMap<&str, Vec<&Message>> = HashMap::new();
    for message in messages {
        let group = copies.entry(message.guid.as_str()).or_default();
        if group.is_empty() {
            order.push(message.guid.as_str());
        }
        group.push(message);
    }
    for guid in order {
        let Some(group) = copies.get(guid) else {
            continue;
        };
        let Some(time) = group.iter().map(|c| c.time).min() else {
            continue;
        };
        let subject = group
            .iter()
            .filter_map(|c| c.fields.subject.as_deref())
            .map(one_line)
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "(no subject)".to_string());
        let title = format!("TAP Message {}: {subject} [{guid}]", disposition.as_str());
        let event = m
            .graph
            .event(types::SPEARPHISH, &title, &threatq_date(time));
        m.add_message_event(guid, event);
        for copy in group {
            map_copy(m, event, disposition, copy);
        }
    }
}

fn map_copy(m: &mut Mapping, event: ObjectId, disposition: MessageDisposition, message: &Message) {
    let f = &message.fields;
    let g = &mut m.graph;
    g.attribute(event, attr::MESSAGE_GUID, &message.guid);
    let text_attributes = [
        (attr::MESSAGE_ID, &f.message_id),
        (attr::QID, &f.qid),
        (attr::SENDER, &f.sender),
        (attr::SENDER_IP, &f.sender_ip),
        (attr::QUARANTINE_FOLDER, &f.quarantine_folder),
        (attr::QUARANTINE_RULE, &f.quarantine_rule),
        (attr::CLUSTER, &f.cluster),
    ];
    for (name, value) in text_attributes {
        if let Some(value) = value {
            g.attribute(event, name, value);
        }
    }
    let list_attributes = [
        (attr::RECIPIENT, &f.recipient),
        (attr::FROM, &f.from_address),
        (attr::REPLY_TO, &f.reply_to_address),
        (attr::TO, &f.to_addresses),
        (attr::CC, &f.cc_addresses),
        (attr::POLICY_ROUTE, &f.policy_routes),
        (attr::MODULE_RUN, &f.modules_run),
    ];
    for (name, values) in list_attributes {
        for value in values {
            g.attribute(event, name, value);
        }
    }
    let number_attributes = [
        (attr::SPAM_SCORE, f.spam_score),
        (attr::PHISH_SCORE, f.phish_score),
        (attr::MALWARE_SCORE, f.malware_score),
        (attr::IMPOSTOR_SCORE, f.impostor_score),
        (attr::MESSAGE_SIZE, f.message_size),
    ];
    for (name, value) in number_attributes {
        if let Some(value) = value {
            g.attribute(event, name, &value.to_string());
        }
    }
    if let Some(rewritten) = f.completely_rewritten {
        g.attribute(event, attr::COMPLETELY_REWRITTEN, rewritten.as_str());
    }
    g.attribute(event, attr::DISPOSITION, disposition.as_str());

    let addresses = f
        .sender
        .iter()
        .chain(&f.from_address)
        .chain(&f.reply_to_address);
    for address in addresses
        .filter_map(|a| email_address(a))
        .collect::<Vec<_>>()
    {
        related_indicator(m, event, types::EMAIL_ADDRESS, &address);
    }
    if let Some((type_name, ip)) = f.sender_ip.as_deref().and_then(ip_address) {
        related_indicator(m, event, type_name, &ip);
    }
    if let Some(subject) = f.subject.as_deref().map(one_line).filter(|s| !s.is_empty()) {
        related_indicator(m, event, types::EMAIL_SUBJECT, &subject);
    }
    if let Some(xmailer) = f.xmailer.as_deref().map(one_line).filter(|s| !s.is_empty()) {
        related_indicator(m, event, types::X_MAILER, &xmailer);
    }
    for threat in Threat::of_message(message) {
        map_threat(m, event, &threat);
    }
    for part in &f.message_parts {
        map_part(m, event, part);
    }
}

fn related_indicator(m: &mut Mapping, event: ObjectId, type_name: &str, value: &str) {
    if let Some(indicator) = m.indicator(type_name, value) {
        m.graph.relate(event, indicator);
    }
}

/// An attached part becomes MD5, SHA-256 and Filename indicators (related
/// to the event and to each other, as they describe one file). Anything
/// else is part of the message body and only an event attribute.
fn map_part(m: &mut Mapping, event: ObjectId, part: &MessagePart) {
    let filename = present(part.filename.as_deref()).map(one_line);
    if part.disposition != Some(PartDisposition::Attached) {
        let mut description = filename.clone().unwrap_or_else(|| "(unnamed)".to_string());
        if let Some(content_type) = present(part.content_type.as_deref()) {
            description.push_str(&format!(" ({content_type})"));
        }
        // The attribute describes what TAP sent, so the hash is kept as
        // TAP wrote it (only blanks around it dropped), even when it is not
        // 64 hex digits: unlike an attachment's, it makes no indicator.
        if let Some(hash) = present(part.sha256.as_deref()) {
            description.push_str(&format!(" SHA-256 {hash}"));
        }
        m.graph
            .attribute(event, attr::MESSAGE_BODY_PART, &description);
        return;
    }
    let candidates = [
        part.md5.as_deref().and_then(md5).map(|v| (types::MD5, v)),
        part.sha256
            .as_deref()
            .and_then(sha256)
            .map(|v| (types::SHA256, v)),
        filename.map(|v| (types::FILENAME, v)),
    ];
    let mut file_indicators = Vec::new();
    for (type_name, value) in candidates.into_iter().flatten() {
        let Some(indicator) = m.indicator(type_name, &value) else {
            continue;
        };
        if let Some(content_type) = present(part.content_type.as_deref()) {
            m.graph
                .attribute(indicator, attr::CONTENT_TYPE, content_type);
        }
        if let Some(status) = &part.sandbox_status {
            m.graph
                .attribute(indicator, attr::SANDBOX_STATUS, status.as_str());
        }
        m.graph.relate(event, indicator);
        for other in &file_indicators {
            m.graph.relate(*other, indicator);
        }
        file_indicators.push(indicator);
    }
}
