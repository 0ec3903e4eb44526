//! Confirm or revert under systemd (issue 13): `harden apply --confirm-within 20s` run over
//! SSH from a peer arms a transient timer. Confirmed from a new SSH session, the change
//! stays past the deadline; unconfirmed, or with the SSH session that ran the apply killed
//! right after it, the previous sshd configuration is served again by the deadline plus a
//! few seconds, and `harden snapshots` says so.

use std::time::{Duration, Instant};

use super::{
    keyed_admin, peer_key, ssh_with_key, ssh_with_password, sshd_t, PEER_KEY, SSH_OPTIONS,
};
use crate::support::booted::{Booted, Os};
use crate::support::{Peer, HARDEN_IN_SANDBOX};

/// Passwords off: what the next login notices.
const PLAYBOOK: &str = "sshd:\n  config:\n    PasswordAuthentication: false\n";

/// How long each apply waits for its confirmation.
const WITHIN: u64 = 20;

/// How late past its deadline a rollback may come: the timer's accuracy is 1 s, then harden
/// starts, restores and reloads sshd.
const SLACK: Duration = Duration::from_secs(10);

/// The apply every scenario runs, as root over SSH.
fn apply_command() -> String {
    format!("{HARDEN_IN_SANDBOX} apply --confirm-within {WITHIN}s /root/sshd.yaml")
}

/// Boots `os` with an admin whose password logs in (Debian's default) and root reachable by
/// the peer's key; returns the machine and the peer.
fn machine(os: Os) -> Option<(Booted, std::sync::Arc<Peer>)> {
    let mut m = crate::booted!(os)?;
    let peer = m.spawn_peer();
    let key = peer_key(&peer);
    m.boot();
    keyed_admin(&m, &key);
    m.sh("install -d -m 0700 /root/.ssh").assert_ok();
    m.write("/root/.ssh/authorized_keys", &format!("{key}\n"));
    m.sh("chmod 0600 /root/.ssh/authorized_keys").assert_ok();
    m.write("/root/sshd.yaml", PLAYBOOK);
    ssh_with_password(&peer, "admin").assert_ok();
    Some((m, peer))
}

/// True when the running sshd serves `passwordauthentication no`.
fn passwords_off(m: &Booted) -> bool {
    sshd_t(m).iter().any(|l| l == "passwordauthentication no")
}

/// The newest snapshot's id and its confirmation, from `harden snapshots --format json`.
fn newest_confirmation(m: &Booted) -> (String, serde_json::Value) {
    let doc = m
        .harden(&["snapshots", "--format", "json"])
        .assert_ok()
        .json();
    let newest = doc["snapshots"]
        .as_array()
        .and_then(|s| s.iter().rev().find(|s| s.get("confirmation").is_some()))
        .unwrap_or_else(|| panic!("no snapshot with a confirmation: {doc}"))
        .clone();
    (
        newest["id"].as_str().expect("an id").to_owned(),
        newest["confirmation"].clone(),
    )
}

/// The confirmation's deadline, as an instant of this process's clock (the machine shares
/// it).
fn deadline_of(confirmation: &serde_json::Value) -> Instant {
    let deadline: jiff::Timestamp = confirmation["deadline"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no deadline: {confirmation}"));
    let left = jiff::Timestamp::now().duration_until(deadline);
    Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
}

/// Waits until `done` or `by`; true when it came in time.
fn wait_until(by: Instant, mut done: impl FnMut() -> bool) -> bool {
    while Instant::now() < by {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    done()
}

/// Applied over SSH and never confirmed: rolled back by the deadline plus [`SLACK`], the
/// old configuration served again, `snapshots` and the journal saying why.
fn assert_rolled_back_on_time(m: &Booted, peer: &Peer) {
    let (id, confirmation) = newest_confirmation(m);
    assert_eq!(confirmation["state"], "pending", "{confirmation}");
    assert_eq!(confirmation["armed_by"], "systemd timer");
    let unit = format!("harden-confirm-{id}.timer");
    m.exec(&["systemctl", "is-active", &unit]).assert_ok();
    let deadline = deadline_of(&confirmation);
    // Rolled back once the state says so: it is written after the restore, the reload and
    // the check that sshd listens again (the files alone come back before the reload).
    assert!(
        wait_until(deadline + SLACK, || {
            newest_confirmation(m).1["state"] == "rolled_back"
        }),
        "not rolled back by the deadline plus {SLACK:?}: {}",
        m.sh(&format!("systemctl status --no-pager harden-confirm-{id}.service; journalctl -b --no-pager -t harden -n 20")).output()
    );
    assert!(
        Instant::now() + Duration::from_secs(2) >= deadline,
        "rolled back before its deadline"
    );
    assert!(
        !passwords_off(m),
        "rolled back, but not the sshd configuration"
    );
    ssh_with_password(peer, "admin").assert_ok();
    let listed = m.harden(&["snapshots"]).assert_ok();
    assert!(
        listed.stdout.contains(&id)
            && listed
                .stdout
                .contains("[rolled back: not confirmed by its deadline"),
        "{listed}"
    );
    let why = m.sh("journalctl -b --no-pager -t harden").stdout;
    assert!(
        why.contains("rolling back: not confirmed by its deadline"),
        "{why}"
    );
}

fn confirmed_stays_unconfirmed_and_killed_sessions_roll_back(os: Os) {
    let Some((m, peer)) = machine(os) else {
        return;
    };

    // 1. Confirmed from a new SSH session: the change stays after the deadline.
    let apply = ssh_with_key(&peer, "root", &apply_command()).assert_ok();
    assert!(
        apply.stderr.contains("Rollback armed (systemd timer)"),
        "{apply}"
    );
    assert!(passwords_off(&m));
    let (_, pending) = newest_confirmation(&m);
    ssh_with_key(&peer, "root", &format!("{HARDEN_IN_SANDBOX} confirm")).assert_ok();
    let (id, confirmation) = newest_confirmation(&m);
    assert_eq!(confirmation["state"], "confirmed", "{confirmation}");
    let timer = format!("harden-confirm-{id}.timer");
    m.exec(&["systemctl", "is-active", &timer]).assert_fails();
    std::thread::sleep((deadline_of(&pending) + SLACK).saturating_duration_since(Instant::now()));
    assert!(passwords_off(&m), "a confirmed apply was rolled back");
    ssh_with_password(&peer, "admin").assert_fails();
    m.harden(&["rollback"]).assert_ok();
    assert!(!passwords_off(&m));

    // 2. Not confirmed: rolled back on time; meanwhile another apply is refused (exit 5).
    ssh_with_key(&peer, "root", &apply_command()).assert_ok();
    assert!(passwords_off(&m));
    m.harden(&["apply", "/root/sshd.yaml"]).assert_status(5);
    assert_rolled_back_on_time(&m, &peer);

    // 3. The SSH session that ran the apply killed right after it: still rolled back.
    peer.sh(&format!(
        "ssh {SSH_OPTIONS} -o BatchMode=yes -o IdentitiesOnly=yes -i {PEER_KEY} root@{} '{}; sleep 600' >/tmp/apply.log 2>&1 &",
        peer.sandbox_addr(),
        apply_command()
    ))
    .assert_ok();
    let started = Instant::now();
    assert!(
        wait_until(started + Duration::from_secs(60), || {
            m.harden(&["snapshots"])
                .stdout
                .contains("[confirmation pending until ")
        }),
        "the apply over SSH did not finish: {}",
        peer.sh("cat /tmp/apply.log").output()
    );
    // The server's side of the session first (it must be there), then the client.
    m.sh("pkill -KILL -f '^sshd(-session)?: root'").assert_ok();
    peer.sh("pkill -KILL -x ssh; true").assert_ok();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        m.sh("pgrep -f '^sshd(-session)?: root'")
            .stdout
            .trim()
            .is_empty(),
        "root's session is still there"
    );
    assert_rolled_back_on_time(&m, &peer);
}

#[test]
fn debian12_confirm_or_revert_over_ssh() {
    confirmed_stays_unconfirmed_and_killed_sessions_roll_back(Os::Debian12);
}

#[test]
fn debian13_confirm_or_revert_over_ssh() {
    confirmed_stays_unconfirmed_and_killed_sessions_roll_back(Os::Debian13);
}
