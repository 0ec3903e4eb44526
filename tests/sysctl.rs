//! End-to-end tests of the `sysctl` resource with the real `sysctl`: live values in the
//! sandbox's own network namespace, read-only keys, boot files that override, rollback,
//! located errors.
//!
//! The sandbox shares this machine's kernel. Only `net.*` keys are ever set live here: they
//! belong to the sandbox's own network namespace, and the sandbox's `/proc/sys` is read-only
//! everywhere else. Each test that applies also checks, from this process (the machine's own
//! namespace), that the machine's values did not move.

use crate::support::{assert_located_errors, Sandbox};

const MARTIANS: &str = "net.ipv4.conf.all.log_martians";
const REDIRECTS: &str = "net.ipv4.conf.default.send_redirects";

/// This machine's own value of `key`, read by the test process (never through the sandbox).
fn machine_value(key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_owned()
}

/// `sysctl -n KEY` inside the sandbox.
fn sysctl_n(sb: &Sandbox, key: &str) -> String {
    sb.sh(&format!("sysctl -n {key}"))
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

fn other(value: &str) -> &'static str {
    if value == "0" {
        "1"
    } else {
        "0"
    }
}

#[test]
fn network_keys_are_set_live_in_the_sandbox_s_namespace_kept_and_rolled_back() {
    let Some(sb) = crate::sandbox!() else { return };
    let machine = (machine_value(MARTIANS), machine_value(REDIRECTS));
    let before = (sysctl_n(&sb, MARTIANS), sysctl_n(&sb, REDIRECTS));
    let want = (other(&before.0), other(&before.1));
    sb.write(
        "/tmp/pb.yaml",
        &format!(
            "sysctl:\n  {MARTIANS}: {}\n  {REDIRECTS}: {}\n",
            want.0, want.1
        ),
    );

    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        vec!["/etc/sysctl.d/99-zz-harden.conf", "running kernel"]
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(
        (sysctl_n(&sb, MARTIANS), sysctl_n(&sb, REDIRECTS)),
        (want.0.to_owned(), want.1.to_owned())
    );
    let file = sb.read("/etc/sysctl.d/99-zz-harden.conf");
    assert!(
        file.contains(&format!("{MARTIANS} = {}\n", want.0)),
        "{file}"
    );
    // procps reads the file as boot would: `sysctl -p` accepts every line of it.
    sb.sh("sysctl -q -p /etc/sysctl.d/99-zz-harden.conf")
        .assert_ok();

    let again = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(again.stdout.contains("No changes."), "{again}");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert!(
        !sb.exists("/etc/sysctl.d/99-zz-harden.conf"),
        "file restored"
    );
    assert_eq!((sysctl_n(&sb, MARTIANS), sysctl_n(&sb, REDIRECTS)), before);
    assert_eq!(
        (machine_value(MARTIANS), machine_value(REDIRECTS)),
        machine,
        "this machine's own values moved"
    );
}

#[test]
fn a_read_only_key_is_written_for_the_next_boot_with_a_warning_and_no_command() {
    let Some(sb) = crate::sandbox!() else { return };
    let key = "kernel.kptr_restrict";
    let machine = machine_value(key);
    let want = other(&sysctl_n(&sb, key));
    sb.write("/tmp/pb.yaml", &format!("sysctl:\n  {key}: {want}\n"));
    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(targets, vec!["/etc/sysctl.d/99-zz-harden.conf"]);
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.message.contains("applied at next boot")),
        "{:?}",
        plan.warnings
    );
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(apply.output().contains("applied at next boot"), "{apply}");
    assert_eq!(
        sb.read("/etc/sysctl.d/99-zz-harden.conf").lines().last(),
        Some(format!("{key} = {want}").as_str())
    );
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
    assert_eq!(machine_value(key), machine, "this machine's value moved");
}

#[test]
fn the_plan_names_the_boot_line_that_wins_and_a_later_file_that_overrides() {
    let Some(sb) = crate::sandbox!() else { return };
    // Debian's procps ships 99-protect-links.conf with fs.protected_regular = 2; a site file
    // sorting after harden's sets log_martians back.
    let shipped = sb
        .sh("grep -n '^fs.protected_fifos' /usr/lib/sysctl.d/99-protect-links.conf | cut -d: -f1")
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    sb.write(
        "/etc/sysctl.d/99-zzz-site.conf",
        &format!("# site\n{MARTIANS} = 0\n"),
    );
    sb.write(
        "/tmp/pb.yaml",
        &format!("sysctl:\n  fs.protected_fifos: 2\n  {MARTIANS}: 1\n"),
    );
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let file = &plan["changes"][0];
    let fifos = file["details"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["name"] == "fs.protected_fifos (at boot)")
        .expect("fs.protected_fifos differs at boot");
    if !shipped.is_empty() {
        assert_eq!(
            fifos["source"],
            format!("/usr/lib/sysctl.d/99-protect-links.conf:{shipped}")
        );
    }
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["message"].as_str())
        .collect();
    assert!(
        warnings.iter().any(|w| w.starts_with(&format!(
            "/etc/sysctl.d/99-zzz-site.conf:2 sets {MARTIANS} = 0 after harden's /etc/sysctl.d/99-zz-harden.conf"
        ))),
        "{warnings:?}"
    );
}

#[test]
fn unknown_keys_are_errors_on_the_running_system_and_warnings_under_root() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write("/tmp/pb.yaml", "sysctl:\n  kernel.no_such_setting: 1\n");
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_status(1);
    assert!(run.stderr.contains("/tmp/pb.yaml:2:3"), "{run}");
    assert!(
        run.stderr.contains("no sysctl kernel.no_such_setting"),
        "{run}"
    );

    sb.sh("mkdir -p /tmp/img/etc && cp /etc/passwd /etc/group /tmp/img/etc/")
        .assert_ok();
    let run = sb
        .harden(&["plan", "--root", "/tmp/img", "/tmp/pb.yaml"])
        .assert_ok();
    assert!(
        run.output()
            .contains("this machine's kernel has no sysctl kernel.no_such_setting"),
        "{run}"
    );
    // Under --root nothing is set live: only the image's file is planned.
    assert!(!run.output().contains("running kernel"), "{run}");
}

#[test]
fn bad_keys_and_values_are_plan_time_errors_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_located_errors(
        &sb,
        &[
            (
                "sysctl:\n  kernel: 1\n",
                "/tmp/bad.yaml:2:3",
                "invalid sysctl key",
            ),
            (
                "sysctl:\n  net.ipv4.conf.*.rp_filter: 1\n",
                "/tmp/bad.yaml:2:3",
                "no globs",
            ),
            (
                "sysctl:\n  kernel.sysrq: [0]\n",
                "/tmp/bad.yaml:2:3",
                "a sysctl value",
            ),
            (
                "sysctl:\n  kernel.sysrq: \" \"\n",
                "/tmp/bad.yaml:2:17",
                "not blank",
            ),
        ],
    );
}
