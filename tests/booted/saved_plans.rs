//! Saved plans under systemd (issue 13): a plan saved with `harden plan --out` for sshd and
//! fail2ban is refused as stale after an unrelated edit of a file it touches, or a change of
//! a unit it changes, naming each, and changes nothing; applied unchanged, it makes exactly
//! its changes (the snapshot saves the paths the plan assumed, no more).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{keyed_admin, sshd_t};
use crate::support::booted::{Booted, Os};

const PLAYBOOK: &str = "sshd:
  config:
    PasswordAuthentication: false
fail2ban:
  jails:
    sshd: { enabled: true, backend: systemd }
";

const PLAN: &str = "/root/plan.json";

/// The paths a saved plan assumed, and the first existing file whose content it hashed.
fn assumed(saved: &Value) -> (BTreeSet<String>, String) {
    let paths = saved["preconditions"]["paths"].as_array().expect("paths");
    let all = paths
        .iter()
        .map(|p| p["path"].as_str().expect("a path").to_owned())
        .collect();
    let hashed = paths
        .iter()
        .find(|p| p["found"]["sha256"].is_string())
        .and_then(|p| p["path"].as_str())
        .unwrap_or_else(|| panic!("no file whose content the plan assumed: {saved}"))
        .to_owned();
    (all, hashed)
}

fn unchanged_state(m: &Booted) -> String {
    m.sh("systemctl is-enabled fail2ban.service; systemctl is-active fail2ban.service; sshd -T | grep -i '^passwordauthentication'; true")
        .stdout
}

fn a_saved_plan_is_refused_when_stale_and_applied_exactly(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.boot();
    // An account with a key, so that the guard lets passwords go.
    let key = m
        .sh("ssh-keygen -q -t ed25519 -N '' -f /root/admin_key && cat /root/admin_key.pub")
        .assert_ok()
        .stdout;
    keyed_admin(&m, key.trim());
    m.sh("systemctl disable --now fail2ban.service").assert_ok();
    // A drop-in the plan rewrites, so that it assumes its content.
    m.write("/etc/ssh/sshd_config.d/00-harden.conf", "MaxAuthTries 6\n");
    m.write("/root/pb.yaml", PLAYBOOK);
    m.harden(&["plan", "--out", PLAN, "/root/pb.yaml"])
        .assert_ok();
    let saved: Value = serde_json::from_str(&m.read(PLAN)).expect("the saved plan is JSON");
    let units = &saved["preconditions"]["units"];
    assert!(
        units.as_array().is_some_and(|u| u
            .iter()
            .any(|u| u["unit"] == "fail2ban.service" && u["state"]["enablement"] == "disabled")),
        "{units}"
    );
    let (paths, hashed) = assumed(&saved);
    let before = unchanged_state(&m);

    // An unrelated edit of a file it touches, and the unit enabled by someone else.
    m.sh(&format!(
        "cp -p {hashed} /root/kept && echo '# an unrelated edit' >> {hashed}"
    ))
    .assert_ok();
    m.sh("systemctl enable fail2ban.service").assert_ok();
    let refused = m.harden(&["apply", PLAN]).assert_status(4);
    assert!(
        refused
            .stderr
            .contains(&format!("{hashed}: content changed")),
        "{refused}"
    );
    assert!(
        refused.stderr.contains("fail2ban.service: was disabled, "),
        "{refused}"
    );
    m.sh("systemctl disable fail2ban.service").assert_ok();
    let edited = m.read(&hashed);
    assert!(
        edited.ends_with("# an unrelated edit\n"),
        "the refused apply changed {hashed}"
    );
    assert_eq!(unchanged_state(&m), before);
    assert!(
        !m.sh("test -e /var/lib/harden/snapshots").success(),
        "a refused plan took a snapshot"
    );

    // Put back as it was: the plan applies, exactly.
    m.sh(&format!("cp -p /root/kept {hashed}")).assert_ok();
    let applied = m
        .harden(&["apply", "--format", "json", PLAN])
        .assert_ok()
        .json();
    assert_eq!(applied["status"], "changed", "{applied}");
    let id = applied["snapshot"].as_str().expect("a snapshot");
    let manifest: Value =
        serde_json::from_str(&m.read(&format!("/var/lib/harden/snapshots/{id}/manifest.json")))
            .expect("manifest");
    let saved_paths: BTreeSet<String> = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["path"].as_str().expect("a path").to_owned())
        .collect();
    assert_eq!(saved_paths, paths);
    assert!(sshd_t(&m).iter().any(|l| l == "passwordauthentication no"));
    assert_eq!(
        m.exec(&["systemctl", "is-enabled", "fail2ban.service"])
            .stdout
            .trim(),
        "enabled"
    );
    m.harden(&["plan", "--detailed-exitcode", "/root/pb.yaml"])
        .assert_ok();
}

#[test]
fn debian12_a_saved_plan_is_refused_when_stale_and_applied_exactly() {
    a_saved_plan_is_refused_when_stale_and_applied_exactly(Os::Debian12);
}

#[test]
fn debian13_a_saved_plan_is_refused_when_stale_and_applied_exactly() {
    a_saved_plan_is_refused_when_stale_and_applied_exactly(Os::Debian13);
}
