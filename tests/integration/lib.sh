# shellcheck shell=bash disable=SC2034  # globals are used by the sourcing scripts
# quantum integration harness: topology and helpers. Sourced, not executed.
#
# Topology (all inside namespaces this file creates; nothing touches the host's
# own interfaces):
#
#   ${QT_NS_PREFIX}hub   bridge qtbr0 = $QT_UNDERLAY.254/24, etcd on :2379
#                         (that address and 127.0.0.1 inside the hub)
#   ${QT_NS_PREFIX}nN    eth0 = $QT_UNDERLAY.N/24, lo up, default route via .254
#                         (veth pair: eth0 here, qtvN in the hub, on the bridge)
#   ${QT_NS_PREFIX}eM    (multi-member etcd only) member M, eth0 =
#                         $QT_UNDERLAY.(200+M)/24 (veth qteM in the hub)
#
# IPv6 is switched off in the hub and on every eth0 so that the underlay
# carries only IPv4 (no router solicitations / MLD in packet captures).
#
# Bookkeeping lives in $QT_WORK: `pids` ("pid starttime label" per process we
# started) and `netns` (namespaces we created). qt_cleanup kills only those
# PIDs (PID and start time must both match) and deletes only those namespaces.
#
# Callers set QT_BIN (the quantum binary) before starting nodes and call
# qt_init first. Every wait is bounded.

QT_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${QT_NS_PREFIX:=qt-}"            # demo uses qdemo-
: "${QT_UNDERLAY:=10.201.99}"       # first three octets of the underlay /24
: "${QT_LOG_LEVEL:=debug}"          # --log-level for the daemons
QT_HUB_NS=${QT_NS_PREFIX}hub
QT_HUB_IP=$QT_UNDERLAY.254
QT_BRIDGE=qtbr0
QT_ETCD_PORT=2379
QT_ETCD_URL=http://$QT_HUB_IP:$QT_ETCD_PORT
QT_PORT=1099                        # quantum UDP port
QT_DEV=quantum0                     # TUN device name passed to every node
QT_ENDPOINTS=$QT_HUB_IP:$QT_ETCD_PORT             # --datastore-endpoints of the nodes
QT_ETCDCTL_URL=http://127.0.0.1:$QT_ETCD_PORT     # what qt_etcdctl talks to (from the hub)

declare -a QT_PID=() QT_DATA=() QT_PIDFILE=() QT_IP=() QT_EXIT=() QT_ETCD_PIDS=()
declare -A QT_BGPING=()

qt_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
qt_die() { qt_log "ERROR: $*"; exit 1; }

# qt_init [DIR]: set up QT_WORK (created with mktemp unless DIR is given).
qt_init() {
    if [[ -n "${1:-}" ]]; then
        QT_WORK=$1
        mkdir -p "$QT_WORK"
    else
        local base=/tmp
        [[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm   # etcd fsyncs: keep it in RAM
        QT_WORK=$(mktemp -d "$base/quantum-it.XXXXXX")
    fi
    : >>"$QT_WORK/pids"
    : >>"$QT_WORK/netns"
    export QT_WORK
}

qt_ns() { printf '%s\n' "${QT_NS_PREFIX}n$1"; }
qt_underlay_ip() { printf '%s\n' "$QT_UNDERLAY.$1"; }
qt_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# Namespaces with our prefix that already exist (left over or another run).
qt_existing_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^${QT_NS_PREFIX}" || true; }

# ---- processes ---------------------------------------------------------------

qt_starttime() { # PID -> start time in clock ticks (field 22 of /proc/PID/stat)
    local s f
    { s=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
    f=${s##*) }
    # shellcheck disable=SC2086
    set -- $f
    printf '%s\n' "${20}"
}

# qt_alive PID [STARTTIME]: PID exists, is not a zombie, and (if given) is the
# process that had this start time.
qt_alive() {
    local s st
    { s=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
    s=${s##*) }
    [[ ${s:0:1} == Z ]] && return 1
    [[ -z "${2:-}" ]] && return 0
    st=$(qt_starttime "$1") || return 1
    [[ "$st" == "$2" ]]
}

qt_record_pid() { # PID LABEL
    local st
    st=$(qt_starttime "$1") || st=dead
    printf '%s %s %s\n' "$1" "$st" "$2" >>"$QT_WORK/pids"
}

qt_recorded_start() { awk -v p="$1" '$1 == p {print $2; exit}' "$QT_WORK/pids"; }

# qt_spawn NS LOG LABEL CMD...: run CMD in NS in the background, output to LOG,
# record its PID; the PID is left in QT_LAST_PID. `ip netns exec` execs CMD,
# so the PID is CMD's own. CMD must stay in the foreground.
qt_spawn() {
    local ns=$1 log=$2 label=$3
    shift 3
    ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
    QT_LAST_PID=$!
    qt_record_pid "$QT_LAST_PID" "$label"
}

# qt_stop_pid PID [SIGNAL] [GRACE_S]: signal one process we recorded, wait up
# to GRACE_S (default 5) seconds, then SIGKILL. Reaps it if it is our child and
# leaves its exit status in QT_LAST_RC (or "?" if it was not our child).
qt_stop_pid() {
    local pid=$1 sig=${2:-TERM} grace=${3:-5} st i
    QT_LAST_RC="?"
    st=$(qt_recorded_start "$pid")
    [[ -n "$st" ]] || { qt_log "refusing to signal unrecorded pid $pid"; return 1; }
    if qt_alive "$pid" "$st"; then
        kill -s "$sig" "$pid" 2>/dev/null
        for ((i = 0; i < grace * 10; i++)); do
            qt_alive "$pid" "$st" || break
            sleep 0.1
        done
        if qt_alive "$pid" "$st"; then
            qt_log "pid $pid ignored SIG$sig for ${grace}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    if wait "$pid" 2>/dev/null; then QT_LAST_RC=0; else QT_LAST_RC=$?; fi
    # wait returns 127 when PID is not our child: status unknown
    [[ $QT_LAST_RC == 127 ]] && QT_LAST_RC="?"
    return 0
}

# qt_wait_pid PID TIMEOUT_S: wait (bounded) for a recorded process to exit by
# itself; QT_LAST_RC gets its status. Returns 1 if it is still running.
qt_wait_pid() {
    local pid=$1 t=$2 st end
    st=$(qt_recorded_start "$pid")
    end=$((SECONDS + t))
    while qt_alive "$pid" "$st" && ((SECONDS < end)); do sleep 0.1; done
    qt_alive "$pid" "$st" && return 1
    if wait "$pid" 2>/dev/null; then QT_LAST_RC=0; else QT_LAST_RC=$?; fi
    return 0
}

# qt_kill_recorded: TERM every recorded process still alive, 5 s grace, KILL.
qt_kill_recorded() {
    local f=$QT_WORK/pids pid st label i any
    [[ -f $f ]] || return 0
    while read -r pid st label; do
        [[ -n $pid ]] && qt_alive "$pid" "$st" && kill -TERM "$pid" 2>/dev/null
    done <"$f"
    for ((i = 0; i < 50; i++)); do
        any=
        while read -r pid st label; do
            [[ -n $pid ]] && qt_alive "$pid" "$st" && { any=1; break; }
        done <"$f"
        [[ -z $any ]] && break
        sleep 0.1
    done
    while read -r pid st label; do
        if [[ -n $pid ]] && qt_alive "$pid" "$st"; then
            qt_log "pid $pid ($label) ignored SIGTERM, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    done <"$f"
    return 0
}

# qt_wait_for TIMEOUT_S CMD...: poll CMD every 0.2 s until it succeeds.
qt_wait_for() {
    local t=$1 end
    shift
    end=$((SECONDS + t))
    while ((SECONDS < end)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    "$@" >/dev/null 2>&1
}

# ---- topology ----------------------------------------------------------------

qt_netns_add() {
    ip netns add "$1" || return 1
    printf '%s\n' "$1" >>"$QT_WORK/netns"
    ip -n "$1" link set lo up
}

# qt_hub_up: hub namespace with the bridge holding $QT_HUB_IP.
qt_hub_up() {
    qt_netns_add "$QT_HUB_NS" || return 1
    ip netns exec "$QT_HUB_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$QT_HUB_NS" link add "$QT_BRIDGE" type bridge stp_state 0 forward_delay 0 &&
        ip -n "$QT_HUB_NS" addr add "$QT_HUB_IP/24" dev "$QT_BRIDGE" &&
        ip -n "$QT_HUB_NS" link set "$QT_BRIDGE" up
}

# qt_attach_ns NS HOST VETH: new namespace NS with eth0 = $QT_UNDERLAY.HOST/24,
# joined to the bridge through VETH (the hub's end of the pair).
qt_attach_ns() {
    local ns=$1 host=$2 veth=$3
    qt_netns_add "$ns" || return 1
    ip -n "$ns" link add eth0 type veth peer name "$veth" netns "$QT_HUB_NS" || return 1
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.eth0.disable_ipv6=1"
    ip -n "$ns" addr add "$(qt_underlay_ip "$host")/24" dev eth0 &&
        ip -n "$ns" link set eth0 up &&
        ip -n "$QT_HUB_NS" link set "$veth" master "$QT_BRIDGE" &&
        ip -n "$QT_HUB_NS" link set "$veth" up &&
        ip -n "$ns" route add default via "$QT_HUB_IP" dev eth0
}

# qt_node_ns_up N: namespace ${QT_NS_PREFIX}nN joined to the bridge.
qt_node_ns_up() { qt_attach_ns "$(qt_ns "$1")" "$1" "qtv$1"; }

# qt_topology_up N: hub + nodes 1..N.
qt_topology_up() {
    local i
    qt_hub_up || return 1
    for ((i = 1; i <= $1; i++)); do qt_node_ns_up "$i" || return 1; done
}

# qt_port_state N forwarding|disabled: open/close node N's port on the bridge
# (the link stays up, only frames stop flowing through the bridge).
qt_port_state() {
    local s=3
    [[ $2 == disabled ]] && s=0
    bridge -n "$QT_HUB_NS" link set dev "qtv$1" state "$s"
}

# ---- etcd --------------------------------------------------------------------
# Member 0 is the single etcd in the hub (qt_etcd_start); members 1..N form a
# cluster, each in its own namespace ${QT_NS_PREFIX}eM (qt_etcd_cluster_up N).
# A member keeps its data dir ($QT_WORK/etcd, $QT_WORK/etcd-eM), so
# qt_etcd_member_start on a stopped member brings it back with its old data.

qt_etcdctl() { ip netns exec "$QT_HUB_NS" env ETCDCTL_API=3 etcdctl --endpoints "$QT_ETCDCTL_URL" --dial-timeout 2s --command-timeout 5s "$@"; }

qt_etcd_member_ns() { if (($1 == 0)); then printf '%s\n' "$QT_HUB_NS"; else printf '%s\n' "${QT_NS_PREFIX}e$1"; fi; }
qt_etcd_member_ip() { if (($1 == 0)); then printf '%s\n' "$QT_HUB_IP"; else qt_underlay_ip $((200 + $1)); fi; }
qt_etcd_member_log() { if (($1 == 0)); then printf '%s\n' "$QT_WORK/etcd.log"; else printf '%s\n' "$QT_WORK/etcd-e$1.log"; fi; }

# qt_etcd_member_healthy M: `etcdctl endpoint health` on member M's client
# address, from the hub (1 s dial, 2 s command timeout).
qt_etcd_member_healthy() {
    ip netns exec "$QT_HUB_NS" env ETCDCTL_API=3 etcdctl --endpoints "http://$(qt_etcd_member_ip "$1"):$QT_ETCD_PORT" \
        --dial-timeout 1s --command-timeout 2s endpoint health
}

# qt_etcd_member_start M [new|existing]: start member M in the background (the
# single hub etcd for M = 0, else member M of QT_ETCD_MEMBERS); PID in
# QT_ETCD_PIDS[M]. Does not wait for health (qt_etcd_wait_healthy).
qt_etcd_member_start() {
    local m=$1 state=${2:-new} ip name data peer cluster="" i
    ip=$(qt_etcd_member_ip "$m")
    if ((m == 0)); then
        name=qt data=$QT_WORK/etcd peer=http://127.0.0.1:2380 cluster="qt=http://127.0.0.1:2380"
    else
        name=e$m data=$QT_WORK/etcd-e$m peer=http://$ip:2380
        for ((i = 1; i <= QT_ETCD_MEMBERS; i++)); do
            cluster+="${cluster:+,}e$i=http://$(qt_etcd_member_ip "$i"):2380"
        done
    fi
    printf '==== %(%H:%M:%S)T start etcd %s (cluster state %s)\n' -1 "$name" "$state" >>"$(qt_etcd_member_log "$m")"
    qt_spawn "$(qt_etcd_member_ns "$m")" "$(qt_etcd_member_log "$m")" "etcd-$name" \
        env -u ETCD_DATA_DIR etcd --name "$name" --data-dir "$data" \
        --listen-client-urls "http://$ip:$QT_ETCD_PORT,http://127.0.0.1:$QT_ETCD_PORT" \
        --advertise-client-urls "http://$ip:$QT_ETCD_PORT" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token "${QT_NS_PREFIX}etcd"
    QT_ETCD_PIDS[m]=$QT_LAST_PID
}

# qt_etcd_member_stop M [SIGNAL=TERM]: stop member M (5 s grace, then SIGKILL).
qt_etcd_member_stop() {
    local m=$1 sig=${2:-TERM}
    [[ -n "${QT_ETCD_PIDS[m]:-}" ]] || return 0
    qt_stop_pid "${QT_ETCD_PIDS[m]}" "$sig" 5
    printf '==== %(%H:%M:%S)T stopped etcd member %s with SIG%s (exit %s)\n' -1 "$m" "$sig" "$QT_LAST_RC" >>"$(qt_etcd_member_log "$m")"
    QT_ETCD_PIDS[m]=
}

# qt_etcd_wait_healthy M [TIMEOUT_S=20]: wait for member M's health; if it
# does not come, log its last lines and fail.
qt_etcd_wait_healthy() {
    qt_wait_for "${2:-20}" qt_etcd_member_healthy "$1" && return 0
    qt_log "etcd member $1 not healthy within ${2:-20} s; last log lines:"
    tail -n 5 "$(qt_etcd_member_log "$1")" >&2
    return 1
}

# qt_etcd_start: etcd in the hub, on $QT_HUB_IP:2379 and 127.0.0.1:2379;
# waits (20 s max) for `etcdctl endpoint health`. After qt_etcd_member_stop 0,
# calling it again restarts etcd on the same data dir.
qt_etcd_start() {
    qt_etcd_member_start 0 && qt_etcd_wait_healthy 0
}

# qt_etcd_cluster_up N: an N-member etcd cluster, member M in namespace
# ${QT_NS_PREFIX}eM at $QT_UNDERLAY.(200+M); waits until every member is
# healthy. Nodes started afterwards get all N client endpoints, in member
# order; qt_etcdctl talks to member N.
qt_etcd_cluster_up() {
    local n=$1 m
    QT_ETCD_MEMBERS=$n QT_ENDPOINTS=
    for ((m = 1; m <= n; m++)); do
        qt_attach_ns "$(qt_etcd_member_ns "$m")" $((200 + m)) "qte$m" || return 1
        QT_ENDPOINTS+="${QT_ENDPOINTS:+,}$(qt_etcd_member_ip "$m"):$QT_ETCD_PORT"
    done
    for ((m = 1; m <= n; m++)); do qt_etcd_member_start "$m" new; done
    for ((m = 1; m <= n; m++)); do qt_etcd_wait_healthy "$m" 30 || return 1; done
    QT_ETCDCTL_URL=http://$(qt_etcd_member_ip "$n"):$QT_ETCD_PORT
}

# qt_etcd_revision: the store's current revision.
qt_etcd_revision() {
    qt_etcdctl get / -w json --limit 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["header"]["revision"])'
}

# qt_etcd_mod_revision KEY: KEY's mod_revision; fails if KEY is absent.
qt_etcd_mod_revision() {
    qt_etcdctl get "$1" -w json | python3 -c '
import json, sys
kvs = json.load(sys.stdin).get("kvs") or []
print(kvs[0]["mod_revision"]) if kvs else sys.exit(1)'
}

# ---- faults ------------------------------------------------------------------

# qt_blackhole_on NS PORT: in namespace NS, silently drop every incoming TCP
# segment to PORT (nftables; no reset, so connections stall instead of failing).
qt_blackhole_on() {
    ip netns exec "$1" nft -f - <<NFT
table inet qt_blackhole {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $2 counter drop
    }
}
NFT
}

# qt_blackhole_off NS: remove the black hole from NS.
qt_blackhole_off() { ip netns exec "$1" nft delete table inet qt_blackhole; }

# qt_blackhole_drops NS: how many packets the black hole in NS has dropped.
qt_blackhole_drops() {
    ip netns exec "$1" nft list table inet qt_blackhole |
        awk '/counter packets/ {for (i = 1; i < NF; i++) if ($i == "packets") {print $(i + 1); exit}}'
}

# ---- quantum nodes -----------------------------------------------------------

qt_node_log() { printf '%s\n' "$QT_WORK/n$1.log"; }

# qt_node_start N [DAEMON ARGS...]: start quantum in node N's namespace with
# data dir ${QT_DATA[N]} (default $QT_WORK/n$N.data; set QT_DATA[N] first to
# choose another) and pid file ${QT_PIDFILE[N]} (default $QT_WORK/n$N.pid). PID in QT_PID[N]. If QT_GATE is set to a path, the daemon
# is exec'd only once that file exists (to start several nodes at one instant).
qt_node_start() {
    local n=$1 ns data log
    shift
    : "${QT_BIN:?QT_BIN must name the quantum binary}"
    ns=$(qt_ns "$n")
    data=${QT_DATA[n]:-$QT_WORK/n$n.data}
    QT_DATA[n]=$data
    QT_PIDFILE[n]=${QT_PIDFILE[n]:-$QT_WORK/n$n.pid}
    log=$(qt_node_log "$n")
    # Private, as the daemon requires of a directory that holds its key.
    install -d -m 0700 "$data"
    local cmd=("$QT_BIN" --datastore-endpoints "$QT_ENDPOINTS" --data-dir "$data"
        --listen-port "$QT_PORT" --device-name "$QT_DEV" --log-level "$QT_LOG_LEVEL"
        --pid-file "${QT_PIDFILE[n]}" "$@")
    if [[ -n "${QT_GATE:-}" ]]; then
        # shellcheck disable=SC2016
        cmd=(/bin/sh -c 'while [ ! -e "$0" ]; do sleep 0.01; done; exec "$@"' "$QT_GATE" "${cmd[@]}")
    fi
    printf '==== %(%H:%M:%S)T start n%s in %s: %s\n' -1 "$n" "$ns" "${cmd[*]}" >>"$log"
    qt_spawn "$ns" "$log" "n$n" "${cmd[@]}"
    QT_PID[n]=$QT_LAST_PID
}

# qt_node_follow N [TIMEOUT_S=10]: after a rolling restart (SIGHUP) of node N, wait
# (bounded) for its pid file (${QT_PIDFILE[N]}) to name a new live process, record
# that PID (cleanup then still kills only processes this test started) and make it
# QT_PID[N]; the previous PID is left in QT_OLD_PID. Fails if no new PID appears.
qt_node_follow() {
    local n=$1 t=${2:-10} end pid
    QT_OLD_PID=${QT_PID[n]}
    end=$((SECONDS + t))
    while ((SECONDS < end)); do
        pid=$(cat "${QT_PIDFILE[n]}" 2>/dev/null)
        if [[ -n $pid && $pid != "$QT_OLD_PID" ]] && qt_alive "$pid"; then
            qt_record_pid "$pid" "n$n"
            QT_PID[n]=$pid
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# qt_node_alive N
qt_node_alive() { [[ -n "${QT_PID[$1]:-}" ]] && qt_alive "${QT_PID[$1]}" "$(qt_recorded_start "${QT_PID[$1]}")"; }

# qt_node_stop N [SIGNAL]: SIGTERM (5 s grace, then SIGKILL) our node N only.
# Exit status in QT_EXIT[N].
qt_node_stop() {
    local n=$1
    [[ -n "${QT_PID[n]:-}" ]] || return 0
    qt_stop_pid "${QT_PID[n]}" "${2:-TERM}" 5
    QT_EXIT[n]=$QT_LAST_RC
    printf '==== %(%H:%M:%S)T stopped n%s (exit %s)\n' -1 "$n" "$QT_LAST_RC" >>"$(qt_node_log "$n")"
    QT_PID[n]=
}

# qt_node_ip N -> the IPv4 address on node N's quantum0, if any.
qt_node_ip() {
    ip -n "$(qt_ns "$1")" -4 -o addr show dev "$QT_DEV" 2>/dev/null |
        awk '{split($4, a, "/"); print a[1]; exit}'
}

qt_dev_exists() { ip -n "$(qt_ns "$1")" link show dev "$QT_DEV" >/dev/null 2>&1; }

# qt_wait_node_ip N [TIMEOUT_S=30]: wait until quantum0 in node N has an IPv4
# address; sets QT_IP[N]. Returns 2 at once if the daemon exited.
qt_wait_node_ip() {
    local n=$1 t=${2:-30} end ip
    end=$((SECONDS + t))
    while :; do
        ip=$(qt_node_ip "$n")
        if [[ -n $ip ]]; then QT_IP[n]=$ip; return 0; fi
        if ! qt_node_alive "$n"; then
            if wait "${QT_PID[n]}" 2>/dev/null; then QT_EXIT[n]=0; else QT_EXIT[n]=$?; fi
            return 2
        fi
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# qt_ping FROM_N IP [WINDOW_S=20]: `ping -c 3 -W 2` from node FROM_N's namespace,
# retried until it succeeds or the window closes (the first packets may wait
# for a handshake). Last ping output in QT_PING_OUT.
qt_ping() {
    local n=$1 ip=$2 w=${3:-20} end ns
    ns=$(qt_ns "$n")
    end=$((SECONDS + w))
    while :; do
        if QT_PING_OUT=$(ip netns exec "$ns" ping -n -q -c 3 -i 0.2 -W 2 "$ip" 2>&1); then
            return 0
        fi
        ((SECONDS < end)) || return 1
        sleep 0.5
    done
}

# qt_ping_rtt: "avg RTT ms" from the last qt_ping output.
qt_ping_rtt() { awk -F'/' '/^rtt|^round-trip/ {print $5; exit}' <<<"$QT_PING_OUT"; }

# qt_now: wall-clock time in microseconds.
qt_now() { local t=${EPOCHREALTIME/[.,]/}; printf '%s\n' "$((10#$t))"; }

# qt_since T0: seconds since T0 (from qt_now), with one decimal.
qt_since() {
    local d=$(($(qt_now) - $1))
    printf '%d.%d\n' $((d / 1000000)) $((d % 1000000 / 100000))
}

# qt_reach FROM_N IP BOUND_S: ping IP from node FROM_N every 0.1 s until the
# first reply, for at most BOUND_S (whole) seconds; succeeds on a reply.
qt_reach() {
    ip netns exec "$(qt_ns "$1")" ping -n -q -c 1 -i 0.1 -W 1 -w "$3" "$2" >/dev/null 2>&1
}

# qt_dev_rx N: packets node N's quantum has written into its $QT_DEV (what the
# kernel received from the tunnel), from the device's own counter.
qt_dev_rx() { ip netns exec "$(qt_ns "$1")" cat "/sys/class/net/$QT_DEV/statistics/rx_packets"; }

# qt_wait_dev_rx N COUNT [TIMEOUT_S=10]: wait (bounded) until node N's $QT_DEV has
# received COUNT more packets from the tunnel than when called; fails otherwise.
# Lets a case wait for traffic to be flowing instead of sleeping for it.
qt_wait_dev_rx() {
    local n=$1 want start
    start=$(qt_dev_rx "$n") || return 1
    want=$((start + $2))
    qt_wait_for "${3:-10}" qt_dev_rx_at_least "$n" "$want"
}
qt_dev_rx_at_least() { local got; got=$(qt_dev_rx "$1") && ((got >= $2)); }

# qt_bgping_start NAME FROM_N IP SECONDS: background ping at 10 Hz from node
# FROM_N to IP for SECONDS (SECONDS * 10 echo requests), output in
# $QT_WORK/NAME.ping.
qt_bgping_start() {
    local name=$1 n=$2 ip=$3 s=$4
    qt_spawn "$(qt_ns "$n")" "$QT_WORK/$name.ping" "ping-$name" ping -n -q -i 0.1 -W 1 -c $((s * 10)) "$ip"
    QT_BGPING[$name]=$QT_LAST_PID
}

# qt_bgping_result NAME [TIMEOUT_S=30]: wait (bounded) for that ping to end and
# set QT_PING_TX / QT_PING_RX from its `N packets transmitted, M received` line.
# Fails if it is still running or printed no such line.
qt_bgping_result() {
    local name=$1 line re='([0-9]+) packets transmitted, ([0-9]+) (packets )?received'
    QT_PING_TX= QT_PING_RX=
    qt_wait_pid "${QT_BGPING[$name]}" "${2:-30}" || return 1
    line=$(grep -m1 'packets transmitted' "$QT_WORK/$name.ping") || return 1
    [[ $line =~ $re ]] || return 1
    QT_PING_TX=${BASH_REMATCH[1]} QT_PING_RX=${BASH_REMATCH[2]}
}

# qt_rss_peak N: node N's peak resident set size in kB (VmHWM).
qt_rss_peak() {
    qt_node_alive "$1" || return 1
    awk '/^VmHWM:/ {print $2; exit}' "/proc/${QT_PID[$1]}/status"
}

# qt_counters N: SIGUSR1 node N and print the name=value pairs of the
# `counters:` line it logs in response (waits up to 5 s).
qt_counters() {
    local n=$1 log before i line
    log=$(qt_node_log "$n")
    before=$(grep -c 'counters:' "$log")
    qt_node_alive "$n" || return 1
    kill -USR1 "${QT_PID[n]}" || return 1
    for ((i = 0; i < 50; i++)); do
        if (($(grep -c 'counters:' "$log") > before)); then
            line=$(grep 'counters:' "$log" | tail -n 1)
            printf '%s\n' "${line#*counters:}"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# qt_counter_get "PAIRS" NAME -> value (empty if absent)
qt_counter_get() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2; exit}'; }

# qt_tail N [LINES=15]: last lines of node N's log, indented.
qt_tail() { tail -n "${2:-15}" "$(qt_node_log "$1")" 2>/dev/null | sed 's/^/    | /'; }

# ---- cleanup -----------------------------------------------------------------

# qt_cleanup: kill our processes, delete our namespaces. Idempotent; safe to
# call from traps and from a parent process after the fact (only needs QT_WORK).
qt_cleanup() {
    [[ -n "${QT_WORK:-}" && -d "$QT_WORK" ]] || return 0
    qt_kill_recorded
    local ns
    if [[ -f "$QT_WORK/netns" ]]; then
        # nodes first, hub last (reverse creation order)
        for ns in $(tac "$QT_WORK/netns"); do
            qt_ns_exists "$ns" && ip netns del "$ns" 2>/dev/null
        done
        : >"$QT_WORK/netns"
    fi
    : >"$QT_WORK/pids"
    return 0
}

# qt_remove_work: delete QT_WORK (call after qt_cleanup; keeps it if QT_KEEP=1)
qt_remove_work() {
    [[ -n "${QT_WORK:-}" && -d "$QT_WORK" ]] || return 0
    if [[ "${QT_KEEP:-0}" == 1 ]]; then
        qt_log "keeping $QT_WORK (QT_KEEP=1)"
    else
        rm -rf -- "$QT_WORK"
    fi
}

# qt_can_netns: root, /dev/net/tun, and `ip netns add` works.
qt_can_netns() {
    [[ $EUID -eq 0 ]] || return 1
    [[ -c /dev/net/tun ]] || return 1
    local probe=${QT_NS_PREFIX}probe-$$
    ip netns add "$probe" 2>/dev/null || return 1
    ip netns del "$probe" 2>/dev/null
    return 0
}
