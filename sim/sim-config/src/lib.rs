//! The connector's config file for the two simulators: what the demo
//! (`tq-conn-proofpoint-tap demo`, the `demo` feature), the benchmark and
//! the tests write before a run on 127.0.0.1.
//!
//! It lives beside the simulators rather than in the connector because it
//! reads their credentials, and the connector an operator installs carries
//! no simulator code. The tests that run the connector on it keep the text
//! in step with the config format (host/src/config/).

use tap_sim::TapSimConfig;
use threatq_sim::ThreatqSimConfig;

/// A config file for the simulators: ThreatQ connection settings, and when
/// `tap` is given a complete local [tap] table (plus `tap_extra` lines).
pub fn simulator_config(
    threatq_url: &str,
    threatq: &ThreatqSimConfig,
    tap: Option<(&str, &TapSimConfig)>,
    tap_extra: &str,
) -> String {
    let mut text = format!(
        "# Written for the simulators on 127.0.0.1.\n\
         [threatq]\n\
         host = \"{threatq_url}\"\n\
         client_id = \"{}\"\n\
         username = \"{}\"\n\
         password = \"{}\"\n\
         status = \"Review\"\n",
        threatq.client_id, threatq.email, threatq.password
    );
    if tap.is_some() || !tap_extra.is_empty() {
        text.push_str("\n[tap]\n");
    }
    if let Some((tap_url, tap)) = tap {
        text.push_str(&format!(
            "hostname = \"{tap_url}\"\nprincipal = \"{}\"\nsecret = \"{}\"\n",
            tap.principal, tap.secret
        ));
    }
    text.push_str(tap_extra);
    text
}
