//! Clicks on the URL threats of delivered messages.

use time::{Duration, OffsetDateTime};

use super::dice::{self, Dice};
use super::messages::threat_link;
use super::threats::Threat;
use crate::records::{ClickEvent, ClickKind, MessageEvent};

pub struct ClickParams<'a> {
    pub end: OffsetDateTime,
    pub org_id: &'a str,
    pub blocked_fraction: f64,
    pub late_fraction: f64,
}

/// A click at `at` by the recipient of `copy` on the URL `threat`.
pub fn click(
    dice: &mut Dice,
    at: OffsetDateTime,
    copy: &MessageEvent,
    threat: &Threat,
    p: &ClickParams,
) -> (ClickKind, ClickEvent) {
    let kind = if dice.chance(p.blocked_fraction) {
        ClickKind::Blocked
    } else {
        ClickKind::Permitted
    };
    let latest = p.end - Duration::SECOND;
    // A blocked click needs a verdict before it; a permitted one may be
    // condemned afterwards (the late verdict that moves it to a later window).
    let late = kind == ClickKind::Permitted && dice.chance(p.late_fraction);
    let threat_time = if late {
        (at + Duration::minutes(dice.between(5, 180) as i64)).min(latest)
    } else {
        at - Duration::seconds(dice.between(1, 3_600) as i64)
    };
    let event = ClickEvent {
        campaign_id: threat.campaign_id.clone(),
        classification: threat.classification.clone(),
        click_ip: dice.ip(),
        click_time: at,
        guid: copy.guid.clone(),
        id: dice.uuid(),
        message_id: copy.message_id.clone(),
        recipient: copy.recipient.first().cloned().unwrap_or_default(),
        sender: copy.sender.clone(),
        sender_ip: copy.sender_ip.clone(),
        threat_id: threat.id.clone(),
        threat_status: threat.status,
        threat_time,
        threat_url: threat_link(p.org_id, &threat.id),
        url: threat.value.clone(),
        user_agent: dice.pick(dice::USER_AGENTS).to_string(),
    };
    (kind, event)
}
