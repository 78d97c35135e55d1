//! Incidents (issue 7) below the daemon: alerts merged into incidents over a real SQLite
//! database in a temporary state directory, persistence across a "restart" (a new manager
//! on the same directory), the deadline watcher driven by a hand-set clock (no sleeping),
//! sink routing by object class, and the admin API's token rules on a real loopback socket.
//! The daemon end to end is in `daemon.rs` (`an_ssh_brute_force_becomes_one_incident…`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use kuzet::incident::assets::{Asset, Inventory};
use kuzet::incident::config::IncidentsConfig;
use kuzet::incident::enrich::Enricher;
use kuzet::incident::manager::{Action, IncidentMetrics, Manager, ManualClock};
use kuzet::incident::model::{Incident, Status, group_key, incident_id};
use kuzet::incident::store::{Filter, Store};
use kuzet::sigma::{Level, Meta};
use kuzet::sink::alert::AlertRecord;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2025-11-25T10:00:00Z: in the past, so the report sees every deadline as over.
const T0: i64 = 1_764_064_800_000;

fn inventory() -> Inventory {
    let asset = |host: &str, ip: &str, class: &str, org: &str, who: &str| Asset {
        hostname: host.into(),
        ip: ip.into(),
        class: class.into(),
        organisation: org.into(),
        responsible: who.into(),
        contact: format!("{who}@example.kz"),
        floor: "2".into(),
        room: "204".into(),
        ..Asset::default()
    };
    Inventory::from_assets(vec![
        asset("portal", "192.0.2.10", "egov", "E-Gov Operator", "nurlanov"),
        asset(
            "minfin-db",
            "10.10.1.5",
            "state_body",
            "Ministry",
            "seitkali",
        ),
        asset(
            "scada-gw",
            "172.16.5.20",
            "critical_infrastructure",
            "Power Grid",
            "omarov",
        ),
    ])
    .unwrap()
}

struct Setup {
    mgr: Manager,
    clock: Arc<ManualClock>,
    shared: Arc<ArcSwap<Enricher>>,
    metrics: Arc<IncidentMetrics>,
}

fn setup_with(dir: &Path, cfg: IncidentsConfig) -> Setup {
    let clock = Arc::new(ManualClock::new(T0));
    let shared = Arc::new(ArcSwap::from_pointee(Enricher::new(
        Arc::new(cfg),
        Arc::new(inventory()),
        None,
    )));
    let metrics = Arc::new(IncidentMetrics::default());
    let mgr = Manager::new(
        Store::open(Some(dir)).unwrap(),
        shared.clone(),
        clock.clone(),
        metrics.clone(),
    );
    Setup {
        mgr,
        clock,
        shared,
        metrics,
    }
}

fn setup(dir: &Path) -> Setup {
    setup_with(dir, IncidentsConfig::default())
}

fn ts(ms: i64) -> kuzet::event::Timestamp {
    kuzet::event::Timestamp(ms * 1_000_000)
}

/// A brute-force correlation alert from `src` against `host`, detected at `at`.
fn alert(id: u128, src: &str, host: &str, at: i64, count: u64, users: &[&str]) -> AlertRecord {
    AlertRecord {
        id,
        meta: Arc::new(Meta {
            id: Some("a1248562-c65a-4920-9a41-0063f748b041".into()),
            title: "SSH Brute Force From One Source".into(),
            level: Some(Level::High),
            tags: vec!["attack.credential-access".into(), "attack.t1110.001".into()],
            ..Meta::default()
        }),
        kind: "event_count",
        group: vec![("src_ip".into(), src.into())],
        count,
        metric: Some(count as f64),
        revision: 0,
        first_seen: ts(at - MIN),
        last_seen: ts(at),
        detected_at: ts(at),
        events: users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                format!(r#"{{"hostname":"{host}","src_ip":"{src}","user":"{u}","procid":"{i}"}}"#)
                    .into_bytes()
            })
            .collect(),
        received: None,
    }
}

impl Setup {
    fn feed(&mut self, rec: &AlertRecord) -> Incident {
        let en = self.shared.load().enrich(rec);
        self.mgr.on_alert(rec, &en).unwrap()
    }

    /// A brute force at T0 against a state body, an e-government and a critical
    /// infrastructure object, in that order.
    fn one_per_class(&mut self) -> [Incident; 3] {
        [(1, "minfin-db"), (2, "portal"), (3, "scada-gw")].map(|(n, host)| {
            self.feed(&alert(
                n,
                &format!("198.51.100.{n}"),
                host,
                T0,
                6,
                &["root"],
            ))
        })
    }

    /// `step` done by the duty officer at the clock's time.
    fn ack(&mut self, id: &str, step: &str) -> Incident {
        self.mgr
            .act(id, &Action::Ack(step.into()), "duty", None)
            .unwrap()
    }

    fn all(&self) -> Vec<Incident> {
        self.mgr
            .list(&Filter {
                limit: 100,
                ..Filter::default()
            })
            .unwrap()
    }
}

#[test]
fn alerts_of_one_rule_and_group_merge_into_one_incident_that_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IncidentsConfig {
        evidence_events: 3,
        ..IncidentsConfig::default()
    };
    let mut s = setup_with(dir.path(), cfg.clone());
    let first = s.feed(&alert(
        1,
        "203.0.113.7",
        "portal",
        T0,
        6,
        &["root", "admin"],
    ));
    assert_eq!(first.status, Status::Open);
    assert_eq!(first.object_class, "egov");
    assert_eq!(first.regime, "egov");
    assert_eq!(first.organisation, "E-Gov Operator");
    // The id is the documented hash of rule, group key and first detection.
    let mut group = std::collections::BTreeMap::new();
    group.insert("src_ip".to_string(), "203.0.113.7".to_string());
    assert_eq!(
        first.id,
        incident_id(
            "a1248562-c65a-4920-9a41-0063f748b041",
            &group_key(&group),
            T0
        )
    );
    let owner = first.data_list.affected_objects[0].asset.as_ref().unwrap();
    assert_eq!(owner.responsible, "nurlanov");
    assert_eq!(first.data_list.sources[0].value, "203.0.113.7");
    assert_eq!(first.data_list.accounts, ["root", "admin"]);
    assert_eq!(
        first.data_list.incident_type.attack,
        ["attack.credential-access", "attack.t1110.001"]
    );
    // No recommendation on the rule: the table's entry for the parent technique.
    assert_eq!(
        first.data_list.recommendations,
        [cfg.recommendations["attack.t1110"].clone()]
    );

    // A revision of the same alert (count grew 6 → 8): events count the difference only.
    s.clock.advance(MIN);
    let inc = s.feed(&alert(
        1,
        "203.0.113.7",
        "portal",
        T0 + MIN,
        8,
        &["root", "admin"],
    ));
    assert_eq!(inc.id, first.id);
    assert_eq!((inc.alerts, inc.events), (1, 8));
    // A new alert for the same group: merged; evidence capped at 3, the rest counted.
    s.clock.advance(20 * MIN);
    let inc = s.feed(&alert(
        2,
        "203.0.113.7",
        "portal",
        T0 + 21 * MIN,
        6,
        &["oracle", "test"],
    ));
    assert_eq!(inc.id, first.id);
    assert_eq!((inc.alerts, inc.events), (2, 14));
    assert_eq!(inc.data_list.evidence.len(), 3);
    assert_eq!(inc.data_list.evidence_dropped, 1);
    assert_eq!(inc.data_list.last_event, T0 + 21 * MIN);
    assert_eq!(inc.data_list.first_event, T0 - MIN);
    assert_eq!(inc.data_list.accounts, ["root", "admin", "oracle", "test"]);
    // Deadlines still count from the first detection.
    assert_eq!(inc.detected_at, T0);
    assert_eq!(inc.deadlines[0].due, T0 + 30 * MIN);
    // Another source: another incident.
    let other = s.feed(&alert(
        3,
        "198.51.100.9",
        "minfin-db",
        T0 + 22 * MIN,
        6,
        &["x"],
    ));
    assert_ne!(other.id, first.id);
    assert_eq!(other.regime, "state_body");
    assert_eq!(s.all().len(), 2);
    assert_eq!(s.metrics.opened.get(), 2);
    assert_eq!(s.metrics.merged.get(), 2);
    let before = s.mgr.get(&first.id).unwrap().unwrap();

    // Restart: a new manager on the same state directory sees the same incidents, and a
    // new alert still merges into the open one.
    drop(s);
    let mut s = setup_with(dir.path(), cfg);
    s.clock.set(T0 + HOUR);
    assert_eq!(s.mgr.get(&first.id).unwrap().unwrap(), before);
    let inc = s.feed(&alert(4, "203.0.113.7", "portal", T0 + HOUR, 6, &["root"]));
    assert_eq!(inc.id, first.id);
    assert_eq!(inc.alerts, 3);
    assert_eq!(s.all().len(), 2);

    // Resolved incidents take no more alerts: the next one opens a new incident.
    let done = s
        .mgr
        .act(
            &first.id,
            &Action::Resolve,
            "duty-officer",
            Some("blocked".into()),
        )
        .unwrap();
    assert_eq!(done.status, Status::Resolved);
    assert_eq!(done.resolved_at, Some(T0 + HOUR));
    s.clock.advance(MIN);
    let again = s.feed(&alert(
        5,
        "203.0.113.7",
        "portal",
        T0 + HOUR + MIN,
        6,
        &["root"],
    ));
    assert_ne!(again.id, first.id);
    assert_eq!(again.status, Status::Open);
    assert_eq!(s.all().len(), 3);
    // A closed incident refuses further actions.
    let e = s
        .mgr
        .act(&first.id, &Action::FalsePositive, "x", None)
        .unwrap_err();
    assert_eq!(e.status, 409);
}

#[test]
fn every_status_change_is_recorded_with_time_and_actor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    let inc = s.feed(&alert(1, "198.51.100.1", "minfin-db", T0, 6, &["root"]));
    s.clock.advance(10 * MIN);
    let inc = s
        .mgr
        .act(&inc.id, &Action::Ack("notify_owner".into()), "alice", None)
        .unwrap();
    assert_eq!(inc.status, Status::Notified);
    assert_eq!(inc.notified_at, Some(T0 + 10 * MIN));
    s.clock.advance(HOUR);
    let inc = s
        .mgr
        .act(
            &inc.id,
            &Action::Ack("notify_authority".into()),
            "bob",
            None,
        )
        .unwrap();
    assert_eq!(inc.status, Status::Notified);
    // egov-only steps are refused for a state body incident; unknown steps too.
    let e = s
        .mgr
        .act(&inc.id, &Action::Ack("data_list".into()), "bob", None)
        .unwrap_err();
    assert_eq!(e.status, 409);
    let e = s
        .mgr
        .act(&inc.id, &Action::Ack("lunch".into()), "bob", None)
        .unwrap_err();
    assert_eq!(e.status, 400);
    s.clock.advance(HOUR);
    let inc = s
        .mgr
        .act(
            &inc.id,
            &Action::FalsePositive,
            "carol",
            Some("pentest".into()),
        )
        .unwrap();
    let h: Vec<(&str, &str, Status, Status, i64)> = inc
        .history
        .iter()
        .map(|c| (c.actor.as_str(), c.action.as_str(), c.from, c.to, c.at))
        .collect();
    assert_eq!(
        h,
        vec![
            ("kuzet", "opened", Status::Open, Status::Open, T0),
            (
                "alice",
                "acknowledged",
                Status::Open,
                Status::Notified,
                T0 + 10 * MIN
            ),
            (
                "bob",
                "acknowledged",
                Status::Notified,
                Status::Notified,
                T0 + 70 * MIN
            ),
            (
                "carol",
                "false_positive",
                Status::Notified,
                Status::FalsePositive,
                T0 + 130 * MIN
            ),
        ]
    );
    assert_eq!(inc.history[3].note.as_deref(), Some("pentest"));
    assert!(inc.deadlines.iter().all(|d| d.done_at.is_some()));
}

fn steps(list: &[(AlertRecord, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(r, class)| {
            let step = r.group.iter().find(|(k, _)| k == "step").unwrap().1.clone();
            (step, class.clone())
        })
        .collect()
}

#[test]
fn missed_deadlines_escalate_exactly_once_at_48_and_75_hours_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    let [state, egov, ci] = s.one_per_class();
    assert!(s.mgr.escalate_due().unwrap().is_empty());
    // Notified in time, authority told in time: nothing to escalate before 48 h.
    s.clock.set(T0 + 20 * MIN);
    for id in [&state.id, &egov.id, &ci.id] {
        s.ack(id, "notify_owner");
    }
    s.clock.set(T0 + 2 * HOUR);
    s.mgr
        .act(
            &state.id,
            &Action::Ack("notify_authority".into()),
            "duty",
            None,
        )
        .unwrap();
    s.clock.set(T0 + 48 * HOUR);
    assert!(
        s.mgr.escalate_due().unwrap().is_empty(),
        "due is not missed"
    );
    s.clock.set(T0 + 48 * HOUR + 1);
    let fired = s.mgr.escalate_due().unwrap();
    assert_eq!(
        steps(&fired),
        [("remediate".to_string(), "state_body".to_string())]
    );
    let (rec, _) = &fired[0];
    assert_eq!(rec.kind, "escalation");
    assert_eq!(rec.meta.level, Some(Level::High));
    assert!(rec.meta.tags.iter().any(|t| t == "kuzet.escalation"));
    assert!(
        rec.group
            .contains(&("incident".to_string(), state.id.clone()))
    );
    let carried: Incident = serde_json::from_slice(&rec.events[0]).unwrap();
    assert_eq!(carried.id, state.id);
    // Once: the next passes find nothing, and neither does a restarted manager.
    assert!(s.mgr.escalate_due().unwrap().is_empty());
    s.clock.set(T0 + 60 * HOUR);
    assert!(s.mgr.escalate_due().unwrap().is_empty());
    drop(s);
    let mut s = setup(dir.path());
    s.clock.set(T0 + 74 * HOUR);
    assert!(s.mgr.escalate_due().unwrap().is_empty());
    // 75 h: the e-government and critical infrastructure incidents.
    s.clock.set(T0 + 75 * HOUR + 1);
    let mut got = steps(&s.mgr.escalate_due().unwrap());
    got.sort();
    assert_eq!(
        got,
        [
            (
                "remediate".to_string(),
                "critical_infrastructure".to_string()
            ),
            ("remediate".to_string(), "egov".to_string()),
        ]
    );
    assert!(s.mgr.escalate_due().unwrap().is_empty());
    drop(s);
    let mut s = setup(dir.path());
    s.clock.set(T0 + 100 * HOUR);
    assert!(s.mgr.escalate_due().unwrap().is_empty());
    // Recorded on the incident: the escalation and a history entry.
    let inc = s.mgr.get(&state.id).unwrap().unwrap();
    assert_eq!(inc.escalations.len(), 1);
    assert_eq!(inc.escalations[0].step, "remediate");
    assert_eq!(inc.escalations[0].at, T0 + 48 * HOUR + 1);
    assert_eq!(inc.history.last().unwrap().action, "escalated");
    let d = inc
        .deadlines
        .iter()
        .find(|d| d.step == "remediate")
        .unwrap();
    assert_eq!(d.escalated_at, Some(T0 + 48 * HOUR + 1));
    assert!(d.missed(T0 + 100 * HOUR));
}

#[test]
fn a_missed_notification_escalates_and_resolving_in_time_escalates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    let late = s.feed(&alert(1, "198.51.100.1", "minfin-db", T0, 6, &["root"]));
    let fine = s.feed(&alert(2, "198.51.100.2", "portal", T0, 6, &["root"]));
    s.clock.set(T0 + 10 * MIN);
    s.ack(&fine.id, "notify_owner");
    s.clock.set(T0 + 31 * MIN);
    let fired = s.mgr.escalate_due().unwrap();
    assert_eq!(
        steps(&fired),
        [("notify_owner".into(), "state_body".into())]
    );
    assert_eq!(fired[0].0.group[0].1, late.id);
    s.clock.set(T0 + 40 * HOUR);
    s.mgr.act(&fine.id, &Action::Resolve, "duty", None).unwrap();
    // The state body incident also missed its 3 h authority step meanwhile.
    let fired = s.mgr.escalate_due().unwrap();
    assert_eq!(
        steps(&fired),
        [("notify_authority".into(), "state_body".into())]
    );
    s.clock.set(T0 + 80 * HOUR);
    let fired = s.mgr.escalate_due().unwrap();
    assert_eq!(steps(&fired), [("remediate".into(), "state_body".into())]);
    assert_eq!(s.metrics.escalations.get(), 3);
}

#[test]
fn self_detected_incidents_run_the_15_minute_and_24_hour_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    let report: kuzet::incident::manager::SelfReport = serde_json::from_value(serde_json::json!({
        "title": "Ransom note on the file server",
        "objects": ["10.10.1.5"],
        "accounts": ["svc_backup"],
        "tags": ["attack.t1486"],
    }))
    .unwrap();
    let inc = s.mgr.report(report.clone(), "owner-soc").unwrap();
    assert!(inc.self_detected);
    assert_eq!(inc.regime, "self_detected+state_body");
    let due: Vec<(&str, i64)> = inc
        .deadlines
        .iter()
        .map(|d| (d.step.as_str(), d.due - T0))
        .collect();
    assert_eq!(
        due,
        [
            ("report", 15 * MIN),
            ("notify_authority", 3 * HOUR),
            ("data_list", 24 * HOUR),
            ("remediate", 48 * HOUR),
        ]
    );
    assert_eq!(inc.history[0].actor, "owner-soc");
    assert_eq!(
        inc.data_list.affected_objects[0]
            .asset
            .as_ref()
            .unwrap()
            .responsible,
        "seitkali"
    );
    // The same report twice is refused (same id), not duplicated.
    assert_eq!(s.mgr.report(report, "owner-soc").unwrap_err().status, 409);
    s.clock.set(T0 + 10 * MIN);
    s.ack(&inc.id, "report");
    s.clock.set(T0 + 24 * HOUR + 1);
    let fired = s.mgr.escalate_due().unwrap();
    let mut got = steps(&fired);
    got.sort();
    assert_eq!(
        got,
        [
            ("data_list".into(), "state_body".into()),
            ("notify_authority".into(), "state_body".into()),
        ]
    );
}

#[test]
fn sinks_route_by_object_class_and_level() {
    use kuzet::config::SinkConfig;
    use kuzet::sink::Route;
    let mut c = SinkConfig::new("webhook");
    c.object_classes = vec!["critical_infrastructure".into()];
    c.min_level = "high".into();
    let r = Route::from_config(&c);
    let rec = alert(1, "198.51.100.1", "scada-gw", T0, 6, &["root"]);
    assert!(r.accepts(&rec, Some("critical_infrastructure")));
    assert!(!r.accepts(&rec, Some("egov")));
    assert!(!r.accepts(&rec, None));
    let mut low = rec.clone();
    low.meta = Arc::new(Meta {
        level: Some(Level::Low),
        ..(*rec.meta).clone()
    });
    assert!(!r.accepts(&low, Some("critical_infrastructure")));
    // No object_classes: every class, and alerts about unknown objects.
    let all = Route::from_config(&SinkConfig::new("stdout"));
    assert!(all.accepts(&low, None) && all.accepts(&rec, Some("egov")));
}

/// (status, body) of one HTTP/1.0 request to `addr`.
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: x\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn the_api_needs_the_token_when_one_is_set_and_records_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    let inc = s.feed(&alert(1, "198.51.100.1", "portal", T0, 6, &["root"]));
    let (alerts_tx, alerts_rx) = crossbeam_channel::bounded(1);
    let (api_tx, api_rx) = crossbeam_channel::bounded(4);
    let mgr = s.mgr;
    let thread = std::thread::spawn(move || {
        kuzet::incident::manager::run(mgr, alerts_rx, api_rx, Duration::from_secs(3600), |_, _| {})
    });
    let (cmd_tx, _cmd_rx) = crossbeam_channel::bounded(1);
    let admin = kuzet::admin::Admin::start(
        "127.0.0.1:0".parse().unwrap(),
        Some("s3cret".into()),
        cmd_tx,
        Some(api_tx.clone()),
    )
    .unwrap();
    let a = admin.local;
    let auth = "Authorization: Bearer s3cret";
    // Without the token (or with a wrong one): refused, reads and writes alike.
    assert_eq!(http(a, "GET", "/incidents", &[], "").0, 401);
    assert_eq!(
        http(a, "GET", "/incidents", &["Authorization: Bearer nope"], "").0,
        401
    );
    let ack = format!("/incidents/{}/ack", inc.id);
    let (st, body) = http(a, "POST", &ack, &["X-Kuzet-Actor: mallory"], "");
    assert_eq!(st, 401, "{body}");
    // With it.
    let (st, body) = http(a, "GET", "/incidents?status=open&class=egov", &[auth], "");
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 1);
    assert_eq!(v["incidents"][0]["id"], inc.id.as_str());
    let (st, body) = http(a, "POST", &ack, &[auth], "");
    assert_eq!(st, 400, "no actor: {body}");
    let (st, body) = http(a, "POST", &ack, &[auth, "X-Kuzet-Actor: alice"], "");
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "notified");
    assert_eq!(v["history"][1]["actor"], "alice");
    let (st, body) = http(
        a,
        "POST",
        &format!("/incidents/{}/resolve", inc.id),
        &[auth],
        r#"{"actor":"bob","note":"source blocked"}"#,
    );
    assert_eq!(st, 200, "{body}");
    let (st, body) = http(a, "GET", &format!("/incidents/{}", inc.id), &[auth], "");
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["history"][2]["actor"], "bob");
    assert_eq!(v["history"][2]["note"], "source blocked");
    assert_eq!(
        http(a, "GET", "/incidents/0000", &[auth], "").0,
        404,
        "unknown id"
    );
    admin.stop();
    drop(api_tx);
    drop(alerts_tx);
    thread.join().unwrap();
    // A token is mandatory beyond loopback (the config refuses to start without one).
    let errs =
        kuzet::config::Config::from_toml("[admin]\nlisten = \"0.0.0.0:9514\"\n").unwrap_err();
    assert!(errs.iter().any(|e| e.path == "admin.token"), "{errs:?}");
}

/// `kuzet report` for the day of T0 over the database in `dir`.
fn report(dir: &Path, format: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["report", "--from", "2025-11-25", "--to", "2025-11-25"])
        .args(["--format", format])
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_report_counts_times_and_missed_deadlines_of_a_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    // In the period: a state body incident notified after 10 min and resolved after 50 h
    // (remediation missed), an egov one notified after 40 min (missed) and still open,
    // a false positive on critical infrastructure.
    let [a, b, c] = s.one_per_class();
    s.clock.set(T0 + 10 * MIN);
    s.ack(&a.id, "notify_owner");
    s.ack(&c.id, "notify_owner");
    s.mgr
        .act(&c.id, &Action::FalsePositive, "duty", None)
        .unwrap();
    s.clock.set(T0 + 40 * MIN);
    s.ack(&b.id, "notify_owner");
    s.clock.set(T0 + HOUR);
    s.ack(&a.id, "notify_authority");
    s.clock.set(T0 + 50 * HOUR);
    s.mgr.act(&a.id, &Action::Resolve, "duty", None).unwrap();
    // Outside the period (the next day): not counted.
    s.feed(&alert(
        4,
        "198.51.100.4",
        "portal",
        T0 + 24 * HOUR,
        6,
        &["root"],
    ));
    drop(s);
    let r: serde_json::Value = serde_json::from_str(&report(dir.path(), "json")).unwrap();
    assert_eq!(r["incidents"], 3);
    assert_eq!(r["by_object_class"]["state_body"], 1);
    assert_eq!(r["by_object_class"]["egov"], 1);
    assert_eq!(r["by_organisation"]["Power Grid"], 1);
    assert_eq!(r["by_level"]["high"], 3);
    assert_eq!(
        r["by_rule"]["a1248562-c65a-4920-9a41-0063f748b041 — SSH Brute Force From One Source"],
        3
    );
    assert_eq!(r["by_status"]["false_positive"], 1);
    let n = &r["detection_to_notification"];
    assert_eq!(n["count"], 3);
    assert_eq!(n["mean_seconds"], 20.0 * 60.0);
    assert_eq!(n["worst_seconds"], 40.0 * 60.0);
    assert_eq!(n["worst_incident"], b.id.as_str());
    let res = &r["detection_to_resolution"];
    assert_eq!(res["count"], 1);
    assert_eq!(res["worst_seconds"], 50.0 * 3600.0);
    // Missed: b's notification (late), a's remediation (late) and b's (not done, and the
    // report runs long after T0 + 75 h). c is a false positive: nothing more is owed.
    assert_eq!(r["deadlines_missed"]["notify_owner"], 1);
    let remediate_missed = r["deadlines_missed"]["remediate"].as_u64().unwrap();
    assert_eq!(remediate_missed, 2, "{r:#}");
    // The other formats carry the same numbers.
    for (format, want) in [("csv", "by_object_class,egov,1"), ("md", "| egov | 1 |")] {
        let text = report(dir.path(), format);
        assert!(text.contains(want), "{format}: {text}");
    }
}
