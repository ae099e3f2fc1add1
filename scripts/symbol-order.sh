#!/usr/bin/env bash
# Regenerates Sources/quantum/symbol-order.txt: the functions a node runs from start to idle.
#
#   sudo scripts/symbol-order.sh
#
# Why: the kernel maps a binary's code in 64 KB windows around each page that runs, so a
# function run once at start-up keeps its whole window resident. The linker (lld,
# --symbol-ordering-file, see Package.swift) places the listed functions together at the
# front of .text, so an idle node's resident code is those windows instead of most of the
# 26 MB of text (README, "Memory").
#
# How: builds the release daemon, runs the integration case `idle_footprint` (4 nodes, a real
# etcd, pings, 10 s idle) with node 1 under valgrind's callgrind, and writes every function of
# the binary that callgrind saw run, sorted by name. Then relinks with the new list.
# Functions renamed since the last run are simply not ordered (no error): rerun this after
# changes to start-up, the control plane or the data path. Takes about 3 minutes.
#
# Needs: root (namespaces), valgrind, etcd (the integration tests' needs).
# env: SWIFT (default swift on PATH, else /opt/swift/usr/bin/swift), ORDER_RUNS (default 3),
#      ORDER_KEEP=1 keeps the work directory (profiles, wrapper) in /tmp.
set -euo pipefail
# Byte order for sort and comm: mangled names differ in punctuation a locale may ignore.
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORDER=$ROOT/Sources/quantum/symbol-order.txt
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}

die() { printf 'symbol-order: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root (the integration case creates network namespaces)"
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"

build() { (cd "$ROOT" && "$SWIFT" build -c release --static-swift-stdlib --product quantum) || die "release build failed"; }
build
BIN=$(cd "$ROOT" && "$SWIFT" build -c release --show-bin-path)/quantum

WORK=$(mktemp -d /tmp/quantum-order.XXXXXX)
trap '[[ -n ${ORDER_KEEP:-} ]] || rm -rf "$WORK"' EXIT
# valgrind cannot read the toolchain's DWARF 5; the symbol table is all it needs.
strip --strip-debug -o "$WORK/quantum" "$BIN"
mkdir "$WORK/bin"
cat >"$WORK/bin/quantum" <<EOF
#!/bin/sh
# Node 1 runs under callgrind (function coverage only), the others as they are.
case "\$*" in
    */n1.data\ *) exec valgrind --tool=callgrind --demangle=no --dump-instr=no \\
        --callgrind-out-file="$WORK/callgrind.%p" "$WORK/quantum" "\$@" ;;
esac
exec "$WORK/quantum" "\$@"
EOF
chmod +x "$WORK/bin/quantum"

# Which functions run varies a little from run to run (timers, retries): the list is the
# union of ORDER_RUNS runs (default 3).
for ((run = 1; run <= ${ORDER_RUNS:-3}; run++)); do
    printf 'symbol-order: run %d: idle_footprint with node 1 under callgrind\n' "$run"
    # Under valgrind node 1 is far above the case's memory bound and may exceed its CPU bound:
    # the case's verdict does not matter here, only that node 1 ran to idle and exited.
    IDLE_RSS_KB=10000000 CI=true "$ROOT/tests/integration/run.sh" "$WORK/bin/quantum" idle_footprint |
        grep -E '^(PASS|FAIL)|figures:' || true
done
shopt -s nullglob
profiles=("$WORK"/callgrind.*)
((${#profiles[@]} == ${ORDER_RUNS:-3})) || die "expected ${ORDER_RUNS:-3} callgrind profiles of node 1, found ${#profiles[@]}"

# Callgrind names each function once as `fn=(id) name` or `cfn=(id) name`; keep those
# defined in the binary (not in libc or libcrypto).
awk 'match($0, /^c?fn=\([0-9]+\) /) { print substr($0, RLENGTH + 1) }' "${profiles[@]}" | sort -u >"$WORK/ran"
nm --defined-only "$BIN" | awk '$2 ~ /^[TtWw]$/ { print $3 }' | sort -u >"$WORK/defined"
comm -12 "$WORK/ran" "$WORK/defined" >"$ORDER"
(($(wc -l <"$ORDER") > 1000)) || die "only $(wc -l <"$ORDER") functions ran: node 1 did not get to idle"
printf 'symbol-order: %d functions ran (%d in the binary): %s\n' \
    "$(wc -l <"$WORK/ran")" "$(wc -l <"$ORDER")" "${ORDER#"$ROOT"/}"
# The list is no build input SwiftPM tracks: removing the binary makes it link again.
rm -f "$BIN"
build
