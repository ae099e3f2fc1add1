#!/usr/bin/env bash
# Self-test of the integration harness: tests/integration/run.sh against the
# stand-in daemon fake_quantum.py (not the product). Needs root, like the cases.
#
#   tests/integration/selftest/run.sh
#
# 1. Every case the stand-in supports passes with it (SUPPORTED).
# 2. Each FAKE_BUG makes exactly its matching case fail, for the right reason:
#    the bug is run with that case and the cases that share its machinery
#    (BUG_CHECKS); the matching case must FAIL with a reason containing the
#    given text and the others must PASS (replayfirst: all PASS).
# Prints one line per check and ends with `selftest: N passed, M failed` (one
# check per supported case, one per bug); exits 1 if any check failed.
# Without root it skips loudly (exit 0) unless CI is set (then it fails).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=$HERE/../run.sh
FAKE=$HERE/fake_quantum.py

# Every case except refuses_without_privileges (the stand-in checks no privileges).
SUPPORTED=(all_pairs_ping tcp_100mb_sha256 no_plaintext_on_wire restart_keeps_address static_ip_refused
    simultaneous_start replay_dropped tamper_dropped node_joins_running_mesh
    etcd_outage etcd_member_loss kill9_restart restart_from_cache prefix_wiped stolen_address churn_10k)

# "BUG;CASE_THAT_MUST_FAIL;TEXT_IN_ITS_REASON;OTHER_CASES_THAT_MUST_PASS"
# (CASE "-": no case may fail)
BUG_CHECKS=(
    "plaintext;no_plaintext_on_wire;plaintext marker found;replay_dropped tamper_dropped"
    "noauth;tamper_dropped;drop_auth did not increase;replay_dropped no_plaintext_on_wire"
    "noreplay;replay_dropped;drop_replay did not increase;tamper_dropped no_plaintext_on_wire"
    "replayfirst;-;;replay_dropped tamper_dropped"
    "persisttun;kill9_restart;still in n2 5 s after kill -9;restart_keeps_address"
    "nocache;restart_from_cache;from the local cache;kill9_restart"
    "keepstolen;stolen_address;still running;prefix_wiped"
    "bloat;churn_10k;peak RSS;all_pairs_ping"
    "oneendpoint;etcd_member_loss;n3 exited;all_pairs_ping"
    "forgetpeers;etcd_outage;etcd down: ping;all_pairs_ping"
)

if [[ $EUID -ne 0 ]]; then
    if [[ -n "${CI:-}" ]]; then
        echo "selftest: cannot run: not root (CI is set, so this is a failure)" >&2
        exit 1
    fi
    echo "######## SELFTEST SKIPPED: not root; NOTHING WAS TESTED (sudo $0) ########" >&2
    exit 0
fi

passed=0 failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# run_fake BUG CASE...: run.sh with the stand-in (FAKE_BUG=BUG), output in $out.
run_fake() {
    FAKE_BUG=$1 "$RUN" "$FAKE" "${@:2}" >"$out" 2>&1
}

# result CASE: PASS, FAIL or MISSING, from the last run's output.
result() {
    awk -v c="$1" '($1 == "PASS" && $2 == c) || ($1 == "FAIL" && $2 == c ":") {print $1; f = 1; exit}
        END {if (!f) print "MISSING"}' "$out"
}

check() { # OK? TEXT
    if (($1)); then
        passed=$((passed + 1))
        echo "ok   $2"
    else
        failed=$((failed + 1))
        echo "FAIL $2"
        sed 's/^/     | /' "$out" | tail -n 25
    fi
}

echo "selftest: ${#SUPPORTED[@]} cases with the stand-in, then ${#BUG_CHECKS[@]} FAKE_BUG checks"
run_fake "" "${SUPPORTED[@]}"
for c in "${SUPPORTED[@]}"; do
    line=$(grep -m1 -E "^(PASS|FAIL) $c[ :]" "$out")
    ok=0
    [[ $(result "$c") == PASS ]] && ok=1
    check "$ok" "stand-in: ${line:-$c: no result}"
done

for spec in "${BUG_CHECKS[@]}"; do
    IFS=';' read -r bug target reason others <<<"$spec"
    cases=()
    [[ $target != - ]] && cases+=("$target")
    read -r -a rest <<<"$others"
    cases+=("${rest[@]}")
    run_fake "$bug" "${cases[@]}"
    ok=1 got=()
    for c in "${cases[@]}"; do
        r=$(result "$c")
        got+=("$c=$r")
        if [[ $c == "$target" ]]; then
            [[ $r == FAIL ]] && grep "^FAIL $c: " "$out" | grep -q -F -- "$reason" || ok=0
        else
            [[ $r == PASS ]] || ok=0
        fi
    done
    if [[ $target == - ]]; then want="no case fails"; else want="only $target fails, with '$reason'"; fi
    check "$ok" "FAKE_BUG=$bug: $want (${got[*]})"
done

echo "selftest: $passed passed, $failed failed"
((failed == 0))
