//! sshd reloaded through systemd: a session opened before an apply stays usable after it,
//! and new sessions get the new configuration; a socket-activated sshd (`ssh.socket`) moves
//! to a new port.

use super::{
    keyed_admin, peer_key, ssh_with_key, ssh_with_password, sshd_t, PEER_KEY, SSH_OPTIONS,
};
use crate::support::booted::{Booted, Os};
use crate::support::Peer;

/// Passwords off, fewer tries: what a new login notices at once.
const PLAYBOOK: &str = "sshd:
  config:
    PasswordAuthentication: false
    KbdInteractiveAuthentication: false
    MaxAuthTries: 3
";

/// Where the peer's ssh keeps its control master socket.
const CONTROL: &str = "/tmp/admin-master";

/// Opens a control master connection as admin from the peer, in the background.
fn open_master(peer: &Peer) {
    peer.sh(&format!(
        "ssh {SSH_OPTIONS} -o BatchMode=yes -o IdentitiesOnly=yes -i {PEER_KEY} \
         -o ControlMaster=yes -o ControlPath={CONTROL} -o ControlPersist=yes -E /tmp/master.log \
         -fN admin@{} </dev/null >/dev/null 2>&1",
        peer.sandbox_addr()
    ))
    .assert_ok();
    check_master(peer).assert_ok();
}

/// `ssh -O check` on the control master.
fn check_master(peer: &Peer) -> crate::support::Run {
    peer.sh(&format!(
        "ssh {SSH_OPTIONS} -o ControlPath={CONTROL} -O check admin@{}",
        peer.sandbox_addr()
    ))
}

/// A command run in a new session over the control master's connection.
fn over_master(peer: &Peer, command: &str) -> crate::support::Run {
    peer.sh(&format!(
        "ssh {SSH_OPTIONS} -o BatchMode=yes -o ControlMaster=no -o ControlPath={CONTROL} admin@{} {command}",
        peer.sandbox_addr()
    ))
}

/// The PIDs of the sshd processes serving admin's connections (`sshd-session` since
/// OpenSSH 9.8, as in Debian 13).
fn admin_sessions(m: &Booted) -> String {
    m.sh("pgrep -d ' ' -f '^sshd(-session)?: admin' || true")
        .stdout
        .trim()
        .to_owned()
}

/// `systemctl show -p PROPERTY --value ssh.service`.
fn ssh_property(m: &Booted, property: &str) -> String {
    m.exec(&[
        "systemctl",
        "show",
        "-p",
        property,
        "--value",
        "ssh.service",
    ])
    .assert_ok()
    .stdout
    .trim()
    .to_owned()
}

fn an_open_session_survives_the_reload(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    let peer = m.spawn_peer();
    let key = peer_key(&peer);
    m.boot();
    keyed_admin(&m, &key);
    // Before: passwords work (Debian's default), and a session is open.
    ssh_with_password(&peer, "admin").assert_ok();
    open_master(&peer);
    assert_eq!(
        over_master(&peer, "echo before").assert_ok().stdout,
        "before\n"
    );
    let sessions = admin_sessions(&m);
    assert!(!sessions.is_empty(), "no sshd serves admin's session");
    let main_pid = ssh_property(&m, "MainPID");
    let started = ssh_property(&m, "ExecMainStartTimestampMonotonic");

    m.write("/root/sshd.yaml", PLAYBOOK);
    let apply = m.harden(&["apply", "/root/sshd.yaml"]).assert_ok();
    assert!(apply.stderr.contains("] reload ssh\n"), "{apply}");

    // Reloaded through systemd, not restarted: the same main process, which re-read its
    // configuration on SIGHUP.
    assert_eq!(
        ssh_property(&m, "MainPID"),
        main_pid,
        "ssh.service was restarted, not reloaded"
    );
    assert_eq!(ssh_property(&m, "ExecMainStartTimestampMonotonic"), started);
    assert_eq!(ssh_property(&m, "ActiveState"), "active");
    let journal = m.sh("journalctl -b --no-pager -u ssh.service").stdout;
    assert!(
        journal.contains("Received SIGHUP"),
        "sshd got no SIGHUP:\n{journal}"
    );
    // The open session is still there and usable.
    assert_eq!(admin_sessions(&m), sessions, "admin's session was cut");
    check_master(&peer).assert_ok();
    assert_eq!(
        over_master(&peer, "echo after").assert_ok().stdout,
        "after\n"
    );
    // New sessions see the new configuration.
    let refused = ssh_with_password(&peer, "admin").assert_fails();
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "{refused}"
    );
    // (ssh_with_key has no control path: a new connection.)
    ssh_with_key(&peer, "admin", "true").assert_ok();
    let t = sshd_t(&m);
    assert!(t.iter().any(|l| l == "maxauthtries 3"), "{t:?}");
}

#[test]
fn debian12_an_open_session_survives_the_sshd_reload() {
    an_open_session_survives_the_reload(Os::Debian12);
}

#[test]
fn debian13_an_open_session_survives_the_sshd_reload() {
    an_open_session_survives_the_reload(Os::Debian13);
}

/// A new port for a socket-activated sshd.
const NEW_PORT: &str = "sshd:
  config:
    Port: 2222
";

/// Whether something listens on TCP `port` in the machine.
fn listens(m: &Booted, port: u16) -> bool {
    !m.sh(&format!("ss -Hltn 'sport = :{port}'"))
        .assert_ok()
        .stdout
        .trim()
        .is_empty()
}

/// `true` run as admin over a new connection to `port`, from the peer.
fn login_on(peer: &Peer, port: u16) -> crate::support::Run {
    peer.sh(&format!(
        "ssh {SSH_OPTIONS} -p {port} -o BatchMode=yes -o IdentitiesOnly=yes -i {PEER_KEY} admin@{} true",
        peer.sandbox_addr()
    ))
}

fn a_socket_activated_sshd_moves_to_the_new_port(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    let peer = m.spawn_peer();
    let key = peer_key(&peer);
    m.boot();
    keyed_admin(&m, &key);
    m.sh("systemctl disable --now ssh.service && systemctl enable --now ssh.socket")
        .assert_ok();
    login_on(&peer, 22).assert_ok();

    m.write("/root/port.yaml", NEW_PORT);
    let apply = m.harden(&["apply", "/root/port.yaml"]);
    assert!(
        apply.success(),
        "the port change was not applied: {apply}\n--- journal ---\n{}",
        m.sh("journalctl -b --no-pager -n 40 -u ssh.socket -u ssh.service; systemctl status --no-pager ssh.socket ssh.service; ls -la /etc/systemd/system/ssh.socket.d; cat /etc/systemd/system/ssh.socket.d/*")
            .output()
    );
    assert_eq!(
        m.exec(&["systemctl", "is-active", "ssh.socket"])
            .stdout
            .trim(),
        "active"
    );
    assert!(listens(&m, 2222), "nothing listens on the new port 2222");
    assert!(!listens(&m, 22), "the old port 22 still listens");
    login_on(&peer, 2222).assert_ok();
    login_on(&peer, 22).assert_fails();
    let t = sshd_t(&m);
    assert!(t.iter().any(|l| l == "port 2222"), "{t:?}");
    m.harden(&["plan", "--detailed-exitcode", "/root/port.yaml"])
        .assert_ok();
}

#[test]
fn debian12_a_socket_activated_sshd_moves_to_the_new_port() {
    a_socket_activated_sshd_moves_to_the_new_port(Os::Debian12);
}

#[test]
fn debian13_a_socket_activated_sshd_moves_to_the_new_port() {
    a_socket_activated_sshd_moves_to_the_new_port(Os::Debian13);
}
