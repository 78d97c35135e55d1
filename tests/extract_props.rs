//! Property tests of field extraction, run in the normal suite: the fuzz target `extract`'s
//! invariants (`fuzz/src/lib.rs`, `check_extract`) on generated lines shaped like the sources
//! the shipped extractors select (sshd, kernel packet logs, web access logs, sudo, ASA), with
//! random tails, so the patterns' edge cases are reached, not just their selection.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unused_imports)]
mod invariants;

use proptest::prelude::*;

fn line() -> impl Strategy<Value = String> {
    let head = prop_oneof![
        Just("<38>Nov 25 10:00:01 h sshd[1]: "),
        Just("<4>Nov 25 10:00:01 fw kernel: [ 12.5] DROP: "),
        Just("<4>Nov 25 10:00:01 fw kernel: "),
        Just("<190>Nov 25 10:00:01 w nginx: "),
        Just(""),
        Just("<85>Nov 25 10:00:01 h sudo: "),
        Just("<166>Nov 25 2026 10:00:01 asa : %ASA-6-113015: "),
    ];
    let word = prop_oneof![
        Just("Failed".to_string()),
        Just("password".to_string()),
        Just("for".to_string()),
        Just("invalid user".to_string()),
        Just("from".to_string()),
        Just("port".to_string()),
        Just("IN=".to_string()),
        Just("OUT=".to_string()),
        Just("SRC=10.0.0.1".to_string()),
        Just("DST=".to_string()),
        Just("PROTO=TCP".to_string()),
        Just("[".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("-".to_string()),
        Just("[25/Nov/2026:10:00:01 +0000]".to_string()),
        Just("\"GET /a?b HTTP/1.1\"".to_string()),
        Just("203.0.113.7".to_string()),
        Just("::ffff:1.2.3.4".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ];
    (head, prop::collection::vec(word, 0..14)).prop_map(|(h, ws)| format!("{h}{}", ws.join(" ")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Parse + extract never panics, renders valid JSON, and does not depend on the
    /// buffer's earlier contents.
    #[test]
    fn extraction_holds_its_invariants(l in line()) {
        invariants::check_extract(l.as_bytes());
    }
}
