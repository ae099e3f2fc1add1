#!/usr/bin/env bash
# Install what quantum needs to build, test and demo on Debian/Ubuntu.
# Idempotent: apt-get runs only if a package is missing. Needs root for that.
# Also checks that a Swift toolchain is reachable.
set -euo pipefail

PACKAGES=(etcd-server etcd-client iperf3 tcpdump iputils-ping iproute2 libssl-dev python3 procps nftables liblz4-dev systemd ethtool)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
else
    if [[ $EUID -ne 0 ]]; then
        echo "install-deps: missing packages: ${missing[*]}" >&2
        echo "install-deps: run as root (or: sudo apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if command -v swift >/dev/null 2>&1; then
    echo "install-deps: swift: $(swift --version 2>&1 | head -n 1)"
elif [[ -x /opt/swift/usr/bin/swift ]]; then
    echo "install-deps: swift found at /opt/swift/usr/bin but not on PATH;"
    echo "              add it with: export PATH=/opt/swift/usr/bin:\$PATH"
else
    echo "install-deps: no Swift toolchain: 'swift' is not on PATH and /opt/swift/usr/bin does not exist." >&2
    echo "              Install Swift 6 for Linux from https://www.swift.org/install/linux/ (e.g. into /opt/swift)." >&2
    exit 1
fi
