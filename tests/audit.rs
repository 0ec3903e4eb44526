//! End-to-end tests of the `audit` resource with the real auditd package and `augenrules`,
//! offline from the local package cache. Nothing here loads rules: the kernel's audit rules
//! are not namespaced and the sandbox has no `CAP_AUDIT_CONTROL`, so what is checked is the
//! merged `/etc/audit/audit.rules` (and `augenrules --check` agreeing with it), idempotence,
//! rollback, the install of auditd and its purge, located errors. auditd is kept from
//! starting in the copy by a policy-rc.d of the copy's own.

use crate::support::{apt_cache, Sandbox};

const PLAYBOOK: &str = "audit:
  rules:
    - -w /etc/passwd -p wa -k identity
    - -w /etc/sudoers -p wa -k scope
";

/// The copy's apt from the cache, and no service started by package scripts.
fn offline_without_starts(sb: &Sandbox) {
    apt_cache::use_in_sandbox(sb);
    sb.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n");
    sb.sh("chmod 755 /usr/sbin/policy-rc.d").assert_ok();
}

fn installed(sb: &Sandbox, package: &str) -> bool {
    sb.sh(&format!(
        "[ \"$(dpkg-query -W -f '${{db:Status-Status}}' {package} 2>/dev/null)\" = installed ]"
    ))
    .success()
}

#[test]
fn rules_are_installed_merged_once_and_rolled_back_with_auditd() {
    let Some(sb) = crate::sandbox!() else { return };
    offline_without_starts(&sb);
    assert!(!installed(&sb, "auditd"));
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.output()
            .contains("nothing is loaded into the kernel now"),
        "{plan}"
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(installed(&sb, "auditd"));
    let merged = sb.read("/etc/audit/audit.rules");
    for rule in [
        "-w /etc/passwd -p wa -k identity",
        "-w /etc/sudoers -p wa -k scope",
    ] {
        assert!(
            merged.lines().any(|l| l == rule),
            "{rule} not in:\n{merged}"
        );
    }
    let check = sb.sh("augenrules --check").assert_ok();
    assert!(check.stdout.contains("No change"), "{check}");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert!(!installed(&sb, "auditd"));
    assert!(!sb.exists("/etc/audit/rules.d/50-harden.rules"));
}

#[test]
fn a_rule_change_is_merged_and_its_rollback_restores_the_merged_file() {
    let Some(sb) = crate::sandbox!() else { return };
    offline_without_starts(&sb);
    sb.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q auditd >/dev/null && augenrules")
        .assert_ok();
    let before = sb.read("/etc/audit/audit.rules");
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_ne!(sb.read("/etc/audit/audit.rules"), before);
    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(sb.read("/etc/audit/audit.rules"), before);
    assert!(installed(&sb, "auditd"), "auditd was there before");
}

#[test]
fn rules_that_could_not_be_undone_or_are_not_rules_are_located_errors() {
    let Some(sb) = crate::sandbox!() else { return };
    for (yaml, needle) in [
        ("audit:\n  rules:\n    - -e 2\n", "never sets -e"),
        (
            "audit:\n  rules:\n    - watch /etc/shadow\n",
            "is not an audit rule",
        ),
    ] {
        sb.write("/tmp/pb.yaml", yaml);
        let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
        assert_ne!(run.status, 0, "{yaml}: {run}");
        assert!(run.stderr.contains("/tmp/pb.yaml:3:7"), "{yaml}: {run}");
        assert!(run.stderr.contains(needle), "{yaml}: {run}");
    }
}
