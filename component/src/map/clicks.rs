//! `clicksPermitted` / `clicksBlocked`: one Spearphish event per click, and
//! for permitted clicks (when the setting is on) one Incident event.

use super::Mapping;
use super::graph::ObjectId;
use super::names::{attributes as attr, types};
use super::threats::{Threat, map_threat};
use super::values::{email_address, ip_address, present};
use crate::dates::threatq_date;
use crate::tap::siem::Click;

/// Which array a click came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickDisposition {
    Permitted,
    Blocked,
}

impl ClickDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            ClickDisposition::Permitted => "Permitted",
            ClickDisposition::Blocked => "Blocked",
        }
    }
}

pub fn map_clicks(
    m: &mut Mapping,
    disposition: ClickDisposition,
    clicks: &[&Click],
    create_incidents: bool,
) {
    for click in clicks {
        let happened_at = threatq_date(click.time);
        let title = format!(
            "TAP Click {}: {} [{}]",
            disposition.as_str(),
            click.url,
            click.title_id
        );
        let event = m.graph.event(types::SPEARPHISH, &title, &happened_at);
        add_click_attributes(m, event, disposition, click);
        let threat = Threat::of_click(click);
        let url_indicator = map_threat(m, event, &threat);
        let f = &click.fields;
        if let Some((type_name, ip)) = f.sender_ip.as_deref().and_then(ip_address)
            && let Some(indicator) = m.indicator(type_name, &ip)
        {
            m.graph.relate(event, indicator);
        }
        if let Some(address) = f.sender.as_deref().and_then(email_address)
            && let Some(indicator) = m.indicator(types::EMAIL_ADDRESS, &address)
        {
            m.graph.relate(event, indicator);
        }
        m.add_click_event(f.guid.as_deref(), event);

        // An incident asks an analyst to act; a click on a threat TAP has
        // since judged a false positive needs no action.
        let wants_incident = create_incidents
            && disposition == ClickDisposition::Permitted
            && !threat.is_false_positive_status();
        if wants_incident {
            let recipient = f
                .recipient
                .iter()
                .find_map(|r| present(Some(r)))
                .unwrap_or("(unknown recipient)");
            let title = format!(
                "TAP Incident: {recipient} clicked {} [{}]",
                click.url, click.title_id
            );
            let incident = m.graph.event(types::INCIDENT, &title, &happened_at);
            add_click_attributes(m, incident, disposition, click);
            super::threats::add_event_attributes(m, incident, &threat);
            m.graph.relate(incident, event);
            // The incident belongs to the message as the click does.
            m.add_click_event(f.guid.as_deref(), incident);
            if let Some(url) = url_indicator {
                m.graph.relate(incident, url);
                // The incident carries the threat as its click does: what
                // the threat's summary names is related to it too.
                if let Some(id) = threat.threat_id {
                    m.note_threat_event(id, incident);
                }
            }
            if let Some(campaign) = threat.campaign_id {
                m.mention_campaign(incident, campaign);
            }
        }
    }
}

/// Recipient, Click IP, User Agent, Click ID, Message GUID, Message ID and
/// Disposition (the threat attributes come with the threat).
fn add_click_attributes(
    m: &mut Mapping,
    event: ObjectId,
    disposition: ClickDisposition,
    click: &Click,
) {
    let f = &click.fields;
    let g = &mut m.graph;
    for recipient in &f.recipient {
        g.attribute(event, attr::RECIPIENT, recipient);
    }
    let text_attributes = [
        (attr::CLICK_IP, &f.click_ip),
        (attr::USER_AGENT, &f.user_agent),
        (attr::CLICK_ID, &f.id),
        (attr::MESSAGE_GUID, &f.guid),
        (attr::MESSAGE_ID, &f.message_id),
    ];
    for (name, value) in text_attributes {
        if let Some(value) = value {
            g.attribute(event, name, value);
        }
    }
    g.attribute(event, attr::DISPOSITION, disposition.as_str());
}
