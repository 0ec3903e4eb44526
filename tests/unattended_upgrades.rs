//! End-to-end tests of the `unattended_upgrades` resource: what APT reads after apply, what
//! unattended-upgrade makes of it, the timers, idempotence, overrides, located errors.

use crate::support::{assert_located_errors, Sandbox};

const PLAYBOOK: &str = "unattended_upgrades:
  enabled: true
  automatic_reboot: true
  automatic_reboot_time: \"03:30\"
  remove_unused_dependencies: true
  remove_unused_kernel_packages: false
  mail: root
  mail_report: only-on-error
  bandwidth_limit: 512
";

fn codename(sb: &Sandbox) -> String {
    sb.sh(". /etc/os-release && echo \"$VERSION_CODENAME\"")
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn apt_reads_the_playbook_and_unattended_upgrade_runs_with_the_security_origin() {
    let Some(sb) = crate::sandbox!() else { return };
    let codename = codename(&sb);
    // A system where the periodic jobs are off and the timers disabled.
    sb.write(
        "/etc/apt/apt.conf.d/20auto-upgrades",
        "APT::Periodic::Update-Package-Lists \"0\";\nAPT::Periodic::Unattended-Upgrade \"0\";\n",
    );
    sb.sh("rm -f /etc/systemd/system/timers.target.wants/apt-daily.timer /etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer").assert_ok();
    sb.write("/tmp/pb.yaml", PLAYBOOK);

    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    for expected in [
        "/etc/apt/apt.conf.d/20auto-upgrades",
        "/etc/apt/apt.conf.d/52harden-unattended-upgrades",
        "apt-config",
        "apt-daily.timer, apt-daily-upgrade.timer",
    ] {
        assert!(targets.contains(&expected), "{targets:?} lacks {expected}");
    }

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();

    let dump = sb.sh("apt-config dump").assert_ok().stdout;
    for line in [
        "APT::Periodic::Update-Package-Lists \"1\";",
        "APT::Periodic::Unattended-Upgrade \"1\";",
        "Unattended-Upgrade::Automatic-Reboot \"true\";",
        "Unattended-Upgrade::Automatic-Reboot-Time \"03:30\";",
        "Unattended-Upgrade::Remove-Unused-Dependencies \"true\";",
        "Unattended-Upgrade::Remove-Unused-Kernel-Packages \"false\";",
        "Unattended-Upgrade::Mail \"root\";",
        "Unattended-Upgrade::MailReport \"only-on-error\";",
        "Acquire::http::Dl-Limit \"512\";",
    ] {
        assert!(
            dump.lines().any(|l| l == line),
            "apt-config dump lacks {line:?}:\n{dump}"
        );
    }
    // The origin list is exactly the security origin: the #clear dropped the package's.
    let origins: Vec<&str> = dump
        .lines()
        .filter(|l| l.starts_with("Unattended-Upgrade::Origins-Pattern:: "))
        .collect();
    assert_eq!(
        origins,
        vec!["Unattended-Upgrade::Origins-Pattern:: \"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";"]
    );

    // unattended-upgrade itself accepts the configuration and allows this release's
    // security suite. There is no network in the sandbox; only parsing and origins count.
    let run = sb.sh("timeout 240 unattended-upgrade --dry-run -d 2>&1; echo \"exit=$?\"");
    let out = run.stdout;
    let allowed = out
        .lines()
        .find(|l| l.starts_with("Allowed origins are:"))
        .unwrap_or_else(|| panic!("no origins line:\n{out}"));
    assert_eq!(
        allowed,
        format!(
            "Allowed origins are: origin=Debian,codename={codename}-security,label=Debian-Security"
        )
    );
    assert!(!out.contains("Traceback"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "configuration errors:\n{out}"
    );

    // The package's files are untouched; the timers are enabled.
    let verify = sb.sh("dpkg --verify unattended-upgrades").assert_ok();
    assert_eq!(verify.stdout.trim(), "", "{verify}");
    sb.sh("test -L /etc/systemd/system/timers.target.wants/apt-daily.timer && test -L /etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer")
        .assert_ok();

    let again = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(again.stdout.contains("No changes."), "{again}");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
}

#[test]
fn a_later_file_that_overrides_a_value_fails_the_check_and_rolls_back() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write(
        "/etc/apt/apt.conf.d/99local",
        "Unattended-Upgrade::Automatic-Reboot \"false\";\n",
    );
    sb.write(
        "/tmp/pb.yaml",
        "unattended_upgrades:\n  automatic_reboot: true\n",
    );
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(plan.output().contains("/etc/apt/apt.conf.d/99local:1 sets Unattended-Upgrade::Automatic-Reboot after harden's"), "{plan}");

    let run = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_status(1);
    assert!(
        run.output()
            .contains("APT reads Unattended-Upgrade::Automatic-Reboot as [\"false\";]"),
        "{run}"
    );
    assert!(
        !sb.exists("/etc/apt/apt.conf.d/52harden-unattended-upgrades"),
        "rolled back"
    );
}

#[test]
fn the_debian_default_needs_only_the_drop_in() {
    let Some(sb) = crate::sandbox!() else { return };
    // Debian's own 20auto-upgrades (as dpkg-reconfigure writes it) is already right.
    sb.write(
        "/etc/apt/apt.conf.d/20auto-upgrades",
        "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n",
    );
    sb.write("/tmp/pb.yaml", "unattended_upgrades: {}\n");
    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            "/etc/apt/apt.conf.d/52harden-unattended-upgrades",
            "apt-config"
        ]
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(sb
        .harden(&["apply", "/tmp/pb.yaml"])
        .assert_ok()
        .stdout
        .contains("No changes."));
}

#[test]
fn a_missing_unattended_upgrades_is_installed_by_a_visible_step() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("rm /usr/bin/unattended-upgrade").assert_ok();
    sb.write("/tmp/pb.yaml", "unattended_upgrades: {}\n");
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let first = &plan["changes"][0];
    assert_eq!(first["target"], "package unattended-upgrades");
    let argv: Vec<&str> = first["steps"][0]["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    for needed in [
        "apt-get",
        "install",
        "-y",
        "DPkg::Lock::Timeout=300",
        "Dpkg::Options::=--force-confold",
        "unattended-upgrades",
    ] {
        assert!(argv.contains(&needed), "{argv:?} lacks {needed}");
    }
}

#[test]
fn bad_values_are_plan_time_errors_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_located_errors(
        &sb,
        &[
            (
                "unattended_upgrades:\n  automatic_reboot_time: \"2am\"\n",
                "/tmp/bad.yaml:2:26",
                "HH:MM",
            ),
            (
                "unattended_upgrades:\n  origins: [Debian]\n",
                "/tmp/bad.yaml:2:13",
                "invalid origin",
            ),
            (
                "unattended_upgrades:\n  bandwidth_limit: fast\n",
                "/tmp/bad.yaml:2:20",
                "bandwidth limit",
            ),
            (
                "unattended_upgrades:\n  auto_reboot: true\n",
                "/tmp/bad.yaml:2:3",
                "unknown field `auto_reboot`",
            ),
        ],
    );
}
