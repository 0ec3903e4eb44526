//! Unit tests of the pure parts: parsing, the default origins, the files, the diff.

use harden_host::UserDb;

use super::*;
use crate::resources::Playbook;

const EXAMPLE: &str = "unattended_upgrades:
  enabled: true
  automatic_reboot: false
  automatic_reboot_time: \"02:00\"
  remove_unused_dependencies: true
";

fn section(text: &str) -> UnattendedUpgrades {
    crate::testing::parse(text)
        .expect("valid")
        .unattended_upgrades
        .expect("section")
}

fn first_line(err: String) -> String {
    err.lines().next().unwrap_or_default().to_owned()
}

fn bookworm() -> OsRelease {
    aptconf::parse_os_release("ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n")
}

/// A stock Debian 12 with unattended-upgrades installed, timers enabled.
fn debian12() -> Live {
    let fifty = "Unattended-Upgrade::Origins-Pattern {\n        \"origin=Debian,codename=${distro_codename},label=Debian\";\n        \"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";\n};\n";
    Live {
        installed: true,
        os: bookworm(),
        auto_upgrades: Some("APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n".into()),
        drop_in: None,
        dump: aptconf::parse_dump(
            "APT::Periodic \"\";\nAPT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n\
             Unattended-Upgrade \"\";\nUnattended-Upgrade::Origins-Pattern \"\";\n\
             Unattended-Upgrade::Origins-Pattern:: \"origin=Debian,codename=${distro_codename},label=Debian\";\n\
             Unattended-Upgrade::Origins-Pattern:: \"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";\n",
        ),
        files: vec![
            (AUTO_UPGRADES.into(), "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n".into()),
            ("/etc/apt/apt.conf.d/50unattended-upgrades".into(), fifty.into()),
        ],
        timers: TIMERS.iter().map(|u| Timer { unit: (*u).into(), installed: true, enabled: true, active: None }).collect(),
        systemctl: true,
        systemd: false,
        mailer: false,
    }
}

fn run(section: &UnattendedUpgrades, live: &Live) -> Result<Diff, Failure> {
    let users = UserDb::parse(false, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
    let overrides = crate::testing::no_overrides();
    let (facts, live_facts) = crate::testing::facts(&Playbook::default(), &users);
    let cx = DiffContext {
        users: &users,
        facts: &facts,
        live: &live_facts,
        overrides: &overrides,
    };
    section.diff(live, &cx)
}

fn written(diff: &Diff, path: &str) -> Option<String> {
    diff.changes
        .iter()
        .flat_map(|c| &c.steps)
        .find_map(|s| match s {
            Step::WriteFile {
                path: p, content, ..
            } if p == Path::new(path) => Some(content.clone()),
            _ => None,
        })
}

/// `live` after the writes, with the dump APT would then show.
fn applied(diff: &Diff, live: &Live, dump: &str) -> Live {
    let mut after = live.clone();
    if let Some(text) = written(diff, AUTO_UPGRADES) {
        after.auto_upgrades = Some(text);
    }
    if let Some(text) = written(diff, DROP_IN) {
        after.drop_in = Some(text.clone());
        after.files.push((DROP_IN.into(), text));
    }
    after.dump = aptconf::parse_dump(dump);
    after
}

#[test]
fn the_design_example_parses() {
    let u = section(EXAMPLE);
    assert_eq!(
        u.automatic_reboot_time.map(|t| t.value),
        Some(RebootTime("02:00".into()))
    );
}

#[test]
fn bad_values_are_located() {
    let msg = first_line(
        crate::testing::parse("unattended_upgrades:\n  automatic_reboot_time: \"25:00\"\n")
            .expect_err("invalid"),
    );
    assert!(
        msg.starts_with("pb.yaml:2:") && msg.contains("HH:MM"),
        "{msg}"
    );
    let msg = first_line(
        crate::testing::parse("unattended_upgrades:\n  origins: [\"Debian\"]\n")
            .expect_err("invalid"),
    );
    assert!(
        msg.starts_with("pb.yaml:2:") && msg.contains("invalid origin"),
        "{msg}"
    );
    let msg = first_line(
        crate::testing::parse("unattended_upgrades:\n  origins: [\"origin=Debian,suit=x\"]\n")
            .expect_err("invalid"),
    );
    assert!(msg.contains("unknown key \"suit\""), "{msg}");
    let msg = first_line(
        crate::testing::parse("unattended_upgrades:\n  bandwidth_limit: -5\n")
            .expect_err("invalid"),
    );
    assert!(msg.starts_with("pb.yaml:2:"), "{msg}");
    let msg = first_line(
        crate::testing::parse("unattended_upgrades:\n  mail: \"root; rm\"\n").expect_err("invalid"),
    );
    assert!(msg.starts_with("pb.yaml:2:"), "{msg}");
    let msg = first_line(
        crate::testing::parse("unattended_upgrades:\n  reboot: true\n").expect_err("invalid"),
    );
    assert!(
        msg.starts_with("pb.yaml:2:3: unknown field `reboot`"),
        "{msg}"
    );
}

#[test]
fn default_origins_follow_the_distribution() {
    let (origins, _) = security_origins(&bookworm()).expect("debian");
    assert_eq!(
        origins,
        vec![Origin::Pattern(
            "origin=Debian,codename=${distro_codename}-security,label=Debian-Security".into()
        )]
    );
    let buster =
        aptconf::parse_os_release("ID=debian\nVERSION_ID=\"10\"\nVERSION_CODENAME=buster\n");
    let (origins, _) = security_origins(&buster).expect("debian 10");
    assert_eq!(
        origins[0].text(),
        "origin=Debian,codename=${distro_codename},label=Debian-Security"
    );
    let noble =
        aptconf::parse_os_release("ID=ubuntu\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\n");
    let (origins, _) = security_origins(&noble).expect("ubuntu");
    assert_eq!(
        origins[0],
        Origin::Allowed("${distro_id}:${distro_codename}-security".into())
    );
    assert!(security_origins(&aptconf::parse_os_release("ID=arch\n")).is_err());
}

#[test]
fn the_drop_in_clears_the_lists_then_sets_them() {
    let diff = run(&section(EXAMPLE), &debian12()).expect("diff");
    let text = written(&diff, DROP_IN).expect("drop-in");
    let clear = text
        .find("#clear Unattended-Upgrade::Origins-Pattern;")
        .expect("clear");
    let set = text.find("Unattended-Upgrade::Origins-Pattern {\n\t\"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";\n};").expect("set");
    assert!(clear < set, "{text}");
    assert!(text.contains("#clear Unattended-Upgrade::Allowed-Origins;"));
    assert!(text.contains("Unattended-Upgrade::Automatic-Reboot \"false\";\n"));
    assert!(text.contains("Unattended-Upgrade::Automatic-Reboot-Time \"02:00\";\n"));
    assert!(text.contains("Unattended-Upgrade::Remove-Unused-Dependencies \"true\";\n"));
    assert!(!text.contains("Dl-Limit"));
    // 20auto-upgrades is already as dpkg-reconfigure writes it: no change.
    assert!(diff.changes.iter().all(|c| c.target != AUTO_UPGRADES));
    let drop = diff
        .changes
        .iter()
        .find(|c| c.target == DROP_IN)
        .expect("drop-in change");
    let origins = drop
        .details
        .iter()
        .find(|d| d.name == "Unattended-Upgrade::Origins-Pattern")
        .expect("origins detail");
    assert_eq!(
        origins.source.as_deref(),
        Some("/etc/apt/apt.conf.d/50unattended-upgrades:1")
    );
}

#[test]
fn the_check_compares_what_apt_dumps() {
    let diff = run(&section(EXAMPLE), &debian12()).expect("diff");
    let check = diff
        .changes
        .iter()
        .find(|c| c.target == "apt-config")
        .expect("check");
    let Step::Validate(cmd) = &check.steps[0] else {
        panic!("validate expected")
    };
    let args = &cmd.argv[4..];
    let pair = args
        .chunks(2)
        .find(|p| p[0] == "Unattended-Upgrade::Origins-Pattern")
        .expect("origins");
    assert_eq!(
        pair[1],
        "\"\";\n\"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";"
    );
    let pair = args
        .chunks(2)
        .find(|p| p[0] == "APT::Periodic::Unattended-Upgrade")
        .expect("periodic");
    assert_eq!(pair[1], "\"1\";");
    let pair = args
        .chunks(2)
        .find(|p| p[0] == "Unattended-Upgrade::Allowed-Origins")
        .expect("allowed");
    assert_eq!(pair[1], "");
}

#[test]
fn second_run_is_empty() {
    let u = section(EXAMPLE);
    let live = debian12();
    let diff = run(&u, &live).expect("diff");
    let after = applied(
        &diff,
        &live,
        "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n\
         Unattended-Upgrade::Origins-Pattern \"\";\n\
         Unattended-Upgrade::Origins-Pattern:: \"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";\n\
         Unattended-Upgrade::Automatic-Reboot \"false\";\nUnattended-Upgrade::Automatic-Reboot-Time \"02:00\";\n\
         Unattended-Upgrade::Remove-Unused-Dependencies \"true\";\n",
    );
    let again = run(&u, &after).expect("diff");
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(again.unchanged, 3);

    // A later file overriding a value: a warning, not a change that cannot converge.
    let mut overridden = after.clone();
    overridden.files.push((
        "/etc/apt/apt.conf.d/99local".into(),
        "Unattended-Upgrade::Automatic-Reboot \"true\";\n".into(),
    ));
    overridden.dump = aptconf::parse_dump(
        "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n\
         Unattended-Upgrade::Origins-Pattern:: \"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";\n\
         Unattended-Upgrade::Automatic-Reboot \"true\";\nUnattended-Upgrade::Automatic-Reboot-Time \"02:00\";\n\
         Unattended-Upgrade::Remove-Unused-Dependencies \"yes\";\n",
    );
    let again = run(&u, &overridden).expect("diff");
    assert!(again.changes.is_empty());
    assert_eq!(again.warnings.len(), 1, "{:?}", again.warnings);
    assert!(
        again.warnings[0].message.contains("99local:1"),
        "{}",
        again.warnings[0].message
    );
}

#[test]
fn disabled_turns_the_periodic_jobs_off() {
    let diff = run(
        &section("unattended_upgrades:\n  enabled: false\n"),
        &debian12(),
    )
    .expect("diff");
    let text = written(&diff, AUTO_UPGRADES).expect("auto");
    assert!(text.contains("APT::Periodic::Unattended-Upgrade \"0\";"));
    let auto = diff
        .changes
        .iter()
        .find(|c| c.target == AUTO_UPGRADES)
        .expect("auto");
    assert_eq!(auto.details.len(), 2);
}

#[test]
fn origins_given_replace_the_default_and_split_by_kind() {
    let u = section("unattended_upgrades:\n  origins:\n    - \"origin=Debian,codename=${distro_codename},label=Debian\"\n    - \"${distro_id}:${distro_codename}-updates\"\n");
    let text = written(&run(&u, &debian12()).expect("diff"), DROP_IN).expect("drop-in");
    assert!(text.contains("Unattended-Upgrade::Origins-Pattern {\n\t\"origin=Debian,codename=${distro_codename},label=Debian\";\n};"), "{text}");
    assert!(text.contains("Unattended-Upgrade::Allowed-Origins {\n\t\"${distro_id}:${distro_codename}-updates\";\n};"), "{text}");
}

#[test]
fn timers_are_unit_steps_enabled_offline_or_started_under_systemd() {
    let u = section(EXAMPLE);
    let mut live = debian12();
    live.timers[0].enabled = false;
    let diff = run(&u, &live).expect("diff");
    let change = diff
        .changes
        .iter()
        .find(|c| c.target.contains("apt-daily.timer"))
        .expect("timers");
    let summaries = |change: &harden_plan::Change| -> Vec<String> {
        change
            .steps
            .iter()
            .map(|s| match s {
                Step::Unit(u) => u.summary(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    // No systemd: enablement only, offline, and no file of systemd's is claimed.
    assert_eq!(
        summaries(change),
        vec!["apt-daily.timer: disabled, unknown -> enabled, unknown"]
    );
    assert!(change.steps.iter().all(|s| s.touched_paths().is_empty()));
    live.systemd = true;
    live.timers[0].active = Some(false);
    live.timers[1].active = Some(false);
    let diff = run(&u, &live).expect("diff");
    let change = diff
        .changes
        .iter()
        .find(|c| c.target.contains("apt-daily.timer"))
        .expect("timers");
    assert_eq!(
        summaries(change),
        vec![
            "apt-daily.timer: disabled, inactive -> enabled, active",
            "apt-daily-upgrade.timer: enabled, inactive -> enabled, active"
        ]
    );
}

#[test]
fn not_installed_installs_first() {
    let mut live = debian12();
    live.installed = false;
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert_eq!(diff.changes[0].target, "package unattended-upgrades");
    let Step::Run(cmd) = &diff.changes[0].steps[0] else {
        panic!("run expected")
    };
    assert!(
        cmd.display()
            .contains("apt-get install -y -o DPkg::Lock::Timeout=300"),
        "{}",
        cmd.display()
    );
    assert!(
        cmd.display()
            .ends_with("--force-confold unattended-upgrades"),
        "{}",
        cmd.display()
    );
}
