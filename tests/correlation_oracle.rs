//! Differential tests of the correlator against the reference (pySigma 2.0.1 + the SQLite
//! backend 2.1.1, through `tests/oracle/oracle.py`), on seeded generated event streams.
//!
//! Each test builds one stream (several groups, bursts, quiet gaps, noise; millisecond
//! timestamps, never exactly a timespan apart: the reference's windows include both ends),
//! runs `kuzet replay` and the oracle on the same rules and events, and compares per group
//! under kuzet's documented differences (`tests/oracle/SEMANTICS.md`, "Where kuzet differs
//! from the reference"):
//!
//! | kuzet | compared as |
//! |---|---|
//! | suppression (default policy) | the reference's firing times, thinned by the same policy ([`support::suppressed`]), must be kuzet's alert times exactly; metrics equal |
//! | `--policy reset` | same first firing per group; every kuzet firing is a reference firing |
//! | `lt`/`lte`/`eq`/`neq`, absence | isolated sessions, where one episode and the reference's last anchor see the same events |
//! | chains | children that fire once per burst in both, so parents see the same child alerts |
//!
//! | test | types × features |
//! |---|---|
//! | `event_count_groups` | event_count; group-by one, two, none; float threshold; case folding; missing group field; reset; update counts; evidence |
//! | `value_count_distinct` | value_count; case-insensitive values; events without the value |
//! | `value_aggregates_numbers`, `value_aggregates_numeric_strings` | value_sum, value_avg, value_median, value_percentile (25, 90); JSON numbers; numeric text incl. non-JSON-number text |
//! | `temporal_all_and_some` | temporal, default (all rules) and `gte: 2` of 3 |
//! | `temporal_ordered_all_and_some` | temporal_ordered, default and `gte: 2` of 3; equal timestamps |
//! | `extended_conditions` | temporal `and`, `or`, `(… and …) or …` |
//! | `absence` | `a and not b`, where kuzet's episode and the reference's forward window agree |
//! | `aliases` | temporal and event_count with `aliases` |
//! | `generate` | which detection rules alert: unreferenced, `generate: false`, `generate: true` |
//! | `chains` | event_count and temporal_ordered over an event_count; `generate: true` on a parent |
//! | `timespan_units` | `m h d w M y` |
//! | `episode_conditions` | event_count `lt`, `lte`, `eq`, `neq`; value_sum `lte` |

#[path = "correlation/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::*;

/// Bursts of events per group: `bursts` bursts of `size` events spread over a fraction
/// `dur` of the timespan, separated by quiet gaps of `gap` timespans.
struct Bursts {
    span: i64,
    groups: usize,
    bursts: usize,
    size: (i64, i64),
    dur: (f64, f64),
    gap: (f64, f64),
}

impl Bursts {
    /// Pushes the events; `make(rng, group, index in burst)` gives each event's fields
    /// (without `timestamp`). Returns each group's burst start times.
    fn fill(
        &self,
        rng: &mut Rng,
        s: &mut Stream,
        mut make: impl FnMut(&mut Rng, usize, i64) -> Value,
    ) -> Vec<Vec<i64>> {
        let frac = |rng: &mut Rng, (lo, hi): (f64, f64)| -> i64 {
            let lo = (lo * self.span as f64) as i64;
            let hi = (hi * self.span as f64) as i64;
            rng.range(lo, hi.max(lo + 1))
        };
        let mut starts = Vec::new();
        for g in 0..self.groups {
            let mut t = rng.range(0, self.span * 2);
            let mut mine = Vec::new();
            for _ in 0..self.bursts {
                let n = rng.range(self.size.0, self.size.1 + 1);
                let d = frac(rng, self.dur);
                mine.push(t);
                for i in 0..n {
                    let at = t + rng.range(0, d.max(1));
                    s.push(at, make(rng, g, i));
                }
                t += d + frac(rng, self.gap);
            }
            starts.push(mine);
        }
        starts
    }
}

/// Noise: `n` events of action `other` over `0..until`, and some of the given action
/// without any group field.
fn noise(rng: &mut Rng, s: &mut Stream, n: usize, until: i64) {
    for i in 0..n {
        let t = rng.range(0, until);
        if i % 3 == 0 {
            s.push(t, json!({"action": "fail", "user": "nobody"}));
        } else {
            s.push(t, json!({"action": "other", "src": "h1", "user": "x"}));
        }
    }
}

fn end_of(s: &Stream) -> i64 {
    s.items.iter().map(|x| x.0).max().unwrap_or(0)
}

const SRC: &[&str] = &["Host-A", "host-a", "h2", "H3", "h4", "h5", "h6"];
const USERS: &[&str] = &["alice", "Alice", "bob", "carol", "dave", "erin"];

#[test]
fn event_count_groups() {
    let mut rng = Rng::new(1);
    let mut s = Stream::default();
    let b = Bursts {
        span: 30 * SEC,
        groups: SRC.len(),
        bursts: 12,
        size: (1, 8),
        dur: (0.2, 1.5),
        gap: (0.3, 3.0),
    };
    b.fill(
        &mut rng,
        &mut s,
        |rng, g, _| json!({"action": "fail", "src": SRC[g], "user": rng.pick(&USERS[..3])}),
    );
    let end = end_of(&s);
    noise(&mut rng, &mut s, 150, end);
    let ev = s.finish(&[30 * SEC, 20 * SEC, 10 * SEC, 15 * SEC]);
    let rules = vec![
        action_rule("fail", "fail"),
        correlation(
            "ec_src",
            "type: event_count\nrules: [fail]\ngroup-by: [src]\ntimespan: 30s\ncondition: {gte: 4}",
        ),
        correlation(
            "ec_src_user",
            "type: event_count\nrules: [fail]\ngroup-by: [src, user]\ntimespan: 20s\ncondition: {gte: 3}",
        ),
        correlation(
            "ec_all",
            "type: event_count\nrules: fail\ntimespan: 10s\ncondition: {gt: 12}",
        ),
        correlation(
            "ec_user_float",
            "type: event_count\nrules: [fail]\ngroup-by: user\ntimespan: 15s\ncondition: {gte: 2.5}",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("ec", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for (r, span) in [
        ("ec_src", 30 * SEC),
        ("ec_src_user", 20 * SEC),
        ("ec_all", 10 * SEC),
        ("ec_user_float", 15 * SEC),
    ] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, span, &k, &o, &ev, Expect::Suppress, true));
        diffs.extend(evidence_within_reference(r, &k, &o));
    }
    // Upper/lower case sources are one group, as in the reference.
    assert!(k.of("ec_src").iter().all(|a| a.group != "src=Host-A"));
    // The update of each alert carries the final count: the window's count when raised
    // plus every event of the key absorbed while it was open.
    diffs.extend(update_counts(&ev, &o, &k, "ec_src", 30 * SEC, 4));
    assert_agree(diffs);
    assert!(k.summary_count("without") > 0, "no event lacked src");

    let kr = kuzet("ec-reset", &rules, &ev, &["--policy", "reset"]);
    let mut diffs = Vec::new();
    for (r, span) in [
        ("ec_src", 30 * SEC),
        ("ec_src_user", 20 * SEC),
        ("ec_all", 10 * SEC),
        ("ec_user_float", 15 * SEC),
    ] {
        diffs.extend(compare(r, span, &kr, &o, &ev, Expect::Reset, false));
        assert!(
            kr.of(r).iter().all(|a| a.revision == 0),
            "{r}: reset never updates"
        );
    }
    assert_agree(diffs);
    // Reset forgets the window: more alerts than with suppression, fewer than the reference.
    let (ns, nr, no) = (
        k.of("ec_src").iter().filter(|a| a.revision == 0).count(),
        kr.of("ec_src").len(),
        o.alerts("ec_src").len(),
    );
    assert!(
        ns < nr && nr < no,
        "suppress {ns}, reset {nr}, reference {no}"
    );
}

/// kuzet's suppression over one group's events (`fail` events with `src`), firing where the
/// reference fires: (alert time, final count, final last_seen) of every alert that got an
/// update; compared with kuzet's revision-1 alerts.
fn update_counts(
    ev: &Events,
    o: &Oracle,
    k: &Replay,
    rule: &str,
    span: i64,
    threshold: u64,
) -> Vec<String> {
    let fires: BTreeSet<(String, i64)> = o
        .alerts(rule)
        .into_iter()
        .map(|a| (a.group, a.time))
        .collect();
    let mut by_group: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (i, e) in ev.events.iter().enumerate() {
        if e["action"] == "fail"
            && let Some(src) = e["src"].as_str()
        {
            by_group
                .entry(format!("src={}", src.to_ascii_lowercase()))
                .or_default()
                .push(ev.times[i]);
        }
    }
    let mut want = BTreeSet::new();
    for (g, times) in &by_group {
        // (fired, until, count, last, dirty)
        let mut open: Option<(i64, i64, u64, i64, bool)> = None;
        for (n, &t) in times.iter().enumerate() {
            if let Some(a) = open.filter(|a| t > a.1) {
                if a.4 {
                    want.insert((g.clone(), a.0, a.2, a.3));
                }
                open = None;
            }
            // Fires when the reference fires here and, among events at the same time, once
            // the count so far reaches the threshold.
            let in_window = times[..=n].iter().filter(|&&x| x > t - span).count() as u64;
            let fires_here = fires.contains(&(g.clone(), t)) && in_window >= threshold;
            match open.as_mut() {
                Some(a) => {
                    a.2 += 1;
                    a.3 = a.3.max(t);
                    a.4 = true;
                    if fires_here {
                        a.1 = a.1.max(t + span);
                    }
                }
                None if fires_here => open = Some((t, t + span, in_window, t, false)),
                None => {}
            }
        }
        if let Some(a) = open.filter(|a| a.4) {
            want.insert((g.clone(), a.0, a.2, a.3));
        }
    }
    let got: BTreeSet<(String, i64, u64, i64)> = k
        .of(rule)
        .into_iter()
        .filter(|a| a.revision == 1)
        .map(|a| {
            let raised = k
                .of(rule)
                .into_iter()
                .find(|b| b.id == a.id && b.revision == 0)
                .expect("an update follows its alert");
            (a.group.clone(), raised.last_seen, a.count, a.last_seen)
        })
        .collect();
    if got == want {
        return Vec::new();
    }
    vec![format!(
        "{rule} updates (group, raised at, count, last_seen): kuzet only {:?}, model only {:?}",
        got.difference(&want).collect::<Vec<_>>(),
        want.difference(&got).collect::<Vec<_>>()
    )]
}

#[test]
fn value_count_distinct() {
    let mut rng = Rng::new(2);
    let mut s = Stream::default();
    let b = Bursts {
        span: MIN,
        groups: 6,
        bursts: 10,
        size: (1, 9),
        dur: (0.3, 1.5),
        gap: (0.3, 3.0),
    };
    b.fill(&mut rng, &mut s, |rng, g, _| {
        if rng.chance(0.1) {
            // No value: still an event of the group, never a distinct value.
            json!({"action": "fail", "src": SRC[g]})
        } else {
            json!({"action": "fail", "src": SRC[g], "user": rng.pick(USERS), "port": rng.range(20, 24)})
        }
    });
    let end = end_of(&s);
    noise(&mut rng, &mut s, 100, end);
    let ev = s.finish(&[MIN, 30 * SEC]);
    let rules = vec![
        action_rule("fail", "fail"),
        correlation(
            "vc_users",
            "type: value_count\nrules: [fail]\ngroup-by: [src]\ntimespan: 1m\ncondition: {gte: 3, field: user}",
        ),
        correlation(
            "vc_ports",
            "type: value_count\nrules: [fail]\ngroup-by: [src, user]\ntimespan: 30s\ncondition: {field: port, gt: 1}",
        ),
        // Grouped by a number field: the reference keeps 22, kuzet prints "22".
        correlation(
            "vc_by_port",
            "type: value_count\nrules: [fail]\ngroup-by: port\ntimespan: 30s\ncondition: {field: src, gte: 3}",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("vc", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for (r, span) in [
        ("vc_users", MIN),
        ("vc_ports", 30 * SEC),
        ("vc_by_port", 30 * SEC),
    ] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, span, &k, &o, &ev, Expect::Suppress, true));
        diffs.extend(evidence_within_reference(r, &k, &o));
    }
    assert_agree(diffs);
    let kr = kuzet("vc-reset", &rules, &ev, &["--policy", "reset"]);
    let mut diffs = Vec::new();
    for (r, span) in [
        ("vc_users", MIN),
        ("vc_ports", 30 * SEC),
        ("vc_by_port", 30 * SEC),
    ] {
        diffs.extend(compare(r, span, &kr, &o, &ev, Expect::Reset, false));
    }
    assert_agree(diffs);
}

/// The value types over one stream; `value(rng)` gives the `bytes` field's JSON value.
fn value_aggregates(name: &str, seed: u64, value: impl Fn(&mut Rng) -> Value) {
    let mut rng = Rng::new(seed);
    let mut s = Stream::default();
    let b = Bursts {
        span: 30 * SEC,
        groups: 6,
        bursts: 10,
        size: (1, 8),
        dur: (0.2, 1.5),
        gap: (0.3, 3.0),
    };
    b.fill(&mut rng, &mut s, |rng, g, _| {
        if rng.chance(0.1) {
            json!({"action": "fail", "src": SRC[g]})
        } else {
            json!({"action": "fail", "src": SRC[g], "bytes": value(rng)})
        }
    });
    let end = end_of(&s);
    noise(&mut rng, &mut s, 100, end);
    let ev = s.finish(&[30 * SEC, 20 * SEC]);
    // Thresholds with three odd decimals: no sum, mean or interpolated rank of these
    // values lands on them, so float rounding cannot decide.
    let rules = vec![
        action_rule("fail", "fail"),
        correlation(
            "sum",
            "type: value_sum\nrules: [fail]\ngroup-by: [src]\ntimespan: 30s\ncondition: {field: bytes, gte: 80.125}",
        ),
        correlation(
            "avg",
            "type: value_avg\nrules: [fail]\ngroup-by: [src]\ntimespan: 20s\ncondition: {field: bytes, gt: 24.125}",
        ),
        correlation(
            "median",
            "type: value_median\nrules: [fail]\ngroup-by: [src]\ntimespan: 30s\ncondition: {field: bytes, gte: 22.125}",
        ),
        correlation(
            "p90",
            "type: value_percentile\nrules: [fail]\ngroup-by: [src]\ntimespan: 30s\ncondition: {field: bytes, percentile: 90, gte: 30.125}",
        ),
        correlation(
            "p25",
            "type: value_percentile\nrules: [fail]\ngroup-by: [src]\ntimespan: 20s\ncondition: {field: bytes, percentile: 25, gt: 12.125}",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet(name, &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for (r, span) in [
        ("sum", 30 * SEC),
        ("avg", 20 * SEC),
        ("median", 30 * SEC),
        ("p90", 30 * SEC),
        ("p25", 20 * SEC),
    ] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, span, &k, &o, &ev, Expect::Suppress, true));
    }
    assert_agree(diffs);
    let kr = kuzet(name, &rules, &ev, &["--policy", "reset"]);
    let mut diffs = Vec::new();
    // Reset only thins the firings of sums (monotone in the window's events); a mean or a
    // rank of fewer values may be higher than the whole window's.
    diffs.extend(compare("sum", 30 * SEC, &kr, &o, &ev, Expect::Reset, false));
    for (r, span) in [
        ("avg", 20 * SEC),
        ("median", 30 * SEC),
        ("p90", 30 * SEC),
        ("p25", 20 * SEC),
    ] {
        diffs.extend(compare(r, span, &kr, &o, &ev, Expect::FirstOnly, false));
    }
    assert_agree(diffs);
}

#[test]
fn value_aggregates_numbers() {
    value_aggregates("values-num", 3, |rng| json!(rng.range(0, 41)));
}

#[test]
fn value_aggregates_numeric_strings() {
    // Text values: JSON numbers count (after trimming spaces), other text is no number —
    // "03", "+3", "3.", "0x10", "abc" are ignored by both.
    value_aggregates("values-text", 4, |rng| {
        let n = rng.range(0, 41);
        Value::String(match rng.range(0, 12) {
            0 => format!(" {n} "),
            1 => format!("{n}.5"),
            2 => format!("{}e1", n / 10),
            3 => format!("0{n}"),
            4 => format!("+{n}"),
            5 => format!("{n}."),
            6 => "0x10".into(),
            7 => "abc".into(),
            8 => format!("-{n}"),
            _ => format!("{n}"),
        })
    });
}

/// Events of actions `a`, `b`, `c` per group, in random order within bursts.
fn abc_stream(seed: u64, span: i64, same_ms: f64) -> Events {
    let mut rng = Rng::new(seed);
    let mut s = Stream::default();
    let b = Bursts {
        span,
        groups: 6,
        bursts: 12,
        size: (1, 5),
        dur: (0.3, 1.5),
        gap: (0.3, 3.0),
    };
    b.fill(
        &mut rng,
        &mut s,
        |rng, g, _| json!({"action": *rng.pick(&["a", "b", "c", "a", "b"]), "src": SRC[g]}),
    );
    // Events at the same millisecond as another of the group, of another action.
    let dup: Vec<(i64, Value)> = s
        .items
        .iter()
        .filter(|_| rng.chance(same_ms))
        .map(|(t, m)| {
            let mut m = m.clone();
            let other = match m["action"].as_str() {
                Some("a") => "b",
                Some("b") => "c",
                _ => "a",
            };
            m.insert("action".into(), json!(other));
            (*t, Value::Object(m))
        })
        .collect();
    for (t, v) in dup {
        s.push(t, v);
    }
    let end = end_of(&s);
    noise(&mut rng, &mut s, 80, end);
    s.finish(&[span])
}

fn abc_rules() -> Vec<String> {
    vec![
        action_rule("ra", "a"),
        action_rule("rb", "b"),
        action_rule("rc", "c"),
    ]
}

#[test]
fn temporal_all_and_some() {
    let ev = abc_stream(5, 20 * SEC, 0.0);
    let mut rules = abc_rules();
    // Referenced by id as well as by name.
    rules.push(correlation(
        "t_all",
        &format!(
            "type: temporal\nrules: [{}, rb, rc]\ngroup-by: [src]\ntimespan: 20s",
            uuid("ra")
        ),
    ));
    rules.push(correlation(
        "t_two",
        "type: temporal\nrules: [ra, rb, rc]\ngroup-by: [src]\ntimespan: 20s\ncondition: {gte: 2}",
    ));
    let o = oracle(&rules, &ev);
    let k = kuzet("temporal", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for r in ["t_all", "t_two"] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, 20 * SEC, &k, &o, &ev, Expect::Suppress, true));
        diffs.extend(evidence_within_reference(r, &k, &o));
    }
    assert_agree(diffs);
    let kr = kuzet("temporal-reset", &rules, &ev, &["--policy", "reset"]);
    let mut diffs = Vec::new();
    for r in ["t_all", "t_two"] {
        diffs.extend(compare(r, 20 * SEC, &kr, &o, &ev, Expect::Reset, false));
    }
    assert_agree(diffs);
}

#[test]
fn temporal_ordered_all_and_some() {
    // Some events share a millisecond with another of the group: no order between them.
    let ev = abc_stream(6, 20 * SEC, 0.15);
    let mut rules = abc_rules();
    rules.push(correlation(
        "o_all",
        "type: temporal_ordered\nrules: [ra, rb, rc]\ngroup-by: [src]\ntimespan: 20s",
    ));
    rules.push(correlation(
        "o_two",
        "type: temporal_ordered\nrules: [ra, rb, rc]\ngroup-by: [src]\ntimespan: 20s\ncondition: {gte: 2}",
    ));
    let o = oracle(&rules, &ev);
    let k = kuzet("ordered", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    // With all rules required both metrics are 3; with gte 2 the reference reports the
    // rules seen in the window, kuzet the longest ordered chain (documented).
    diffs.extend(compare(
        "o_all",
        20 * SEC,
        &k,
        &o,
        &ev,
        Expect::Suppress,
        true,
    ));
    diffs.extend(compare(
        "o_two",
        20 * SEC,
        &k,
        &o,
        &ev,
        Expect::Suppress,
        false,
    ));
    assert!(!o.alerts("o_all").is_empty() && !o.alerts("o_two").is_empty());
    assert_agree(diffs);
    let kr = kuzet("ordered-reset", &rules, &ev, &["--policy", "reset"]);
    let mut diffs = Vec::new();
    for r in ["o_all", "o_two"] {
        diffs.extend(compare(r, 20 * SEC, &kr, &o, &ev, Expect::Reset, false));
    }
    assert_agree(diffs);
}

#[test]
fn extended_conditions() {
    let ev = abc_stream(7, 15 * SEC, 0.0);
    let mut rules = abc_rules();
    for (name, cond) in [
        ("x_and", "ra and rb"),
        ("x_or", "ra or rc"),
        ("x_mixed", "(ra and rb) or rc"),
    ] {
        rules.push(correlation(
            name,
            &format!("type: temporal\ngroup-by: [src]\ntimespan: 15s\ncondition: {cond}"),
        ));
    }
    let o = oracle(&rules, &ev);
    let k = kuzet("extended", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for r in ["x_and", "x_or", "x_mixed"] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, 15 * SEC, &k, &o, &ev, Expect::Suppress, true));
    }
    assert_agree(diffs);
}

/// The events of each group (`src`, folded), split into sessions where the group is quiet
/// for more than `gap`: (group key, event indices).
fn sessions(ev: &Events, gap: i64) -> Vec<(String, Vec<usize>)> {
    let mut by_group: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in ev.events.iter().enumerate() {
        if let Some(src) = e["src"].as_str()
            && e["action"] != "other"
        {
            by_group
                .entry(format!("src={}", src.to_ascii_lowercase()))
                .or_default()
                .push(i);
        }
    }
    let mut out = Vec::new();
    for (g, idx) in by_group {
        let mut cur: Vec<usize> = Vec::new();
        for i in idx {
            if cur.last().is_some_and(|&p| ev.times[i] - ev.times[p] > gap) {
                out.push((g.clone(), std::mem::take(&mut cur)));
            }
            cur.push(i);
        }
        out.push((g, cur));
    }
    out
}

/// Absence, `ra and not rb`, on sessions per group (a group's only events within several
/// timespans) that start with an `a` and may hold a `b`: the reference's forward window
/// from that `a` and kuzet's episode from the group's first event cover the same events,
/// so kuzet must alert at (first `a` + T) for exactly the sessions without `b`, and the
/// reference alerts there too (a later `a` of the session may add a reference alert).
#[test]
fn absence() {
    let span = 10 * SEC;
    let mut rng = Rng::new(8);
    let mut s = Stream::default();
    // SRC[0] and SRC[1] are one group: skip one, so sessions stay isolated.
    for src in &SRC[1..] {
        let mut t = rng.range(0, span);
        for _ in 0..8 {
            s.push(t, json!({"action": "a", "src": src}));
            if rng.chance(0.5) {
                s.push(
                    t + rng.range(1, span - 1),
                    json!({"action": "b", "src": src}),
                );
            }
            if rng.chance(0.3) {
                s.push(
                    t + rng.range(1, span - 1),
                    json!({"action": "a", "src": src}),
                );
            }
            t += span * rng.range(3, 6);
        }
    }
    // The reference judges a window only once an event at or past its end exists.
    let end = end_of(&s) + 3 * span;
    s.push(end, json!({"action": "other", "src": "h1"}));
    let ev = s.finish(&[span]);
    let mut rules = abc_rules();
    rules.push(correlation(
        "absent_b",
        "type: temporal\ngroup-by: [src]\ntimespan: 10s\ncondition: ra and not rb",
    ));
    let o = oracle(&rules, &ev);
    let k = kuzet("absence", &rules, &ev, &[]);
    let kset: BTreeSet<(String, i64)> = k
        .of("absent_b")
        .iter()
        .map(|a| (a.group.clone(), a.last_seen))
        .collect();
    let rset: BTreeSet<(String, i64)> = o
        .alerts("absent_b")
        .into_iter()
        .map(|a| (a.group, a.time))
        .collect();
    let want: BTreeSet<(String, i64)> = sessions(&ev, 2 * span)
        .into_iter()
        .filter(|(_, idx)| idx.iter().all(|&i| ev.events[i]["action"] != "b"))
        .map(|(g, idx)| (g, ev.times[idx[0]] + span))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(kset, want, "kuzet vs the sessions without b");
    assert!(
        kset.is_subset(&rset),
        "kuzet alerts the reference does not have: {:?}",
        kset.difference(&rset).collect::<Vec<_>>()
    );
    // Every reference alert belongs to a session without b, or is the documented
    // difference: a later `a` whose own forward window has no `b`.
    for (g, t) in &rset {
        let covered = kset
            .iter()
            .any(|(kg, kt)| kg == g && t - kt < span && t >= kt);
        let later_a = sessions(&ev, 2 * span).iter().any(|(sg, idx)| {
            sg == g
                && idx[1..]
                    .iter()
                    .any(|&i| ev.events[i]["action"] == "a" && ev.times[i] + span == *t)
        });
        assert!(covered || later_a, "reference alert {g} at {t} unexplained");
    }
}

#[test]
fn aliases() {
    // A connection is grouped by its destination, a scan by its source: alias `ip`.
    let span = 30 * SEC;
    let mut rng = Rng::new(9);
    let mut s = Stream::default();
    let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
    let b = Bursts {
        span,
        groups: ips.len(),
        bursts: 10,
        size: (1, 5),
        dur: (0.3, 1.5),
        gap: (0.3, 3.0),
    };
    b.fill(&mut rng, &mut s, |rng, g, _| {
        let other = *rng.pick(&ips);
        if rng.chance(0.5) {
            json!({"action": "conn", "dst_ip": ips[g], "src_ip": other})
        } else {
            json!({"action": "scan", "src_ip": ips[g], "dst_ip": other})
        }
    });
    let end = end_of(&s);
    noise(&mut rng, &mut s, 50, end);
    let ev = s.finish(&[span]);
    let aliases = "aliases:\n  ip:\n    conn: dst_ip\n    scan: src_ip";
    let rules = vec![
        action_rule("conn", "conn"),
        action_rule("scan", "scan"),
        correlation(
            "al_temporal",
            &format!(
                "type: temporal\nrules: [conn, scan]\ngroup-by: [ip]\ntimespan: 30s\n{aliases}"
            ),
        ),
        correlation(
            "al_count",
            &format!(
                "type: event_count\nrules: [conn, scan]\ngroup-by: [ip]\ntimespan: 30s\ncondition: {{gte: 4}}\n{aliases}"
            ),
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("aliases", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for r in ["al_temporal", "al_count"] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, span, &k, &o, &ev, Expect::Suppress, true));
        diffs.extend(evidence_within_reference(r, &k, &o));
    }
    assert_agree(diffs);
    assert!(
        k.of("al_count")
            .iter()
            .all(|a| a.group.starts_with("ip=10."))
    );
}

#[test]
fn generate() {
    let mut rng = Rng::new(10);
    let mut s = Stream::default();
    for i in 0..120 {
        let action = *rng.pick(&["quiet", "loud", "alone", "both", "other"]);
        s.push(
            i * 700 + rng.range(0, 500),
            json!({"action": action, "src": *rng.pick(&SRC[..3])}),
        );
    }
    let ev = s.finish(&[10 * SEC]);
    let rules = vec![
        action_rule("quiet", "quiet"),
        action_rule("loud", "loud"),
        action_rule("alone", "alone"),
        action_rule("both", "both"),
        correlation(
            "c_both_quiet",
            "type: event_count\nrules: [both]\ntimespan: 10s\ncondition: {gte: 2}",
        ),
        correlation(
            "c_both_loud",
            "type: event_count\nrules: [both]\ntimespan: 10s\ncondition: {gte: 3}\ngenerate: true",
        ),
        correlation(
            "c_quiet",
            "type: event_count\nrules: [quiet]\ngroup-by: [src]\ntimespan: 10s\ncondition: {gte: 3}\ngenerate: false",
        ),
        correlation(
            "c_loud",
            "type: event_count\nrules: [loud]\ngroup-by: [src]\ntimespan: 10s\ncondition: {gte: 3}\ngenerate: true",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("generate", &rules, &ev, &[]);
    for r in ["quiet", "loud", "alone"] {
        let want: BTreeSet<usize> = if o.emitted(r) {
            o.matches(r).into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let got: BTreeSet<usize> = k
            .of(r)
            .iter()
            .map(|a| {
                assert_eq!(a.kind, "detection");
                a.events[0]
            })
            .collect();
        assert_eq!(got, want, "detection alerts of {r}");
    }
    assert!(!o.emitted("quiet") && o.emitted("loud") && o.emitted("alone"));
    // Documented difference: referenced once with and once without `generate: true`,
    // pySigma does not output the rule (any reference without it disables output), kuzet
    // does (any reference asking for it enables output).
    assert!(!o.emitted("both"));
    let got: BTreeSet<usize> = k.of("both").iter().map(|a| a.events[0]).collect();
    let all: BTreeSet<usize> = o.matches("both").into_iter().collect();
    assert!(!all.is_empty());
    assert_eq!(got, all, "kuzet outputs every match of `both`");
    assert_agree(
        ["c_quiet", "c_loud"]
            .iter()
            .flat_map(|r| compare(r, 10 * SEC, &k, &o, &ev, Expect::Suppress, true))
            .collect(),
    );
}

/// Chains. The child fires once per burst in both engines: bursts of exactly three
/// failures within the child's timespan, bursts of one (src, user) more than a timespan
/// apart. The parents then see the same child alerts.
#[test]
fn chains() {
    let child_span = MIN;
    let mut rng = Rng::new(11);
    let mut s = Stream::default();
    for g in 0..5 {
        // USERS[0] and USERS[1] are one user once folded: skip one.
        for user in &USERS[1..] {
            let user = user.to_ascii_lowercase();
            let mut t = rng.range(0, 30 * MIN);
            for _ in 0..rng.range(0, 5) {
                for _ in 0..3 {
                    s.push(
                        t + rng.range(0, 40 * SEC),
                        json!({"action": "fail", "src": SRC[g + 2], "user": user}),
                    );
                }
                if rng.chance(0.4) {
                    s.push(
                        t + rng.range(40 * SEC, 50 * SEC),
                        json!({"action": "success", "src": SRC[g + 2], "user": user}),
                    );
                }
                t += rng.range(2 * child_span, 40 * MIN);
            }
        }
    }
    let end = end_of(&s);
    noise(&mut rng, &mut s, 80, end);
    let ev = s.finish(&[MIN, HOUR, 10 * MIN]);
    let rules = vec![
        action_rule("fail", "fail"),
        action_rule("success", "success"),
        correlation(
            "brute_user",
            "type: event_count\nrules: [fail]\ngroup-by: [src, user]\ntimespan: 1m\ncondition: {gte: 3}",
        ),
        correlation(
            "spray",
            "type: event_count\nrules: [brute_user]\ngroup-by: [src]\ntimespan: 1h\ncondition: {gte: 3}\ngenerate: true",
        ),
        correlation(
            "brute_then_success",
            "type: temporal_ordered\nrules: [brute_user, success]\ngroup-by: [src]\ntimespan: 10m",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("chains", &rules, &ev, &[]);
    // Documented difference: `spray` says `generate: true`, `brute_then_success` says
    // nothing. pySigma disables a rule's output on any reference without `generate: true`;
    // kuzet outputs it when any referencing correlation asks for it.
    assert!(!o.emitted("brute_user"));
    assert!(!k.of("brute_user").is_empty());
    let mut diffs = Vec::new();
    for (r, span) in [
        ("brute_user", MIN),
        ("spray", HOUR),
        ("brute_then_success", 10 * MIN),
    ] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, span, &k, &o, &ev, Expect::Suppress, true));
    }
    // The child fires once per burst (the design above), in both.
    assert!(k.of("brute_user").iter().all(|a| a.revision == 0));
    assert_eq!(k.of("brute_user").len(), o.alerts("brute_user").len());
    assert_agree(diffs);

    // Without generate: the child feeds its parents and is not output.
    let quiet: Vec<String> = rules
        .iter()
        .map(|r| r.replace("generate: true", "generate: false"))
        .collect();
    let o = oracle(&quiet, &ev);
    let k = kuzet("chains-quiet", &quiet, &ev, &[]);
    assert!(!o.emitted("brute_user"));
    assert!(k.of("brute_user").is_empty());
    assert_agree(compare("spray", HOUR, &k, &o, &ev, Expect::Suppress, true));
}

#[test]
fn timespan_units() {
    // One action per unit; bursts scaled to a timespan of 2 units.
    let units: [(&str, i64); 6] = [
        ("m", MIN),
        ("h", HOUR),
        ("d", DAY),
        ("w", 7 * DAY),
        ("M", 2_629_746 * SEC),
        ("y", 31_556_952 * SEC),
    ];
    let mut rng = Rng::new(12);
    let mut s = Stream::default();
    for (u, unit) in units {
        let b = Bursts {
            span: 2 * unit,
            groups: 3,
            bursts: 6,
            size: (1, 6),
            dur: (0.3, 1.5),
            gap: (0.3, 3.0),
        };
        b.fill(
            &mut rng,
            &mut s,
            |_, g, _| json!({"action": format!("u_{u}"), "src": SRC[g + 2]}),
        );
    }
    let spans: Vec<i64> = units.iter().map(|x| 2 * x.1).collect();
    let ev = s.finish(&spans);
    let mut rules = Vec::new();
    for (u, _) in units {
        let lower = if u == "M" { "mon" } else { u };
        rules.push(action_rule(&format!("u_{lower}"), &format!("u_{u}")));
        rules.push(correlation(
            &format!("c_{lower}"),
            &format!(
                "type: event_count\nrules: [u_{lower}]\ngroup-by: [src]\ntimespan: 2{u}\ncondition: {{gte: 4}}"
            ),
        ));
    }
    let o = oracle(&rules, &ev);
    // The `y` stream runs years past 2024, possibly past today's wall clock: kuzet takes
    // events dated beyond `--max-future` as received now, so allow them here.
    let k = kuzet("units", &rules, &ev, &["--max-future", "1000000000000"]);
    let mut diffs = Vec::new();
    for (u, unit) in units {
        let lower = if u == "M" { "mon" } else { u };
        let r = format!("c_{lower}");
        assert!(!o.alerts(&r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(&r, 2 * unit, &k, &o, &ev, Expect::Suppress, true));
    }
    assert_agree(diffs);
}

/// `lt`/`lte`/`eq`/`neq`: kuzet judges an episode `[t0, t0 + T)` from the key's first
/// event, the reference every anchor. With isolated bursts shorter than T, the episode
/// holds the burst, and so does the reference's window at the burst's last event: kuzet
/// fires for a burst exactly when the reference fires at its last event, with its metric.
#[test]
fn episode_conditions() {
    let span = 20 * SEC;
    let mut rng = Rng::new(13);
    let mut s = Stream::default();
    // SRC[0] and SRC[1] are one group: skip one, so bursts stay isolated.
    for src in &SRC[1..] {
        let mut t = rng.range(0, span);
        for _ in 0..10 {
            for _ in 0..rng.range(1, 7) {
                s.push(
                    t + rng.range(0, span / 2),
                    json!({"action": "fail", "src": src, "bytes": rng.range(0, 10)}),
                );
            }
            t += span * rng.range(2, 5);
        }
    }
    let ev = s.finish(&[span]);
    let cond = [
        ("e_lt", "event_count", "{lt: 3}"),
        ("e_lte", "event_count", "{lte: 2}"),
        ("e_eq", "event_count", "{eq: 3}"),
        ("e_neq", "event_count", "{neq: 3}"),
        ("v_lte", "value_sum", "{field: bytes, lte: 12}"),
    ];
    let mut rules = vec![action_rule("fail", "fail")];
    for (name, kind, c) in cond {
        rules.push(correlation(
            name,
            &format!("type: {kind}\nrules: [fail]\ngroup-by: [src]\ntimespan: 20s\ncondition: {c}"),
        ));
    }
    let o = oracle(&rules, &ev);
    let k = kuzet("episodes", &rules, &ev, &[]);
    let bursts = sessions(&ev, span);
    let mut diffs = Vec::new();
    for (name, _, _) in cond {
        let refs = o.alerts(name);
        let ks = k.of(name);
        let mut fired = 0;
        for (g, idx) in &bursts {
            let (t0, last) = (ev.times[idx[0]], ev.times[*idx.last().unwrap()]);
            let r = refs.iter().find(|r| r.group == *g && r.time == last);
            let mine: Vec<&&Alert> = ks
                .iter()
                .filter(|a| a.group == *g && a.first_seen >= t0 && a.first_seen <= last)
                .collect();
            match (r, mine.as_slice()) {
                (None, []) => {}
                (Some(r), [a]) => {
                    fired += 1;
                    if a.last_seen != t0 + span || a.metric != r.metric || a.first_seen != t0 {
                        diffs.push(format!(
                            "{name} {g} burst at {t0}: kuzet at {} from {} metric {:?}, reference metric {:?} (want at {})",
                            a.last_seen,
                            a.first_seen,
                            a.metric,
                            r.metric,
                            t0 + span
                        ));
                    }
                    let want: BTreeSet<usize> = idx.iter().copied().collect();
                    let got: BTreeSet<usize> = a.events.iter().copied().collect();
                    if got != want {
                        diffs.push(format!(
                            "{name} {g} burst at {t0}: evidence {got:?}, burst {want:?}"
                        ));
                    }
                }
                (r, mine) => diffs.push(format!(
                    "{name} {g} burst at {t0}..{last}: reference at last anchor {:?}, kuzet {:?}",
                    r.map(|r| r.metric),
                    mine.iter()
                        .map(|a| (a.last_seen, a.metric))
                        .collect::<Vec<_>>()
                )),
            }
        }
        assert!(fired > 0, "{name} never fires");
        assert_eq!(ks.len(), fired, "{name}: kuzet alerts outside the bursts");
    }
    assert_agree(diffs);
}

/// One event matching two referenced rules: it is one event for `event_count` and the
/// value types, and satisfies both rules for `temporal`.
#[test]
fn one_event_two_rules() {
    let mut rng = Rng::new(14);
    let mut s = Stream::default();
    let b = Bursts {
        span: 20 * SEC,
        groups: 5,
        bursts: 10,
        size: (1, 6),
        dur: (0.3, 1.5),
        gap: (0.3, 3.0),
    };
    b.fill(&mut rng, &mut s, |rng, g, _| {
        json!({
            "action": *rng.pick(&["a", "b"]),
            "prio": *rng.pick(&["high", "low"]),
            "src": SRC[g + 2],
            "user": *rng.pick(&USERS[1..]),
            "bytes": rng.range(0, 20),
        })
    });
    let ev = s.finish(&[20 * SEC]);
    let rules = vec![
        action_rule("ra", "a"),
        detection("rh", "sel:\n  prio: high\ncondition: sel"),
        correlation(
            "two_count",
            "type: event_count\nrules: [ra, rh]\ngroup-by: [src]\ntimespan: 20s\ncondition: {gte: 4}",
        ),
        correlation(
            "two_values",
            "type: value_count\nrules: [ra, rh]\ngroup-by: [src]\ntimespan: 20s\ncondition: {field: user, gte: 3}",
        ),
        correlation(
            "two_sum",
            "type: value_sum\nrules: [ra, rh]\ngroup-by: [src]\ntimespan: 20s\ncondition: {field: bytes, gte: 40.125}",
        ),
        correlation(
            "two_temporal",
            "type: temporal\nrules: [ra, rh]\ngroup-by: [src]\ntimespan: 20s",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("two-rules", &rules, &ev, &[]);
    let mut diffs = Vec::new();
    for r in ["two_count", "two_values", "two_sum", "two_temporal"] {
        assert!(!o.alerts(r).is_empty(), "{r}: the stream never fires");
        diffs.extend(compare(r, 20 * SEC, &k, &o, &ev, Expect::Suppress, true));
    }
    assert_agree(diffs);
}

/// Which text values the value types take as numbers: JSON numbers after trimming, as the
/// reference. One group per value; `value_sum ≥ −1e300` fires exactly for the numeric ones.
#[test]
fn numeric_text() {
    let values = [
        "3", " 3 ", "\t3", "3\n", "1e3", "1E3", "1.E3", "1.e3", ".5", "-.5", "-0", "0.5", "00",
        "03", "+3", "3.", "0x10", "1_0", "Infinity", "NaN", "-", "", "1e400", "-1e400", "1e-400",
        "\u{663}", "1.5e+2", "1.5e-2", "2.50", "0e0", "-0.0e-0", "1e", "1e+", "--1", "1 2",
        "\u{a0}3",
    ];
    let items: Vec<(i64, Value)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                i as i64 * 1000,
                json!({"action": "fail", "src": format!("v{i}"), "bytes": v}),
            )
        })
        .collect();
    let ev = exact(&items);
    let rules = vec![
        action_rule("fail", "fail"),
        correlation(
            "num",
            "type: value_sum\nrules: [fail]\ngroup-by: [src]\ntimespan: 10s\ncondition: {field: bytes, gte: -1e300}",
        ),
    ];
    let o = oracle(&rules, &ev);
    let k = kuzet("numeric-text", &rules, &ev, &[]);
    let name = |g: &str| -> String {
        let i: usize = g.trim_start_matches("src=v").parse().unwrap();
        format!("{:?}", values[i])
    };
    let kset: BTreeMap<String, Option<f64>> = k
        .of("num")
        .iter()
        .map(|a| (name(&a.group), a.metric))
        .collect();
    let rset: BTreeMap<String, Option<f64>> = o
        .alerts("num")
        .iter()
        .map(|a| (name(&a.group), a.metric))
        .collect();
    assert_eq!(kset, rset);
}
