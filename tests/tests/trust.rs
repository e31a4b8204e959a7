//! The TAP credentials go only where the operator put them
//! (docs/sync.md, "Where the TAP credentials go"): a secret in the local
//! file is never sent to a hostname that only ThreatQ's UI names, unless
//! `[tap] hostname_from_ui = true` says so.

use e2e_tests::{World, completed, failed, now};
use serde_json::{Value, json};
use tq_conn::run::FailureKind;

/// The connector's entry in ThreatQ's UI, naming `hostname` as the TAP
/// host, with the simulator's credentials.
fn entry_naming(world: &World, hostname: &str) -> Value {
    json!({
        "id": 7,
        "name": "tq-conn-proofpoint-tap",
        "category": "Labs",
        "active": true,
        "options": {
            "hostname": hostname,
            "api_principal": world.tap_config.principal,
            "api_secret": world.tap_config.secret,
            "history_hours": "1",
            "create_incidents": "No"
        }
    })
}

/// `[tap]` with the principal and secret but no hostname, plus `extra`.
fn local_secret(world: &World, extra: &str) -> String {
    format!(
        "principal = \"{}\"\nsecret = \"{}\"\n{extra}",
        world.tap_config.principal, world.tap_config.secret
    )
}

/// Before: the UI's hostname was taken with the file's secret, so whoever
/// could edit the connector's entry in ThreatQ received that secret.
#[tokio::test]
async fn a_ui_hostname_with_a_local_secret_is_refused() {
    let world = World::start().await;
    world.write_config(false, &local_secret(&world, ""));
    // The simulator stands in for a host someone else named: had the run
    // gone on, the secret would have reached it.
    let named = world.tap.base_url();
    world
        .threatq
        .set_connector(Some(entry_naming(&world, &named)));

    let failure = failed(world.run_at(now()).await);

    assert_eq!(failure.kind, FailureKind::Config);
    assert_eq!(failure.kind.exit_code(), 3);
    let text = format!("{:#}", failure.error);
    assert!(text.contains("TAP secret is set under [tap]"), "{text}");
    assert!(text.contains(&format!("`{named}`")), "{text}");
    assert!(
        text.contains("set `hostname` under [tap]") && text.contains("`hostname_from_ui = true`"),
        "the fix is named: {text}"
    );
    assert!(!text.contains(&world.tap_config.secret), "{text}");
    assert!(
        world.tap.requests().is_empty(),
        "nothing, credentials least of all, was sent to the UI's host"
    );
    assert_eq!(world.state().checkpoint, None);
}

#[tokio::test]
async fn hostname_from_ui_lets_the_ui_name_the_host_of_a_local_secret() {
    let world = World::start().await;
    world.write_config(false, &local_secret(&world, "hostname_from_ui = true\n"));
    let named = world.tap.base_url();
    world
        .threatq
        .set_connector(Some(entry_naming(&world, &named)));

    let summary = completed(world.run_at(now()).await);

    assert_eq!(summary.windows_done, summary.windows_planned);
    let requests = world.tap.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.principal.as_deref() == Some(world.tap_config.principal.as_str())),
        "{requests:?}"
    );
}

/// The file's hostname wins over the UI's, so a local secret with a local
/// hostname runs whatever the UI names.
#[tokio::test]
async fn a_local_secret_goes_to_the_local_hostname_whatever_the_ui_names() {
    let world = World::start().await;
    world.write_config(true, "history_hours = 1\n");
    world.threatq.set_connector(Some(entry_naming(
        &world,
        "https://collector.elsewhere.example",
    )));

    let summary = completed(world.run_at(now()).await);

    assert_eq!(summary.windows_done, summary.windows_planned);
    assert!(!world.tap.requests().is_empty(), "the file's host was used");
}
