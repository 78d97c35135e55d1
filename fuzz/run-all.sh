#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60), one after the other, and stops at the
# first crash. Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable
# toolchain use the sanitizer flags cargo-fuzz passes.
#   fuzz/run-all.sh [SECONDS] [extra libFuzzer args...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
for t in $(cargo fuzz list); do
    echo "== $t ($secs s)"
    cargo fuzz run "$t" -- -max_total_time="$secs" "$@"
done
