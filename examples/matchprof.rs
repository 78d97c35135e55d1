//! Profiling aid: matches events against rules in a loop and prints the rules evaluated
//! most often (the ones the prefilter lets through), for `perf` or `valgrind --tool=callgrind`.
//!
//! - `cargo run --release --example matchprof -- RULES_DIR [EVENTS] [ROUNDS]`: generated
//!   Windows process-creation events (as `benches/sigma.rs`) against a rule directory;
//! - `cargo run --release --example matchprof -- --lines FILE [ROUNDS]`: the lines of a log
//!   file (`kuzet gen` output), parsed and field-extracted as the daemon does, against the
//!   shipped rule pack.

use std::time::Instant;

use kuzet::engine::{self, EngineConfig};
use kuzet::event::{Event, EventBuf, FieldMode, Timestamp};
use kuzet::matcher::Scratch;
use kuzet::parser::{Parser, ParserConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = args.get(1).expect("RULES_DIR or --lines FILE");
    let pcfg = ParserConfig {
        mode: FieldMode::Known,
        ..Default::default()
    };
    // Extraction as the daemon does it for log lines; the Windows events are JSON with the
    // fields already named, matched as `benches/sigma.rs` does (without extraction).
    let extract = arg == "--lines";
    let (cfg, events, rounds) = if extract {
        let text = std::fs::read_to_string(args.get(2).expect("FILE")).expect("readable");
        let rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
        let lines = text.lines().map(String::from).collect();
        (EngineConfig::default(), lines, rounds)
    } else {
        let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
        let rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
        let cfg = EngineConfig {
            rule_paths: vec![arg.into()],
            ..Default::default()
        };
        (
            cfg,
            kuzet::loadgen::windows::process_creations(42, n),
            rounds,
        )
    };
    let e = engine::build(&cfg, &[&pcfg]).unwrap();
    let mut p = Parser::new(e.table.clone(), pcfg);
    let mut buf = EventBuf::new();
    let mut s = Scratch::new();
    s.per_rule = Some(Vec::new());
    let mut hits = Vec::new();
    let t = Instant::now();
    let mut m = 0;
    for _ in 0..rounds {
        for ev in &events {
            let _ = p.parse(ev.as_bytes(), Timestamp(0), &mut buf);
            if extract {
                e.extractors
                    .apply_in_zone(ev.as_bytes(), &mut buf, p.zone_mut());
            }
            hits.clear();
            e.rules
                .matches_into(&Event::new(ev.as_bytes(), &buf), &mut s, &mut hits);
            m += hits.len();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total = (events.len() * rounds) as f64;
    let per = s.per_rule.clone().unwrap();
    let mut v: Vec<(u32, usize)> = per.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    v.sort_by(|a, b| b.cmp(a));
    for (n, i) in v.iter().take(25).filter(|(n, _)| *n > 0) {
        let r = e.rules.rule(kuzet::matcher::RuleId(*i as u32));
        eprintln!(
            "{:>8} {} {} buckets={:?} filtered={}",
            n,
            r.meta.label(),
            r.meta.title,
            r.buckets,
            r.filtered
        );
    }
    eprintln!(
        "{} rules, {m} matches, {:.0} events/s (parse, extract, match), {:.2} evaluations/event",
        e.rules.len(),
        total / secs,
        s.evaluated as f64 / total
    );
}
