//! Fuzzes the Sigma matcher against the reference interpreter on generated rules and events; see `kuzet_fuzz::sigma`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kuzet_fuzz::check_sigma_match(data);
});
