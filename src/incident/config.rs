//! The `[incidents]` config section: asset inventories, the deadline regimes per object
//! class, which alert fields name the source and target hosts, default recommendations per
//! tag, and the bounds of the incidents thread. Read by `config.rs` (the whole file) and
//! validated here; the incident logic itself lives in the sibling modules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{ConfigError, LEVELS, Span};

/// The steps a deadline can guard, and what satisfies each (issue 7):
///
/// | step | satisfied by |
/// |---|---|
/// | `notify_owner` | acknowledging the notification of the responsible persons (status `notified`) |
/// | `notify_authority` | acknowledging step `notify_authority` (the national security authority was told) |
/// | `remediate` | `resolved` or `false_positive` |
/// | `report` | acknowledging step `report` (self-detected: the owner's report reached the centre) |
/// | `data_list` | acknowledging step `data_list` (self-detected: the data list was sent) |
pub const STEPS: &[&str] = &[
    "notify_owner",
    "notify_authority",
    "remediate",
    "report",
    "data_list",
];

/// The regime of incidents an owner reported itself (`POST /incidents`, `kuzet` API).
pub const SELF_DETECTED: &str = "self_detected";
/// The regime of objects whose class has no regime of its own (and of unknown objects).
pub const DEFAULT_REGIME: &str = "default";

/// Which event fields name the source and the target host of an alert, for the rules of one
/// logsource. The first entry whose `logsource` the rule's logsource satisfies applies.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldsConfig {
    /// `product=windows`, `product=linux,service=sshd`; empty: every rule.
    #[serde(default)]
    pub logsource: String,
    /// Fields holding the source (initiating, attacking) address or host name, in order.
    #[serde(default)]
    pub source: Vec<String>,
    /// Fields holding the destination / target host, in order.
    #[serde(default)]
    pub target: Vec<String>,
}

/// `[incidents]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// Turn alerts into incidents (stored in `<state.dir>/incidents.sqlite3`, or in memory
    /// without a state directory).
    pub enabled: bool,
    /// Asset inventories: `.csv` (with a header) or `.toml` files; reloaded with the rules.
    pub assets: Vec<PathBuf>,
    /// Alerts below this level do not open incidents.
    pub min_level: String,
    /// Alerts queued for the incidents thread; when full, the dispatcher waits (backpressure).
    pub queue: usize,
    /// Evidence events kept per incident; later ones only count.
    pub evidence_events: usize,
    /// How often deadlines are checked.
    pub watch_interval: Span,
    /// Regime name → step → period from detection. An object's class picks the regime of the
    /// same name, else `default`; owner-reported incidents use `self_detected`. A regime
    /// given in the file replaces that regime's steps; the others keep their defaults.
    #[serde(deserialize_with = "over_default_regimes")]
    pub regimes: BTreeMap<String, BTreeMap<String, Span>>,
    /// Tag (`attack.t1110`, `attack.credential-access`) → initial recommendation, used when
    /// the rule carries no `recommendation` of its own. The most specific tag wins (the
    /// rule's tags in order, techniques before tactics). Entries given are added to (or
    /// replace) the defaults.
    #[serde(deserialize_with = "over_default_recommendations")]
    pub recommendations: BTreeMap<String, String>,
    /// Source/target fields per logsource (first match wins).
    pub fields: Vec<FieldsConfig>,
}

fn over_default_regimes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, BTreeMap<String, Span>>, D::Error> {
    let mut all = IncidentsConfig::default().regimes;
    all.extend(BTreeMap::<String, BTreeMap<String, Span>>::deserialize(d)?);
    Ok(all)
}

fn over_default_recommendations<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let mut all = IncidentsConfig::default().recommendations;
    all.extend(BTreeMap::<String, String>::deserialize(d)?);
    Ok(all)
}

fn regime(steps: &[(&str, u64)]) -> BTreeMap<String, Span> {
    steps
        .iter()
        .map(|(k, s)| (k.to_string(), Span::secs(*s)))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const MIN: u64 = 60;
const HOUR: u64 = 3600;

impl Default for IncidentsConfig {
    fn default() -> Self {
        // The periods of the regulation (issue 7), counted from detection.
        let mut regimes = BTreeMap::new();
        regimes.insert(DEFAULT_REGIME.into(), regime(&[("notify_owner", 30 * MIN)]));
        regimes.insert(
            "state_body".into(),
            regime(&[
                ("notify_owner", 30 * MIN),
                ("notify_authority", 3 * HOUR),
                ("remediate", 48 * HOUR),
            ]),
        );
        for c in ["egov", "critical_infrastructure"] {
            regimes.insert(
                c.into(),
                regime(&[("notify_owner", 30 * MIN), ("remediate", 75 * HOUR)]),
            );
        }
        regimes.insert(
            SELF_DETECTED.into(),
            regime(&[("report", 15 * MIN), ("data_list", 24 * HOUR)]),
        );
        let recommendations = [
            (
                "attack.t1110",
                "Block the source addresses, lock or reset the targeted accounts, and check for a successful login from the same sources.",
            ),
            (
                "attack.credential-access",
                "Reset the credentials involved and review recent logins of the affected accounts.",
            ),
            (
                "attack.initial-access",
                "Isolate the affected host from the network and preserve its logs for analysis.",
            ),
            (
                "attack.persistence",
                "Remove the persistence mechanism found in the evidence and check the host for others.",
            ),
            (
                "attack.privilege-escalation",
                "Review the privileges granted and revoke those not approved.",
            ),
            (
                "attack.defense-evasion",
                "Preserve the host's remaining logs and forward them off the host; investigate who cleared or disabled them.",
            ),
            (
                "attack.discovery",
                "Check whether the scanning source is authorised; block it at the perimeter if not.",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        IncidentsConfig {
            enabled: true,
            assets: Vec::new(),
            min_level: "medium".into(),
            queue: 1024,
            evidence_events: 50,
            watch_interval: Span::secs(10),
            regimes,
            recommendations,
            fields: vec![
                FieldsConfig {
                    logsource: "product=windows".into(),
                    source: strings(&["IpAddress", "src_ip", "WorkstationName", "src_host"]),
                    target: strings(&["Computer", "dst_ip", "hostname"]),
                },
                FieldsConfig {
                    logsource: String::new(),
                    source: strings(&["src_ip", "src_host"]),
                    target: strings(&["dst_ip", "dst_host", "hostname", "host", "Computer"]),
                },
            ],
        }
    }
}

impl IncidentsConfig {
    /// Every problem, with its key path under `incidents.`.
    pub fn validate(&self, errs: &mut Vec<ConfigError>) {
        let mut err = |path: String, reason: String| errs.push(ConfigError { path, reason });
        if !LEVELS.contains(&self.min_level.as_str()) {
            err(
                "incidents.min_level".into(),
                format!("{:?} is not one of {}", self.min_level, LEVELS.join(", ")),
            );
        }
        for (k, v) in [
            ("queue", self.queue),
            ("evidence_events", self.evidence_events),
        ] {
            if v == 0 {
                err(format!("incidents.{k}"), "must be at least 1".into());
            }
        }
        if self.watch_interval.0.is_zero() {
            err(
                "incidents.watch_interval".into(),
                "must be more than 0".into(),
            );
        }
        for name in [DEFAULT_REGIME, SELF_DETECTED] {
            if !self.regimes.contains_key(name) {
                err(
                    format!("incidents.regimes.{name}"),
                    "this regime is required".into(),
                );
            }
        }
        for (r, steps) in &self.regimes {
            for (step, span) in steps {
                let p = format!("incidents.regimes.{r}.{step}");
                if !STEPS.contains(&step.as_str()) {
                    err(p, format!("unknown step (one of {})", STEPS.join(", ")));
                } else if span.0.is_zero() {
                    err(p, "must be more than 0".into());
                }
            }
        }
        for (i, f) in self.fields.iter().enumerate() {
            if let Err(e) = crate::cli::replay::parse_logsource(&f.logsource) {
                err(format!("incidents.fields[{i}].logsource"), e.to_string());
            }
        }
        for (i, p) in self.assets.iter().enumerate() {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "csv" | "toml") {
                err(
                    format!("incidents.assets[{i}]"),
                    format!("{}: an inventory is a .csv or .toml file", p.display()),
                );
            }
        }
    }
}
