//! kuzet (Kazakh *күзет*, "watch"): a log correlation engine for security operations
//! centres.
//!
//! The crate is laid out along the path data takes:
//!
//! ```text
//!  reader/  ──Batch──▶  parser/  ──Event──▶  (matcher → correlator → sink: later stages)
//!  bytes in            frame → fields
//! ```
//!
//! | where does … live?                    | module            |
//! |---------------------------------------|-------------------|
//! | the event a rule sees, field ids      | [`event`]         |
//! | timestamps, zones, the year rule      | [`event::time`]   |
//! | framing, files, UDP, TCP, TLS         | [`reader`]        |
//! | RFC 5424/3164, JSON, CEF, LEEF, kv    | [`parser`]        |
//! | counters and their text exposition    | [`telemetry`]     |
//! | JSON output helpers                   | [`jsonw`]         |
//! | alert outputs: file, syslog, webhook  | [`sink`]          |
//! | assets, incidents, deadlines, report  | [`incident`]      |
//! | scale-out over Kafka (feature `kafka`) | [`kafka`]         |
//! | the command line                      | [`cli`]           |
//! | generated traffic and its ground truth| [`loadgen`]       |
//!
//! See DESIGN.md for the threading model and the reasoning behind the event model.

pub mod admin;
pub mod cli;
pub mod config;
pub mod correlator;
pub mod engine;
pub mod event;
pub mod extract;
pub mod incident;
pub mod jsonw;
pub mod kafka;
pub mod loadgen;
pub mod matcher;
pub mod parser;
pub mod pipeline;
pub mod reader;
pub mod router;
pub mod ruletest;
pub mod runner;
pub mod sigma;
pub mod sink;
pub mod telemetry;
#[cfg(test)]
mod testkit;
