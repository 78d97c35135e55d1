//! The shipped rule pack (`rules/`): every rule loads, every behaviour test passes, every
//! alerting rule has positive and negative cases; and `kuzet test` itself fails when it should.

use std::path::Path;
use std::process::Command;

fn kuzet(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(args)
        .output()
        .expect("run kuzet");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn shipped_pack_loads_without_failures() {
    let (ok, text) = kuzet(&["check"]);
    assert!(ok, "{text}");
    assert!(text.contains(", 0 failed"), "{text}");
}

#[test]
fn shipped_pack_passes_its_behaviour_tests_with_full_coverage() {
    let (ok, text) = kuzet(&["test", "--require-coverage"]);
    assert!(ok, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    let summary = text
        .lines()
        .find(|l| l.contains(" passed, "))
        .expect("summary line");
    let passed: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 5, "{summary}");
}

/// A copy of the SSH part of the pack, with its tests edited to be wrong in each way a test
/// can be wrong.
fn broken_pack(dir: &Path, tests: &str) {
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rules/linux/sshd_bruteforce.yml"
        ),
        dir.join("sshd.yml"),
    )
    .unwrap();
    std::fs::write(dir.join("tests/t.yml"), tests).unwrap();
}

const BURST: &str =
    "  <38>Nov 25 10:00:01 web01 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2
  <38>Nov 25 10:00:02 web01 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2
  <38>Nov 25 10:00:03 web01 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2
  <38>Nov 25 10:00:04 web01 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2
  <38>Nov 25 10:00:05 web01 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2
  <38>Nov 25 10:00:06 web01 sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2
";

#[test]
fn kuzet_test_reports_each_kind_of_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        // (what is wrong, expect block, text the failure must show)
        (
            "wrong count",
            "expect:\n  - rule: kuzet_sshd_bruteforce_source\n    count: 7\n",
            "count 7 — got",
        ),
        (
            "wrong group",
            "expect:\n  - rule: kuzet_sshd_bruteforce_source\n    group: {src_ip: 198.51.100.1}\n",
            "src_ip=198.51.100.1",
        ),
        (
            "alert where none is expected",
            "rules: [kuzet_sshd_bruteforce_source]\nexpect: []\n",
            "unexpected a1248562",
        ),
        (
            "a rule that does not exist",
            "expect:\n  - rule: no_such_rule\n",
            "no alerting rule has the id, name or title \"no_such_rule\"",
        ),
    ];
    for (i, (what, expect, shows)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("p{i}"));
        broken_pack(&dir, &format!("name: {what}\ninput: |\n{BURST}{expect}"));
        let (ok, text) = kuzet(&["test", "--rules", dir.to_str().unwrap()]);
        assert!(!ok, "{what}: {text}");
        assert!(text.contains("FAIL  "), "{what}: {text}");
        assert!(text.contains(shows), "{what}: {text}");
    }
    // And the same burst with the right expectation passes.
    let dir = tmp.path().join("good");
    broken_pack(
        &dir,
        &format!(
            "name: right\ninput: |\n{BURST}expect:\n  - rule: SSH Brute Force From One Source\n    group: {{src_ip: 203.0.113.7}}\n    count: 6\n"
        ),
    );
    let (ok, text) = kuzet(&["test", "--rules", dir.to_str().unwrap()]);
    assert!(ok, "{text}");
    // Coverage: the positive case alone is not enough.
    let (ok, text) = kuzet(&[
        "test",
        "--require-coverage",
        "--rules",
        dir.to_str().unwrap(),
    ]);
    assert!(!ok, "{text}");
    assert!(text.contains("no negative case"), "{text}");
}

#[test]
fn malformed_test_documents_are_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    broken_pack(
        tmp.path(),
        &format!(
            "name: good\ninput: |\n{BURST}expect:\n  - rule: kuzet_sshd_bruteforce_source\n---\nname: bad\ninput: |\n  x\nexpect:\n  - rul: typo\n"
        ),
    );
    let (ok, text) = kuzet(&["test", "--rules", tmp.path().to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(text.contains("PASS  good"), "{text}");
    assert!(text.contains("t.yml:12"), "{text}");
    assert!(text.contains("unknown key \"rul\""), "{text}");
}
