//! Unit tests of the `users` diff and its guards, on hand-made user databases.

use std::path::PathBuf;
use std::sync::Arc;

use harden_host::UserDb;
use harden_plan::Step;

use super::*;
use crate::facts::KeyLogins;
use crate::resource::Refusal;
use crate::testing;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
admin:x:1000:1000::/home/admin:/bin/bash
ops:x:1001:1001::/home/ops:/bin/bash
systemd-network:x:998:998::/:/usr/sbin/nologin
";
const GROUP: &str = "root:x:0:
sudo:x:27:admin
adm:x:4:ops,admin
admin:x:1000:
ops:x:1001:
systemd-network:x:998:
";

fn db() -> UserDb {
    UserDb::parse(false, PASSWD, GROUP)
}

/// A live state where every shell exists and admin's password is usable.
fn live() -> Live {
    let mut live = Live {
        default_shell: "/bin/sh".into(),
        tools: true,
        skel: vec![PathBuf::from(".bashrc"), PathBuf::from(".profile")],
        ..Live::default()
    };
    for shell in ["/bin/bash", "/bin/sh"] {
        live.shells.insert(shell.into(), ShellKind::Login);
    }
    for shell in ["/usr/sbin/nologin", "/bin/false"] {
        live.shells.insert(shell.into(), ShellKind::NoLogin);
    }
    for name in ["admin", "ops", "root"] {
        live.passwords.insert(name.into(), Password::Locked);
    }
    live.passwords.insert("admin".into(), Password::Open);
    live.exists.insert("/home".into(), true);
    live
}

/// sshd's verdict: `keyed` can log in with a key; AllowGroups lists `allow` when not empty.
fn keyed(keyed: &[(&str, u32)], allow: &'static [&'static str]) -> KeyLogins {
    KeyLogins {
        accounts: keyed.iter().map(|(n, u)| (n.to_string(), *u)).collect(),
        refuses_locked: false,
        lists: Some(Arc::new(move |_: &str, groups: &[String]| {
            (!allow.is_empty() && !groups.iter().any(|g| allow.contains(&g.as_str())))
                .then(|| format!("none of its groups is in AllowGroups {}", allow.join(" ")))
        })),
    }
}

fn plan_with(yaml: &str, key_logins: KeyLogins, allow: &[&str]) -> Result<Diff, Failure> {
    let playbook = crate::testing::parse(yaml).expect("valid playbook");
    let users = db();
    let (facts, mut live_facts) = testing::facts(&playbook, &users);
    live_facts.sshd.key_logins = key_logins;
    let overrides = allow.iter().map(|s| s.to_string()).collect();
    let cx = DiffContext {
        users: &users,
        facts: &facts,
        live: &live_facts,
        overrides: &overrides,
    };
    playbook.users.expect("users").diff(&live(), &cx)
}

fn plan(yaml: &str) -> Result<Diff, Failure> {
    plan_with(yaml, keyed(&[("admin", 1000)], &[]), &[])
}

fn commands(diff: &Diff) -> Vec<String> {
    diff.changes
        .iter()
        .flat_map(|c| &c.steps)
        .filter_map(|s| match s {
            Step::Run(c) => Some(c.display()),
            _ => None,
        })
        .collect()
}

fn refusal(result: Result<Diff, Failure>) -> Refusal {
    match result {
        Err(Failure::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn errors(result: Result<Diff, Failure>) -> Vec<Invalid> {
    match result {
        Err(Failure::Invalid(e)) => e,
        other => panic!("expected errors, got {other:?}"),
    }
}

#[test]
fn a_new_user_gets_its_ids_its_private_group_and_a_home_from_skel() {
    let diff = plan("users:\n  alice: { groups: [sudo] }\n").expect("diff");
    assert_eq!(
        commands(&diff),
        vec![
            "groupadd -g 1002 alice",
            "useradd -u 1002 -g 1002 -G sudo -s /bin/sh -d /home/alice -m -l alice"
        ]
    );
    let Step::Run(useradd) = &diff.changes[0].steps[1] else {
        panic!("useradd")
    };
    for path in [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/subuid",
        "/home/alice",
        "/home/alice/.bashrc",
    ] {
        assert!(useradd.touches.contains(&PathBuf::from(path)), "{path}");
    }
    assert!(
        !useradd.touches.contains(&PathBuf::from("/home")),
        "/home exists"
    );
}

#[test]
fn a_system_user_in_a_new_system_group_as_mist_needs_it() {
    let yaml = "groups:\n  docker: { system: true }\nusers:\n  mist: { system: true, groups: [docker], home: /var/lib/mist }\n";
    let diff = plan(yaml).expect("diff");
    // The system ranges count down from 999: 998 is taken by systemd-network.
    assert_eq!(
        commands(&diff),
        vec![
            "groupadd -g 996 -r mist",
            "useradd -u 997 -g 996 -G docker -r -s /usr/sbin/nologin -d /var/lib/mist -M -l mist"
        ]
    );
}

#[test]
fn an_existing_user_is_added_to_groups_and_exclusive_removes_the_others() {
    let diff = plan("users:\n  ops: { groups: [sudo] }\n").expect("diff");
    assert_eq!(commands(&diff), vec!["usermod -a -G sudo ops"]);
    let diff = plan("users:\n  ops: { groups: [sudo], exclusive: true }\n").expect("diff");
    assert_eq!(
        commands(&diff),
        vec!["usermod -a -G sudo ops", "gpasswd -d ops adm"]
    );
    let diff = plan("users:\n  ops: { groups: [adm] }\n").expect("diff");
    assert!(diff.changes.is_empty());
    assert_eq!(diff.unchanged, 1);
}

#[test]
fn locked_locks_an_open_password_and_unlocks_only_a_real_one() {
    let diff = plan_with(
        "users:\n  admin: { locked: true }\n",
        keyed(&[("ops", 1001)], &[]),
        &[],
    )
    .expect("diff");
    assert_eq!(commands(&diff), vec!["usermod -L admin"]);
    let diff = plan("users:\n  ops: { locked: true }\n").expect("diff");
    assert!(diff.changes.is_empty(), "already locked");
    let diff = plan("users:\n  ops: { locked: false }\n").expect("diff");
    assert_eq!(commands(&diff), vec!["usermod -U ops"]);
}

#[test]
fn shells_change_and_a_missing_one_is_a_located_error() {
    let diff = plan("users:\n  ops: { shell: /usr/sbin/nologin }\n").expect("diff");
    assert_eq!(commands(&diff), vec!["usermod -s /usr/sbin/nologin ops"]);
    let e = errors(plan("users:\n  ops: { shell: /bin/zsh }\n"));
    assert!(e[0].message.contains("/bin/zsh does not exist"), "{e:?}");
    assert_eq!((e[0].at.line, e[0].at.column), (2, 17));
}

#[test]
fn the_guards_refuse_locking_out_the_only_keyed_admin() {
    let r = refusal(plan("users:\n  admin: { locked: true }\n"));
    assert_eq!(r.guard, guards::LOCK_KEYED);
    assert!(
        r.message.contains("admin: its password would be locked"),
        "{}",
        r.message
    );
    let r = refusal(plan("users:\n  admin: { shell: /bin/false }\n"));
    assert_eq!(r.guard, guards::SHELL_KEYED);
    let allow = keyed(&[("admin", 1000)], &["sudo"]);
    let r = refusal(plan_with(
        "users:\n  admin: { groups: [], exclusive: true }\n",
        allow,
        &[],
    ));
    assert_eq!(r.guard, guards::GROUPS_KEYED);
    assert!(r.message.contains("AllowGroups sudo"), "{}", r.message);
    // With a second keyed account, one may be changed.
    let two = keyed(&[("admin", 1000), ("ops", 1001)], &[]);
    assert!(plan_with("users:\n  admin: { locked: true }\n", two, &[]).is_ok());
    // --allow turns the refusal into a warning.
    let diff = plan_with(
        "users:\n  admin: { locked: true }\n",
        keyed(&[("admin", 1000)], &[]),
        &[guards::LOCK_KEYED],
    )
    .expect("overridden");
    assert!(diff.warnings[0]
        .message
        .contains("overridden by --allow users-lock-keyed"));
}

#[test]
fn roots_shell_is_never_changed() {
    let r = refusal(plan("users:\n  root: { shell: /bin/sh }\n"));
    assert_eq!(r.guard, guards::ROOT_SHELL);
    assert!(
        plan("users:\n  root: { shell: /bin/bash }\n").is_ok(),
        "unchanged"
    );
}

#[test]
fn bad_input_is_a_located_error() {
    for (yaml, place, needle) in [
        (
            "users:\n  alice: { colour: red }\n",
            "2:",
            "unknown field `colour`",
        ),
        ("users:\n  \"-x\": {}\n", "2:3", "invalid name"),
        ("users:\n  alice: { uid: -1 }\n", "2:", "negative"),
        (
            "users:\n  alice: { uid: 99999999999 }\n",
            "2:",
            "out of range",
        ),
        (
            "users:\n  alice: { shell: bin/sh }\n",
            "2:19",
            "not an absolute",
        ),
        (
            "users:\n  alice: { groups: [sudo, sudo] }\n",
            "2:27",
            "listed twice",
        ),
        (
            "users:\n  alice: { groups: [\"a b\"] }\n",
            "2:",
            "invalid name",
        ),
    ] {
        let err = crate::testing::parse(yaml).expect_err(yaml);
        assert!(err.contains(&format!("pb.yaml:{place}")), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
    let e = errors(plan("users:\n  alice: { groups: [ghosts] }\n"));
    assert!(e[0].message.contains("unknown group ghosts"), "{e:?}");
    assert_eq!((e[0].at.line, e[0].at.column), (2, 21));
    let e = errors(plan("users:\n  alice: { uid: 1001 }\n"));
    assert!(e[0].message.contains("uid 1001 is already ops's"), "{e:?}");
    let e = errors(plan("users:\n  ops: { uid: 1500 }\n"));
    assert!(e[0].message.contains("exists with uid 1001"), "{e:?}");
    let e = errors(plan("users:\n  ops: { home: /srv/ops }\n"));
    assert!(e[0].message.contains("exists with home /home/ops"), "{e:?}");
}

#[test]
fn files_own_paths_by_accounts_the_plan_creates() {
    let yaml = "groups:\n  web: {}\nusers:\n  app: { group: web }\nfiles:\n  - { path: /srv/app, directory: true, owner: app, group: web }\n";
    let playbook = crate::testing::parse(yaml).expect("valid");
    let (facts, _) = testing::facts(&playbook, &db());
    let attrs = &facts.file_attrs[&PathBuf::from("/srv/app")];
    assert_eq!((attrs.uid, attrs.gid), (Some(1002), Some(1002)));
    assert_eq!(facts.accounts.users["app"].gid, 1002);
    assert_eq!(facts.accounts.groups["web"].gid, 1002);
}
