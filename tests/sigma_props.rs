//! Property tests of the Sigma matcher: the compiled `RuleSet` against the reference
//! interpreter on generated rules and events (the generator and the invariants are the fuzz
//! crate's, `fuzz/src/sigma.rs`, included here so the two cannot drift apart).
//!
//! | test | property |
//! |---|---|
//! | `matcher_agrees_with_reference` | every event's match set equals the reference's; compile failures are errors, alike alone and in a set |
//! | `loading_twice_gives_the_same_matches` | determinism: two loads of the same files match alike |
//! | `other_rules_change_nothing` | a rule's matches do not depend on which unrelated rules are loaded with it |
//! | `routed_values_match_as_numbers_and_strings` | rules routed by `EventID`/`Channel` agree with the reference whether the event carries numbers or strings |
//! | `regex_flags_reach_the_prefilter`, `numbers_route_by_every_spelling_of_their_value`, `star_steps_over_bytes_not_characters`, `long_numeric_text_compares`, `base64offset_of_an_empty_value_loads` | the bugs the generator found, one case each |
//!
//! Case counts are modest so `cargo test --release` stays quick; the fuzz targets
//! (`fuzz/run-all.sh`) run the same checks for longer.

#[allow(dead_code)]
#[path = "../fuzz/src/sigma.rs"]
mod sigma_gen;

use std::collections::BTreeSet;

use kuzet::event::{Event, EventBuf, FieldMode};
use kuzet::matcher::Scratch;
use proptest::prelude::*;
use sigma_gen::{Gen, GenConfig, build, check_events, gen_case, parse_event, sources};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..1500)
}

/// The titles of the rules `b` matches for each event (titles name rules across builds).
fn titles(b: &sigma_gen::Built, events: &[(String, u16)]) -> Vec<BTreeSet<String>> {
    let mut buf = EventBuf::new();
    let mut s = Scratch::new();
    events
        .iter()
        .map(|(frame, class)| {
            parse_event(b, FieldMode::All, frame.as_bytes(), *class, &mut buf);
            let ev = Event::new(frame.as_bytes(), &buf);
            sigma_gen::fast_matches(b, &ev, &mut s)
                .into_iter()
                .map(|i| b.rules[i].meta.title.clone())
                .collect()
        })
        .collect()
}

proptest! {
    // PROPTEST_CASES overrides the count (e.g. for a longer run before a release).
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn matcher_agrees_with_reference(data in bytes()) {
        sigma_gen::check_sigma_match(&data);
    }

    #[test]
    fn loading_twice_gives_the_same_matches(data in bytes()) {
        let mut g = Gen::new(&data);
        let case = gen_case(&mut g, &GenConfig::default());
        let a = build(sources(&case.files), case.pipelines);
        let b = build(sources(&case.files), case.pipelines);
        prop_assert_eq!(a.errors.len(), b.errors.len());
        prop_assert_eq!(titles(&a, &case.events), titles(&b, &case.events));
    }

    #[test]
    fn other_rules_change_nothing(data in bytes(), other in bytes(), first in any::<bool>()) {
        // No filters or global documents: those change other rules by design.
        let plain = |prefix: &str, pipelines| GenConfig {
            prefix: prefix.into(),
            cross_rule: false,
            broken: true,
            pipelines,
        };
        let mine = gen_case(&mut Gen::new(&data), &plain("r", None));
        let theirs = gen_case(&mut Gen::new(&other), &plain("u", Some(mine.pipelines)));
        let alone = build(sources(&mine.files), mine.pipelines);
        let files: Vec<String> = if first {
            theirs.files.iter().chain(&mine.files).cloned().collect()
        } else {
            mine.files.iter().chain(&theirs.files).cloned().collect()
        };
        let together = build(sources(&files), mine.pipelines);
        let events: Vec<(String, u16)> =
            mine.events.iter().chain(&theirs.events).cloned().collect();
        let ours = |v: Vec<BTreeSet<String>>| -> Vec<BTreeSet<String>> {
            v.into_iter()
                .map(|s| s.into_iter().filter(|t| t.starts_with("r-")).collect())
                .collect()
        };
        prop_assert_eq!(ours(titles(&alone, &events)), ours(titles(&together, &events)));
        check_events(&together, &events);
    }

    #[test]
    fn routed_values_match_as_numbers_and_strings(
        rule_eid in proptest::sample::select(RULE_EVENT_IDS),
        rule_channel in proptest::option::of(proptest::sample::select(RULE_CHANNELS)),
        list in any::<bool>(),
        extra in bytes(),
        events in proptest::collection::vec(
            (
                proptest::option::of(proptest::sample::select(EVENT_IDS)),
                proptest::option::of(proptest::sample::select(EVENT_CHANNELS)),
            ),
            1..6,
        ),
    ) {
        // One rule routed by its EventID (a value or a list), maybe also by Channel, next to
        // generated rules (which change the routes' popularity).
        let eid = if list { format!("[{rule_eid}, 4625]") } else { rule_eid.to_string() };
        let mut yaml = format!("title: routed\ndetection:\n  sel:\n    EventID: {eid}\n");
        if let Some(c) = rule_channel {
            yaml.push_str(&format!("    Channel: {c}\n"));
        }
        yaml.push_str("  condition: sel\n");
        let mut files = vec![yaml];
        files.extend(gen_case(&mut Gen::new(&extra), &GenConfig {
            prefix: "u".into(),
            cross_rule: false,
            broken: false,
            pipelines: Some(0),
        }).files);
        let b = build(sources(&files), 0);
        prop_assert_eq!(&b.rules[0].meta.title, "routed");
        let evs: Vec<(String, u16)> = events
            .iter()
            .map(|(e, c)| {
                let mut fields = Vec::new();
                if let Some(e) = e {
                    fields.push(format!("\"EventID\":{e}"));
                }
                if let Some(c) = c {
                    fields.push(format!("\"Channel\":{c}"));
                }
                (format!("{{{}}}", fields.join(",")), 0)
            })
            .collect();
        check_events(&b, &evs);
    }
}

/// `EventID` values of the routed rule, as YAML.
const RULE_EVENT_IDS: &[&str] = &[
    "4624",
    "'4624'",
    "4624.0",
    "'04624'",
    "1e3",
    "1000",
    "0",
    "-0",
    "-0.0",
    "1.5",
    "'x'",
    "9007199254740993",
    "-1",
];
/// `Channel` values of the routed rule, as YAML.
const RULE_CHANNELS: &[&str] = &["Security", "security", "'4624'", "1", "true"];
/// `EventID` values of events, as JSON.
const EVENT_IDS: &[&str] = &[
    "4624",
    "\"4624\"",
    "4624.0",
    "\"4624.0\"",
    "\"04624\"",
    "1000",
    "\"1000\"",
    "1e3",
    "1000.0",
    "0",
    "-0",
    "-0.0",
    "0.0",
    "\"-0\"",
    "1.5",
    "\"1.50\"",
    "[4624, 1]",
    "[\"x\", 4624.0]",
    "\" 4624\"",
    "\"x\"",
    "9007199254740993",
    "9007199254740992",
    "-1",
    "null",
    "true",
];
/// `Channel` values of events, as JSON.
const EVENT_CHANNELS: &[&str] = &[
    "\"Security\"",
    "\"SECURITY\"",
    "\"security\"",
    "4624",
    "1",
    "true",
    "\"1\"",
    "[\"Security\", \"x\"]",
];

/// What the generator produces: a few cases, counts of rules, errors (by reason) and
/// matches. `SIGMA_SEEDS=DIR` also writes rule files there (a seed corpus for `sigma_load`).
#[test]
#[ignore]
fn generator_stats() {
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let (mut rules, mut errors, mut events, mut matched, mut fast_hits) = (0, 0, 0, 0, 0);
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 0..2000 {
        let mut data = vec![0u8; 1500];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut g = Gen::new(&data);
        let case = gen_case(&mut g, &GenConfig::default());
        if i < 3 {
            for f in &case.files {
                println!("=====\n{f}");
            }
            for e in &case.events {
                println!("EV {e:?}");
            }
        }
        if let Ok(dir) = std::env::var("SIGMA_SEEDS")
            && i < 300
        {
            // Seeds for the loader target: generated files, joined at a NUL as it splits.
            std::fs::write(format!("{dir}/gen-{i}.yml"), case.files.join("\0")).unwrap();
        }
        let b = build(sources(&case.files), case.pipelines);
        rules += b.rules.len();
        errors += b.errors.len();
        for e in &b.errors {
            let r: String = e.reason.chars().take(40).collect();
            *reasons.entry(r).or_default() += 1;
        }
        let mut buf = EventBuf::new();
        for (frame, class) in &case.events {
            parse_event(&b, FieldMode::All, frame.as_bytes(), *class, &mut buf);
            let ev = Event::new(frame.as_bytes(), &buf);
            events += 1;
            let m = sigma_gen::reference_matches(&b, &ev);
            matched += m.len();
            fast_hits += usize::from(!m.is_empty());
        }
    }
    println!(
        "rules {rules} errors {errors} events {events} matches {matched} events-with-match {fast_hits}"
    );
    for (r, n) in reasons {
        println!("{n:6} {r}");
    }
}

/// Loads one rule file, which must load and compile, and checks `events` (class 0) against
/// the reference.
fn agree(yaml: &str, events: &[&str]) {
    let b = build(sources(&[yaml.to_string()]), 0);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert!(!b.rules.is_empty());
    let evs: Vec<(String, u16)> = events.iter().map(|e| (e.to_string(), 0)).collect();
    check_events(&b, &evs);
}

fn rule(item: &str) -> String {
    format!("title: t\ndetection:\n  sel:\n    {item}\n  condition: sel\n")
}

/// The bugs the generator found, spelled out (each failed before its fix).
#[test]
fn regex_flags_reach_the_prefilter() {
    // `re|i` literals were extracted without the flag: ÖÖÖX was filtered out.
    agree(
        &rule("a|re|i: öööx"),
        &[r#"{"a":"ÖÖÖX"}"#, r#"{"a":"öööx"}"#],
    );
    agree(
        &rule("a|re|i|s: 'ſtraße.x'"),
        &[r#"{"a":"STRASSE\nX"}"#, r#"{"a":"Straße\nx"}"#],
    );
}

#[test]
fn numbers_route_by_every_spelling_of_their_value() {
    // Routing compared `4624.0` with the event number's text `4624`.
    agree(
        &rule("EventID: 4624.0"),
        &[r#"{"EventID":4624}"#, r#"{"EventID":"4624.0"}"#],
    );
    agree(
        &rule("EventID: 1e3"),
        &[r#"{"EventID":1000}"#, r#"{"EventID":1000.0}"#],
    );
    agree(
        &rule("EventID: 0"),
        &[r#"{"EventID":-0.0}"#, r#"{"EventID":"-0"}"#],
    );
}

#[test]
fn star_steps_over_bytes_not_characters() {
    // `wide` makes literals that start inside a UTF-8 character (Ҁ = D2 80, UTF-16LE 80 04).
    agree(&rule("a|wide: '*Ҁ?'"), &[r#"{"a":"Ҁ\u0004x"}"#]);
}

#[test]
fn long_numeric_text_compares() {
    agree(
        &rule("a|lt: 10"),
        &[&format!(r#"{{"a":"{}5"}}"#, "0".repeat(70))],
    );
}

#[test]
fn base64offset_of_an_empty_value_loads() {
    // Panicked the loader (a slice ending before it starts).
    agree(
        &rule("a|base64offset|contains: ''"),
        &[r#"{"a":"x"}"#, r#"{"b":"x"}"#],
    );
}
