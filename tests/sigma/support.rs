//! The harness `sigma_oracle.rs` and `sigma_cases.rs` share: build a kuzet engine from rule
//! YAML text the way `kuzet replay` does (`engine::build`, rules and pipelines from files),
//! parse JSON event lines the way the engine does (`FieldMode::Known`), and report which
//! events each rule matches, once through the compiled matcher (`RuleSet::matches_into`, with
//! routing and prefilter) and once through the reference interpreter
//! (`matcher::reference::matches`); and call the pySigma oracle (`tests/oracle/`).
//!
//! Rules are keyed by their label (id, else name, else title), as the oracle keys them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use kuzet::engine::{self, Engine, EngineConfig};
use kuzet::event::{Event, EventBuf, FieldMode, Timestamp};
use kuzet::matcher::{CompileOptions, RuleId, Scratch, reference};
use kuzet::parser::{InputFormat, Parser, ParserConfig};
use kuzet::sigma::Logsource;

/// What to build an engine from.
pub struct Setup<'a> {
    /// Rule and filter documents (each string may hold several, separated by `---`).
    pub rules: &'a [String],
    /// Pipeline YAML files, applied after the shipped ones (if those are on).
    pub pipelines: &'a [String],
    /// Apply `rules/pipelines/` (`EngineConfig::default()` does).
    pub default_pipelines: bool,
    /// The logsource class every event gets (`None`: class 0, no logsource).
    pub class: Option<Logsource>,
}

/// An engine built from a [`Setup`], ready to run events.
pub struct Kuzet {
    pub engine: Engine,
    class: Option<Logsource>,
}

/// Which events (indices) each rule matched.
pub type Matches = BTreeMap<String, Vec<usize>>;

/// A fresh directory under the test target's scratch space.
fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sigma-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

impl Kuzet {
    /// Writes the rules and pipelines to files and builds the engine from them.
    pub fn build(name: &str, setup: &Setup<'_>) -> Kuzet {
        let dir = scratch_dir(name);
        let rules = dir.join("rules.yml");
        std::fs::write(&rules, setup.rules.join("\n---\n")).expect("write rules");
        let mut pipeline_paths = Vec::new();
        for (i, p) in setup.pipelines.iter().enumerate() {
            let path = dir.join(format!("pipeline-{i}.yml"));
            std::fs::write(&path, p).expect("write pipeline");
            pipeline_paths.push(path);
        }
        let cfg = EngineConfig {
            rule_paths: vec![rules],
            pipeline_paths,
            no_default_pipelines: !setup.default_pipelines,
            compile: CompileOptions {
                classes: setup.class.iter().map(|c| vec![c.clone()]).collect(),
                ..CompileOptions::default()
            },
            ..EngineConfig::default()
        };
        let engine = engine::build(&cfg, &[&parser_config(setup.class.is_some())])
            .unwrap_or_else(|e| panic!("{name}: pipelines do not load: {e:?}"));
        let _ = std::fs::remove_dir_all(&dir);
        Kuzet {
            engine,
            class: setup.class.clone(),
        }
    }

    /// Load and compile errors, one line each.
    pub fn errors(&self) -> Vec<String> {
        self.engine.errors.iter().map(|e| e.to_string()).collect()
    }

    /// Runs every event (a JSON line) through the compiled matcher and the reference
    /// interpreter: (compiled, reference) matches per rule label. Every rule has an entry.
    pub fn run(&self, events: &[String]) -> (Matches, Matches) {
        let e = &self.engine;
        let mut parser = Parser::new(e.table.clone(), parser_config(self.class.is_some()));
        let mut buf = EventBuf::new();
        let mut scratch = Scratch::new();
        let mut hits: Vec<RuleId> = Vec::new();
        let labels: Vec<String> = e.rules.rules().iter().map(|r| r.meta.label()).collect();
        let mut compiled: Matches = labels.iter().map(|l| (l.clone(), Vec::new())).collect();
        let mut slow: Matches = e
            .prepared
            .iter()
            .map(|r| (r.meta.label(), Vec::new()))
            .collect();
        for (i, line) in events.iter().enumerate() {
            if let Err(err) = parser.parse(line.as_bytes(), Timestamp(0), &mut buf) {
                panic!("event {i} does not parse ({err}): {line}");
            }
            let ev = Event::new(line.as_bytes(), &buf);
            hits.clear();
            e.rules.matches_into(&ev, &mut scratch, &mut hits);
            for h in &hits {
                compiled.get_mut(&labels[h.0 as usize]).unwrap().push(i);
            }
            for r in &e.prepared {
                if reference::matches(r, &ev, &e.table, self.class.as_ref()) {
                    slow.get_mut(&r.meta.label()).unwrap().push(i);
                }
            }
        }
        (compiled, slow)
    }
}

/// How the engine reads events: JSON lines, only the fields rules use, in one class.
fn parser_config(classed: bool) -> ParserConfig {
    ParserConfig {
        format: InputFormat::Json,
        mode: FieldMode::Known,
        class: u16::from(classed),
        ..ParserConfig::default()
    }
}

/// The oracle's python, from `tests/oracle/setup.sh` (creates the venv the first time).
pub fn oracle_python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("tests/oracle/setup.sh"))
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/oracle/setup.sh");
        assert!(
            out.status.success(),
            "tests/oracle/setup.sh failed ({}): the oracle needs python >= 3.11 and PyPI",
            out.status
        );
        let path = String::from_utf8(out.stdout).expect("utf-8 path");
        PathBuf::from(path.trim())
    })
}

/// Runs the oracle on one input document; panics on a fatal answer.
pub fn oracle(input: &serde_json::Value) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(oracle_python())
        .arg(root.join("tests/oracle/oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the oracle");
    let text = serde_json::to_vec(input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread: the oracle may start answering before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(&text));
    let out = child.wait_with_output().expect("oracle output");
    writer.join().unwrap().expect("write oracle input");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("oracle answered no JSON ({e}), status {}", out.status));
    if let Some(f) = doc.get("fatal") {
        panic!("oracle: fatal: {f}");
    }
    doc
}

/// The oracle's matches per rule key, and its errors as text.
pub fn oracle_matches(doc: &serde_json::Value) -> (Matches, Vec<String>) {
    let mut m = Matches::new();
    for r in doc["results"].as_array().unwrap() {
        let key = r["rule"].as_str().unwrap().to_string();
        let hits = r["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        m.insert(key, hits);
    }
    let errors = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    (m, errors)
}
