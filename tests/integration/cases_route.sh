# shellcheck shell=bash disable=SC2034  # globals are used by run.sh
# Floating IPs with failover and gateway mode (issue 6 §1, §2). Sourced by run.sh after
# cases.sh, whose helpers (setup, wait_up, must_ping, qt_fail, qt_step …) it uses.
QT_CASES+=(
    "floating_failover 150"
    "floating_cut_off 120"
    "gateway_forward 150"
    "gateway_unknown_refused 90"
    "floating_survives_reload 120"
)

ROUTE_FLOATING=10.99.2.1
: "${ROUTE_TTL:=5}"   # --datastore-floating-ip-ttl of the floating cases (seconds); override to try others

# has_addr N IP: node N's quantum0 carries IP/32.
has_addr() { ip -n "$(qt_ns "$1")" -4 -o addr show dev "$QT_DEV" 2>/dev/null | grep -q " $2/32 "; }

# floating_node N [ARGS...]: start node N as a candidate for $ROUTE_FLOATING.
floating_node() {
    local n=$1
    shift
    qt_node_start "$n" --floating-ips "$ROUTE_FLOATING" --datastore-floating-ip-ttl "${ROUTE_TTL}s" "$@"
}

# must_hold N BOUND_S: node N gets $ROUTE_FLOATING on its device within BOUND_S.
must_hold() {
    qt_step "n$1 holds $ROUTE_FLOATING"
    qt_wait_for "$2" has_addr "$1" "$ROUTE_FLOATING" || qt_fail "n$1 does not hold $ROUTE_FLOATING after $2 s" "$@"
}

# stamped_ping_start NAME FROM_N IP SECONDS: 10 Hz ping with a timestamp on every reply.
stamped_ping_start() {
    qt_spawn "$(qt_ns "$2")" "$QT_WORK/$1.ping" "ping-$1" ping -D -n -i 0.1 -W 1 -c $(($4 * 10)) "$3"
    QT_BGPING[$1]=$QT_LAST_PID
}

# reply_gap NAME: the longest time (s, 2 decimals) between two successive replies, and the
# number of replies, from a stamped ping's output: "GAP REPLIES".
reply_gap() {
    awk -F'[][]' '/bytes from/ { t = $2 + 0; if (n++) { g = t - last; if (g > max) max = g }; last = t }
        END { printf "%.2f %d\n", max, n }' "$QT_WORK/$1.ping"
}

# replies_at_least NAME COUNT: the stamped ping NAME has had COUNT replies so far.
replies_at_least() { (($(grep -c 'bytes from' "$QT_WORK/$1.ping") >= $2)); }

# stamped_ping_gap NAME FROM_N...: wait for the ping to finish; GAP and REPLIES from it.
stamped_ping_gap() {
    local name=$1
    shift
    qt_wait_pid "${QT_BGPING[$name]}" 60 || qt_fail "ping $name did not finish" "$@"
    read -r GAP REPLIES < <(reply_gap "$name")
    ((REPLIES > 0)) || qt_fail "ping $name got no reply at all: $(tail -n 2 "$QT_WORK/$name.ping" | tr '\n' ' ')" "$@"
}

# floating_trio: n1 holds $ROUTE_FLOATING, n2 competes for it, n3 is a plain node.
floating_trio() {
    setup 3
    floating_node 1
    wait_up 1
    must_hold 1 15 1
    floating_node 2
    qt_node_start 3
    wait_up 2 3
}

# Floating IP: n1 and n2 compete, n3 pings the floating IP. A clean stop of the holder hands
# over at once; a kill -9 of the next holder hands over within TTL + 1 s.
tc_floating_failover() {
    floating_trio
    qt_step "n3 reaches the floating IP"
    qt_ping 3 "$ROUTE_FLOATING" 20 || qt_fail "n3 cannot ping $ROUTE_FLOATING held by n1" 1 3
    has_addr 2 "$ROUTE_FLOATING" && qt_fail "n2 holds $ROUTE_FLOATING too" 1 2
    qt_etcdctl get --print-value-only "/quantum/floating/$ROUTE_FLOATING" | grep -q "\"${QT_IP[1]}\"" ||
        qt_fail "etcd does not name n1 (${QT_IP[1]}) as holder" 1

    qt_step "clean stop of the holder n1 under a 10 Hz ping from n3"
    stamped_ping_start clean 3 "$ROUTE_FLOATING" 6
    qt_wait_for 10 replies_at_least clean 20 || qt_fail "n3's ping to $ROUTE_FLOATING did not get 20 replies before the stop" 1 3
    qt_node_stop 1
    [[ ${QT_EXIT[1]} == 0 ]] || qt_fail "n1 did not stop cleanly (exit ${QT_EXIT[1]})" 1
    must_hold 2 3 2
    stamped_ping_gap clean 2 3
    local clean_gap=$GAP
    awk -v g="$GAP" 'BEGIN { exit !(g < 1.0) }' || qt_fail "clean handover left a ${GAP} s gap (bound 1 s)" 2 3

    qt_step "n1 back as a candidate; kill -9 the holder n2 under a 10 Hz ping from n3"
    floating_node 1
    wait_up 1
    qt_wait_for 5 qt_ping 3 "$ROUTE_FLOATING" 2
    stamped_ping_start kill 3 "$ROUTE_FLOATING" $((ROUTE_TTL + 8))
    qt_wait_for 10 replies_at_least kill 20 || qt_fail "n3's ping to $ROUTE_FLOATING did not get 20 replies before the kill" 2 3
    qt_node_stop 2 KILL
    must_hold 1 $((ROUTE_TTL + 2)) 1
    stamped_ping_gap kill 1 3
    awk -v g="$GAP" -v b=$((ROUTE_TTL + 1)) 'BEGIN { exit !(g <= b) }' ||
        qt_fail "after kill -9 traffic resumed only after ${GAP} s (bound TTL + 1 = $((ROUTE_TTL + 1)) s)" 1 3
    qt_log "figures: floating IP failover gap ${GAP} s after kill -9 (TTL ${ROUTE_TTL} s, bound $((ROUTE_TTL + 1)) s); clean-stop handover gap ${clean_gap} s"
}

# A holder cut off from etcd removes the address before its lease can run out, so the
# other candidate never holds it at the same time; back online, it does not take it back.
tc_floating_cut_off() {
    setup 2
    floating_node 1
    wait_up 1
    must_hold 1 15 1
    floating_node 2
    wait_up 2
    qt_step "cutting n1 off from etcd"
    ip netns exec "$(qt_ns 1)" nft -f - <<NFT || qt_fail "nft could not cut n1 off"
table inet qt_cutoff {
    chain output {
        type filter hook output priority 0; policy accept;
        tcp dport $QT_ETCD_PORT drop
    }
}
NFT
    local t0 dropped="" taken="" both=0 end
    t0=$(qt_now)
    end=$((SECONDS + ROUTE_TTL + 6))
    while ((SECONDS < end)) && [[ -z $taken ]]; do
        local h1=0 h2=0
        has_addr 1 "$ROUTE_FLOATING" && h1=1
        has_addr 2 "$ROUTE_FLOATING" && h2=1
        ((h1 && h2)) && both=1
        [[ -z $dropped && $h1 == 0 ]] && dropped=$(qt_since "$t0")
        [[ -z $taken && $h2 == 1 ]] && taken=$(qt_since "$t0")
        sleep 0.05
    done
    ((both == 0)) || qt_fail "n1 and n2 held $ROUTE_FLOATING at the same time" 1 2
    [[ -n $dropped ]] || qt_fail "n1 kept $ROUTE_FLOATING for more than $((ROUTE_TTL + 6)) s without etcd" 1
    awk -v d="$dropped" -v b=$ROUTE_TTL 'BEGIN { exit !(d <= b) }' ||
        qt_fail "n1 dropped $ROUTE_FLOATING only after ${dropped} s (TTL ${ROUTE_TTL} s)" 1
    [[ -n $taken ]] || qt_fail "n2 did not take $ROUTE_FLOATING over" 2
    ip netns exec "$(qt_ns 1)" nft delete table inet qt_cutoff
    qt_step "n1 back in touch with etcd: it competes again, and n2 keeps the address"
    qt_wait_for 15 grep -q "floating IP lease is gone; competing again" "$(qt_node_log 1)" ||
        qt_fail "n1 did not compete again once etcd answered" 1
    local i
    for ((i = 0; i < 30; i++)); do
        has_addr 1 "$ROUTE_FLOATING" && qt_fail "n1 took $ROUTE_FLOATING back while n2 holds it" 1 2
        sleep 0.1
    done
    has_addr 2 "$ROUTE_FLOATING" || qt_fail "n2 lost $ROUTE_FLOATING" 2
    qt_log "figures: holder cut off from etcd dropped the floating IP after ${dropped} s (TTL ${ROUTE_TTL} s); the other candidate took it after ${taken} s; never two holders"
}

# gateway_topology: namespace "out" reachable only from n1 through a veth (10.201.77.0/24).
GW_OUT=10.201.77.2
GW_LINK=10.201.77.1
GW_PUBLIC=10.201.88.1
GW_ETCD=10.201.66.254
gateway_topology() {
    GW_NS=${QT_NS_PREFIX}out
    qt_netns_add "$GW_NS" || qt_fail "could not add the outside host's namespace"
    ip -n "$(qt_ns 1)" link add ext0 type veth peer name eth0 netns "$GW_NS" &&
        ip -n "$(qt_ns 1)" addr add "$GW_LINK/24" dev ext0 && ip -n "$(qt_ns 1)" link set ext0 up &&
        ip -n "$GW_NS" addr add "$GW_OUT/24" dev eth0 && ip -n "$GW_NS" link set eth0 up ||
        qt_fail "could not build the outside host's link"
}

# nft_table N: node N's nftables table of the gateway (empty when absent).
nft_table() { ip netns exec "$(qt_ns "$1")" nft list table inet "quantum_$QT_DEV" 2>/dev/null; }
forwarding() { ip netns exec "$(qt_ns "$1")" cat /proc/sys/net/ipv4/ip_forward; }
policy_rules() { ip -n "$(qt_ns "$1")" -4 rule show | grep -cE '^1099[01]:'; }

# Gateway mode: n2 (--forward --gateway n1) reaches a host only n1 can reach, by ping and TCP,
# masqueraded behind n1; n1's underlay endpoint (behind n2's default route) and etcd stay on the
# underlay; each side cleans up on stop, and after a kill -9 on its next start.
tc_gateway_forward() {
    local before sent got src rtt
    setup 2
    gateway_topology
    before=$(forwarding 1)
    qt_ping 2 "$GW_OUT" 2 && qt_fail "n2 reaches $GW_OUT before any gateway is set up" 2
    # n1's public address is reachable from n2 only through the hub (a router), i.e. through
    # n2's default route: the tunnel must not capture quantum's own packets to it.
    ip -n "$(qt_ns 1)" addr add "$GW_PUBLIC/32" dev lo &&
        ip netns exec "$QT_HUB_NS" sysctl -qw net.ipv4.ip_forward=1 &&
        ip -n "$QT_HUB_NS" route add "$GW_PUBLIC/32" via "$(qt_underlay_ip 1)" ||
        qt_fail "could not route n1's public address $GW_PUBLIC through the hub"
    # etcd also answers at an address the client reaches only through its default route (the
    # hub DNATs it to etcd): the client must pin it to the underlay with a /32 route.
    ip -n "$QT_HUB_NS" addr add "$GW_ETCD/32" dev lo &&
        ip netns exec "$QT_HUB_NS" nft -f - <<NFT || qt_fail "could not give etcd the address $GW_ETCD"
table ip qt_etcd_alias {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $GW_ETCD tcp dport $QT_ETCD_PORT dnat to $QT_HUB_IP
    }
}
NFT
    set -- --serve-gateway --public-v4 "$GW_PUBLIC" --listen-ip "$GW_PUBLIC"
    qt_node_start 1 "$@"
    wait_up 1
    qt_wait_for 5 nft_table 1 || qt_fail "n1 has no nftables table inet quantum_$QT_DEV" 1
    [[ $(forwarding 1) == 1 ]] || qt_fail "n1 did not enable IPv4 forwarding" 1
    QT_ENDPOINTS=$GW_ETCD:$QT_ETCD_PORT qt_node_start 2 --forward --gateway "${QT_IP[1]}"
    wait_up 2
    qt_wait_for 5 test "$(policy_rules 2)" = 2 || qt_fail "n2 has not installed its two policy rules" 2
    must_ping 2 1

    qt_step "n2 pings the outside host $GW_OUT through n1"
    qt_spawn "$GW_NS" "$QT_WORK/out.tcpdump" tcpdump tcpdump -l -n -c 1 -i eth0 icmp and 'icmp[icmptype] == icmp-echo'
    local dump=$QT_LAST_PID
    qt_wait_for 10 grep -q 'listening on' "$QT_WORK/out.tcpdump" || qt_fail "tcpdump did not start"
    qt_ping 2 "$GW_OUT" 20 || qt_fail "n2 cannot ping $GW_OUT through the gateway: $(tail -n 2 <<<"$QT_PING_OUT" | tr '\n' ' ')" 1 2
    rtt=$(qt_ping_rtt)
    qt_wait_pid "$dump" 10 || qt_fail "tcpdump on the outside host saw no echo request"
    src=$(awk '/ICMP echo request/ {print $3; exit}' "$QT_WORK/out.tcpdump")
    [[ $src == "$GW_LINK" ]] || qt_fail "the outside host saw source '$src', not the gateway's $GW_LINK (no masquerade)" 1

    qt_step "n2 sends 2 MB over TCP to the outside host"
    head -c 2M /dev/urandom >"$QT_WORK/gw.bin"
    qt_spawn "$GW_NS" "$QT_WORK/gwrecv.log" recv python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "$GW_OUT" 5301 "$QT_WORK/gwrecv.sha" --ready "$QT_WORK/gwrecv.ready" --timeout 30
    local rpid=$QT_LAST_PID
    qt_wait_for 10 test -e "$QT_WORK/gwrecv.ready" || qt_fail "receiver did not start"
    sent=$(timeout 40 ip netns exec "$(qt_ns 2)" python3 "$QT_LIB_DIR/tcpxfer.py" send "$GW_OUT" 5301 \
        "$QT_WORK/gw.bin" --timeout 30 2>"$QT_WORK/gwsend.err") ||
        qt_fail "TCP through the gateway failed: $(tail -n 2 "$QT_WORK/gwsend.err" | tr '\n' ' ')" 1 2
    qt_wait_pid "$rpid" 20 || qt_fail "receiver did not finish" 1 2
    got=$(cat "$QT_WORK/gwrecv.sha" 2>/dev/null)
    [[ $got == "$sent" ]] || qt_fail "TCP digest mismatch: sent '$sent', received '$got'" 1 2

    qt_step "etcd stays on the underlay for n2"
    ip -n "$(qt_ns 2)" -4 route get "$GW_ETCD" | grep -q "via $QT_HUB_IP dev eth0" ||
        qt_fail "n2 routes etcd ($GW_ETCD) into the tunnel: $(ip -n "$(qt_ns 2)" -4 route get "$GW_ETCD" | head -n 1)" 2
    grep -q "routes to $GW_ETCD" "$(qt_node_log 2)" || qt_fail "n2 did not log the /32 route to etcd at $GW_ETCD" 2
    timeout 10 ip netns exec "$(qt_ns 2)" etcdctl --endpoints "http://$GW_ETCD:$QT_ETCD_PORT" --dial-timeout 2s \
        endpoint health >/dev/null 2>&1 || qt_fail "etcd is not reachable from n2 at $GW_ETCD" 2

    qt_step "after a kill -9 the next start clears what the crashed run left"
    qt_node_stop 2 KILL
    [[ $(policy_rules 2) == 2 ]] || qt_fail "expected the killed client's 2 rules to be left behind" 2
    QT_ENDPOINTS=$GW_ETCD:$QT_ETCD_PORT qt_node_start 2 --forward --gateway "${QT_IP[1]}"
    wait_up 2
    qt_wait_for 10 qt_ping 2 "$GW_OUT" 2 || qt_fail "n2 cannot reach $GW_OUT after its restart" 1 2
    [[ $(policy_rules 2) == 2 ]] || qt_fail "the restarted client has $(policy_rules 2) rules, not 2" 2
    qt_node_stop 1 KILL
    [[ $(forwarding 1) == 1 ]] || qt_fail "expected the killed gateway to leave forwarding on" 1
    qt_node_start 1 "$@"
    wait_up 1
    qt_wait_for 20 qt_ping 2 "$GW_OUT" 2 || qt_fail "n2 cannot reach $GW_OUT after the gateway's restart" 1 2

    qt_step "stop: n2 removes its rules, n1 its table and forwarding"
    qt_node_stop 2
    [[ $(policy_rules 2) == 0 ]] || qt_fail "n2 left its policy rules: $(ip -n "$(qt_ns 2)" rule show | tr '\n' ' ')" 2
    [[ -z $(ip -n "$(qt_ns 2)" -4 route show table 1099 2>/dev/null) ]] || qt_fail "n2 left routing table 1099" 2
    [[ -z $(ip -n "$(qt_ns 2)" -4 route show proto 220) ]] || qt_fail "n2 left its /32 route to etcd" 2
    qt_node_stop 1
    nft_table 1 >/dev/null && qt_fail "n1 left its nftables table" 1
    [[ $(forwarding 1) == "$before" ]] || qt_fail "n1 left ip_forward at $(forwarding 1), was $before" 1
    qt_log "figures: gateway ping RTT ${rtt} ms (n2 -> $GW_OUT through n1), 2 MB over TCP, masqueraded as $src"
}

# A --forward node whose --gateway is no node is refused at start-up with a clear line; one
# whose gateway does not serve reaches nothing outside, and the gateway counts the drops.
tc_gateway_unknown_refused() {
    local drops
    setup 2
    qt_node_start 1
    wait_up 1
    qt_node_start 2 --forward --gateway 10.99.0.77
    qt_step "n2 must refuse to start"
    qt_wait_pid "${QT_PID[2]}" 30 || qt_fail "n2 still runs with an unknown gateway" 2
    [[ $QT_LAST_RC != 0 ]] || qt_fail "n2 exited 0 with an unknown gateway" 2
    grep -q -- '--gateway 10.99.0.77 is not a known node' "$(qt_node_log 2)" || qt_fail "no clear refusal in the log" 2
    [[ $(policy_rules 2) == 0 ]] || qt_fail "the refused node left policy rules" 2

    qt_step "a gateway that does not serve drops the client's outside traffic"
    QT_PID[2]=
    qt_node_start 2 --forward --gateway "${QT_IP[1]}"
    wait_up 2
    must_ping 2 1
    qt_ping 2 192.0.2.1 2 && qt_fail "n2 reached 192.0.2.1 through a node that does not serve" 1 2
    drops=$(counter 1 drop_destination) || qt_fail "no counters from n1: $drops" 1
    ((drops >= 1)) || qt_fail "n1 did not count the dropped outside packets (drop_destination=$drops)" 1
    qt_log "figures: non-serving gateway dropped $drops outside packets (drop_destination)"
}

# floating_lease: the lease ID etcd binds $ROUTE_FLOATING's key to (empty if none).
floating_lease() {
    qt_etcdctl get -w fields "/quantum/floating/$ROUTE_FLOATING" | awk '$1 == "\"Lease\"" {print $3; exit}'
}

# A holder's rolling restart (SIGHUP) keeps its floating IP: the successor goes on renewing
# the predecessor's lease, so the key keeps its lease and holder for more than two TTLs
# after the reload, the other candidate never takes it, and a 100 Hz ping from n3 to the
# floating IP loses nothing.
tc_floating_survives_reload() {
    local before after seconds=$((2 * ROUTE_TTL + 4))
    floating_trio
    qt_wait_for 10 qt_ping 3 "$ROUTE_FLOATING" 2 || qt_fail "n3 cannot ping $ROUTE_FLOATING held by n1" 1 3
    before=$(floating_lease)
    [[ -n $before && $before != 0 ]] || qt_fail "the key of $ROUTE_FLOATING has no lease" 1
    qt_step "100 Hz ping n3 -> $ROUTE_FLOATING for ${seconds} s across a reload of its holder n1"
    qt_spawn "$(qt_ns 3)" "$QT_WORK/floating.ping" ping-floating ping -n -q -i 0.01 -W 1 -c $((seconds * 100)) "$ROUTE_FLOATING"
    QT_BGPING[floating]=$QT_LAST_PID
    qt_wait_dev_rx 1 100 || qt_fail "the 100 Hz ping to $ROUTE_FLOATING did not reach n1" 1 3
    reload_once 1
    qt_bgping_result floating $((seconds + 30)) || qt_fail "the ping to $ROUTE_FLOATING did not end with a summary" 1 3
    ((QT_PING_TX > 0 && QT_PING_RX == QT_PING_TX)) ||
        qt_fail "100 Hz ping to $ROUTE_FLOATING lost $((QT_PING_TX - QT_PING_RX)) of $QT_PING_TX across n1's reload" 1 3
    after=$(floating_lease)
    [[ $after == "$before" ]] || qt_fail "the key of $ROUTE_FLOATING is bound to lease '$after', not '$before', ${seconds} s after the reload" 1 2
    has_addr 1 "$ROUTE_FLOATING" || qt_fail "n1's successor does not carry $ROUTE_FLOATING" 1
    has_addr 2 "$ROUTE_FLOATING" && qt_fail "n2 took $ROUTE_FLOATING during n1's reload" 1 2
    qt_etcdctl get --print-value-only "/quantum/floating/$ROUTE_FLOATING" | grep -q "\"${QT_IP[1]}\"" ||
        qt_fail "etcd no longer names n1 (${QT_IP[1]}) as holder" 1
    qt_log "figures: floating IP held across a reload: 100 Hz ping $QT_PING_TX sent, 0 lost; same lease $before after $((seconds - 1)) s (TTL ${ROUTE_TTL} s); frozen ${RELOAD_FREEZE_MS:-?} ms"
}
