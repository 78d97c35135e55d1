//! Fuzzes parsing plus the shipped field extractors; see `kuzet_fuzz::check_extract`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_extract(data);
});
