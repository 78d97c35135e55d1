//! One log line, parsed and run through the shipped extractors N times: a fixed workload for
//! `valgrind --tool=callgrind`, whose per-function counts divided by N give the
//! instructions per line of parsing and of extraction (the ratio issue 5's bar is about).
//!
//! ```sh
//! cargo build --release --example extractprof
//! valgrind --tool=callgrind target/release/examples/extractprof \
//!     '<38>Nov 25 10:00:01 web1 sshd[1234]: Failed password for root from 10.1.2.3 port 5 ssh2' 10000
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep -E 'Parser::parse |apply_in_zone '
//! ```

use std::sync::Arc;

use kuzet::engine::shipped_extractors;
use kuzet::event::{EventBuf, FieldMode, Timestamp};
use kuzet::parser::Parser;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(line), n) = (args.next(), args.next()) else {
        eprintln!("usage: extractprof LINE [TIMES]");
        std::process::exit(2);
    };
    let n: usize = n.map_or(Ok(10_000), |n| n.parse()).unwrap_or_else(|e| {
        eprintln!("TIMES: {e}");
        std::process::exit(2);
    });
    let (x, table, cfg) =
        shipped_extractors(FieldMode::Known).expect("the shipped extractors load");
    let mut parser = Parser::new(Arc::new(table), cfg);
    let mut buf = EventBuf::new();
    let now = Timestamp::from_secs(1_795_608_000);
    let mut matched = 0;
    for _ in 0..n {
        let _ = parser.parse(line.as_bytes(), now, &mut buf);
        matched += x.apply_in_zone(line.as_bytes(), &mut buf, parser.zone_mut()) as usize;
    }
    println!("{matched} of {n} runs matched a pattern");
}
