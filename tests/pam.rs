//! End-to-end tests of the `pam` resource with the real PAM stack, offline from the local
//! package cache: libpam-pwquality and pamtester installed through pam-auth-update's
//! profile, a weak password refused and a strong one accepted by `chpasswd` afterwards, key
//! login through sshd still working, idempotence, rollback, a broken stack failing the login
//! check and rolling back, located errors.

use crate::support::fixtures::admin_key_login;
use crate::support::{apt_cache, keyed_admin, start_sshd, Sandbox};

const PLAYBOOK: &str = "pam:
  pwquality:
    minlen: 12
    minclass: 3
    dictcheck: true
    enforce_for_root: true
";

/// A password of 17 characters in four classes, not a word.
const STRONG: &str = "Vq7-Lp2_xR9.mZ4kW";

fn chpasswd(sb: &Sandbox, password: &str) -> crate::support::Run {
    sb.sh_with_stdin("chpasswd", &format!("alice:{password}\n"))
}

fn installed(sb: &Sandbox, package: &str) -> bool {
    sb.sh(&format!(
        "[ \"$(dpkg-query -W -f '${{db:Status-Status}}' {package} 2>/dev/null)\" = installed ]"
    ))
    .success()
}

#[test]
fn password_quality_applies_once_refuses_weak_passwords_keeps_key_logins_and_rolls_back() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    keyed_admin(&sb);
    start_sshd(&sb);
    sb.sh("useradd -m alice").assert_ok();
    let stack_before = sb.read("/etc/pam.d/common-password");
    // Before: root may set any password.
    chpasswd(&sb, "abc").assert_ok();

    sb.write("/tmp/pb.yaml", PLAYBOOK);
    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            "install libpam-pwquality, pamtester",
            "/etc/security/pwquality.conf.d/zz-harden.conf",
            "login check"
        ]
    );
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(!apply.output().contains(STRONG));

    let stack = sb.read("/etc/pam.d/common-password");
    assert!(stack.contains("pam_pwquality.so"), "{stack}");
    assert!(
        !sb.sh("getent passwd harden-pamcheck").success(),
        "the check's account stays"
    );
    let weak = chpasswd(&sb, "abc12");
    assert!(!weak.success(), "a weak password was accepted: {weak}");
    assert!(weak.output().contains("BAD PASSWORD"), "{weak}");
    chpasswd(&sb, "password1234").assert_fails();
    chpasswd(&sb, STRONG).assert_ok();
    admin_key_login(&sb).assert_ok();
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(sb.read("/etc/pam.d/common-password"), stack_before);
    assert!(!installed(&sb, "libpam-pwquality"));
    assert!(!installed(&sb, "pamtester"));
    assert!(!sb.exists("/etc/security/pwquality.conf.d/zz-harden.conf"));
    chpasswd(&sb, "abc").assert_ok();
    admin_key_login(&sb).assert_ok();
}

#[test]
fn a_stack_that_cannot_run_pwquality_fails_the_login_check_and_rolls_back() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    sb.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpam-pwquality pamtester")
        .assert_ok();
    // The profile is in the stack, but the module is gone: pam_pwquality cannot run.
    sb.sh("mv /usr/lib/x86_64-linux-gnu/security/pam_pwquality.so /root/")
        .assert_ok();
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{run}");
    assert!(run.stderr.contains("rolled back"), "{run}");
    assert!(run.stderr.contains("pam_pwquality did not judge"), "{run}");
    assert!(!sb.exists("/etc/security/pwquality.conf.d/zz-harden.conf"));
    assert!(!sb.sh("getent passwd harden-pamcheck").success());
}

/// Every service of `check_services` gets a real login through PAM: one whose stack refuses
/// every login fails the check, and the apply rolls back. (The check once drew its password
/// with `set --`, which replaced the service list with leftover characters.)
#[test]
fn each_checked_service_gets_a_login_and_one_that_refuses_it_rolls_back() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    sb.write(
        "/etc/pam.d/harden-test-deny",
        "auth requisite pam_deny.so
account requisite pam_deny.so
",
    );
    sb.write(
        "/tmp/pb.yaml",
        &format!("{PLAYBOOK}  check_services: [sshd, harden-test-deny]\n"),
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{run}");
    assert!(
        run.stderr
            .contains("a login through PAM service harden-test-deny failed"),
        "{run}"
    );
    assert!(run.stderr.contains("rolled back"), "{run}");
    assert!(!sb.exists("/etc/security/pwquality.conf.d/zz-harden.conf"));
}

#[test]
fn a_value_pwquality_conf_overrides_and_bad_values_are_located_errors() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    sb.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q libpam-pwquality pamtester && echo 'minlen = 8' >> /etc/security/pwquality.conf")
        .assert_ok();
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
    assert_ne!(run.status, 0, "{run}");
    assert!(run.stderr.contains("/tmp/pb.yaml:3:13"), "{run}");
    assert!(
        run.stderr.contains("/etc/security/pwquality.conf:"),
        "{run}"
    );
    sb.write("/tmp/pb.yaml", "pam:\n  pwquality:\n    minclass: 7\n");
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
    assert_ne!(run.status, 0, "{run}");
    assert!(run.stderr.contains("/tmp/pb.yaml:3:15"), "{run}");
}
