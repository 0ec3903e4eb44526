//! `pam` and `packages` on booted Debian 12 and 13, offline from each release's package
//! cache: password quality installed and enforced, `chpasswd` refusing a weak password and
//! taking a strong one, key login over SSH from a peer still working, Lynis's package
//! tools installed, a second plan empty, and `harden rollback` removing it all.

use super::{keyed_admin, peer_key, ssh_with_key};
use crate::support::apt_cache;
use crate::support::booted::{Booted, Os};

const PLAYBOOK: &str = "pam:
  pwquality: { minlen: 12, minclass: 3, dictcheck: true, enforce_for_root: true }
packages:
  present: [debsums, apt-show-versions]
";

/// A password of 17 characters in four classes, not a word.
const STRONG: &str = "Vq7-Lp2_xR9.mZ4kW";

fn installed(m: &Booted, package: &str) -> bool {
    m.sh(&format!(
        "[ \"$(dpkg-query -W -f '${{db:Status-Status}}' {package} 2>/dev/null)\" = installed ]"
    ))
    .success()
}

fn password_quality_and_packages_apply_offline_and_roll_back(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    apt_cache::stage_in_booted(&m);
    let peer = m.spawn_peer();
    let key = peer_key(&peer);
    m.boot();
    keyed_admin(&m, &key);
    apt_cache::use_in_booted(&m);
    let stack_before = m.read("/etc/pam.d/common-password");

    m.write("/root/pb.yaml", PLAYBOOK);
    m.harden(&["apply", "/root/pb.yaml"]).assert_ok();
    for package in [
        "libpam-pwquality",
        "pamtester",
        "debsums",
        "apt-show-versions",
    ] {
        assert!(installed(&m, package), "{package} on {os:?}");
    }
    let weak = m.sh_with_stdin("chpasswd", "admin:abc12\n");
    assert!(
        !weak.success(),
        "a weak password was accepted on {os:?}: {weak}"
    );
    m.sh_with_stdin("chpasswd", &format!("admin:{STRONG}\n"))
        .assert_ok();
    let who = ssh_with_key(&peer, "admin", "id -un").assert_ok();
    assert_eq!(who.stdout.trim(), "admin");
    m.harden(&["plan", "--detailed-exitcode", "/root/pb.yaml"])
        .assert_status(0);

    m.harden(&["rollback"]).assert_ok();
    assert_eq!(m.read("/etc/pam.d/common-password"), stack_before);
    for package in [
        "libpam-pwquality",
        "pamtester",
        "debsums",
        "apt-show-versions",
    ] {
        assert!(!installed(&m, package), "{package} stayed on {os:?}");
    }
    m.sh_with_stdin("chpasswd", "admin:abc12\n").assert_ok();
    ssh_with_key(&peer, "admin", "true").assert_ok();
}

#[test]
fn debian12_password_quality_and_packages_apply_offline_and_roll_back() {
    password_quality_and_packages_apply_offline_and_roll_back(Os::Debian12);
}

#[test]
fn debian13_password_quality_and_packages_apply_offline_and_roll_back() {
    password_quality_and_packages_apply_offline_and_roll_back(Os::Debian13);
}
