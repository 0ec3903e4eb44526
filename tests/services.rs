//! End-to-end tests of the `services` resource where systemd does not run (the sandbox):
//! enablement set offline by the real `systemctl` and read back with `systemctl is-enabled`,
//! idempotence, rollback, the SSH guard, located errors. Run states, which need systemd as
//! PID 1, are tested in the booted tier (`tests/booted/services.rs`).

use crate::support::Sandbox;

/// A unit of the test's own, enabled, so that nothing else on the machine depends on it.
pub(crate) const UNIT: &str = "[Unit]
Description=harden test unit

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
";

fn is_enabled(sb: &Sandbox, unit: &str) -> String {
    sb.exec(&["systemctl", "is-enabled", unit])
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn units_are_masked_and_disabled_offline_once_and_rolled_back() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write("/usr/lib/systemd/system/harden-test.service", UNIT);
    sb.sh("systemctl enable harden-test.service apt-daily.timer")
        .assert_ok();
    assert_eq!(is_enabled(&sb, "harden-test.service"), "enabled");
    sb.write(
        "/tmp/pb.yaml",
        "services:\n  harden-test: { enablement: masked }\n  apt-daily.timer: { enablement: disabled }\n  no-such-unit: { enablement: disabled }\n",
    );
    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(targets, vec!["apt-daily.timer", "harden-test.service"]);
    assert_eq!(
        plan.unchanged, 1,
        "a unit that is not installed is not enabled"
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(is_enabled(&sb, "harden-test.service"), "masked");
    assert_eq!(is_enabled(&sb, "apt-daily.timer"), "disabled");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(is_enabled(&sb, "harden-test.service"), "enabled");
    assert_eq!(is_enabled(&sb, "apt-daily.timer"), "enabled");
}

#[test]
fn the_run_state_is_left_alone_without_systemd_and_the_plan_says_so() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write("/etc/systemd/system/harden-test.service", UNIT);
    sb.write(
        "/tmp/pb.yaml",
        "services:\n  harden-test: { running: true }\n",
    );
    let run = sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 0, "{run}");
    assert!(
        run.output()
            .contains("the run state of harden-test.service is left as it is"),
        "{run}"
    );
}

#[test]
fn masking_or_disabling_sshd_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    let before = is_enabled(&sb, "ssh.service");
    for yaml in [
        "services:\n  ssh: { enablement: masked }\n",
        "services:\n  sshd: { enablement: disabled }\n",
    ] {
        sb.write("/tmp/pb.yaml", yaml);
        let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
        assert_eq!(run.status, 1, "{yaml}: {run}");
        assert!(run.stderr.contains("--allow services-ssh"), "{yaml}: {run}");
        assert_eq!(is_enabled(&sb, "ssh.service"), before);
    }
}

#[test]
fn bad_units_are_located_errors() {
    let Some(sb) = crate::sandbox!() else { return };
    // systemd cannot mask a unit whose file is where the mask's link would go.
    sb.write("/etc/systemd/system/harden-test.service", UNIT);
    for (yaml, place, needle) in [
        (
            "services:\n  harden-test: { enablement: masked }\n",
            "/tmp/pb.yaml:2:30",
            "cannot mask harden-test.service",
        ),
        (
            "services:\n  no-such-unit: { enablement: enabled }\n",
            "/tmp/pb.yaml:2:3",
            "not installed",
        ),
        (
            "services:\n  cups: { enablement: on }\n",
            "/tmp/pb.yaml:2:",
            "unknown variant",
        ),
        (
            "services:\n  \"a b\": { enablement: masked }\n",
            "/tmp/pb.yaml:2:",
            "invalid unit name",
        ),
    ] {
        sb.write("/tmp/pb.yaml", yaml);
        let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
        assert_ne!(run.status, 0, "{yaml}: {run}");
        assert!(run.stderr.contains(place), "{yaml}: {run}");
        assert!(run.stderr.contains(needle), "{yaml}: {run}");
    }
}
