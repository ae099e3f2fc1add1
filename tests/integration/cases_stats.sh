# shellcheck shell=bash disable=SC2034  # globals are used by run.sh and lib.sh
# Stats endpoint cases (issue 6 §3): /stats, /metrics, /peers and `quantum status`
# checked against a known number of pings. Sourced by run.sh after cases.sh.
QT_CASES+=("stats_endpoint 150")

# stats_get N PATH: the body of http://127.0.0.1:1099PATH in node N's namespace.
stats_get() {
    ip netns exec "$(qt_ns "$1")" python3 -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://127.0.0.1:1099$2"
}

# json_eval JSON EXPR: the Python expression EXPR evaluated on the parsed JSON `d`.
json_eval() { python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# metric TEXT SAMPLE: the value of the Prometheus sample `name{labels}` in TEXT (2.0 as 2).
metric() { awk -v s="$2" '$1 == s {print $2 + 0; exit}' <<<"$1"; }

# link_counts N PEER_IP: "txPackets txBytes rxPackets rxBytes" of N's link to PEER_IP (/stats).
link_counts() {
    local doc
    doc=$(stats_get "$1" /stats) || qt_fail "n$1's /stats did not answer" "$1"
    json_eval "$doc" "' '.join(str(d[k]['links']['$2'][f]) for k in ('tx', 'rx') for f in ('packets', 'bytes'))"
}

tc_stats_endpoint() {
    local i before after b2 a2 b3 a3 metrics peers node status json ip1 ip2 ip3 out rc tp0 tb0 rp0 rb0 tp1 tb1 rp1 rb1
    setup 3
    for i in 1 2 3; do qt_node_start "$i"; done
    wait_up 1 2 3
    ip1=${QT_IP[1]} ip2=${QT_IP[2]} ip3=${QT_IP[3]}
    for i in 1 2 3; do
        qt_step "n$i's stats endpoint answers"
        qt_wait_for 10 stats_get "$i" /node || qt_fail "n$i's stats endpoint does not answer on 127.0.0.1:1099" "$i"
    done
    must_ping 1 2
    must_ping 1 3

    qt_step "50 pings of 128-byte packets n1 -> n2"
    before=$(link_counts 1 "$ip2") b2=$(link_counts 2 "$ip1") b3=$(link_counts 1 "$ip3")
    out=$(ip netns exec "$(qt_ns 1)" ping -n -q -c 50 -i 0.02 -s 100 -W 2 "$ip2" 2>&1) ||
        qt_fail "ping -c 50 n1 -> n2 failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')" 1 2
    grep -q ' 0% packet loss' <<<"$out" || qt_fail "pings were lost: $(grep loss <<<"$out")" 1 2
    after=$(link_counts 1 "$ip2") a2=$(link_counts 2 "$ip1") a3=$(link_counts 1 "$ip3")
    read -r tp0 tb0 rp0 rb0 <<<"$before"
    read -r tp1 tb1 rp1 rb1 <<<"$after"
    qt_log "figures: n1 link to n2 grew by tx $((tp1 - tp0)) packets/$((tb1 - tb0)) bytes, rx $((rp1 - rp0)) packets/$((rb1 - rb0)) bytes (50 echo requests and replies of 128 bytes sent)"
    # The link carries nothing else, so the counts are exact: 50 × (20 IP + 8 ICMP + 100) bytes.
    [[ $((tp1 - tp0)) == 50 && $((tb1 - tb0)) == 6400 ]] ||
        qt_fail "n1's /stats tx link to n2 grew by $((tp1 - tp0)) packets/$((tb1 - tb0)) bytes, not 50/6400" 1 2
    [[ $((rp1 - rp0)) == 50 && $((rb1 - rb0)) == 6400 ]] ||
        qt_fail "n1's /stats rx link from n2 grew by $((rp1 - rp0)) packets/$((rb1 - rb0)) bytes, not 50/6400" 1 2
    read -r tp0 tb0 rp0 rb0 <<<"$b2"
    read -r tp1 tb1 rp1 rb1 <<<"$a2"
    [[ $((rp1 - rp0)) == 50 && $((tp1 - tp0)) == 50 ]] ||
        qt_fail "n2's /stats link to n1 grew by rx $((rp1 - rp0)), tx $((tp1 - tp0)) packets, not 50 each" 1 2
    [[ $b3 == "$a3" ]] || qt_fail "n1's link to n3 changed during pings to n2: $b3 -> $a3" 1

    qt_step "/metrics, /peers, /node and quantum status agree with /stats"
    read -r tp1 tb1 rp1 rb1 <<<"$after"
    metrics=$(stats_get 1 /metrics) || qt_fail "n1's /metrics did not answer" 1
    [[ $(metric "$metrics" "quantum_peer_tx_packets_total{peer=\"$ip2\"}") == "$tp1" ]] ||
        qt_fail "/metrics tx packets to n2 '$(metric "$metrics" "quantum_peer_tx_packets_total{peer=\"$ip2\"}")' != /stats $tp1" 1
    [[ $(metric "$metrics" "quantum_peer_rx_bytes_total{peer=\"$ip2\"}") == "$rb1" ]] ||
        qt_fail "/metrics rx bytes from n2 != /stats $rb1" 1
    [[ $(metric "$metrics" quantum_peers) == 2 && $(metric "$metrics" quantum_sessions) == 2 ]] ||
        qt_fail "/metrics peers $(metric "$metrics" quantum_peers), sessions $(metric "$metrics" quantum_sessions); expected 2 and 2" 1
    [[ $(metric "$metrics" quantum_datastore_watch_connected) == 1 ]] || qt_fail "/metrics: watch not connected" 1
    [[ -n $(metric "$metrics" quantum_datastore_last_sync_age_seconds) ]] || qt_fail "/metrics: no sync age" 1
    [[ $(metric "$metrics" "quantum_handshakes_completed_total") -ge 1 ]] || qt_fail "/metrics: no completed handshake" 1

    peers=$(stats_get 1 /peers) || qt_fail "n1's /peers did not answer" 1
    node=$(stats_get 2 /node) || qt_fail "n2's /node did not answer" 2
    [[ $(json_eval "$peers" "sorted(p['privateIP'] for p in d) == sorted(['$ip2', '$ip3'])") == True ]] ||
        qt_fail "/peers does not list exactly n2 and n3: $peers" 1
    [[ $(json_eval "$peers" "[(p['endpoint'], p['session'], p['path'], p['tx']['packets'], p['rx']['bytes'], p['publicKey']) for p in d if p['privateIP'] == '$ip2'][0]") == \
        "('$(qt_underlay_ip 2):$QT_PORT', 'established', 'direct', $tp1, $rb1, '$(json_eval "$node" "d['publicKey']")')" ]] ||
        qt_fail "/peers entry for n2 is wrong: $peers" 1
    json_eval "$peers" "[p for p in d if p['privateIP'] == '$ip2'][0]['lastHandshakeSecondsAgo'] < 120" | grep -qx True ||
        qt_fail "/peers: no recent handshake with n2: $peers" 1

    status=$(ip netns exec "$(qt_ns 1)" "$QT_BIN" status 2>&1) || qt_fail "quantum status failed: $status" 1
    grep -q "^node $ip1 " <<<"$status" || qt_fail "quantum status has no node line: $status" 1
    grep -Eq "^$ip2 +$(qt_underlay_ip 2):$QT_PORT +established .* $tp1 pkts/.* direct" <<<"$status" ||
        qt_fail "quantum status row for n2 is wrong: $status" 1
    json=$(ip netns exec "$(qt_ns 1)" "$QT_BIN" status --json 2>&1) || qt_fail "quantum status --json failed: $json" 1
    [[ $(json_eval "$json" "[p['tx']['packets'] for p in d['peers'] if p['privateIP'] == '$ip2'][0]") == "$tp1" ]] ||
        qt_fail "quantum status --json tx packets to n2 != $tp1: $json" 1
    qt_log "quantum status on n1:"$'\n'"$status"

    qt_step "quantum status against a stopped daemon"
    qt_node_stop 3
    out=$(ip netns exec "$(qt_ns 3)" "$QT_BIN" status 2>&1)
    rc=$?
    [[ $rc == 1 && $out == "quantum is not running: nothing listens on 127.0.0.1:1099 (stats endpoint)" ]] ||
        qt_fail "quantum status on a stopped node: exit $rc, '$out'" 3
    qt_log "figures: /stats, /metrics, /peers, status and status --json agree on n1->n2 tx $tp1 packets; stopped daemon: exit 1"
}
