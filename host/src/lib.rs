//! `tq-conn-proofpoint-tap`: moves Proofpoint TAP threat data into ThreatQ.
//!
//! The data's path, top to bottom:
//! `cli` -> `config` -> `settings` (local file merged over ThreatQ's UI)
//! -> `plan` (windows) -> `run` (one window at a time: the sandboxed TAP
//! component via `tap_runtime`, then `forward` to ThreatQ via
//! `threatq_client`) -> `state` (checkpoint, sent-record keys, budgets, dead letters,
//! quarantine, in an SQLite store; committed only after ThreatQ answered
//! for the window) -> `report` (summary, progress,
//! export).

pub mod cli;
pub mod config;
pub mod logging;
pub mod setup;

pub mod app;
pub mod batch;
/// `demo`: the product on built-in simulators, only with the `demo` feature.
#[cfg(feature = "demo")]
pub mod demo;
pub mod exit;
pub mod files;
pub mod http;
pub mod plan;
pub mod replay;
pub mod report;
pub mod run;
pub mod settings;
pub mod state;
pub mod urls;
