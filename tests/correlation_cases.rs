//! Hand-written correlation cases at the boundaries, through `kuzet replay`: each case is a
//! few events with exact timestamps (ms after 2024-01-01T00:00:00Z), in the order given,
//! and the alerts expected. Where kuzet deliberately differs from the reference
//! (`tests/oracle/SEMANTICS.md`, "Where kuzet differs from the reference"), the case also
//! asks the oracle and pins the difference.
//!
//! | case | what |
//! |---|---|
//! | `exactly_timespan_apart` | `(t − T, t]`: an event exactly T earlier is out (the reference: in) |
//! | `equal_timestamps` | several events in one ms; `temporal_ordered` needs strictly later |
//! | `late_within_lateness`, `late_beyond_lateness` | out-of-order arrival; the `late` count |
//! | `late_value_within_lateness` | a late value still sees the values its window holds |
//! | `chained_rules` | event_count and temporal over a correlation |
//! | `aliases` | one group from different fields per rule |
//! | `missing_group_by_field` | absent and null group values exclude the event |
//! | `suppression`, `suppression_boundary` | one alert + one update with the final count; a new alert after quiet |
//! | `policy_reset` | a new alert per full window |
//! | `episodes` | `lt` at end of input, at the next event, at exactly T; with reset |
//! | `evidence_window_and_cap` | evidence from the firing window, at most `--max-alert-events` |
//! | `deterministic_ids` | same input, same ids; different alerts, different ids |
//! | `range_condition` | kuzet's two-operator conditions (pySigma rejects them) |
//! | `reference_differences` | per-anchor `lt`, absence windows, no suppression, in the reference |
//! | `checkpoint_restores_every_window_shape` | `--state-dir` resume into a grown file, every window type |

#[path = "correlation/support.rs"]
mod support;

use serde_json::{Value, json};
use support::*;

fn fail(t: i64, src: &str) -> (i64, Value) {
    (t, json!({"action": "fail", "src": src}))
}

fn act(t: i64, action: &str, src: &str) -> (i64, Value) {
    (t, json!({"action": action, "src": src}))
}

/// `fail` and an event_count correlation `brute` over it, grouped by `src`.
fn brute(timespan: &str, condition: &str) -> Vec<String> {
    vec![
        action_rule("fail", "fail"),
        correlation(
            "brute",
            &format!(
                "type: event_count\nrules: [fail]\ngroup-by: [src]\ntimespan: {timespan}\ncondition: {condition}"
            ),
        ),
    ]
}

/// Stands for the metric of an update in [`shape`]: an update reports the largest metric
/// seen while the alert was open, which for the count types is capped at what the window
/// keeps (N for `gte: N`); the update's `count` is exact.
const UPDATE: f64 = -1.0;

/// (last_seen, revision, metric, count) of each alert of `rule`, in output order; the
/// metric of updates is [`UPDATE`].
fn shape(k: &Replay, rule: &str) -> Vec<(i64, u64, f64, u64)> {
    k.of(rule)
        .iter()
        .map(|a| {
            let m = if a.revision == 0 {
                a.metric.unwrap_or(f64::NAN)
            } else {
                UPDATE
            };
            (a.last_seen, a.revision, m, a.count)
        })
        .collect()
}

#[test]
fn exactly_timespan_apart() {
    let rules = brute("10s", "{gte: 2}");
    let apart = exact(&[fail(0, "x"), fail(10_000, "x")]);
    assert!(kuzet("apart", &rules, &apart, &[]).alerts.is_empty());
    // The reference's window [t − T, t] holds both.
    let o = oracle(&rules, &apart);
    assert_eq!(o.alerts("brute").len(), 1);
    assert_eq!(o.alerts("brute")[0].time, 10_000);

    let inside = exact(&[fail(0, "x"), fail(9_999, "x")]);
    let k = kuzet("inside", &rules, &inside, &[]);
    assert_eq!(shape(&k, "brute"), vec![(9_999, 0, 2.0, 2)]);
    assert_eq!(k.alerts[0].first_seen, 0);

    // SEMANTICS.md 3.2: 0, 5, 10 with gte 3 fires at 10 in the reference, not in kuzet.
    let rules = brute("10s", "{gte: 3}");
    let three = exact(&[fail(0, "x"), fail(5_000, "x"), fail(10_000, "x")]);
    assert!(kuzet("three", &rules, &three, &[]).alerts.is_empty());
    assert_eq!(oracle(&rules, &three).alerts("brute").len(), 1);
}

#[test]
fn equal_timestamps() {
    let rules = brute("10s", "{gte: 3}");
    let three = exact(&[fail(1_000, "x"), fail(1_000, "x"), fail(1_000, "x")]);
    let k = kuzet("equal3", &rules, &three, &[]);
    assert_eq!(shape(&k, "brute"), vec![(1_000, 0, 3.0, 3)]);
    assert_eq!(k.alerts[0].events, vec![0, 1, 2]);
    // A fourth in the same ms is absorbed: an update, same id, final count 4.
    let four = exact(&[
        fail(1_000, "x"),
        fail(1_000, "x"),
        fail(1_000, "x"),
        fail(1_000, "x"),
    ]);
    let k = kuzet("equal4", &rules, &four, &[]);
    assert_eq!(
        shape(&k, "brute"),
        vec![(1_000, 0, 3.0, 3), (1_000, 1, UPDATE, 4)]
    );
    assert_eq!(k.alerts[0].id, k.alerts[1].id);

    // temporal_ordered: the same ms is no order; one ms later is.
    let rules = vec![
        action_rule("ra", "a"),
        action_rule("rb", "b"),
        correlation(
            "ordered",
            "type: temporal_ordered\nrules: [ra, rb]\ngroup-by: [src]\ntimespan: 10s",
        ),
    ];
    let same = exact(&[act(0, "a", "x"), act(0, "b", "x")]);
    assert!(kuzet("ord-same", &rules, &same, &[]).alerts.is_empty());
    let later = exact(&[act(0, "a", "x"), act(1, "b", "x")]);
    assert_eq!(
        shape(&kuzet("ord-later", &rules, &later, &[]), "ordered"),
        vec![(1, 0, 2.0, 2)]
    );
    // A repeated first stage in the ms of the second: in order through the earlier one.
    let repeated = exact(&[act(0, "a", "x"), act(5_000, "a", "x"), act(5_000, "b", "x")]);
    let k = kuzet("ord-repeated", &rules, &repeated, &[]);
    assert_eq!(shape(&k, "ordered"), vec![(5_000, 0, 2.0, 2)]);
    assert_eq!(k.alerts[0].first_seen, 0);
}

#[test]
fn late_within_lateness() {
    // --lateness 30: after y@45 s the watermark is 15 s; x@21 s is out of order, not late.
    // It completes the window ending at x@22 s: (12, 22] holds 20, 21, 22.
    let rules = brute("10s", "{gte: 3}");
    let ev = exact(&[
        fail(20_000, "x"),
        fail(22_000, "x"),
        fail(45_000, "y"),
        fail(21_000, "x"),
    ]);
    let k = kuzet("late-in", &rules, &ev, &["--lateness", "30"]);
    assert_eq!(k.summary_count("late"), 0);
    // The alert is at the end of the window that fired, not at the late event's time.
    assert_eq!(shape(&k, "brute"), vec![(22_000, 0, 3.0, 3)]);
    assert_eq!(k.alerts[0].first_seen, 20_000);
    let mut seqs = k.alerts[0].events.clone();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![0, 1, 3]);
}

#[test]
fn late_beyond_lateness() {
    // --lateness 5: after y@45 s the watermark is 40 s; x@21 s and x@22 s are late:
    // counted in the summary, and still applied.
    let rules = brute("10s", "{gte: 3}");
    let ev = exact(&[
        fail(20_000, "x"),
        fail(45_000, "y"),
        fail(21_000, "x"),
        fail(22_000, "x"),
    ]);
    let k = kuzet("late-out", &rules, &ev, &["--lateness", "5"]);
    assert_eq!(k.summary_count("late"), 2);
    assert_eq!(shape(&k, "brute"), vec![(22_000, 0, 3.0, 3)]);
}

#[test]
fn late_value_within_lateness() {
    // value_sum ≥ 15 over 10 s. In time order the window ending at 9.5 s holds 5 + 5 + 5.
    // The 9.5 s value arrives after the 15 s one, within the lateness: the values its
    // window needs must still be there.
    let rules = vec![
        action_rule("fail", "fail"),
        correlation(
            "sum",
            "type: value_sum\nrules: [fail]\ngroup-by: [src]\ntimespan: 10s\ncondition: {field: bytes, gte: 15}",
        ),
    ];
    let v = |t: i64, b: i64| (t, json!({"action": "fail", "src": "x", "bytes": b}));
    let ev = exact(&[v(0, 5), v(9_000, 5), v(15_000, 1), v(9_500, 5)]);
    let k = kuzet("late-value", &rules, &ev, &[]);
    assert_eq!(k.summary_count("late"), 0);
    let a = k.of("sum");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!((a[0].last_seen, a[0].metric), (9_500, Some(15.0)));
    // `count` is events, not the sum.
    assert_eq!(a[0].count, 3);
    let mut seqs = a[0].events.clone();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![0, 1, 3]);
}

#[test]
fn chained_rules() {
    let rules = vec![
        action_rule("fail", "fail"),
        action_rule("success", "success"),
        correlation(
            "pair",
            "type: event_count\nrules: [fail]\ngroup-by: [src]\ntimespan: 10s\ncondition: {gte: 2}",
        ),
        correlation(
            "pairs",
            "type: event_count\nrules: [pair]\ngroup-by: [src]\ntimespan: 1m\ncondition: {gte: 2}\ngenerate: true",
        ),
        correlation(
            "pair_then_success",
            "type: temporal_ordered\nrules: [pair, success]\ngroup-by: [src]\ntimespan: 1m",
        ),
        // A third parent, grouping differently (not at all).
        correlation(
            "pairs_anywhere",
            "type: event_count\nrules: [pair]\ntimespan: 1m\ncondition: {gte: 3}",
        ),
    ];
    let ev = exact(&[
        fail(0, "x"),
        fail(1_000, "x"),
        fail(20_000, "x"),
        fail(21_000, "x"),
        act(30_000, "success", "x"),
        fail(40_000, "y"),
        fail(40_500, "y"),
    ]);
    let k = kuzet("chain", &rules, &ev, &[]);
    // Each child alert is one event of its parents, at the child's time.
    assert_eq!(
        shape(&k, "pair"),
        vec![(1_000, 0, 2.0, 2), (21_000, 0, 2.0, 2), (40_500, 0, 2.0, 2)]
    );
    assert_eq!(shape(&k, "pairs"), vec![(21_000, 0, 2.0, 2)]);
    assert_eq!(k.of("pairs")[0].group, "src=x");
    assert_eq!(shape(&k, "pair_then_success"), vec![(30_000, 0, 2.0, 2)]);
    assert_eq!(shape(&k, "pairs_anywhere"), vec![(40_500, 0, 3.0, 3)]);
    // The same in the reference.
    let o = oracle(&rules, &ev);
    let times = |r: &str| -> Vec<i64> { o.alerts(r).iter().map(|a| a.time).collect() };
    assert_eq!(times("pair"), vec![1_000, 21_000, 40_500]);
    assert_eq!(times("pairs_anywhere"), vec![40_500]);
    assert_eq!(times("pairs"), vec![21_000]);
    assert_eq!(times("pair_then_success"), vec![30_000]);
}

#[test]
fn aliases() {
    let rules = vec![
        action_rule("conn", "conn"),
        action_rule("scan", "scan"),
        correlation(
            "conn_scan",
            "type: temporal\nrules: [conn, scan]\ngroup-by: [ip]\ntimespan: 10s\naliases:\n  ip:\n    conn: dst_ip\n    scan: src_ip",
        ),
    ];
    let ev = exact(&[
        (
            0,
            json!({"action": "conn", "dst_ip": "10.0.0.1", "src_ip": "10.0.0.9"}),
        ),
        (
            5_000,
            json!({"action": "scan", "src_ip": "10.0.0.1", "dst_ip": "10.0.0.8"}),
        ),
        (
            6_000,
            json!({"action": "conn", "dst_ip": "10.0.0.2", "src_ip": "10.0.0.3"}),
        ),
        (
            7_000,
            json!({"action": "scan", "src_ip": "10.0.0.3", "dst_ip": "10.0.0.2"}),
        ),
    ]);
    let k = kuzet("alias", &rules, &ev, &[]);
    assert_eq!(shape(&k, "conn_scan"), vec![(5_000, 0, 2.0, 2)]);
    assert_eq!(k.alerts[0].group, "ip=10.0.0.1");
    assert_eq!(k.alerts[0].events, vec![0, 1]);
}

#[test]
fn missing_group_by_field() {
    let rules = brute("10s", "{gte: 3}");
    let ev = exact(&[
        fail(0, "x"),
        (1_000, json!({"action": "fail"})),
        (2_000, json!({"action": "fail", "src": null})),
        fail(3_000, "x"),
    ]);
    let k = kuzet("missing", &rules, &ev, &[]);
    assert!(k.alerts.is_empty());
    assert_eq!(k.summary_count("without"), 2);
    let mut more = ev.events.clone();
    more.push(json!({"timestamp": iso(4_000), "seq": 4, "action": "fail", "src": "X"}));
    let ev = Events {
        times: vec![0, 1_000, 2_000, 3_000, 4_000],
        events: more,
    };
    let k = kuzet("missing2", &rules, &ev, &[]);
    assert_eq!(shape(&k, "brute"), vec![(4_000, 0, 3.0, 3)]);
    assert_eq!(k.alerts[0].events, vec![0, 3, 4]);
    assert_eq!(k.alerts[0].group, "src=x");

    // Two group-by fields: lacking either excludes the event.
    let rules = vec![
        action_rule("fail", "fail"),
        correlation(
            "by_two",
            "type: event_count\nrules: [fail]\ngroup-by: [src, user]\ntimespan: 10s\ncondition: {gte: 2}",
        ),
    ];
    let ev = exact(&[
        (0, json!({"action": "fail", "src": "x", "user": "u"})),
        (1_000, json!({"action": "fail", "src": "x"})),
        (2_000, json!({"action": "fail", "user": "u"})),
        (3_000, json!({"action": "fail", "src": "X", "user": "U"})),
    ]);
    let k = kuzet("missing-two", &rules, &ev, &[]);
    assert_eq!(shape(&k, "by_two"), vec![(3_000, 0, 2.0, 2)]);
    assert_eq!(k.alerts[0].group, "src=x|user=u");
    assert_eq!(k.summary_count("without"), 2);
}

/// 31 failures of one source, one a second: a sustained attack.
fn sustained() -> Vec<(i64, Value)> {
    (0..=30).map(|s| fail(s * 1_000, "x")).collect()
}

#[test]
fn suppression() {
    let rules = brute("10s", "{gte: 3}");
    let mut items = sustained();
    // Quiet for more than a timespan after the last firing (30 s + 10 s), then again.
    items.extend([fail(41_000, "x"), fail(41_500, "x"), fail(42_000, "x")]);
    let k = kuzet("suppress", &rules, &exact(&items), &[]);
    // One alert at the third failure, one update with the final count when the key went
    // quiet, then a new alert (new id) for the new burst.
    assert_eq!(
        shape(&k, "brute"),
        vec![
            (2_000, 0, 3.0, 3),
            (30_000, 1, UPDATE, 31),
            (42_000, 0, 3.0, 3)
        ]
    );
    let a = k.of("brute");
    assert_eq!(a[0].id, a[1].id);
    assert_ne!(a[0].id, a[2].id);
    assert_eq!(a[1].first_seen, 0);
    // The update carries the newest events, at most --max-alert-events (10).
    assert_eq!(a[1].events, (21..=30).collect::<Vec<usize>>());
}

#[test]
fn suppression_boundary() {
    // Fires at 2 s (open until 12 s); fires again at 11 s (open until 21 s); an event at
    // exactly 21 s is still absorbed, one at 21.001 s closes the alert.
    let rules = brute("10s", "{gte: 3}");
    let ev = exact(&[
        fail(0, "x"),
        fail(1_000, "x"),
        fail(2_000, "x"),
        fail(10_500, "x"),
        fail(11_000, "x"),
        fail(21_000, "x"),
        fail(21_001, "x"),
    ]);
    let k = kuzet("suppress-edge", &rules, &ev, &["--lateness", "0"]);
    assert_eq!(
        shape(&k, "brute"),
        vec![(2_000, 0, 3.0, 3), (21_000, 1, UPDATE, 6)]
    );
}

#[test]
fn policy_reset() {
    let rules = brute("10s", "{gte: 3}");
    let k = kuzet(
        "reset",
        &rules,
        &exact(&sustained()),
        &["--policy", "reset"],
    );
    // The window is forgotten after each alert: every third failure raises a new one.
    let want: Vec<(i64, u64, f64, u64)> = (0..10).map(|i| (2_000 + i * 3_000, 0, 3.0, 3)).collect();
    assert_eq!(shape(&k, "brute"), want);
    let ids: std::collections::BTreeSet<&String> = k.alerts.iter().map(|a| &a.id).collect();
    assert_eq!(ids.len(), 10);
    // Each alert's evidence is its own three events.
    assert_eq!(k.alerts[1].events, vec![3, 4, 5]);
}

#[test]
fn episodes() {
    let rules = brute("10s", "{lt: 5}");
    // Judged at the end of input: the episode [0, 10 s) holds 3.
    let k = kuzet(
        "lt-end",
        &rules,
        &exact(&[fail(0, "x"), fail(1_000, "x"), fail(2_000, "x")]),
        &[],
    );
    assert_eq!(shape(&k, "brute"), vec![(10_000, 0, 3.0, 3)]);
    assert_eq!(k.alerts[0].first_seen, 0);
    assert_eq!(k.alerts[0].events, vec![0, 1, 2]);

    // Judged when a later event arrives: the alert is still at the episode's end and its
    // evidence is the episode's; the later event opens the next episode.
    let ev = exact(&[
        fail(0, "x"),
        fail(1_000, "x"),
        fail(15_000, "x"),
        fail(16_000, "x"),
    ]);
    for policy in ["suppress", "reset"] {
        let k = kuzet("lt-next", &rules, &ev, &["--policy", policy]);
        assert_eq!(
            shape(&k, "brute"),
            vec![(10_000, 0, 2.0, 2), (25_000, 0, 2.0, 2)],
            "--policy {policy}"
        );
        assert_eq!(k.alerts[0].events, vec![0, 1]);
        assert_eq!(k.alerts[1].events, vec![2, 3]);
    }

    // An event exactly T after the episode's start belongs to the next episode.
    let k = kuzet(
        "lt-edge",
        &rules,
        &exact(&[fail(0, "x"), fail(10_000, "x")]),
        &[],
    );
    assert_eq!(
        shape(&k, "brute"),
        vec![(10_000, 0, 1.0, 1), (20_000, 0, 1.0, 1)]
    );

    // Out of order within the lateness: a point before the open episode's start begins
    // it, as in time order ([95 s, 105 s) holds 95 s and 100 s)...
    let ev = exact(&[fail(100_000, "x"), fail(150_000, "y"), fail(95_000, "x")]);
    let k = kuzet("lt-late", &rules, &ev, &[]);
    assert_eq!(k.summary_count("late"), 0);
    let x: Vec<&Alert> = k
        .of("brute")
        .into_iter()
        .filter(|a| a.group == "src=x")
        .collect();
    assert_eq!(
        (x[0].first_seen, x[0].last_seen, x[0].metric),
        (95_000, 105_000, Some(2.0))
    );
    assert_eq!(x[0].events, vec![0, 2]);
    // ... unless the episode's later points would then fall outside it: left out.
    let ev = exact(&[fail(100_000, "x"), fail(108_000, "x"), fail(97_000, "x")]);
    assert_eq!(
        shape(&kuzet("lt-late2", &rules, &ev, &[]), "brute"),
        vec![(110_000, 0, 2.0, 2)]
    );

    // neq reports the episode's true count (not one past the threshold).
    let rules = brute("10s", "{neq: 3}");
    let ev = exact(&(0..7).map(|i| fail(i * 100, "x")).collect::<Vec<_>>());
    assert_eq!(
        shape(&kuzet("neq", &rules, &ev, &[]), "brute"),
        vec![(10_000, 0, 7.0, 7)]
    );
}

#[test]
fn evidence_window_and_cap() {
    let rules = brute("10s", "{gte: 3}");
    let ev = exact(&[
        fail(0, "x"),
        fail(20_000, "x"),
        fail(25_000, "x"),
        fail(26_000, "x"),
        fail(26_500, "y"),
    ]);
    let k = kuzet("evidence", &rules, &ev, &[]);
    assert_eq!(shape(&k, "brute"), vec![(26_000, 0, 3.0, 3)]);
    // Not the event at 0 (outside the window), nor y's.
    assert_eq!(k.alerts[0].events, vec![1, 2, 3]);
    let k = kuzet("evidence-cap", &rules, &ev, &["--max-alert-events", "2"]);
    assert_eq!(k.alerts[0].events, vec![2, 3]);
    let k = kuzet(
        "evidence-cap-update",
        &rules,
        &exact(&sustained()),
        &["--max-alert-events", "4"],
    );
    assert_eq!(k.alerts[0].events, vec![0, 1, 2]);
    assert_eq!(k.alerts[1].events, vec![27, 28, 29, 30]);
}

#[test]
fn deterministic_ids() {
    let rules = brute("10s", "{gte: 3}");
    let mut items = sustained();
    items.extend((0..5).map(|s| fail(s * 100, "y")));
    items.sort_by_key(|x| x.0);
    let ev = exact(&items);
    let a = kuzet("ids-a", &rules, &ev, &[]);
    let b = kuzet("ids-b", &rules, &ev, &[]);
    let key = |k: &Replay| -> Vec<(String, u64, String)> {
        k.alerts
            .iter()
            .map(|a| (a.id.clone(), a.revision, a.group.clone()))
            .collect()
    };
    assert_eq!(key(&a), key(&b));
    assert_eq!(a.alerts.len(), 4);
    let raised: std::collections::BTreeSet<&String> = a
        .alerts
        .iter()
        .filter(|a| a.revision == 0)
        .map(|a| &a.id)
        .collect();
    assert_eq!(raised.len(), 2, "x and y: two alerts, two ids");
    // The whole line is the same but for the wall-clock `detected_at`.
    let strip = |k: &Replay| -> Vec<Value> {
        k.alerts
            .iter()
            .map(|a| {
                let mut j = a.json.clone();
                j.as_object_mut().unwrap().remove("detected_at");
                j
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn range_condition() {
    // kuzet extension: two operators. With a lower bound it fires on the event that makes
    // the range hold.
    let rules = brute("10s", "{gte: 3, lte: 4}");
    let k = kuzet("range", &rules, &exact(&sustained()[..6]), &[]);
    assert_eq!(
        shape(&k, "brute"),
        vec![(2_000, 0, 3.0, 3), (5_000, 1, UPDATE, 6)]
    );
    // pySigma rejects it.
    let o = oracle_raw(&rules, &exact(&sustained()[..6]));
    let errors = o.out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("exactly one condition item"),
        "{errors:?}"
    );
    // Without a lower bound it is judged per episode: [0, 10 s) holding 3 is < 5 and ≠ 2,
    // holding 2 or 6 is not.
    let rules = brute("10s", "{lt: 5, neq: 2}");
    let k = kuzet("range-episode", &rules, &exact(&sustained()[..3]), &[]);
    assert_eq!(shape(&k, "brute"), vec![(10_000, 0, 3.0, 3)]);
    for n in [2, 6] {
        let k = kuzet("range-episode", &rules, &exact(&sustained()[..n]), &[]);
        assert!(k.alerts.is_empty(), "{n} events");
    }
}

/// The reference's behaviour where kuzet deliberately differs, pinned so that a change of
/// either side is noticed.
#[test]
fn reference_differences() {
    // No suppression in the reference: one alert per anchor whose window holds ≥ 3.
    let rules = brute("10s", "{gte: 3}");
    let five = exact(&(0..5).map(|i| fail(i * 1_000, "x")).collect::<Vec<_>>());
    let o = oracle(&rules, &five);
    let times: Vec<i64> = o.alerts("brute").iter().map(|a| a.time).collect();
    assert_eq!(times, vec![2_000, 3_000, 4_000]);
    let k = kuzet("diff-suppress", &rules, &five, &[]);
    assert_eq!(
        shape(&k, "brute"),
        vec![(2_000, 0, 3.0, 3), (4_000, 1, UPDATE, 5)]
    );

    // lt: the reference judges every anchor (1, 2, 3, 4 events: fires at the first two);
    // kuzet the episode (5 events: no alert).
    let rules = brute("10s", "{lt: 3}");
    let o = oracle(&rules, &five);
    let times: Vec<i64> = o.alerts("brute").iter().map(|a| a.time).collect();
    assert_eq!(times, vec![0, 1_000]);
    assert!(kuzet("diff-lt", &rules, &five, &[]).alerts.is_empty());

    // Absence: the reference looks forward [t, t + T] from each `a`; kuzet judges the
    // episode opened by the key's first event, whichever rule it matched. b@0, a@3 s:
    // the reference fires (no b after the a), kuzet does not (b in the episode).
    let rules = vec![
        action_rule("ra", "a"),
        action_rule("rb", "b"),
        correlation(
            "a_not_b",
            "type: temporal\ngroup-by: [src]\ntimespan: 10s\ncondition: ra and not rb",
        ),
    ];
    let ev = exact(&[
        act(0, "b", "x"),
        act(3_000, "a", "x"),
        act(60_000, "other", "z"),
    ]);
    let o = oracle(&rules, &ev);
    let times: Vec<i64> = o.alerts("a_not_b").iter().map(|a| a.time).collect();
    assert_eq!(times, vec![13_000]);
    assert!(kuzet("diff-absence", &rules, &ev, &[]).alerts.is_empty());
    // a@0 alone: both fire, at 10 s.
    let ev = exact(&[act(0, "a", "x"), act(60_000, "other", "z")]);
    let times: Vec<i64> = oracle(&rules, &ev)
        .alerts("a_not_b")
        .iter()
        .map(|a| a.time)
        .collect();
    assert_eq!(times, vec![10_000]);
    assert_eq!(
        shape(&kuzet("diff-absence2", &rules, &ev, &[]), "a_not_b"),
        vec![(10_000, 0, 1.0, 1)]
    );
}

/// A checkpoint restores window state of every shape: a replay with `--state-dir` over a
/// file that then grows resumes where it stopped, and the second part's events complete
/// windows the first part began (an `event_count`, `value_count`, `value_sum`, `temporal`
/// and `temporal_ordered` key, each one event short at the split), with the first part's
/// evidence. Together the two runs print what one run over the whole file prints. (No
/// episode or open alert spans the split: the end of each run judges and closes those.)
#[test]
fn checkpoint_restores_every_window_shape() {
    let mut rules = vec![
        action_rule("fail", "fail"),
        action_rule("success", "success"),
    ];
    for (name, body) in [
        (
            "ec",
            "type: event_count\nrules: [fail]\ncondition: {gte: 3}",
        ),
        (
            "vc",
            "type: value_count\nrules: [fail]\ncondition: {field: user, gte: 3}",
        ),
        (
            "vs",
            "type: value_sum\nrules: [fail]\ncondition: {field: bytes, gte: 10}",
        ),
        ("tp", "type: temporal\nrules: [fail, success]"),
        ("to", "type: temporal_ordered\nrules: [fail, success]"),
    ] {
        rules.push(correlation(
            name,
            &format!("{body}\ngroup-by: [src]\ntimespan: 1m"),
        ));
    }
    let f = |t: i64, user: &str| {
        (
            t,
            json!({"action": "fail", "src": "x", "user": user, "bytes": 4}),
        )
    };
    let all = exact(&[
        f(0, "a"),
        f(1_000, "b"),
        act(2_000, "success", "x"),
        f(3_000, "c"),
    ]);
    let part1 = Events {
        times: all.times[..2].to_vec(),
        events: all.events[..2].to_vec(),
    };

    let dir = scratch("resume");
    let (rdir, file) = write_inputs(&dir, &rules, &part1);
    let state = dir.join("state");
    let run = |file: &std::path::Path| {
        let out = replay_command(&rdir)
            .arg("--state-dir")
            .arg(&state)
            .arg(file)
            .output()
            .expect("run kuzet");
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).expect("utf-8"),
            String::from_utf8(out.stderr).expect("utf-8"),
        )
    };
    let (first, _) = run(&file);
    assert!(first.is_empty(), "{first}");
    std::fs::write(&file, all.jsonl()).expect("grow the file");
    let (second, stderr) = run(&file);
    assert!(stderr.contains("resuming"), "{stderr}");

    let whole = kuzet("resume-whole", &rules, &all, &[]);
    let strip = |lines: Vec<Alert>| -> Vec<Value> {
        let mut v: Vec<Value> = lines
            .into_iter()
            .map(|a| {
                let mut j = a.json;
                j.as_object_mut().unwrap().remove("detected_at");
                j
            })
            .collect();
        v.sort_by_key(|j| j.to_string());
        v
    };
    let resumed: Vec<Alert> = second.lines().map(parse_alert).collect();
    // Five raised; the fail at 3 s updates the open temporal alerts.
    assert_eq!(
        resumed.iter().filter(|a| a.revision == 0).count(),
        5,
        "{second}"
    );
    assert_eq!(resumed.len(), 7, "{second}");
    assert_eq!(strip(resumed.clone()), strip(whole.alerts));
    // The evidence of the first part came back with the checkpoint.
    let ec = resumed.iter().find(|a| a.rule == uuid("ec")).unwrap();
    assert_eq!(ec.events, vec![0, 1, 3]);
    let _ = std::fs::remove_dir_all(&dir);
}
