//! End-to-end tests of the `limits` resource: what a real SSH login gets from pam_limits,
//! what `systemd-analyze cat-config` reads for systemd-coredump, `fs.suid_dumpable` (read-only
//! in the sandbox, so applied at next boot), idempotence, rollback, located errors.

use crate::support::{assert_located_errors, keyed_admin, start_sshd};

const FILES: [&str; 3] = [
    "/etc/security/limits.d/60-harden-coredump.conf",
    "/etc/systemd/coredump.conf.d/60-harden.conf",
    "/etc/sysctl.d/99-zz-harden-coredump.conf",
];

/// The hard core limit of a login session of the keyed admin, over SSH.
fn session_core_limit(sb: &crate::support::Sandbox) -> String {
    sb.sh("ssh -i /root/admin_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR admin@127.0.0.1 'ulimit -H -c'")
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn login_sessions_get_no_core_dumps_and_the_rollback_gives_them_back() {
    let Some(sb) = crate::sandbox!() else { return };
    keyed_admin(&sb);
    start_sshd(&sb);
    let before = session_core_limit(&sb);
    assert_ne!(before, "0", "a session may dump core before the apply");
    let machine = std::fs::read_to_string("/proc/sys/fs/suid_dumpable").expect("read");

    sb.write("/tmp/pb.yaml", "limits: { core_dumps: false }\n");
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    for file in FILES {
        assert!(sb.exists(file), "{file} missing: {apply}");
    }
    assert_eq!(session_core_limit(&sb), "0");
    let coredump = sb
        .sh("systemd-analyze cat-config systemd/coredump.conf")
        .assert_ok()
        .stdout;
    assert!(
        coredump.contains("# /etc/systemd/coredump.conf.d/60-harden.conf\n")
            && coredump.contains("Storage=none\nProcessSizeMax=0\n"),
        "{coredump}"
    );
    // procps accepts the sysctl file; the sandbox's /proc/sys/fs is read-only, so the plan
    // said the value applies at next boot instead of failing.
    let suid = sb.sh("sysctl -n fs.suid_dumpable").assert_ok().stdout;
    if suid.trim() != "0" {
        assert!(apply.output().contains("applied at next boot"), "{apply}");
    }

    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
    sb.harden(&["rollback"]).assert_ok();
    for file in FILES {
        assert!(!sb.exists(file), "{file} left behind");
    }
    assert_eq!(session_core_limit(&sb), before);
    let after = std::fs::read_to_string("/proc/sys/fs/suid_dumpable").expect("read");
    assert_eq!(after, machine, "this machine's value moved");
}

#[test]
fn a_later_limits_file_that_allows_dumps_is_reported() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write(
        "/etc/security/limits.d/90-debug.conf",
        "# a developer's account\nalice hard core unlimited\n",
    );
    sb.write("/tmp/pb.yaml", "limits: {}\n");
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.output().contains(
            "/etc/security/limits.d/90-debug.conf:2 sets the hard core limit of alice to unlimited"
        ),
        "{plan}"
    );
}

#[test]
fn bad_values_are_plan_time_errors_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_located_errors(
        &sb,
        &[
            (
                "limits:\n  core_dumps: never\n",
                "/tmp/bad.yaml:2:15",
                "invalid boolean",
            ),
            (
                "limits:\n  core: 0\n",
                "/tmp/bad.yaml:2:3",
                "unknown field `core`",
            ),
        ],
    );
}
