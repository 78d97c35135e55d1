//! `kuzet test`: run rule behaviour tests (see [`crate::ruletest`]) and print a pass/fail
//! table. Without `--rules`, the shipped pack and its tests; with `--rules DIR`, the rules of
//! that pack and the tests in its `tests/` directory (plus any `--tests` files). Exit code 0
//! only when every case passes (and, with `--require-coverage`, every alerting rule has a
//! positive and a negative case).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::engine::{Pack, embedded_tests};
use crate::ruletest::{self, Engines};

#[derive(Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    pub sources: super::RuleArgs,
    /// Test files or directories, besides the `tests/` of the rule packs.
    #[arg(long = "tests")]
    pub tests: Vec<PathBuf>,
    /// Run only the cases whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Fail when an alerting rule lacks a positive or a negative case.
    #[arg(long)]
    pub require_coverage: bool,
    /// Print the alerts of passing cases too.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(a: TestArgs) -> Result<ExitCode, CliError> {
    let mut sources = if a.sources.rules.is_empty() {
        embedded_tests()
    } else {
        Pack::read(&a.sources.rules).tests
    };
    let extra = Pack::read(&a.tests);
    sources.extend(extra.tests);
    // Files named with --tests directly are test files whatever their directory.
    sources.extend(extra.rules);
    let mut out = io::stdout().lock();
    let mut cases = Vec::new();
    let mut load_errors = extra.errors.len();
    for e in &extra.errors {
        let _ = writeln!(out, "ERROR {e}");
    }
    for s in &sources {
        let (c, errs) = ruletest::parse_cases(s);
        cases.extend(c);
        for e in &errs {
            let _ = writeln!(out, "ERROR {e}");
        }
        load_errors += errs.len();
    }
    let mut engines = Engines::new(a.sources.engine_config());
    let (eng, rules, _) = engines.get(&None).map_err(CliError::Usage)?;
    for e in &eng.errors {
        let _ = writeln!(out, "ERROR {e}");
    }
    load_errors += eng.errors.len();
    let (mut passed, mut failed) = (0usize, 0usize);
    for c in &cases {
        if a.filter
            .as_ref()
            .is_some_and(|f| !c.name.contains(f.as_str()))
        {
            continue;
        }
        let o = ruletest::run_case(c, &mut engines);
        let (_, case_rules, _) = engines.get(&c.logsource).map_err(CliError::Usage)?;
        if o.passed() {
            passed += 1;
            let _ = writeln!(out, "PASS  {}  ({})", c.name, c.location());
        } else {
            failed += 1;
            let _ = writeln!(out, "FAIL  {}  ({})", c.name, c.location());
            for p in &o.problems {
                let _ = writeln!(out, "        {p}");
            }
        }
        if a.verbose || !o.passed() {
            for g in &o.got {
                let _ = writeln!(
                    out,
                    "        raised: {}",
                    ruletest::describe(&case_rules, g)
                );
            }
        }
    }
    let cov = ruletest::coverage(&rules, &cases);
    let uncovered: Vec<_> = cov
        .iter()
        .filter(|(_, (_, pos, neg))| *pos == 0 || *neg == 0)
        .collect();
    if a.verbose || a.require_coverage {
        let _ = writeln!(out, "\n{:>4} {:>4}  rule", "pos", "neg");
        for (label, (meta, pos, neg)) in &cov {
            let _ = writeln!(out, "{pos:>4} {neg:>4}  {label}  {}", meta.title);
        }
    }
    let _ = writeln!(
        out,
        "\n{passed} passed, {failed} failed, {load_errors} load errors; {} of {} alerting rules have positive and negative cases",
        cov.len() - uncovered.len(),
        cov.len()
    );
    if a.require_coverage {
        for (label, (meta, pos, neg)) in &uncovered {
            let missing = match (*pos, *neg) {
                (0, 0) => "no case",
                (0, _) => "no positive case",
                _ => "no negative case",
            };
            let _ = writeln!(out, "UNCOVERED  {label}  {}: {missing}", meta.title);
        }
    }
    let ok = failed == 0
        && load_errors == 0
        && !cases.is_empty()
        && (!a.require_coverage || uncovered.is_empty());

    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
