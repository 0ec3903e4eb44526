//! First boot through cloud-init with the shipped `examples/cloud-init/user-data.yaml`, and
//! the boot after it: cloud-init's own stages under systemd, from a NoCloud seed, with the
//! binary under test baked into the copy as a `file://` release.
//!
//! On Debian 12 this is the stock situation: fail2ban is enabled, but failed at boot (its
//! sshd jail wants `/var/log/auth.log`, which Debian 12 does not have).

use super::{
    assert_active, assert_key_only_login, peer_key, sshd_t, DEFAULT_USER, RELEASE, SHA_LINE,
    URL_LINE, USER_DATA,
};
use crate::support::booted::{Booted, Os};
use crate::support::Peer;
use std::sync::Arc;

/// Test-only cloud-init settings, beside Debian's own: the seed directory is the only
/// datasource (no metadata service to wait for); the network is the test's (a veth pair to
/// a peer), so cloud-init leaves it alone; and the locale is one every copy has (this
/// machine has no `en_US.UTF-8`, cloud-init's default, and its `locale` module would fail).
const CLOUD_CFG: &str =
    "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\nlocale: C.UTF-8\n";

/// The site playbook the user data writes, where harden reads it.
const SITE: &str = "/etc/harden/site.yaml";

/// The user data with its two marked lines edited as the README says: the release baked
/// into the image, and its checksum.
fn user_data_for(sha256: &str) -> String {
    assert_eq!(
        USER_DATA.matches(URL_LINE).count(),
        1,
        "the HARDEN_URL line"
    );
    assert_eq!(
        USER_DATA.matches(SHA_LINE).count(),
        1,
        "the HARDEN_SHA256 line"
    );
    USER_DATA
        .replace(URL_LINE, &format!("HARDEN_URL=\"file://{RELEASE}\""))
        .replace(SHA_LINE, &format!("HARDEN_SHA256=\"{sha256}\""))
}

/// Prepares the copy as an instance's first boot finds it: the release baked in, the NoCloud
/// seed (the edited user data, and meta-data with the peer's public key for the default
/// user), cloud-init switched on. On Debian 12, also checks the stock situation: fail2ban
/// enabled, and no /var/log/auth.log for its sshd jail.
fn seed(m: &Booted, public_key: &str) {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_harden")).expect("the binary under test");
    m.chroot_write(RELEASE, &binary);
    let sha = m
        .chroot_sh(&format!("chmod 0755 {RELEASE} && sha256sum {RELEASE}"))
        .assert_ok()
        .stdout;
    let sha = sha.split_whitespace().next().expect("a checksum");
    m.chroot_write(
        "/var/lib/cloud/seed/nocloud/user-data",
        user_data_for(sha).as_bytes(),
    );
    m.chroot_write(
        "/var/lib/cloud/seed/nocloud/meta-data",
        format!(
            "instance-id: iid-harden-booted\nlocal-hostname: harden-booted\npublic-keys:\n  - {public_key}\n"
        )
        .as_bytes(),
    );
    m.chroot_write(
        "/etc/cloud/cloud.cfg.d/99-harden-test.cfg",
        CLOUD_CFG.as_bytes(),
    );
    m.chroot_sh("rm -rf /etc/cloud/cloud-init.disabled /var/lib/cloud/instance /var/lib/cloud/instances /var/log/cloud-init.log /var/log/cloud-init-output.log")
        .assert_ok();
    if m.os() == Os::Debian12 {
        m.chroot_sh(
            "test -L /etc/systemd/system/multi-user.target.wants/fail2ban.service && test ! -e /var/log/auth.log",
        )
        .assert_ok();
    }
}

/// A machine of `os` booted for the first time with the seed, and its peer (which holds the
/// default user's private key).
fn first_boot(os: Os) -> Option<(Booted, Arc<Peer>)> {
    let mut m = crate::booted!(os)?;
    let peer = m.spawn_peer();
    seed(&m, &peer_key(&peer));
    m.boot();
    Some((m, peer))
}

/// Panics unless cloud-init finished without an error and harden's run is in its output
/// log, once.
#[track_caller]
fn assert_cloud_init_done(m: &Booted) {
    let status = m.sh("cloud-init status --long");
    let log = m.sh("cat /var/log/cloud-init-output.log").stdout;
    assert!(
        status.success() && status.stdout.lines().any(|l| l.trim() == "status: done"),
        "cloud-init did not finish cleanly on {:?}: {status}\n--- cloud-init-output.log ---\n{log}",
        m.os()
    );
    let errors = m
        .sh("grep -E 'Failed to run module|WARNING|ERROR' /var/log/cloud-init.log")
        .stdout;
    assert!(
        !errors.contains("scripts-user") && !errors.contains("scripts_user"),
        "harden's module (scripts-user) failed:\n{errors}"
    );
    let fetching = format!("harden-firstboot: fetching file://{RELEASE}");
    for line in [
        fetching.as_str(),
        "harden-firstboot: applying /etc/harden/site.yaml",
        "harden-firstboot: done",
    ] {
        assert_eq!(
            log.matches(line).count(),
            1,
            "{line:?} is not once in the output log:\n{log}"
        );
    }
    assert!(
        log.contains("Applied "),
        "no \"Applied\" in the output log:\n{log}"
    );
}

/// Panics unless the site playbook is in force: sshd, fail2ban and ufw active, sshd's
/// effective configuration as the playbook says, key login only.
#[track_caller]
fn assert_hardened(m: &Booted, peer: &Peer) {
    assert_active(m, &["ssh.service", "fail2ban.service", "ufw.service"]);
    m.sh("ufw status | grep -qx 'Status: active'").assert_ok();
    let t = sshd_t(m);
    for line in [
        "permitrootlogin no",
        "passwordauthentication no",
        "maxauthtries 3",
    ] {
        assert!(
            t.iter().any(|l| l == line),
            "no {line:?} in sshd -T:\n{t:?}"
        );
    }
    assert_key_only_login(m, peer, DEFAULT_USER);
}

#[track_caller]
fn first_boot_applies_the_site_playbook(os: Os) {
    let Some((m, peer)) = first_boot(os) else {
        return;
    };
    assert_cloud_init_done(&m);
    if os == Os::Debian12 {
        // The stock situation was real: fail2ban failed at this boot before harden ran.
        let journal = m.sh("journalctl -b --no-pager -u fail2ban.service").stdout;
        assert!(journal.contains("Failed with result"), "{journal}");
    }
    assert_hardened(&m, &peer);
    m.sh(&format!(
        "/usr/local/sbin/harden snapshots | grep -q {SITE}"
    ))
    .assert_ok();
}

#[test]
fn debian12_first_boot_through_cloud_init_with_fail2ban_failed() {
    first_boot_applies_the_site_playbook(Os::Debian12);
}

#[test]
fn debian13_first_boot_through_cloud_init() {
    first_boot_applies_the_site_playbook(Os::Debian13);
}

/// Panics unless what the first boot set up is loaded again by this boot: ufw's chains in
/// the kernel's ruleset, fail2ban's sshd jail running, APT's timers enabled and waiting.
#[track_caller]
fn assert_loaded_at_boot(m: &Booted) {
    let iptables = m.sh("iptables-save").assert_ok().stdout;
    assert!(
        iptables.lines().any(|l| l.starts_with(":ufw-user-input "))
            && iptables.lines().any(|l| l.starts_with("-A ufw-user-input ")
                && l.contains("--dport 22 ")
                && l.ends_with("-j ACCEPT")),
        "ufw's rules are not loaded (iptables-save):\n{iptables}"
    );
    let nft = m.sh("nft list ruleset").assert_ok().stdout;
    assert!(
        nft.contains("chain ufw-user-input {"),
        "no ufw chain in nft list ruleset:\n{nft}"
    );
    let jails = m.sh("fail2ban-client status").assert_ok().stdout;
    assert!(
        jails
            .lines()
            .any(|l| l.contains("Jail list:") && l.contains("sshd")),
        "fail2ban's sshd jail is not running:\n{jails}"
    );
    m.sh("fail2ban-client status sshd").assert_ok();
    for timer in ["apt-daily.timer", "apt-daily-upgrade.timer"] {
        let enabled = m.exec(&["systemctl", "is-enabled", timer]);
        assert_eq!(enabled.stdout.trim(), "enabled", "{timer}: {enabled}");
    }
    assert_active(m, &["apt-daily.timer", "apt-daily-upgrade.timer"]);
}

#[track_caller]
fn a_reboot_keeps_the_hardening(os: Os) {
    let Some((mut m, peer)) = first_boot(os) else {
        return;
    };
    assert_cloud_init_done(&m);
    let machine_id = m.read("/etc/machine-id");
    assert_eq!(
        m.poweroff(),
        0,
        "nspawn's exit status after a clean poweroff"
    );
    m.boot();
    assert_eq!(m.boots(), 2);
    assert_eq!(
        m.read("/etc/machine-id"),
        machine_id,
        "not the same system after the reboot"
    );
    // Same instance: cloud-init is done, and ran harden once (on the first boot) only.
    assert_cloud_init_done(&m);
    assert_hardened(&m, &peer);
    assert_loaded_at_boot(&m);
    m.exec(&[
        "/usr/local/sbin/harden",
        "plan",
        "--detailed-exitcode",
        SITE,
    ])
    .assert_ok();
}

#[test]
fn debian12_a_reboot_keeps_the_hardening() {
    a_reboot_keeps_the_hardening(Os::Debian12);
}

#[test]
fn debian13_a_reboot_keeps_the_hardening() {
    a_reboot_keeps_the_hardening(Os::Debian13);
}
