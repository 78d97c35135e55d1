//! Fuzzes the Sigma rule loader (and the matcher on what loads) with arbitrary rule files; see `kuzet_fuzz::check_sigma_load`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_sigma_load(data);
});
