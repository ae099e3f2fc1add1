# shellcheck shell=bash disable=SC2034  # globals are used by run.sh and lib.sh
# quantum integration test cases. Sourced by run.sh in a child process, one
# case per process, after lib.sh, with QT_BIN and QT_WORK set and a trap that
# runs qt_cleanup. A case returns 0 on success or calls qt_fail.
#
# QT_CASES lists the cases in run order with their time bound in seconds.
QT_CASES=(
    "all_pairs_ping 90"
    "tcp_100mb_sha256 180"
    "no_plaintext_on_wire 120"
    "restart_keeps_address 90"
    "static_ip_refused 90"
    "simultaneous_start 75"
    "replay_dropped 75"
    "tamper_dropped 75"
    "node_joins_running_mesh 90"
    "refuses_without_privileges 30"
    "etcd_outage 150"
    "etcd_member_loss 150"
    "kill9_restart 60"
    "restart_from_cache 90"
    "prefix_wiped 75"
    "stolen_address 75"
    "churn_10k 180"
)

# qt_fail REASON [NODE...]: record why the case failed and which nodes' logs
# to show, then exit (the EXIT trap cleans up).
qt_fail() {
    local reason=$1
    shift
    printf '%s\n' "$reason" >"$QT_WORK/reason"
    printf '%s\n' "$@" >"$QT_WORK/involved"
    exit 1
}

# qt_step TEXT: note what the case is doing (shown if the case times out).
qt_step() {
    printf '%s\n' "$*" >"$QT_WORK/step"
    qt_log "$*"
}

# setup N: fresh topology with N node namespaces and etcd.
setup() {
    qt_step "topology with $1 nodes + etcd"
    qt_topology_up "$1" || qt_fail "could not build the namespace topology"
    qt_etcd_start || qt_fail "etcd did not start: $(tail -n 3 "$QT_WORK/etcd.log" | tr '\n' ' ')"
}

# wait_up N...: wait for each node's quantum0 address (30 s each at most).
wait_up() {
    local n rc
    for n in "$@"; do
        qt_step "waiting for n$n's $QT_DEV address"
        qt_wait_node_ip "$n" 30
        rc=$?
        ((rc == 2)) && qt_fail "n$n exited (status ${QT_EXIT[n]:-?}) before configuring $QT_DEV" "$n"
        ((rc != 0)) && qt_fail "n$n has no IPv4 address on $QT_DEV after 30 s" "$n"
        qt_log "n$n is up at ${QT_IP[n]}"
    done
}

# must_ping FROM TO_N [WINDOW]
must_ping() {
    qt_step "ping n$1 -> n$2 (${QT_IP[$2]})"
    qt_ping "$1" "${QT_IP[$2]}" "${3:-20}" ||
        qt_fail "n$1 cannot ping n$2 (${QT_IP[$2]}) within ${3:-20} s: $(tail -n 2 <<<"$QT_PING_OUT" | tr '\n' ' ')" "$1" "$2"
}

# in_dhcp_range IP: inside 10.99.0.0/16 but above the static (10.99.0.0/23)
# and floating (10.99.2.0/23) ranges.
in_dhcp_range() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    [[ $a == 10 && $b == 99 && $c -ge 4 && $c -le 255 && $d -ge 0 && $d -le 255 ]]
}

# counter N NAME -> value via SIGUSR1 (fails the case if unavailable)
counter() {
    local pairs v
    pairs=$(qt_counters "$1") || { echo "NO_COUNTERS"; return 1; }
    v=$(qt_counter_get "$pairs" "$2")
    [[ -n $v ]] || { echo "NO_${2}"; return 1; }
    printf '%s\n' "$v"
}

# counter_above N NAME VALUE: node N's counter NAME is above VALUE (the value
# read is left in COUNTER_NOW).
counter_above() {
    COUNTER_NOW=$(counter "$1" "$2") && ((COUNTER_NOW > $3))
}

# capture_start N FILE FILTER...: tcpdump on node N's eth0 (recorded PID in
# CAP_PID); waits until tcpdump reports it is listening.
capture_start() {
    local n=$1 file=$2
    shift 2
    qt_spawn "$(qt_ns "$n")" "$file.log" tcpdump tcpdump -i eth0 -n -U -s 0 -w "$file" "$@"
    CAP_PID=$QT_LAST_PID
    qt_wait_for 10 grep -q 'listening on' "$file.log" || qt_fail "tcpdump did not start: $(tr '\n' ' ' <"$file.log")"
}

capture_stop() {
    sleep 0.5
    qt_stop_pid "$CAP_PID" INT 5
}

# ---- a ------------------------------------------------------------------------
# 3 DHCP nodes + 1 static (10.99.0.10); every node pings every other.
tc_all_pairs_ping() {
    local i j
    setup 4
    for i in 1 2 3; do qt_node_start "$i"; done
    qt_node_start 4 --private-ip 10.99.0.10
    wait_up 1 2 3 4
    [[ ${QT_IP[4]} == 10.99.0.10 ]] || qt_fail "static node got ${QT_IP[4]}, not 10.99.0.10" 4
    for i in 1 2 3; do
        in_dhcp_range "${QT_IP[i]}" || qt_fail "n$i's DHCP address ${QT_IP[i]} is not in 10.99.4.0-10.99.255.255" "$i"
    done
    [[ $(printf '%s\n' "${QT_IP[@]:1:4}" | sort -u | wc -l) == 4 ]] ||
        qt_fail "addresses not distinct: ${QT_IP[*]:1:4}" 1 2 3 4
    for i in 1 2 3 4; do
        for j in 1 2 3 4; do
            ((i == j)) && continue
            must_ping "$i" "$j"
            qt_log "n$i -> n$j ok, avg rtt $(qt_ping_rtt) ms"
        done
    done
}

# ---- b ------------------------------------------------------------------------
# 100 MB of random bytes over TCP from n1 to n2; sha256 compared at the far end.
tc_tcp_100mb_sha256() {
    local f=$QT_WORK/random.bin sent got t0
    setup 2
    qt_node_start 1
    qt_node_start 2
    qt_step "creating 100 MB random file"
    head -c 100M /dev/urandom >"$f" || qt_fail "cannot write $f"
    wait_up 1 2
    must_ping 1 2
    qt_step "receiver on n2 ${QT_IP[2]}:5201"
    qt_spawn "$(qt_ns 2)" "$QT_WORK/recv.log" recv python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "${QT_IP[2]}" 5201 "$QT_WORK/recv.sha" --ready "$QT_WORK/recv.ready" --timeout 120
    local rpid=$QT_LAST_PID
    qt_wait_for 10 test -e "$QT_WORK/recv.ready" || qt_fail "receiver did not start: $(tr '\n' ' ' <"$QT_WORK/recv.log")"
    qt_step "sending 100 MB n1 -> n2"
    t0=$SECONDS
    sent=$(timeout 140 ip netns exec "$(qt_ns 1)" python3 "$QT_LIB_DIR/tcpxfer.py" send \
        "${QT_IP[2]}" 5201 "$f" --timeout 120 2>"$QT_WORK/send.err") ||
        qt_fail "sender failed after $((SECONDS - t0)) s: $(tail -n 2 "$QT_WORK/send.err" | tr '\n' ' ')" 1 2
    qt_wait_pid "$rpid" 20 || qt_fail "receiver did not finish" 1 2
    got=$(cat "$QT_WORK/recv.sha" 2>/dev/null)
    [[ -n $got ]] || qt_fail "receiver wrote no digest: $(tr '\n' ' ' <"$QT_WORK/recv.log")" 1 2
    [[ $got == "$sent" ]] || qt_fail "digest mismatch: sent '$sent', received '$got'" 1 2
    qt_log "100 MB in $((SECONDS - t0)) s, sha256 ${got%% *} matches"
}

# ---- c ------------------------------------------------------------------------
# Capture n1's underlay during a transfer of a marker-filled file: many
# packets, no marker bytes, nothing but UDP port 1099 (apart from etcd and ARP).
tc_no_plaintext_on_wire() {
    local marker=QUANTUM-PLAINTEXT-MARKER-7d1e0c f=$QT_WORK/marker.txt pcap=$QT_WORK/n1.pcap
    local total other sent
    setup 2
    qt_node_start 1
    qt_node_start 2
    yes "$marker" | head -c 8M >"$f"
    wait_up 1 2
    must_ping 1 2
    capture_start 1 "$pcap"
    qt_spawn "$(qt_ns 2)" "$QT_WORK/recv.log" recv python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "${QT_IP[2]}" 5202 "$QT_WORK/recv.sha" --ready "$QT_WORK/recv.ready" --timeout 60
    local rpid=$QT_LAST_PID
    qt_wait_for 10 test -e "$QT_WORK/recv.ready" || qt_fail "receiver did not start"
    qt_step "sending 8 MB of marker text n1 -> n2 while capturing"
    sent=$(timeout 70 ip netns exec "$(qt_ns 1)" python3 "$QT_LIB_DIR/tcpxfer.py" send \
        "${QT_IP[2]}" 5202 "$f" --timeout 60 2>"$QT_WORK/send.err") ||
        qt_fail "transfer failed: $(tail -n 2 "$QT_WORK/send.err" | tr '\n' ' ')" 1 2
    qt_wait_pid "$rpid" 20 || qt_fail "receiver did not finish" 1 2
    [[ $(cat "$QT_WORK/recv.sha") == "$sent" ]] || qt_fail "transfer corrupted (digest mismatch)" 1 2
    capture_stop
    total=$(tcpdump -n -r "$pcap" 2>/dev/null | wc -l)
    # Bytes, not packets: with UDP GSO the capture sees one record per train of datagrams.
    local captured
    captured=$(stat -c %s "$pcap")
    ((captured >= 8 * 1024 * 1024)) ||
        qt_fail "only $captured bytes ($total records) captured on n1's eth0 (expected >= 8 MB)" 1 2
    if grep -a -q -F "$marker" "$pcap"; then
        qt_fail "plaintext marker found in the underlay capture ($total packets)" 1 2
    fi
    other=$(tcpdump -n -r "$pcap" "not arp and not host $QT_HUB_IP and not udp port $QT_PORT" 2>/dev/null)
    [[ -z $other ]] || qt_fail "$(wc -l <<<"$other") packets other than UDP $QT_PORT on the underlay, e.g.: $(head -n 3 <<<"$other" | tr '\n' ' ')" 1 2
    qt_log "$total packets captured, no marker, all UDP $QT_PORT"
}

# ---- d ------------------------------------------------------------------------
# Stop a DHCP node, check a clean exit and device removal, restart it with the
# same data dir: same address, reachable again.
tc_restart_keeps_address() {
    local before
    setup 2
    qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    must_ping 1 2
    before=${QT_IP[2]}
    qt_step "stopping n2 (SIGTERM)"
    qt_node_stop 2
    [[ ${QT_EXIT[2]} == 0 ]] || qt_fail "n2 exited with status ${QT_EXIT[2]} on SIGTERM (expected 0)" 2
    qt_wait_for 5 bash -c "! ip -n $(qt_ns 2) link show dev $QT_DEV" ||
        qt_fail "$QT_DEV still present in n2 after the daemon exited" 2
    qt_node_start 2
    wait_up 2
    [[ ${QT_IP[2]} == "$before" ]] || qt_fail "n2 came back with ${QT_IP[2]}, had $before" 2
    must_ping 1 2 30
    must_ping 2 1 30
}

# ---- e ------------------------------------------------------------------------
# A static address held by another machine, and one outside the network, are
# refused at start-up with a non-zero exit.

# expect_refused ADDRESS PATTERN: a second machine (fresh data dir) in n2's
# namespace claiming --private-ip ADDRESS exits non-zero within 30 s with PATTERN.
expect_refused() {
    local address=$1 pattern=$2 rc err=$QT_WORK/refused.err data
    data=$QT_WORK/n2.$address
    install -d -m 0700 "$data"
    timeout 30 ip netns exec "$(qt_ns 2)" "$QT_BIN" --datastore-endpoints "$QT_ENDPOINTS" \
        --data-dir "$data" --listen-port "$QT_PORT" --device-name "$QT_DEV" \
        --private-ip "$address" </dev/null >"$err" 2>&1
    rc=$?
    cp "$err" "$QT_WORK/n2.log"
    ((rc == 124)) && qt_fail "node claiming $address still running after 30 s" 2
    ((rc == 0)) && qt_fail "node claiming $address exited 0" 2
    grep -q "$pattern" "$err" || qt_fail "claiming $address: exit $rc but stderr lacks '$pattern'" 2
    qt_log "$address refused (exit $rc): $(grep -m1 "$pattern" "$err")"
}

tc_static_ip_refused() {
    setup 2
    qt_node_start 1 --private-ip 10.99.0.10
    wait_up 1
    [[ ${QT_IP[1]} == 10.99.0.10 ]] || qt_fail "n1 got ${QT_IP[1]}, not 10.99.0.10" 1
    qt_step "second machine claims 10.99.0.10"
    expect_refused 10.99.0.10 'is held by machine'
    qt_step "claim 192.168.1.1 (outside the network)"
    expect_refused 192.168.1.1 'outside'
    if ! qt_node_alive 1 || [[ $(qt_node_ip 1) != 10.99.0.10 ]]; then
        qt_fail "n1 died or lost 10.99.0.10 meanwhile" 1
    fi
}

# ---- f ------------------------------------------------------------------------
# Three nodes with fresh data dirs released at the same instant get distinct
# addresses.
tc_simultaneous_start() {
    local n
    setup 3
    QT_GATE=$QT_WORK/gate
    for n in 1 2 3; do qt_node_start "$n"; done
    unset QT_GATE
    sleep 0.5
    touch "$QT_WORK/gate"
    wait_up 1 2 3
    [[ $(printf '%s\n' "${QT_IP[1]}" "${QT_IP[2]}" "${QT_IP[3]}" | sort -u | wc -l) == 3 ]] ||
        qt_fail "duplicate addresses: n1=${QT_IP[1]} n2=${QT_IP[2]} n3=${QT_IP[3]}" 1 2 3
    for n in 1 2 3; do in_dhcp_range "${QT_IP[n]}" || qt_fail "n$n got ${QT_IP[n]}, outside the DHCP range" "$n"; done
    must_ping 1 2
    must_ping 2 3
}

# ---- g / h --------------------------------------------------------------------
# capture_transport PCAP: capture n1 -> n2 UDP 1099 on n1's eth0 during a ping.
capture_transport() {
    capture_start 1 "$1" udp and src host "$(qt_underlay_ip 1)" and dst host "$(qt_underlay_ip 2)" and dst port "$QT_PORT"
    ip netns exec "$(qt_ns 1)" ping -n -q -c 3 -i 0.2 -W 1 "${QT_IP[2]}" >/dev/null 2>&1
    capture_stop
}

# resend_counts COUNTER PCAP [--flip]: resend one captured n1 -> n2 transport
# packet (with --flip, one ciphertext byte flipped) from n1's namespace and
# check that n2's COUNTER went up and that n1 still reaches n2.
resend_counts() {
    local name=$1 pcap=$2 before after out
    shift 2
    before=$(counter 2 "$name") || qt_fail "no counters line with $name after SIGUSR1 ($before)" 2
    out=$(ip netns exec "$(qt_ns 1)" timeout 10 python3 "$QT_LIB_DIR/pcap_replay.py" "$pcap" \
        --to "$(qt_underlay_ip 2)" --port "$QT_PORT" "$@" 2>&1) || qt_fail "pcap_replay: $out"
    qt_log "$out"
    qt_step "waiting for n2's $name to rise above $before"
    qt_wait_for 5 counter_above 2 "$name" "$before" ||
        qt_fail "$name did not increase within 5 s ($before -> ${COUNTER_NOW:-?}); $out" 2
    after=$COUNTER_NOW
    qt_log "$name $before -> $after"
    must_ping 1 2 10
}

# Resend an A->B transport packet B already accepted: drop_replay goes up.
tc_replay_dropped() {
    setup 2
    qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    must_ping 1 2
    qt_step "capturing n1 -> n2 transport packets"
    capture_transport "$QT_WORK/g.pcap"
    resend_counts drop_replay "$QT_WORK/g.pcap"
}

# Flip a ciphertext byte of an A->B packet that B never received (its bridge
# port was closed during the capture, so the replay window cannot claim it
# first): drop_auth goes up.
tc_tamper_dropped() {
    setup 2
    qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    must_ping 1 2
    qt_step "capturing n1 -> n2 transport packets with n2's bridge port closed"
    qt_port_state 2 disabled || qt_fail "cannot close n2's bridge port"
    capture_transport "$QT_WORK/h.pcap"
    qt_port_state 2 forwarding || qt_fail "cannot reopen n2's bridge port"
    resend_counts drop_auth "$QT_WORK/h.pcap" --flip
}

# ---- i ------------------------------------------------------------------------
# A third node joins while two run and ping; all reach each other, the first
# two are never restarted.
tc_node_joins_running_mesh() {
    local p1 p2 bg
    setup 3
    qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    must_ping 1 2
    must_ping 2 1
    p1=${QT_PID[1]} p2=${QT_PID[2]}
    qt_spawn "$(qt_ns 1)" "$QT_WORK/bgping.log" bgping ping -n -q -c 60 -i 0.25 -W 1 "${QT_IP[2]}"
    bg=$QT_LAST_PID
    qt_step "starting n3 while n1 pings n2"
    qt_node_start 3
    wait_up 3
    must_ping 3 1
    must_ping 3 2
    must_ping 1 3
    must_ping 2 3
    if [[ ${QT_PID[1]} != "$p1" || ${QT_PID[2]} != "$p2" ]] || ! qt_node_alive 1 || ! qt_node_alive 2; then
        qt_fail "n1 or n2 is no longer the process started at the beginning" 1 2
    fi
    qt_wait_pid "$bg" 20 || qt_stop_pid "$bg"
    [[ $QT_LAST_RC == 0 ]] || qt_fail "background ping n1 -> n2 got no replies while n3 joined: $(tail -n 2 "$QT_WORK/bgping.log" | tr '\n' ' ')" 1 2
    qt_log "background ping n1 -> n2: $(grep -m1 'packet loss' "$QT_WORK/bgping.log")"
}

# ---- j ------------------------------------------------------------------------
# Without CAP_NET_ADMIN, or without /dev/net/tun, start-up fails at once with one
# line saying which, before touching etcd (none runs here, and the data
# directory is not even created).
# refused_in_one_line WHAT PATTERN DATADIR CMD...: CMD (a quantum start with
# --data-dir DATADIR) exits non-zero within 10 s, printing one line with PATTERN
# and creating no data directory.
refused_in_one_line() {
    local what=$1 pattern=$2 data=$3 rc err=$QT_WORK/n1.log
    shift 3
    qt_step "$what"
    timeout 10 "$@" </dev/null >"$err" 2>&1
    rc=$?
    ((rc != 0 && rc != 124)) || qt_fail "$what: exited $rc" 1
    grep -q -- "$pattern" "$err" || qt_fail "$what: no word of $pattern" 1
    (($(wc -l <"$err") == 1)) || qt_fail "$what: printed more than one line" 1
    [[ ! -e $data ]] || qt_fail "$what: created its data directory" 1
    qt_log "refused: $(cat "$err")"
}

tc_refuses_without_privileges() {
    refused_in_one_line "start as uid 65534 without capabilities" CAP_NET_ADMIN "$QT_WORK/np" \
        setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
        "$QT_BIN" --datastore-endpoints 127.0.0.1:9 --data-dir "$QT_WORK/np"
    refused_in_one_line "start as root with /dev/net hidden" /dev/net/tun "$QT_WORK/nt" \
        unshare --mount sh -c 'mount -t tmpfs none /dev/net && exec "$@"' sh \
        "$QT_BIN" --datastore-endpoints 127.0.0.1:9 --data-dir "$QT_WORK/nt"
}

# ---- fault drills ---------------------------------------------------------------
# The drills run their nodes with a short full-resync interval. "Within one sync
# interval" means within QT_SYNC seconds plus QT_SLACK for the daemon's own
# start-up and the harness's polling. Each drill logs its figures in a line
# starting with `figures:`.
QT_SYNC=10
QT_SLACK=2

# drill_node N [ARGS...]: start node N with the drills' sync interval.
drill_node() {
    local n=$1
    shift
    qt_node_start "$n" --datastore-sync-interval "${QT_SYNC}s" "$@"
}

# up_within N BOUND_S: node N's quantum0 gets its address within BOUND_S.
up_within() {
    local rc
    qt_step "waiting for n$1's $QT_DEV address (at most $2 s)"
    qt_wait_node_ip "$1" "$2"
    rc=$?
    ((rc == 2)) && qt_fail "n$1 exited (status ${QT_EXIT[$1]:-?}) before configuring $QT_DEV" "$1"
    ((rc != 0)) && qt_fail "n$1 has no IPv4 address on $QT_DEV after $2 s" "$1"
    qt_log "n$1 is up at ${QT_IP[$1]}"
}

# reach_within T0 BOUND_S TO FROM...: every FROM node gets a ping reply from node
# TO before T0 (qt_now) + BOUND_S. REACH_S = seconds from T0 to the last reply.
reach_within() {
    local t0=$1 bound=$2 to=$3 from left
    shift 3
    for from in "$@"; do
        qt_step "n$from -> n$to (${QT_IP[to]}) within $bound s of the reference time"
        left=$(((t0 + bound * 1000000 - $(qt_now) + 999999) / 1000000))
        if ((left <= 0)) || ! qt_reach "$from" "${QT_IP[to]}" "$left"; then
            qt_fail "n$from got no reply from n$to (${QT_IP[to]}) within $bound s" "$from" "$to"
        fi
    done
    REACH_S=$(qt_since "$t0")
    (($(qt_now) - t0 <= bound * 1000000)) ||
        qt_fail "n$to answered only after $REACH_S s (bound $bound s)" "$to" "$@"
}

# ping_pairs SECONDS A:B...: background 10 Hz pings from node A to node B for each pair.
ping_pairs() {
    local s=$1 p
    shift
    for p in "$@"; do qt_bgping_start "p${p%:*}${p#*:}" "${p%:*}" "${QT_IP[${p#*:}]}" "$s"; done
}

# no_loss WHAT A:B...: the background pings of ping_pairs ended, and every echo
# request was answered. Logs each stream's count.
no_loss() {
    local what=$1 p name
    shift
    for p in "$@"; do
        name=p${p%:*}${p#*:}
        qt_step "waiting for the end of the 10 Hz ping n${p%:*} -> n${p#*:}"
        qt_bgping_result "$name" 90 ||
            qt_fail "$what: ping n${p%:*} -> n${p#*:} did not end with a summary: $(tail -n 2 "$QT_WORK/$name.ping" | tr '\n' ' ')" "${p%:*}" "${p#*:}"
        ((QT_PING_TX > 0 && QT_PING_RX == QT_PING_TX)) ||
            qt_fail "$what: ping n${p%:*} -> n${p#*:} lost $((QT_PING_TX - QT_PING_RX)) of $QT_PING_TX" "${p%:*}" "${p#*:}"
        qt_log "$what: n${p%:*} -> n${p#*:} $QT_PING_RX/$QT_PING_TX answered, 0 lost"
    done
}

# etcd_down M: member M does not answer (asserts a stop or black hole took effect).
etcd_down() {
    qt_etcd_member_healthy "$1" >/dev/null 2>&1 && qt_fail "etcd member $1 still answers"
    return 0
}

# node_key N: node N's key in etcd.
node_key() { printf '/quantum/nodes/%s\n' "${QT_IP[$1]}"; }

# keys_present KEY...: every KEY exists in etcd.
keys_present() {
    local k
    for k in "$@"; do [[ -n $(qt_etcdctl get "$k" --keys-only) ]] || return 1; done
}

# logged_since N LINE PATTERN: node N's log has PATTERN after its first LINE lines.
logged_since() { tail -n +$(($2 + 1)) "$(qt_node_log "$1")" | grep -q -- "$3"; }

# two_established: drill nodes n1 and n2 up and pinging each other.
two_established() {
    drill_node 1
    drill_node 2
    wait_up 1 2
    must_ping 1 2
    must_ping 2 1
}

# dev_gone N: node N has no quantum0 device.
dev_gone() { ! qt_dev_exists "$1"; }

# key_written_after KEY REVISION: KEY exists and was last written after REVISION.
key_written_after() {
    local m
    m=$(qt_etcd_mod_revision "$1") && ((m > $2))
}

# 1. etcd stopped for 60 s under two established nodes pinging each other at
# 10 Hz: nothing lost. etcd back on its data dir: a new node is reachable from
# both within one sync interval of its start.
tc_etcd_outage() {
    local t0
    setup 3
    two_established
    ping_pairs 62 1:2 2:1
    qt_step "etcd stopped for the 62 s of the pings"
    qt_etcd_member_stop 0
    etcd_down 0
    no_loss "etcd down" 1:2 2:1
    qt_step "etcd back on the same data dir"
    qt_etcd_start || qt_fail "etcd did not come back: $(tail -n 3 "$QT_WORK/etcd.log" | tr '\n' ' ')"
    t0=$(qt_now)
    drill_node 3
    up_within 3 $((QT_SYNC + QT_SLACK))
    reach_within "$t0" $((QT_SYNC + QT_SLACK)) 3 1 2
    qt_log "figures: 0 of 2x620 pings lost during a 62 s outage; n3 reachable from n1 and n2 ${REACH_S} s after its start"
}

# joins_without_loss N WHAT: node N started now answers n1 within 15 s of its
# start (REACH_S), and the 20 s pings n1 <-> n2 of ping_pairs lose nothing.
joins_without_loss() {
    local t0
    t0=$(qt_now)
    drill_node "$1"
    up_within "$1" 15
    reach_within "$t0" 15 "$1" 1
    no_loss "$2" 1:2 2:1
}

# 2. 3-member etcd cluster. SIGKILL member e1: no ping lost, a new node joins
# within 15 s. e1 back; black-hole e2's client port: the same.
tc_etcd_member_loss() {
    local kill_s hole_s drops
    qt_step "topology with 4 nodes + a 3-member etcd cluster"
    qt_topology_up 4 || qt_fail "could not build the namespace topology"
    qt_etcd_cluster_up 3 || qt_fail "the etcd cluster did not come up: $(tail -q -n 2 "$QT_WORK"/etcd-e*.log | tr '\n' ' ')"
    two_established
    ping_pairs 20 1:2 2:1
    qt_step "SIGKILL etcd member e1"
    qt_etcd_member_stop 1 KILL
    etcd_down 1
    joins_without_loss 3 "e1 killed"
    kill_s=$REACH_S
    qt_step "e1 back on its data dir"
    qt_etcd_member_start 1 existing
    qt_etcd_wait_healthy 1 30 || qt_fail "e1 did not rejoin the cluster within 30 s"
    ping_pairs 20 1:2 2:1
    qt_step "black-holing e2's client port"
    qt_blackhole_on "$(qt_etcd_member_ns 2)" "$QT_ETCD_PORT" || qt_fail "nft could not install the black hole"
    etcd_down 2
    joins_without_loss 4 "e2 black-holed"
    hole_s=$REACH_S
    drops=$(qt_blackhole_drops "$(qt_etcd_member_ns 2)")
    qt_blackhole_off "$(qt_etcd_member_ns 2)" || qt_fail "nft could not remove the black hole"
    qt_etcd_wait_healthy 2 10 || qt_fail "e2 does not answer after the black hole was removed"
    qt_log "figures: e1 killed -> n3 joined in $kill_s s; e2 black-holed ($drops segments dropped) -> n4 joined in $hole_s s; 0 of 4x200 pings lost"
}

# 3. kill -9 and restart on the same data dir: the dead process's device is
# gone by itself; same address; reachable from a peer within 5 s.
tc_kill9_restart() {
    local before t0
    setup 2
    two_established
    before=${QT_IP[2]}
    qt_step "kill -9 n2"
    qt_node_stop 2 KILL
    qt_wait_for 5 dev_gone 2 || qt_fail "$QT_DEV still in n2 5 s after kill -9" 2
    drill_node 2
    wait_up 2
    t0=$(qt_now)
    [[ ${QT_IP[2]} == "$before" ]] || qt_fail "n2 came back with ${QT_IP[2]}, had $before" 2
    reach_within "$t0" 5 2 1
    qt_log "figures: after kill -9 and restart, n1 reached n2 ${REACH_S} s after n2's device came up"
}

# 4. etcd down; a node restarted then comes up from its cache with its old
# address and peers reach it both ways; etcd back: its key is written again
# within one sync interval.
tc_restart_from_cache() {
    local before lines key rev t0 mid
    setup 2
    two_established
    before=${QT_IP[2]} key=$(node_key 2)
    qt_step "waiting for n2's cache to list n1"
    qt_wait_for 10 grep -q "\"${QT_IP[1]}\"" "${QT_DATA[2]}/cache.json" ||
        qt_fail "n2's cache.json does not list n1 (${QT_IP[1]}) within 10 s" 2
    # Nothing can write while etcd is down: a key written later than this
    # revision was written after etcd came back.
    rev=$(qt_etcd_revision) || qt_fail "cannot read etcd's revision"
    qt_step "stopping etcd at revision $rev"
    qt_etcd_member_stop 0
    etcd_down 0
    qt_step "restarting n2 while etcd is down"
    qt_node_stop 2
    lines=$(wc -l <"$(qt_node_log 2)")
    drill_node 2
    qt_wait_for 20 logged_since 2 "$lines" 'from the local cache' ||
        qt_fail "n2 logged no 'from the local cache' within 20 s of a restart without etcd" 2
    up_within 2 10
    [[ ${QT_IP[2]} == "$before" ]] || qt_fail "n2 came up from its cache with ${QT_IP[2]}, had $before" 2
    must_ping 1 2
    must_ping 2 1
    qt_step "etcd back"
    t0=$(qt_now)
    qt_etcd_start || qt_fail "etcd did not come back: $(tail -n 3 "$QT_WORK/etcd.log" | tr '\n' ' ')"
    qt_step "waiting for n2 to write $key again (revision > $rev)"
    qt_wait_for $((QT_SYNC + QT_SLACK)) key_written_after "$key" "$rev" ||
        qt_fail "n2 did not write $key within $((QT_SYNC + QT_SLACK)) s of etcd's return" 2
    mid=$(<"${QT_DATA[2]}/machine-id")
    qt_etcdctl get "$key" --print-value-only | grep -q "\"$mid\"" ||
        qt_fail "$key does not carry n2's machine ID $mid" 2
    qt_log "figures: n2 came up from its cache at $before; re-registered $(qt_since "$t0") s after etcd returned"
}

# 5. `etcdctl del --prefix /quantum` under three running nodes: no ping lost
# for 1.5 sync intervals; the config and every node key are back within one.
tc_prefix_wiped() {
    local keys deleted t0
    setup 3
    drill_node 1
    drill_node 2
    drill_node 3
    wait_up 1 2 3
    must_ping 1 2
    must_ping 2 3
    must_ping 3 1
    keys=(/quantum/config "$(node_key 1)" "$(node_key 2)" "$(node_key 3)")
    keys_present "${keys[@]}" || qt_fail "not every key is there before the wipe: ${keys[*]}"
    ping_pairs $((QT_SYNC * 3 / 2)) 1:2 2:3 3:1
    qt_step "etcdctl del --prefix /quantum"
    deleted=$(qt_etcdctl del --prefix /quantum) || qt_fail "etcdctl del failed"
    ((deleted >= 4)) || qt_fail "the wipe deleted only $deleted keys"
    t0=$(qt_now)
    qt_step "waiting for ${keys[*]} to come back"
    qt_wait_for $((QT_SYNC + QT_SLACK)) keys_present "${keys[@]}" ||
        qt_fail "keys missing $((QT_SYNC + QT_SLACK)) s after the wipe: $(for k in "${keys[@]}"; do keys_present "$k" || printf '%s ' "$k"; done)" 1 2 3
    local back_s
    back_s=$(qt_since "$t0")
    no_loss "after the wipe" 1:2 2:3 3:1
    qt_log "figures: $deleted keys wiped, all back in $back_s s; 0 of 3x150 pings lost"
}

# 6. n2's key overwritten with another machine's mapping: n2 exits non-zero with
# `lost private address` within one sync interval; restarted, it gets another
# address and n1 reaches it.
tc_stolen_address() {
    local stolen value t0 rc exit_s
    setup 2
    drill_node 1
    drill_node 2
    wait_up 1 2
    must_ping 1 2
    stolen=${QT_IP[2]}
    value=$(python3 -c 'import base64, json, os, sys
print(json.dumps({"machineID": os.urandom(16).hex(), "privateIP": sys.argv[1], "ipv4": "10.201.100.7",
                  "port": 1099, "publicKey": base64.b64encode(os.urandom(32)).decode()}))' "$stolen")
    qt_step "another machine takes $stolen"
    qt_etcdctl put "$(node_key 2)" "$value" >/dev/null || qt_fail "etcdctl put failed"
    t0=$(qt_now)
    qt_wait_pid "${QT_PID[2]}" $((QT_SYNC + QT_SLACK)) ||
        qt_fail "n2 still running $((QT_SYNC + QT_SLACK)) s after its address was taken" 2
    rc=$QT_LAST_RC exit_s=$(qt_since "$t0")
    QT_PID[2]=
    [[ $rc != 0 ]] || qt_fail "n2 exited 0 after losing its address" 2
    grep -q 'lost private address' "$(qt_node_log 2)" || qt_fail "n2 exited ($rc) without logging 'lost private address'" 2
    drill_node 2
    wait_up 2
    t0=$(qt_now)
    [[ ${QT_IP[2]} != "$stolen" ]] || qt_fail "n2 came back with the taken address $stolen" 2
    reach_within "$t0" 20 2 1
    qt_log "figures: n2 exited with status $rc $exit_s s after $stolen was taken; back at ${QT_IP[2]}, reached from n1 in ${REACH_S} s"
}

# 7. 10,000 mappings written one by one under a running node: a node registered
# afterwards is reachable from it within 2 s of its device coming up, and its
# peak RSS stays under 100 MiB.
tc_churn_10k() {
    local t0 out seed_s rss p1 limit=$((100 * 1024))
    setup 3
    drill_node 1
    drill_node 2
    wait_up 1 2
    must_ping 1 2
    p1=${QT_PID[1]}
    qt_step "writing 10,000 mappings one by one"
    t0=$(qt_now)
    out=$(timeout 150 ip netns exec "$QT_HUB_NS" python3 "$QT_LIB_DIR/../../scripts/seed-mappings.py" \
        --endpoint "http://127.0.0.1:$QT_ETCD_PORT" --count 10000 2>&1) || qt_fail "seeding failed: $out"
    seed_s=$(qt_since "$t0")
    qt_log "$out"
    drill_node 3
    wait_up 3
    t0=$(qt_now)
    [[ ${QT_PID[1]} == "$p1" ]] && qt_node_alive 1 || qt_fail "n1 is no longer the process started before the seeding" 1
    rss=$(qt_rss_peak 1) || qt_fail "cannot read n1's VmHWM" 1
    qt_log "seeded 10000 mappings in $seed_s s; n1 peak RSS $((rss / 1024)) MiB (n2 $(($(qt_rss_peak 2) / 1024)) MiB)"
    reach_within "$t0" 2 3 1
    rss=$(qt_rss_peak 1) || qt_fail "cannot read n1's VmHWM" 1
    ((rss < limit)) || qt_fail "n1's peak RSS is $((rss / 1024)) MiB (bound 100 MiB)" 1
    qt_log "figures: seeded 10000 mappings in $seed_s s; n1 reached n3 ${REACH_S} s after its device came up; n1 peak RSS $((rss / 1024)) MiB"
}
