//! Field extraction cost: the shipped extractors (`rules/parsers/`) on sshd, netfilter and
//! non-matching syslog lines, against parsing the same lines alone, measured in the same run
//! (`parse` vs `parse+extract` per corpus; read the ratio). The quality bar: extraction adds
//! at most 30% to parsing on lines it extracts from, nothing measurable on other lines.
//!
//! Every benchmark asserts that the extractor did (or did not) produce `src_ip`, so a broken
//! extractor cannot look fast.
//!
//! ```sh
//! cargo bench --bench extract -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kuzet::engine::shipped_extractors;
use kuzet::event::{EventBuf, FieldMode, Timestamp};
use kuzet::loadgen::Rng;
use kuzet::parser::Parser;

const LINES: usize = 20_000;

fn ip(r: &mut Rng) -> String {
    format!("10.{}.{}.{}", r.below(256), r.below(256), 1 + r.below(254))
}

fn corpus(kind: &str) -> Vec<String> {
    let mut r = Rng::new(42);
    (0..LINES)
        .map(|i| match kind {
            "sshd" => format!(
                "<38>Nov 25 10:00:{:02} web{} sshd[{}]: Failed password for invalid user admin{} from {} port {} ssh2",
                i % 60,
                i % 50,
                1000 + i,
                i % 97,
                ip(&mut r),
                1024 + r.below(60000)
            ),
            "netfilter" => format!(
                "<4>Nov 25 10:00:{:02} fw{} kernel: [{}.{:06}] IPTABLES-DROP: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={} DST=192.0.2.{} LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={} DF PROTO=TCP SPT={} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
                i % 60,
                i % 5,
                r.below(100000),
                r.below(1000000),
                ip(&mut r),
                1 + r.below(254),
                r.below(65535),
                1024 + r.below(60000)
            ),
            _ => format!(
                "<30>Nov 25 10:00:{:02} app{} systemd[1]: Started Session {} of User u{}.",
                i % 60,
                i % 50,
                r.below(100000),
                r.below(1000)
            ),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (x, table, cfg) =
        shipped_extractors(FieldMode::Known).expect("the shipped extractors load");
    let src_ip = table.get(b"src_ip").expect("interned by the extractors");
    let table = Arc::new(table);
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(LINES as u64));
    for (kind, extracts) in [("sshd", true), ("netfilter", true), ("other", false)] {
        let lines = corpus(kind);
        let mut parser = Parser::new(table.clone(), cfg.clone());
        let mut buf = EventBuf::new();
        let now = Timestamp::from_secs(1_795_608_000);
        g.bench_function(format!("{kind}/parse"), |b| {
            b.iter(|| {
                for l in &lines {
                    let _ = parser.parse(black_box(l.as_bytes()), now, &mut buf);
                }
            })
        });
        // Checked once, outside the timing: the extractor does what the corpus says.
        for l in lines.iter().take(100) {
            let _ = parser.parse(l.as_bytes(), now, &mut buf);
            x.apply_in_zone(l.as_bytes(), &mut buf, parser.zone_mut());
            assert_eq!(buf.get_repr(src_ip).is_some(), extracts, "{kind}: {l}");
        }
        g.bench_function(format!("{kind}/parse+extract"), |b| {
            b.iter(|| {
                for l in &lines {
                    let _ = parser.parse(black_box(l.as_bytes()), now, &mut buf);
                    x.apply_in_zone(l.as_bytes(), &mut buf, parser.zone_mut());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
