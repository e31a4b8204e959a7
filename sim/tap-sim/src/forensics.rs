//! `/v2/forensics?threatId=` and `/v2/forensics?campaignId=`.

use http::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use crate::params::Params;
use crate::pools::Pool;
use crate::reply::Reply;
use crate::store::Store;
use crate::times::format_event_time;

/// Which forensics question a request asks, once its parameters are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Threat { id: String, include_campaign: bool },
    Campaign { id: String },
}

impl Query {
    /// TAP throttles the two kinds of question in different pools.
    pub fn pool(&self) -> Pool {
        match self {
            Query::Threat { .. } => Pool::ForensicsThreat,
            Query::Campaign { .. } => Pool::ForensicsCampaign,
        }
    }
}

/// Reads the parameters; `Err` is a 400 body.
pub fn parse(params: &Params) -> Result<Query, String> {
    let include = params.single("includeCampaignForensics")?;
    let include_campaign = match include {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(format!(
                "includeCampaignForensics must be true or false; got '{other}'"
            ));
        }
    };
    match (params.single("threatId")?, params.single("campaignId")?) {
        (Some(id), None) => Ok(Query::Threat {
            id: id.to_owned(),
            include_campaign,
        }),
        (None, Some(_)) if include.is_some() => {
            Err("includeCampaignForensics may only be used with threatId.".to_owned())
        }
        (None, Some(id)) => Ok(Query::Campaign { id: id.to_owned() }),
        _ => Err("Exactly one of threatId or campaignId must be supplied.".to_owned()),
    }
}

/// The reports for a query; 404 `threatId not found` (or `campaignId not
/// found`) when none are loaded.
pub fn answer(store: &Store, query: &Query, now: OffsetDateTime) -> Reply {
    let reports = match query {
        Query::Threat {
            id,
            include_campaign,
        } => {
            let mut reports = store.threat_reports(id);
            if reports.is_empty() {
                return Reply::text(StatusCode::NOT_FOUND, "threatId not found");
            }
            if *include_campaign && let Some(campaign) = store.campaign_of_threat(id) {
                reports.extend(store.campaign_scope_reports(campaign));
            }
            reports
        }
        Query::Campaign { id } => match store.campaign_reports(id) {
            Some(reports) => reports.clone(),
            None => return Reply::text(StatusCode::NOT_FOUND, "campaignId not found"),
        },
    };
    Reply::json(json!({"generated": format_event_time(now), "reports": reports}).to_string())
}
