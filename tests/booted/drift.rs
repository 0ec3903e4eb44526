//! The drift units of `examples/systemd/`, installed as the README says and run by systemd
//! with their sandboxing: a clean host succeeds, drift is logged and does not fail the unit,
//! and with the auto-correct drop-in the drift is corrected.

use super::{keyed_admin, peer_key, site_playbook};
use crate::support::booted::{Booted, Os};

const SERVICE: &str = include_str!("../../examples/systemd/harden-drift.service");
const TIMER: &str = include_str!("../../examples/systemd/harden-drift.timer");
const AUTO_CORRECT: &str =
    include_str!("../../examples/systemd/harden-drift.service.d/auto-correct.conf");

const UNIT: &str = "harden-drift.service";

/// Installs harden, the site playbook and the units as the README's commands do, and
/// enables the timer.
fn install(m: &Booted) {
    m.write("/root/site.yaml", &site_playbook());
    m.write("/root/harden-drift.service", SERVICE);
    m.write("/root/harden-drift.timer", TIMER);
    m.sh(&format!(
        "set -e; cd /root
         install -m 0755 {} /usr/local/sbin/harden
         install -D -m 0600 site.yaml /etc/harden/site.yaml
         install -m 0644 harden-drift.service harden-drift.timer /etc/systemd/system/
         systemctl daemon-reload && systemctl enable --now harden-drift.timer",
        crate::support::HARDEN_IN_SANDBOX
    ))
    .assert_ok();
}

/// Runs the service once (a oneshot: `start` returns when it is done) and returns its
/// main process's exit status, after checking that the unit is not failed.
#[track_caller]
fn run_once(m: &Booted) -> String {
    let start = m.exec(&["systemctl", "start", UNIT]);
    let show = m
        .exec(&[
            "systemctl",
            "show",
            "-p",
            "Result",
            "-p",
            "ExecMainStatus",
            "-p",
            "ActiveState",
            UNIT,
        ])
        .assert_ok()
        .stdout;
    assert!(
        start.success()
            && show.contains("Result=success\n")
            && show.contains("ActiveState=inactive\n"),
        "{UNIT} failed: {start}\n{show}\n{}",
        journal(m, None)
    );
    show.lines()
        .find_map(|l| l.strip_prefix("ExecMainStatus="))
        .expect("ExecMainStatus")
        .to_owned()
}

/// The service's journal of this boot, at `priority` or more urgent.
fn journal(m: &Booted, priority: Option<&str>) -> String {
    let priority = priority.map(|p| format!(" -p {p}")).unwrap_or_default();
    m.sh(&format!(
        "journalctl -b --no-pager -o cat -u {UNIT}{priority}"
    ))
    .stdout
}

fn the_drift_units_report_and_correct_drift(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    let peer = m.spawn_peer();
    let key = peer_key(&peer);
    m.boot();
    keyed_admin(&m, &key);
    install(&m);
    assert_eq!(
        m.exec(&["systemctl", "is-active", "harden-drift.timer"])
            .stdout
            .trim(),
        "active"
    );
    let sandboxing = m
        .exec(&[
            "systemctl",
            "show",
            "-p",
            "ProtectSystem",
            "-p",
            "NoNewPrivileges",
            UNIT,
        ])
        .assert_ok()
        .stdout;
    assert_eq!(sandboxing, "ProtectSystem=strict\nNoNewPrivileges=yes\n");

    // A clean host: the site playbook applied, then the check finds nothing.
    m.exec(&["/usr/local/sbin/harden", "apply", "/etc/harden/site.yaml"])
        .assert_ok();
    assert_eq!(run_once(&m), "0");
    assert!(journal(&m, None).contains("no drift: this host matches /etc/harden/site.yaml"));
    assert!(!journal(&m, Some("warning")).contains("DRIFT DETECTED"));

    // Drift: logged as a warning with the plan, the unit not failed, nothing changed.
    m.sh("chmod 0644 /etc/ssh/sshd_config").assert_ok();
    assert_eq!(run_once(&m), "2");
    let warnings = journal(&m, Some("warning"));
    assert!(
        warnings.contains("DRIFT DETECTED: this host differs"),
        "{warnings}"
    );
    assert!(
        journal(&m, None).contains("~ files /etc/ssh/sshd_config (mode differs)"),
        "{}",
        journal(&m, None)
    );
    assert_eq!(m.sh("stat -c %a /etc/ssh/sshd_config").stdout.trim(), "644");

    // The auto-correct drop-in applies instead: corrected, with a snapshot to undo it.
    let snapshots = m
        .exec(&["/usr/local/sbin/harden", "snapshots"])
        .assert_ok()
        .stdout;
    m.write("/root/auto-correct.conf", AUTO_CORRECT);
    m.sh("install -D -m 0644 /root/auto-correct.conf /etc/systemd/system/harden-drift.service.d/auto-correct.conf && systemctl daemon-reload")
        .assert_ok();
    assert_eq!(run_once(&m), "0");
    assert_eq!(m.sh("stat -c %a /etc/ssh/sshd_config").stdout.trim(), "600");
    assert!(journal(&m, None).contains("harden apply: host matches /etc/harden/site.yaml"));
    let after = m
        .exec(&["/usr/local/sbin/harden", "snapshots"])
        .assert_ok()
        .stdout;
    assert_eq!(
        after.lines().count(),
        snapshots.lines().count() + 1,
        "{snapshots}\n{after}"
    );
    m.exec(&[
        "/usr/local/sbin/harden",
        "plan",
        "--detailed-exitcode",
        "/etc/harden/site.yaml",
    ])
    .assert_ok();
}

#[test]
fn debian12_the_drift_units_report_and_correct_drift() {
    the_drift_units_report_and_correct_drift(Os::Debian12);
}

#[test]
fn debian13_the_drift_units_report_and_correct_drift() {
    the_drift_units_report_and_correct_drift(Os::Debian13);
}
