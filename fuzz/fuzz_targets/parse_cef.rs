//! Fuzzes the parser with the input format forced to `Cef`; see `kuzet_fuzz::check_parse`.
#![no_main]

use kuzet::parser::InputFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_parse(InputFormat::Cef, data);
});
