# shellcheck shell=bash disable=SC2034  # globals are used by run.sh
# NAT traversal and roaming (issue 7 §1). Sourced by run.sh after cases.sh, whose helpers
# (qt_fail, qt_step, wait_up, must_ping …) and lib.sh's qt_* it uses.
QT_CASES+=(
    "nat_direct 150"
    "underlay_move 90"
)

: "${NAT_UDP_TIMEOUT:=5}"   # the routers' UDP conntrack timeout (s): bindings die this long after the last packet
: "${NAT_KEEPALIVE:=2s}"    # --keepalive of the nat_direct nodes (override with 0 to see the idle check fail)
NAT_IDLE=$((NAT_UDP_TIMEOUT * 2 + 2))

# nat_router NAME HOST NET N: router namespace ${QT_NS_PREFIX}NAME with its outside leg on the
# underlay ($QT_UNDERLAY.HOST) and an inside segment 10.201.NET.0/24 holding node N's namespace
# (10.201.NET.2, default route via the router at .1). The router masquerades what leaves its
# outside leg (Linux MASQUERADE), drops new connections coming in on it (the firewall of any
# home or cloud router: an unsolicited packet leaves no conntrack entry behind, which would
# otherwise make MASQUERADE pick another port for the node's own packets to that address)
# and its UDP conntrack entries expire after $NAT_UDP_TIMEOUT s.
nat_router() {
    local rns=${QT_NS_PREFIX}$1 host=$2 net=10.201.$3 nns
    nns=$(qt_ns "$4")
    qt_attach_ns "$rns" "$host" "qtv$1" && qt_netns_add "$nns" &&
        ip -n "$rns" link add in0 type veth peer name eth0 netns "$nns" &&
        ip -n "$rns" addr add "$net.1/24" dev in0 && ip -n "$rns" link set in0 up &&
        ip netns exec "$nns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 &&
        ip -n "$nns" addr add "$net.2/24" dev eth0 && ip -n "$nns" link set eth0 up &&
        ip -n "$nns" route add default via "$net.1" &&
        ip netns exec "$rns" sysctl -qw net.ipv4.ip_forward=1 || return 1
    ip netns exec "$rns" nft -f - <<NFT || return 1
table ip qt_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" masquerade
    }
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "eth0" ct state new drop
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "eth0" ct state new drop
    }
}
NFT
    # The conntrack timeouts are per network namespace (they exist once the NAT rule loaded conntrack).
    ip netns exec "$rns" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$NAT_UDP_TIMEOUT" \
        net.netfilter.nf_conntrack_udp_timeout_stream="$NAT_UDP_TIMEOUT"
}

# udp_between FILE A B: how many UDP datagrams from A to B the capture FILE holds.
udp_between() { tcpdump -r "$1" -n "udp and src host $2 and dst host $3" 2>/dev/null | wc -l; }

# published_candidates N: the candidates in node N's mapping in etcd.
published_candidates() {
    qt_etcdctl get --print-value-only "/quantum/nodes/${QT_IP[$1]}" | grep -o '"candidates":\[[^]]*\]'
}

# Two nodes, each behind its own MASQUERADE router, and n3 on the "internet" (the hub's
# bridge, with etcd). Started like public nodes, n1 and n2 learn their routers' outside
# addresses, publish them, and ping each other over a direct path between the two routers
# (a capture on the hub shows it); the NAT bindings outlive an idle period longer than the
# routers' UDP conntrack timeout thanks to --keepalive $NAT_KEEPALIVE.
# routers_exchanged PCAP A B COUNT: the capture holds at least COUNT datagrams each way
# between addresses A and B.
routers_exchanged() {
    (($(udp_between "$1" "$2" "$3") >= $4 && $(udp_between "$1" "$3" "$2") >= $4))
}

tc_nat_direct() {
    local ra=$QT_UNDERLAY.11 rb=$QT_UNDERLAY.12 t0 first cap
    qt_step "internet (hub + etcd + n3) and two MASQUERADE routers with n1 and n2 behind them"
    qt_hub_up && qt_node_ns_up 3 || qt_fail "could not build the internet segment"
    nat_router ra 11 61 1 || qt_fail "could not build router A and n1's segment"
    nat_router rb 12 62 2 || qt_fail "could not build router B and n2's segment"
    [[ $(ip netns exec "${QT_NS_PREFIX}ra" sysctl -n net.netfilter.nf_conntrack_udp_timeout) == "$NAT_UDP_TIMEOUT" ]] ||
        qt_fail "router A's UDP conntrack timeout is not $NAT_UDP_TIMEOUT s"
    qt_etcd_start || qt_fail "etcd did not start: $(tail -n 3 "$QT_WORK/etcd.log" | tr '\n' ' ')"
    qt_node_start 3 --keepalive "$NAT_KEEPALIVE"
    wait_up 3

    cap=$QT_WORK/hub.pcap
    qt_spawn "$QT_HUB_NS" "$cap.log" tcpdump tcpdump -i "$QT_BRIDGE" -n -U -s 128 -w "$cap" udp port "$QT_PORT"
    local cap_pid=$QT_LAST_PID
    qt_wait_for 10 grep -q 'listening on' "$cap.log" || qt_fail "tcpdump did not start: $(tr '\n' ' ' <"$cap.log")"

    qt_step "n1 and n2 start behind their routers, no extra options"
    t0=$(qt_now)
    qt_node_start 1 --keepalive "$NAT_KEEPALIVE"
    qt_node_start 2 --keepalive "$NAT_KEEPALIVE"
    wait_up 1 2
    qt_step "n1 pings n2 until the first reply"
    qt_reach 1 "${QT_IP[2]}" 60 || qt_fail "n1 never reached n2 (n1 publishes $(published_candidates 1), n2 $(published_candidates 2))" 1 2 3
    first=$(qt_since "$t0")
    qt_log "n1 and n2 publish $(published_candidates 1) and $(published_candidates 2)"
    published_candidates 1 | grep -q "\"$ra:$QT_PORT\"" || qt_fail "n1 does not publish router A's $ra:$QT_PORT" 1
    published_candidates 2 | grep -q "\"$rb:$QT_PORT\"" || qt_fail "n2 does not publish router B's $rb:$QT_PORT" 2
    must_ping 2 1 10

    qt_step "20 pings n1 -> n2: the capture on the internet side shows them between the routers"
    ip netns exec "$(qt_ns 1)" ping -n -q -c 20 -i 0.05 -W 2 "${QT_IP[2]}" >/dev/null ||
        qt_fail "the 20 pings n1 -> n2 were not all answered" 1 2
    # tcpdump writes each packet as it comes (-U): wait for the 20 pings each way to be in the file.
    qt_wait_for 5 routers_exchanged "$cap" "$ra" "$rb" 20
    qt_stop_pid "$cap_pid" INT 5
    local ab ba
    ab=$(udp_between "$cap" "$ra" "$rb")
    ba=$(udp_between "$cap" "$rb" "$ra")
    ((ab >= 20 && ba >= 20)) ||
        qt_fail "the capture shows $ab datagrams router A -> B and $ba B -> A for 20 pings and more (want >= 20 each)" 1 2

    qt_step "idle for $NAT_IDLE s (conntrack UDP timeout $NAT_UDP_TIMEOUT s); the bindings must survive"
    # The idle time is the condition under test, not a wait for an event: it must outlast
    # the routers' conntrack timeout, and only keepalives may cross meanwhile.
    local kept
    kept=$(counter 1 persistent_keepalives_sent)
    sleep "$NAT_IDLE"
    (($(counter 1 persistent_keepalives_sent) > kept)) || qt_fail "n1 sent no persistent keepalive in $NAT_IDLE s idle" 1
    ip netns exec "$(qt_ns 1)" ping -n -q -c 3 -i 0.2 -W 1 "${QT_IP[2]}" >/dev/null ||
        qt_fail "after $NAT_IDLE s idle the first pings n1 -> n2 were lost (NAT binding gone?)" 1 2
    qt_log "figures: start to first direct ping n1 -> n2 through two MASQUERADE routers ${first} s; 20 pings = $ab datagrams A->B, $ba B->A on the internet side; the binding held over ${NAT_IDLE} s idle (conntrack UDP timeout ${NAT_UDP_TIMEOUT} s, --keepalive $NAT_KEEPALIVE)"
}

# A node pinging a peer gets a new underlay address while the ping runs: traffic resumes
# without a restart once its peer sees an authenticated packet from the new address.
tc_underlay_move() {
    local moved=$QT_UNDERLAY.51
    setup 2
    qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    must_ping 1 2
    qt_step "n1 pings n2 at 10 Hz while its underlay address moves to $moved"
    stamped_ping_start move 1 "${QT_IP[2]}" 12
    qt_wait_for 10 replies_at_least move 20 || qt_fail "n1's ping to n2 did not get 20 replies before the move" 1 2
    ip -n "$(qt_ns 1)" addr del "$(qt_underlay_ip 1)/24" dev eth0 &&
        ip -n "$(qt_ns 1)" addr add "$moved/24" dev eth0 &&
        ip -n "$(qt_ns 1)" route add default via "$QT_HUB_IP" dev eth0 || qt_fail "could not move n1's address" 1
    stamped_ping_gap move 1 2
    awk -v g="$GAP" 'BEGIN { exit !(g <= 3.0) }' || qt_fail "traffic stopped for ${GAP} s after the move (bound 3 s)" 1 2
    ((REPLIES >= 80)) || qt_fail "only $REPLIES of 120 pings answered across the move" 1 2
    qt_alive "${QT_PID[1]}" || qt_fail "n1 died" 1
    qt_log "figures: underlay address change under a 10 Hz ping: ${GAP} s without replies, $REPLIES/120 replies, no restart"
}
