//! Every input a fuzz target ever crashed on, replayed through the same invariant checks the
//! fuzz targets assert (`fuzz/src/lib.rs`, included here so the two cannot drift apart).
//!
//! Inputs live in `tests/fuzz-regressions/TARGET-ID`, copied from `fuzz/artifacts/TARGET/`;
//! the file name's prefix picks the check. Add new crashes there; nothing else to edit.

// The Sigma generator's helpers that only the fuzz targets and `sigma_props.rs` use.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod invariants;

use kuzet::parser::InputFormat;

fn replay(target: &str, data: &[u8]) {
    match target {
        "framer" => invariants::check_framer(data),
        "sigma_match" => invariants::check_sigma_match(data),
        "sigma_load" => invariants::check_sigma_load(data),
        "literal_set" => invariants::check_literal_set(data),
        "extract" => invariants::check_extract(data),
        _ => {
            let format = match target.strip_prefix("parse_") {
                Some("rfc5424") => InputFormat::Rfc5424,
                Some("rfc3164") => InputFormat::Rfc3164,
                Some("json") => InputFormat::Json,
                Some("cef") => InputFormat::Cef,
                Some("leef") => InputFormat::Leef,
                Some("kv") => InputFormat::Kv,
                Some("auto") => InputFormat::Auto,
                _ => panic!("unknown fuzz target {target:?}"),
            };
            invariants::check_parse(format, data)
        }
    }
}

#[test]
fn fuzz_crash_inputs_hold_the_invariants() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let target = name.rsplit_once('-').map_or(name.as_str(), |(t, _)| t);
        let data = std::fs::read(&path).unwrap();
        let res = std::panic::catch_unwind(|| replay(target, &data));
        assert!(res.is_ok(), "{name}: invariant broken");
    }
}

/// The framer crash, spelled out: an oversize octet count at the very end of the stream.
#[test]
fn oversize_octet_count_at_eof_is_no_empty_frame() {
    invariants::check_framer(b"\x00\x00\x00\x00<1>a\n5 ");
}

/// The parser crashes, spelled out: a bare payload that does not parse keeps the frame.
#[test]
fn failed_bare_payloads_keep_the_frame() {
    for (format, frame) in [
        (InputFormat::Json, &b"{\"EventID\":4625,"[..]),
        (InputFormat::Cef, b"CEF:0|only|three|"),
        (InputFormat::Leef, b"LEEF:2.0|Lancope|8^dst=10.0.0.5"),
        (InputFormat::Kv, b"no pairs here"),
        (
            InputFormat::Auto,
            b"CEF:0|Security|threatmanager|1.0|100|worm",
        ),
        // Forced formats on frames without their marker used to panic (slice out of range).
        (InputFormat::Cef, b"CC"),
        (InputFormat::Leef, b"LL"),
    ] {
        invariants::check_parse(format, frame);
    }
}
