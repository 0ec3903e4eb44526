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

# Tools that only check the examples (tests/examples.rs): `cloud-init schema`,
# `systemd-analyze verify`, `ansible-playbook`; and independent judges of the
# baseline's sshd settings (tests/baseline.rs): `ssh-audit`, `lynis`. Installed without their
# recommends (those would pull in the whole `ansible` collection bundle,
# sudo, eatmydata...), and they never run as services here (see below).
tool_packages=(systemd cloud-init ansible-core ssh-audit lynis)

if [ "$(id -u)" != 0 ]; then
    echo "setup-debian.sh: must run as root" >&2
    exit 1
fi

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
missing=()
for package in "${packages[@]}"; do
    is_installed "$package" || missing+=("$package")
done
missing_tools=()
for package in "${tool_packages[@]}"; do
    is_installed "$package" || missing_tools+=("$package")
done
if [ "${#missing[@]}" = 0 ] && [ "${#missing_tools[@]}" = 0 ]; then
    echo "setup-debian.sh: all test packages are installed"
    exit 0
fi
echo "setup-debian.sh: installing ${missing[*]} ${missing_tools[*]}"

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

# cloud-init is installed for the tests only (`cloud-init schema`, and first
# boots that tests/examples.rs runs inside sandboxes): it must never run on this
# machine. Its package enables its units for the next boot; the documented off
# switch, /etc/cloud/cloud-init.disabled, makes its systemd generator leave them
# inactive (on every boot: it is checked before any datasource). Written only
# when this script installs cloud-init (a machine that already has it keeps its
# own setting), before the package, so there is no moment at which it is
# installed and enabled. Installing starts nothing: no init system here, and
# policy-rc.d above.
cloud_init_off=/etc/cloud/cloud-init.disabled
for package in "${missing_tools[@]}"; do
    if [ "$package" = cloud-init ] && [ ! -e "$cloud_init_off" ]; then
        mkdir -p /etc/cloud
        printf '%s\n' "# setup-debian.sh: cloud-init is installed for tests only (cloud-init schema); never run it here" > "$cloud_init_off"
    fi
done

export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
# Refresh the package lists only when the current ones cannot satisfy the
# install (so a machine with fresh lists fetches nothing but the packages).
apt_install() {
    apt-get "${apt_options[@]}" install -y "$@" ||
        {
            # A third-party list that cannot be fetched must not stop Debian's packages.
            apt-get "${apt_options[@]}" update || echo "setup-debian.sh: apt-get update reported errors; trying the install anyway" >&2
            apt-get "${apt_options[@]}" install -y "$@"
        }
}
if [ "${#missing[@]}" != 0 ]; then
    apt_install "${missing[@]}"
fi
if [ "${#missing_tools[@]}" != 0 ]; then
    apt_install --no-install-recommends "${missing_tools[@]}"
fi
echo "setup-debian.sh: done"
