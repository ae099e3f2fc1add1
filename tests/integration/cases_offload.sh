# shellcheck shell=bash disable=SC2034
# Offloads (TUN TSO/checksum, UDP GSO/GRO, TCP coalescing): every kind of traffic
# still arrives intact, and nothing but ciphertext reaches the wire. The whole
# suite also runs a second time with QUANTUM_OFFLOAD=off (.ci/run); this case then
# checks that the device really has its offloads off.
QT_CASES+=(
    "offload_mixed_traffic 300"
)

# offload_dev_stat N COUNTER: a statistics counter of node N's TUN device (the kernel's view:
# tx = packets the node read from the device, rx = packets it wrote).
offload_dev_stat() { ip netns exec "$(qt_ns "$1")" cat "/sys/class/net/$QT_DEV/statistics/$2"; }
# offload_datagrams N tx|rx: transport datagrams node N sent or received, by its own counters
# (the underlay's statistics count a UDP GSO/GRO train as one packet); fails the case
# when the node does not report them.
offload_datagrams() {
    local v
    v=$(counter "$1" "$2_packets") || qt_fail "n$1 reports no $2_packets counter ($v)" "$1"
    printf '%s\n' "$v"
}

# offload_transfer FROM TO PORT FILE LABEL: one TCP stream FROM -> TO with SHA-256 on both ends;
# runs in the background, `offload_transfer_check LABEL` waits for it and compares the digests.
offload_transfer() {
    local from=$1 to=$2 port=$3 file=$4 label=$5
    qt_spawn "$(qt_ns "$to")" "$QT_WORK/$label.recv.log" "recv-$label" python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "${QT_IP[to]}" "$port" "$QT_WORK/$label.recv.sha" --ready "$QT_WORK/$label.ready" --timeout 120
    printf '%s\n' "$QT_LAST_PID" >"$QT_WORK/$label.rpid"
    qt_wait_for 10 test -e "$QT_WORK/$label.ready" || qt_fail "$label: receiver did not start" "$from" "$to"
    qt_spawn "$(qt_ns "$from")" "$QT_WORK/$label.send.log" "send-$label" sh -c \
        'python3 "$1" send "$2" "$3" "$4" --timeout 120 >"$5.tmp" && mv "$5.tmp" "$5"' _ \
        "$QT_LIB_DIR/tcpxfer.py" "${QT_IP[to]}" "$port" "$file" "$QT_WORK/$label.send.sha"
    printf '%s\n' "$QT_LAST_PID" >"$QT_WORK/$label.spid"
}

offload_transfer_check() {
    local label=$1 sent got
    qt_wait_pid "$(cat "$QT_WORK/$label.spid")" 130 || qt_fail "$label: sender did not finish: $(tail -n 2 "$QT_WORK/$label.send.log" | tr '\n' ' ')" 1 2
    qt_wait_pid "$(cat "$QT_WORK/$label.rpid")" 20 || qt_fail "$label: receiver did not finish" 1 2
    sent=$(cat "$QT_WORK/$label.send.sha" 2>/dev/null)
    got=$(cat "$QT_WORK/$label.recv.sha" 2>/dev/null)
    [[ -n $sent ]] || qt_fail "$label: sender failed: $(tail -n 2 "$QT_WORK/$label.send.log" | tr '\n' ' ')" 1 2
    [[ $got == "$sent" ]] || qt_fail "$label: digest mismatch: sent '$sent', received '$got'" 1 2
}

# ---- offload_mixed_traffic -------------------------------------------------------
# Two nodes. (1) 32 MB of random data each way at once; (2) 16 MB of marker text
# n1 -> n2 with the sender's checksum and segmentation offload on (the default), and
# with offloads on: fewer device packets than wire datagrams on both ends, i.e. TSO
# super-packets split and received segments coalesced; (3) 8 MB of marker text with
# the sender's checksum offload turned off (ethtool -K tx off); (4) one UDP datagram
# and one ICMP echo of every payload size from 1 byte to the MTU, plus fragmented
# sizes beyond it, each echoed back byte for byte. Phases 2-4 are captured on n1's
# underlay: no marker bytes, nothing but UDP to the node port (apart from etcd).
tc_offload_mixed_traffic() {
    local pcap=$QT_WORK/n1.pcap marker=QUANTUM-OFFLOAD-MARKER-3f9a61 mtu max offload want
    local dev_tx0 wire_tx0 dev_rx0 wire_rx0 dev_tx wire_tx dev_rx wire_rx out other total captured
    offload=${QUANTUM_OFFLOAD:-on}
    setup 2
    qt_node_start 1
    qt_node_start 2
    head -c 32M /dev/urandom >"$QT_WORK/a.bin"
    head -c 32M /dev/urandom >"$QT_WORK/b.bin"
    yes "$marker" | head -c 16M >"$QT_WORK/m16.txt"
    yes "$marker" | head -c 8M >"$QT_WORK/m8.txt"
    wait_up 1 2
    must_ping 1 2

    want=on
    [[ $offload == off ]] && want=off
    qt_step "n1's $QT_DEV has segmentation offload $want"
    out=$(ip netns exec "$(qt_ns 1)" ethtool -k "$QT_DEV" 2>&1) || qt_fail "ethtool -k $QT_DEV failed: $out" 1
    grep -qx "tcp-segmentation-offload: $want" <<<"$out" ||
        qt_fail "QUANTUM_OFFLOAD=$offload but $QT_DEV shows: $(grep -E '^(tcp-segmentation-offload|tx-checksumming):' <<<"$out" | tr '\n' ' ')" 1
    mtu=$(ip -n "$(qt_ns 1)" -o link show dev "$QT_DEV" | grep -oE 'mtu [0-9]+' | cut -d' ' -f2)
    [[ -n $mtu ]] || qt_fail "cannot read the MTU of $QT_DEV" 1

    qt_step "32 MB each way at once"
    offload_transfer 1 2 5301 "$QT_WORK/a.bin" ab
    offload_transfer 2 1 5302 "$QT_WORK/b.bin" ba
    offload_transfer_check ab
    offload_transfer_check ba

    capture_start 1 "$pcap"
    qt_step "16 MB of marker text n1 -> n2, sender offloads as configured"
    dev_tx0=$(offload_dev_stat 1 tx_packets)
    dev_rx0=$(offload_dev_stat 2 rx_packets)
    wire_tx0=$(offload_datagrams 1 tx) || exit 1
    wire_rx0=$(offload_datagrams 2 rx) || exit 1
    offload_transfer 1 2 5303 "$QT_WORK/m16.txt" m16
    offload_transfer_check m16
    dev_tx=$(($(offload_dev_stat 1 tx_packets) - dev_tx0))
    dev_rx=$(($(offload_dev_stat 2 rx_packets) - dev_rx0))
    wire_tx=$(offload_datagrams 1 tx) || exit 1
    wire_rx=$(offload_datagrams 2 rx) || exit 1
    wire_tx=$((wire_tx - wire_tx0)) wire_rx=$((wire_rx - wire_rx0))
    qt_log "figures: 16 MB: n1 read $dev_tx packets from $QT_DEV for $wire_tx datagrams sent; n2 wrote $dev_rx packets to $QT_DEV for $wire_rx datagrams received (offload $offload)"
    if [[ $want == on ]]; then
        ((dev_tx * 2 < wire_tx)) || qt_fail "no segmentation offload: n1 read $dev_tx packets from $QT_DEV for $wire_tx datagrams" 1
        ((dev_rx * 2 < wire_rx)) || qt_fail "no receive coalescing: n2 wrote $dev_rx packets to $QT_DEV for $wire_rx datagrams" 2
    fi

    qt_step "8 MB of marker text n1 -> n2 with n1's checksum offload off"
    out=$(ip netns exec "$(qt_ns 1)" ethtool -K "$QT_DEV" tx off 2>&1) || qt_fail "ethtool -K $QT_DEV tx off failed: $out" 1
    offload_transfer 1 2 5304 "$QT_WORK/m8.txt" m8
    offload_transfer_check m8

    max=$((mtu - 28))
    qt_step "UDP and ICMP, every payload size 1..$max (MTU $mtu) and fragmented ones"
    qt_spawn "$(qt_ns 2)" "$QT_WORK/echo.log" udp-echo python3 "$QT_LIB_DIR/sweep.py" udp-echo \
        "${QT_IP[2]}" 5305 --ready "$QT_WORK/echo.ready" --timeout 30
    qt_wait_for 10 test -e "$QT_WORK/echo.ready" || qt_fail "UDP echo server did not start" 2
    out=$(timeout 90 ip netns exec "$(qt_ns 1)" python3 "$QT_LIB_DIR/sweep.py" udp "${QT_IP[2]}" 5305 \
        --sizes "1-$max,$((max + 1))-$((max + 40)),4000,8000" --marker "$marker" --timeout 80 2>&1) ||
        qt_fail "UDP sweep: $(tail -n 1 <<<"$out")" 1 2
    qt_log "$out"
    out=$(timeout 90 ip netns exec "$(qt_ns 1)" python3 "$QT_LIB_DIR/sweep.py" icmp "${QT_IP[2]}" \
        --sizes "0-$max,$((max + 1))-$((max + 40)),4000,8000" --marker "$marker" --timeout 80 2>&1) ||
        qt_fail "ICMP sweep: $(tail -n 1 <<<"$out")" 1 2
    qt_log "$out"
    capture_stop

    # Bytes, not records: with UDP GSO the capture holds one record per train of datagrams.
    total=$(tcpdump -n -r "$pcap" 2>/dev/null | wc -l)
    captured=$(stat -c %s "$pcap")
    ((captured >= 24 * 1024 * 1024)) || qt_fail "only $captured bytes ($total records) captured on n1's eth0 (sent 24 MB)" 1 2
    grep -a -q -F "$marker" "$pcap" && qt_fail "plaintext marker found in the underlay capture ($total records)" 1 2
    other=$(tcpdump -n -r "$pcap" "not arp and not host $QT_HUB_IP and not udp port $QT_PORT" 2>/dev/null)
    [[ -z $other ]] || qt_fail "$(wc -l <<<"$other") packets other than UDP $QT_PORT on the underlay, e.g.: $(head -n 3 <<<"$other" | tr '\n' ' ')" 1 2
    qt_log "figures: mixed traffic intact with offload $offload (MTU $mtu); $total records ($captured bytes) captured, no marker, all UDP $QT_PORT"
}
