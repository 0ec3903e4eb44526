//! Unit tests of the pure diff, on hand-made live states.

use std::collections::BTreeSet;

use harden_host::{Kind, Stat, UserDb};

use super::*;
use crate::resources::sshd::guards::{parse_keys, AccountFacts, GroupWrite, KeyFile, Link};
use crate::resources::Playbook;

const NOW: &str = "20261201120000";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmEXAMPLEKEYexamplekeyEXAMPLEKEYexample alice@laptop\n";
const CLOUD: &str = "/etc/ssh/sshd_config.d/50-cloud-init.conf";
const DROP_IN: &str = "/etc/ssh/sshd_config.d/00-harden.conf";

fn stat(kind: Kind, mode: u32, uid: u32) -> Stat {
    Stat {
        kind,
        mode,
        uid,
        gid: uid,
        nlink: 1,
        dev: 1,
        ino: 1,
        size: 1,
    }
}

/// A live system: the given configuration files, sshd installed and running from a pidfile,
/// and alice with a usable key.
fn live(files: &[(&str, &str)]) -> Live {
    let mut live = Live {
        sshd: Some("/usr/sbin/sshd".into()),
        ..Live::default()
    };
    live.snapshot
        .dirs
        .insert("/etc/ssh/sshd_config.d".into(), Vec::new());
    for (path, text) in files {
        live.snapshot.put(Path::new(path), (*text).to_owned());
        live.stats.insert(path.into(), stat(Kind::File, 0o644, 0));
    }
    live.stats
        .insert("/etc/ssh/sshd_config.d".into(), stat(Kind::Dir, 0o755, 0));
    let alice = AccountFacts {
        name: "alice".into(),
        uid: 1000,
        home: "/home/alice".into(),
        shell: "/bin/bash".into(),
        groups: vec!["alice".into()],
        locked: false,
        expired: false,
    };
    live.key_files.insert(
        "/home/alice/.ssh/authorized_keys".into(),
        KeyFile {
            keys: parse_keys(KEY, NOW),
            chain: [
                "/home/alice/.ssh/authorized_keys",
                "/home/alice/.ssh",
                "/home/alice",
            ]
            .iter()
            .zip([
                stat(Kind::File, 0o600, 1000),
                stat(Kind::Dir, 0o700, 1000),
                stat(Kind::Dir, 0o755, 1000),
            ])
            .map(|(p, s)| Link {
                path: p.into(),
                stat: Some(s),
                group_write: GroupWrite::Refused,
            })
            .collect(),
        },
    );
    live.accounts.push(alice);
    live.activation = Some(Activation::Daemon {
        pidfile: "/run/sshd.pid".into(),
        running: true,
    });
    live.listening = Some(BTreeSet::from([22]));
    live
}

fn debian() -> &'static str {
    probe::DEBIAN_DEFAULT
}

fn section(yaml: &str) -> Sshd {
    serde_saphyr::from_str::<Sshd>(yaml).expect("valid section")
}

struct Fixture {
    users: UserDb,
    playbook: Playbook,
    overrides: BTreeSet<String>,
}

impl Fixture {
    fn new(yaml: &str) -> Self {
        Fixture {
            users: UserDb::parse(
                false,
                "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
                "root:x:0:\nalice:x:1000:\n",
            ),
            playbook: Playbook {
                sshd: Some(section(yaml)),
                ..Playbook::default()
            },
            overrides: BTreeSet::new(),
        }
    }

    fn run(&self, live: &Live) -> Result<Diff, Failure> {
        let (facts, live_facts) = crate::testing::facts(&self.playbook, &self.users);
        let cx = DiffContext {
            users: &self.users,
            facts: &facts,
            live: &live_facts,
            overrides: &self.overrides,
        };
        let section = self.playbook.sshd.as_ref().expect("section");
        diff(section, live, &cx)
    }
}

fn writes(change: &Change) -> Vec<(&Path, &str)> {
    change
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::WriteFile { path, content, .. } => Some((path.as_path(), content.as_str())),
            _ => None,
        })
        .collect()
}

/// The live state after applying `change` to `live`.
fn applied(mut live: Live, change: &Change) -> Live {
    for (path, content) in writes(change) {
        live.snapshot.put(path, content.to_owned());
        live.stats
            .entry(path.to_path_buf())
            .or_insert(stat(Kind::File, 0o600, 0));
    }
    live
}

fn refused(result: Result<Diff, Failure>) -> Refusal {
    match result {
        Err(Failure::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn invalid(result: Result<Diff, Failure>) -> Vec<Invalid> {
    match result {
        Err(Failure::Invalid(e)) => e,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn a_cloud_init_drop_in_is_beaten_by_harden_s_drop_in_sorting_first() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let live = live(&[
        (config::MAIN, debian()),
        (CLOUD, "PasswordAuthentication yes\n"),
    ]);
    let diff = f.run(&live).expect("plan");
    assert_eq!(diff.changes.len(), 1);
    let change = &diff.changes[0];
    assert_eq!(change.target, DROP_IN);
    assert_eq!(
        change.details[0],
        Detail {
            name: "PasswordAuthentication".into(),
            current: Some("yes".into()),
            source: Some(format!("{CLOUD}:1")),
            desired: Some("no".into())
        }
    );
    let w = writes(change);
    assert_eq!(
        w.len(),
        1,
        "distribution and cloud-init files are left alone"
    );
    assert_eq!(w[0].0, Path::new(DROP_IN));
    assert!(w[0].1.starts_with("# Managed by harden"));
    assert!(w[0].1.ends_with("\nPasswordAuthentication no\n"));
    assert!(matches!(&change.steps[1], Step::Validate(c) if c.argv == ["/usr/sbin/sshd", "-t"]));
    assert!(
        matches!(&change.steps[2], Step::Reload { command, .. } if command.display().contains("pkill -HUP -F /run/sshd.pid -x sshd"))
    );
    assert!(
        matches!(&change.steps[3], Step::Validate(c) if c.display().contains("pkill -0 -F /run/sshd.pid"))
    );
    assert_eq!(
        change.on_rollback.len(),
        2,
        "reload, then wait until sshd listens again"
    );

    // Applied, the plan is empty.
    let after = applied(live, change);
    let again = f.run(&after).expect("plan");
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.unchanged, 1);
}

#[test]
fn an_earlier_sorting_drop_in_is_commented_out() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n  MaxAuthTries: 3\n");
    let early = "/etc/ssh/sshd_config.d/00-aaa.conf";
    let live = live(&[
        (config::MAIN, debian()),
        (
            early,
            "# site\nPasswordAuthentication yes\nMaxAuthTries 3\n",
        ),
    ]);
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    let w = writes(change);
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].0, Path::new(early));
    assert_eq!(
        w[0].1,
        "# site\n# disabled by harden, PasswordAuthentication is set in /etc/ssh/sshd_config.d/00-harden.conf: PasswordAuthentication yes\nMaxAuthTries 3\n",
        "only the line that disagrees is touched"
    );
    assert!(change
        .details
        .iter()
        .any(|d| d.name == format!("line {early}:2") && d.desired.is_none()));
    assert_eq!(diff.unchanged, 1, "MaxAuthTries is already 3");
    assert!(f
        .run(&applied(live, change))
        .expect("plan")
        .changes
        .is_empty());
}

#[test]
fn a_new_port_replaces_every_other_port_line() {
    let f = Fixture::new("config:\n  Port: 2222\n");
    let live = live(&[
        (config::MAIN, &debian().replace("#Port 22", "Port 22")),
        (CLOUD, "Port 22\n"),
    ]);
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    let w = writes(change);
    assert_eq!(w.len(), 3, "main file, cloud drop-in, harden's drop-in");
    assert!(w.iter().any(|(p, t)| *p == Path::new(config::MAIN) && t.contains("# disabled by harden, Port is set in /etc/ssh/sshd_config.d/00-harden.conf: Port 22")));
    assert_eq!(change.details[0].current.as_deref(), Some("22, 22"));
    assert_eq!(change.details[0].desired.as_deref(), Some("2222"));
    let check = change.steps.iter().rev().find_map(|s| match s {
        Step::Validate(c) => Some(c.display()),
        _ => None,
    });
    assert!(check.is_some_and(|c| c.contains("pkill -0")));
    assert!(f
        .run(&applied(live, change))
        .expect("plan")
        .changes
        .is_empty());
}

#[test]
fn without_a_drop_in_directory_the_main_file_is_edited_in_place() {
    let main = "# My sshd\nPort 22\n# passwords are for people\nPasswordAuthentication yes\nUsePAM yes\n\n# per user\nMatch User backup\n  ForceCommand /usr/bin/backup\n";
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n  MaxAuthTries: 3\n  PermitRootLogin: prohibit-password\n");
    let mut live = live(&[(config::MAIN, main)]);
    live.stats
        .insert(config::MAIN.into(), stat(Kind::File, 0o640, 0));
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    assert_eq!(change.target, config::MAIN);
    let w = writes(change);
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].1,
        "# My sshd\nPort 22\n# passwords are for people\nPasswordAuthentication no\nUsePAM yes\n\n# Set by harden (playbook section `sshd`):\nMaxAuthTries 3\nPermitRootLogin prohibit-password\n# per user\nMatch User backup\n  ForceCommand /usr/bin/backup\n"
    );
    assert!(
        matches!(&change.steps[0], Step::WriteFile { attrs, .. } if attrs.mode == 0o640),
        "the file keeps its mode"
    );
    assert!(f
        .run(&applied(live, change))
        .expect("plan")
        .changes
        .is_empty());
}

#[test]
fn a_files_entry_for_the_same_path_decides_its_mode() {
    let mut f = Fixture::new("config:\n  MaxAuthTries: 3\n");
    let other: Playbook = serde_saphyr::from_str(
        "files:\n  - { path: /etc/ssh/sshd_config, mode: \"0600\", owner: root }\n",
    )
    .expect("files");
    f.playbook.files = other.files;
    let live = live(&[(config::MAIN, "Port 22\n")]);
    let diff = f.run(&live).expect("plan");
    assert!(
        matches!(&diff.changes[0].steps[0], Step::WriteFile { attrs, .. } if attrs.mode == 0o600)
    );
}

#[test]
fn match_blocks_are_reported_not_edited() {
    let main = format!(
        "{}\nMatch User bob\n  PasswordAuthentication yes\n",
        debian()
    );
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let live = live(&[(config::MAIN, &main)]);
    let diff = f.run(&live).expect("plan");
    assert_eq!(writes(&diff.changes[0]).len(), 1);
    assert!(
        diff.warnings.iter().any(|w| w
            .message
            .contains("Match User bob at /etc/ssh/sshd_config:")
            && w.message.contains("PasswordAuthentication yes")),
        "{:?}",
        diff.warnings
    );
}

#[test]
fn a_second_subsystem_of_the_same_name_replaces_the_first() {
    let f = Fixture::new("config:\n  Subsystem: sftp internal-sftp\n");
    let live = live(&[(config::MAIN, debian())]);
    let diff = f.run(&live).expect("plan");
    let w = writes(&diff.changes[0]);
    assert!(w.iter().any(|(p, t)| *p == Path::new(config::MAIN)
        && t.contains("# disabled by harden, Subsystem is set in")));
    assert!(w
        .iter()
        .any(|(p, t)| *p == Path::new(DROP_IN) && t.contains("Subsystem sftp internal-sftp\n")));
}

#[test]
fn passwords_off_without_any_usable_key_is_refused_unless_allowed() {
    let mut f = Fixture::new(
        "config:\n  PasswordAuthentication: false\n  KbdInteractiveAuthentication: false\n",
    );
    let mut live = live(&[(config::MAIN, debian())]);
    live.key_files.clear();
    let r = refused(f.run(&live));
    assert_eq!(r.guard, guards::NO_KEYED_LOGIN);
    assert!(
        r.message
            .contains("no account with a login shell has any authorized key"),
        "{}",
        r.message
    );
    f.overrides.insert(guards::NO_KEYED_LOGIN.into());
    let diff = f.run(&live).expect("overridden");
    assert_eq!(diff.changes.len(), 1);
    assert!(diff.warnings.iter().any(|w| w
        .message
        .contains("overridden by --allow sshd-no-keyed-login")));
}

#[test]
fn a_port_the_firewall_drops_is_refused() {
    let f = Fixture::new("config:\n  Port: 2222\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.firewall.insert(2222, Some(false));
    let r = refused(f.run(&live));
    assert_eq!(r.guard, guards::PORT_FIREWALL);
    assert!(r.message.contains("ufw allow 2222/tcp"));
    live.firewall.insert(2222, Some(true));
    assert!(f.run(&live).is_ok());
}

#[test]
fn a_port_in_use_by_another_program_is_an_error() {
    let f = Fixture::new("config:\n  Port: 8080\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.listening = Some(BTreeSet::from([22, 8080]));
    let e = invalid(f.run(&live));
    assert!(
        e[0].message.contains("port 8080 is already in use"),
        "{}",
        e[0].message
    );
    assert_eq!((e[0].at.line, e[0].at.column), (2, 9));
}

#[test]
fn values_the_installed_openssh_rejects_are_located_errors() {
    let f = Fixture::new("config:\n  Ciphers: [aes256-gcm@openssh.com, rot13-cbc]\n  PerSourcePenalties: yes\n  FooBar: yes\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.version = Some("OpenSSH_9.2p1".into());
    live.algorithms.insert(
        keywords::Query::Cipher,
        ["aes256-gcm@openssh.com".to_string(), "aes128-ctr".into()].into(),
    );
    live.rejected
        .insert(1, "Bad configuration option: PerSourcePenalties".into());
    live.rejected
        .insert(2, "Bad configuration option: FooBar".into());
    live.dump = Some(probe::Dump::default());
    let e = invalid(f.run(&live));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].message
            .contains("rot13-cbc is not supported by OpenSSH_9.2p1"),
        "{}",
        e[0].message
    );
    assert_eq!((e[0].at.line, e[0].at.column), (2, 12));
    assert!(e[0]
        .help
        .as_deref()
        .is_some_and(|h| h.contains("aes128-ctr")));
    assert!(e[1]
        .message
        .contains("does not know the directive PerSourcePenalties"));
    assert_eq!((e[1].at.line, e[1].at.column), (3, 3));
    assert!(e[2].message.contains("FooBar"));
}

#[test]
fn unknown_directives_need_an_installed_sshd_to_vouch_for_them() {
    let f = Fixture::new("config:\n  PasswordAuthentification: no\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.sshd = None;
    let e = invalid(f.run(&live));
    assert!(e[0]
        .message
        .contains("unknown sshd directive PasswordAuthentification"));
    assert_eq!(
        e[0].help.as_deref(),
        Some("did you mean PasswordAuthentication?")
    );
}

#[test]
fn a_missing_openssh_server_is_installed_first() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let mut live = Live::default();
    live.snapshot
        .put(Path::new(config::MAIN), debian().to_owned());
    live.synthesized = true;
    live.activation = Some(Activation::Daemon {
        pidfile: "/run/sshd.pid".into(),
        running: false,
    });
    live.accounts = self::live(&[]).accounts;
    live.key_files = self::live(&[]).key_files;
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    assert!(
        matches!(&change.steps[0], Step::Run(c) if c.display() == "env NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold openssh-server" && c.timeout_secs >= 600)
    );
    let w = writes(change);
    assert_eq!(
        w.len(),
        1,
        "the default main file is the package's, not harden's"
    );
    assert_eq!(w[0].0, Path::new(DROP_IN));
    assert!(change
        .steps
        .iter()
        .any(|s| matches!(s, Step::Validate(c) if c.argv[1] == "-t")));
    assert!(change.reason.contains("not installed"));
}

#[test]
fn images_under_root_are_never_reloaded() {
    let f = Fixture::new("config:\n  X11Forwarding: false\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.activation = Some(Activation::Offline);
    let diff = f.run(&live).expect("plan");
    let steps = &diff.changes[0].steps;
    assert_eq!(steps.len(), 2, "write and sshd -t only: {steps:?}");
    assert!(diff.changes[0].on_rollback.is_empty());
}

#[test]
fn systemd_hosts_reload_the_unit() {
    let f = Fixture::new("config:\n  X11Forwarding: false\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.activation = Some(Activation::Systemd {
        unit: "ssh".into(),
        socket: None,
        active: true,
    });
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    assert!(change.steps.iter().any(|s| matches!(s, Step::Reload { command, .. } if command.display() == "systemctl try-reload-or-restart ssh.service")));
    assert_eq!(
        change.on_rollback[0].display(),
        "systemctl reload-or-restart ssh.service"
    );
    assert!(change.on_rollback[1]
        .display()
        .contains("systemctl is-active --quiet ssh.service"));
}

#[test]
fn socket_activation_follows_a_port_change() {
    let f = Fixture::new("config:\n  Port: 2222\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.activation = Some(Activation::Systemd {
        unit: "ssh".into(),
        socket: Some(probe::SocketActivation {
            generator: false,
            drop_in: None,
            drop_in_dir: false,
        }),
        active: false,
    });
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    assert!(writes(change).iter().any(|(p, t)| *p
        == Path::new("/etc/systemd/system/ssh.socket.d/00-harden-listen.conf")
        && t.contains("ListenStream=\nListenStream=2222\n")));
    let runs: Vec<String> = change
        .steps
        .iter()
        .filter_map(|s| {
            if let Step::Run(c) = s {
                Some(c.display())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        runs,
        vec![
            "systemctl daemon-reload",
            "systemctl stop ssh.service",
            "systemctl restart ssh.socket"
        ]
    );
}

#[test]
fn nothing_to_do_is_nothing_done() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let live = live(&[(config::MAIN, "PasswordAuthentication no\n")]);
    let diff = f.run(&live).expect("plan");
    assert!(diff.changes.is_empty());
    assert_eq!(diff.unchanged, 1);
    let empty = Fixture::new("config: {}\n");
    assert!(empty.run(&live).expect("plan").changes.is_empty());
}

#[test]
fn the_model_yields_to_sshd_when_they_disagree() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let mut live = live(&[(config::MAIN, "PasswordAuthentication no\n")]);
    let mut dump = probe::Dump::default();
    dump.0
        .insert("passwordauthentication".into(), vec!["yes".into()]);
    live.dump = Some(dump);
    let diff = f.run(&live).expect("plan");
    assert!(
        diff.warnings
            .iter()
            .any(|w| w.message.contains("`sshd -T` reports yes")),
        "{:?}",
        diff.warnings
    );
    assert_eq!(diff.unchanged, 0);
}

#[test]
fn a_stopped_service_is_not_started() {
    let f = Fixture::new("config:\n  X11Forwarding: false\n");
    let mut live = live(&[(config::MAIN, debian())]);
    live.activation = Some(Activation::Systemd {
        unit: "ssh".into(),
        socket: None,
        active: false,
    });
    let change = &f.run(&live).expect("plan").changes[0];
    assert_eq!(
        change.steps.len(),
        2,
        "write and sshd -t only: {:?}",
        change.steps
    );
    live.activation = Some(Activation::Daemon {
        pidfile: "/run/sshd.pid".into(),
        running: false,
    });
    let change = &f.run(&live).expect("plan").changes[0];
    assert_eq!(
        change.steps.len(),
        2,
        "write and sshd -t only: {:?}",
        change.steps
    );
}

#[test]
fn a_missing_main_file_is_created_when_sshd_is_installed() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let mut live = live(&[]);
    live.snapshot.files.insert(config::MAIN.into(), None);
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    assert_eq!(change.target, config::MAIN);
    assert!(
        matches!(&change.steps[0], Step::WriteFile { path, before: None, content, .. }
        if path == Path::new(config::MAIN) && content.ends_with("PasswordAuthentication no\n"))
    );
    assert!(f
        .run(&applied(live, change))
        .expect("plan")
        .changes
        .is_empty());
}

#[test]
fn an_install_that_would_need_the_package_s_main_file_edited_is_refused() {
    let f = Fixture::new("config:\n  Subsystem: sftp internal-sftp\n");
    let mut live = live(&[]);
    live.sshd = None;
    live.snapshot
        .put(Path::new(config::MAIN), debian().to_owned());
    live.synthesized = true;
    match f.run(&live) {
        Err(Failure::Probe(m)) => assert!(m.contains("install openssh-server first"), "{m}"),
        other => panic!("expected a probe failure, got {other:?}"),
    }
}

#[test]
fn a_match_all_block_that_overrides_the_playbook_is_an_error() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let live = live(&[(
        config::MAIN,
        &format!("{}Match all\n  PasswordAuthentication yes\n", debian()),
    )]);
    let e = invalid(f.run(&live));
    assert!(
        e[0].message
            .contains("the `Match all` block at /etc/ssh/sshd_config:"),
        "{}",
        e[0].message
    );
    assert_eq!((e[0].at.line, e[0].at.column), (2, 27));
}

#[test]
fn files_that_already_hold_the_values_need_no_second_check() {
    let f = Fixture::new("config:\n  PasswordAuthentication: false\n");
    let section = f.playbook.sshd.as_ref().expect("section");
    let live = live(&[(config::MAIN, debian())]);
    assert!(!already_written(section, &live.snapshot));
    let change = f.run(&live).expect("plan").changes.remove(0);
    let after = applied(live, &change);
    assert!(already_written(section, &after.snapshot));
}

#[test]
fn in_place_values_already_in_effect_from_an_included_file_stay_there() {
    let f = Fixture::new("config:\n  Port: 22\n  MaxAuthTries: 3\n");
    let live = live(&[
        (
            config::MAIN,
            "Include /etc/ssh/local.conf\nMaxAuthTries 5\n",
        ),
        ("/etc/ssh/local.conf", "Port 22\nMaxAuthTries 4\n"),
    ]);
    let diff = f.run(&live).expect("plan");
    let change = &diff.changes[0];
    let w = writes(change);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w
        .iter()
        .any(|(p, t)| *p == Path::new(config::MAIN) && t.contains("MaxAuthTries 3\n")));
    assert!(w.iter().any(|(p, t)| *p == Path::new("/etc/ssh/local.conf")
        && t == &"Port 22\n# disabled by harden, MaxAuthTries is set in /etc/ssh/sshd_config: MaxAuthTries 4\n"));
    assert_eq!(diff.unchanged, 1, "Port 22 is already in effect");
    assert!(f
        .run(&applied(live, change))
        .expect("plan")
        .changes
        .is_empty());
}
