//! End-to-end tests of the `kernel_modules` resource with the real modprobe: what
//! `modprobe -n -v` (a dry run: nothing is ever loaded or unloaded here) answers after apply,
//! idempotence, an earlier install line that wins, rollback, located errors.

use crate::support::{assert_located_errors, Sandbox};

const FILE: &str = "/etc/modprobe.d/00-harden.conf";

/// The first line of `modprobe -n -v MODULE`, which only reports what modprobe would do.
fn dry_run(sb: &Sandbox, module: &str) -> String {
    sb.sh(&format!("modprobe -n -v {module} 2>&1 | head -n 1"))
        .stdout
        .trim()
        .to_owned()
}

fn modprobe_installed(sb: &Sandbox) -> bool {
    let found = sb.sh("command -v modprobe").success();
    if !found {
        eprintln!("skipped: modprobe is not installed (tests/setup-debian.sh installs kmod)");
    }
    found
}

#[test]
fn blocked_modules_are_refused_by_modprobe_kept_and_rolled_back() {
    let Some(sb) = crate::sandbox!() else { return };
    if !modprobe_installed(&sb) {
        return;
    }
    assert_ne!(dry_run(&sb, "dccp"), "install /bin/false");
    sb.write(
        "/tmp/pb.yaml",
        "kernel_modules:\n  dccp: blocked\n  usb-storage: blocked\n  sctp: allowed\n",
    );
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(plan.stdout.contains("dccp: loadable -> blocked"), "{plan}");

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(dry_run(&sb, "dccp"), "install /bin/false");
    assert_eq!(dry_run(&sb, "usb_storage"), "install /bin/false");
    assert_ne!(dry_run(&sb, "sctp"), "install /bin/false");
    let config = sb.sh("modprobe --showconfig").assert_ok().stdout;
    for line in ["blacklist dccp", "blacklist usb_storage"] {
        assert!(config.lines().any(|l| l == line), "showconfig lacks {line}");
    }
    // The file keeps the playbook's spelling (what Lynis greps for).
    assert!(sb
        .read(FILE)
        .contains("install usb-storage /bin/false\nblacklist usb-storage\n"));

    let again = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(again.stdout.contains("No changes."), "{again}");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert!(!sb.exists(FILE), "file removed by the rollback");
    assert_ne!(dry_run(&sb, "dccp"), "install /bin/false");
}

#[test]
fn an_earlier_install_line_fails_modprobe_s_check_and_the_apply_rolls_back() {
    let Some(sb) = crate::sandbox!() else { return };
    if !modprobe_installed(&sb) {
        return;
    }
    sb.write(
        "/etc/modprobe.d/0-site.conf",
        "install dccp /sbin/modprobe --ignore-install dccp\n",
    );
    sb.write("/tmp/pb.yaml", "kernel_modules:\n  dccp: blocked\n");
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.output()
            .contains("modprobe runs `/sbin/modprobe --ignore-install dccp` for dccp"),
        "{plan}"
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_status(1);
    assert!(
        run.output().contains(
            "modprobe -n -v dccp: install /sbin/modprobe --ignore-install dccp (not blocked)"
        ),
        "{run}"
    );
    assert!(!sb.exists(FILE), "rolled back");
}

#[test]
fn bad_names_and_policies_are_plan_time_errors_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_located_errors(
        &sb,
        &[
            (
                "kernel_modules:\n  \"usb storage\": blocked\n",
                "/tmp/bad.yaml:2:3",
                "invalid module name",
            ),
            (
                "kernel_modules:\n  dccp: disabled\n",
                "/tmp/bad.yaml:2:9",
                "unknown variant `disabled`",
            ),
            (
                "kernel_modules: [dccp]\n",
                "/tmp/bad.yaml:1:",
                "expected a mapping",
            ),
        ],
    );
}
