//! The `services` resource under systemd as PID 1: units masked, disabled, enabled, stopped
//! and started through `systemctl`, read back with `systemctl is-enabled` and `is-active`,
//! a second plan empty, `harden rollback` putting every unit back, and the SSH guard
//! keeping sshd running.

use crate::support::booted::{Booted, Os};

/// Two units of the test's own, so that nothing else on the machine depends on them.
const UNIT: &str = "[Unit]
Description=harden test unit

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
";

const PLAYBOOK: &str = "services:
  harden-busy: { enablement: masked, running: false }
  harden-idle: { enablement: enabled, running: true }
";

/// `is-enabled` and `is-active` of `unit`.
fn state(m: &Booted, unit: &str) -> (String, String) {
    let word = |verb: &str| m.exec(&["systemctl", verb, unit]).stdout.trim().to_owned();
    (word("is-enabled"), word("is-active"))
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

fn units_reach_their_state_once_and_roll_back(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.boot();
    for name in ["harden-busy", "harden-idle"] {
        m.write(&format!("/usr/lib/systemd/system/{name}.service"), UNIT);
    }
    m.sh("systemctl daemon-reload && systemctl enable --now harden-busy.service")
        .assert_ok();
    assert_eq!(state(&m, "harden-busy.service"), pair("enabled", "active"));
    assert_eq!(
        state(&m, "harden-idle.service"),
        pair("disabled", "inactive")
    );

    m.write("/root/pb.yaml", PLAYBOOK);
    let plan = m.harden(&["plan", "/root/pb.yaml"]).assert_ok();
    assert!(
        plan.stdout
            .contains("harden-busy.service (enabled, active should be masked, inactive)"),
        "{plan}"
    );
    m.harden(&["apply", "/root/pb.yaml"]).assert_ok();
    assert_eq!(state(&m, "harden-busy.service"), pair("masked", "inactive"));
    assert_eq!(state(&m, "harden-idle.service"), pair("enabled", "active"));
    m.harden(&["plan", "--detailed-exitcode", "/root/pb.yaml"])
        .assert_status(0);

    m.harden(&["rollback"]).assert_ok();
    assert_eq!(state(&m, "harden-busy.service"), pair("enabled", "active"));
    assert_eq!(
        state(&m, "harden-idle.service"),
        pair("disabled", "inactive")
    );

    // sshd is never stopped or masked, under its own name or its alias.
    let ssh = state(&m, "ssh.service");
    assert_eq!(ssh.1, "active", "{ssh:?}");
    for yaml in [
        "services:\n  ssh: { running: false }\n",
        "services:\n  sshd: { enablement: masked }\n",
    ] {
        m.write("/root/ssh.yaml", yaml);
        let run = m.harden(&["apply", "/root/ssh.yaml"]);
        assert_eq!(run.status, 1, "{yaml}: {run}");
        assert!(run.stderr.contains("--allow services-ssh"), "{yaml}: {run}");
        assert_eq!(state(&m, "ssh.service"), ssh);
    }
}

#[test]
fn debian12_units_reach_their_state_once_and_roll_back() {
    units_reach_their_state_once_and_roll_back(Os::Debian12);
}

#[test]
fn debian13_units_reach_their_state_once_and_roll_back() {
    units_reach_their_state_once_and_roll_back(Os::Debian13);
}
