#!/usr/bin/env bash
# quantum demo: a three-node encrypted mesh on this machine, in 60 seconds.
#
#   sudo scripts/demo.sh [BINARY]
#
# Without BINARY it builds one (`swift build -c release --static-swift-stdlib --product quantum`). It then starts etcd
# and three quantum nodes, each in its own network namespace (qdemo-*, underlay
# 10.201.98.0/24), lets them pick private addresses by DHCP, pings every node
# from every other over the encrypted overlay, measures TCP throughput with
# iperf3 for 5 s, and removes everything again. Node logs go to files and are
# shown only if something fails. Nothing leaves this machine.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QT_NS_PREFIX=qdemo-
QT_UNDERLAY=10.201.98
QT_LOG_LEVEL=${QT_LOG_LEVEL:-info}
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

NODES=(1 2 3)
say() { printf '%s\n' "$*"; }
die() {
    say "demo failed: $*" >&2
    local n
    for n in "${NODES[@]}"; do
        [[ -s $QT_WORK/n$n.log ]] || continue
        say "--- n$n log (last 10 lines)" >&2
        tail -n 10 "$QT_WORK/n$n.log" | sed 's/^/  | /' >&2
    done
    exit 1
}

[[ $EUID -eq 0 ]] || { say "The demo creates network namespaces and TUN devices: run it as root (sudo $0 $*)." >&2; exit 1; }
for t in etcd etcdctl iperf3 ip python3; do
    command -v "$t" >/dev/null || { say "missing '$t': run scripts/install-deps.sh first" >&2; exit 1; }
done
[[ -z "$(qt_existing_ns)" ]] || { say "namespaces qdemo-* already exist (another demo running?): $(qt_existing_ns | tr '\n' ' ')" >&2; exit 1; }

if [[ -n "${1:-}" ]]; then
    QT_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    [[ -x $QT_BIN ]] || { say "not an executable: $1" >&2; exit 1; }
else
    [[ -x /opt/swift/usr/bin/swift ]] && PATH=/opt/swift/usr/bin:$PATH
    command -v swift >/dev/null || { say "no binary given and no 'swift' to build one (see scripts/install-deps.sh)" >&2; exit 1; }
    printf 'Building quantum (swift build -c release --static-swift-stdlib --product quantum) ... '
    t0=$SECONDS
    blog=$(mktemp /tmp/quantum-demo-build.XXXXXX)
    if ! (cd "$ROOT" && swift build -c release --static-swift-stdlib --product quantum) >"$blog" 2>&1; then
        say "failed:"; tail -n 20 "$blog" | sed 's/^/  | /'; rm -f "$blog"; exit 1
    fi
    rm -f "$blog"
    say "done ($((SECONDS - t0)) s)"
    QT_BIN=$ROOT/.build/release/quantum
fi

qt_init ""   # fresh temp dir
cleanup() {
    trap '' INT TERM
    qt_cleanup
    qt_remove_work
}
trap cleanup EXIT
trap 'say; say "interrupted, cleaning up"; exit 130' INT TERM

say "Starting etcd and ${#NODES[@]} quantum nodes (one network namespace each) ..."
qt_topology_up "${#NODES[@]}" || die "could not create the namespaces"
qt_etcd_start || die "etcd did not start: $(tail -n 3 "$QT_WORK/etcd.log")"
for n in "${NODES[@]}"; do qt_node_start "$n"; done
for n in "${NODES[@]}"; do
    qt_wait_node_ip "$n" 30
    case $? in
        0) ;;
        2) die "node n$n exited during start-up" ;;
        *) die "node n$n did not configure $QT_DEV within 30 s" ;;
    esac
done

say
printf '  %-5s %-10s %-22s %s\n' node namespace "underlay (UDP $QT_PORT)" "private address ($QT_DEV)"
for n in "${NODES[@]}"; do
    printf '  %-5s %-10s %-22s %s\n' "n$n" "$(qt_ns "$n")" "$(qt_underlay_ip "$n")" "${QT_IP[n]}"
done
say "  etcd: $QT_ETCD_URL (in $QT_HUB_NS)"

say
say "Ping over quantum (3 packets each; the first may wait for a handshake):"
bad=0
for a in "${NODES[@]}"; do
    for b in "${NODES[@]}"; do
        ((a == b)) && continue
        if qt_ping "$a" "${QT_IP[b]}" 20; then
            rx=$(grep -o '[0-9]* received' <<<"$QT_PING_OUT" | cut -d' ' -f1)
            printf '  n%s -> n%s  %-12s %s/3 replies, avg rtt %s ms\n' "$a" "$b" "${QT_IP[b]}" "$rx" "$(qt_ping_rtt)"
        else
            printf '  n%s -> n%s  %-12s NO REPLY\n' "$a" "$b" "${QT_IP[b]}"
            bad=1
        fi
    done
done
((bad == 0)) || die "some nodes cannot reach each other"

say
say "TCP throughput n1 -> n2 over quantum (iperf3, 5 s):"
qt_spawn "$(qt_ns 2)" "$QT_WORK/iperf3-server.log" iperf3 iperf3 -s -1 -B "${QT_IP[2]}" -p 5201
srv=$QT_LAST_PID
qt_wait_for 10 bash -c "ip netns exec $(qt_ns 2) ss -Hltn 'sport = :5201' | grep -q LISTEN" || die "iperf3 server did not start"
if ! timeout 30 ip netns exec "$(qt_ns 1)" iperf3 -c "${QT_IP[2]}" -p 5201 -t 5 -J >"$QT_WORK/iperf3.json" 2>&1; then
    die "iperf3 failed: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error","?"))' "$QT_WORK/iperf3.json" 2>/dev/null)"
fi
python3 - "$QT_WORK/iperf3.json" <<'PY' || die "could not read the iperf3 result"
import json, sys
end = json.load(open(sys.argv[1]))["end"]
rx = end["sum_received"]
tx = end["sum_sent"]
print(f"  {rx['bits_per_second'] / 1e6:.0f} Mbit/s received "
      f"({rx['bytes'] / 1e6:.0f} MB in {rx['seconds']:.1f} s, {tx.get('retransmits', 0)} retransmits)")
PY
qt_wait_pid "$srv" 5 || true

say
say "All good: every packet above crossed the underlay encrypted (AES-256-GCM, Noise IK)."
say "Cleaning up namespaces and processes."
