//! Fuzzes the framer: random chunkings must equal a single-shot decode; see
//! `kuzet_fuzz::check_framer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_framer(data);
});
