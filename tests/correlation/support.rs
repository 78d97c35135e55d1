//! The harness the correlation tests share: event streams with known timestamps, rule
//! YAML, `kuzet replay` as a child process, the reference oracle (`tests/oracle/oracle.py`),
//! and the comparison of the two under kuzet's documented differences
//! (`tests/oracle/SEMANTICS.md`, "Where kuzet differs from the reference").
//!
//! Every event carries `seq` (its index in the stream), so evidence in kuzet's alerts and
//! in the oracle's output can be compared as sets of indices.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Map, Value, json};

/// 2024-01-01T00:00:00Z, in ms: time 0 of every stream.
pub const BASE_MS: i64 = 1_704_067_200_000;

pub const SEC: i64 = 1000;
pub const MIN: i64 = 60 * SEC;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// RFC 3339 with milliseconds, UTC, for a stream time (ms after [`BASE_MS`]).
pub fn iso(t: i64) -> String {
    jiff::Timestamp::from_millisecond(BASE_MS + t)
        .expect("in range")
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Stream time (ms after [`BASE_MS`]) of an RFC 3339 stamp.
pub fn ms_of(s: &str) -> i64 {
    let t: jiff::Timestamp = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
    t.as_millisecond() - BASE_MS
}

/// A small deterministic PRNG (SplitMix64): the streams are reproducible from their seed.
pub struct Rng(u64);

impl Rng {
    /// A stream's generator. `KUZET_CORR_SEED=n` shifts every seed, to explore other
    /// streams (`for n in $(seq 50); do KUZET_CORR_SEED=$n cargo test …; done`).
    pub fn new(seed: u64) -> Rng {
        let shift: u64 = std::env::var("KUZET_CORR_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Rng((seed + shift.wrapping_mul(1_000_003)) ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (`hi` exclusive).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(hi > lo, "{lo}..{hi}");
        lo + (self.next() % (hi - lo) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.range(0, xs.len() as i64) as usize]
    }
}

/// Events being built: (time, fields). [`Stream::finish`] sorts them by time, moves
/// events so that no two are exactly one of the given timespans apart (the reference's
/// windows include both ends, kuzet's only the later one), and numbers them.
#[derive(Default, Clone)]
pub struct Stream {
    pub items: Vec<(i64, Map<String, Value>)>,
}

impl Stream {
    pub fn push(&mut self, t: i64, fields: Value) {
        let Value::Object(m) = fields else {
            panic!("fields must be an object")
        };
        self.items.push((t, m));
    }

    pub fn finish(mut self, spans: &[i64]) -> Events {
        loop {
            let times: BTreeSet<i64> = self.items.iter().map(|x| x.0).collect();
            let mut moved = false;
            for item in &mut self.items {
                while spans
                    .iter()
                    .any(|&s| times.contains(&(item.0 - s)) || times.contains(&(item.0 + s)))
                {
                    item.0 += 1;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        self.items.sort_by_key(|x| x.0);
        let mut times = Vec::new();
        let mut lines = Vec::new();
        for (i, (t, m)) in self.items.into_iter().enumerate() {
            let mut ev = Map::new();
            ev.insert("timestamp".into(), Value::String(iso(t)));
            ev.insert("seq".into(), json!(i));
            ev.extend(m);
            times.push(t);
            lines.push(Value::Object(ev));
        }
        Events {
            times,
            events: lines,
        }
    }
}

/// A finished stream: event `i` has `times[i]` and JSON `events[i]` (with `seq: i`).
#[derive(Clone, Debug)]
pub struct Events {
    pub times: Vec<i64>,
    pub events: Vec<Value>,
}

impl Events {
    pub fn jsonl(&self) -> String {
        let mut s = String::new();
        for e in &self.events {
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s
    }
}

/// A deterministic UUID for a rule name (pySigma wants UUID ids; kuzet reports ids).
pub fn uuid(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 4) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

/// A detection rule named `name` (referenced by that name) on `logsource: {product: test}`;
/// `detection` is the YAML body of `detection:` (indented by the caller or not: it is
/// indented here).
pub fn detection(name: &str, detection: &str) -> String {
    let body: String = detection
        .trim()
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    format!(
        "title: {name}\nid: {}\nname: {name}\nlogsource:\n  product: test\ndetection:\n{body}",
        uuid(name)
    )
}

/// A detection rule `name` matching events whose `action` is `action`.
pub fn action_rule(name: &str, action: &str) -> String {
    detection(name, &format!("sel:\n  action: {action}\ncondition: sel"))
}

/// A correlation rule `name`; `body` is the YAML of the `correlation:` map.
pub fn correlation(name: &str, body: &str) -> String {
    let body: String = body.trim().lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "title: {name}\nid: {}\nname: {name}\ncorrelation:\n{body}",
        uuid(name)
    )
}

/// A fresh directory under Cargo's scratch space for integration tests.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "corr-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// What one `kuzet replay` printed.
#[derive(Debug)]
pub struct Replay {
    pub alerts: Vec<Alert>,
    pub stderr: String,
    pub stdout: String,
}

impl Replay {
    /// The number after `label` in the stderr summary (`12 late` → `late`: 12).
    pub fn summary_count(&self, label: &str) -> u64 {
        let words: Vec<&str> = self.stderr.split_whitespace().collect();
        for w in words.windows(2) {
            if w[1].trim_end_matches(',') == label
                && let Ok(n) = w[0].parse()
            {
                return n;
            }
        }
        panic!("no {label:?} in the summary:\n{}", self.stderr)
    }

    /// Alerts of one rule (by name), in output order.
    pub fn of(&self, rule: &str) -> Vec<&Alert> {
        let id = uuid(rule);
        self.alerts.iter().filter(|a| a.rule == id).collect()
    }
}

/// One kuzet alert, as the tests need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub revision: u64,
    /// The rule's id (a UUID from [`uuid`]).
    pub rule: String,
    pub kind: String,
    /// Normalised group: `name=value|…`, sorted by name.
    pub group: String,
    pub count: u64,
    pub metric: Option<f64>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// `seq` of the evidence events (those that have one).
    pub events: Vec<usize>,
    pub json: Value,
}

/// `name=value|…` sorted by name; numbers and strings alike as text.
pub fn group_key(g: &Value) -> String {
    let Some(m) = g.as_object() else {
        return String::new();
    };
    let mut parts: Vec<String> = m
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    parts.sort();
    parts.join("|")
}

pub fn parse_alert(line: &str) -> Alert {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    Alert {
        id: v["id"].as_str().expect("id").to_string(),
        revision: v["revision"].as_u64().expect("revision"),
        rule: v["rule"]["id"].as_str().expect("rule.id").to_string(),
        kind: v["rule"]["type"].as_str().expect("type").to_string(),
        group: group_key(&v["group"]),
        count: v["count"].as_u64().expect("count"),
        metric: v["metric"].as_f64(),
        first_seen: ms_of(v["first_seen"].as_str().expect("first_seen")),
        last_seen: ms_of(v["last_seen"].as_str().expect("last_seen")),
        events: v["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| Some(e["seq"].as_u64()? as usize))
            .collect(),
        json: v,
    }
}

/// Writes `rules` (one file each) and the events into `dir`; returns (rules dir, events file).
pub fn write_inputs(dir: &Path, rules: &[String], events: &Events) -> (PathBuf, PathBuf) {
    let rdir = dir.join("rules");
    std::fs::create_dir_all(&rdir).expect("rules dir");
    for (i, r) in rules.iter().enumerate() {
        std::fs::write(rdir.join(format!("r{i:02}.yml")), r).expect("write rule");
    }
    let file = dir.join("events.jsonl");
    std::fs::write(&file, events.jsonl()).expect("write events");
    (rdir, file)
}

/// The `kuzet replay` command for a rules dir (no shipped pipelines, `product=test`).
pub fn replay_command(rules: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kuzet"));
    c.arg("replay").arg("--rules").arg(rules).args([
        "--no-default-pipelines",
        "--logsource",
        "product=test",
    ]);
    c
}

/// Runs `kuzet replay` over `events` with `rules` and extra `args`.
pub fn kuzet(name: &str, rules: &[String], events: &Events, args: &[&str]) -> Replay {
    let dir = scratch(name);
    let (rdir, file) = write_inputs(&dir, rules, events);
    let out = replay_command(&rdir)
        .args(args)
        .arg(&file)
        .output()
        .expect("run kuzet");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert!(out.status.success(), "kuzet replay failed:\n{stderr}");
    assert!(
        stderr.contains(" 0 failed"),
        "a rule failed to load:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Replay {
        alerts: stdout.lines().map(parse_alert).collect(),
        stderr,
        stdout,
    }
}

/// The oracle's python (creating its venv on first use; `setup.sh` is idempotent and
/// takes a lock, so parallel tests wait for one install).
pub fn oracle_python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/setup.sh");
        let out = Command::new("bash")
            .arg(&setup)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/oracle/setup.sh");
        assert!(out.status.success(), "tests/oracle/setup.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
    })
}

/// The oracle's answer for rules and events.
pub struct Oracle {
    pub out: Value,
}

/// Runs the oracle; panics on a fatal input error or any rule error.
pub fn oracle(rules: &[String], events: &Events) -> Oracle {
    let o = oracle_raw(rules, events);
    let errors = o.out["errors"].as_array().expect("errors");
    assert!(errors.is_empty(), "oracle errors: {errors:#?}");
    o
}

/// Runs the oracle; rule errors are the caller's business.
pub fn oracle_raw(rules: &[String], events: &Events) -> Oracle {
    let input = json!({"rules": rules, "events": events.events});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/oracle.py");
    let mut child = Command::new(oracle_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the oracle");
    let mut stdin = child.stdin.take().expect("stdin");
    let body = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(body.as_bytes()));
    let out = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer").expect("write oracle input");
    let out: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    assert!(out.get("fatal").is_none(), "oracle: {out}");
    Oracle { out }
}

/// One alert of the reference.
#[derive(Clone, Debug)]
pub struct RefAlert {
    pub group: String,
    /// Anchor (occurrence) time, stream ms.
    pub time: i64,
    pub metric: Option<f64>,
    pub events: Vec<usize>,
}

impl Oracle {
    fn result(&self, rule: &str) -> &Value {
        let id = uuid(rule);
        self.out["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("the oracle has no result for {rule}"))
    }

    /// The alerts of correlation `rule`.
    pub fn alerts(&self, rule: &str) -> Vec<RefAlert> {
        self.result(rule)["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| RefAlert {
                group: group_key(&a["group"]),
                time: (a["occurrence_time"].as_f64().expect("time") * 1000.0).round() as i64
                    - BASE_MS,
                metric: a["metric"].as_f64(),
                events: a["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .map(|e| e.as_u64().expect("index") as usize)
                    .collect(),
            })
            .collect()
    }

    /// The events detection rule `rule` matches.
    pub fn matches(&self, rule: &str) -> Vec<usize> {
        self.result(rule)["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|e| e.as_u64().expect("index") as usize)
            .collect()
    }

    /// Whether pySigma would output the rule.
    pub fn emitted(&self, rule: &str) -> bool {
        self.result(rule)["emitted"].as_bool().expect("emitted")
    }
}

/// kuzet's suppression applied to one group's reference firing times (ascending): the
/// times at which kuzet raises a new alert. A firing within a timespan of the open alert's
/// last firing extends it; a later one raises a new alert.
pub fn suppressed(times: &[i64], span: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut until = i64::MIN;
    for &t in times {
        if out.is_empty() || t > until {
            out.push(t);
        }
        until = t + span;
    }
    out
}

/// How kuzet's alerts of one rule must relate to the reference's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Default policy: per group, the new alerts are exactly the reference's firings
    /// thinned by [`suppressed`].
    Suppress,
    /// `--policy reset`: per group the first firing is the reference's first; every kuzet
    /// firing is a reference firing (the window forgotten after firing only ever holds
    /// fewer events).
    Reset,
    /// Only which groups fire and when each first fires.
    FirstOnly,
}

/// Compares kuzet's alerts of correlation `rule` with the reference's; returns a list of
/// differences (empty: agreement). `metric`: also compare the metric at each firing
/// where the anchor time holds a single event of the group (with several, kuzet fires on
/// the one that makes the condition true, the reference counts all of them).
pub fn compare(
    rule: &str,
    span: i64,
    k: &Replay,
    o: &Oracle,
    ev: &Events,
    expect: Expect,
    metric: bool,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut kg: BTreeMap<String, Vec<&Alert>> = BTreeMap::new();
    for a in k.of(rule) {
        if a.revision == 0 {
            kg.entry(a.group.clone()).or_default().push(a);
        }
    }
    let mut rg: BTreeMap<String, Vec<RefAlert>> = BTreeMap::new();
    for a in o.alerts(rule) {
        rg.entry(a.group.clone()).or_default().push(a);
    }
    let kgroups: BTreeSet<&String> = kg.keys().collect();
    let rgroups: BTreeSet<&String> = rg.keys().collect();
    if kgroups != rgroups {
        diffs.push(format!(
            "{rule}: groups firing differ: kuzet only {:?}, reference only {:?}",
            kgroups.difference(&rgroups).collect::<Vec<_>>(),
            rgroups.difference(&kgroups).collect::<Vec<_>>()
        ));
    }
    for (g, ks) in &kg {
        let Some(rs) = rg.get(g) else { continue };
        let mut rtimes: Vec<i64> = rs.iter().map(|a| a.time).collect();
        rtimes.sort_unstable();
        rtimes.dedup();
        let mut ktimes: Vec<i64> = ks.iter().map(|a| a.last_seen).collect();
        ktimes.sort_unstable();
        match expect {
            Expect::Suppress => {
                let want = suppressed(&rtimes, span);
                if ktimes != want {
                    diffs.push(format!(
                        "{rule} group {g}: kuzet alerts at {ktimes:?}, reference fires at {rtimes:?} (suppressed: {want:?})"
                    ));
                }
            }
            Expect::Reset => {
                let extra: Vec<i64> = ktimes
                    .iter()
                    .copied()
                    .filter(|t| rtimes.binary_search(t).is_err())
                    .collect();
                if ktimes.first() != rtimes.first() || !extra.is_empty() {
                    diffs.push(format!(
                        "{rule} group {g}: kuzet (reset) alerts at {ktimes:?}, reference fires at {rtimes:?}"
                    ));
                }
            }
            Expect::FirstOnly => {
                if ktimes.first() != rtimes.first() {
                    diffs.push(format!(
                        "{rule} group {g}: kuzet first fires at {:?}, reference at {:?}",
                        ktimes.first(),
                        rtimes.first()
                    ));
                }
            }
        }
        if metric {
            for a in ks {
                let Some(r) = rs.iter().find(|r| r.time == a.last_seen) else {
                    continue;
                };
                let peers = r.events.iter().filter(|&&e| ev.times[e] == r.time).count();
                if peers > 1 {
                    continue;
                }
                let (km, rm) = (a.metric.unwrap_or(f64::NAN), r.metric.unwrap_or(f64::NAN));
                if (km - rm).abs() > 1e-9 * rm.abs().max(1.0) {
                    diffs.push(format!(
                        "{rule} group {g} at {}: kuzet metric {km}, reference {rm}",
                        a.last_seen
                    ));
                }
            }
        }
    }
    diffs
}

/// Panics with every difference, if any.
pub fn assert_agree(diffs: Vec<String>) {
    assert!(
        diffs.is_empty(),
        "{} difference(s) from the reference:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Every kuzet evidence event of a raised alert is among the reference's evidence for
/// the same group and anchor.
pub fn evidence_within_reference(rule: &str, k: &Replay, o: &Oracle) -> Vec<String> {
    let refs = o.alerts(rule);
    let mut diffs = Vec::new();
    for a in k.of(rule).into_iter().filter(|a| a.revision == 0) {
        let Some(r) = refs
            .iter()
            .find(|r| r.group == a.group && r.time == a.last_seen)
        else {
            continue;
        };
        let extra: Vec<usize> = a
            .events
            .iter()
            .copied()
            .filter(|e| !r.events.contains(e))
            .collect();
        if a.events.is_empty() || !extra.is_empty() {
            diffs.push(format!(
                "{rule} group {} at {}: kuzet evidence {:?}, reference {:?}",
                a.group, a.last_seen, a.events, r.events
            ));
        }
    }
    diffs
}

/// Events exactly as given, in this order (hand-written cases: boundaries, late arrival).
pub fn exact(items: &[(i64, Value)]) -> Events {
    let mut s = Stream::default();
    for (t, v) in items {
        s.push(*t, v.clone());
    }
    let mut times = Vec::new();
    let mut lines = Vec::new();
    for (i, (t, m)) in s.items.into_iter().enumerate() {
        let mut ev = Map::new();
        ev.insert("timestamp".into(), Value::String(iso(t)));
        ev.insert("seq".into(), json!(i));
        ev.extend(m);
        times.push(t);
        lines.push(Value::Object(ev));
    }
    Events {
        times,
        events: lines,
    }
}
