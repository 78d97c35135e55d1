//! The framing tester: every stream is decoded single-shot, split in two at every byte
//! boundary, and fed in chunks of 1, 2, 3 and 7 bytes through the smallest buffer the framer
//! promises to make progress with ([`Framer::min_buffer`]). Every way must give the same
//! frames and the same counters, and those frames must equal a list written by hand (or, in
//! the property test, the list the stream was rendered from).
//!
//! What this proves: framing is decided per frame (RFC 6587 §3.4) and never depends on where
//! reads happen to end; oversize frames of both kinds, under both policies, never
//! desynchronise what follows; the unconsumed tail stays within the documented bound.

use kuzet::reader::framing::MAX_LEN_DIGITS;
use kuzet::reader::{FrameStats, Framer, Framing, FramingConfig, Oversize};
use proptest::prelude::*;

fn cfg(framing: Framing, max_frame: usize, oversize: Oversize) -> FramingConfig {
    FramingConfig {
        framing,
        max_frame,
        oversize,
    }
}

/// Decodes `input` in one call.
fn single_shot(c: FramingConfig, input: &[u8]) -> (Vec<Vec<u8>>, FrameStats) {
    let mut f = Framer::new(c);
    let mut out = Vec::new();
    let mut stats = FrameStats::default();
    let used = f.decode(input, true, &mut out, &mut stats);
    assert_eq!(used, input.len(), "eof decode must consume everything");
    let frames = out.iter().map(|&(s, e)| input[s..e].to_vec()).collect();
    (frames, stats)
}

/// Decodes `input` the way a reader does: a buffer of `cap` bytes, filled `chunk` bytes at a
/// time, the unconsumed tail kept at its front. Checks the tail bound on every call.
fn chunked(c: FramingConfig, input: &[u8], chunk: usize, cap: usize) -> (Vec<Vec<u8>>, FrameStats) {
    let mut f = Framer::new(c);
    let mut buf: Vec<u8> = Vec::with_capacity(cap);
    let mut out = Vec::new();
    let mut frames = Vec::new();
    let mut stats = FrameStats::default();
    let mut pos = 0;
    let tail_bound = c.max_frame + MAX_LEN_DIGITS + 1;
    while pos < input.len() {
        let room = cap - buf.len();
        assert!(room > 0, "buffer of {cap} bytes full of undecodable tail");
        let n = chunk.min(room).min(input.len() - pos);
        buf.extend_from_slice(&input[pos..pos + n]);
        pos += n;
        out.clear();
        let used = f.decode(&buf, false, &mut out, &mut stats);
        assert!(used <= buf.len());
        frames.extend(out.iter().map(|&(s, e)| {
            assert!(
                s < e && e <= used,
                "frame ({s},{e}) outside consumed {used}"
            );
            buf[s..e].to_vec()
        }));
        buf.drain(..used);
        assert!(
            buf.len() <= tail_bound,
            "tail of {} bytes exceeds the bound {tail_bound}",
            buf.len()
        );
    }
    out.clear();
    let used = f.decode(&buf, true, &mut out, &mut stats);
    assert_eq!(used, buf.len());
    frames.extend(out.iter().map(|&(s, e)| buf[s..e].to_vec()));
    (frames, stats)
}

/// Decodes `input` split in two at `at`, with an unbounded buffer.
fn two_chunks(c: FramingConfig, input: &[u8], at: usize) -> (Vec<Vec<u8>>, FrameStats) {
    let mut f = Framer::new(c);
    let mut out = Vec::new();
    let mut stats = FrameStats::default();
    let first = &input[..at];
    let used = f.decode(first, false, &mut out, &mut stats);
    let mut frames: Vec<Vec<u8>> = out.iter().map(|&(s, e)| first[s..e].to_vec()).collect();
    let mut buf = first[used..].to_vec();
    buf.extend_from_slice(&input[at..]);
    out.clear();
    let used = f.decode(&buf, true, &mut out, &mut stats);
    assert_eq!(used, buf.len());
    frames.extend(out.iter().map(|&(s, e)| buf[s..e].to_vec()));
    (frames, stats)
}

/// Checks every decoding of `input` against `expected`.
fn check(c: FramingConfig, input: &[u8], expected: &[&[u8]]) {
    let expected: Vec<Vec<u8>> = expected.iter().map(|f| f.to_vec()).collect();
    let (single, stats) = single_shot(c, input);
    assert_eq!(
        show(&single),
        show(&expected),
        "single-shot decode of {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(stats.frames as usize, expected.len());
    for at in 0..=input.len() {
        let (frames, s) = two_chunks(c, input, at);
        assert_eq!(show(&frames), show(&expected), "split at {at}");
        assert_eq!(s, stats, "counters differ when split at {at}");
    }
    let min = Framer::new(c).min_buffer();
    for chunk in [1, 2, 3, 7] {
        let (frames, s) = chunked(c, input, chunk, min);
        assert_eq!(show(&frames), show(&expected), "chunks of {chunk}");
        assert_eq!(s, stats, "counters differ in chunks of {chunk}");
    }
}

fn show(frames: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

const AUTO: Framing = Framing::Auto;

#[test]
fn newline_terminators_lf_crlf_nul() {
    let c = cfg(AUTO, 64, Oversize::Truncate);
    check(
        c,
        b"<13>a one\n<13>b two\r\n<13>c three\0<13>d four",
        &[b"<13>a one", b"<13>b two", b"<13>c three", b"<13>d four"],
    );
}

#[test]
fn octet_counted_and_newline_mixed_with_strays() {
    let c = cfg(AUTO, 64, Oversize::Truncate);
    let input = b"11 <13>1 hello  \0\0 \r\n<14>plain line\n9 <15>oct\n\n \r\n5 abcde2024-01-01T00:00:00Z host x\n";
    check(
        c,
        input,
        &[
            b"<13>1 hello",
            b"<14>plain line",
            b"<15>oct",
            b"abcde",
            b"2024-01-01T00:00:00Z host x",
        ],
    );
}

#[test]
fn syslog_ng_octet_frames_counting_their_newline() {
    // syslog-ng's syslog() driver counts a trailing LF inside the frame.
    let m1 = b"<13>1 2024-01-01T00:00:00Z h app - - [meta sequenceId=\"1\"] first\n";
    let m2 = b"<13>1 2024-01-01T00:00:01Z h app - - [meta sequenceId=\"2\"] second\n";
    let mut input = Vec::new();
    for m in [&m1[..], &m2[..]] {
        input.extend_from_slice(format!("{} ", m.len()).as_bytes());
        input.extend_from_slice(m);
    }
    let c = cfg(AUTO, 256, Oversize::Truncate);
    check(c, &input, &[&m1[..m1.len() - 1], &m2[..m2.len() - 1]]);
}

#[test]
fn digit_leading_newline_lines_stay_newline_framed() {
    let c = cfg(AUTO, 64, Oversize::Truncate);
    check(
        c,
        b"2024-01-01T12:00:00+00:00 host sshd[1]: a\n1700000000 epoch line\n123456789012 too many digits\n",
        &[
            b"2024-01-01T12:00:00+00:00 host sshd[1]: a",
            b"1700000000 epoch line",
            b"123456789012 too many digits",
        ],
    );
}

#[test]
fn oversize_newline_truncate_and_drop() {
    let long = [b'x'; 40];
    let mut input = b"<1>short\n".to_vec();
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\r\n<2>after\n");
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\0<3>after nul\n");
    input.extend_from_slice(&long); // unterminated at EOF
    let trunc = cfg(AUTO, 16, Oversize::Truncate);
    check(
        trunc,
        &input,
        &[
            b"<1>short",
            &long[..16],
            b"<2>after",
            &long[..16],
            b"<3>after nul",
            &long[..16],
        ],
    );
    let (_, s) = single_shot(trunc, &input);
    assert_eq!(s.oversize_truncated, 3);
    let drop = cfg(AUTO, 16, Oversize::Drop);
    check(drop, &input, &[b"<1>short", b"<2>after", b"<3>after nul"]);
    let (_, s) = single_shot(drop, &input);
    assert_eq!(s.oversize_dropped, 3);
}

#[test]
fn newline_frame_of_exactly_max_with_crlf_is_not_oversize() {
    let c = cfg(AUTO, 8, Oversize::Drop);
    check(
        c,
        b"<1>45678\r\n<1>4567890\n<2>x\n",
        &[b"<1>45678", b"<2>x"],
    );
}

#[test]
fn oversize_octet_truncate_and_drop() {
    let body = b"<13>0123456789abcdefghijklmnopqrstuvwxyz\n";
    let mut input = b"4 <1>a".to_vec();
    input.extend_from_slice(format!("{} ", body.len()).as_bytes());
    input.extend_from_slice(body);
    input.extend_from_slice(b"7 <2>next<3>nl after\n");
    // An oversize octet frame whose count contains digits and spaces that look like frames.
    let tricky = b"<9>12 34\n5 abc\n67 8\n";
    input.extend_from_slice(format!("{} ", tricky.len()).as_bytes());
    input.extend_from_slice(tricky);
    input.extend_from_slice(b"3 end");
    let trunc = cfg(AUTO, 12, Oversize::Truncate);
    check(
        trunc,
        &input,
        &[
            b"<1>a",
            &body[..12],
            b"<2>next",
            b"<3>nl after",
            &tricky[..12],
            b"end",
        ],
    );
    let drop = cfg(AUTO, 12, Oversize::Drop);
    check(drop, &input, &[b"<1>a", b"<2>next", b"<3>nl after", b"end"]);
    let (_, s) = single_shot(drop, &input);
    assert_eq!(s.oversize_dropped, 2);
}

#[test]
fn octet_frame_cut_by_eof_is_kept_and_counted() {
    let c = cfg(AUTO, 64, Oversize::Truncate);
    check(c, b"3 abc20 only ten b", &[b"abc", b"only ten b"]);
    let (_, s) = single_shot(c, b"3 abc20 only ten b");
    assert_eq!(s.truncated_at_eof, 1);
}

#[test]
fn forced_newline_framing_ignores_lengths() {
    let c = cfg(Framing::NewLine, 64, Oversize::Truncate);
    check(c, b"5 abcde\n12 x\r\n", &[b"5 abcde", b"12 x"]);
}

#[test]
fn forced_octet_counting_falls_back_and_counts_each_error_once() {
    let c = cfg(Framing::OctetCounted, 64, Oversize::Truncate);
    let input = b"5 abcde<13>no length here\n3 xyz";
    check(c, input, &[b"abcde", b"<13>no length here", b"xyz"]);
    let (_, s) = single_shot(c, input);
    assert_eq!(s.framing_errors, 1);
}

#[test]
fn only_separators_make_no_frames() {
    let c = cfg(AUTO, 8, Oversize::Truncate);
    check(c, b" \r\n\0\0 \n\t\r", &[]);
    check(c, b"", &[]);
}

// ---- property test ------------------------------------------------------------------------

/// One frame as the test generates it.
#[derive(Clone, Debug)]
enum Gen {
    /// Newline-framed; `term` is 0 = LF, 1 = CRLF, 2 = NUL.
    Line { text: Vec<u8>, term: u8 },
    /// Octet-counted; `lf_inside` adds a syslog-ng style LF inside the count.
    Octet { msg: Vec<u8>, lf_inside: bool },
}

fn line_text() -> impl Strategy<Value = Vec<u8>> {
    // A newline frame must not start with a separator or with `DIGITS SP` (that is an
    // octet count), and must not contain LF or NUL or end in CR.
    let head = prop_oneof![
        Just(b"<13>".to_vec()),
        Just(b"2024-01-01T00:00:00Z ".to_vec()),
        Just(b"Jan  1 00:00:00 ".to_vec()),
        Just(b"{\"a\":".to_vec()),
        Just(b"12:".to_vec()),
    ];
    let body = proptest::collection::vec(
        any::<u8>().prop_filter("no terminator", |b| *b != b'\n' && *b != 0),
        0..40,
    );
    (head, body).prop_map(|(mut h, b)| {
        h.extend(b);
        while h.last() == Some(&b'\r') {
            h.pop();
        }
        h
    })
}

fn octet_msg() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..60).prop_filter_map("trailing trim", |mut m| {
        while matches!(m.last(), Some(b'\n' | b'\r' | 0)) {
            m.pop();
        }
        (!m.is_empty()).then_some(m)
    })
}

fn gen_frame() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (line_text(), 0u8..3).prop_map(|(text, term)| Gen::Line { text, term }),
        (octet_msg(), any::<bool>()).prop_map(|(msg, lf_inside)| Gen::Octet { msg, lf_inside }),
    ]
}

fn separator() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        4 => Just(&b""[..]),
        1 => Just(&b" "[..]),
        1 => Just(&b"\0\0"[..]),
        1 => Just(&b"\r\n"[..]),
        1 => Just(&b" \n "[..]),
    ]
}

/// Renders frames into a stream and the list the framer must return.
fn render(
    frames: &[(Gen, &'static [u8])],
    c: FramingConfig,
    unterminated_last: bool,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let max = c.max_frame;
    for (i, (g, sep)) in frames.iter().enumerate() {
        stream.extend_from_slice(sep);
        let last = i + 1 == frames.len();
        match g {
            Gen::Line { text, term } => {
                stream.extend_from_slice(text);
                if !(last && unterminated_last) {
                    stream.extend_from_slice(match term {
                        0 => &b"\n"[..],
                        1 => &b"\r\n"[..],
                        _ => &b"\0"[..],
                    });
                }
                if text.len() <= max {
                    expected.push(text.clone());
                } else if c.oversize == Oversize::Truncate {
                    expected.push(text[..max].to_vec());
                }
            }
            Gen::Octet { msg, lf_inside } => {
                let len = msg.len() + usize::from(*lf_inside);
                stream.extend_from_slice(format!("{len} ").as_bytes());
                stream.extend_from_slice(msg);
                if *lf_inside {
                    stream.push(b'\n');
                }
                if len <= max {
                    expected.push(msg.clone());
                } else if c.oversize == Oversize::Truncate {
                    expected.push(msg[..max.min(msg.len())].to_vec());
                }
            }
        }
    }
    (stream, expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Random frames, random framings, random chunkings: the frames come back exactly, and
    /// frames over `max_frame` (truncated or dropped) leave the following frames intact.
    #[test]
    fn random_streams_decode_back(
        frames in proptest::collection::vec((gen_frame(), separator()), 0..12),
        max in 8usize..80,
        drop in any::<bool>(),
        unterminated_last in any::<bool>(),
        chunk in 1usize..40,
        split_seed in any::<usize>(),
    ) {
        let c = cfg(AUTO, max, if drop { Oversize::Drop } else { Oversize::Truncate });
        let (stream, expected) = render(&frames, c, unterminated_last);
        let (single, stats) = single_shot(c, &stream);
        prop_assert_eq!(show(&single), show(&expected));
        prop_assert!(single.iter().all(|f| !f.is_empty() && f.len() <= max));
        let min = Framer::new(c).min_buffer();
        let (ch, s) = chunked(c, &stream, chunk, min);
        prop_assert_eq!(show(&ch), show(&expected));
        prop_assert_eq!(s, stats);
        let at = if stream.is_empty() { 0 } else { split_seed % (stream.len() + 1) };
        let (two, s) = two_chunks(c, &stream, at);
        prop_assert_eq!(show(&two), show(&expected));
        prop_assert_eq!(s, stats);
    }
}
