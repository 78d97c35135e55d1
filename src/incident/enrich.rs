//! Alert enrichment, in the alert dispatcher: which hosts an alert names (its source and its
//! target), and which inventory asset each one is. The result is added to the alert's JSON
//! (`assets`), picks the object class that routes it to sinks, and feeds the incident.
//!
//! Which fields name the hosts depends on the rule's logsource (`[[incidents.fields]]`); a
//! correlation takes the logsource of the first detection rule it counts. Everything here is
//! decided when rules and inventories load ([`Enricher::new`]); per alert it only reads the
//! group values and the evidence events. Alerts are rare next to events, so parsing the
//! rendered evidence here costs nothing on the hot path.

use std::sync::Arc;

use hashbrown::HashMap;
use serde::Serialize;

use super::assets::{Asset, Inventory};
use super::config::IncidentsConfig;
use crate::correlator::Source;
use crate::engine::Engine;
use crate::sigma::Logsource;
use crate::sink::alert::AlertRecord;

/// Host values read per side, at most (an alert over 10,000 events names few hosts that
/// matter; the bound keeps the alert small).
pub const MAX_ENDPOINTS: usize = 16;

/// A host an alert names, and its asset when the inventory knows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Endpoint {
    pub field: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<Arc<Asset>>,
}

/// What the enricher found in one alert.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Enrichment {
    pub source: Vec<Endpoint>,
    pub target: Vec<Endpoint>,
}

impl Enrichment {
    /// The object class the alert is about: the first target asset's, else the first
    /// source asset's.
    pub fn object_class(&self) -> Option<&str> {
        self.target
            .iter()
            .chain(&self.source)
            .find_map(|e| e.asset.as_ref())
            .map(|a| a.class.as_str())
            .filter(|c| !c.is_empty())
    }

    pub fn has_assets(&self) -> bool {
        self.source
            .iter()
            .chain(&self.target)
            .any(|e| e.asset.is_some())
    }

    /// Appends `,"assets":{...}` inside the alert object `line` (which ends with `}`), when
    /// an asset matched; the alert contract only ever gains fields.
    pub fn splice_into(&self, line: &mut Vec<u8>) {
        if !self.has_assets() || line.last() != Some(&b'}') {
            return;
        }
        line.pop();
        line.extend_from_slice(b",\"assets\":");
        if serde_json::to_writer(&mut *line, self).is_err() {
            line.extend_from_slice(b"null");
        }
        line.push(b'}');
    }
}

struct FieldSet {
    logsource: Logsource,
    source: Vec<String>,
    target: Vec<String>,
}

/// The inventory and field choices of one rule generation; swapped whole on reload.
pub struct Enricher {
    /// The `[incidents]` section these choices were made from (regimes, recommendations).
    pub cfg: Arc<IncidentsConfig>,
    pub inventory: Arc<Inventory>,
    sets: Vec<FieldSet>,
    /// Rule label → index into `sets`.
    by_rule: HashMap<String, usize>,
    /// For rules not in `by_rule` (a rule with no logsource).
    fallback: Option<usize>,
}

impl Enricher {
    /// Decides, for every rule of `engine`, which fields it reads hosts from.
    pub fn new(
        cfg: Arc<IncidentsConfig>,
        inventory: Arc<Inventory>,
        engine: Option<&Engine>,
    ) -> Self {
        let sets: Vec<FieldSet> = cfg
            .fields
            .iter()
            .map(|f| FieldSet {
                logsource: crate::cli::replay::parse_logsource(&f.logsource).unwrap_or_default(),
                source: f.source.clone(),
                target: f.target.clone(),
            })
            .collect();
        let pick = |ls: &Logsource| sets.iter().position(|s| s.logsource.is_satisfied_by(ls));
        let fallback = pick(&Logsource::default());
        let mut by_rule = HashMap::new();
        if let Some(engine) = engine {
            let rules = &engine.rules;
            for r in 0..rules.len() {
                let c = rules.rule(crate::matcher::RuleId(r as u32));
                if let Some(i) = pick(&c.logsource) {
                    by_rule.insert(c.meta.label(), i);
                }
            }
            // A correlation reads the hosts its first counted detection rule names.
            let corrs = &engine.correlations;
            for c in &corrs.list {
                let mut src = c.sources.first().copied();
                let mut hops = 0;
                while let Some(Source::Corr(id)) = src {
                    src = corrs.get(id).sources.first().copied();
                    hops += 1;
                    if hops > corrs.list.len() {
                        break;
                    }
                }
                if let Some(Source::Rule(r)) = src
                    && let Some(i) = pick(&rules.rule(r).logsource)
                {
                    by_rule.insert(c.meta.label(), i);
                }
            }
        }
        Enricher {
            cfg,
            inventory,
            sets,
            by_rule,
            fallback,
        }
    }

    /// The hosts an alert names, with their assets.
    pub fn enrich(&self, rec: &AlertRecord) -> Enrichment {
        let Some(set) = self
            .by_rule
            .get(&rec.meta.label())
            .copied()
            .or(self.fallback)
            .map(|i| &self.sets[i])
        else {
            return Enrichment::default();
        };
        let events: Vec<serde_json::Map<String, serde_json::Value>> = rec
            .events
            .iter()
            .filter_map(|e| serde_json::from_slice(e).ok())
            .collect();
        Enrichment {
            source: self.side(&set.source, rec, &events),
            target: self.side(&set.target, rec, &events),
        }
    }

    fn side(
        &self,
        fields: &[String],
        rec: &AlertRecord,
        events: &[serde_json::Map<String, serde_json::Value>],
    ) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        let mut push = |field: &str, value: &str| {
            if out.len() >= MAX_ENDPOINTS
                || value.is_empty()
                || value == "-"
                || out.iter().any(|e| e.value == value)
            {
                return;
            }
            out.push(Endpoint {
                field: field.to_string(),
                value: value.to_string(),
                asset: self.inventory.lookup(value).cloned(),
            });
        };
        for f in fields {
            for (k, v) in &rec.group {
                if k == f {
                    push(f, v);
                }
            }
            for ev in events {
                match ev.get(f) {
                    Some(serde_json::Value::String(s)) => push(f, s),
                    Some(serde_json::Value::Array(a)) => {
                        for s in a.iter().filter_map(|v| v.as_str()) {
                            push(f, s);
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;
    use crate::sigma::Meta;

    /// An alert of `meta` grouped by `group` over the evidence `events` (JSON objects).
    fn alert(meta: Arc<Meta>, group: &[(&str, &str)], events: &[&str]) -> AlertRecord {
        AlertRecord {
            id: 1,
            meta,
            kind: "event_count",
            group: group
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            count: events.len() as u64,
            metric: None,
            revision: 0,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            detected_at: Timestamp(0),
            events: events.iter().map(|e| e.as_bytes().to_vec()).collect(),
            received: None,
        }
    }

    #[test]
    fn windows_rules_read_windows_fields_and_correlations_follow_their_detection_rule() {
        let engine = crate::engine::build(
            &crate::engine::EngineConfig::default(),
            &[&crate::parser::ParserConfig::default()],
        )
        .unwrap();
        let inv = Inventory::from_assets(vec![
            Asset {
                hostname: "dc01".into(),
                class: "state_body".into(),
                ..Asset::default()
            },
            Asset {
                ip: "10.10.0.0/16".into(),
                class: "state_body".into(),
                department: "HQ".into(),
                ..Asset::default()
            },
        ])
        .unwrap();
        let e = Enricher::new(
            Arc::new(IncidentsConfig::default()),
            Arc::new(inv),
            Some(&engine),
        );
        // The shipped correlation counts Windows logon failures (product: windows).
        let corr = engine
            .correlations
            .list
            .iter()
            .find(|c| c.meta.title == "Windows Logon Brute Force From One Source")
            .unwrap();
        let rec = alert(
            corr.meta.clone(),
            &[],
            &[
                r#"{"Computer":"DC01.corp.local","IpAddress":"::ffff:10.10.9.9","hostname":"relay01"}"#,
            ],
        );
        let en = e.enrich(&rec);
        // Windows' own names first: the target is `Computer`, not the relay's syslog hostname.
        assert_eq!(en.target[0].field, "Computer");
        assert_eq!(en.target[0].asset.as_ref().unwrap().hostname, "dc01");
        assert_eq!(en.source[0].field, "IpAddress");
        assert_eq!(en.source[0].asset.as_ref().unwrap().department, "HQ");
        // A Linux rule's alert reads the taxonomy's names instead.
        let linux = engine
            .correlations
            .list
            .iter()
            .find(|c| c.meta.title == "SSH Brute Force From One Source")
            .unwrap();
        let rec = AlertRecord {
            meta: linux.meta.clone(),
            ..rec
        };
        let en = e.enrich(&rec);
        assert_eq!(en.target[0].field, "hostname");
        assert!(en.source.is_empty(), "IpAddress is not a Linux field");
    }

    #[test]
    fn hosts_come_from_group_values_and_evidence_and_pick_the_class() {
        let inv = Inventory::from_assets(vec![
            Asset {
                hostname: "web01".into(),
                ip: "192.0.2.10".into(),
                class: "egov".into(),
                ..Asset::default()
            },
            Asset {
                ip: "203.0.113.0/24".into(),
                class: "external_partner".into(),
                ..Asset::default()
            },
        ])
        .unwrap();
        let e = Enricher::new(Arc::new(IncidentsConfig::default()), Arc::new(inv), None);
        let rec = alert(
            Arc::new(Meta {
                title: "t".into(),
                ..Meta::default()
            }),
            &[("src_ip", "203.0.113.7")],
            &[
                r#"{"hostname":"web01","src_ip":"203.0.113.7"}"#,
                r#"{"hostname":"WEB01.corp","src_ip":"203.0.113.7"}"#,
            ],
        );
        let en = e.enrich(&rec);
        assert_eq!(en.source.len(), 1);
        assert_eq!(
            en.source[0].asset.as_ref().unwrap().class,
            "external_partner"
        );
        assert_eq!(en.target.len(), 2);
        assert_eq!(en.object_class(), Some("egov"));
        let mut line = b"{\"a\":1}".to_vec();
        en.splice_into(&mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["assets"]["target"][0]["asset"]["hostname"], "web01");
        assert_eq!(v["a"], 1);
    }
}
