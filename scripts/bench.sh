#!/usr/bin/env bash
# quantum against the other userspace tunnels, side by side, with this checkout's daemon.
#
#   sudo scripts/bench.sh [TUNNEL...]      default: quantum veth wireguard-go nebula tinc
#
# Builds the release daemon (`swift build -c release --static-swift-stdlib --product quantum`), runs the shared
# harness (../shared/bench/run.sh beside this repository; its README says what it measures)
# with that binary, and writes the harness's table plus the issue's ratios (quantum against
# the best of wireguard-go, nebula and tinc, and against the bare veth) to
# bench-results/<UTC time>.md, whose path it prints last. Takes about 4 minutes; run it on a
# quiet machine (figures taken while something else compiles are noise).
#
# env: BENCH_HARNESS (default ../shared/bench beside the repository), BENCH_OUT (result file),
#      SWIFT (default swift on PATH, else /opt/swift/usr/bin/swift). Harness knobs (PB_*) pass through.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${BENCH_HARNESS:-$ROOT/../shared/bench}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
RESULT=${BENCH_OUT:-$ROOT/bench-results/$STAMP.md}
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root (the harness creates network namespaces)"
[[ -x $HARNESS/run.sh ]] || die "no harness at $HARNESS/run.sh (set BENCH_HARNESS)"
(($# > 0)) || set -- quantum veth wireguard-go nebula tinc

printf 'bench: building the release daemon\n'
(cd "$ROOT" && "$SWIFT" build -c release --static-swift-stdlib --product quantum) || die "release build failed"
BIN=$(cd "$ROOT" && "$SWIFT" build -c release --show-bin-path)/quantum
[[ -x $BIN ]] || die "no binary at $BIN"

RAW=$(mktemp -d /tmp/quantum-bench.XXXXXX)
trap 'rm -rf "$RAW"' EXIT
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'bench: %s, load %s\n' "$("$BIN" --version 2>&1 | head -1)" "$LOAD"
QUANTUM_BIN=$BIN OUT=$RAW/peerbench.json "$HARNESS/run.sh" "$@" || die "the harness failed (its output is above)"

mkdir -p "$(dirname "$RESULT")"
{
    printf '# quantum benchmark, %s\n\n' "$STAMP"
    printf 'Commit %s; %s cores, kernel %s; load before the run: %s.\n\n' \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(nproc)" "$(uname -r)" "$LOAD"
    cat "$RAW/peerbench.md"
    printf '\n'
    python3 "$ROOT/scripts/bench_ratios.py" "$RAW/peerbench.md"
} > "$RESULT"
printf 'bench: results in %s\n' "$RESULT"
