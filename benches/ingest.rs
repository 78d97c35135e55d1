//! Ingest throughput: each parser over a buffer of generated lines, the framer over the same
//! kind of buffer, and the floor: a `memchr` newline count (`wc -l`) over the RFC 3164
//! buffer, measured in the same run so figures can be read as ratios against it.
//!
//! Inputs are generated deterministically here (no files). Every benchmark asserts the
//! number of frames or events it expects, and that the events carry the field a rule would
//! read, so a parser that breaks cannot look fast.
//!
//! Two groups run the same work: `bytes` reports bytes/s, `lines` reports elements/s.
//!
//! ```sh
//! cargo bench --bench ingest -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kuzet::event::{Event, EventBuf, FieldId, FieldMode, FieldTable, Timestamp};
use kuzet::parser::{InputFormat, Parser, ParserConfig};
use kuzet::reader::{FrameStats, Framer, Framing, FramingConfig};

/// Lines per corpus: large enough to leave the L2 cache, small enough for quick iterations.
const LINES: usize = 20_000;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.below(256),
            self.below(256),
            1 + self.below(254)
        )
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const USERS: [&str; 6] = ["root", "admin", "oracle", "postgres", "ubuntu", "test"];

/// A corpus: newline-joined lines and the ranges of each line.
struct Corpus {
    data: Vec<u8>,
    lines: Vec<(usize, usize)>,
}

impl Corpus {
    fn build(mut line: impl FnMut(usize, &mut Rng) -> String) -> Corpus {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut data = Vec::new();
        let mut lines = Vec::with_capacity(LINES);
        for i in 0..LINES {
            let l = line(i, &mut rng);
            assert!(!l.contains('\n'));
            let s = data.len();
            data.extend_from_slice(l.as_bytes());
            lines.push((s, data.len()));
            data.push(b'\n');
        }
        Corpus { data, lines }
    }

    fn mean_len(&self) -> usize {
        self.data.len() / self.lines.len()
    }

    /// The same lines octet-counted (RFC 6587 §3.4.1).
    fn octet_counted(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 4 * LINES);
        for &(s, e) in &self.lines {
            out.extend_from_slice(format!("{} ", e - s).as_bytes());
            out.extend_from_slice(&self.data[s..e]);
        }
        out
    }
}

fn rfc3164() -> Corpus {
    Corpus::build(|i, r| {
        let user = USERS[r.below(6) as usize];
        let msg = match r.below(10) {
            0..=6 => {
                let invalid = if r.below(2) == 0 { "invalid user " } else { "" };
                format!(
                    "Failed password for {invalid}{user} from {} port {} ssh2",
                    r.ip(),
                    1024 + r.below(60000)
                )
            }
            _ => format!(
                "Accepted publickey for {user} from {} port {} ssh2: ED25519 SHA256:{:016x}{:016x}{:011x}",
                r.ip(),
                1024 + r.below(60000),
                r.next(),
                r.next(),
                r.next() >> 20
            ),
        };
        format!(
            "<38>{} {:2} {:02}:{:02}:{:02} bastion-{:02}.eu-central-1.example.net sshd[{}]: {msg}",
            MONTHS[i % 12],
            1 + r.below(28),
            r.below(24),
            r.below(60),
            r.below(60),
            r.below(40),
            1000 + r.below(60000),
        )
    })
}

fn rfc5424() -> Corpus {
    Corpus::build(|i, r| {
        format!(
            "<165>1 2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z host{:02}.example.com sshd {} ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"{}\"][meta sequenceId=\"{i}\"] Failed password for {} from {} port {} ssh2",
            1 + r.below(12),
            1 + r.below(28),
            r.below(24),
            r.below(60),
            r.below(60),
            r.below(1000),
            r.below(40),
            1000 + r.below(60000),
            1000 + r.below(100),
            USERS[r.below(6) as usize],
            r.ip(),
            1024 + r.below(60000),
        )
    })
}

fn windows_json() -> Corpus {
    Corpus::build(|i, r| {
        format!(
            concat!(
                "{{\"EventTime\":\"2024-03-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"Hostname\":\"WS{:04}.corp.example.com\",",
                "\"EventType\":\"AUDIT_FAILURE\",\"SeverityValue\":4,",
                "\"Severity\":\"ERROR\",\"EventID\":4625,\"SourceName\":\"Microsoft-Windows-Security-Auditing\",",
                "\"Version\":0,\"Task\":12544,",
                "\"RecordNumber\":{},\"ProcessID\":{},\"ThreadID\":{},\"Channel\":\"Security\",",
                "\"Message\":\"An account failed to log on.\",\"SubjectUserSid\":\"S-1-0-0\",",
                "\"TargetUserName\":\"{}\",\"TargetDomainName\":\"CORP\",\"Status\":\"0xc000006d\",",
                "\"SubStatus\":\"0xc000006a\",\"LogonType\":\"3\",\"IpAddress\":\"{}\",\"IpPort\":\"{}\"}}"
            ),
            1 + r.below(28),
            r.below(24),
            r.below(60),
            r.below(60),
            r.below(1000),
            r.below(5000),
            1_000_000 + i,
            500 + r.below(1000),
            1000 + r.below(9000),
            USERS[r.below(6) as usize],
            r.ip(),
            1024 + r.below(60000),
        )
    })
}

fn cef() -> Corpus {
    Corpus::build(|_, r| {
        format!(
            "CEF:0|Security|threatmanager|1.0|{}|worm successfully stopped|{}|src={} dst={} spt={} dpt=443 suser={} act=blocked msg=Detected a threat. No action needed cs1Label=policy cs1=default",
            100 + r.below(50),
            r.below(11),
            r.ip(),
            r.ip(),
            1024 + r.below(60000),
            USERS[r.below(6) as usize],
        )
    })
}

fn leef() -> Corpus {
    Corpus::build(|_, r| {
        format!(
            "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src={}^dst={}^spt={}^dpt=443^sev={}^usrName={}^proto=tcp^cat=Suspicious",
            r.ip(),
            r.ip(),
            1024 + r.below(60000),
            r.below(10),
            USERS[r.below(6) as usize],
        )
    })
}

fn kv() -> Corpus {
    Corpus::build(|_, r| {
        format!(
            "date=2024-03-{:02} time={:02}:{:02}:{:02} devname=\"FG100E-{}\" devid=FG100E3G16000000 logid=0000000013 type=traffic subtype=forward level=notice srcip={} srcport={} dstip={} dstport=443 proto=6 action=deny policyid={} user=\"{}\"",
            1 + r.below(28),
            r.below(24),
            r.below(60),
            r.below(60),
            r.below(10),
            r.ip(),
            1024 + r.below(60000),
            r.ip(),
            r.below(100),
            USERS[r.below(6) as usize],
        )
    })
}

/// One parser benchmark: the corpus, how to parse it, and the field every event must have.
struct ParseCase {
    name: &'static str,
    corpus: Corpus,
    parser: Parser,
    must_have: FieldId,
}

fn case(
    name: &'static str,
    corpus: Corpus,
    format: InputFormat,
    mode: FieldMode,
    fields: &[&str],
    must_have: &str,
) -> ParseCase {
    let cfg = ParserConfig {
        format,
        mode,
        ..ParserConfig::default()
    };
    let mut table = FieldTable::new();
    cfg.register(&mut table);
    for f in fields {
        table.intern(f);
    }
    let must_have = table.intern(must_have);
    ParseCase {
        name,
        corpus,
        parser: Parser::new(Arc::new(table), cfg),
        must_have,
    }
}

/// The ~10 fields a Windows logon rule set reads.
const WINDOWS_RULE_FIELDS: &[&str] = &[
    "EventID",
    "Channel",
    "Hostname",
    "TargetUserName",
    "TargetDomainName",
    "LogonType",
    "IpAddress",
    "Status",
    "SubStatus",
    "ProcessID",
];

fn cases() -> Vec<ParseCase> {
    use FieldMode::{All, Known};
    vec![
        case(
            "rfc3164",
            rfc3164(),
            InputFormat::Rfc3164,
            Known,
            &[],
            "appname",
        ),
        case(
            "rfc5424_sd",
            rfc5424(),
            InputFormat::Rfc5424,
            Known,
            &["meta.sequenceId"],
            "exampleSDID@32473.eventID",
        ),
        case(
            "json_known",
            windows_json(),
            InputFormat::Json,
            Known,
            WINDOWS_RULE_FIELDS,
            "IpAddress",
        ),
        case(
            "json_all",
            windows_json(),
            InputFormat::Json,
            All,
            WINDOWS_RULE_FIELDS,
            "IpAddress",
        ),
        case(
            "cef",
            cef(),
            InputFormat::Cef,
            Known,
            &["src", "suser"],
            "dst",
        ),
        case(
            "leef",
            leef(),
            InputFormat::Leef,
            Known,
            &["src", "usrName"],
            "dst",
        ),
        case(
            "kv",
            kv(),
            InputFormat::Kv,
            Known,
            &["srcip", "action", "user"],
            "dstip",
        ),
    ]
}

/// Parses every line; asserts all parsed cleanly and carry `must_have`. Returns the count.
fn parse_all(c: &mut ParseCase, buf: &mut EventBuf) -> usize {
    let received = Timestamp::from_secs(1_710_000_000);
    let mut ok = 0;
    for &(s, e) in &c.corpus.lines {
        let f = &c.corpus.data[s..e];
        if c.parser.parse(f, received, buf).is_ok() && Event::new(f, buf).has(c.must_have) {
            ok += 1;
        }
    }
    assert_eq!(
        ok, LINES,
        "{}: not every line parsed with its field",
        c.name
    );
    ok
}

fn frame_all(cfg: FramingConfig, data: &[u8], ranges: &mut Vec<(usize, usize)>) -> usize {
    ranges.clear();
    let mut stats = FrameStats::default();
    let used = Framer::new(cfg).decode(data, true, ranges, &mut stats);
    assert_eq!(used, data.len());
    assert_eq!(
        ranges.len(),
        LINES,
        "framer found the wrong number of frames"
    );
    ranges.len()
}

fn newline_count(data: &[u8]) -> usize {
    let n = memchr::memchr_iter(b'\n', data).count();
    assert_eq!(n, LINES);
    n
}

fn benches(c: &mut Criterion) {
    let mut cases = cases();
    for c in &cases {
        eprintln!(
            "corpus {}: {} lines, mean {} bytes",
            c.name,
            LINES,
            c.corpus.mean_len()
        );
    }
    let lines = rfc3164();
    let octets = lines.octet_counted();
    let newline = FramingConfig {
        framing: Framing::Auto,
        ..FramingConfig::default()
    };
    let mut ranges = Vec::with_capacity(LINES);
    let mut buf = EventBuf::new();

    for (group, per_line) in [("bytes", false), ("lines", true)] {
        let mut g = c.benchmark_group(group);
        let tp = |bytes: usize| {
            if per_line {
                Throughput::Elements(LINES as u64)
            } else {
                Throughput::Bytes(bytes as u64)
            }
        };
        g.throughput(tp(lines.data.len()));
        g.bench_function("baseline_memchr_newlines", |b| {
            b.iter(|| newline_count(black_box(&lines.data)))
        });
        g.bench_function("frame_newline", |b| {
            b.iter(|| frame_all(newline, black_box(&lines.data), &mut ranges))
        });
        g.throughput(tp(octets.len()));
        g.bench_function("frame_octet_counted", |b| {
            b.iter(|| frame_all(newline, black_box(&octets), &mut ranges))
        });
        for case in cases.iter_mut() {
            g.throughput(tp(case.corpus.data.len()));
            g.bench_function(format!("parse_{}", case.name), |b| {
                b.iter(|| parse_all(case, &mut buf))
            });
        }
        g.finish();
    }
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
