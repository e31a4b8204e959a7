//! The config file: what loads, what is refused, and what the refusal says.

use std::fs;
use std::path::{Path, PathBuf};

use tq_conn::config::{
    self, CONFIG_FILE_NAME, Config, ConfigError, ExposeSecret as _, HostUrl, ProxyUrl,
    SecretString, TapSection, ThreatqSection,
};

const MINIMAL: &str = r#"
[threatq]
host = "threatq.example.com"
client_id = "abc123"
username = "analyst@example.com"
password = "s3cret-pass"
"#;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join(CONFIG_FILE_NAME);
    fs::write(&file, text).expect("write config");
    file
}

fn load_text(text: &str) -> (tempfile::TempDir, Result<Option<Config>, ConfigError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), text);
    let result = config::load(dir.path());
    (dir, result)
}

fn load_error(text: &str) -> String {
    let (dir, result) = load_text(text);
    let message = result.expect_err("config should be refused").to_string();
    let file = dir.path().join(CONFIG_FILE_NAME);
    assert!(
        message.contains(&file.display().to_string()),
        "message does not name the file: {message}"
    );
    message
}

fn full_config(ca_file: PathBuf) -> Config {
    Config {
        threatq: ThreatqSection {
            host: HostUrl::parse("http://127.0.0.1:8080").expect("host"),
            client_id: "client-1".to_owned(),
            username: "analyst@example.com".to_owned(),
            password: SecretString::from("pa\"ss word#1"),
            status: "Active".to_owned(),
            false_positive_status: Some("Indirect".to_owned()),
            ca_file: Some(ca_file.clone()),
            proxy: Some(ProxyUrl::parse("http://proxy.example.com:3128").expect("proxy")),
            verify_tls: false,
        },
        tap: TapSection {
            hostname: Some(HostUrl::parse("tap-api-v2.proofpoint.com").expect("host")),
            principal: Some("principal-1".to_owned()),
            secret: Some(SecretString::from("tap-secret-1")),
            history_hours: Some(48),
            create_incidents: Some(false),
            enabled: Some(true),
            overlap_minutes: Some(0),
            safety_margin_seconds: Some(3600),
            message_index_days: Some(90),
            threat_refresh_days: Some(1),
            campaign_refresh_hours: Some(720),
            threat_summaries_per_day: Some(0),
            people_refresh_hours: Some(168),
            people_window_days: Some(14),
            ca_file: Some(ca_file),
            verify_tls: false,
            proxy: Some(ProxyUrl::parse("http://u:p@tap-proxy.example.com:3128").expect("proxy")),
            hostname_from_ui: true,
            allow_plain_http: true,
        },
        run: Default::default(),
    }
}

#[test]
fn no_file_means_not_configured_yet() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(config::load(dir.path()).expect("no error"), None);
}

#[test]
fn a_minimal_file_gets_defaults() {
    let (_dir, result) = load_text(MINIMAL);
    let config = result.expect("loads").expect("present");
    assert_eq!(config.threatq.host.base(), "https://threatq.example.com");
    assert_eq!(config.threatq.status, "Review");
    assert!(config.threatq.verify_tls);
    assert_eq!(config.threatq.password.expose_secret(), "s3cret-pass");
    assert_eq!(config.tap, TapSection::default());
    assert!(!config.tap.is_complete());
}

#[test]
fn a_full_config_round_trips_through_write_and_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("ca");
    let original = full_config(ca);
    config::write(dir.path(), &original).expect("write");
    let loaded = config::load(dir.path()).expect("load").expect("present");
    assert_eq!(loaded, original);
    assert!(loaded.tap.is_complete());
    // Rewriting replaces the file in place.
    config::write(dir.path(), &loaded).expect("rewrite");
    assert_eq!(
        config::load(dir.path()).expect("load").expect("present"),
        original
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

#[cfg(unix)]
#[test]
fn written_config_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, result) = load_text(MINIMAL);
    let config = result.expect("loads").expect("present");
    config::write(dir.path(), &config).expect("write");
    let mode = fs::metadata(config::path(dir.path()))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[cfg(unix)]
#[test]
fn a_config_readable_by_others_loads_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(dir.path(), MINIMAL);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    let warning = config::permission_warning(&file).expect("warns");
    assert!(
        warning.contains("0644") && warning.contains("chmod 600"),
        "{warning}"
    );
    assert!(config::load(dir.path()).expect("still loads").is_some());
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(config::permission_warning(&file), None);
}

#[cfg(unix)]
#[test]
fn a_config_directory_others_can_write_is_warned_about_on_load() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), MINIMAL);
    for (mode, warned) in [(0o775, true), (0o757, true), (0o755, false), (0o700, false)] {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).expect("chmod");
        let log = Shared(Arc::new(Mutex::new(Vec::new())));
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .finish();
        let loaded = tracing::subscriber::with_default(subscriber, || {
            // Other tests of this binary log on other threads with no
            // subscriber; a callsite first hit there may be cached as of no
            // interest, and would then miss this thread's subscriber.
            tracing::callsite::rebuild_interest_cache();
            config::load(dir.path())
        });
        assert!(loaded.expect("still loads").is_some());
        let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let shown = format!("mode {mode:04o}");
        assert_eq!(log.contains(&shown), warned, "{mode:o}: {log}");
        if warned {
            assert!(log.contains("chmod go-w"), "{log}");
        }
        assert_eq!(config::directory_warning(dir.path()).is_some(), warned);
    }
}

#[test]
fn bare_host_means_https_and_urls_keep_scheme_and_port() {
    let cases = [
        ("threatq.example.com", "https://threatq.example.com"),
        ("10.0.0.5:8443", "https://10.0.0.5:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://tq.example.com/", "https://tq.example.com"),
        ("https://tq.example.com:443", "https://tq.example.com"),
        ("[::1]:8443", "https://[::1]:8443"),
        ("  tq.example.com  ", "https://tq.example.com"),
    ];
    for (text, base) in cases {
        assert_eq!(HostUrl::parse(text).expect(text).base(), base, "{text}");
    }
    assert_eq!(
        HostUrl::parse("http://127.0.0.1:8080").expect("url").host(),
        "127.0.0.1"
    );
}

#[test]
fn hosts_with_paths_credentials_or_other_schemes_are_refused() {
    for (text, why) in [
        ("https://tq.example.com/api", "has a path"),
        ("tq.example.com/api/token", "has a path"),
        ("https://tq.example.com/?x=1", "query"),
        ("ftp://tq.example.com", "scheme `ftp`"),
        ("https://user:pw@tq.example.com", "credentials"),
        ("", "is empty"),
        ("https://", "not a valid host"),
    ] {
        let problem = HostUrl::parse(text).expect_err(text);
        assert!(problem.contains(why), "{text}: {problem}");
    }
}

#[test]
fn a_host_with_a_path_in_the_file_names_the_key_and_the_fix() {
    let message = load_error(&MINIMAL.replace(
        "\"threatq.example.com\"",
        "\"https://threatq.example.com/api\"",
    ));
    assert!(message.contains("`threatq.host`"), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(
        message.contains("e.g. `https://threatq.example.com`"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_is_named_with_its_section_and_the_expected_keys() {
    let message = load_error(&format!("{MINIMAL}\n[tap]\nhistroy_hours = 24\n"));
    assert!(
        message.starts_with("unknown key `histroy_hours` in [tap] of "),
        "{message}"
    );
    assert!(
        message.contains("expected one of hostname, principal, secret, history_hours"),
        "{message}"
    );
    assert!(
        message.contains("did you mean `history_hours`?"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_in_threatq_is_named() {
    let message = load_error(&format!("{MINIMAL}verify_ssl = false\n"));
    assert!(
        message.contains("unknown key `verify_ssl` in [threatq]"),
        "{message}"
    );
    assert!(message.contains("did you mean `verify_tls`?"), "{message}");
}

#[test]
fn an_unknown_section_is_named() {
    let message = load_error(&format!("{MINIMAL}\n[proofpoint]\nhostname = \"x\"\n"));
    assert!(
        message.contains("unknown key `proofpoint` in the top level"),
        "{message}"
    );
    assert!(message.contains("threatq, tap"), "{message}");
}

#[test]
fn keys_outside_their_section_say_where_they_belong() {
    let message = load_error("host = \"tq.example.com\"\n[threatq]\n");
    assert!(
        message.contains("move `host` under a `[threatq]` line"),
        "{message}"
    );
}

#[test]
fn a_wrong_type_names_the_key_and_line() {
    let message = load_error(&format!("{MINIMAL}\n[tap]\nhistory_hours = \"24\"\n"));
    assert!(message.contains("`tap.history_hours`"), "{message}");
    assert!(message.contains("line 9"), "{message}");
    assert!(message.contains("expected u32"), "{message}");
    let message = load_error(&format!("{MINIMAL}verify_tls = \"no\"\n"));
    assert!(message.contains("`threatq.verify_tls`"), "{message}");
    assert!(message.contains("expected a boolean"), "{message}");
}

#[test]
fn out_of_range_values_give_the_allowed_range() {
    for (line, key, range) in [
        (
            "history_hours = 72",
            "tap.history_hours",
            "between 1 and 48",
        ),
        ("history_hours = 0", "tap.history_hours", "between 1 and 48"),
        (
            "overlap_minutes = 361",
            "tap.overlap_minutes",
            "between 0 and 360",
        ),
        (
            "safety_margin_seconds = 3601",
            "tap.safety_margin_seconds",
            "between 0 and 3600",
        ),
    ] {
        let message = load_error(&format!("{MINIMAL}\n[tap]\n{line}\n"));
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains(&format!("must be {range}")), "{message}");
    }
}

#[test]
fn a_negative_number_is_a_wrong_value() {
    let message = load_error(&format!("{MINIMAL}\n[tap]\noverlap_minutes = -5\n"));
    assert!(message.contains("`tap.overlap_minutes`"), "{message}");
}

#[test]
fn empty_required_values_are_refused_with_a_hint() {
    for (key, hint) in [
        ("client_id", "OAuth Management"),
        ("username", "e-mail"),
        ("password", "password"),
    ] {
        let text = MINIMAL
            .lines()
            .map(|l| {
                if l.starts_with(key) {
                    format!("{key} = \"\"")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let message = load_error(&text);
        assert!(message.contains(&format!("`threatq.{key}`")), "{message}");
        assert!(message.contains("is empty"), "{message}");
        assert!(message.contains(hint), "{message}");
    }
    let message = load_error(&format!("{MINIMAL}status = \" \"\n"));
    assert!(message.contains("`threatq.status`"), "{message}");
    let message = load_error(&format!("{MINIMAL}\n[tap]\nsecret = \"\"\n"));
    assert!(message.contains("`tap.secret`"), "{message}");
}

#[test]
fn a_missing_required_key_is_named() {
    let text = MINIMAL.replace("username = \"analyst@example.com\"\n", "");
    let message = load_error(&text);
    assert!(
        message.contains("missing key `username` in [threatq]"),
        "{message}"
    );
    let message = load_error("[tap]\nenabled = true\n");
    assert!(message.contains("[threatq]"), "{message}");
    assert!(message.contains("setup"), "{message}");
}

#[test]
fn a_syntax_error_gives_line_and_column() {
    let message = load_error("[threatq\nhost = \"x\"\n");
    assert!(
        message.contains("is not valid TOML (line 1, column"),
        "{message}"
    );
}

#[test]
fn a_missing_ca_file_is_named() {
    let message = load_error(&format!("{MINIMAL}ca_file = \"/nonexistent/ca.pem\"\n"));
    assert!(message.contains("`threatq.ca_file`"), "{message}");
    assert!(
        message.contains("/nonexistent/ca.pem does not exist"),
        "{message}"
    );
}

#[test]
fn a_relative_ca_file_is_taken_from_the_config_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("corp-ca.pem"), "pem").expect("ca");
    write_config(dir.path(), &format!("{MINIMAL}ca_file = \"corp-ca.pem\"\n"));
    let config = config::load(dir.path()).expect("loads").expect("present");
    assert_eq!(config.threatq.ca_file, Some(dir.path().join("corp-ca.pem")));
}

#[test]
fn a_bad_proxy_is_named() {
    let message = load_error(&format!("{MINIMAL}proxy = \"proxy:3128\"\n"));
    assert!(message.contains("`threatq.proxy`"), "{message}");
    assert!(message.contains("http://"), "{message}");
}

#[test]
fn a_legacy_json_or_yaml_config_explains_how_to_migrate() {
    let json = r#"{"ThreatQ Host": "10.0.0.1", "client_id": "x", "password": "y"}"#;
    let message = load_error(json);
    assert!(
        message.contains("looks like JSON (the legacy Python connector's format)"),
        "{message}"
    );
    assert!(
        message.contains("tq-conn-proofpoint-tap setup"),
        "{message}"
    );
    assert!(message.contains(".old"), "{message}");
    let yaml = "host: 10.0.0.1\nclientid: abc\nusername: me\npassword: pw\n";
    let message = load_error(yaml);
    assert!(message.contains("looks like YAML"), "{message}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let (_dir, result) = load_text(&format!("{MINIMAL}\n[tap]\nsecret = \"tap-secret-zz\"\n"));
    let config = result.expect("loads").expect("present");
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret-pass"), "{debug}");
    assert!(!debug.contains("tap-secret-zz"), "{debug}");
    // A secret has no Display at all (`{}` does not compile), and its
    // Debug is a placeholder.
    assert_eq!(
        format!("{:?}", config.threatq.password),
        "SecretBox<str>([REDACTED])"
    );
}

#[test]
fn an_unreadable_path_is_a_read_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory where the file should be cannot be read as text.
    fs::create_dir(dir.path().join(CONFIG_FILE_NAME)).expect("mkdir");
    let message = config::load(dir.path())
        .expect_err("unreadable")
        .to_string();
    assert!(message.starts_with("cannot read "), "{message}");
    assert!(message.contains(CONFIG_FILE_NAME), "{message}");
}

#[test]
fn writing_into_a_missing_directory_fails_with_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, result) = load_text(MINIMAL);
    let config = result.expect("loads").expect("present");
    let message = config::write(&dir.path().join("missing"), &config)
        .expect_err("no directory")
        .to_string();
    assert!(message.starts_with("cannot write "), "{message}");
}

#[test]
fn a_binary_file_is_reported_as_not_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(CONFIG_FILE_NAME), [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let message = config::load(dir.path()).expect_err("binary").to_string();
    assert!(message.contains("is not UTF-8 text"), "{message}");
}
