//! Fuzzes `LiteralSet` (the large-set prefilter search) against a naive search; see `kuzet_fuzz::check_literal_set`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_literal_set(data);
});
