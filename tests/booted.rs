//! The booted tier: harden on machines that boot with systemd as PID 1 (`systemd-nspawn`),
//! Debian 12 (a copy of this machine, with its stock fail2ban that fails at boot) and
//! Debian 13 (the image `tests/setup-debian.sh` builds). See `support/booted.rs` for the
//! harness. Each module tests both systems; a module's helpers that several share live here.

mod cloud_init;
mod confirm;
mod drift;
mod fleet;
mod harness;
mod journal;
mod lynis;
pub(crate) mod package;
mod pam;
mod saved_plans;
mod seeds;
mod services;
mod sshd;
mod sysctl;
mod units;

use crate::support::booted::Booted;
use crate::support::{Peer, Run};

/// The shipped first-boot recipe and the two lines of it an operator edits.
const USER_DATA: &str = include_str!("../examples/cloud-init/user-data.yaml");
const URL_LINE: &str = "HARDEN_URL=\"https://example.com/harden/v0.1.0/harden-x86_64-linux-gnu\"";
const SHA_LINE: &str = "HARDEN_SHA256=\"REPLACE_WITH_THE_SHA256_OF_YOUR_HARDEN_BINARY\"";

/// Where the binary under test is baked into a copy, as an operator bakes a release into
/// an image, for the user data's `file://` URL.
const RELEASE: &str = "/srv/release/harden";

/// The default user of Debian's cloud-init configuration.
const DEFAULT_USER: &str = "debian";

/// A password the tests give an account, to show that sshd refuses passwords.
const TEST_PASSWORD: &str = "correct-horse-battery-staple";

/// Where a peer keeps the private key it made (its own private `/tmp`).
const PEER_KEY: &str = "/tmp/instance_key";

/// Options of every ssh client run by a peer: no configuration or known hosts of the host's,
/// bounded waits, no noise.
const SSH_OPTIONS: &str =
    "-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                           -o ConnectTimeout=10 -o LogLevel=ERROR";

/// Makes an ed25519 key pair in the peer (the private half never leaves it); returns the
/// public half.
fn peer_key(peer: &Peer) -> String {
    peer.sh(&format!(
        "ssh-keygen -q -t ed25519 -N '' -C instance -f {PEER_KEY} && cat {PEER_KEY}.pub"
    ))
    .assert_ok()
    .stdout
    .trim()
    .to_owned()
}

/// `command` run as `user` over ssh from the peer with its key, batch mode (no prompt).
fn ssh_with_key(peer: &Peer, user: &str, command: &str) -> Run {
    peer.sh(&format!(
        "ssh {SSH_OPTIONS} -o BatchMode=yes -o IdentitiesOnly=yes -i {PEER_KEY} {user}@{} {command}",
        peer.sandbox_addr()
    ))
}

/// A login as `user` from the peer with [`TEST_PASSWORD`] and no key (`sshpass`).
fn ssh_with_password(peer: &Peer, user: &str) -> Run {
    peer.sh(&format!(
        "SSHPASS='{TEST_PASSWORD}' sshpass -e ssh {SSH_OPTIONS} -o PubkeyAuthentication=no \
         -o PreferredAuthentications=password,keyboard-interactive -o NumberOfPasswordPrompts=1 \
         {user}@{} true",
        peer.sandbox_addr()
    ))
}

/// Panics unless the key logs in as `user` and a password is refused with only `publickey`
/// left to try.
#[track_caller]
fn assert_key_only_login(m: &Booted, peer: &Peer, user: &str) {
    let who = ssh_with_key(peer, user, "id -un").assert_ok();
    assert_eq!(who.stdout.trim(), user, "{who}");
    m.sh_with_stdin("chpasswd", &format!("{user}:{TEST_PASSWORD}\n"))
        .assert_ok();
    let refused = ssh_with_password(peer, user).assert_fails();
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "the password login was not refused for want of a key: {refused}"
    );
}

/// Panics unless each unit is active.
#[track_caller]
fn assert_active(m: &Booted, units: &[&str]) {
    for unit in units {
        let run = m.exec(&["systemctl", "is-active", unit]);
        assert_eq!(
            run.stdout.trim(),
            "active",
            "{unit} is not active on {:?}: {run}\n{}",
            m.os(),
            m.sh(&format!("systemctl status --no-pager --full {unit}; journalctl -b --no-pager -n 30 -u {unit}")).output()
        );
    }
}

/// The lines `sshd -T` prints, as a list.
fn sshd_t(m: &Booted) -> Vec<String> {
    m.sh("sshd -T")
        .assert_ok()
        .stdout
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The site playbook the shipped user data writes to /etc/harden/site.yaml (its
/// `write_files` entry's `content`, unindented).
fn site_playbook() -> String {
    let mut lines = USER_DATA
        .lines()
        .skip_while(|l| l.trim() != "- path: /etc/harden/site.yaml");
    lines
        .by_ref()
        .find(|l| l.trim() == "content: |")
        .expect("the site playbook's content");
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .map(|l| l.get(6..).unwrap_or(""))
        .collect();
    assert!(body.len() > 10, "the site playbook is too short: {body:?}");
    body.join("\n") + "\n"
}

/// An `admin` account (login shell, sudo not needed) whose authorized key is the peer's,
/// with [`TEST_PASSWORD`] as its password.
fn keyed_admin(m: &Booted, public_key: &str) {
    m.sh("useradd -m -s /bin/bash admin && install -d -m 0700 -o admin -g admin /home/admin/.ssh")
        .assert_ok();
    m.write(
        "/home/admin/.ssh/authorized_keys",
        &format!("{public_key}\n"),
    );
    m.sh("chown admin:admin /home/admin/.ssh/authorized_keys && chmod 0600 /home/admin/.ssh/authorized_keys")
        .assert_ok();
    m.sh_with_stdin("chpasswd", &format!("admin:{TEST_PASSWORD}\n"))
        .assert_ok();
}
