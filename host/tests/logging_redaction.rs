//! No password, secret, token or Authorization header reaches the log file,
//! at any level, however it is logged.

use std::fs;

use tq_conn::cli::{LogTarget, Verbosity};
use tq_conn::config::SecretString;
use tq_conn::logging::{self, LOG_FILE_NAME};

const THREATQ_PASSWORD: &str = "Tq-Passw0rd!redact-me";
const TAP_SECRET: &str = "tap-secret-5f1e9a";
const ACCESS_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.sig";
const BASIC_CREDENTIAL: &str = "cHJpbmNpcGFsOnRhcC1zZWNyZXQ=";
const UNREGISTERED_PASSWORD: &str = "never-registered-pw-42";
const UNREGISTERED_TOKEN: &str = "unregistered-access-tok-77";

#[derive(Debug)]
#[allow(dead_code)] // only read through Debug
struct Login {
    username: &'static str,
    password: SecretString,
}

/// Emits every shape a secret could take, at one level.
macro_rules! emit_all {
    ($level:expr, $tag:literal) => {{
        let login = Login { username: "analyst@example.com", password: SecretString::from(THREATQ_PASSWORD) };
        tracing::event!(target: "tq_conn::run", $level, "{} case 1: login {:?}", $tag, login);
        tracing::event!(target: "tq_conn::run", $level, password = THREATQ_PASSWORD, "{} case 2: field", $tag);
        tracing::event!(target: "tap_runtime::http", $level, "{} case 3: Authorization: Basic {}", $tag, BASIC_CREDENTIAL);
        tracing::event!(target: "threatq_client", $level, "{} case 4: header Authorization: Bearer {}", $tag, ACCESS_TOKEN);
        tracing::event!(target: "threatq_client", $level, body = %format!(r#"{{"access_token":"{UNREGISTERED_TOKEN}","expires_in":3600}}"#), "{} case 5: token body", $tag);
        tracing::event!(target: "threatq_client", $level, "{} case 6: form grant_type=password&password={}&client_id=c", $tag, UNREGISTERED_PASSWORD);
        tracing::event!(target: "tq_conn::settings", $level, "{} case 7: TAP secret is {} (oops)", $tag, TAP_SECRET);
        tracing::event!(target: "tq_conn::run", $level, "{} case 8: json {}", $tag, format!(r#"{{"username":"u","password":"{UNREGISTERED_PASSWORD}"}}"#));
        tracing::event!(target: "tq_conn::run", $level, request = ?format!("Authorization: Bearer {UNREGISTERED_TOKEN}"), "{} case 9: debug field", $tag);
    }};
}

#[test]
fn secrets_are_masked_in_the_log_file_at_every_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = logging::init(
        &LogTarget::Dir(dir.path().to_owned()),
        Verbosity::Everything,
    )
    .expect("logging starts");
    logging::register_secret(TAP_SECRET);
    logging::register_secret(ACCESS_TOKEN);

    emit_all!(tracing::Level::ERROR, "ERROR-LEVEL");
    emit_all!(tracing::Level::WARN, "WARN-LEVEL");
    emit_all!(tracing::Level::INFO, "INFO-LEVEL");
    emit_all!(tracing::Level::DEBUG, "DEBUG-LEVEL");
    emit_all!(tracing::Level::TRACE, "TRACE-LEVEL");
    drop(guard);

    let log = fs::read_to_string(dir.path().join(LOG_FILE_NAME)).expect("log file written");
    for tag in [
        "ERROR-LEVEL",
        "WARN-LEVEL",
        "INFO-LEVEL",
        "DEBUG-LEVEL",
        "TRACE-LEVEL",
    ] {
        for case in 1..=9 {
            let marker = format!("{tag} case {case}:");
            assert!(log.contains(&marker), "`{marker}` was not logged:\n{log}");
        }
    }
    for secret in [
        THREATQ_PASSWORD,
        TAP_SECRET,
        ACCESS_TOKEN,
        BASIC_CREDENTIAL,
        UNREGISTERED_PASSWORD,
        UNREGISTERED_TOKEN,
    ] {
        assert!(
            !log.contains(secret),
            "`{secret}` leaked into the log:\n{log}"
        );
    }
    assert!(log.contains("Authorization: ***"), "{log}");
    assert!(
        log.contains("analyst@example.com"),
        "ordinary values must survive:\n{log}"
    );

    // A second start in the same process is refused, not silently ignored.
    let again = logging::init(&LogTarget::Stdout, Verbosity::Warnings);
    assert!(again.is_err());
}
