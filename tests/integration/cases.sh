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
    ((total >= 1000)) || qt_fail "only $total packets captured on n1's eth0 (expected >= 1000 for 8 MB)" 1 2
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
    mkdir -p "$data"
    timeout 30 ip netns exec "$(qt_ns 2)" "$QT_BIN" --datastore-endpoints "$QT_HUB_IP:$QT_ETCD_PORT" \
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
    sleep 1
    after=$(counter 2 "$name") || qt_fail "no counters after resending ($after)" 2
    ((after > before)) || qt_fail "$name did not increase ($before -> $after); $out" 2
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
