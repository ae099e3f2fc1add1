#!/usr/bin/env bash
# quantum integration tests: real daemons in network namespaces, real etcd.
#
#   tests/integration/run.sh BINARY [CASE...]
#
# Runs every case in cases.sh and cases_*.sh (or only the named ones), each in its own
# process with a fresh topology and its own time bound, and prints
# `PASS name (Ns)` / `FAIL name: reason` (+ the last log lines of the nodes
# involved), then exactly one line `integration: N passed, M failed`.
# Exit 1 if any case failed.
#
# Needs root (network namespaces, TUN). Without that it skips loudly and exits
# 0, unless CI is set, in which case it fails.
# Env: QT_TIMEOUT=S overrides every case's time bound;
#      QT_KEEP=1 keeps each case's work dir (logs, pcaps) in /dev/shm or /tmp.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Namespaces are qt-<runner pid>-hub, qt-<runner pid>-nN: concurrent runs on
# one machine cannot collide (every address lives inside its own namespaces).
: "${QT_NS_PREFIX:=qt-$$-}"
export QT_NS_PREFIX
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=cases.sh
. "$HERE/cases.sh"
# Each feature area's cases (cases_<area>.sh) append to QT_CASES and use cases.sh's helpers.
for cases_file in "$HERE"/cases_*.sh; do
    [[ -e $cases_file ]] || continue
    # shellcheck source=/dev/null
    . "$cases_file"
done

# ---- child: run one case ------------------------------------------------------
if [[ "${1:-}" == --case ]]; then
    case_name=$2 QT_BIN=$3
    qt_init "$4"
    trap 'qt_cleanup' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    "tc_$case_name" || qt_fail "case function returned $?"
    # A daemon that crashed (Swift runtime trap) fails the case even if the checks passed.
    for log in "$QT_WORK"/n*.log; do
        [[ -f $log ]] || continue
        if grep -q -E 'crashed:|Fatal error|Swift runtime failure' "$log"; then
            qt_fail "$(basename "$log" .log) crashed: $(grep -m1 -E 'Swift runtime failure|Fatal error' "$log")"
        fi
    done
    exit 0
fi

# ---- runner -------------------------------------------------------------------
usage() { echo "usage: $0 BINARY [CASE...]   cases: ${QT_CASES[*]%% *}" >&2; exit 2; }
[[ $# -ge 1 && $1 != -h && $1 != --help ]] || usage
BIN=$1
shift
[[ $BIN == */* ]] || BIN=./$BIN
bin_dir=$(cd "$(dirname "$BIN")" 2>/dev/null && pwd) && BIN=$bin_dir/$(basename "$BIN")

if ! qt_can_netns; then
    if [[ $EUID -ne 0 ]]; then why="not running as root"; else why="cannot create network namespaces or no /dev/net/tun"; fi
    if [[ -n "${CI:-}" ]]; then
        echo "integration: cannot run: $why (CI is set, so this is a failure; run as root)" >&2
        exit 1
    fi
    cat >&2 <<EOF
################################################################################
##  INTEGRATION TESTS SKIPPED: $why.
##  They need root (network namespaces, TUN devices): sudo $0 ${BIN}
##  NOTHING WAS TESTED. (With CI set this is an error.)
################################################################################
EOF
    exit 0
fi

[[ -x $BIN ]] || { echo "integration: binary '$BIN' not found or not executable" >&2; exit 1; }
missing=()
for t in etcd etcdctl tcpdump ping ip bridge python3 timeout; do
    command -v "$t" >/dev/null || missing+=("$t")
done
((${#missing[@]} == 0)) || { echo "integration: missing tools: ${missing[*]} (run scripts/install-deps.sh)" >&2; exit 1; }
leftover=$(qt_existing_ns)
if [[ -n $leftover ]]; then
    echo "integration: namespaces with prefix '$QT_NS_PREFIX' already exist: ${leftover//$'\n'/ }" >&2
    exit 1
fi

# Which cases, with their bounds.
declare -A BOUND=()
all=()
for c in "${QT_CASES[@]}"; do BOUND[${c%% *}]=${QT_TIMEOUT:-${c##* }}; all+=("${c%% *}"); done
if (($# > 0)); then
    for c in "$@"; do [[ -n "${BOUND[$c]:-}" ]] || { echo "unknown case '$c'" >&2; usage; }; done
    selected=("$@")
else
    selected=("${all[@]}")
fi

qt_init
RUN_DIR=$QT_WORK
passed=0 failed=0 child=

# Backstop for a case dir: whatever the child left (e.g. SIGKILLed by timeout).
finish_case() {
    QT_WORK=$1 qt_cleanup
}

on_signal() {
    trap '' INT TERM
    echo "interrupted: stopping the running case and cleaning up" >&2
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    [[ -n "${cur_dir:-}" ]] && finish_case "$cur_dir"
    QT_WORK=$RUN_DIR qt_remove_work
    echo "integration: $passed passed, $((failed + 1)) failed"
    exit 130
}
trap on_signal INT TERM

show_tails() { # case dir
    local d=$1 f n involved=()
    if [[ -s $d/involved ]]; then
        mapfile -t involved <"$d/involved"
    else
        for f in "$d"/n*.log; do [[ -e $f ]] && { n=${f##*/n}; involved+=("${n%.log}"); }; done
    fi
    for n in "${involved[@]}"; do
        [[ -n $n && -e $d/n$n.log ]] || continue
        echo "  --- n$n log (last 15 lines) ---"
        tail -n 15 "$d/n$n.log" | sed 's/^/  | /'
    done
    if [[ -s $d/case.log ]]; then
        echo "  --- case log (last 8 lines) ---"
        tail -n 8 "$d/case.log" | sed 's/^/  | /'
    fi
}

echo "integration: ${#selected[@]} cases, binary $BIN"
for c in "${selected[@]}"; do
    cur_dir=$RUN_DIR/$c
    mkdir -p "$cur_dir"
    start=$SECONDS
    timeout -k 10 "${BOUND[$c]}" "$0" --case "$c" "$BIN" "$cur_dir" >"$cur_dir/case.log" 2>&1 &
    child=$!
    wait "$child"
    rc=$?
    child=
    finish_case "$cur_dir"
    dt=$((SECONDS - start))
    if ((rc == 0)); then
        echo "PASS $c (${dt}s)"
        # A drill's measured figures (lines it logged as "figures: ..."), shown with its result.
        grep -h 'figures: ' "$cur_dir/case.log" 2>/dev/null | sed 's/^.*figures: /    figures: /'
        passed=$((passed + 1))
    else
        if ((rc == 124 || rc == 137)); then
            reason="timed out after ${BOUND[$c]}s while: $(cat "$cur_dir/step" 2>/dev/null || echo '?')"
        elif [[ -s $cur_dir/reason ]]; then
            reason=$(<"$cur_dir/reason")
        else
            reason="exited with status $rc (see case log)"
        fi
        echo "FAIL $c: $reason"
        show_tails "$cur_dir"
        failed=$((failed + 1))
    fi
    [[ ${QT_KEEP:-0} == 1 ]] || rm -rf -- "$cur_dir"
done
cur_dir=
QT_WORK=$RUN_DIR qt_remove_work
echo "integration: $passed passed, $failed failed"
((failed == 0))
