# shellcheck shell=bash
# Operations cases (issue 6: compression plugin, running as a service, CAP_NET_ADMIN
# without root). Sourced by run.sh after cases.sh, whose helpers they use.
QT_CASES+=(
    "compression_saves_bytes 180"
    "service_unit_and_install 60"
    "cap_net_admin_not_root 90"
    "journal_log_lines 60"
)

# ---- compression ---------------------------------------------------------------
# eth0_tx N: bytes node N has sent on its underlay interface.
eth0_tx() { ip netns exec "$(qt_ns "$1")" cat /sys/class/net/eth0/statistics/tx_bytes; }

# transfer FROM TO PORT FILE: send FILE over TCP from node FROM to node TO; fails the
# case unless the sha256 at the far end matches. Leaves the sender's underlay bytes in
# TRANSFER_TX.
transfer() {
    local from=$1 to=$2 port=$3 file=$4 before sent got rpid
    qt_spawn "$(qt_ns "$to")" "$QT_WORK/recv$to.log" "recv$to" python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "${QT_IP[to]}" "$port" "$QT_WORK/recv$to.sha" --ready "$QT_WORK/recv$to.ready" --timeout 90
    rpid=$QT_LAST_PID
    qt_wait_for 10 test -e "$QT_WORK/recv$to.ready" || qt_fail "receiver on n$to did not start"
    before=$(eth0_tx "$from")
    sent=$(timeout 100 ip netns exec "$(qt_ns "$from")" python3 "$QT_LIB_DIR/tcpxfer.py" send \
        "${QT_IP[to]}" "$port" "$file" --timeout 90 2>"$QT_WORK/send$from.err") ||
        qt_fail "transfer n$from -> n$to failed: $(tail -n 2 "$QT_WORK/send$from.err" | tr '\n' ' ')" "$from" "$to"
    qt_wait_pid "$rpid" 20 || qt_fail "receiver on n$to did not finish" "$from" "$to"
    got=$(cat "$QT_WORK/recv$to.sha" 2>/dev/null)
    [[ -n $got && $got == "$sent" ]] || qt_fail "n$from -> n$to: sent '$sent', received '$got'" "$from" "$to"
    TRANSFER_TX=$(($(eth0_tx "$from") - before))
}

# 20 MB of text from n1 to n2, both with --plugins compression, then from n3 to n4
# without it: identical bytes arrive both times, and the compressing pair puts far
# fewer bytes on the underlay.
tc_compression_saves_bytes() {
    local f=$QT_WORK/text.txt with without
    setup 4
    qt_node_start 1 --plugins compression
    qt_node_start 2 --plugins compression,encryption
    qt_node_start 3
    qt_node_start 4
    yes 'GET /api/v1/items?page=17 HTTP/1.1 Host: intranet.example Accept: application/json' | head -c 20M >"$f"
    wait_up 1 2 3 4
    must_ping 1 2
    must_ping 3 4
    qt_step "20 MB of text n1 -> n2 (both compress)"
    transfer 1 2 5301 "$f"
    with=$TRANSFER_TX
    qt_step "20 MB of text n3 -> n4 (no plugin)"
    transfer 3 4 5302 "$f"
    without=$TRANSFER_TX
    qt_log "figures: 20 MB text, underlay bytes sent with compression $with, without $without ($((with * 100 / without))%)"
    ((without > 20 * 1024 * 1024)) || qt_fail "the uncompressed transfer sent only $without bytes" 3 4
    ((with * 2 < without)) || qt_fail "compression saved too little: $with vs $without bytes" 1 2
    local dropped
    dropped=$(counter 2 drop_compression) || qt_fail "n2 has no drop_compression counter" 2
    ((dropped == 0)) || qt_fail "n2 dropped $dropped compressed packets" 1 2
}

# ---- the systemd unit and the install script ------------------------------------
# systemd-analyze verify accepts the unit (it checks every directive and that the
# ExecStart binary exists; no running systemd needed), with ExecStart pointed at this
# build. install.sh into a scratch root twice: same files, the edited config kept.
tc_service_unit_and_install() {
    local unit=$QT_WORK/quantum.service out root=$QT_WORK/root repo
    repo=$(cd "$QT_LIB_DIR/../.." && pwd)
    command -v systemd-analyze >/dev/null || qt_fail "systemd-analyze is not installed (package systemd)"
    qt_step "systemd-analyze verify dist/quantum.service"
    sed "s#/usr/local/bin/quantum#$QT_BIN#" "$repo/dist/quantum.service" >"$unit"
    out=$(systemd-analyze verify "$unit" 2>&1) || qt_fail "systemd-analyze verify failed: $out"
    [[ -z $out ]] || qt_fail "systemd-analyze verify warns: $(tr '\n' ' ' <<<"$out")"
    local directive
    for directive in Type=notify NotifyAccess=all 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure \
        User=quantum AmbientCapabilities=CAP_NET_ADMIN CapabilityBoundingSet=CAP_NET_ADMIN NoNewPrivileges=yes \
        StateDirectory=quantum RuntimeDirectory=quantum; do
        grep -qxF -- "$directive" "$unit" || qt_fail "the unit lacks '$directive'"
    done
    # A misspelt directive is reported: the check above can fail.
    printf '[Service]\nType=notfy\nExecStart=%s\n' "$QT_BIN" >"$QT_WORK/bad.service"
    out=$(systemd-analyze verify "$QT_WORK/bad.service" 2>&1)
    [[ -n $out ]] || qt_fail "systemd-analyze verify did not notice Type=notfy"

    qt_step "install.sh into $root, twice"
    DESTDIR=$root "$repo/scripts/install.sh" --binary "$QT_BIN" >"$QT_WORK/install1.log" 2>&1 ||
        qt_fail "install.sh failed: $(tail -n 3 "$QT_WORK/install1.log" | tr '\n' ' ')"
    cmp -s "$QT_BIN" "$root/usr/local/bin/quantum" || qt_fail "the binary was not installed"
    cmp -s "$repo/dist/quantum.service" "$root/etc/systemd/system/quantum.service" || qt_fail "the unit was not installed"
    [[ -s $root/etc/quantum/quantum.yml ]] || qt_fail "no example config"
    "$QT_BIN" --conf-file "$root/etc/quantum/quantum.yml" --version >/dev/null ||
        qt_fail "the binary does not run from the scratch root"
    echo "log-level: debug" >>"$root/etc/quantum/quantum.yml"
    DESTDIR=$root "$repo/scripts/install.sh" --binary "$QT_BIN" >"$QT_WORK/install2.log" 2>&1 ||
        qt_fail "install.sh failed the second time: $(tail -n 3 "$QT_WORK/install2.log" | tr '\n' ' ')"
    grep -qx "log-level: debug" "$root/etc/quantum/quantum.yml" || qt_fail "the second install overwrote the config"
    qt_log "figures: unit verified, install idempotent ($(grep -c . "$QT_WORK/install2.log") lines the second time)"
}

# ---- CAP_NET_ADMIN, not root ---------------------------------------------------
# n1 runs as uid/gid 65534 with CAP_NET_ADMIN as its only (ambient) capability, as the
# unit runs it: it comes up and pings n2. The same user without the capability is
# refused in one line before touching etcd or creating its data directory.
tc_cap_net_admin_not_root() {
    local bin=$QT_WORK/quantum-unprivileged wrapper=$QT_WORK/as-nobody uid
    setup 2
    # The unprivileged daemon must reach its binary and data directory.
    chmod 0711 "$QT_WORK" "$(dirname "$QT_WORK")"
    install -m 0755 "$QT_BIN" "$bin"
    printf '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin %s "$@"\n' \
        "$bin" >"$wrapper"
    chmod 0755 "$wrapper"
    QT_DATA[1]=$QT_WORK/n1.data
    install -d -m 0700 -o 65534 -g 65534 "${QT_DATA[1]}"
    # The pid file's directory must be writable by the daemon's user, as /run/quantum is under the unit.
    install -d -m 0755 -o 65534 -g 65534 "$QT_WORK/n1.run"
    QT_PIDFILE[1]=$QT_WORK/n1.run/quantum.pid
    QT_BIN=$wrapper qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    uid=$(awk '/^Uid:/ {print $2}' "/proc/${QT_PID[1]}/status")
    [[ $uid == 65534 ]] || qt_fail "n1 runs as uid $uid, not 65534" 1
    grep -q '^CapEff:.*0000000000001000$' "/proc/${QT_PID[1]}/status" ||
        qt_fail "n1's effective capabilities are not CAP_NET_ADMIN alone: $(grep CapEff "/proc/${QT_PID[1]}/status")" 1
    must_ping 1 2
    must_ping 2 1
    qt_node_stop 1   # refused_in_one_line writes to n1's log
    refused_in_one_line "start as uid 65534 without the ambient capability" CAP_NET_ADMIN "$QT_WORK/nocap" \
        ip netns exec "$(qt_ns 1)" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
        "$bin" --datastore-endpoints "$QT_ENDPOINTS" --data-dir "$QT_WORK/nocap"
    qt_log "figures: uid 65534 with ambient CAP_NET_ADMIN up at ${QT_IP[1]} and pinging; without it refused"
}

# ---- logging to the journal -----------------------------------------------------
# Started with JOURNAL_STREAM naming its stderr's device:inode, as systemd does, the
# daemon logs without timestamps, each line with a <N> priority and the level; started
# with a JOURNAL_STREAM that names another file, it keeps the timestamps.
tc_journal_log_lines() {
    local log lines
    setup 2
    log=$(qt_node_log 1)
    : >"$log"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$log") qt_node_start 1
    JOURNAL_STREAM=$(stat -c '%d:%i' "$QT_WORK/etcd.log") qt_node_start 2
    wait_up 1 2
    lines=$(grep -v '^====' "$log")
    [[ -n $lines ]] || qt_fail "n1 logged nothing" 1
    grep -qE '^<6>info quantum: .*quantum [0-9.]+ up: device' <<<"$lines" ||
        qt_fail "no '<6>info quantum: ... up' line in n1's journal-style log" 1
    ! grep -vqE '^<[2-7]>(trace|debug|info|notice|warning|error|critical) quantum: ' <<<"$lines" ||
        qt_fail "n1 logged a line not in journal form: $(grep -vE '^<[2-7]>' <<<"$lines" | head -n 1)" 1
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]+' "$(qt_node_log 2)" ||
        qt_fail "n2, whose stderr is not the named stream, logged without timestamps" 2
    qt_log "figures: $(wc -l <<<"$lines") journal lines from n1, e.g. $(head -n 1 <<<"$lines" | cut -c1-60)"
}
