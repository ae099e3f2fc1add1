# shellcheck shell=bash disable=SC2034  # globals are used by run.sh and lib.sh
# Scale and footprint cases (issue 8): a node starting against a map of 10,000 nodes,
# one changed mapping in that map, and the resident memory and CPU of an idle node.
# Sourced by run.sh after cases.sh.
QT_CASES+=("scale_10k 240" "idle_footprint 120")

# ms_since T0: whole milliseconds since T0 (from qt_now).
ms_since() { printf '%d\n' $((($(qt_now) - $1) / 1000)); }

# log_count N PATTERN: how many lines of node N's log match the fixed string PATTERN.
log_count() { grep -c -F -- "$2" "$(qt_node_log "$1")"; }

# wait_log_count N PATTERN COUNT BOUND_S: poll (every 10 ms) until node N's log holds
# COUNT lines matching PATTERN; fails after BOUND_S seconds.
wait_log_count() {
    local end=$(($(qt_now) + $4 * 1000000))
    until (($(log_count "$1" "$2") >= $3)); do
        (($(qt_now) < end)) || return 1
        qt_node_alive "$1" || return 1
        sleep 0.01
    done
}

# mb KB: KB kilobytes (1024 bytes, as /proc counts) in decimal megabytes, one decimal (the issue's unit).
mb() { printf '%d.%d MB' $(($1 * 1024 / 1000000)) $(($1 * 1024 % 1000000 / 100000)); }

# proc_field N FIELD: a field of node N's /proc/PID/status in kB (VmRSS, VmHWM, ...).
proc_field() {
    qt_node_alive "$1" || return 1
    awk -v f="$2:" '$1 == f {print $2; exit}' "/proc/${QT_PID[$1]}/status"
}

# rss_split N: node N's resident memory by kind, e.g. "3.9 MB own data, 21.4 MB code and files":
# anonymous pages (heap, stacks, relocated data) against file pages (code, read-only data).
rss_split() {
    local anon file
    anon=$(proc_field "$1" RssAnon) || return 1
    file=$(proc_field "$1" RssFile) || return 1
    printf '%s own data, %s code and files' "$(mb "$anon")" "$(mb "$file")"
}

# cpu_ticks N: user + system clock ticks node N's process used so far (all threads).
cpu_ticks() {
    qt_node_alive "$1" || return 1
    # Fields 14 and 15 of /proc/PID/stat, counted after the command name's closing parenthesis.
    awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/${QT_PID[$1]}/stat"
}

# Bounds of scale_10k: the issue's targets (the whole map within 1 s, 50 MB resident, one change
# within 100 ms) apply to the release build. CI runs the debug build on 2 shared cores, whose
# code alone is 8 MB more resident and some 2-3x slower: it gets 5 s, 80 MiB and 500 ms, bounds
# that still catch the regressions that matter here (work per mapping that grows with the
# map, a copy of the map per change, a change waiting for a resync). A binary under a
# `release` directory is held to the issue's figures (override: SCALE_*).
SCALE_COUNT=10000
scale_bounds() {
    if [[ $QT_BIN == */release/* ]]; then
        # 50 MB and 30 MB in /proc's kilobytes of 1024 bytes.
        : "${SCALE_UP_MS:=1000}" "${SCALE_RSS_KB:=48828}" "${SCALE_CHANGE_MS:=100}" "${IDLE_RSS_KB:=29296}"
    else
        : "${SCALE_UP_MS:=5000}" "${SCALE_RSS_KB:=$((80 * 1024))}" "${SCALE_CHANGE_MS:=500}" "${IDLE_RSS_KB:=$((50 * 1024))}"
    fi
}

tc_scale_10k() {
    local out t0 up_ms all_ms hwm rss key value changed change_ms
    scale_bounds
    setup 1
    qt_step "seeding $SCALE_COUNT mappings before any node starts"
    out=$(timeout 150 ip netns exec "$QT_HUB_NS" python3 "$QT_LIB_DIR/../../scripts/seed-mappings.py" \
        --endpoint "http://127.0.0.1:$QT_ETCD_PORT" --count "$SCALE_COUNT" 2>&1) || qt_fail "seeding failed: $out"
    qt_log "$out"

    qt_step "starting n1 against the map"
    t0=$(qt_now)
    drill_node 1
    qt_wait_node_ip 1 30 || qt_fail "n1 has no address on $QT_DEV after 30 s" 1
    up_ms=$(ms_since "$t0")
    qt_step "waiting until n1 has all $SCALE_COUNT peers"
    wait_log_count 1 " added at " "$SCALE_COUNT" 30 ||
        qt_fail "n1 added only $(log_count 1 " added at ") of $SCALE_COUNT peers within 30 s" 1
    all_ms=$(ms_since "$t0")
    hwm=$(proc_field 1 VmHWM) || qt_fail "cannot read n1's VmHWM" 1
    qt_log "figures: $SCALE_COUNT mappings: n1 up in $up_ms ms, all peers added in $all_ms ms, peak RSS so far $(mb "$hwm")"
    # The table with every peer is in place once the control thread logged it.
    wait_log_count 1 "forwarding table: $SCALE_COUNT peers" 1 10 ||
        qt_fail "n1 logged no forwarding table with $SCALE_COUNT peers" 1
    hwm=$(proc_field 1 VmHWM) || qt_fail "cannot read n1's VmHWM" 1
    rss=$(proc_field 1 VmRSS) || qt_fail "cannot read n1's VmRSS" 1
    split=$(rss_split 1) || qt_fail "cannot read n1's RssAnon/RssFile" 1

    # One seeded node moves to another public address: a single watch event.
    qt_step "changing one mapping"
    key=/quantum/nodes/10.99.20.1
    value=$(qt_etcdctl get --print-value-only "$key") || qt_fail "cannot read $key"
    changed=$(python3 -c 'import json, sys; m = json.loads(sys.argv[1]); m["ipv4"] = "10.201.100.250"; print(json.dumps(m))' "$value")
    t0=$(qt_now)
    qt_etcdctl put "$key" "$changed" >/dev/null || qt_fail "cannot write $key"
    wait_log_count 1 "peer 10.99.20.1 mapping changed: endpoint 10.201.100.250:1099" 1 5 ||
        qt_fail "n1 did not apply the changed mapping of 10.99.20.1 within 5 s" 1
    change_ms=$(ms_since "$t0")
    qt_log "figures: peak RSS $(mb "$hwm") ($hwm kB; now $(mb "$rss"): $split); one changed mapping applied $change_ms ms after etcdctl put"
    ((all_ms <= SCALE_UP_MS)) || qt_fail "n1 had all $SCALE_COUNT peers only after $all_ms ms (bound $SCALE_UP_MS ms)" 1
    ((hwm <= SCALE_RSS_KB)) || qt_fail "n1's peak RSS is $(mb "$hwm") ($hwm kB; bound $SCALE_RSS_KB kB, $(mb "$SCALE_RSS_KB"))" 1
    ((change_ms <= SCALE_CHANGE_MS)) || qt_fail "n1 applied the change after $change_ms ms (bound $SCALE_CHANGE_MS ms)" 1
}

# Bound of idle_footprint (IDLE_RSS_KB, set by scale_bounds): the issue's 30 MB for a release
# build, 50 MiB for the debug build, which is neither static nor linked in start-up order
# (README, "Memory: how the binary is built"). Most of an idle node's resident memory is code
# pages (file-backed, shared), not its data: the figures line shows both.
tc_idle_footprint() {
    local n c0 c1 rss hwm ticks per_s
    scale_bounds
    setup 4
    for n in 1 2 3 4; do drill_node "$n"; done
    wait_up 1 2 3 4
    for n in 2 3 4; do must_ping 1 "$n"; done
    qt_step "n1 idle for 10 s"
    c0=$(cpu_ticks 1) || qt_fail "cannot read n1's /proc stat" 1
    sleep 10
    c1=$(cpu_ticks 1) || qt_fail "cannot read n1's /proc stat" 1
    rss=$(proc_field 1 VmRSS) || qt_fail "cannot read n1's VmRSS" 1
    hwm=$(proc_field 1 VmHWM) || qt_fail "cannot read n1's VmHWM" 1
    split=$(rss_split 1) || qt_fail "cannot read n1's RssAnon/RssFile" 1
    ticks=$((c1 - c0))
    per_s=$(getconf CLK_TCK)
    qt_log "figures: idle n1 with 3 peers: RSS $(mb "$rss") ($rss kB, peak $hwm kB; $split), CPU over 10 s idle $((ticks * 1000 / per_s)) ms"
    ((rss <= IDLE_RSS_KB)) || qt_fail "idle n1's RSS is $(mb "$rss") ($rss kB; bound $IDLE_RSS_KB kB, $(mb "$IDLE_RSS_KB"))" 1
    # Timers (4 Hz control tick, keepalives, datastore syncs) cost well under 1 % of a core.
    ((ticks * 1000 / per_s <= 100)) || qt_fail "idle n1 used $((ticks * 1000 / per_s)) ms of CPU in 10 s (bound 100 ms)" 1
}
