//! Fuzzes the parser with the input format forced to `Rfc5424`; see `kuzet_fuzz::check_parse`.
#![no_main]

use kuzet::parser::InputFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_parse(InputFormat::Rfc5424, data);
});
