# shellcheck shell=bash disable=SC2034  # globals are used by run.sh
# Key hygiene at start-up (issue 7 §4). Sourced by run.sh after cases.sh, whose helpers
# (setup, wait_up, qt_fail, qt_step …) it uses.
QT_CASES+=(
    "key_exposure_refused 90"
)

# refused_exposure WHAT DATADIR PATTERN...: a start with DATADIR exits non-zero within 10 s
# with one line holding every PATTERN, and leaves the modes and the key as they were.
refused_exposure() {
    local what=$1 data=$2 rc err=$QT_WORK/n1.log before after
    shift 2
    qt_step "$what"
    before=$(stat -c '%a %u' "$data" "$data/private.key"; sha256sum "$data/private.key")
    timeout 10 ip netns exec "$(qt_ns 1)" "$QT_BIN" --datastore-endpoints "$QT_ENDPOINTS" --data-dir "$data" \
        --listen-port "$QT_PORT" --device-name "$QT_DEV" </dev/null >"$err" 2>&1
    rc=$?
    ((rc != 0 && rc != 124)) || qt_fail "$what: exited $rc" 1
    (($(wc -l <"$err") == 1)) || qt_fail "$what: printed more than one line" 1
    local pattern
    for pattern in "$@"; do grep -qF -- "$pattern" "$err" || qt_fail "$what: '$pattern' missing from: $(cat "$err")" 1; done
    after=$(stat -c '%a %u' "$data" "$data/private.key"; sha256sum "$data/private.key")
    [[ $before == "$after" ]] || qt_fail "$what: the files were changed (before: $before, after: $after)" 1
    qt_log "refused: $(cat "$err")"
}

tc_key_exposure_refused() {
    setup 1
    local data=$QT_WORK/exposed.data key
    # A first start makes the identity in a directory a script created with mkdir -p
    # (0755, no key yet): tightened to 0700 with a notice, then the key is made.
    mkdir -p "$data"
    chmod 0755 "$data"
    QT_DATA[1]=$data
    qt_spawn "$(qt_ns 1)" "$(qt_node_log 1)" n1 "$QT_BIN" --datastore-endpoints "$QT_ENDPOINTS" --data-dir "$data" \
        --listen-port "$QT_PORT" --device-name "$QT_DEV"
    QT_PID[1]=$QT_LAST_PID
    wait_up 1
    [[ $(stat -c '%a' "$data") == 700 ]] || qt_fail "the fresh data directory is $(stat -c '%a' "$data"), not 700" 1
    grep -q "had mode 0755 and no private key yet" "$(qt_node_log 1)" || qt_fail "no notice about tightening $data" 1
    qt_node_stop 1
    key=$data/private.key
    [[ $(stat -c '%a' "$key") == 600 ]] || qt_fail "the new key file is $(stat -c '%a' "$key"), not 600" 1

    chmod 0755 "$data"
    refused_exposure "a data directory open to others, holding the key" "$data" "$data" "mode 0755" "chmod 0700 $data"
    chmod 0700 "$data"
    chmod 0640 "$key"
    refused_exposure "a key file readable by its group" "$data" "$key" "mode 0640" "chmod 0600 $key"
    chmod 0600 "$key"
    chown 65534:65534 "$key"
    refused_exposure "a key file owned by another user" "$data" "$key" "owned by uid 65534" "chown 0 $key"
    chown 0:0 "$key"
    qt_log "figures: 0755 empty data dir tightened with a notice; open directory, group-readable key, foreign owner refused in one line each"
}
