# shellcheck shell=bash disable=SC2034  # globals are used by run.sh
# The network CA (issue 7 §2): with --network-ca-cert/--node-cert, etcd is no longer trusted.
# Sourced by run.sh after cases.sh, whose helpers (setup, wait_up, must_ping, qt_fail …) it uses.
# CA_ENFORCE=0 starts the nodes without the CA flags (each at its certificate's address), to
# check that each case fails when the CA is not enforced.
QT_CASES+=(
    "ca_stolen_address 120"
    "ca_wrong_address 120"
    "ca_revoked 120"
)

: "${CA_ENFORCE:=1}"

# ca_address N: the private address node N is certified for (static range).
ca_address() { printf '10.99.0.%d\n' $((10 + $1)); }

# ca_init: a CA in $QT_WORK/ca.
ca_init() {
    qt_step "quantum ca init"
    "$QT_BIN" ca init --dir "$QT_WORK/ca" --name "test CA" >>"$QT_WORK/ca.log" 2>&1 ||
        qt_fail "quantum ca init failed: $(tail -n 2 "$QT_WORK/ca.log" | tr '\n' ' ')"
}

# ca_sign N IP: node N's public key (from its data directory, created now) certified for IP
# in $QT_WORK/nN.crt; the key is left in CA_KEY.
ca_sign() {
    local n=$1 ip=$2
    QT_DATA[n]=${QT_DATA[n]:-$QT_WORK/n$n.data}
    CA_KEY=$("$QT_BIN" pubkey --data-dir "${QT_DATA[n]}" 2>>"$QT_WORK/ca.log") || qt_fail "quantum pubkey failed for n$n"
    "$QT_BIN" ca sign --dir "$QT_WORK/ca" --public-key "$CA_KEY" --ip "$ip" --name "n$n" --valid-for 1d \
        --out "$QT_WORK/n$n.crt" >>"$QT_WORK/ca.log" 2>&1 ||
        qt_fail "quantum ca sign failed for n$n: $(tail -n 2 "$QT_WORK/ca.log" | tr '\n' ' ')"
}

# ca_node N [ARGS...]: start node N with its certificate (or, with CA_ENFORCE=0, at its
# certificate's address without the CA flags).
ca_node() {
    local n=$1
    shift
    if ((CA_ENFORCE)); then
        drill_node "$n" --network-ca-cert "$QT_WORK/ca/ca.crt" --node-cert "$QT_WORK/n$n.crt" "$@"
    else
        drill_node "$n" --private-ip "$(ca_address "$n")" "$@"
    fi
}

# ca_mesh N...: CA, certificates and running nodes N..., each up at its certified address.
ca_mesh() {
    local n
    ca_init
    for n in "$@"; do ca_sign "$n" "$(ca_address "$n")"; done
    for n in "$@"; do ca_node "$n"; done
    wait_up "$@"
    for n in "$@"; do
        [[ ${QT_IP[n]} == "$(ca_address "$n")" ]] || qt_fail "n$n came up at ${QT_IP[n]}, not its certified $(ca_address "$n")" "$n"
    done
}

# mapping_key_is N KEY: node N's mapping in etcd carries public key KEY.
mapping_key_is() {
    qt_etcdctl get "$(node_key "$1")" --print-value-only | python3 -c '
import json, sys
sys.exit(0 if json.load(sys.stdin).get("publicKey") == sys.argv[1] else 1)' "$2" 2>/dev/null
}

# put_mapping_with_certificate N CERT_FILE: rewrite node N's mapping in etcd to carry the
# certificate in CERT_FILE (keeping its lease, so the node does not write it back).
put_mapping_with_certificate() {
    local value
    value=$(qt_etcdctl get "$(node_key "$1")" --print-value-only | python3 -c '
import json, sys
mapping = json.load(sys.stdin)
mapping["certificate"] = "".join(open(sys.argv[1]).read().split("\n")[1:])
print(json.dumps(mapping, sort_keys=True))' "$2") || qt_fail "cannot rewrite n$1's mapping"
    qt_etcdctl put --ignore-lease "$(node_key "$1")" "$value" >/dev/null || qt_fail "etcdctl put failed"
}

# 1. A hand-written mapping with a fresh key and n2's private IP (no certificate): n1 ignores
# it (one warning), pings to n2 keep being answered with no loss, n2 keeps running and writes
# its own mapping back.
tc_ca_stolen_address() {
    local stolen value t0 genuine warnings back_s
    setup 2
    ca_mesh 1 2
    must_ping 1 2
    stolen=${QT_IP[2]}
    genuine=$(qt_etcdctl get "$(node_key 2)" --print-value-only | python3 -c 'import json, sys; print(json.load(sys.stdin)["publicKey"])')
    ping_pairs $((QT_SYNC * 2)) 1:2
    value=$(python3 -c 'import base64, json, os, sys
print(json.dumps({"machineID": os.urandom(16).hex(), "privateIP": sys.argv[1], "ipv4": sys.argv[2],
                  "port": 1099, "publicKey": base64.b64encode(os.urandom(32)).decode()}))' "$stolen" "$(qt_underlay_ip 77)")
    qt_step "a usurper takes $stolen in etcd"
    qt_etcdctl put "$(node_key 2)" "$value" >/dev/null || qt_fail "etcdctl put failed"
    t0=$(qt_now)
    qt_step "waiting for n2 to write its mapping back"
    qt_wait_for $((QT_SYNC + QT_SLACK)) mapping_key_is 2 "$genuine" ||
        qt_fail "n2's mapping is not back $((QT_SYNC + QT_SLACK)) s after the usurper wrote it" 1 2
    back_s=$(qt_since "$t0")
    no_loss "with a usurper at $stolen" 1:2
    qt_node_alive 2 || qt_fail "n2 stopped after the usurper took its address" 2
    warnings=$(grep -c "ignoring the mapping of $stolen" "$(qt_node_log 1)")
    ((warnings == 1)) || qt_fail "n1 logged $warnings warnings about the usurper (want exactly 1)" 1
    qt_log "figures: usurper ignored (1 warning on n1), $QT_PING_RX/$QT_PING_TX pings n1 -> n2 answered, n2 wrote its mapping back in $back_s s"
}

# 2. n3 runs without the CA flags at 10.99.0.14; its mapping carries first no certificate, then
# a valid one for its key but for 10.99.0.13: n1 (with the CA) ignores it and cannot reach n3.
# The same mapping with a certificate for 10.99.0.14 is accepted (the setup can work).
tc_ca_wrong_address() {
    local other=10.99.0.13 own=10.99.0.14 t0
    setup 3
    ca_mesh 1
    ca_sign 3 "$other"
    mv "$QT_WORK/n3.crt" "$QT_WORK/n3-other.crt"
    ca_sign 3 "$own"
    drill_node 3 --private-ip "$own"
    wait_up 3
    put_mapping_with_certificate 3 "$QT_WORK/n3-other.crt"
    qt_step "n1 must not reach n3 ($own), certified for $other"
    qt_reach 1 "$own" 5 && qt_fail "n1 reached n3 at $own with a certificate for $other" 1 3
    grep -q "ignoring the mapping of $own" "$(qt_node_log 1)" || qt_fail "n1 did not log that it ignores n3's mapping" 1 3
    grep -q "peer $own added" "$(qt_node_log 1)" && qt_fail "n1 added n3 as a peer" 1
    put_mapping_with_certificate 3 "$QT_WORK/n3.crt"
    t0=$(qt_now)
    reach_within "$t0" $((QT_SYNC + QT_SLACK)) 3 1
    qt_log "figures: mapping certified for $other at $own ignored (5 s without a reply); with its own certificate reached in $REACH_S s"
}

# 3. n2 revoked (quantum ca revoke + publish-revocations): n1 cuts it off within one sync
# interval while n1 <-> n3 goes on; n2 itself stops with a line saying it is revoked.
tc_ca_revoked() {
    local t0 cut_s rc
    setup 3
    ca_mesh 1 2 3
    must_ping 1 2
    must_ping 1 3
    qt_step "revoking n2"
    "$QT_BIN" ca revoke --dir "$QT_WORK/ca" "$QT_WORK/n2.crt" --out "$QT_WORK/revocations" >>"$QT_WORK/ca.log" 2>&1 ||
        qt_fail "quantum ca revoke failed: $(tail -n 2 "$QT_WORK/ca.log" | tr '\n' ' ')"
    ip netns exec "$QT_HUB_NS" "$QT_BIN" ca publish-revocations "$QT_WORK/revocations" \
        --datastore-endpoints "${QT_ETCDCTL_URL#http://}" >>"$QT_WORK/ca.log" 2>&1 ||
        qt_fail "quantum ca publish-revocations failed: $(tail -n 2 "$QT_WORK/ca.log" | tr '\n' ' ')"
    t0=$(qt_now)
    qt_step "waiting for n1 to cut n2 off"
    qt_wait_for "$QT_SYNC" grep -q "peer ${QT_IP[2]} .* is revoked; cut off" "$(qt_node_log 1)" ||
        qt_fail "n1 did not cut n2 off within one sync interval ($QT_SYNC s)" 1 2
    cut_s=$(qt_since "$t0")
    qt_reach 1 "${QT_IP[2]}" 3 && qt_fail "n1 still reaches the revoked n2" 1 2
    must_ping 1 3 5
    qt_wait_pid "${QT_PID[2]}" "$QT_SYNC" || qt_fail "the revoked n2 is still running" 2
    rc=$QT_LAST_RC
    QT_PID[2]=
    [[ $rc != 0 ]] || qt_fail "the revoked n2 exited 0" 2
    grep -q "revoked by the network CA" "$(qt_node_log 2)" || qt_fail "n2 did not log that it is revoked" 2
    qt_log "figures: n2 cut off by n1 $cut_s s after the list was published (sync interval $QT_SYNC s); n2 exited with status $rc; n1 -> n3 unaffected"
}
