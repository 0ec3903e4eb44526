//! The local apt repositories of the packages the tests install: the copies have no network,
//! so `tests/setup-debian.sh` downloads those packages once into a flat repository per
//! Debian release, and a test makes that repository its copy's only apt source.

use super::booted::{Booted, Os};
use super::Sandbox;

/// Debian 12's repository (what this machine lacks of the test packages).
pub const BOOKWORM: &str = "/var/cache/harden-tests/apt-bookworm";
/// Debian 13's repository (what the image lacks of them).
pub const TRIXIE: &str = "/var/cache/harden-tests/apt-trixie";

/// The repository of `os`; panics, saying how to make it, when it is missing.
pub fn repository(os: Os) -> &'static str {
    let dir = match os {
        Os::Debian12 => BOOKWORM,
        Os::Debian13 => TRIXIE,
    };
    assert!(
        std::path::Path::new(dir).join("Packages").is_file(),
        "the local package cache {dir} is missing: run `bash tests/setup-debian.sh`"
    );
    dir
}

/// Shell commands, run inside a copy, that make `dir` its only apt source: the copy's own
/// sources and lists are removed (in the copy only) and the lists rebuilt from `dir`, which
/// needs no network.
pub fn only_source_script(dir: &str) -> String {
    format!(
        "set -e
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:{dir} ./' > /etc/apt/sources.list.d/harden-test-cache.list
find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete
apt-get -q -o Acquire::Languages=none -o APT::Sandbox::User=root update"
    )
}

/// Makes this machine's repository the sandbox's only apt source.
pub fn use_in_sandbox(sb: &Sandbox) {
    let dir = repository(Os::Debian12);
    sb.sh(&only_source_script(dir)).assert_ok();
}

/// Puts the repository of `m`'s release into its copy, before it boots: the Debian 12 copy
/// sees this machine's directory already; the Debian 13 copy gets the files written into it.
pub fn stage_in_booted(m: &Booted) {
    let dir = repository(m.os());
    if m.os() != Os::Debian13 {
        return;
    }
    let entries = std::fs::read_dir(dir).expect("read the package cache");
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".deb") || name == "Packages" {
            let bytes = std::fs::read(&path).expect("read a cached package");
            m.chroot_write(&format!("{dir}/{name}"), &bytes);
        }
    }
}

/// Makes the staged repository the booted machine's only apt source (it must be running).
pub fn use_in_booted(m: &Booted) {
    let dir = repository(m.os());
    m.sh(&only_source_script(dir)).assert_ok();
}
