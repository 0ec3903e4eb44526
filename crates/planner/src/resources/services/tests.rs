//! Unit tests of the `services` diff, its guard and its located errors.

use harden_plan::{Enablement, Step, UnitAction, UnitState};

use super::*;
use crate::testing;

fn unit(enablement: &str, active: &str, serves_ssh: bool) -> Unit {
    Unit {
        state: UnitState {
            enablement: enablement.into(),
            active: active.into(),
        },
        serves_ssh,
        local_file: false,
    }
}

fn diff_with(yaml: &str, units: &[(&str, Unit)], overrides: &[&str]) -> Result<Diff, Failure> {
    let live = Live {
        units: units
            .iter()
            .map(|(n, u)| ((*n).to_owned(), u.clone()))
            .collect(),
        systemctl: true,
        systemd: true,
    };
    testing::diff(
        yaml,
        |p| p.services,
        &live,
        &testing::root_only(),
        overrides,
    )
}

fn unit_step(change: &Change) -> &UnitStep {
    match &change.steps[..] {
        [Step::Unit(u)] => u,
        other => panic!("one unit step, not {other:?}"),
    }
}

#[test]
fn units_get_the_enablement_and_run_state_asked_for() {
    let diff = diff_with(
        "services:\n  cups: { enablement: masked, running: false }\n  apt-daily.timer: { enablement: disabled }\n  rsyslog: { enablement: enabled, running: true }\n",
        &[
            ("cups.service", unit("enabled", "active", false)),
            ("apt-daily.timer", unit("disabled", "active", false)),
            ("rsyslog.service", unit("disabled", "inactive", false)),
        ],
        &[],
    )
    .expect("diff");
    assert_eq!(diff.unchanged, 1, "the timer is disabled already");
    let cups = unit_step(&diff.changes[0]);
    assert_eq!(cups.unit, "cups.service");
    assert_eq!(cups.enablement, Some(Enablement::Masked));
    assert_eq!(cups.action, Some(UnitAction::Stop));
    assert_eq!(
        cups.summary(),
        "cups.service: enabled, active -> masked, inactive"
    );
    let rsyslog = unit_step(&diff.changes[1]);
    assert_eq!(rsyslog.enablement, Some(Enablement::Enabled));
    assert_eq!(rsyslog.action, Some(UnitAction::Start));
    assert!(diff.changes.iter().all(|c| c.on_rollback.is_empty()));
}

#[test]
fn a_unit_as_asked_is_an_empty_plan_and_nothing_disables_what_cannot_start() {
    let diff = diff_with(
        "services:\n  cups: { enablement: masked }\n  gone: { enablement: disabled }\n  systemd-journald: { enablement: disabled }\n",
        &[
            ("cups.service", unit("masked", "inactive", false)),
            ("gone.service", unit("not-found", "inactive", false)),
            ("systemd-journald.service", unit("static", "active", false)),
        ],
        &[],
    )
    .expect("diff");
    assert!(diff.changes.is_empty(), "{:?}", diff.changes);
    assert_eq!(diff.unchanged, 3);
}

#[test]
fn masking_a_unit_whose_state_rollback_cannot_set_unmasks_it_on_rollback() {
    let diff = diff_with(
        "services:\n  telnetd: { enablement: masked }\n",
        &[("telnetd.service", unit("not-found", "inactive", false))],
        &[],
    )
    .expect("diff");
    let undo: Vec<String> = diff.changes[0]
        .on_rollback
        .iter()
        .map(|c| c.display())
        .collect();
    assert_eq!(undo, vec!["systemctl unmask telnetd.service"]);
}

#[test]
fn the_unit_that_serves_ssh_is_never_taken_away_unless_allowed() {
    for yaml in [
        "services:\n  ssh: { enablement: masked }\n",
        "services:\n  ssh: { enablement: disabled }\n",
        "services:\n  ssh: { running: false }\n",
    ] {
        let units = [("ssh.service", unit("enabled", "active", true))];
        let Err(Failure::Refused(refusal)) = diff_with(yaml, &units, &[]) else {
            panic!("{yaml}: refused")
        };
        assert_eq!(refusal.guard, SSH_GUARD);
        assert!(
            refusal.message.contains("ssh.service serves SSH"),
            "{refusal:?}"
        );
        diff_with(yaml, &units, &[SSH_GUARD]).expect("allowed");
    }
    // Enabling and starting it is fine.
    let units = [("ssh.service", unit("disabled", "inactive", true))];
    diff_with(
        "services:\n  ssh: { enablement: enabled, running: true }\n",
        &units,
        &[],
    )
    .expect("enabling sshd is allowed");
}

#[test]
fn systemctl_show_tells_the_units_that_serve_ssh() {
    assert!(shows_ssh("Names=sshd.service ssh.service\n", &[22]));
    assert!(shows_ssh(
        "Names=my-ssh.service\nExecStart={ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -D ; ignore_errors=no }\n",
        &[22]
    ));
    assert!(shows_ssh(
        "Names=custom.socket\nListen=[::]:2222 (Stream)\n",
        &[2222]
    ));
    assert!(!shows_ssh(
        "Names=cups.socket\nListen=/run/cups/cups.sock (Stream)\n",
        &[22]
    ));
    assert!(!shows_ssh(
        "Names=web.socket\nListen=[::]:8022 (Stream)\n",
        &[22]
    ));
}

#[test]
fn units_that_cannot_be_enabled_are_located_errors() {
    let Err(Failure::Invalid(errors)) = diff_with(
        "services:\n  missing: { enablement: enabled }\n  systemd-journald: { enablement: enabled }\n",
        &[
            ("missing.service", unit("not-found", "inactive", false)),
            ("systemd-journald.service", unit("static", "active", false)),
        ],
        &[],
    ) else {
        panic!("invalid")
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].message.contains("not installed"), "{errors:?}");
    assert_eq!((errors[0].at.line, errors[0].at.column), (2, 3));
    assert!(errors[1].message.contains("is static"), "{errors:?}");
    assert_eq!((errors[1].at.line, errors[1].at.column), (3, 35));
}

#[test]
fn masking_a_unit_of_the_administrator_s_directory_is_a_located_error() {
    let mut local = unit("enabled", "inactive", false);
    local.local_file = true;
    let Err(Failure::Invalid(errors)) = diff_with(
        "services:\n  app: { enablement: masked }\n",
        &[("app.service", local)],
        &[],
    ) else {
        panic!("invalid")
    };
    assert!(
        errors[0].message.contains("cannot mask app.service"),
        "{errors:?}"
    );
    assert_eq!((errors[0].at.line, errors[0].at.column), (2, 22));
}

#[test]
fn bad_input_is_located() {
    for (yaml, needle) in [
        (
            "services:\n  \"bad name\": { enablement: masked }\n",
            "invalid unit name",
        ),
        (
            "services:\n  app.conf: { enablement: masked }\n",
            "unknown type .conf",
        ),
        (
            "services:\n  cups: { enablement: off }\n",
            "unknown variant",
        ),
        ("services:\n  cups: { enabled: true }\n", "unknown field"),
        (
            "services:\n  cups: {}\n",
            "neither `enablement` nor `running`",
        ),
        (
            "services:\n  cups: { enablement: masked, running: true }\n",
            "cannot run while masked",
        ),
    ] {
        let err = testing::parse(yaml).expect_err(yaml);
        assert!(err.contains("pb.yaml:2:"), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}

#[test]
fn names_without_a_type_are_services() {
    assert_eq!(unit_name("cups").as_deref(), Ok("cups.service"));
    assert_eq!(unit_name("getty@tty1").as_deref(), Ok("getty@tty1.service"));
    assert_eq!(
        unit_name("apt-daily.timer").as_deref(),
        Ok("apt-daily.timer")
    );
}
