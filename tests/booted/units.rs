//! Unit steps under systemd: a unit that will not start makes the apply fail and roll back,
//! and the rollback puts the unit's enablement and run state back through systemctl.

use crate::support::booted::{Booted, Os};
use crate::support::HARDEN_IN_SANDBOX;

/// A fail2ban section whose jail is valid: only the service itself will refuse to start.
const JAIL: &str = "fail2ban:
  jails:
    sshd: { enabled: true, backend: systemd }
";

/// fail2ban's enablement and whether it runs (a restore cannot bring back "failed": a
/// unit that was failed or inactive comes back stopped).
fn state(m: &Booted) -> (String, bool) {
    let word = |verb: &str| {
        m.exec(&["systemctl", verb, "fail2ban.service"])
            .stdout
            .trim()
            .to_owned()
    };
    let active = word("is-active");
    (
        word("is-enabled"),
        matches!(active.as_str(), "active" | "activating"),
    )
}

fn a_unit_that_will_not_start_is_rolled_back_to_its_state(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.boot();
    // Disabled and stopped, and made unable to start by a drop-in of another tool's.
    m.sh("systemctl disable --now fail2ban.service && mkdir -p /etc/systemd/system/fail2ban.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' > /etc/systemd/system/fail2ban.service.d/50-broken.conf && systemctl daemon-reload")
        .assert_ok();
    let before = state(&m);
    assert_eq!(before, ("disabled".into(), false));
    // Debian 12's stock fail2ban failed at boot before it was stopped: `failed` there.
    let was = m
        .exec(&["systemctl", "is-active", "fail2ban.service"])
        .stdout;
    m.write("/root/f2b.yaml", JAIL);
    let plan = m.harden(&["plan", "/root/f2b.yaml"]).assert_ok();
    assert!(
        plan.stdout.contains(&format!(
            "fail2ban.service: disabled, {} -> enabled, active",
            was.trim()
        )),
        "{plan}"
    );
    let apply = m.harden(&["apply", "/root/f2b.yaml"]);
    assert_eq!(apply.status, 1, "{apply}");
    assert!(apply.stderr.contains("rolled back"), "{apply}");
    assert_eq!(state(&m), before, "the unit's state was not restored");
    assert!(
        !m.sh("test -e /etc/fail2ban/jail.d/zz-harden.local")
            .success(),
        "the jail file was not removed"
    );
    // With the broken drop-in gone, the same playbook applies and leaves fail2ban running.
    m.sh("rm -r /etc/systemd/system/fail2ban.service.d && systemctl daemon-reload")
        .assert_ok();
    m.harden(&["apply", "/root/f2b.yaml"]).assert_ok();
    assert_eq!(state(&m), ("enabled".into(), true));
    // harden's own reading of fail2ban's configuration agrees with this release's fail2ban.
    m.exec(&[
        "env",
        "HARDEN_FAIL2BAN_READER=compare",
        HARDEN_IN_SANDBOX,
        "plan",
        "/root/f2b.yaml",
    ])
    .assert_ok();
    // And `harden rollback` takes the unit back to disabled and stopped.
    m.harden(&["rollback"]).assert_ok();
    assert_eq!(state(&m), before);
}

#[test]
fn debian12_a_unit_that_will_not_start_is_rolled_back_to_its_state() {
    a_unit_that_will_not_start_is_rolled_back_to_its_state(Os::Debian12);
}

#[test]
fn debian13_a_unit_that_will_not_start_is_rolled_back_to_its_state() {
    a_unit_that_will_not_start_is_rolled_back_to_its_state(Os::Debian13);
}
