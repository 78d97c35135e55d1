//! Sigma matching throughput: the full SigmaHQ rule set (../shared/sigma/rules) and a
//! 100-rule subset, on ~600-byte Windows process-creation events that mostly match nothing,
//! against the reference interpreter measured in the same run; and rule compilation time.
//!
//! Every measured loop asserts the number of matches it expects to see, so a broken matcher
//! cannot look fast. Run: `cargo bench --bench sigma`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kuzet::engine::{self, EngineConfig};
use kuzet::event::{Event, EventBuf, FieldMode, Timestamp};
use kuzet::matcher::{RuleId, Scratch, reference};
use kuzet::parser::{Parser, ParserConfig};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/sigma/rules")
}

fn engine(paths: Vec<PathBuf>) -> engine::Engine {
    let cfg = EngineConfig {
        rule_paths: paths,
        ..EngineConfig::default()
    };
    engine::build(&cfg, &[&ParserConfig::default()]).expect("pipelines load")
}

fn bench(c: &mut Criterion) {
    if !corpus().exists() {
        eprintln!("skipping: {} not found", corpus().display());
        return;
    }
    let events = kuzet::loadgen::windows::process_creations(42, 20_000);
    let bytes: usize = events.iter().map(|e| e.len()).sum();

    let mut g = c.benchmark_group("sigma_compile");
    g.sample_size(10);
    g.bench_function("full_sigmahq", |b| {
        b.iter(|| engine(vec![corpus()]).rules.len())
    });
    g.finish();

    let full = engine(vec![corpus()]);
    assert!(full.rules.len() >= 3100, "loaded {}", full.rules.len());
    // 100 rules: the process_creation rules whose file names sort first.
    let dir = corpus().join("windows/process_creation");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.truncate(100);
    let small = engine(files);
    assert_eq!(small.rules.len(), 100);

    let pcfg = ParserConfig {
        mode: FieldMode::Known,
        ..ParserConfig::default()
    };
    let run = |e: &engine::Engine| {
        let mut p = Parser::new(e.table.clone(), pcfg.clone());
        let mut buf = EventBuf::new();
        let mut s = Scratch::new();
        let mut hits: Vec<RuleId> = Vec::new();
        let mut n = 0usize;
        for ev in &events {
            let _ = p.parse(ev.as_bytes(), Timestamp(0), &mut buf);
            hits.clear();
            e.rules
                .matches_into(&Event::new(ev.as_bytes(), &buf), &mut s, &mut hits);
            n += hits.len();
        }
        n
    };
    let expect_full = run(&full);
    let expect_small = run(&small);

    let mut g = c.benchmark_group("sigma_match");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("parse_only", |b| {
        let mut p = Parser::new(full.table.clone(), pcfg.clone());
        let mut buf = EventBuf::new();
        b.iter(|| {
            for ev in &events {
                let _ = p.parse(ev.as_bytes(), Timestamp(0), &mut buf);
            }
        })
    });
    g.bench_function("full_sigmahq", |b| {
        b.iter(|| assert_eq!(run(&full), expect_full))
    });
    g.bench_function("100_rules", |b| {
        b.iter(|| assert_eq!(run(&small), expect_small))
    });
    // Baseline: the reference interpreter on the first 1,000 events with the full set
    // (reported per event, so it compares directly).
    let few = &events[..1000];
    g.throughput(Throughput::Elements(few.len() as u64));
    let table = full.table.clone();
    let prepared = Arc::new(full.prepared.clone());
    let reference_hits = |rules: &[kuzet::sigma::Rule]| {
        let mut p = Parser::new(table.clone(), pcfg.clone());
        let mut buf = EventBuf::new();
        let mut n = 0;
        for ev in few {
            let _ = p.parse(ev.as_bytes(), Timestamp(0), &mut buf);
            let e = Event::new(ev.as_bytes(), &buf);
            n += rules
                .iter()
                .filter(|r| reference::matches(r, &e, &table, None))
                .count();
        }
        n
    };
    g.bench_function("reference_full_sigmahq", |b| {
        // Inside: criterion only calls this when the benchmark is selected, and the
        // reference takes seconds (profiling the others should not sample it).
        let expect_ref = reference_hits(&prepared);
        b.iter(|| assert_eq!(reference_hits(&prepared), expect_ref))
    });
    g.finish();
    eprintln!(
        "sigma bench: {} events, {:.0} bytes avg, full set {} matches, 100 rules {} matches",
        events.len(),
        bytes as f64 / events.len() as f64,
        expect_full,
        expect_small
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
