# shellcheck shell=bash disable=SC2034  # globals are used by run.sh
# Relays (issue 7 §1, last bullet). Sourced by run.sh after cases.sh, whose helpers
# (setup, wait_up, must_ping, capture_start, qt_fail, qt_step …) it uses.
QT_CASES+=(
    "relay_firewall 180"
)

# What n3 is started with; `RELAY_FLAG= run.sh … relay_firewall` shows the case fails without a relay.
: "${RELAY_FLAG=--relay}"

# relay_firewall_on N PEER_IP: in node N's namespace, drop UDP to and from PEER_IP (nftables).
relay_firewall_on() {
    ip netns exec "$(qt_ns "$1")" nft -f - <<NFT
table inet qt_relay_fw {
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr $2 meta l4proto udp counter drop
    }
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr $2 meta l4proto udp counter drop
    }
}
NFT
}

relay_firewall_off() { ip netns exec "$(qt_ns "$1")" nft delete table inet qt_relay_fw; }

# path_of N PEER_IP: the path column of node N's `quantum status` row for PEER_IP.
path_of() {
    ip netns exec "$(qt_ns "$1")" "$QT_BIN" status 2>/dev/null | awk -v p="$2" '$1 == p' |
        grep -Eo 'direct|relayed via [0-9.]+' | head -n 1
}

path_is() { [[ $(path_of "$1" "$2") == "$3" ]]; }

# datagrams PCAP FILTER: how many packets of PCAP match the tcpdump FILTER.
datagrams() { tcpdump -n -r "$1" "$2" 2>/dev/null | wc -l; }

# transfer_rate NAME: send 16 MB n1 -> n2 over TCP through the overlay; sets RATE (Mbit/s, one
# decimal); fails the case if the transfer fails or arrives corrupted.
transfer_rate() {
    local name=$1 f=$QT_WORK/relay-xfer.bin t0 sent us
    [[ -e $f ]] || head -c 16M /dev/urandom >"$f"
    qt_spawn "$(qt_ns 2)" "$QT_WORK/$name.recv.log" "recv-$name" python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "${QT_IP[2]}" 5203 "$QT_WORK/$name.sha" --ready "$QT_WORK/$name.ready" --timeout 60
    local rpid=$QT_LAST_PID
    qt_wait_for 10 test -e "$QT_WORK/$name.ready" || qt_fail "receiver ($name) did not start" 2
    t0=$(qt_now)
    sent=$(timeout 70 ip netns exec "$(qt_ns 1)" python3 "$QT_LIB_DIR/tcpxfer.py" send \
        "${QT_IP[2]}" 5203 "$f" --timeout 60 2>"$QT_WORK/$name.send.err") ||
        qt_fail "transfer ($name) failed: $(tail -n 2 "$QT_WORK/$name.send.err" | tr '\n' ' ')" 1 2
    us=$(($(qt_now) - t0))
    qt_wait_pid "$rpid" 20 || qt_fail "receiver ($name) did not finish" 2
    [[ $(cat "$QT_WORK/$name.sha") == "$sent" ]] || qt_fail "transfer ($name) corrupted (digest mismatch)" 1 2
    RATE=$(awk -v us="$us" 'BEGIN { printf "%.1f", 16 * 1048576 * 8 / us }')
}

# n1 and n2 cannot exchange UDP (a firewall in n1's namespace); n3 offers itself as relay.
# n1 pings n2: the handshake and the data go through n3 (status and capture say so);
# the rule goes: the path turns direct again (status and capture).
tc_relay_firewall() {
    local u1 u2 u3 pcap=$QT_WORK/relayed.pcap pcap2=$QT_WORK/direct.pcap t0 first rtt back rtt2 status
    local via direct other RATE
    setup 3
    qt_node_start 1
    qt_node_start 2
    # shellcheck disable=SC2086  # RELAY_FLAG is empty or one word
    qt_node_start 3 $RELAY_FLAG
    wait_up 1 2 3
    u1=$(qt_underlay_ip 1) u2=$(qt_underlay_ip 2) u3=$(qt_underlay_ip 3)
    must_ping 1 3
    must_ping 2 3

    qt_step "firewall in n1 drops UDP between $u1 and $u2; n1 pings n2"
    relay_firewall_on 1 "$u2" || qt_fail "nft could not install the firewall in n1" 1
    capture_start 1 "$pcap" "udp port $QT_PORT"
    t0=$(qt_now)
    qt_reach 1 "${QT_IP[2]}" 40 || qt_fail "n1 got no reply from n2 through the relay within 40 s" 1 2 3
    first=$(qt_since "$t0")
    qt_ping 1 "${QT_IP[2]}" 10 || qt_fail "n1 cannot ping n2 through the relay" 1 2 3
    rtt=$(qt_ping_rtt)
    qt_wait_for 5 path_is 1 "${QT_IP[2]}" "relayed via ${QT_IP[3]}" ||
        qt_fail "quantum status on n1 does not say 'relayed via ${QT_IP[3]}' for n2: '$(path_of 1 "${QT_IP[2]}")'" 1
    path_is 2 "${QT_IP[1]}" "relayed via ${QT_IP[3]}" ||
        qt_fail "quantum status on n2 does not say 'relayed via ${QT_IP[3]}' for n1: '$(path_of 2 "${QT_IP[1]}")'" 2
    status=$(ip netns exec "$(qt_ns 1)" "$QT_BIN" status 2>&1)
    transfer_rate relayed
    local relayed_rate=$RATE
    capture_stop
    via=$(datagrams "$pcap" "src host $u1 and dst host $u3")
    direct=$(datagrams "$pcap" "src host $u1 and dst host $u2")
    ((via >= 1000)) || qt_fail "only $via datagrams from n1 to the relay n3 while relayed" 1 3
    ((direct == 0)) || qt_fail "$direct datagrams left n1 for n2 directly while the firewall was up" 1 2
    counter_above 3 relay_forwarded 3 || qt_fail "the relay n3 forwarded ${COUNTER_NOW:-?} envelopes" 3
    qt_log "quantum status on n1 (relayed):"$'\n'"$status"

    qt_step "firewall removed: the path must turn direct"
    relay_firewall_off 1 || qt_fail "could not remove the firewall in n1" 1
    t0=$(qt_now)
    qt_wait_for 40 path_is 1 "${QT_IP[2]}" direct ||
        qt_fail "n1 still reports '$(path_of 1 "${QT_IP[2]}")' for n2 40 s after the firewall went" 1 2
    back=$(qt_since "$t0")
    qt_wait_for 5 path_is 2 "${QT_IP[1]}" direct || qt_fail "n2 still reports '$(path_of 2 "${QT_IP[1]}")' for n1" 2
    capture_start 1 "$pcap2" "udp port $QT_PORT"
    qt_ping 1 "${QT_IP[2]}" 10 || qt_fail "n1 cannot ping n2 directly" 1 2
    rtt2=$(qt_ping_rtt)
    capture_stop
    transfer_rate direct
    direct=$(datagrams "$pcap2" "src host $u1 and dst host $u2")
    other=$(datagrams "$pcap2" "src host $u1 and dst host $u3")
    ((direct >= 3)) || qt_fail "only $direct datagrams from n1 to n2 directly after the return" 1 2
    ((other <= 1)) || qt_fail "$other datagrams from n1 still went to the relay after the return" 1 3
    qt_log "figures: relayed: first reply ${first} s after the first ping (2 direct attempts first), RTT ${rtt} ms, n1->n3 datagrams ${via}, n1->n2 direct 0; return to direct ${back} s after the rule went (probe every 20 s), RTT ${rtt2} ms; 16 MB TCP n1->n2 relayed ${relayed_rate} Mbit/s, direct ${RATE} Mbit/s (debug build)"
}
