#!/usr/bin/env bash
# The fault harness (issue 9), beyond what `cargo test` runs by default:
#   1. the fault tests of `cargo test` on their own (storage faults need root
#      for tmpfs/loop mounts and say SKIPPED without it; bad input; storms;
#      security; the short soak), with their output shown;
#   2. the long crash-durability soak in release mode: >= 20 SIGKILLs under
#      a mixed floor load (SOAK_KILLS, default 25; SOAK_SEED to replay);
#   3. both fuzz targets (tests/fuzz) for FUZZ_SECONDS each (default 60)
#      from the checked-in seed corpus, printing the executions.
# Everything runs on 127.0.0.1, is bounded in count and time, and stops by
# itself. Needs cargo-fuzz (installed here if missing); the fuzz build
# needs nightly features, unlocked on stable with RUSTC_BOOTSTRAP=1.
# All three parts always run; the exit status is non-zero if any failed.
# `.ci/run` should call it after `cargo test`: bash .ci/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
SOAK_KILLS="${SOAK_KILLS:-20}"
export SOAK_KILLS
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
step() { printf '\n=== %s ===\n' "$*"; }
started=$(date +%s)
summary=()
failed=()
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "${SPA_FAULT_TESTS_RAN:-0}" = 1 ]; then
    # .ci/run's `cargo test` step already ran these suites (debug build);
    # running them again here would only cost minutes.
    summary+=("fault tests (faults, malformed, storm, security, soak): run in the cargo test step")
else
step "fault tests (storage, bad input, storms, security, the short soak)"
t0=$(date +%s)
set +e
cargo test --locked --no-fail-fast --test faults --test malformed --test storm --test security --test soak \
    -- --nocapture 2>&1 | tee "$work/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("fault tests")
set -e
summary+=("fault tests: $(awk '/^test result/ {p+=$4; f+=$6} END {print p+0 " passed, " f+0 " failed"}' \
    "$work/tests.log") in $(( $(date +%s) - t0 )) s")
tried=$(grep -oE 'malformed inputs tried: [0-9]+' "$work/tests.log" | tail -n 1 || true)
if [ -n "$tried" ]; then summary+=("$tried"); fi
if grep -q SKIPPED "$work/tests.log"; then
    summary+=("storage faults on real mounts: SKIPPED (see above)")
fi
fi

step "crash durability soak: ${SOAK_KILLS} SIGKILLs (release)"
t0=$(date +%s)
set +e
cargo test --locked --release --test soak -- --ignored --nocapture 2>&1 | tee "$work/soak.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("soak")
set -e
summary+=("$(grep -E '^SOAK RESULT' "$work/soak.log" | tail -n 1 || echo 'SOAK: no result (failed)') in $(( $(date +%s) - t0 )) s")

step "fuzzing: ${FUZZ_SECONDS} s per target"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: the code under test is safe Rust, and without ASan the
# targets run several times faster; FUZZ_SANITIZER=address to change that.
sanitizer="${FUZZ_SANITIZER:-none}"
cargo fuzz build --fuzz-dir tests/fuzz -s "$sanitizer" --target-dir "$target_dir/fuzz"
for target in packet command; do
    mkdir -p "$work/$target"
    # New inputs go to the scratch corpus; the checked-in one is read only.
    set +e
    cargo fuzz run --fuzz-dir tests/fuzz -s "$sanitizer" --target-dir "$target_dir/fuzz" \
        "$target" "$work/$target" "tests/fuzz/corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=1024 \
        >"$work/$target.log" 2>&1
    status=$?
    set -e
    grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED)|Uses: ' "$work/$target.log" | tail -n 40 || true
    if [ "$status" -ne 0 ]; then
        failed+=("fuzz $target (crash input in tests/fuzz/artifacts/$target/)")
    fi
    runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$work/$target.log")
    rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$work/$target.log")
    summary+=("fuzz $target: ${runs:-?} executions in ${FUZZ_SECONDS} s (${rate:-?}/s), $([ "$status" -eq 0 ] && echo "no crash" || echo CRASHED); corpus $(ls "tests/fuzz/corpus/$target" | wc -l) seeds -> $(( $(ls "$work/$target" | wc -l) + $(ls "tests/fuzz/corpus/$target" | wc -l) ))")
done

step "summary ($(( $(date +%s) - started )) s)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
