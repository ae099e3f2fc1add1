#!/usr/bin/env bash
# Installs quantum as a systemd service: builds the release binary, installs it as
# /usr/local/bin/quantum, installs dist/quantum.service, creates the system user "quantum"
# and an example /etc/quantum/quantum.yml (an existing config is never overwritten).
# Idempotent. Starts nothing unless --start is given.
#
#   scripts/install.sh [--start] [--binary PATH]
#     --start        enable the unit and start it now (needs a running systemd)
#     --binary PATH  install this quantum binary instead of building one
#   DESTDIR=/some/root  install the files under that root only (for packaging or a check);
#                       the user is not created and systemd is not told.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=false
binary=
while (($# > 0)); do
    case "$1" in
        --start) start=true ;;
        --binary) binary=${2:?install: --binary needs a path}; shift ;;
        *) echo "install: unknown argument '$1' (expected --start or --binary PATH)" >&2; exit 64 ;;
    esac
    shift
done
root="${DESTDIR:-}"
if [[ -z "$root" && $EUID -ne 0 ]]; then
    echo "install: run as root (it writes /usr/local/bin, /etc and creates a user), or set DESTDIR" >&2
    exit 1
fi
if [[ -n "$root" && "$start" == true ]]; then
    echo "install: --start cannot be used with DESTDIR" >&2
    exit 64
fi

if [[ -z "$binary" ]]; then
    [[ -x /opt/swift/usr/bin/swift ]] && PATH=/opt/swift/usr/bin:$PATH
    swift build -c release --static-swift-stdlib --product quantum
    binary=.build/release/quantum
fi
[[ -x "$binary" ]] || { echo "install: $binary is not an executable file" >&2; exit 1; }

if [[ -z "$root" ]] && ! getent passwd quantum >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/quantum --no-create-home \
        --shell /usr/sbin/nologin --comment "quantum VPN daemon" quantum
    echo "install: created the system user quantum"
fi

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/etc/quantum"
install -m 0755 "$binary" "$root/usr/local/bin/quantum"
install -m 0644 dist/quantum.service "$root/etc/systemd/system/quantum.service"
config="$root/etc/quantum/quantum.yml"
if [[ -e "$config" ]]; then
    echo "install: keeping the existing $config"
else
    install -m 0640 /dev/stdin "$config" <<'YAML'
# quantum configuration: keys are the long option names (see `quantum --help`);
# the environment (QUANTUM_*) and the command line override them.
datastore-endpoints: 127.0.0.1:2379
datastore-prefix: /quantum
# private-ip: 10.99.0.10
# plugins: [compression]
# log-level: info
YAML
    # Readable by the daemon, not by everyone: it may come to hold the etcd password.
    [[ -n "$root" ]] || chgrp quantum "$config"
    echo "install: wrote an example $config: set datastore-endpoints before starting"
fi

if [[ -z "$root" && -d /run/systemd/system ]]; then
    systemctl daemon-reload
    if [[ "$start" == true ]]; then
        systemctl enable --now quantum.service
        echo "install: quantum.service enabled and started"
    fi
elif [[ "$start" == true ]]; then
    echo "install: systemd is not running here: cannot --start" >&2
    exit 1
fi
echo "install: installed $("$root/usr/local/bin/quantum" --version) into ${root:-/}"
