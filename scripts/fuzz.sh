#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...]: builds the libFuzzer targets and runs each for
# SECONDS (default 60), two at a time (QUANTUM_FUZZ_JOBS to change), then prints one line
# per target: executions, executions per second, coverage growth, and whether it crashed.
# Exits non-zero if any target crashed, leaked a timeout or ran out of memory.
#
# Targets (all by default): `quantum-fuzz --list` in an ordinary build, or the list in
# Sources/QuantumFuzzTargets/FuzzTarget.swift. Each reads its committed seed corpus
# Fuzz/corpus/<target>/ and grows a working corpus in .build-fuzz/corpus/<target>/ (kept
# between runs, never committed). A crashing input is kept as
# .build-fuzz/crashes/<target>/crash-<sha1>; reproduce it with
#   QUANTUM_FUZZ_TARGET=<target> .build-fuzz/debug/quantum-fuzz <file>
# and, once the parser is fixed, copy it into Fuzz/corpus/<target>/.
#
# Adding a target: a `FuzzHarness` in Sources/QuantumFuzzTargets/, one line in
# `FuzzTargets.all`, then `swift build --product quantum-fuzz &&
# .build/debug/quantum-fuzz --write-seeds Fuzz/corpus` and commit its seeds.
#
# The fuzz build lives in its own build directory (.build-fuzz), compiled with
# -sanitize=fuzzer,address and -DFUZZING, so the ordinary build is untouched. It links
# with lld: SwiftPM defines `main` as quantum_fuzz_main with --defsym, which gold also
# resolves against libFuzzer's own main (and crashes reporting it); lld does not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x /opt/swift/usr/bin/swift ]] && case ":$PATH:" in *:/opt/swift/usr/bin:*) ;; *) PATH=/opt/swift/usr/bin:$PATH ;; esac

seconds=60
if [[ ${1:-} =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
jobs=${QUANTUM_FUZZ_JOBS:-2}
out=.build-fuzz

echo "==== fuzz build (.build-fuzz, -sanitize=fuzzer,address)"
start=$SECONDS
mkdir -p "$out/logs"
if ! swift build --build-path "$out" --product quantum-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld \
    >"$out/logs/build.log" 2>&1; then
    grep -E "error:" "$out/logs/build.log" | head -n 20 >&2
    echo "==== fuzz build FAILED (log: $out/logs/build.log)" >&2
    exit 1
fi
binary=$out/debug/quantum-fuzz
echo "==== fuzz build took $((SECONDS - start))s"

all=$(sed -n 's/^ *FuzzTarget(name: "\([a-z0-9-]*\)".*/\1/p' Sources/QuantumFuzzTargets/FuzzTarget.swift)
targets=("$@")
((${#targets[@]} > 0)) || mapfile -t targets <<<"$all"
for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$all" || { echo "no fuzz target '$target'; targets: $(echo $all)" >&2; exit 2; }
done

# run_one TARGET: fuzzes TARGET for $seconds; its log is $out/logs/TARGET.log.
run_one() {
    local target=$1
    mkdir -p "$out/corpus/$target" "$out/crashes/$target" "$out/logs" "Fuzz/corpus/$target"
    # Leak detection is off: the Swift runtime's metadata caches read as leaks. Swift's own
    # backtracer is off too: under ASan it reports itself instead of the trap it describes.
    QUANTUM_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no "$binary" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -artifact_prefix="$out/crashes/$target/" "$out/corpus/$target" "Fuzz/corpus/$target" \
        >"$out/logs/$target.log" 2>&1
}
export -f run_one
export seconds out binary

echo "==== fuzzing ${#targets[@]} target(s) for ${seconds}s each, $jobs at a time"
start=$SECONDS
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {} || echo $? >"$out/logs/{}.failed"' || true

# stat NAME LOG: the last value libFuzzer printed for stat::NAME.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

failed=0
printf '%-16s %12s %9s %15s %6s  %s\n' target runs exec/s "cov (start→end)" new result
for target in "${targets[@]}"; do
    log=$out/logs/$target.log
    initial=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    final=$(grep -oE '#[0-9]+.*cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$' || echo "$initial")
    result="no crash"
    if [[ -f $out/logs/$target.failed ]] || grep -qE '^==[0-9]+==ERROR|deadly signal|Fatal error|Precondition failed|ALARM: working|out-of-memory' "$log"; then
        result="CRASH: $(grep -m1 -oE 'ERROR: AddressSanitizer: [a-z-]+|Fatal error: .*|Precondition failed: .*|deadly signal|ALARM: working on the last Unit for [0-9]+ seconds|out-of-memory' "$log" || echo "exit $(cat "$out/logs/$target.failed" 2>/dev/null)")"
        result+=" (input kept: $(ls -t "$out/crashes/$target/" 2>/dev/null | head -n 1 | sed "s|^|$out/crashes/$target/|"))"
        failed=$((failed + 1))
    fi
    printf '%-16s %12s %9s %15s %6s  %s\n' "$target" "$(stat number_of_executed_units "$log")" "$(stat average_exec_per_sec "$log")" \
        "$initial→$final" "$(stat new_units_added "$log")" "$result"
    rm -f "$out/logs/$target.failed"
done
echo "==== fuzzing took $((SECONDS - start))s; logs in $out/logs/"
((failed == 0)) || { echo "==== $failed target(s) crashed" >&2; exit 1; }
