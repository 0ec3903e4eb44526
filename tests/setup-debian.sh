#!/usr/bin/env bash
# Installs what the end-to-end tests need on Debian 12 (run as root; a Rust
# toolchain is assumed), and builds the Debian 13 image of the booted tier.
# Idempotent: when everything is already installed and the image is current it
# changes nothing and touches no network.
set -euo pipefail

packages=(
    # the services and tools harden manages
    openssh-server openssh-client ufw fail2ban iptables nftables
    unattended-upgrades python3-systemd
    # the sandbox harness (tests/support/sandbox.rs): unshare, nsenter,
    # setpriv, findmnt (util-linux), mount, ip and ss (iproute2), pgrep (procps)
    util-linux mount iproute2 procps
    # used by the tests themselves (kmod: `modprobe -n -v`, a dry run, for kernel_modules)
    python3 sshpass netcat-openbsd kmod
)

# Tools that only check the examples (tests/examples.rs): `cloud-init schema`,
# `systemd-analyze verify`, `ansible-playbook`; and independent judges of the
# baseline's sshd settings (tests/baseline.rs): `ssh-audit`, `lynis`. Installed without their
# recommends (those would pull in the whole `ansible` collection bundle,
# sudo, eatmydata...), and they never run as services here (see below).
# The booted tier (tests/support/booted.rs) boots copies of this machine and of
# a Debian 13 image with `systemd-nspawn`; `debootstrap` builds that image
# (recommends left out: libnss-mymachines would edit this machine's nsswitch.conf).
# The package tier (tests/booted/package.rs, .ci/run) needs `lintian` to judge the .deb, and
# bash-completion and man-db on both booted systems to complete and render it.
tool_packages=(systemd cloud-init ansible-core ssh-audit lynis systemd-container debootstrap
    lintian bash-completion man-db)

# The Debian 13 image of the booted tier: where it is kept across runs, and what
# it holds besides debootstrap's minbase (what harden manages, what the tests
# run, and what a booted cloud server has: systemd as init, dbus, cloud-init).
image_cache=/var/cache/harden-tests
image="$image_cache/trixie"
image_packages=(
    systemd-sysv dbus openssh-server openssh-client ufw fail2ban nftables iptables
    unattended-upgrades python3-systemd cloud-init sudo curl ca-certificates
    iproute2 procps sshpass netcat-openbsd python3 man-db bash-completion
)
# Packages the tests install inside their copies only (never on this machine: pwquality
# and auditd would change its own PAM and audit setup). The copies have no network, so
# each system gets a local flat apt repository of them (tests/support/apt_cache.rs points a
# copy's apt at it): for Debian 12 what this machine lacks of them, downloaded here; for
# Debian 13 what the image lacks (judged by the image's own dpkg database), downloaded
# with the image's keyring into a directory beside the image, which stays untouched.
# `tree` and `sl` are small harmless packages for the `packages` resource's tests.
# `lynis` judges the baseline on Debian 13 (tests/booted/lynis.rs; this machine has it).
cache_packages=(libpam-pwquality cracklib-runtime pamtester auditd libpam-tmpdir
    apt-show-versions apt-listchanges debsums needrestart tree sl lynis)
cache_stamp="harden-test-apt-cache 1: ${cache_packages[*]}"
bookworm_cache="$image_cache/apt-bookworm"
trixie_cache="$image_cache/apt-trixie"

# Written into the image last: an image without it (or with another list) is rebuilt.
image_stamp="harden-test-image 1: trixie minbase + ${image_packages[*]}"

if [ "$(id -u)" != 0 ]; then
    echo "setup-debian.sh: must run as root" >&2
    exit 1
fi

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

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

install_packages() {
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
    local cloud_init_off=/etc/cloud/cloud-init.disabled package
    for package in "${missing_tools[@]}"; do
        if [ "$package" = cloud-init ] && [ ! -e "$cloud_init_off" ]; then
            mkdir -p /etc/cloud
            printf '%s\n' "# setup-debian.sh: cloud-init is installed for tests only (cloud-init schema); never run it here" > "$cloud_init_off"
        fi
    done

    if [ "${#missing[@]}" != 0 ]; then
        apt_install "${missing[@]}"
    fi
    if [ "${#missing_tools[@]}" != 0 ]; then
        apt_install --no-install-recommends "${missing_tools[@]}"
    fi
}

# The URI of this machine's apt source whose Release file has the given origin
# and label, for the given codename (no mirror is ever written into this script).
apt_source_uri() {
    apt-get indextargets --format '$(REPO_URI) $(ORIGIN) $(LABEL) $(CODENAME)' |
        awk -v label="$1" -v codename="$2" '$2 == "Debian" && $3 == label && $4 == codename { print $1; exit }'
}

# Runs a command in the image under construction, as a container: its own mount
# namespace (nothing stays mounted here if it is killed), with a private /run for
# nspawn's own state, none of this machine's journal or nspawn settings, the
# host's network (the packages are downloaded), no init system (policy-rc.d in
# the image).
# nspawn (--keep-unit, as this machine's PID 1 is not systemd) makes `payload` and
# `supervisor` cgroups under its own and leaves them behind: it runs in a cgroup of
# its own, removed afterwards, in each hierarchy it uses.
in_image() {
    local dir=$1 cgroups=() hierarchy status=0
    shift
    for hierarchy in $(findmnt -rn -t cgroup2 -o TARGET) \
        $(findmnt -rn -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)name=systemd(,|$)/ { print $1 }'); do
        mkdir -p "$hierarchy/harden-image-build"
        cgroups+=("$hierarchy/harden-image-build")
    done
    (
        for cgroup in "${cgroups[@]}"; do
            echo "$BASHPID" > "$cgroup/cgroup.procs"
        done
        exec unshare --mount --propagation private -- \
            sh -c 'mount -t tmpfs -o mode=0755,nosuid,nodev harden-image-run /run && exec "$@"' in-image \
            systemd-nspawn --quiet --register=no --keep-unit --as-pid2 --settings=no \
            --link-journal=no --timezone=off -D "$dir" \
            --setenv=DEBIAN_FRONTEND=noninteractive --setenv=LANG=C.UTF-8 -- "$@"
    ) || status=$?
    for hierarchy in "${cgroups[@]}"; do
        find "$hierarchy" -depth -type d -exec rmdir {} + || true
    done
    return "$status"
}

build_image_into() {
    local dir=$1 mirror=$2 security=$3
    # debootstrap mounts /proc and /sys in its target: a private mount namespace
    # keeps those mounts from outliving it if it is interrupted.
    unshare --mount --propagation private -- \
        debootstrap --variant=minbase trixie "$dir" "$mirror"
    printf '#!/bin/sh\n%s\nexit 101\n' "$marker" > "$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    # As a Debian 13 cloud image lists its sources (one deb822 file).
    rm -f "$dir/etc/apt/sources.list"
    cat > "$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # cloud-init stays off in the image, as on this machine; a test turns it on in
    # its own copy by removing this file.
    mkdir -p "$dir/etc/cloud"
    printf '%s\n' "# setup-debian.sh: test image; a test's copy removes this file to run cloud-init" > "$dir/etc/cloud/cloud-init.disabled"
    in_image "$dir" apt-get "${apt_options[@]}" update
    in_image "$dir" apt-get "${apt_options[@]}" install -y --no-install-recommends "${image_packages[@]}"
    in_image "$dir" apt-get clean
    rm -rf "$dir"/var/lib/apt/lists/* "$dir/usr/sbin/policy-rc.d"
    # Every boot of a copy is a first boot, with a machine ID of its own.
    : > "$dir/etc/machine-id"
    rm -f "$dir/var/lib/dbus/machine-id"
    echo trixie > "$dir/etc/hostname"
    printf '%s\n' "$image_stamp" > "$dir/etc/harden-test-image"
}

# Builds the image when it is missing or was built from another package list:
# into a temporary directory beside it, renamed into place only when complete, so
# an interrupted build never leaves an image that later runs would trust. One
# build at a time (a lock); leftovers of an interrupted build are removed first.
build_trixie_image() {
    if [ -f "$image/etc/harden-test-image" ] && [ "$(cat "$image/etc/harden-test-image")" = "$image_stamp" ]; then
        echo "setup-debian.sh: the Debian 13 image is ready ($image)"
        return
    fi
    mkdir -p "$image_cache"
    chmod 0700 "$image_cache"
    exec 9> "$image_cache/.lock"
    flock 9
    local leftover
    for leftover in "$image_cache"/.trixie.*; do
        if [ -e "$leftover" ]; then
            rm -rf --one-file-system -- "$leftover"
        fi
    done
    local mirror security
    mirror=$(apt_source_uri Debian bookworm)
    security=$(apt_source_uri Debian-Security bookworm-security)
    if [ -z "$mirror" ] || [ -z "$security" ]; then
        echo "setup-debian.sh: no Debian archive and security source in this machine's apt sources (apt-get update first?)" >&2
        exit 1
    fi
    echo "setup-debian.sh: building the Debian 13 image in $image"
    local started tmp
    started=$(date +%s)
    tmp=$(mktemp -d "$image_cache/.trixie.XXXXXX")
    chmod 0755 "$tmp"
    build_image_into "$tmp" "$mirror" "$security"
    sync -f "$tmp/etc/harden-test-image"
    if [ -e "$image" ]; then
        mv -T "$image" "$tmp.old"
    fi
    mv -T "$tmp" "$image"
    if [ -e "$tmp.old" ]; then
        rm -rf --one-file-system -- "$tmp.old"
    fi
    echo "setup-debian.sh: built the Debian 13 image in $(($(date +%s) - started)) s, $(du -sh --one-file-system "$image" | cut -f1)"
    flock -u 9
}

# Indexes the .deb files of `dir` as a flat repository (`deb [trusted=yes] file:<dir> ./`)
# and writes the stamp last, so that an interrupted fill is redone by the next run.
index_apt_cache() {
    local dir=$1
    (cd "$dir" && dpkg-scanpackages --multiversion . /dev/null > Packages.new 2>/dev/null)
    mv "$dir/Packages.new" "$dir/Packages"
    printf '%s\n' "$cache_stamp" > "$dir/.stamp"
}

apt_cache_is_current() {
    [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$cache_stamp" ] && [ -f "$1/Packages" ]
}

# Debian 12: what this machine lacks of cache_packages (its copies share its dpkg
# database), through this machine's own apt sources and lists.
fill_bookworm_cache() {
    if apt_cache_is_current "$bookworm_cache"; then
        echo "setup-debian.sh: the Debian 12 package cache is ready ($bookworm_cache)"
        return
    fi
    mkdir -p "$image_cache" "$bookworm_cache/partial"
    chmod 0700 "$image_cache"
    chmod 0755 "$bookworm_cache"
    local download=(apt-get "${apt_options[@]}" -o "Dir::Cache::archives=$bookworm_cache/"
        install -y --download-only "${cache_packages[@]}")
    "${download[@]}" || {
        apt-get "${apt_options[@]}" update || true
        "${download[@]}"
    }
    rm -rf "$bookworm_cache/partial" "$bookworm_cache/lock"
    index_apt_cache "$bookworm_cache"
    echo "setup-debian.sh: Debian 12 package cache: $(find "$bookworm_cache" -name '*.deb' | wc -l) packages"
}

# Debian 13: what the image lacks, resolved against the image's dpkg status, with lists and
# apt state of their own in a temporary directory (neither this machine's nor the image's
# are touched), and the image's keyring.
fill_trixie_cache() {
    if apt_cache_is_current "$trixie_cache"; then
        echo "setup-debian.sh: the Debian 13 package cache is ready ($trixie_cache)"
        return
    fi
    local mirror security tmp keyring="$image/usr/share/keyrings/debian-archive-keyring.gpg"
    mirror=$(apt_source_uri Debian bookworm)
    security=$(apt_source_uri Debian-Security bookworm-security)
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/parts" "$trixie_cache"
    chmod 0755 "$trixie_cache"
    printf 'deb [signed-by=%s] %s trixie trixie-updates main\ndeb [signed-by=%s] %s trixie-security main\n' \
        "$keyring" "$mirror" "$keyring" "$security" > "$tmp/sources.list"
    local apt=(apt-get "${apt_options[@]}" -o "Dir::Etc::SourceList=$tmp/sources.list"
        -o "Dir::Etc::SourceParts=$tmp/parts" -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::State::status=$image/var/lib/dpkg/status"
        -o "Dir::State::extended_states=$tmp/extended_states" -o "Dir::Cache=$tmp/cache"
        -o "Dir::Cache::archives=$tmp/cache/archives/")
    "${apt[@]}" update
    "${apt[@]}" install -y --download-only "${cache_packages[@]}"
    find "$trixie_cache" -name '*.deb' -delete
    mv "$tmp"/cache/archives/*.deb "$trixie_cache/"
    rm -rf -- "$tmp"
    index_apt_cache "$trixie_cache"
    echo "setup-debian.sh: Debian 13 package cache: $(find "$trixie_cache" -name '*.deb' | wc -l) packages"
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
else
    echo "setup-debian.sh: installing ${missing[*]} ${missing_tools[*]}"
    install_packages
fi
build_trixie_image
fill_bookworm_cache
fill_trixie_cache
echo "setup-debian.sh: done"
