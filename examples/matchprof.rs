//! Profiling aid: matches generated Windows events against rules in a loop.
//! `cargo run --release --example matchprof -- RULES_DIR [EVENTS] [ROUNDS]`

use std::time::Instant;

use kuzet::engine::{self, EngineConfig};
use kuzet::event::{Event, EventBuf, FieldMode, Timestamp};
use kuzet::matcher::Scratch;
use kuzet::parser::{Parser, ParserConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rules = args.get(1).expect("rules dir");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let e = engine::build(
        &EngineConfig {
            rule_paths: vec![rules.into()],
            ..Default::default()
        },
        &[&ParserConfig::default()],
    )
    .unwrap();
    let events = kuzet::loadgen::windows::process_creations(42, n);
    let mut p = Parser::new(
        e.table.clone(),
        ParserConfig {
            mode: FieldMode::Known,
            ..Default::default()
        },
    );
    let mut buf = EventBuf::new();
    let mut s = Scratch::new();
    s.per_rule = Some(Vec::new());
    let mut hits = Vec::new();
    let t = Instant::now();
    let mut m = 0;
    for _ in 0..rounds {
        for ev in &events {
            let _ = p.parse(ev.as_bytes(), Timestamp(0), &mut buf);
            hits.clear();
            e.rules
                .matches_into(&Event::new(ev.as_bytes(), &buf), &mut s, &mut hits);
            m += hits.len();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total = (n * rounds) as f64;
    let per = s.per_rule.clone().unwrap();
    let mut v: Vec<(u32, usize)> = per.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    v.sort_by(|a, b| b.cmp(a));
    for (n, i) in v.iter().take(25) {
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
        "{} rules, {m} matches, {:.0} events/s, {:.2} evaluations/event",
        e.rules.len(),
        total / secs,
        s.evaluated as f64 / total
    );
}
