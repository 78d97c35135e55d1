//! The incident record (`kuzet.incident/1`): what the responsible person receives and what the
//! regulator asks for. Plain data with its JSON form, the deadline arithmetic and the status
//! lifecycle; storage is `store.rs`, the thread that drives it is `manager.rs`.
//!
//! Times are integer milliseconds since the Unix epoch in memory and RFC 3339 UTC in JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::assets::Asset;
use super::config::{IncidentsConfig, SELF_DETECTED};
use crate::config::Span;
use crate::sink::alert::Fnv128;

pub const SCHEMA: &str = "kuzet.incident/1";

/// Milliseconds since the epoch, RFC 3339 in JSON.
pub mod ms_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(ms: i64) -> String {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ms.to_string())
    }

    pub fn parse(s: &str) -> Option<i64> {
        s.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not RFC 3339")))
    }

    /// The same for `Option<i64>` (`null` when absent).
    pub mod opt {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(m) => s.serialize_str(&super::format(*m)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::parse(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not RFC 3339"))),
            }
        }
    }
}

/// Where an incident is in its life. `open` → `notified` → `resolved`, or `false_positive`
/// from `open` or `notified`. Closed incidents take no new alerts: the next alert for the
/// same rule and group opens a new incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Notified,
    Resolved,
    FalsePositive,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::Notified,
        Status::Resolved,
        Status::FalsePositive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Notified => "notified",
            Status::Resolved => "resolved",
            Status::FalsePositive => "false_positive",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Status::Resolved | Status::FalsePositive)
    }
}

/// A period the regulation sets, counted from detection, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// One of `config::STEPS`.
    pub step: String,
    #[serde(with = "ms_rfc3339")]
    pub due: i64,
    /// When the step was done (acknowledged, resolved).
    #[serde(with = "ms_rfc3339::opt", default)]
    pub done_at: Option<i64>,
    /// When the missed deadline was escalated (at most once).
    #[serde(with = "ms_rfc3339::opt", default)]
    pub escalated_at: Option<i64>,
}

impl Deadline {
    /// Missed: done late, or not done by `now`.
    pub fn missed(&self, now: i64) -> bool {
        match self.done_at {
            Some(d) => d > self.due,
            None => now > self.due,
        }
    }
}

/// Deadlines from `detected_at` under `regime` (a name in `cfg.regimes`). For a
/// self-detected incident, the `self_detected` steps plus the class regime's steps other
/// than `notify_owner` (the owner is the one reporting).
pub fn deadlines(
    cfg: &IncidentsConfig,
    class: &str,
    self_detected: bool,
    detected_at: i64,
) -> (String, Vec<Deadline>) {
    let regime = regime_of(cfg, class);
    let mut steps: Vec<(&String, &Span)> = Vec::new();
    if self_detected {
        if let Some(r) = cfg.regimes.get(SELF_DETECTED) {
            steps.extend(r.iter());
        }
        if let Some(r) = cfg.regimes.get(&regime) {
            steps.extend(r.iter().filter(|(k, _)| *k != "notify_owner"));
        }
    } else if let Some(r) = cfg.regimes.get(&regime) {
        steps.extend(r.iter());
    }
    let mut out: Vec<Deadline> = steps
        .into_iter()
        .map(|(step, span)| Deadline {
            step: step.clone(),
            due: detected_at.saturating_add(span.as_millis()),
            done_at: None,
            escalated_at: None,
        })
        .collect();
    out.sort_by(|a, b| a.due.cmp(&b.due).then_with(|| a.step.cmp(&b.step)));
    let name = if self_detected {
        format!("{SELF_DETECTED}+{regime}")
    } else {
        regime
    };
    (name, out)
}

/// The regime an object class falls under.
pub fn regime_of(cfg: &IncidentsConfig, class: &str) -> String {
    if !class.is_empty() && class != SELF_DETECTED && cfg.regimes.contains_key(class) {
        class.to_string()
    } else {
        super::config::DEFAULT_REGIME.to_string()
    }
}

/// One recorded change: who did what, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    #[serde(with = "ms_rfc3339")]
    pub at: i64,
    pub actor: String,
    /// `opened`, `reported`, `acknowledged`, `resolved`, `false_positive`, `escalated`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<String>,
    pub from: Status,
    pub to: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// The rule (incident type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentType {
    pub rule_id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
    /// The ATT&CK tags among `tags` (`attack.t1110.001`, `attack.credential-access`).
    pub attack: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
}

/// An affected object or a source, with its inventory entry when known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub field: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub asset: Option<Arc<Asset>>,
}

/// What the notification to the responsible persons must contain (issue 7).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataList {
    pub incident_type: IncidentType,
    #[serde(with = "ms_rfc3339")]
    pub detected_at: i64,
    #[serde(with = "ms_rfc3339")]
    pub first_event: i64,
    #[serde(with = "ms_rfc3339")]
    pub last_event: i64,
    /// The target hosts (owner, location, responsible person from the inventory).
    pub affected_objects: Vec<Party>,
    /// Source addresses and hosts.
    pub sources: Vec<Party>,
    /// Accounts the evidence names (`user`, `target_user`, `TargetUserName`, ...).
    pub accounts: Vec<String>,
    /// The evidence events (at most `incidents.evidence_events`).
    pub evidence: Vec<serde_json::Value>,
    /// Evidence events seen beyond the cap (counted, not kept).
    pub evidence_dropped: u64,
    pub recommendations: Vec<String>,
}

/// An escalation raised for a missed deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub step: String,
    #[serde(with = "ms_rfc3339")]
    pub due: i64,
    #[serde(with = "ms_rfc3339")]
    pub at: i64,
    /// The id of the escalation alert sent through the sinks.
    pub alert_id: String,
}

/// One incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub schema: String,
    /// 32 hex digits: FNV-1a 128 of (rule id, group key, first detection time in ms).
    pub id: String,
    pub status: Status,
    pub self_detected: bool,
    /// The object class the regime was chosen by (empty: unknown object).
    pub object_class: String,
    /// Regime name (`state_body`, `egov`, ..., `default`; `self_detected+<class regime>`).
    pub regime: String,
    /// The organisation of the first affected object (reports group by it).
    pub organisation: String,
    /// Group-by values of the correlation (or, for single-event rules, the hosts named).
    pub group: BTreeMap<String, String>,
    /// Alerts merged into this incident (revisions of one alert count once).
    pub alerts: u64,
    /// Events counted by those alerts.
    pub events: u64,
    #[serde(with = "ms_rfc3339")]
    pub detected_at: i64,
    #[serde(with = "ms_rfc3339")]
    pub last_seen: i64,
    #[serde(with = "ms_rfc3339")]
    pub updated_at: i64,
    #[serde(with = "ms_rfc3339::opt", default)]
    pub notified_at: Option<i64>,
    #[serde(with = "ms_rfc3339::opt", default)]
    pub resolved_at: Option<i64>,
    pub deadlines: Vec<Deadline>,
    pub data_list: DataList,
    pub escalations: Vec<Escalation>,
    pub history: Vec<Change>,
    /// The last merged alert's id and count (to count revisions once).
    #[serde(default)]
    pub last_alert: Option<(String, u64)>,
}

/// The stable id of an incident.
pub fn incident_id(rule_id: &str, group_key: &str, detected_at_ms: i64) -> String {
    format!(
        "{:032x}",
        Fnv128::default()
            .write(rule_id.as_bytes())
            .write(group_key.as_bytes())
            .write(&detected_at_ms.to_le_bytes())
            .finish()
    )
}

/// The group key incidents merge on: `k=v` pairs joined by `\x1f`.
pub fn group_key(group: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (i, (k, v)) in group.iter().enumerate() {
        if i > 0 {
            s.push('\x1f');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

impl Incident {
    /// The earliest deadline still waiting for its step and not escalated (`None`: nothing
    /// for the watcher to do).
    pub fn next_due(&self) -> Option<i64> {
        if self.status.is_closed() {
            return None;
        }
        self.deadlines
            .iter()
            .filter(|d| d.done_at.is_none() && d.escalated_at.is_none())
            .map(|d| d.due)
            .min()
    }

    /// Marks `step` done at `now` (no-op when done before).
    pub fn complete(&mut self, step: &str, now: i64) {
        for d in &mut self.deadlines {
            if d.step == step && d.done_at.is_none() {
                d.done_at = Some(now);
            }
        }
    }

    pub fn record(
        &mut self,
        at: i64,
        actor: &str,
        action: &str,
        step: Option<&str>,
        to: Status,
        note: Option<String>,
    ) {
        self.history.push(Change {
            at,
            actor: actor.to_string(),
            action: action.to_string(),
            step: step.map(str::to_string),
            from: self.status,
            to,
            note,
        });
        self.status = to;
        self.updated_at = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn due(ds: &[Deadline]) -> Vec<(String, i64)> {
        ds.iter().map(|d| (d.step.clone(), d.due)).collect()
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn deadlines_of_every_regime_are_the_regulations_periods() {
        let cfg = IncidentsConfig::default();
        let t0 = 1_700_000_000_000;
        let (r, d) = deadlines(&cfg, "state_body", false, t0);
        assert_eq!(r, "state_body");
        assert_eq!(
            due(&d),
            vec![
                (s("notify_owner"), t0 + 30 * MIN),
                (s("notify_authority"), t0 + 3 * HOUR),
                (s("remediate"), t0 + 48 * HOUR),
            ]
        );
        for class in ["egov", "critical_infrastructure"] {
            let (r, d) = deadlines(&cfg, class, false, t0);
            assert_eq!(r, class);
            assert_eq!(
                due(&d),
                vec![
                    (s("notify_owner"), t0 + 30 * MIN),
                    (s("remediate"), t0 + 75 * HOUR),
                ]
            );
        }
        // Unknown or custom classes, and unknown objects: notify within 30 minutes.
        for class in ["", "branch_office"] {
            let (r, d) = deadlines(&cfg, class, false, t0);
            assert_eq!(r, "default");
            assert_eq!(due(&d), vec![(s("notify_owner"), t0 + 30 * MIN)]);
        }
        // Self-detected: report in 15 minutes, data list in 24 hours, and the class's other
        // steps still run.
        let (r, d) = deadlines(&cfg, "", true, t0);
        assert_eq!(r, "self_detected+default");
        assert_eq!(
            due(&d),
            vec![
                (s("report"), t0 + 15 * MIN),
                (s("data_list"), t0 + 24 * HOUR)
            ]
        );
        let (_, d) = deadlines(&cfg, "state_body", true, t0);
        assert_eq!(
            due(&d),
            vec![
                (s("report"), t0 + 15 * MIN),
                (s("notify_authority"), t0 + 3 * HOUR),
                (s("data_list"), t0 + 24 * HOUR),
                (s("remediate"), t0 + 48 * HOUR),
            ]
        );
        // Regimes are configuration: a custom class with its own regime.
        let mut cfg = cfg;
        cfg.regimes.insert(
            "bank".into(),
            [(s("notify_owner"), Span::secs(600))].into_iter().collect(),
        );
        let (r, d) = deadlines(&cfg, "bank", false, t0);
        assert_eq!(r, "bank");
        assert_eq!(due(&d), vec![(s("notify_owner"), t0 + 10 * MIN)]);
    }

    #[test]
    fn ids_are_stable_and_times_round_trip() {
        let a = incident_id("r", "src_ip=1.2.3.4", 5);
        assert_eq!(a, incident_id("r", "src_ip=1.2.3.4", 5));
        assert_ne!(a, incident_id("r", "src_ip=1.2.3.4", 6));
        assert_eq!(a.len(), 32);
        let t = 1_700_000_000_123;
        assert_eq!(ms_rfc3339::parse(&ms_rfc3339::format(t)), Some(t));
        let d = Deadline {
            step: "remediate".into(),
            due: 10,
            done_at: None,
            escalated_at: None,
        };
        assert!(!d.missed(10) && d.missed(11));
    }
}
