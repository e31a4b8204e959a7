//! The Campaign API's answer (`/v2/campaign/{id}`).

use serde::Deserialize;

use super::lenient::{self, opt_enum, opt_flag, opt_text};
use super::siem::{ThreatStatus, ThreatType};

/// An `{id, name}` entry of `actors`, `malware`, `techniques`, `families`
/// or `brands`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Named {
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub name: Option<String>,
}

/// A campaign member: one threat (URL or attachment) of the campaign.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CampaignMember {
    /// The threat ID.
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    /// The URL or the attachment's SHA-256.
    #[serde(default, deserialize_with = "opt_text")]
    pub threat: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "opt_enum")]
    pub threat_type: Option<ThreatType>,
    #[serde(rename = "subType", default, deserialize_with = "opt_text")]
    pub sub_type: Option<String>,
    #[serde(rename = "threatStatus", default, deserialize_with = "opt_enum")]
    pub threat_status: Option<ThreatStatus>,
    #[serde(rename = "threatTime", default, deserialize_with = "opt_text")]
    pub threat_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Campaign {
    #[serde(default, deserialize_with = "opt_text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub description: Option<String>,
    #[serde(rename = "startDate", default, deserialize_with = "opt_text")]
    pub start_date: Option<String>,
    #[serde(default, deserialize_with = "opt_flag")]
    pub notable: Option<bool>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub actors: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub malware: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub techniques: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub families: Vec<Named>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub brands: Vec<Named>,
    #[serde(
        rename = "campaignMembers",
        default,
        deserialize_with = "lenient::list"
    )]
    pub campaign_members: Vec<CampaignMember>,
}

/// Parses a campaign body; the error names line and column.
pub fn parse_campaign(body: &[u8]) -> Result<Campaign, String> {
    let text = String::from_utf8_lossy(body);
    serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| e.to_string())
}
