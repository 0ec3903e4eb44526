//! Unit tests of the pure parts: parsing with located errors, the desired files, the diff.

use harden_host::UserDb;

use super::*;
use crate::diagnostic::Source;
use crate::playbook::load;
use crate::resources::Playbook;

const EXAMPLE: &str = "fail2ban:
  defaults: { bantime: 1h, findtime: 10m, maxretry: 5 }
  jails:
    sshd: { enabled: true }
    streaming-app: { port: 8000, filter: streaming-app, logpath: /var/log/streaming-app.log }
  filters:
    streaming-app: { failregex: ['Failed login from <HOST>'] }
";

fn section(text: &str) -> Fail2ban {
    crate::testing::parse(text)
        .expect("valid")
        .fail2ban
        .expect("fail2ban section")
}

fn first_line(err: String) -> String {
    err.lines().next().unwrap_or_default().to_owned()
}

/// A Debian 12 system: fail2ban installed and running, no auth.log, sshd on 2222.
fn debian12() -> Live {
    Live {
        installed: true,
        running: true,
        live: true,
        systemd: false,
        config: ini::Config {
            files: vec![
                ini::parse(
                    "/etc/fail2ban/jail.conf",
                    "[DEFAULT]\nbantime = 10m\nfindtime = 10m\nmaxretry = 5\nbackend = auto\nbanaction = iptables-multiport\n[sshd]\nport = ssh\nlogpath = %(sshd_log)s\nbackend = %(sshd_backend)s\n",
                ),
                ini::parse("/etc/fail2ban/jail.d/defaults-debian.conf", "[sshd]\nenabled = true\n"),
                ini::parse(JAIL_FILE, ""),
            ],
        },
        filter_names: ["sshd", "common", "recidive"].iter().map(|s| (*s).to_owned()).collect(),
        sshd_ports: vec![2222],
        nft: true,
        iptables: true,
        python_systemd: true,
        ..Live::default()
    }
}

fn run(section: &Fail2ban, live: &Live) -> Result<Diff, Failure> {
    run_with(section, live, &Playbook::default())
}

fn run_with(section: &Fail2ban, live: &Live, playbook: &Playbook) -> Result<Diff, Failure> {
    let users = UserDb::parse(false, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
    let overrides = crate::testing::no_overrides();
    let (facts, live_facts) = crate::testing::facts(playbook, &users);
    let cx = DiffContext {
        users: &users,
        facts: &facts,
        live: &live_facts,
        overrides: &overrides,
    };
    section.diff(live, &cx)
}

/// `live` after the diff's file writes ran.
fn applied(diff: &Diff, live: &Live) -> Live {
    let mut after = live.clone();
    for change in &diff.changes {
        for step in &change.steps {
            if let Step::WriteFile { path, content, .. } = step {
                let path = path.to_string_lossy().into_owned();
                if path == JAIL_FILE {
                    after.jail_file = Some(content.clone());
                } else if let Some(name) = path
                    .strip_prefix("/etc/fail2ban/filter.d/")
                    .and_then(|n| n.strip_suffix(".local"))
                {
                    after
                        .filter_files
                        .insert(name.to_owned(), Some(content.clone()));
                    after.filter_names.insert(name.to_owned());
                }
            }
        }
    }
    after
}

fn jail_file(diff: &Diff) -> String {
    diff.changes
        .iter()
        .flat_map(|c| &c.steps)
        .find_map(|s| match s {
            Step::WriteFile { path, content, .. } if path == Path::new(JAIL_FILE) => {
                Some(content.clone())
            }
            _ => None,
        })
        .expect("jail file written")
}

#[test]
fn the_design_example_parses() {
    let f = section(EXAMPLE);
    assert_eq!(
        f.defaults.maxretry.as_ref().map(|m| m.value),
        Some(Count(5))
    );
    assert_eq!(
        f.defaults.bantime.as_ref().map(|b| b.value.seconds()),
        Some(3600)
    );
    assert_eq!(f.jails.len(), 2);
    let app = &f.jails["streaming-app"];
    assert_eq!(
        app.port.as_ref().map(|p| p.value.clone()),
        Some(Ports(vec![Port::Number(8000)]))
    );
    let sshd = f.jails.keys().find(|k| k.value == "sshd").expect("sshd");
    assert_eq!(
        (sshd.at.line, sshd.at.column),
        (4, 5),
        "jail names keep their place"
    );
}

#[test]
fn bad_values_are_located_errors() {
    let msg = first_line(
        crate::testing::parse("fail2ban:\n  defaults:\n    maxretry: -1\n").expect_err("invalid"),
    );
    assert!(msg.starts_with("pb.yaml:3:"), "{msg}");
    assert!(msg.contains("at least 1"), "{msg}");

    let msg = first_line(
        crate::testing::parse("fail2ban:\n  jails:\n    sshd: { bantime: soon }\n")
            .expect_err("invalid"),
    );
    assert!(msg.starts_with("pb.yaml:3:"), "{msg}");
    assert!(msg.contains("invalid duration \"soon\""), "{msg}");

    let msg = first_line(
        crate::testing::parse(
            "fail2ban:\n  jails:\n    sshd:\n      enabled: true\n      maxretries: 3\n",
        )
        .expect_err("invalid"),
    );
    assert!(
        msg.starts_with("pb.yaml:5:7: unknown field `maxretries`"),
        "{msg}"
    );

    let msg = first_line(
        crate::testing::parse("fail2ban:\n  jails:\n    sshd: { port: 70000 }\n")
            .expect_err("invalid"),
    );
    assert!(msg.starts_with("pb.yaml:3:"), "{msg}");

    let msg = first_line(
        crate::testing::parse("fail2ban:\n  jails:\n    sshd: { backend: journald }\n")
            .expect_err("invalid"),
    );
    assert!(
        msg.contains("expected one of auto, pyinotify, polling, systemd"),
        "{msg}"
    );

    let msg = first_line(
        crate::testing::parse("fail2ban:\n  jails:\n    \"bad name\": {}\n").expect_err("invalid"),
    );
    assert!(msg.starts_with("pb.yaml:3:"), "{msg}");

    let msg = first_line(
        crate::testing::parse(
            "fail2ban:\n  jails:\n    sshd: { ignoreip: [127.0.0.1/8, 10.0.0.0/40] }\n",
        )
        .expect_err("invalid"),
    );
    assert!(msg.contains("prefix length"), "{msg}");
}

#[test]
fn validation_catches_what_types_cannot() {
    let msg = first_line(
        crate::testing::parse("fail2ban:\n  defaults: { enabled: true }\n").expect_err("invalid"),
    );
    assert!(
        msg.starts_with("pb.yaml:2:") && msg.contains("belongs to a jail"),
        "{msg}"
    );

    let msg = first_line(
        crate::testing::parse("fail2ban:\n  filters:\n    app: { failregex: 'Failed login' }\n")
            .expect_err("invalid"),
    );
    assert!(msg.contains("does not say where the address is"), "{msg}");

    let msg = first_line(
        crate::testing::parse(
            "fail2ban:\n  jails:\n    app: { backend: systemd, logpath: /var/log/app.log }\n",
        )
        .expect_err("invalid"),
    );
    assert!(msg.contains("ignores `logpath`"), "{msg}");
}

#[test]
fn later_playbooks_merge_option_by_option() {
    let a = Source {
        name: "a.yaml".into(),
        text: EXAMPLE.into(),
    };
    let b = Source {
        name: "b.yaml".into(),
        text: "fail2ban:\n  defaults: { maxretry: 3 }\n  jails:\n    sshd: { bantime: 2h }\n"
            .into(),
    };
    let f = load(vec![a, b])
        .expect("valid")
        .playbook
        .fail2ban
        .expect("section");
    assert_eq!(
        f.defaults.maxretry.as_ref().map(|m| m.value),
        Some(Count(3))
    );
    assert_eq!(
        f.defaults.findtime.as_ref().map(|d| d.value.seconds()),
        Some(600)
    );
    let sshd = &f.jails["sshd"];
    assert_eq!(sshd.enabled.as_ref().map(|e| e.value), Some(true));
    assert_eq!(sshd.bantime.as_ref().map(|b| b.value.seconds()), Some(7200));
}

#[test]
fn sshd_gets_the_journal_backend_and_sshd_port_and_every_default() {
    let diff = run(&section(EXAMPLE), &debian12()).expect("diff");
    let text = jail_file(&diff);
    let sshd = text
        .split("[sshd]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("sshd section");
    assert!(sshd.contains("\nport = 2222\n"), "{text}");
    assert!(sshd.contains("\nbackend = systemd\n"), "{text}");
    assert!(
        sshd.contains("\nbantime = 1h\n") && sshd.contains("\nmaxretry = 5\n"),
        "{text}"
    );
    assert!(
        !sshd.contains("banaction"),
        "banaction stays in [DEFAULT]: {text}"
    );
    let default = text
        .split("[DEFAULT]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("default");
    assert!(
        default.contains("\nbanaction = nftables-multiport\n"),
        "{text}"
    );
    let jail_change = diff
        .changes
        .iter()
        .find(|c| c.target == JAIL_FILE)
        .expect("jail change");
    assert!(
        jail_change
            .reason
            .contains("/var/log/auth.log does not exist"),
        "{}",
        jail_change.reason
    );
    let port = jail_change
        .details
        .iter()
        .find(|d| d.name == "[sshd] port")
        .expect("port detail");
    assert_eq!(port.current.as_deref(), Some("ssh"));
    assert_eq!(port.source.as_deref(), Some("/etc/fail2ban/jail.conf:8"));
    assert_eq!(port.desired.as_deref(), Some("2222"));
}

#[test]
fn with_auth_log_the_distribution_backend_stays() {
    let mut live = debian12();
    live.auth_log = true;
    let text = jail_file(&run(&section(EXAMPLE), &live).expect("diff"));
    assert!(!text.contains("backend"), "{text}");
}

#[test]
fn iptables_is_the_ban_action_without_nft() {
    let mut live = debian12();
    live.nft = false;
    let text = jail_file(&run(&section(EXAMPLE), &live).expect("diff"));
    assert!(text.contains("banaction = iptables-multiport\n"), "{text}");
}

#[test]
fn writes_then_checks_then_reloads_and_converges() {
    let f = section(EXAMPLE);
    let live = debian12();
    let diff = run(&f, &live).expect("diff");
    let targets: Vec<&str> = diff.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            JAIL_FILE,
            "/etc/fail2ban/filter.d/streaming-app.local",
            "fail2ban"
        ]
    );
    let last = &diff.changes[2];
    assert_eq!(
        last.steps,
        vec![
            Step::Validate(Command::new(["fail2ban-client", "-t"]).timeout(60)),
            Step::Validate(
                Command::new([
                    "fail2ban-regex",
                    "/dev/null",
                    "/etc/fail2ban/filter.d/streaming-app.local"
                ])
                .timeout(60)
            ),
            Step::Reload {
                service: "fail2ban".into(),
                command: Command::new(["fail2ban-client", "reload"]).timeout(120)
            },
        ]
    );
    assert_eq!(
        last.on_rollback,
        vec![Command::new(["fail2ban-client", "reload"]).timeout(120)]
    );
    let filter = diff.changes[1].steps.iter().find_map(|s| match s {
        Step::WriteFile { content, .. } => Some(content.clone()),
        _ => None,
    });
    assert!(
        filter.is_some_and(|f| f.contains("[Definition]\nfailregex = Failed login from <HOST>\n"))
    );

    let again = run(&f, &applied(&diff, &live)).expect("diff");
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.unchanged, 2);
}

#[test]
fn not_installed_installs_first_and_reloads_nothing() {
    let live = Live {
        installed: false,
        running: false,
        live: true,
        sshd_ports: vec![22],
        nft: true,
        python_systemd: true,
        ..Live::default()
    };
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert_eq!(diff.changes[0].target, "package fail2ban");
    match &diff.changes[0].steps[0] {
        Step::Run(cmd) => {
            let line = cmd.display();
            assert!(
                line.contains("apt-get install -y -o DPkg::Lock::Timeout=300"),
                "{line}"
            );
            assert!(
                line.contains("--force-confold") && line.ends_with(" fail2ban"),
                "{line}"
            );
        }
        other => panic!("expected a Run step, got {other:?}"),
    }
    assert!(!diff
        .changes
        .iter()
        .flat_map(|c| &c.steps)
        .any(|s| matches!(s, Step::Reload { .. })));
    assert!(diff
        .changes
        .iter()
        .flat_map(|c| &c.steps)
        .any(|s| matches!(s, Step::Validate(_))));
}

#[test]
fn under_systemd_a_stopped_server_is_started() {
    let mut live = debian12();
    live.running = false;
    live.systemd = true;
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    let steps: Vec<String> = diff
        .changes
        .last()
        .expect("change")
        .steps
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    assert!(steps.iter().any(|s| s.contains("Restart")), "{steps:?}");
    // Enabled but failed at boot (Debian 12's stock sshd jail): only the restart, through a
    // unit step whose state the snapshot saves; no enablement symlink is a touched file.
    live.unit = Some(harden_plan::UnitState {
        enablement: "enabled".into(),
        active: "failed".into(),
    });
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    let change = diff.changes.last().expect("change");
    let units: Vec<String> = change
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Unit(u) => Some(u.summary()),
            _ => None,
        })
        .collect();
    assert_eq!(
        units,
        vec!["fail2ban.service: enabled, failed -> enabled, active"]
    );
    // The start is done when the server answers, not when systemd says it started.
    let Some(Step::Validate(wait)) = change.steps.last() else {
        panic!("no wait after the start: {:?}", change.steps)
    };
    assert!(wait.display().contains("fail2ban-client ping"), "{wait:?}");
    assert!(change.steps.iter().all(|s| s.touched_paths().is_empty()));
    // In a container without systemd it only warns.
    live.systemd = false;
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert!(diff
        .warnings
        .iter()
        .any(|w| w.message.contains("not running")));
}

#[test]
fn a_missing_log_file_is_a_located_error() {
    let mut live = debian12();
    live.missing_logs
        .insert("/var/log/streaming-app.log".into());
    match run(&section(EXAMPLE), &live) {
        Err(Failure::Invalid(errors)) => {
            assert_eq!(
                (errors[0].at.line, errors[0].at.column),
                (5, 66),
                "{errors:?}"
            );
            assert!(errors[0].message.contains("does not exist"));
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn an_unknown_filter_is_a_located_error() {
    let f =
        section("fail2ban:\n  jails:\n    app: { filter: nosuch, logpath: /var/log/app.log }\n");
    match run(&f, &debian12()) {
        Err(Failure::Invalid(errors)) => {
            assert!(errors[0].message.contains("filter nosuch"), "{errors:?}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_later_file_that_overrides_is_flagged() {
    let mut live = debian12();
    live.config.files.push(ini::parse(
        "/etc/fail2ban/jail.d/zzz-local.local",
        "[sshd]\nmaxretry = 10\n",
    ));
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert!(
        diff.warnings.iter().any(|w| w
            .message
            .contains("zzz-local.local:2 sets `maxretry = 10` for jail sshd")),
        "{:?}",
        diff.warnings
    );
}

#[test]
fn effective_differences_are_warnings_once_the_files_are_right() {
    let f = section(EXAMPLE);
    let live = debian12();
    let mut after = applied(&run(&f, &live).expect("diff"), &live);
    let dump_text = "['add', 'sshd', 'systemd']\n['set', 'sshd', 'maxretry', 10]\n['set', 'sshd', 'bantime', '1h']\n['set', 'sshd', 'findtime', '600']\n\
                     ['set', 'sshd', 'addaction', 'nftables-multiport']\n['multi-set', 'sshd', 'action', 'nftables-multiport', [['port', '2222']]]\n['start', 'sshd']\n\
                     ['add', 'streaming-app', 'auto']\n['multi-set', 'streaming-app', 'addfailregex', ['Failed login from <HOST>']]\n\
                     ['set', 'streaming-app', 'addlogpath', '/var/log/streaming-app.log', 'head']\n['set', 'streaming-app', 'maxretry', 5]\n['start', 'streaming-app']\n";
    after.dump = Some(dump::parse(dump_text, "").expect("dump"));
    let diff = run(&f, &after).expect("diff");
    assert!(diff.changes.is_empty(), "{:?}", diff.changes);
    let messages: Vec<&str> = diff.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("jail sshd with `maxretry = 10`"),
        "{messages:?}"
    );
}

#[test]
fn disabled_jails_carry_only_their_own_options() {
    let f =
        section("fail2ban:\n  defaults: { maxretry: 3 }\n  jails:\n    sshd: { enabled: false }\n");
    let text = jail_file(&run(&f, &debian12()).expect("diff"));
    let sshd = text.split("[sshd]\n").nth(1).expect("sshd");
    assert_eq!(sshd, "enabled = false\n");
}

#[test]
fn multi_line_values_are_continuation_lines() {
    let f = section("fail2ban:\n  jails:\n    app: { logpath: [/var/log/a.log, /var/log/b.log], filter: sshd }\n");
    let text = jail_file(&run(&f, &debian12()).expect("diff"));
    assert!(
        text.contains("logpath = /var/log/a.log\n          /var/log/b.log\n"),
        "{text}"
    );
}

#[test]
fn a_ufw_ban_action_is_flagged_when_ufw_is_managed() {
    let playbook = crate::testing::parse(&format!("{EXAMPLE}ufw: {{}}\n")).expect("valid");
    let mut f = section(EXAMPLE);
    f.defaults.banaction = Some(Located::unplaced(Word("ufw".into())));
    let diff = run_with(&f, &debian12(), &playbook).expect("diff");
    assert!(
        diff.warnings.iter().any(|w| w.message.contains("ufw")),
        "{:?}",
        diff.warnings
    );
}

#[test]
fn globs_match_one_component() {
    assert!(glob_match("*.log", "app.log"));
    assert!(glob_match("app-?.log", "app-1.log"));
    assert!(glob_match("app-[0-9].log", "app-7.log"));
    assert!(!glob_match("app-[!0-9].log", "app-7.log"));
    assert!(!glob_match("*.log", "app.txt"));
    assert!(
        !glob_match("*.log", ".hidden.log"),
        "fail2ban's glob skips hidden names"
    );
}

#[test]
fn bare_yes_and_no_are_keywords_not_booleans() {
    let f = section("fail2ban:\n  defaults: { usedns: no }\n");
    assert_eq!(f.defaults.usedns.map(|u| u.value), Some(UseDns::No));
}

#[test]
fn an_unmanaged_jail_without_logs_is_flagged() {
    let f = section("fail2ban:\n  jails:\n    app: { filter: sshd, logpath: /var/log/app.log }\n");
    let mut live = debian12();
    live.dump = Some(
        dump::parse(
            "['add', 'sshd', 'auto']\n['start', 'sshd']\n",
            "WARNING Have not found any log file for sshd jail\n",
        )
        .expect("dump"),
    );
    let diff = run(&f, &live).expect("diff");
    assert!(
        diff.warnings.iter().any(|w| w.message.contains(
            "jail sshd (set in /etc/fail2ban/jail.d/defaults-debian.conf:2) has no log file"
        )),
        "{:?}",
        diff.warnings
    );
}

#[test]
fn the_journal_backend_brings_python3_systemd() {
    let mut live = debian12();
    live.python_systemd = false;
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert_eq!(diff.changes[0].target, "package python3-systemd");
    live.installed = false;
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert_eq!(diff.changes[0].target, "package fail2ban, python3-systemd");
    // With /var/log/auth.log the distribution's backend stays, and nothing more is needed.
    live.installed = true;
    live.auth_log = true;
    let diff = run(&section(EXAMPLE), &live).expect("diff");
    assert!(diff
        .changes
        .iter()
        .all(|c| !c.target.starts_with("package")));
}

#[test]
fn expressions_fail2ban_refuses_are_errors_at_their_own_lines() {
    let text = "fail2ban:
  jails:
    app: { filter: app, logpath: /var/log/app.log }
  filters:
    app:
      failregex:
        - 'Failed login from <HOST>'
        - '(unclosed <HOST>'
      ignoreregex: '[x'
";
    let section = section(text);
    let expressions = section.expressions();
    let keys: Vec<(&str, usize)> = expressions.iter().map(|e| (e.key, e.index)).collect();
    assert_eq!(
        keys,
        vec![("failregex", 0), ("failregex", 1), ("ignoreregex", 0)]
    );
    let refused = |e: &compile::Expression, message: &str| compile::Refused {
        expression: e.clone(),
        message: message.into(),
    };
    let mut live = debian12();
    live.filter_names.insert("app".into());
    live.compiled = compile::Verdict::Checked(vec![
        refused(
            &expressions[1],
            "Unable to compile regular expression: missing ), unterminated subpattern at position 0",
        ),
        refused(
            &expressions[2],
            "Unable to compile regular expression: unterminated character set at position 0",
        ),
    ]);
    let Err(Failure::Invalid(errors)) = run(&section, &live) else {
        panic!("the plan must refuse the filter");
    };
    let places: Vec<(u32, u32)> = errors.iter().map(|e| (e.at.line, e.at.column)).collect();
    assert_eq!(places, vec![(8, 11), (9, 20)]);
    assert_eq!(
        errors[0].message,
        "fail2ban refuses failregex \"(unclosed <HOST>\" of filter app: Unable to compile regular expression: missing ), unterminated subpattern at position 0"
    );
    assert!(errors[1].message.contains("ignoreregex \"[x\""));

    // Nothing refused: the plan goes on; the compiler not running is a warning.
    live.compiled = compile::Verdict::Checked(Vec::new());
    run(&section, &live).expect("compiled expressions plan");
    live.compiled = compile::Verdict::Failed("No module named 'fail2ban'".into());
    let diff = run(&section, &live).expect("plans without the compiler");
    assert!(diff
        .warnings
        .iter()
        .any(|w| w.message.contains("No module named 'fail2ban'")));
}
