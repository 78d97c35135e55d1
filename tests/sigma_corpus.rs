//! `kuzet check` on the whole SigmaHQ snapshot in `../shared/sigma` (issue 3): at least
//! 99.5 % of the detection rules under `rules/` must load, and every failure must be reported
//! as `path[:line]: id: reason`. The other folders (emerging threats, threat hunting,
//! placeholders, compliance) are loaded too, to show what fails there and why.

use std::path::PathBuf;
use std::process::Command;

fn corpus(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/sigma")
        .join(sub)
}

/// Runs `kuzet check --rules PATH`, returns (exit ok, stdout lines).
fn check(path: &PathBuf) -> (bool, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["check", "--rules"])
        .arg(path)
        .output()
        .expect("run kuzet");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    (
        out.status.success(),
        text.lines().map(str::to_string).collect(),
    )
}

fn summary(lines: &[String]) -> (usize, usize) {
    let last = lines.last().expect("summary line");
    let words: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(
        words.get(1..3),
        Some(&["rules", "loaded,"][..]),
        "summary line: {last}"
    );
    (words[0].parse().unwrap(), words[3].parse().unwrap())
}

#[test]
fn sigmahq_rules_load() {
    let path = corpus("rules");
    if !path.exists() {
        eprintln!("skipped: {} not present", path.display());
        return;
    }
    let (ok, lines) = check(&path);
    let (loaded, failed) = summary(&lines);
    let total = loaded + failed;
    assert!(total >= 3000, "only {total} rules seen");
    assert!(
        loaded as f64 >= 0.995 * total as f64,
        "{loaded} of {total} loaded; failures:\n{}",
        lines[..lines.len() - 1].join("\n")
    );
    // Each failure line names its file and rule.
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.contains(".yml") && l.matches(": ").count() >= 2,
            "malformed failure line: {l}"
        );
    }
    assert_eq!(ok, failed == 0);
}

#[test]
fn other_sigmahq_folders_report_every_failure_with_a_reason() {
    for sub in [
        "rules-emerging-threats",
        "rules-threat-hunting",
        "rules-placeholder",
        "rules-compliance",
    ] {
        let path = corpus(sub);
        if !path.exists() {
            continue;
        }
        let (_, lines) = check(&path);
        let (loaded, failed) = summary(&lines);
        eprintln!("{sub}: {loaded} loaded, {failed} failed");
        for l in &lines[..lines.len() - 1] {
            eprintln!("  {l}");
            assert!(l.matches(": ").count() >= 2, "malformed failure line: {l}");
        }
        assert_eq!(lines.len() - 1, failed, "one line per failed rule");
    }
}
