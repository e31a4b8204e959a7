//! ThreatQ REST client for the Proofpoint TAP connector.
//!
//! [`Client`] logs in with the OAuth password grant and keeps the token,
//! upserts batches of objects through ThreatQ's consume endpoints and links
//! them ([`Client::forward`]), and reads the connector's settings from
//! ThreatQ's UI (a documented guess, see [`ConnectorSettings`]) and its
//! indicator statuses ([`Client::indicator_statuses`]). For verdicts TAP
//! gives later it finds an indicator it created ([`Client::find_indicator`])
//! and updates its status and one attribute
//! ([`Client::set_indicator_status`], [`Client::set_indicator_attribute`]),
//! calls only partly verified against a real ThreatQ (the `indicators`
//! module says which parts). Transient
//! failures are retried per [`RetryPolicy`]; every error's message says
//! what happened and what to do, and never carries the password or a token.

mod connector_settings;
mod date;
mod error;
mod forward;
mod indicators;
mod model;
mod payload;
mod reference;
mod retry;
mod session;
mod systemic;

pub use connector_settings::ConnectorSettings;
pub use date::format_threatq_date;
pub use error::ThreatqError;
pub use indicators::{Ownership, StoredAttribute, StoredIndicator, StoredSource};
pub use model::{
    Batch, Collection, ForwardOptions, ForwardReport, ObjectKey, RejectedObject, TqObject,
};
pub use retry::{RetryPolicy, Transient};
/// The secret type of [`ThreatqConfig::password`] and
/// [`ConnectorSettings::secret`], re-exported for callers.
pub use secrecy::{ExposeSecret, SecretString};
pub use session::{Client, MAX_RESPONSE_BYTES, ThreatqConfig};
pub use systemic::SystemicRule;
