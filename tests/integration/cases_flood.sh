# shellcheck shell=bash disable=SC2034  # globals are used by run.sh
# Load shedding under a handshake flood (issue 7 §3). Sourced by run.sh after cases.sh,
# whose helpers (setup, wait_up, must_ping, counter, capture_start, qt_fail …) it uses.
QT_CASES+=(
    "handshake_flood 240"
)

: "${FLOOD_COUNT:=50000}"   # initiations the flooder sends
: "${FLOOD_SECONDS:=10}"    # over this many seconds
FLOOD_HOST=60               # the flooder's underlay address: $QT_UNDERLAY.60
FLOOD_SOURCES=64            # it also sends from $QT_UNDERLAY.100 … .163 (a botnet, or spoofing)
FLOOD_IPERF_SECONDS=4       # length of each throughput measurement (after 1 s not counted)

# flood_ns: the flooder's namespace on the underlay (not a node).
flood_ns() { printf '%s\n' "${QT_NS_PREFIX}flood"; }

# iperf_mbits LABEL: an iperf3 TCP stream n2 -> n1 through the tunnel for
# $FLOOD_IPERF_SECONDS s, after a first second left out (slow start); prints its
# received rate in Mbit/s (integer).
iperf_mbits() {
    local json=$QT_WORK/iperf-$1.json
    ip netns exec "$(qt_ns 2)" timeout $((FLOOD_IPERF_SECONDS + 15)) \
        iperf3 -c "${QT_IP[1]}" -p 5201 -t "$FLOOD_IPERF_SECONDS" -O 1 -J >"$json" 2>&1 ||
        qt_fail "iperf3 n2 -> n1 ($1) failed: $(tail -c 300 "$json" | tr '\n' ' ')" 1 2
    python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$json" ||
        qt_fail "no throughput in iperf3's report ($1)" 1 2
}

# iperf_listening: the iperf3 server in n1 accepts connections.
iperf_listening() { ip netns exec "$(qt_ns 1)" ss -Hltn 'sport = :5201' | grep -q LISTEN; }

# public_key N: node N's static public key (base64) as its etcd mapping gives it.
public_key() {
    qt_etcdctl get --print-value-only "$(node_key "$1")" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["publicKey"])'
}

# flood_counters: n1's load-shedding counters, as name=value pairs.
flood_counters() {
    local pairs name out=
    pairs=$(qt_counters 1) || { echo "no counters from n1"; return; }
    for name in cookie_replies_sent drop_handshake_mac2 drop_handshake_mac1 drop_handshake_backlog \
        handshakes_rejected handshakes_completed drop_initiation_source_rate drop_initiation_peer_rate; do
        out+=" $name=$(qt_counter_get "$pairs" "$name")"
    done
    printf '%s\n' "${out# }"
}

# A flood of $FLOOD_COUNT valid-looking initiations (valid mac1 for n1's key, random
# contents, 130 source ports on 65 addresses, every tenth a replay of a real initiation n2
# sent n1) in $FLOOD_SECONDS s against n1: n1 does Diffie-Hellman for at most 2 % of them,
# an iperf3 stream n2 -> n1 keeps >= 80 % of its throughput, and n3, started during the
# flood, completes its handshake with n1 before it ends. The flooder runs at nice 19: it
# stands for other machines, not for a rival of n1 for the CPU.
tc_handshake_flood() {
    local before during after flood_pid key cap replies= sources i
    setup 3
    qt_step "flooder namespace on the underlay"
    qt_attach_ns "$(flood_ns)" "$FLOOD_HOST" qtvflood || qt_fail "could not build the flooder's namespace"
    sources=$(qt_underlay_ip "$FLOOD_HOST")
    for ((i = 0; i < FLOOD_SOURCES; i++)); do
        ip -n "$(flood_ns)" addr add "$(qt_underlay_ip $((100 + i)))/24" dev eth0 ||
            qt_fail "could not give the flooder address $(qt_underlay_ip $((100 + i)))"
        sources+=",$(qt_underlay_ip $((100 + i)))"
    done

    qt_node_start 1
    wait_up 1
    cap=$QT_WORK/initiations.pcap
    qt_node_start 2
    wait_up 2
    must_ping 2 1
    # n2's first process may have answered a handshake of n1's (n1 asks new peers where it
    # sees them) rather than sent one; a restarted n2 has no session and initiates to n1.
    qt_step "capture an initiation n2 sends n1: restart n2"
    capture_start 1 "$cap" udp dst port "$QT_PORT" and dst host "$(qt_underlay_ip 1)"
    qt_node_stop 2
    qt_node_start 2
    wait_up 2
    must_ping 2 1
    capture_stop
    key=$(public_key 1) || qt_fail "no public key in n1's mapping" 1

    qt_step "iperf3 server on n1, throughput before the flood"
    qt_spawn "$(qt_ns 1)" "$QT_WORK/iperf3-server.log" iperf3 iperf3 -s -B "${QT_IP[1]}" -p 5201
    qt_wait_for 10 iperf_listening || qt_fail "iperf3 server did not start: $(tr '\n' ' ' <"$QT_WORK/iperf3-server.log")"
    before=$(iperf_mbits before) || exit 1

    qt_step "flood: $FLOOD_COUNT initiations in $FLOOD_SECONDS s to n1"
    qt_spawn "$(flood_ns)" "$QT_WORK/flood.log" flood \
        nice -n 19 python3 "$QT_LIB_DIR/flood.py" --to "$(qt_underlay_ip 1)" --port "$QT_PORT" --public-key "$key" \
        --count "$FLOOD_COUNT" --seconds "$FLOOD_SECONDS" --replay "$cap" --sources "$sources" --sockets 130
    flood_pid=$QT_LAST_PID
    qt_wait_for 5 grep -q '^flood: started' "$QT_WORK/flood.log" ||
        qt_fail "the flooder did not start: $(tr '\n' ' ' <"$QT_WORK/flood.log")"
    during=$(iperf_mbits during) || exit 1
    qt_step "n3 starts during the flood"
    qt_node_start 3
    wait_up 3
    must_ping 3 1 "$FLOOD_SECONDS"
    qt_alive "$flood_pid" "$(qt_recorded_start "$flood_pid")" ||
        qt_fail "n3 reached n1 only after the flood ended: $(tr '\n' ' ' <"$QT_WORK/flood.log")" 1 3
    replies=$(counter 3 cookie_replies_accepted)

    qt_step "waiting for the flood to end"
    qt_wait_pid "$flood_pid" $((FLOOD_SECONDS + 20)) || qt_fail "the flooder did not finish"
    [[ $QT_LAST_RC == 0 ]] || qt_fail "the flooder failed: $(tr '\n' ' ' <"$QT_WORK/flood.log")"
    after=$(iperf_mbits after) || exit 1

    qt_log "figures: iperf3 n2->n1 Mbit/s before=$before during=$during after=$after;" \
        "n1 $(flood_counters); n3 cookie_replies_accepted=$replies; $(grep '^flood: sent' "$QT_WORK/flood.log")"
    counter_above 1 cookie_replies_sent 0 || qt_fail "n1 sent no cookie reply under the flood" 1
    # Diffie-Hellman on flood messages (they fail after it): at most 2 % of them, those that
    # arrive before the load is noticed.
    ! counter_above 1 handshakes_rejected $((FLOOD_COUNT / 50)) ||
        qt_fail "n1 did Diffie-Hellman for $COUNTER_NOW flood initiations (more than 2 %)" 1
    ((during * 100 >= before * 80)) ||
        qt_fail "throughput during the flood ${during} Mbit/s is below 80 % of ${before} Mbit/s before it" 1 2
}
