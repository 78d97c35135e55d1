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

/// A rule whose logsource names only `product: windows` (no service or category for the
/// shipped pipeline to turn into conditions) routes by the `product: windows` logsource the
/// shipped extractors give every Windows event, whatever the collector's shape.
#[test]
fn product_only_windows_rules_fire_on_every_collector_shape() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("tests")).unwrap();
    std::fs::write(
        tmp.path().join("r.yml"),
        "title: Any 1102\nid: 5e0c7a1e-1b2c-4d3e-8f90-a1b2c3d4e5f6\nstatus: test\nauthor: t\nlogsource:\n  product: windows\ndetection:\n  sel:\n    EventID: 1102\n  condition: sel\nlevel: high\n",
    )
    .unwrap();
    let nxlog = r##"{"EventTime":"2026-11-25 10:02:00","Hostname":"SRV-APP02.corp.example.com","Keywords":-9214364837600034816,"EventType":"AUDIT_SUCCESS","SeverityValue":2,"Severity":"INFO","EventID":1102,"SourceName":"Microsoft-Windows-Eventlog","ProviderGuid":"{FC65DDD8-D6EF-4962-83D5-6E5CFE9CE148}","Version":0,"Task":104,"OpcodeValue":0,"RecordNumber":420101,"ProcessID":1144,"ThreadID":4096,"Channel":"Security","Message":"The audit log was cleared.","SubjectUserSid":"S-1-5-21-3623811015-3361044348-30300820-1120","SubjectUserName":"t.bekov","SubjectDomainName":"CORP","SubjectLogonId":"0x9c03e21","EventReceivedTime":"2026-11-25 10:02:01","SourceModuleName":"eventlog","SourceModuleType":"im_msvistalog"}"##;
    let winlogbeat = r##"{"@timestamp":"2026-11-25T10:02:00.000Z","agent":{"ephemeral_id":"6b1f2c3e-8a4d-4f0b-9c2e-1d5a7b3c9e01","id":"3f0a9c1e-27b4-4d8e-a6f5-8c2d1e0b7a44","name":"SRV-APP02","type":"winlogbeat","version":"8.15.3"},"ecs":{"version":"8.0.0"},"event":{"action":"Log clear","code":"1102","created":"2026-11-25T10:02:00.850Z","kind":"event","outcome":"success","provider":"Microsoft-Windows-Eventlog"},"host":{"name":"srv-app02.corp.example.com"},"log":{"level":"information"},"message":"The audit log was cleared.","winlog":{"api":"wineventlog","channel":"Security","computer_name":"SRV-APP02.corp.example.com","user_data":{"SubjectDomainName":"CORP","SubjectLogonId":"0x9c03e21","SubjectUserName":"t.bekov","SubjectUserSid":"S-1-5-21-3623811015-3361044348-30300820-1120","xml_name":"LogFileCleared"},"event_id":"1102","keywords":["Audit Success"],"opcode":"Info","process":{"pid":1144,"thread":{"id":4096}},"provider_guid":"{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}","provider_name":"Microsoft-Windows-Eventlog","record_id":420101,"task":"Log clear"}}"##;
    let evtx = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog","Guid":"{fc65ddd8-d6ef-4962-83d5-6e5cfe9ce148}"}},"EventID":1102,"Version":0,"Level":0,"Task":104,"Opcode":0,"Keywords":"0x4020000000000000","TimeCreated":{"#attributes":{"SystemTime":"2026-11-25T10:02:00.000000Z"}},"EventRecordID":420101,"Correlation":null,"Execution":{"#attributes":{"ProcessID":1144,"ThreadID":4096}},"Channel":"Security","Computer":"SRV-APP02.corp.example.com","Security":null},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"http://manifests.microsoft.com/win/2004/08/windows/eventlog"},"SubjectUserSid":"S-1-5-21-3623811015-3361044348-30300820-1120","SubjectUserName":"t.bekov","SubjectDomainName":"CORP","SubjectLogonId":"0x9c03e21"}}}}"##;
    let mut case = String::from("name: three shapes\nexpect:\n");
    for _ in 0..3 {
        case.push_str("  - rule: Any 1102\n");
    }
    case.push_str("input:\n");
    for l in [nxlog, winlogbeat, evtx] {
        case.push_str(&format!("  - '{}'\n", l.replace('\'', "''")));
    }
    std::fs::write(tmp.path().join("tests/t.yml"), case).unwrap();
    let (ok, text) = kuzet(&["test", "--rules", tmp.path().to_str().unwrap()]);
    assert!(ok, "{text}");
}
