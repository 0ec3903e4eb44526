#!/usr/bin/env bash
# Installs what the end-to-end tests need on Debian 12 (run as root; a Rust
# toolchain is assumed). Idempotent: when everything is already installed it
# changes nothing and touches no network.
set -euo pipefail

packages=(
    # the services and tools harden manages
    openssh-server openssh-client ufw fail2ban iptables nftables
    unattended-upgrades python3-systemd
    # the sandbox harness (tests/support/sandbox.rs): unshare, nsenter,
    # setpriv, findmnt (util-linux), mount, ip and ss (iproute2), pgrep (procps)
    util-linux mount iproute2 procps
    # used by the tests themselves
    python3 sshpass netcat-openbsd
)

if [ "$(id -u)" != 0 ]; then
    echo "setup-debian.sh: must run as root" >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" = 0 ]; then
    echo "setup-debian.sh: all test packages are installed"
    exit 0
fi
echo "setup-debian.sh: installing ${missing[*]}"

# No init system to start daemons with here (and the tests start their own,
# inside sandboxes): keep package scripts from starting sshd or fail2ban. An
# existing policy-rc.d is left alone; ours is removed on exit.
policy=/usr/sbin/policy-rc.d
marker="# setup-debian.sh: temporary"
remove_policy() {
    if [ -f "$policy" ] && grep -qx "$marker" "$policy"; then
        rm -f "$policy"
    fi
}
if [ ! -e "$policy" ]; then
    trap remove_policy EXIT
    printf '#!/bin/sh\n%s\nexit 101\n' "$marker" > "$policy"
    chmod 755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt-get "${apt_options[@]}" update
apt-get "${apt_options[@]}" install -y "${packages[@]}"
echo "setup-debian.sh: done"
