//! The incidents thread: the one writer of the incident database. It takes enriched alerts
//! from the dispatcher (bounded queue), merges them into incidents, serves the admin API's
//! requests, and runs the deadline watcher that escalates missed deadlines through the
//! sinks exactly once.
//!
//! Time comes from a [`Clock`], so tests move it by hours without sleeping. Escalations are
//! persisted (`escalated_at` and the incident's `escalations`) before the alert is handed to
//! the sinks: a restart never repeats one; a crash in the instant between can lose it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, select};
use serde::Deserialize;

use super::config::{IncidentsConfig, STEPS};
use super::enrich::{Endpoint, Enricher, Enrichment};
use super::model::{
    self, DataList, Deadline, Escalation, Incident, IncidentType, Party, Status, ms_rfc3339,
};
use super::store::{Filter, Store, StoreError};
use crate::config::LEVELS;
use crate::event::Timestamp;
use crate::sigma::{Level, Meta};
use crate::sink::alert::{AlertRecord, Fnv128};
use crate::telemetry::Counter;

/// Wall-clock milliseconds, injectable.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Timestamp::now().0 / 1_000_000
    }
}

/// A clock tests set by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counters of the incidents thread (`kuzet_incident*`).
#[derive(Debug, Default)]
pub struct IncidentMetrics {
    pub opened: Counter,
    pub merged: Counter,
    pub self_reported: Counter,
    pub escalations: Counter,
    pub actions: Counter,
    /// Evidence events beyond `incidents.evidence_events` (counted, not kept).
    pub evidence_dropped: Counter,
    pub store_errors: Counter,
    pub assets_loaded: crate::telemetry::Gauge,
    pub asset_rows_rejected: crate::telemetry::Gauge,
}

impl IncidentMetrics {
    pub fn render(&self, x: &mut crate::telemetry::Exposition) {
        for (name, help, c) in [
            (
                "kuzet_incidents_opened_total",
                "Incidents opened from alerts.",
                &self.opened,
            ),
            (
                "kuzet_incidents_merged_total",
                "Alerts merged into an open incident.",
                &self.merged,
            ),
            (
                "kuzet_incidents_self_reported_total",
                "Incidents reported by their owners (POST /incidents).",
                &self.self_reported,
            ),
            (
                "kuzet_incident_escalations_total",
                "Missed deadlines escalated through the sinks.",
                &self.escalations,
            ),
            (
                "kuzet_incident_actions_total",
                "Acknowledgements, resolutions and false-positive marks.",
                &self.actions,
            ),
            (
                "kuzet_incident_evidence_dropped_total",
                "Evidence events beyond incidents.evidence_events (not kept).",
                &self.evidence_dropped,
            ),
            (
                "kuzet_incident_store_errors_total",
                "Incident database operations that failed.",
                &self.store_errors,
            ),
        ] {
            x.sample(name, "counter", help, &[], c.get() as f64);
        }
        x.sample(
            "kuzet_assets_loaded",
            "gauge",
            "Assets in the inventory.",
            &[],
            self.assets_loaded.get() as f64,
        );
        x.sample(
            "kuzet_asset_rows_rejected",
            "gauge",
            "Inventory rows that did not load (see the log for file:line).",
            &[],
            self.asset_rows_rejected.get() as f64,
        );
    }
}

/// What the admin API may ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiOp {
    List(Filter),
    Get(String),
    Act {
        id: String,
        action: Action,
        actor: String,
        note: Option<String>,
    },
    Report {
        report: SelfReport,
        actor: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A step done: `notify_owner` (→ `notified`), `notify_authority`, `report`, `data_list`.
    Ack(String),
    Resolve,
    FalsePositive,
}

/// An incident an owner detected itself and reports (`POST /incidents`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfReport {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// informational, low, medium, high, critical (default high).
    #[serde(default)]
    pub level: Option<String>,
    /// Addresses or host names of the affected objects (looked up in the inventory).
    #[serde(default)]
    pub objects: Vec<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the owner detected it (RFC 3339); default: now.
    #[serde(default)]
    pub detected_at: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// An API failure: HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(500, e.to_string())
    }
}

pub type ApiReply = Result<serde_json::Value, ApiError>;

pub struct ApiRequest {
    pub op: ApiOp,
    pub reply: Sender<ApiReply>,
}

/// Accounts are read from these evidence fields (the rule pack's taxonomy and Windows').
const ACCOUNT_FIELDS: &[&str] = &[
    "user",
    "target_user",
    "TargetUserName",
    "SubjectUserName",
    "User",
];
/// Accounts and parties kept per incident.
const MAX_PARTIES: usize = 32;
/// Incidents escalated per watcher pass (the rest wait for the next pass).
const MAX_DUE_PER_PASS: usize = 1000;

/// The incident logic over a store.
pub struct Manager {
    store: Store,
    shared: Arc<ArcSwap<Enricher>>,
    clock: Arc<dyn Clock>,
    pub metrics: Arc<IncidentMetrics>,
}

fn level_rank(l: &str) -> usize {
    LEVELS.iter().position(|x| *x == l).unwrap_or(0)
}

fn parties(eps: &[Endpoint]) -> Vec<Party> {
    eps.iter()
        .map(|e| Party {
            field: e.field.clone(),
            value: e.value.clone(),
            asset: e.asset.clone(),
        })
        .collect()
}

fn add_parties(into: &mut Vec<Party>, new: Vec<Party>) {
    for p in new {
        if into.len() < MAX_PARTIES && !into.iter().any(|q| q.value == p.value) {
            into.push(p);
        }
    }
}

impl Manager {
    pub fn new(
        store: Store,
        shared: Arc<ArcSwap<Enricher>>,
        clock: Arc<dyn Clock>,
        metrics: Arc<IncidentMetrics>,
    ) -> Manager {
        Manager {
            store,
            shared,
            clock,
            metrics,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn cfg(&self) -> Arc<IncidentsConfig> {
        self.shared.load().cfg.clone()
    }

    /// Whether an alert opens or updates incidents: not an escalation, at `min_level` or
    /// above (rules without a level count as informational).
    pub fn takes(cfg: &IncidentsConfig, rec: &AlertRecord) -> bool {
        rec.kind != "escalation"
            && level_rank(rec.level().map(|l| l.name()).unwrap_or("informational"))
                >= level_rank(&cfg.min_level)
    }

    /// Merges an alert into the open incident of its rule and group, or opens one.
    pub fn on_alert(&mut self, rec: &AlertRecord, en: &Enrichment) -> Result<Incident, StoreError> {
        let cfg = self.cfg();
        let mut group: BTreeMap<String, String> = rec.group.iter().cloned().collect();
        if group.is_empty() {
            // Single-event rules: one incident per (rule, source, target) while open.
            if let Some(e) = en.source.first() {
                group.insert("source".into(), e.value.clone());
            }
            if let Some(e) = en.target.first() {
                group.insert("target".into(), e.value.clone());
            }
        }
        let rule_id = rec.meta.label();
        let key = model::group_key(&group);
        let now = self.now();
        let detected = rec.detected_at.0 / 1_000_000;
        let events: Vec<serde_json::Value> = rec
            .events
            .iter()
            .filter_map(|e| serde_json::from_slice(e).ok())
            .collect();
        let alert_id = format!("{:032x}", rec.id);
        let inc = match self.store.find_active(&rule_id, &key)? {
            Some(mut inc) => {
                match &inc.last_alert {
                    // A revision of the alert merged last: its count grew.
                    Some((id, n)) if *id == alert_id => {
                        inc.events += rec.count.saturating_sub(*n);
                    }
                    _ => {
                        inc.alerts += 1;
                        inc.events += rec.count;
                    }
                }
                inc.last_alert = Some((alert_id, rec.count));
                let ms = |t: Timestamp| t.0 / 1_000_000;
                let dl = &mut inc.data_list;
                dl.first_event = dl.first_event.min(ms(rec.first_seen));
                dl.last_event = dl.last_event.max(ms(rec.last_seen));
                inc.last_seen = inc.last_seen.max(ms(rec.last_seen));
                add_parties(&mut dl.affected_objects, parties(&en.target));
                add_parties(&mut dl.sources, parties(&en.source));
                add_accounts(&mut dl.accounts, &events);
                for e in events {
                    if dl.evidence.contains(&e) {
                        continue;
                    }
                    if dl.evidence.len() < cfg.evidence_events {
                        dl.evidence.push(e);
                    } else {
                        dl.evidence_dropped += 1;
                        self.metrics.evidence_dropped.inc();
                    }
                }
                inc.updated_at = now;
                self.metrics.merged.inc();
                inc
            }
            None => {
                let class = en.object_class().unwrap_or("").to_string();
                let organisation = en
                    .target
                    .iter()
                    .chain(&en.source)
                    .find_map(|e| e.asset.as_ref())
                    .map(|a| a.organisation.clone())
                    .unwrap_or_default();
                let (regime, deadlines) = model::deadlines(&cfg, &class, false, detected);
                let mut accounts = Vec::new();
                add_accounts(&mut accounts, &events);
                let mut evidence = events;
                let dropped = evidence.len().saturating_sub(cfg.evidence_events) as u64;
                evidence.truncate(cfg.evidence_events);
                self.metrics.evidence_dropped.add(dropped);
                let meta = &rec.meta;
                let mut inc = Incident {
                    schema: model::SCHEMA.into(),
                    id: model::incident_id(&rule_id, &key, detected),
                    status: Status::Open,
                    self_detected: false,
                    object_class: class,
                    regime,
                    organisation,
                    group,
                    alerts: 1,
                    events: rec.count,
                    detected_at: detected,
                    last_seen: rec.last_seen.0 / 1_000_000,
                    updated_at: now,
                    notified_at: None,
                    resolved_at: None,
                    deadlines,
                    data_list: DataList {
                        incident_type: incident_type(meta, &rule_id),
                        detected_at: detected,
                        first_event: rec.first_seen.0 / 1_000_000,
                        last_event: rec.last_seen.0 / 1_000_000,
                        affected_objects: parties(&en.target),
                        sources: parties(&en.source),
                        accounts,
                        evidence,
                        evidence_dropped: dropped,
                        recommendations: recommendations(&cfg, meta),
                    },
                    escalations: Vec::new(),
                    history: Vec::new(),
                    last_alert: Some((alert_id, rec.count)),
                };
                inc.record(now, "kuzet", "opened", None, Status::Open, None);
                self.metrics.opened.inc();
                inc
            }
        };
        self.store.save(&inc)?;
        Ok(inc)
    }

    /// Registers an incident its owner detected (the `self_detected` regime).
    pub fn report(&mut self, r: SelfReport, actor: &str) -> Result<Incident, ApiError> {
        let cfg = self.cfg();
        let enricher = self.shared.load();
        let now = self.now();
        let detected = match &r.detected_at {
            Some(s) => ms_rfc3339::parse(s)
                .ok_or_else(|| ApiError::new(400, format!("detected_at {s:?} is not RFC 3339")))?,
            None => now,
        };
        let level = r.level.clone().unwrap_or_else(|| "high".into());
        if !LEVELS.contains(&level.as_str()) {
            return Err(ApiError::new(
                400,
                format!("level {level:?} is not one of {}", LEVELS.join(", ")),
            ));
        }
        if r.title.trim().is_empty() {
            return Err(ApiError::new(400, "a title is needed"));
        }
        let look = |field: &str, vs: &[String]| -> Vec<Party> {
            vs.iter()
                .take(MAX_PARTIES)
                .map(|v| Party {
                    field: field.into(),
                    value: v.clone(),
                    asset: enricher.inventory.lookup(v).cloned(),
                })
                .collect()
        };
        let objects = look("object", &r.objects);
        let sources = look("source", &r.sources);
        let first_asset = objects.iter().chain(&sources).find_map(|p| p.asset.clone());
        let class = first_asset
            .as_ref()
            .map(|a| a.class.clone())
            .unwrap_or_default();
        let (regime, deadlines) = model::deadlines(&cfg, &class, true, detected);
        let mut group = BTreeMap::new();
        group.insert("reported_by".to_string(), actor.to_string());
        group.insert("objects".to_string(), r.objects.join(","));
        let rule_id = "self-detected".to_string();
        let key = model::group_key(&group);
        let meta = Meta {
            id: Some(rule_id.clone()),
            title: r.title.clone(),
            description: r.description.clone(),
            level: Level::parse(&level),
            tags: r.tags.clone(),
            ..Meta::default()
        };
        let mut inc = Incident {
            schema: model::SCHEMA.into(),
            id: model::incident_id(&rule_id, &key, detected),
            status: Status::Open,
            self_detected: true,
            object_class: class,
            regime,
            organisation: first_asset
                .map(|a| a.organisation.clone())
                .unwrap_or_default(),
            group,
            alerts: 0,
            events: 0,
            detected_at: detected,
            last_seen: detected,
            updated_at: now,
            notified_at: None,
            resolved_at: None,
            deadlines,
            data_list: DataList {
                incident_type: incident_type(&meta, &rule_id),
                detected_at: detected,
                first_event: detected,
                last_event: detected,
                affected_objects: objects,
                sources,
                accounts: r.accounts.iter().take(MAX_PARTIES).cloned().collect(),
                evidence: Vec::new(),
                evidence_dropped: 0,
                recommendations: recommendations(&cfg, &meta),
            },
            escalations: Vec::new(),
            history: Vec::new(),
            last_alert: None,
        };
        if self.store.get(&inc.id)?.is_some() {
            return Err(ApiError::new(409, format!("incident {} exists", inc.id)));
        }
        inc.record(now, actor, "reported", None, Status::Open, r.note.clone());
        self.store.save(&inc)?;
        self.metrics.self_reported.inc();
        Ok(inc)
    }

    /// Applies an operator's action.
    pub fn act(
        &mut self,
        id: &str,
        action: &Action,
        actor: &str,
        note: Option<String>,
    ) -> Result<Incident, ApiError> {
        let mut inc = self
            .store
            .get(id)?
            .ok_or_else(|| ApiError::new(404, format!("no incident {id}")))?;
        if inc.status.is_closed() {
            return Err(ApiError::new(
                409,
                format!("incident {id} is {} already", inc.status.name()),
            ));
        }
        let now = self.now();
        match action {
            Action::Ack(step) => {
                if !STEPS.contains(&step.as_str()) || step == "remediate" {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "step {step:?}: one of notify_owner, notify_authority, report, data_list (remediate: resolve)"
                        ),
                    ));
                }
                if step != "notify_owner" && !inc.deadlines.iter().any(|d| d.step == *step) {
                    return Err(ApiError::new(
                        409,
                        format!("incident {id} ({}) has no {step} step", inc.regime),
                    ));
                }
                inc.complete(step, now);
                let to = if step == "notify_owner" {
                    inc.notified_at.get_or_insert(now);
                    Status::Notified
                } else {
                    inc.status
                };
                inc.record(now, actor, "acknowledged", Some(step), to, note);
            }
            Action::Resolve | Action::FalsePositive => {
                let (to, what) = if *action == Action::Resolve {
                    (Status::Resolved, "resolved")
                } else {
                    (Status::FalsePositive, "false_positive")
                };
                inc.complete("remediate", now);
                inc.resolved_at = Some(now);
                inc.record(now, actor, what, None, to, note);
            }
        }
        self.store.save(&inc)?;
        self.metrics.actions.inc();
        Ok(inc)
    }

    /// The deadline watcher's pass: every deadline due by now whose step is not done is
    /// marked escalated (persisted first) and returned as an escalation alert with the
    /// incident's object class.
    pub fn escalate_due(&mut self) -> Result<Vec<(AlertRecord, String)>, StoreError> {
        let now = self.now();
        let mut out = Vec::new();
        for mut inc in self.store.due(now, MAX_DUE_PER_PASS)? {
            let mut fired: Vec<Deadline> = Vec::new();
            for d in &mut inc.deadlines {
                if d.done_at.is_none() && d.escalated_at.is_none() && d.due < now {
                    d.escalated_at = Some(now);
                    fired.push(d.clone());
                }
            }
            for d in &fired {
                let rec = escalation_alert(&inc, d, now);
                inc.escalations.push(Escalation {
                    step: d.step.clone(),
                    due: d.due,
                    at: now,
                    alert_id: format!("{:032x}", rec.id),
                });
                let status = inc.status;
                inc.record(
                    now,
                    "kuzet",
                    "escalated",
                    Some(&d.step),
                    status,
                    Some(format!("due {}", ms_rfc3339::format(d.due))),
                );
                out.push((rec, inc.object_class.clone()));
            }
            self.store.save(&inc)?;
        }
        self.metrics.escalations.add(out.len() as u64);
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        self.store.get(id)
    }

    pub fn list(&self, f: &Filter) -> Result<Vec<Incident>, StoreError> {
        self.store.list(f)
    }

    /// Serves one API operation.
    pub fn handle(&mut self, op: ApiOp) -> ApiReply {
        let json = |inc: &Incident| {
            serde_json::to_value(inc).map_err(|e| ApiError::new(500, e.to_string()))
        };
        match op {
            ApiOp::List(f) => {
                let list = self.store.list(&f)?;
                Ok(serde_json::json!({ "incidents": list, "count": list.len() }))
            }
            ApiOp::Get(id) => match self.store.get(&id)? {
                Some(inc) => json(&inc),
                None => Err(ApiError::new(404, format!("no incident {id}"))),
            },
            ApiOp::Act {
                id,
                action,
                actor,
                note,
            } => json(&self.act(&id, &action, &actor, note)?),
            ApiOp::Report { report, actor } => json(&self.report(report, &actor)?),
        }
    }
}

fn incident_type(meta: &Meta, rule_id: &str) -> IncidentType {
    IncidentType {
        rule_id: rule_id.to_string(),
        title: meta.title.clone(),
        level: meta
            .level
            .map(|l| l.name())
            .unwrap_or("informational")
            .to_string(),
        tags: meta.tags.clone(),
        attack: meta
            .tags
            .iter()
            .filter(|t| t.to_ascii_lowercase().starts_with("attack."))
            .cloned()
            .collect(),
        description: meta.description.clone(),
    }
}

fn add_accounts(into: &mut Vec<String>, events: &[serde_json::Value]) {
    for ev in events {
        for f in ACCOUNT_FIELDS {
            if let Some(v) = ev.get(*f).and_then(|v| v.as_str())
                && !v.is_empty()
                && v != "-"
                && into.len() < MAX_PARTIES
                && !into.iter().any(|a| a == v)
            {
                into.push(v.to_string());
            }
        }
    }
}

/// The rule's own `recommendation`, else the table's entry for its most specific tag:
/// techniques (and their parent technique) before tactics, in the rule's order.
pub fn recommendations(cfg: &IncidentsConfig, meta: &Meta) -> Vec<String> {
    if let Some(r) = meta.custom.get("recommendation") {
        let text = match r {
            serde_json::Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        if !text.is_empty() {
            return vec![text];
        }
    }
    let lower: Vec<String> = meta.tags.iter().map(|t| t.to_ascii_lowercase()).collect();
    let mut candidates: Vec<String> = Vec::new();
    for t in lower.iter().filter(|t| t.starts_with("attack.t")) {
        candidates.push(t.clone());
        if let Some((parent, _)) = t.split_once('.').and_then(|(_, r)| r.split_once('.')) {
            candidates.push(format!("attack.{parent}"));
        }
    }
    candidates.extend(lower.iter().filter(|t| !t.starts_with("attack.t")).cloned());
    candidates
        .iter()
        .find_map(|t| cfg.recommendations.get(t))
        .map(|r| vec![r.clone()])
        .unwrap_or_default()
}

/// The alert sent when `d` passes without its step.
fn escalation_alert(inc: &Incident, d: &Deadline, now: i64) -> AlertRecord {
    let it = &inc.data_list.incident_type;
    let mut tags = it.tags.clone();
    tags.push("kuzet.escalation".into());
    let class = if inc.object_class.is_empty() {
        "unknown"
    } else {
        &inc.object_class
    };
    let meta = Meta {
        id: Some(format!("kuzet-escalation-{}", d.step)),
        title: format!("Incident deadline missed: {} ({})", d.step, it.title),
        author: Some("kuzet".into()),
        level: Level::parse(&it.level),
        tags,
        description: Some(format!(
            "Incident {} on a {class} object ({}) was detected at {}; its {} deadline passed at {} without the step.",
            inc.id,
            inc.organisation,
            ms_rfc3339::format(inc.detected_at),
            d.step,
            ms_rfc3339::format(d.due)
        )),
        ..Meta::default()
    };
    let id = Fnv128::default()
        .write(inc.id.as_bytes())
        .write(d.step.as_bytes())
        .finish();
    let ts = |ms: i64| Timestamp(ms.saturating_mul(1_000_000));
    AlertRecord {
        id,
        meta: Arc::new(meta),
        kind: "escalation",
        group: vec![
            ("incident".into(), inc.id.clone()),
            ("step".into(), d.step.clone()),
            ("object_class".into(), inc.object_class.clone()),
        ],
        count: inc.events,
        metric: None,
        revision: 0,
        first_seen: ts(inc.data_list.first_event),
        last_seen: ts(inc.data_list.last_event),
        detected_at: ts(now),
        events: vec![serde_json::to_vec(inc).unwrap_or_default()],
        received: None,
    }
}

/// What the dispatcher hands the incidents thread.
pub struct IncidentMsg {
    pub rec: Arc<AlertRecord>,
    pub enrichment: Arc<Enrichment>,
}

/// Runs the incidents thread until `alerts` closes. `emit` hands an escalation alert (and
/// its object class) to the sinks.
pub fn run(
    mut mgr: Manager,
    alerts: Receiver<IncidentMsg>,
    api: Receiver<ApiRequest>,
    interval: Duration,
    mut emit: impl FnMut(AlertRecord, &str),
) {
    let mut last_watch = std::time::Instant::now();
    let mut api_open = true;
    let watch =
        |mgr: &mut Manager, emit: &mut dyn FnMut(AlertRecord, &str)| match mgr.escalate_due() {
            Ok(list) => {
                for (rec, class) in list {
                    emit(rec, &class);
                }
            }
            Err(e) => {
                mgr.metrics.store_errors.inc();
                eprintln!("kuzet: incidents: deadline watcher: {e}");
            }
        };
    watch(&mut mgr, &mut emit);
    loop {
        let tick = interval.saturating_sub(last_watch.elapsed());
        let never = crossbeam_channel::never();
        let api_rx = if api_open { &api } else { &never };
        select! {
            recv(alerts) -> msg => match msg {
                Ok(m) => {
                    if let Err(e) = mgr.on_alert(&m.rec, &m.enrichment) {
                        mgr.metrics.store_errors.inc();
                        if mgr.metrics.store_errors.get().is_power_of_two() {
                            eprintln!("kuzet: incidents: {e} (alert {:032x} not recorded)", m.rec.id);
                        }
                    }
                }
                Err(_) => break,
            },
            recv(api_rx) -> req => match req {
                Ok(r) => {
                    let reply = mgr.handle(r.op);
                    let _ = r.reply.send(reply);
                }
                Err(_) => api_open = false,
            },
            default(tick) => {}
        }
        if last_watch.elapsed() >= interval {
            last_watch = std::time::Instant::now();
            watch(&mut mgr, &mut emit);
        }
    }
    // Answer what the API still asked, then stop.
    while let Ok(r) = api.try_recv() {
        let _ = r.reply.send(Err(ApiError::new(503, "shutting down")));
    }
}
