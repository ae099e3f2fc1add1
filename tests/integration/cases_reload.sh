# shellcheck shell=bash disable=SC2034  # globals are used by run.sh and lib.sh
# Rolling restart (SIGHUP), pid file and sd_notify cases. Sourced by run.sh after
# cases.sh, whose helpers (setup, wait_up, must_ping, ...) they use.
QT_CASES+=(
    "reload_zero_loss 240"
    "reload_bad_config_refused 90"
    "reload_notify_socket 90"
    "pid_file_lifecycle 60"
    "reload_failure_resumes 90"
)

# reload_once N: SIGHUP node N, follow it to its successor, and check the handover:
# the old process exits 0, the successor logged the sessions it took over and the
# freeze, the device keeps its address. Sets RELOAD_FREEZE_MS, RELOAD_MS, RELOAD_SESSIONS.
reload_once() {
    local n=$1 log lines line
    log=$(qt_node_log "$n")
    lines=$(wc -l <"$log")
    qt_step "SIGHUP n$n (pid ${QT_PID[n]})"
    kill -HUP "${QT_PID[n]}"
    qt_node_follow "$n" 20 || qt_fail "n$n's pid file names no new process 20 s after SIGHUP" "$n"
    qt_wait_pid "$QT_OLD_PID" 10 || qt_fail "n$n's old process $QT_OLD_PID still runs after the handover" "$n"
    # 127: a successor is not this shell's child, so its exit status cannot be read.
    [[ $QT_LAST_RC == 0 || $QT_LAST_RC == 127 ]] || qt_fail "n$n's old process exited $QT_LAST_RC" "$n"
    qt_wait_for 10 logged_since "$n" "$lines" "data path frozen for" ||
        qt_fail "n$n's successor did not log its freeze time" "$n"
    line=$(tail -n +$((lines + 1)) "$log" | grep -m1 'took over [0-9]* session')
    [[ $line =~ took\ over\ ([0-9]+)\ session ]] || qt_fail "n$n's successor did not log the sessions it took over" "$n"
    RELOAD_SESSIONS=${BASH_REMATCH[1]}
    line=$(tail -n +$((lines + 1)) "$log" | grep -m1 'data path frozen for')
    [[ $line =~ frozen\ for\ ([0-9.]+)\ ms ]] && RELOAD_FREEZE_MS=${BASH_REMATCH[1]}
    line=$(tail -n +$((lines + 1)) "$log" | grep -m1 'reload took')
    [[ $line =~ reload\ took\ ([0-9.]+)\ ms ]] && RELOAD_MS=${BASH_REMATCH[1]}
    [[ $(qt_node_ip "$n") == "${QT_IP[n]}" ]] || qt_fail "n$n's $QT_DEV lost its address ${QT_IP[n]} in the reload" "$n"
    [[ $(cat "$QT_WORK/n$n.pid") == "${QT_PID[n]}" ]] || qt_fail "n$n's pid file does not name its successor" "$n"
}

# Three successive SIGHUPs on n1 while n2 pings it at 100 Hz, n3 at 10 Hz, and a
# 48 MB TCP stream runs n2 -> n1 (paced to 8 MB/s, about 6 s: a saturating stream
# overflows the sender's TUN queue and would drop pings with or without reloads):
# no ping lost, the stream intact and spanning all reloads, same address.
tc_reload_zero_loss() {
    local f=$QT_WORK/stream.bin i sent got rpid spid freezes="" durations=""
    setup 3
    qt_node_start 1
    qt_node_start 2
    qt_node_start 3
    wait_up 1 2 3
    must_ping 2 1
    must_ping 3 1
    head -c 48M /dev/urandom >"$f"
    qt_spawn "$(qt_ns 1)" "$QT_WORK/recv.log" recv python3 "$QT_LIB_DIR/tcpxfer.py" recv \
        "${QT_IP[1]}" 5203 "$QT_WORK/recv.sha" --ready "$QT_WORK/recv.ready" --timeout 120
    rpid=$QT_LAST_PID
    qt_wait_for 10 test -e "$QT_WORK/recv.ready" || qt_fail "receiver did not start: $(tr '\n' ' ' <"$QT_WORK/recv.log")"
    qt_step "100 Hz ping n2 -> n1, 10 Hz ping n3 -> n1, TCP stream n2 -> n1"
    qt_spawn "$(qt_ns 2)" "$QT_WORK/fast.ping" ping-fast ping -n -q -i 0.01 -W 1 -c 1200 "${QT_IP[1]}"
    QT_BGPING[fast]=$QT_LAST_PID
    qt_bgping_start slow 3 "${QT_IP[1]}" 12
    qt_spawn "$(qt_ns 2)" "$QT_WORK/send.log" send python3 "$QT_LIB_DIR/tcpxfer.py" send \
        "${QT_IP[1]}" 5203 "$f" --timeout 120 --rate 8000000
    spid=$QT_LAST_PID
    qt_wait_dev_rx 1 50 || qt_fail "n1 received fewer than 50 packets from the tunnel 10 s after the pings and the stream started" 1 2
    for i in 1 2 3; do
        reload_once 1
        ((RELOAD_SESSIONS >= 2)) || qt_fail "reload $i: the successor took over $RELOAD_SESSIONS sessions (peers n2 and n3 expected)" 1
        qt_log "reload $i: pid ${QT_PID[1]}, $RELOAD_SESSIONS sessions, frozen ${RELOAD_FREEZE_MS:-?} ms, reload ${RELOAD_MS:-?} ms"
        freezes+=" ${RELOAD_FREEZE_MS:-?}"
        durations+=" ${RELOAD_MS:-?}"
        ((i == 3)) || qt_wait_dev_rx 1 50 || qt_fail "no traffic reached n1 after reload $i" 1 2
    done
    [[ -e $QT_WORK/recv.sha ]] && qt_fail "the TCP stream ended before the third reload: it proves nothing" 1 2
    qt_bgping_result fast 60 || qt_fail "the 100 Hz ping did not end with a summary" 1 2
    for i in 1 2; do
        qt_log "n$i counters: $(qt_counters "$i")"
        qt_log "n$i $QT_DEV: $(ip netns exec "$(qt_ns "$i")" ip -s link show "$QT_DEV" | tr -s ' \n' ' ')"
    done
    ((QT_PING_TX > 0 && QT_PING_RX == QT_PING_TX)) ||
        qt_fail "100 Hz ping n2 -> n1 lost $((QT_PING_TX - QT_PING_RX)) of $QT_PING_TX across three reloads" 1 2
    local fast_tx=$QT_PING_TX
    qt_bgping_result slow 60 || qt_fail "the n3 ping did not end with a summary" 1 3
    ((QT_PING_TX > 0 && QT_PING_RX == QT_PING_TX)) ||
        qt_fail "ping n3 -> n1 lost $((QT_PING_TX - QT_PING_RX)) of $QT_PING_TX across three reloads" 1 3
    qt_wait_pid "$spid" 120 || qt_fail "the TCP sender did not finish" 1 2
    qt_wait_pid "$rpid" 20 || qt_fail "the TCP receiver did not finish" 1 2
    sent=$(cat "$QT_WORK/send.log")
    got=$(cat "$QT_WORK/recv.sha" 2>/dev/null)
    [[ -n $got && $got == "$sent" ]] || qt_fail "TCP stream across the reloads: sent '$sent', received '$got'" 1 2
    qt_log "figures: 3 reloads under a 100 Hz ping: $fast_tx sent, 0 lost; n3 $QT_PING_TX sent, 0 lost; 48 MB stream at 8 MB/s across all three reloads, sha256 matches; freeze ms:$freezes; reload ms:$durations"
}

# A configuration the new process cannot use (a bad value; then an option a reload
# cannot change): the running process keeps running and forwarding, and says why.
tc_reload_bad_config_refused() {
    local conf=$QT_WORK/n1.yml log lines pid
    setup 2
    printf 'log-level: info\n' >"$conf"
    qt_node_start 1 --conf-file "$conf"
    qt_node_start 2
    wait_up 1 2
    must_ping 2 1
    log=$(qt_node_log 1)
    pid=${QT_PID[1]}
    qt_bgping_start during 2 "${QT_IP[1]}" 8
    # (listen-port and the others that qt_node_start passes on the command line would
    # win over the file: mtu is set in the file only.)
    for bad in 'mtu: 99999' 'mtu: 1400'; do
        printf '%s\n' "$bad" >"$conf"
        lines=$(wc -l <"$log")
        qt_step "SIGHUP n1 with '$bad' in its config file"
        kill -HUP "$pid"
        qt_wait_for 20 logged_since 1 "$lines" "reload refused" || qt_fail "no 'reload refused' logged for '$bad'" 1
        qt_log "n1: $(tail -n +$((lines + 1)) "$log" | grep -m1 'reload refused')"
        qt_node_alive 1 && [[ ${QT_PID[1]} == "$pid" ]] || qt_fail "n1 stopped after a refused reload ('$bad')" 1
        [[ $(cat "$QT_WORK/n1.pid") == "$pid" ]] || qt_fail "the pid file changed after a refused reload" 1
    done
    tail -n +$((lines + 1)) "$log" | grep -q -- '--mtu 1420 → 1400 cannot change on reload' ||
        qt_fail "the refusal does not name --mtu with both values" 1
    qt_bgping_result during 30 || qt_fail "the ping during the refused reloads did not end" 1 2
    ((QT_PING_RX == QT_PING_TX)) || qt_fail "ping n2 -> n1 lost $((QT_PING_TX - QT_PING_RX)) of $QT_PING_TX during refused reloads" 1 2
    must_ping 2 1
    qt_log "figures: 2 refused reloads, old pid $pid still running, ping $QT_PING_RX/$QT_PING_TX"
}

# READY=1 at start, RELOADING=1 then MAINPID=<successor> READY=1 around a reload,
# STOPPING=1 on stop, all received on a test notify socket.
tc_reload_notify_socket() {
    local sock=$QT_WORK/notify.sock out=$QT_WORK/notify.out
    setup 2
    qt_spawn "$(qt_ns 1)" "$QT_WORK/notify.log" notify python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
' "$sock" "$out"
    qt_wait_for 10 test -S "$sock" || qt_fail "the notify listener did not start: $(tr '\n' ' ' <"$QT_WORK/notify.log")"
    NOTIFY_SOCKET=$sock qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    qt_wait_for 10 grep -qx 'READY=1' "$out" || qt_fail "no READY=1 on the notify socket: $(tr '\n' '|' <"$out")" 1
    must_ping 2 1
    reload_once 1
    qt_wait_for 10 grep -q "^MAINPID=${QT_PID[1]} READY=1" "$out" ||
        qt_fail "no MAINPID=${QT_PID[1]} READY=1 after the reload: $(tr '\n' '|' <"$out")" 1
    grep -q '^RELOADING=1 MONOTONIC_USEC=[0-9]*$' "$out" || qt_fail "no RELOADING=1 with MONOTONIC_USEC: $(tr '\n' '|' <"$out")" 1
    must_ping 2 1
    qt_node_stop 1
    qt_wait_for 10 grep -qx 'STOPPING=1' "$out" || qt_fail "no STOPPING=1 on the notify socket: $(tr '\n' '|' <"$out")" 1
    qt_log "figures: notify socket received: $(tr '\n' '|' <"$out")"
}

# The pid file holds the daemon's PID once it is up, keeps a second daemon from
# starting, and is removed on a normal stop.
tc_pid_file_lifecycle() {
    local pidfile=$QT_WORK/n1.pid
    setup 1
    qt_node_start 1
    wait_up 1
    qt_wait_for 10 test -s "$pidfile" || qt_fail "no pid file $pidfile once n1 is up" 1
    [[ $(cat "$pidfile") == "${QT_PID[1]}" ]] || qt_fail "the pid file holds '$(cat "$pidfile")', n1 is ${QT_PID[1]}" 1
    qt_step "a second daemon with the same pid file"
    local second
    second=$(timeout 20 ip netns exec "$(qt_ns 1)" "$QT_BIN" --datastore-endpoints "$QT_ENDPOINTS" \
        --data-dir "$QT_WORK/second.data" --listen-port 2099 --device-name qtsecond --pid-file "$pidfile" 2>&1)
    [[ $? == 1 && $second == *"already running as pid ${QT_PID[1]}"* ]] ||
        qt_fail "a second daemon was not refused by the pid file: $second" 1
    [[ $(cat "$pidfile") == "${QT_PID[1]}" ]] || qt_fail "the refused daemon changed the pid file" 1
    local pid=${QT_PID[1]}
    qt_node_stop 1
    [[ ${QT_EXIT[1]} == 0 ]] || qt_fail "n1 exited ${QT_EXIT[1]}" 1
    [[ ! -e $pidfile ]] || qt_fail "the pid file is still there after a normal stop" 1
    qt_log "figures: pid file written with $pid, second daemon refused, file removed on stop"
}

# The successor fails after the data path froze (its pid file cannot be written: the
# path is now a directory): the old process resumes with its own sessions, and a
# 100 Hz ping through it loses nothing.
tc_reload_failure_resumes() {
    local pidfile=$QT_WORK/n1.pid log lines pid
    setup 2
    qt_node_start 1
    qt_node_start 2
    wait_up 1 2
    must_ping 2 1
    qt_wait_for 10 test -s "$pidfile" || qt_fail "no pid file once n1 is up" 1
    rm -f "$pidfile" && mkdir -p "$pidfile/blocker"
    log=$(qt_node_log 1)
    lines=$(wc -l <"$log")
    pid=${QT_PID[1]}
    qt_spawn "$(qt_ns 2)" "$QT_WORK/fast.ping" ping-fast ping -n -q -i 0.01 -W 1 -c 400 "${QT_IP[1]}"
    QT_BGPING[fast]=$QT_LAST_PID
    qt_wait_dev_rx 1 100 || qt_fail "the 100 Hz ping from n2 did not reach n1" 1 2
    qt_step "SIGHUP n1 with an unwritable pid file"
    kill -HUP "$pid"
    qt_wait_for 20 logged_since 1 "$lines" "reload failed" || qt_fail "no 'reload failed' logged" 1
    local line
    line=$(tail -n +$((lines + 1)) "$log" | grep -m1 'reload failed')
    [[ $line == *"resumed after"* ]] || qt_fail "the old process did not say it resumed: $line" 1
    qt_node_alive 1 || qt_fail "n1 stopped after a failed reload" 1
    qt_bgping_result fast 30 || qt_fail "the 100 Hz ping did not end with a summary" 1 2
    ((QT_PING_TX > 0 && QT_PING_RX == QT_PING_TX)) ||
        qt_fail "100 Hz ping n2 -> n1 lost $((QT_PING_TX - QT_PING_RX)) of $QT_PING_TX across the failed reload" 1 2
    qt_log "figures: failed reload resumed: ${line#*reload failed: }; 100 Hz ping $QT_PING_RX/$QT_PING_TX"
}
