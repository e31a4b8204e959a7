//! Hand-written JSON fixtures in TAP's documented shapes.
//!
//! Each `*.json` file of a directory is one of:
//! - a SIEM response: any of `messagesDelivered`, `messagesBlocked`,
//!   `clicksPermitted`, `clicksBlocked` (`queryEndTime` is ignored; the
//!   records are placed by their own times);
//! - a forensics response (`reports`): with a `CAMPAIGN`-scope report, all
//!   its reports answer `campaignId=<that id>`; otherwise each report
//!   answers `threatId=<its id>`;
//! - a campaign (`campaignMembers`, or `id` and `name`).
//!
//! Fixtures carry fixed dates, but TAP serves only the last 7 days, so
//! SIEM fixtures and campaigns are moved in time as they load: a SIEM
//! response so its `queryEndTime` (else its newest record) becomes five
//! minutes ago, a campaign so its newest date becomes ten minutes ago.
//! Spacing between a fixture's times is kept.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::records::{ClickKind, ForensicsScope, MessageKind};
use crate::server::TapSim;
use crate::times::{format_event_time, parse_instant, round_to_minute};

/// The fields holding instants that move with a fixture.
const TIME_KEYS: [&str; 5] = [
    "messageTime",
    "clickTime",
    "threatTime",
    "startDate",
    "lastUpdatedAt",
];

/// Moves every instant under `TIME_KEYS` in `value` by `by`.
fn shift_times(value: &mut Value, by: Duration) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if let Value::String(text) = field {
                    if TIME_KEYS.contains(&key.as_str())
                        && let Ok(t) = parse_instant(text)
                    {
                        *text = format_event_time(t + by);
                    }
                } else {
                    shift_times(field, by);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| shift_times(item, by)),
        _ => {}
    }
}

/// The newest instant under `TIME_KEYS` in `value`.
fn newest_time(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::Object(fields) => fields
            .iter()
            .filter_map(|(key, field)| match field {
                Value::String(text) if TIME_KEYS.contains(&key.as_str()) => {
                    parse_instant(text).ok()
                }
                other => newest_time(other),
            })
            .max(),
        Value::Array(items) => items.iter().filter_map(newest_time).max(),
        _ => None,
    }
}

/// Moves `value` so that `anchor` lands `ago` before now (whole minutes).
fn rebase(value: &mut Value, anchor: Option<OffsetDateTime>, now: OffsetDateTime, ago: Duration) {
    if let Some(anchor) = anchor {
        let target = round_to_minute(now - Duration::seconds(30)) - ago;
        shift_times(value, target - anchor);
    }
}

/// The directory of fixtures shipped with this crate.
pub fn bundled_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

pub(crate) fn load_dir(sim: &TapSim, dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the fixture directory {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list the fixture directory {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    for file in files {
        load_file(sim, &file).with_context(|| format!("fixture {}", file.display()))?;
    }
    Ok(())
}

fn load_file(sim: &TapSim, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).context("cannot read the file")?;
    let mut value: Value = serde_json::from_str(&text).context("the file is not valid JSON")?;
    let now = sim.now();
    let is_siem = |v: &Value| {
        [
            "messagesDelivered",
            "messagesBlocked",
            "clicksPermitted",
            "clicksBlocked",
        ]
        .iter()
        .any(|k| v.get(k).is_some())
    };
    if is_siem(&value) {
        let anchor = value
            .get("queryEndTime")
            .and_then(Value::as_str)
            .and_then(|t| parse_instant(t).ok())
            .or_else(|| newest_time(&value).map(|t| t + Duration::SECOND));
        rebase(&mut value, anchor, now, Duration::minutes(5));
    } else if value.get("campaignMembers").is_some() {
        let anchor = newest_time(&value);
        rebase(&mut value, anchor, now, Duration::minutes(10));
    }
    let Value::Object(fields) = &value else {
        bail!("expected a JSON object (a SIEM response, a campaign or a forensics response)");
    };
    let siem_arrays = [
        ("messagesDelivered", Some(MessageKind::Delivered), None),
        ("messagesBlocked", Some(MessageKind::Blocked), None),
        ("clicksPermitted", None, Some(ClickKind::Permitted)),
        ("clicksBlocked", None, Some(ClickKind::Blocked)),
    ];
    if siem_arrays
        .iter()
        .any(|(key, _, _)| fields.contains_key(*key))
    {
        for (key, message_kind, click_kind) in siem_arrays {
            let records = match fields.get(key) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(records)) => records,
                Some(_) => bail!("{key} must be an array"),
            };
            for (i, record) in records.iter().enumerate() {
                let added = match (message_kind, click_kind) {
                    (Some(kind), _) => sim.add_message(kind, record.clone()),
                    (_, Some(kind)) => sim.add_click(kind, record.clone()),
                    (None, None) => Ok(()),
                };
                added.with_context(|| format!("{key}[{i}]"))?;
            }
        }
        return Ok(());
    }
    if let Some(reports) = fields.get("reports") {
        let Value::Array(reports) = reports else {
            bail!("reports must be an array");
        };
        let campaign_id = reports.iter().find_map(|r| {
            let scope = r.get("scope")?.as_str()?;
            scope
                .eq_ignore_ascii_case("CAMPAIGN")
                .then(|| r.get("id")?.as_str().map(str::to_owned))?
        });
        for (i, report) in reports.iter().enumerate() {
            let scope = match &campaign_id {
                Some(id) => ForensicsScope::Campaign(id.clone()),
                None => {
                    let id = report
                        .get("id")
                        .and_then(Value::as_str)
                        .with_context(|| format!("reports[{i}] has no string id"))?;
                    ForensicsScope::Threat(id.to_owned())
                }
            };
            sim.add_forensics(scope, report.clone())
                .with_context(|| format!("reports[{i}]"))?;
        }
        return Ok(());
    }
    if fields.contains_key("campaignMembers")
        || (fields.contains_key("id") && fields.contains_key("name"))
    {
        return sim.add_campaign(value.clone());
    }
    bail!(
        "not a SIEM response, campaign or forensics response: expected one of messagesDelivered, messagesBlocked, clicksPermitted, clicksBlocked, reports or campaignMembers"
    )
}
