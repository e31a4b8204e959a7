//! A test guest that exports the `tap-connector` world and probes the
//! sandbox instead of talking TAP. `window.start` picks the behaviour:
//!
//! - `echo`: reports, as attributes of one object, everything it can see:
//!   environment, arguments, the root directory, stdin, a raw TCP connect to
//!   the TAP origin, and a GET of `<tap-base-url>/echo`.
//! - `get:<url>`: GETs `url`; attributes `status`, `location`, `body`, or a
//!   `transport` error naming the exact WASI error code.
//! - `get-with-auth:<url>`: the same with the guest's own `Authorization`.
//! - `alloc:<MiB>`: allocates and touches that much memory.
//! - `spin`: loops forever.
//! - `panic`: panics.
//! - `log`: writes one line through the host's `log` import.
//! - `log-flood:<n>`: writes `n` lines through `log`.
//! - `post:<url>:<KiB>`: POSTs `url` while streaming a body of that many
//!   KiB after the request was handed to the host; reports like `get:`.
//! - `visit:<url>|<url>|...`: GETs each URL in turn, ignoring failures (a
//!   `panic` element panics there); attribute `visit_<i>` is the status or
//!   the error code of each.
//! - `follow:<url>`: GETs `url` and follows up to three redirects itself,
//!   as a guest trying to reach another host through one would.
//! - `handles:<n>`: creates `n` header-field resources and keeps them all.
//!
//! Built for wasm32-wasip2 only (by `tests/build.rs`).

#[cfg(target_arch = "wasm32")]
mod probe {
    wit_bindgen::generate!({
        world: "tap-connector",
        path: "../../../wit",
        with: {
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });

    use std::io::Read;

    use exports::proofpoint::tap::connector::{
        Attribute, Counters, EnrichmentReport, Guest, ObjectKind, PeopleAnswer, PeopleRequest,
        QuarantinedRecord, Settings, SyncError, SyncResult, TapAccess, ThreatqObject, Window,
    };
    use proofpoint::tap::host::{LogField, LogLevel, log};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasip2::io::streams::StreamError;

    struct Probe;

    impl Guest for Probe {
        /// The probe attacks through `sync`; this entry point only has to
        /// exist for the probe to satisfy the world.
        fn map_records(
            _settings: Settings,
            _records: Vec<QuarantinedRecord>,
        ) -> Result<SyncResult, SyncError> {
            Err(SyncError::InvalidInput(
                "the sandbox probe does not map records".into(),
            ))
        }

        /// Likewise: the probe attacks through `sync` only.
        fn read_people(_access: TapAccess, _request: PeopleRequest) -> PeopleAnswer {
            let refused = || {
                Err(SyncError::InvalidInput(
                    "the sandbox probe does not read people".into(),
                ))
            };
            PeopleAnswer {
                very_attacked: refused(),
                top_clickers: refused(),
            }
        }

        fn sync(settings: Settings, window: Window) -> Result<SyncResult, SyncError> {
            let behaviour = window.start.as_str();
            let attributes = if behaviour == "echo" {
                echo(&settings)
            } else if let Some(url) = behaviour.strip_prefix("get:") {
                fetch_report(url, None)?
            } else if let Some(url) = behaviour.strip_prefix("get-with-auth:") {
                fetch_report(url, Some("Bearer guest-chosen-token"))?
            } else if let Some(mib) = behaviour.strip_prefix("alloc:") {
                let mib: usize = mib
                    .parse()
                    .map_err(|_| SyncError::InvalidInput(format!("bad MiB count {mib}")))?;
                allocate(mib)
            } else if behaviour == "spin" {
                spin()
            } else if behaviour == "panic" {
                panic!("the sandbox probe panicked on purpose");
            } else if let Some(count) = behaviour.strip_prefix("log-flood:") {
                let count: u32 = count
                    .parse()
                    .map_err(|_| SyncError::InvalidInput(format!("bad line count {count}")))?;
                for line in 0..count {
                    log(
                        LogLevel::Info,
                        &format!("probe flood line {line}"),
                        &[LogField {
                            key: "line".into(),
                            value: line.to_string(),
                        }],
                    );
                }
                vec![attribute("logged", count.to_string())]
            } else if let Some(rest) = behaviour.strip_prefix("post:") {
                let (url, kib) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| SyncError::InvalidInput(format!("bad post {rest}")))?;
                let kib: usize = kib
                    .parse()
                    .map_err(|_| SyncError::InvalidInput(format!("bad KiB count {kib}")))?;
                let response =
                    post(url, kib).map_err(|code| SyncError::Transport(format!("{code:?}")))?;
                vec![
                    attribute("status", response.status.to_string()),
                    attribute("body", response.body),
                ]
            } else if let Some(urls) = behaviour.strip_prefix("visit:") {
                let mut visited = Vec::new();
                for (index, url) in urls.split('|').enumerate() {
                    if url == "panic" {
                        panic!("the sandbox probe panicked on purpose after {index} requests");
                    }
                    let outcome = match fetch(url, None) {
                        Ok(response) => response.status.to_string(),
                        Err(code) => format!("{code:?}"),
                    };
                    visited.push(attribute(&format!("visit_{index}"), outcome));
                }
                visited
            } else if let Some(url) = behaviour.strip_prefix("follow:") {
                let mut url = url.to_owned();
                let mut hops = Vec::new();
                for hop in 0..4 {
                    let response = fetch(&url, None)
                        .map_err(|code| SyncError::Transport(format!("{code:?}")))?;
                    hops.push(attribute(
                        &format!("hop_{hop}"),
                        format!("{} {url}", response.status),
                    ));
                    match response.location {
                        Some(next) if (300..400).contains(&response.status) => url = next,
                        _ => break,
                    }
                }
                hops
            } else if let Some(count) = behaviour.strip_prefix("handles:") {
                let count: usize = count
                    .parse()
                    .map_err(|_| SyncError::InvalidInput(format!("bad handle count {count}")))?;
                let kept: Vec<Fields> = (0..count).map(|_| Fields::new()).collect();
                let held = kept.len();
                std::mem::forget(kept);
                vec![attribute("handles", held.to_string())]
            } else if behaviour == "log" {
                log(
                    LogLevel::Info,
                    "probe log line",
                    &[LogField {
                        key: "endpoint".into(),
                        value: "/v2/siem/all".into(),
                    }],
                );
                Vec::new()
            } else {
                return Err(SyncError::InvalidInput(format!(
                    "unknown probe behaviour {behaviour:?}"
                )));
            };
            Ok(one_object(attributes))
        }
    }

    export!(Probe);

    fn attribute(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.into(),
            value: value.into(),
        }
    }

    fn echo(settings: &Settings) -> Vec<Attribute> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let args: Vec<String> = std::env::args().collect();
        let root = match std::fs::read_dir("/") {
            Ok(entries) => format!(
                "ok: {:?}",
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
                    .collect::<Vec<_>>()
            ),
            Err(err) => format!("error: {err}"),
        };
        let mut input = String::new();
        let stdin = match std::io::stdin().read_to_string(&mut input) {
            Ok(read) => format!("ok: {read} bytes: {input:?}"),
            Err(err) => format!("error: {err}"),
        };
        let authority = settings
            .tap_base_url
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .unwrap_or_default();
        let tcp = match std::net::TcpStream::connect(authority) {
            Ok(_) => "ok: connected".to_owned(),
            Err(err) => format!("error: {err}"),
        };
        let mut attributes = vec![
            attribute("env", format!("{env:?}")),
            attribute("args", format!("{args:?}")),
            attribute("read_dir", root),
            attribute("stdin", stdin),
            attribute("tcp", tcp),
        ];
        let url = format!("{}/echo", settings.tap_base_url.trim_end_matches('/'));
        match fetch(&url, None) {
            Ok(response) => {
                attributes.push(attribute("http_status", response.status.to_string()));
                attributes.push(attribute("http_body", response.body));
            }
            Err(code) => attributes.push(attribute("http_error", format!("{code:?}"))),
        }
        attributes
    }

    fn fetch_report(url: &str, authorization: Option<&str>) -> Result<Vec<Attribute>, SyncError> {
        let response =
            fetch(url, authorization).map_err(|code| SyncError::Transport(format!("{code:?}")))?;
        Ok(vec![
            attribute("status", response.status.to_string()),
            attribute("location", response.location.unwrap_or_default()),
            attribute("body", response.body),
        ])
    }

    fn allocate(mib: usize) -> Vec<Attribute> {
        let bytes = mib * 1024 * 1024;
        let mut block = vec![0u8; bytes];
        // Touch every page so the memory is really used.
        for index in (0..bytes).step_by(4096) {
            block[index] = 1;
        }
        let touched = std::hint::black_box(&block)
            .iter()
            .filter(|b| **b == 1)
            .count();
        vec![attribute("touched_pages", touched.to_string())]
    }

    fn spin() -> Vec<Attribute> {
        let mut counter = 0u64;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }

    fn one_object(attributes: Vec<Attribute>) -> SyncResult {
        SyncResult {
            query_end_time: "2026-11-28T10:00:00Z".into(),
            objects: vec![ThreatqObject {
                kind: ObjectKind::Event,
                value: "sandbox probe".into(),
                type_name: None,
                happened_at: None,
                description: None,
                attributes,
            }],
            relations: Vec::new(),
            rejections: Vec::new(),
            record_keys: Vec::new(),
            campaigns_fetched: Vec::new(),
            message_events: Vec::new(),
            unresolved_messages: Vec::new(),
            unresolved_campaigns: Vec::new(),
            enrichment: EnrichmentReport {
                threats_enriched: Vec::new(),
                campaigns_deferred: Vec::new(),
                threats_deferred: Vec::new(),
                threats_summarised: Vec::new(),
                summaries_deferred: Vec::new(),
            },
            verdicts: Vec::new(),
            counters: Counters {
                messages_delivered: 0,
                messages_blocked: 0,
                clicks_permitted: 0,
                clicks_blocked: 0,
                already_sent_skipped: 0,
                false_positives: 0,
                siem_requests: 0,
                campaign_requests: 0,
                campaign_forensics_requests: 0,
                threat_forensics_requests: 0,
                threat_forensics_deferred: 0,
                evidence_used: 0,
                evidence_dropped: 0,
                threat_summary_requests: 0,
                threat_summaries_deferred: 0,
                people_marked_events: 0,
            },
        }
    }

    struct Fetched {
        status: u16,
        location: Option<String>,
        body: String,
    }

    /// A plain wasi:http GET that reports the exact error code.
    fn fetch(url: &str, authorization: Option<&str>) -> Result<Fetched, ErrorCode> {
        let request = new_request(url, Method::Get, authorization)?;
        let body = request
            .body()
            .map_err(|_| ErrorCode::InternalError(Some("no request body".into())))?;
        OutgoingBody::finish(body, None)?;
        let pending = outgoing_handler::handle(request, None)?;
        read_response(pending)
    }

    /// A POST whose body (`kib` KiB) is streamed after the request was
    /// handed to the host, as a body bomb would be. Write failures (the
    /// host stopped reading) end the body; the response tells why.
    fn post(url: &str, kib: usize) -> Result<Fetched, ErrorCode> {
        let request = new_request(url, Method::Post, None)?;
        let body = request
            .body()
            .map_err(|_| ErrorCode::InternalError(Some("no request body".into())))?;
        let pending = outgoing_handler::handle(request, None)?;
        if let Ok(stream) = body.write() {
            let chunk = [b'x'; 4096];
            let mut written = 0;
            while written < kib * 1024 {
                if stream.blocking_write_and_flush(&chunk).is_err() {
                    break;
                }
                written += chunk.len();
            }
            drop(stream);
        }
        let _ = OutgoingBody::finish(body, None);
        read_response(pending)
    }

    fn new_request(
        url: &str,
        method: Method,
        authorization: Option<&str>,
    ) -> Result<OutgoingRequest, ErrorCode> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(ErrorCode::HttpRequestUriInvalid)?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        };

        let headers = Fields::new();
        if let Some(value) = authorization {
            headers
                .append("authorization", value.as_bytes())
                .map_err(|_| ErrorCode::InternalError(Some("cannot set authorization".into())))?;
        }
        let request = OutgoingRequest::new(headers);
        let invalid = |_| ErrorCode::HttpRequestUriInvalid;
        request.set_method(&method).map_err(invalid)?;
        request.set_scheme(Some(&scheme)).map_err(invalid)?;
        request.set_authority(Some(authority)).map_err(invalid)?;
        request.set_path_with_query(Some(path)).map_err(invalid)?;
        Ok(request)
    }

    fn read_response(
        pending: outgoing_handler::FutureIncomingResponse,
    ) -> Result<Fetched, ErrorCode> {
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or_else(|| ErrorCode::InternalError(Some("response not ready".into())))?
            .map_err(|_| ErrorCode::InternalError(Some("response taken twice".into())))??;

        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .first()
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let incoming = response
            .consume()
            .map_err(|_| ErrorCode::InternalError(Some("body taken twice".into())))?;
        let stream = incoming
            .stream()
            .map_err(|_| ErrorCode::InternalError(Some("stream taken twice".into())))?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    return Err(wasip2::http::types::http_error_code(&err)
                        .unwrap_or_else(|| ErrorCode::InternalError(Some(err.to_debug_string()))));
                }
            }
        }
        drop(stream);
        drop(IncomingBody::finish(incoming));
        Ok(Fetched {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
