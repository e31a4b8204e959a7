//! One `sync(settings, window)` call, top to bottom: check the input, read
//! the SIEM window, decode each record, skip what was already sent, map,
//! enrich with threat summaries, campaigns and forensics within the
//! allowances, mark the events of listed people, and count.
//!
//! `map_records(settings, records)` is the same call without the SIEM
//! request: the records the host kept (rejections of an earlier call) go
//! through the very same decode, map and enrichment steps (`Call::map`).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use serde_json::value::RawValue;

use crate::bindings::{
    CampaignRef, Counters, EnrichmentReport, NamedRef, QuarantinedRecord, RecordKey, Rejection,
    Settings, SummaryRef, SyncError, SyncResult, ThreatRef, Window,
};
use crate::dates::{parse_rfc3339, rfc3339_utc};
use crate::map::Mapping;
use crate::map::campaigns::{map_campaign, map_known_campaign};
use crate::map::clicks::{ClickDisposition, map_clicks};
use crate::map::forensics::{EvidenceTally, Origin, map_forensics};
use crate::map::graph::ObjectId;
use crate::map::messages::{MessageDisposition, map_messages};
use crate::map::names::types;
use crate::map::people::mark_people;
use crate::map::summaries::{map_summary, relate_named};
use crate::map::threats::{Threat, false_positives, note_verdicts};
use crate::tap::campaign::parse_campaign;
use crate::tap::endpoints::{self, SIEM_ALL};
use crate::tap::errors::{status_error, stops_all_requests, tap_message};
use crate::tap::forensics::parse_forensics;
use crate::tap::siem::{
    Click, Message, Section, SiemEnvelope, decode_click_text, decode_message_text, parse_envelope,
};
use crate::tap::summary::parse_summary;
use crate::transport::{HostServices, LogLevel, TapBaseUrl, TapResponse, Transport, logged_get};

/// Rejections are each returned to the host; only this many are also
/// logged here, so one broken window cannot flood the log.
const MAX_LOGGED_REJECTIONS: usize = 20;
/// After this many summary requests in a row that TAP failed (a 5xx, a
/// body that does not read), the Threat API is taken to be down for the
/// call: the other summaries are deferred rather than each spent on it.
const SUMMARY_FAILURES_IN_A_ROW: u32 = 3;

/// Runs one call. `connect` builds the transport for the validated base URL.
/// `settings.credentials` is not read here: whoever builds the transport
/// sends them (the wasm export turns them into `Authorization: Basic`).
pub fn sync<T, H, C>(
    settings: &Settings,
    window: &Window,
    connect: C,
    host: &mut H,
) -> Result<SyncResult, SyncError>
where
    T: Transport,
    H: HostServices,
    C: FnOnce(TapBaseUrl) -> T,
{
    let started_ms = host.now_ms();
    let base = TapBaseUrl::parse(&settings.tap_base_url).map_err(SyncError::InvalidInput)?;
    let (start, end) = validate_window(window)?;
    let mut call = Call::new(connect(base), host);
    let envelope = call.fetch_siem(&start, &end)?;
    let query_end_time = call.query_end_time(&envelope, window);
    let records = RawRecords::of_envelope(&envelope);
    let result = call.map(settings, &records, Vec::new(), query_end_time);
    let elapsed_ms = call.host.now_ms().saturating_sub(started_ms);
    let scope = [
        ("window", format!("{}/{}", window.start, window.end)),
        ("query_end_time", result.query_end_time.clone()),
    ];
    call.log_summary("TAP window mapped", &scope, &result, elapsed_ms);
    Ok(result)
}

/// Maps SIEM records kept by the host as `sync` maps them when they come
/// in a `/v2/siem/all` body holding just these records (each section's
/// records in the order given), enrichment included, without a SIEM
/// request. `query_end_time` is empty: this is not a checkpoint. A record
/// of an unknown section is a rejection, after those of the body.
pub fn map_records<T, H, C>(
    settings: &Settings,
    records: &[QuarantinedRecord],
    connect: C,
    host: &mut H,
) -> Result<SyncResult, SyncError>
where
    T: Transport,
    H: HostServices,
    C: FnOnce(TapBaseUrl) -> T,
{
    let started_ms = host.now_ms();
    let base = TapBaseUrl::parse(&settings.tap_base_url).map_err(SyncError::InvalidInput)?;
    let mut call = Call::new(connect(base), host);
    let mut raw = RawRecords::default();
    let mut unknown = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match Section::from_name(&record.section) {
            Some(section) => raw.section_mut(section).push(&record.raw),
            None => unknown.push(Rejection {
                key: format!("records[{index}]"),
                reason: format!(
                    "unknown SIEM section `{}`; expected one of {}",
                    record.section,
                    Section::ALL.map(Section::name).join(", ")
                ),
                section: record.section.clone(),
                raw: record.raw.clone(),
            }),
        }
    }
    let result = call.map(settings, &raw, unknown, String::new());
    let elapsed_ms = call.host.now_ms().saturating_sub(started_ms);
    let scope = [("records", records.len().to_string())];
    call.log_summary(
        "TAP quarantined records mapped",
        &scope,
        &result,
        elapsed_ms,
    );
    Ok(result)
}

/// Both bounds RFC 3339, start before end; returned as the UTC `...Z` form
/// TAP's `interval` takes.
fn validate_window(window: &Window) -> Result<(String, String), SyncError> {
    let start = parse_rfc3339(&window.start)
        .map_err(|e| SyncError::InvalidInput(format!("window.start: {e}")))?;
    let end = parse_rfc3339(&window.end)
        .map_err(|e| SyncError::InvalidInput(format!("window.end: {e}")))?;
    if start >= end {
        return Err(SyncError::InvalidInput(format!(
            "window.start `{}` must be before window.end `{}`",
            window.start, window.end
        )));
    }
    Ok((rfc3339_utc(start), rfc3339_utc(end)))
}

struct Call<'h, T, H> {
    transport: T,
    host: &'h mut H,
    counters: Counters,
    /// Set once an enrichment request shows that further requests would
    /// fail the same way (401/403/429, or no answer at all).
    enrichment_stopped: Option<String>,
    /// Set when the Threat API answered 403 or 429: a licence or a pool of
    /// its own, so the other enrichment goes on.
    summaries_stopped: bool,
}

/// The ids to enrich, in order: the host's queue in the host's order
/// (oldest first), each once, then the window's own (sorted) not queued.
fn queued_first<'a>(queued: &[String], own: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut wanted: Vec<String> = queued
        .iter()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && seen.insert(id.clone()))
        .collect();
    wanted.extend(
        own.filter(|id| seen.insert((*id).to_string()))
            .map(str::to_string),
    );
    wanted
}

/// The indicator a threat's summary is mapped onto, and the reference a
/// deferral hands back: the indicator this call made for the threat, else
/// the one the queue names (made here as its bare identity, which
/// ThreatQ's upsert matches). `None` when there is none to make.
fn summary_target(
    m: &mut Mapping,
    threat_id: &str,
    queued: Option<&ThreatRef>,
) -> Option<(ObjectId, ThreatRef)> {
    let indicator = match m.threat_indicator(threat_id) {
        Some(indicator) => indicator,
        None => {
            let queued = queued?;
            let type_name = [types::URL, types::SHA256, types::EMAIL_ADDRESS]
                .into_iter()
                .find(|t| *t == queued.indicator_type.trim())?;
            m.indicator(type_name, queued.indicator_value.trim())?
        }
    };
    let object = m.graph.get(indicator)?;
    let threat_ref = ThreatRef {
        threat_id: threat_id.to_string(),
        indicator_type: object.type_name.clone().unwrap_or_default(),
        indicator_value: object.value.clone(),
    };
    Some((indicator, threat_ref))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The SIEM records to map, as JSON text, by section (indexed by
/// `Section as usize`), each in body order: the elements of one SIEM body,
/// or the records of one `map_records` call.
#[derive(Default)]
struct RawRecords<'a>([Vec<&'a str>; 4]);

impl<'a> RawRecords<'a> {
    fn of_envelope(envelope: &'a SiemEnvelope) -> RawRecords<'a> {
        fn text(array: &Option<Vec<Box<RawValue>>>) -> Vec<&str> {
            array.iter().flatten().map(|raw| raw.get()).collect()
        }
        RawRecords([
            text(&envelope.messages_delivered),
            text(&envelope.messages_blocked),
            text(&envelope.clicks_permitted),
            text(&envelope.clicks_blocked),
        ])
    }

    fn section(&self, section: Section) -> &[&'a str] {
        &self.0[section as usize]
    }

    fn section_mut(&mut self, section: Section) -> &mut Vec<&'a str> {
        &mut self.0[section as usize]
    }
}

/// Decodes the elements of one SIEM array, logging the first rejections.
struct ArrayReader<'c, 'h, T, H> {
    call: &'c mut Call<'h, T, H>,
    rejections: &'c mut Vec<Rejection>,
}

impl<T: Transport, H: HostServices> ArrayReader<'_, '_, T, H> {
    fn read<R>(
        &mut self,
        section: Section,
        values: &[&str],
        decode: fn(&str, usize, &str) -> Result<R, Rejection>,
        out: &mut Vec<R>,
    ) {
        for (index, value) in values.iter().enumerate() {
            match decode(section.name(), index, value) {
                Ok(record) => out.push(record),
                Err(rejection) => self.call.reject(self.rejections, rejection),
            }
        }
    }
}

/// The SIEM records of one window that decoded.
#[derive(Default)]
struct Records {
    delivered: Vec<Message>,
    blocked: Vec<Message>,
    permitted: Vec<Click>,
    clicks_blocked: Vec<Click>,
}

impl<'h, T: Transport, H: HostServices> Call<'h, T, H> {
    fn new(transport: T, host: &'h mut H) -> Self {
        Call {
            transport,
            host,
            counters: Counters::default(),
            enrichment_stopped: None,
            summaries_stopped: false,
        }
    }

    fn log(&mut self, level: LogLevel, message: &str, fields: &[(&str, String)]) {
        self.host.log(level, message, fields);
    }

    /// Adds a rejection, logging it while fewer than
    /// `MAX_LOGGED_REJECTIONS` came before it.
    fn reject(&mut self, rejections: &mut Vec<Rejection>, rejection: Rejection) {
        if rejections.len() < MAX_LOGGED_REJECTIONS {
            self.log(
                LogLevel::Warn,
                "TAP record rejected",
                &[
                    ("record", rejection.key.clone()),
                    ("reason", rejection.reason.clone()),
                ],
            );
        }
        rejections.push(rejection);
    }

    fn get(&mut self, path: &str) -> Result<TapResponse, String> {
        logged_get(&mut self.transport, self.host, path)
    }

    fn fetch_siem(&mut self, start: &str, end: &str) -> Result<SiemEnvelope, SyncError> {
        let path = endpoints::siem_all(start, end);
        self.counters.siem_requests += 1;
        let response = self
            .get(&path)
            .map_err(|e| SyncError::Transport(format!("GET {SIEM_ALL}: {e}")))?;
        match response.status {
            204 => Ok(SiemEnvelope::default()),
            200..=299 => parse_envelope(&response.body).map_err(|e| {
                SyncError::BadResponse(format!(
                    "{SIEM_ALL} answered {} with a body that is not the JSON TAP documents: {e}",
                    response.status
                ))
            }),
            status => Err(status_error(SIEM_ALL, status, &response.body)),
        }
    }

    /// TAP's `queryEndTime`, or the window's end when TAP gave none (a 204,
    /// or a body without it). A value that is not a timestamp is not used
    /// as a checkpoint; the requested end is, with a warning.
    fn query_end_time(&mut self, envelope: &SiemEnvelope, window: &Window) -> String {
        match &envelope.query_end_time {
            None | Some(Value::Null) => window.end.clone(),
            Some(Value::String(s)) if parse_rfc3339(s).is_ok() => s.trim().to_string(),
            Some(other) => {
                self.log(
                    LogLevel::Warn,
                    "TAP's queryEndTime is not an RFC 3339 timestamp; using the requested window end",
                    &[("queryEndTime", other.to_string()), ("window_end", window.end.clone())],
                );
                window.end.clone()
            }
        }
    }

    /// Decodes, skips what was already sent, maps and enriches `raw`; the
    /// step `sync` and `map_records` share. `more_rejections` (records that
    /// never reached a decoder) follow the decode rejections.
    fn map(
        &mut self,
        settings: &Settings,
        raw: &RawRecords<'_>,
        more_rejections: Vec<Rejection>,
        query_end_time: String,
    ) -> SyncResult {
        let mut rejections = Vec::new();
        let records = self.decode(raw, &mut rejections);
        for rejection in more_rejections {
            self.reject(&mut rejections, rejection);
        }
        if rejections.len() > MAX_LOGGED_REJECTIONS {
            self.log(
                LogLevel::Warn,
                "more TAP records rejected than logged individually",
                &[("rejected", rejections.len().to_string())],
            );
        }
        let already_sent: HashSet<&str> =
            settings.already_sent.iter().map(String::as_str).collect();
        let mut record_keys = Vec::new();
        let mut emitted = HashSet::new();
        let mut keep = |key: &str, created_ms: i64, counters: &mut Counters| -> bool {
            if already_sent.contains(key) {
                counters.already_sent_skipped += 1;
                return false;
            }
            if emitted.insert(key.to_string()) {
                record_keys.push(RecordKey {
                    key: key.to_string(),
                    created_ms,
                });
            }
            true
        };
        let c = &mut self.counters;
        let delivered: Vec<&Message> = records
            .delivered
            .iter()
            .filter(|r| keep(&r.key, r.created_ms, c))
            .collect();
        let blocked: Vec<&Message> = records
            .blocked
            .iter()
            .filter(|r| keep(&r.key, r.created_ms, c))
            .collect();
        let permitted: Vec<&Click> = records
            .permitted
            .iter()
            .filter(|r| keep(&r.key, r.created_ms, c))
            .collect();
        let clicks_blocked: Vec<&Click> = records
            .clicks_blocked
            .iter()
            .filter(|r| keep(&r.key, r.created_ms, c))
            .collect();

        let all_messages: Vec<&Message> = delivered.iter().chain(&blocked).copied().collect();
        let all_clicks: Vec<&Click> = permitted.iter().chain(&clicks_blocked).copied().collect();
        let (false_positive_values, false_positive_count) =
            false_positives(&all_messages, &all_clicks);
        self.counters.false_positives = false_positive_count;

        let mut m = Mapping::new(false_positive_values);
        // TAP's word on each threat comes from every record read, those
        // already sent included (docs/mapping.md, "Verdict changes").
        let messages_read = records.delivered.iter().chain(&records.blocked);
        let clicks_read = records.permitted.iter().chain(&records.clicks_blocked);
        note_verdicts(
            &mut m,
            messages_read
                .flat_map(Threat::of_message)
                .chain(clicks_read.map(Threat::of_click)),
        );
        map_messages(&mut m, MessageDisposition::Delivered, &delivered);
        map_messages(&mut m, MessageDisposition::Blocked, &blocked);
        map_clicks(
            &mut m,
            ClickDisposition::Permitted,
            &permitted,
            settings.create_incidents,
        );
        map_clicks(
            &mut m,
            ClickDisposition::Blocked,
            &clicks_blocked,
            settings.create_incidents,
        );

        let mut enrichment = EnrichmentReport::default();
        // Summaries first: TAP throttles none of them, so a 429 of a
        // scarce forensics pool stopping enrichment must not cost them.
        self.enrich_summaries(&mut m, settings, &mut enrichment);
        let campaigns_fetched = self.enrich_campaigns(&mut m, settings, &mut enrichment);
        self.enrich_threats(&mut m, settings, &mut enrichment);
        self.counters.people_marked_events = mark_people(&mut m, &settings.people);

        let mapped = m.finish();
        SyncResult {
            query_end_time,
            objects: mapped.objects,
            relations: mapped.relations,
            rejections,
            record_keys,
            campaigns_fetched,
            message_events: mapped.message_events,
            unresolved_messages: mapped.unresolved_messages,
            unresolved_campaigns: mapped.unresolved_campaigns,
            enrichment,
            verdicts: mapped.verdicts,
            counters: self.counters,
        }
    }

    /// Decodes every array element on its own; the ones that fail become
    /// rejections. Every element counts as read, mapped or not.
    fn decode(&mut self, raw: &RawRecords<'_>, rejections: &mut Vec<Rejection>) -> Records {
        let mut records = Records::default();
        let mut reader = ArrayReader {
            call: self,
            rejections,
        };
        let c = &mut reader;
        let (delivered, blocked, permitted, clicks_blocked) = (
            raw.section(Section::MessagesDelivered),
            raw.section(Section::MessagesBlocked),
            raw.section(Section::ClicksPermitted),
            raw.section(Section::ClicksBlocked),
        );
        c.read(
            Section::MessagesDelivered,
            delivered,
            decode_message_text,
            &mut records.delivered,
        );
        c.read(
            Section::MessagesBlocked,
            blocked,
            decode_message_text,
            &mut records.blocked,
        );
        c.read(
            Section::ClicksPermitted,
            permitted,
            decode_click_text,
            &mut records.permitted,
        );
        c.read(
            Section::ClicksBlocked,
            clicks_blocked,
            decode_click_text,
            &mut records.clicks_blocked,
        );
        let counters = &mut self.counters;
        counters.messages_delivered = count(delivered.len());
        counters.messages_blocked = count(blocked.len());
        counters.clicks_permitted = count(permitted.len());
        counters.clicks_blocked = count(clicks_blocked.len());
        records
    }

    /// One enrichment GET: the body of a 2xx, else the status TAP answered
    /// (`None`: no answer). The reason is logged; after 401/403/429 or no
    /// answer, later enrichment requests in this call are skipped (the SIEM
    /// data still maps).
    fn enrichment_get(&mut self, path: &str) -> Result<Vec<u8>, Option<u16>> {
        let endpoint = endpoints::endpoint_of(path).to_string();
        let response = match self.get(path) {
            Ok(response) => response,
            Err(e) => {
                self.stop_enrichment(&endpoint, format!("no answer: {e}"));
                return Err(None);
            }
        };
        match response.status {
            200..=299 => Ok(response.body),
            status => {
                let message = tap_message(&response.body);
                if stops_all_requests(status) {
                    self.stop_enrichment(&endpoint, format!("TAP answered {status} {message}"));
                } else {
                    self.log(
                        LogLevel::Warn,
                        "TAP enrichment request failed; the SIEM data still maps without it",
                        &[
                            ("endpoint", endpoint),
                            ("status", status.to_string()),
                            ("message", message),
                        ],
                    );
                }
                Err(Some(status))
            }
        }
    }

    fn stop_enrichment(&mut self, endpoint: &str, reason: String) {
        self.log(
            LogLevel::Warn,
            "TAP enrichment stopped for this window; the SIEM data still maps",
            &[
                ("endpoint", endpoint.to_string()),
                ("reason", reason.clone()),
            ],
        );
        self.enrichment_stopped = Some(reason);
    }

    /// Campaigns the host holds as fresh are related by name; the queued
    /// ones, then the ones this window names for the first time, are
    /// fetched (campaign, then its forensics) while the allowance lasts:
    /// the queue in the host's order, the window's sorted. The rest, and a
    /// campaign whose forensics TAP did not give, are reported deferred.
    fn enrich_campaigns(
        &mut self,
        m: &mut Mapping,
        settings: &Settings,
        report: &mut EnrichmentReport,
    ) -> Vec<CampaignRef> {
        let wanted = queued_first(&settings.queued_campaigns, m.campaigns_seen());
        let mut fetched = Vec::new();
        let mut allowance = settings.campaign_allowance;
        for id in &wanted {
            // A known campaign without a name could not be related (the name
            // is its identity), so it is fetched like a new one.
            let known = settings
                .known_campaigns
                .iter()
                .find(|k| k.id.trim() == id && !k.name.trim().is_empty());
            if let Some(known) = known {
                map_known_campaign(m, known);
                continue;
            }
            if self.enrichment_stopped.is_some() || allowance == 0 {
                report.campaigns_deferred.push(id.clone());
                continue;
            }
            allowance -= 1;
            self.counters.campaign_requests += 1;
            if let Ok(body) = self.enrichment_get(&endpoints::campaign(id)) {
                match parse_campaign(&body) {
                    Ok(campaign) => fetched.push(map_campaign(m, id, &campaign)),
                    Err(e) => self.log(
                        LogLevel::Warn,
                        "TAP campaign answer is not the JSON TAP documents; the Campaign ID attribute is kept",
                        &[("campaign_id", id.clone()), ("error", e)],
                    ),
                }
            }
            if self.enrichment_stopped.is_some() {
                report.campaigns_deferred.push(id.clone());
                continue;
            }
            self.counters.campaign_forensics_requests += 1;
            let campaign = m.campaign_object(id);
            let answered = self.forensics(
                m,
                &endpoints::campaign_forensics(id),
                Origin::Campaign { campaign },
            );
            if !answered {
                // Its details may have mapped, but what TAP did not give
                // is owed: the campaign is asked again, not held as fresh.
                fetched.retain(|c: &CampaignRef| c.id != *id);
                report.campaigns_deferred.push(id.clone());
            }
        }
        if !report.campaigns_deferred.is_empty() {
            self.log(
                LogLevel::Info,
                "campaigns left for a later call (allowance used up or enrichment stopped)",
                &[("campaigns", report.campaigns_deferred.len().to_string())],
            );
        }
        fetched
    }

    /// Forensics by threat id: the queued threats first (in the host's
    /// order), then this window's threats without a campaign (sorted), each
    /// once, skipping the ones the host holds as fresh, while the allowance
    /// lasts. A threat TAP answered for (reports, or a 404) is reported
    /// enriched; the rest deferred.
    fn enrich_threats(
        &mut self,
        m: &mut Mapping,
        settings: &Settings,
        report: &mut EnrichmentReport,
    ) {
        let fresh: HashSet<&str> = settings.fresh_threats.iter().map(|t| t.trim()).collect();
        let wanted = queued_first(&settings.queued_threats, m.threats_without_campaign());
        let mut allowance = settings.threat_forensics_allowance;
        for threat_id in wanted.iter().filter(|id| !fresh.contains(id.as_str())) {
            if self.enrichment_stopped.is_some() || allowance == 0 {
                self.counters.threat_forensics_deferred += 1;
                report.threats_deferred.push(threat_id.clone());
                continue;
            }
            allowance -= 1;
            self.counters.threat_forensics_requests += 1;
            let answered = self.forensics(
                m,
                &endpoints::threat_forensics(threat_id),
                Origin::Threat { threat_id },
            );
            if answered {
                report.threats_enriched.push(threat_id.clone());
            } else {
                self.counters.threat_forensics_deferred += 1;
                report.threats_deferred.push(threat_id.clone());
            }
        }
    }

    /// Threat summaries: the queued ones first (in the host's order), then
    /// this call's SIEM threats that became indicators (sorted), each
    /// once, skipping those the host holds as fresh, while the allowance
    /// lasts. A summary TAP answered (or a 404: it has nothing to add) is
    /// reported summarised, with what it named; the rest deferred, with the
    /// indicator each belongs to so a later call can map it there. The
    /// events of a threat the host holds as fresh are related to what its
    /// summary named, so what ThreatQ holds does not depend on which call
    /// fetched the summary.
    fn enrich_summaries(
        &mut self,
        m: &mut Mapping,
        settings: &Settings,
        report: &mut EnrichmentReport,
    ) {
        let fresh: HashMap<&str, &SummaryRef> = settings
            .summarised_threats
            .iter()
            .map(|t| (t.threat_id.trim(), t))
            .collect();
        let queued: Vec<String> = settings
            .queued_summaries
            .iter()
            .map(|q| q.threat_id.clone())
            .collect();
        let own: Vec<String> = m.threats_with_indicator().map(str::to_string).collect();
        for threat_id in &own {
            if let Some(known) = fresh.get(threat_id.as_str()) {
                let indicator = m.threat_indicator(threat_id);
                let events = m.threat_events(threat_id);
                relate_named(m, indicator, &events, &known.named);
            }
        }
        let wanted = queued_first(&queued, own.iter().map(String::as_str));
        let mut allowance = settings.threat_summary_allowance;
        let mut failures_in_a_row = 0;
        for threat_id in wanted.iter().filter(|id| !fresh.contains_key(id.as_str())) {
            let queued_ref = settings
                .queued_summaries
                .iter()
                .find(|q| q.threat_id.trim() == threat_id);
            let Some((indicator, threat_ref)) = summary_target(m, threat_id, queued_ref) else {
                // Its indicator cannot be made (a false positive now, or a
                // type we do not know): nothing to map a summary onto, and
                // nothing owed.
                report.threats_summarised.push(SummaryRef {
                    threat_id: threat_id.clone(),
                    named: Vec::new(),
                });
                continue;
            };
            if self.enrichment_stopped.is_some() || self.summaries_stopped || allowance == 0 {
                self.counters.threat_summaries_deferred += 1;
                report.summaries_deferred.push(threat_ref);
                continue;
            }
            allowance -= 1;
            self.counters.threat_summary_requests += 1;
            let events = m.threat_events(threat_id);
            if let Some(named) = self.summary(m, threat_id, indicator, &events) {
                failures_in_a_row = 0;
                report.threats_summarised.push(SummaryRef {
                    threat_id: threat_id.clone(),
                    named,
                });
            } else {
                failures_in_a_row += 1;
                if failures_in_a_row == SUMMARY_FAILURES_IN_A_ROW && !self.summaries_stopped {
                    self.summaries_stopped = true;
                    self.log(
                        LogLevel::Warn,
                        "TAP's Threat API failed several summaries in a row; the others wait \
                         for a later call",
                        &[("failures", failures_in_a_row.to_string())],
                    );
                }
                self.counters.threat_summaries_deferred += 1;
                report.summaries_deferred.push(threat_ref);
            }
        }
    }

    /// Fetches and maps one summary: what it named when TAP gave its
    /// answer (a 404: TAP knows nothing more, so nothing). A failure or an
    /// unreadable body is not an answer: `None`.
    fn summary(
        &mut self,
        m: &mut Mapping,
        threat_id: &str,
        indicator: ObjectId,
        events: &[ObjectId],
    ) -> Option<Vec<NamedRef>> {
        let path = endpoints::threat_summary(threat_id);
        let response = match self.get(&path) {
            Ok(response) => response,
            Err(e) => {
                self.stop_enrichment(endpoints::endpoint_of(&path), format!("no answer: {e}"));
                return None;
            }
        };
        let body = match response.status {
            200..=299 => response.body,
            404 => return Some(Vec::new()),
            // A wrong credential fails every request alike.
            401 => {
                let message = tap_message(&response.body);
                self.stop_enrichment(
                    endpoints::endpoint_of(&path),
                    format!("TAP answered 401 {message}"),
                );
                return None;
            }
            // The Threat API's own licence or pool: campaigns and
            // forensics may still be answered.
            403 | 429 => {
                self.summaries_stopped = true;
                self.log(
                    LogLevel::Warn,
                    "TAP's Threat API refused; threat summaries stop for this call, the rest \
                     of the enrichment goes on",
                    &[
                        ("status", response.status.to_string()),
                        ("message", tap_message(&response.body)),
                    ],
                );
                return None;
            }
            status => {
                self.log(
                    LogLevel::Warn,
                    "TAP threat summary request failed; asked again later",
                    &[
                        ("threat_id", threat_id.to_string()),
                        ("status", status.to_string()),
                        ("message", tap_message(&response.body)),
                    ],
                );
                return None;
            }
        };
        match parse_summary(&body) {
            Ok(summary) => Some(map_summary(m, indicator, events, &summary)),
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    "TAP threat summary is not the JSON TAP documents; asked again later",
                    &[("threat_id", threat_id.to_string()), ("error", e)],
                );
                None
            }
        }
    }

    /// Fetches and maps one forensics answer. `true` when TAP gave its
    /// answer: reports that parse, or a 404 (no reports for this id). A
    /// failure or a body we cannot read is not an answer: the host asks
    /// again later instead of holding the id as enriched.
    fn forensics(&mut self, m: &mut Mapping, path: &str, origin: Origin<'_>) -> bool {
        let body = match self.enrichment_get(path) {
            Ok(body) => body,
            Err(status) => return status == Some(404),
        };
        let answer = match parse_forensics(&body) {
            Ok(answer) => answer,
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    "TAP forensics answer is not the JSON TAP documents; skipped",
                    &[("path", path.to_string()), ("error", e)],
                );
                return false;
            }
        };
        let tally = map_forensics(m, &answer, origin);
        self.record_evidence(path, tally);
        true
    }

    fn record_evidence(&mut self, path: &str, tally: EvidenceTally) {
        self.counters.evidence_used += tally.used;
        self.counters.evidence_dropped += tally.dropped;
        for (kind, raw) in tally.unknown {
            self.log(
                LogLevel::Debug,
                "forensic evidence of a type not mapped; kept out of ThreatQ",
                &[
                    ("path", path.to_string()),
                    ("type", kind),
                    ("evidence", raw),
                ],
            );
        }
        if tally.unreadable > 0 {
            self.log(
                LogLevel::Warn,
                "forensic evidence that is not a JSON object with the documented fields was dropped",
                &[("path", path.to_string()), ("dropped", tally.unreadable.to_string())],
            );
        }
    }

    /// The one `info` line of a call: `scope` says what was mapped.
    fn log_summary(
        &mut self,
        message: &str,
        scope: &[(&str, String)],
        result: &SyncResult,
        elapsed_ms: i64,
    ) {
        let c = result.counters;
        let counts = [
            ("messages_delivered", c.messages_delivered.to_string()),
            ("messages_blocked", c.messages_blocked.to_string()),
            ("clicks_permitted", c.clicks_permitted.to_string()),
            ("clicks_blocked", c.clicks_blocked.to_string()),
            ("already_sent_skipped", c.already_sent_skipped.to_string()),
            ("rejected", result.rejections.len().to_string()),
            ("false_positives", c.false_positives.to_string()),
            ("objects", result.objects.len().to_string()),
            ("relations", result.relations.len().to_string()),
            (
                "campaigns_fetched",
                result.campaigns_fetched.len().to_string(),
            ),
            ("campaign_requests", c.campaign_requests.to_string()),
            (
                "campaign_forensics_requests",
                c.campaign_forensics_requests.to_string(),
            ),
            (
                "threat_forensics_requests",
                c.threat_forensics_requests.to_string(),
            ),
            (
                "threat_forensics_deferred",
                c.threat_forensics_deferred.to_string(),
            ),
            ("evidence_used", c.evidence_used.to_string()),
            ("evidence_dropped", c.evidence_dropped.to_string()),
            (
                "threat_summary_requests",
                c.threat_summary_requests.to_string(),
            ),
            (
                "threat_summaries_deferred",
                c.threat_summaries_deferred.to_string(),
            ),
            ("people_marked_events", c.people_marked_events.to_string()),
            ("elapsed_ms", elapsed_ms.to_string()),
        ];
        let fields: Vec<(&str, String)> = scope.iter().cloned().chain(counts).collect();
        self.log(LogLevel::Info, message, &fields);
    }
}
