//! The pure diff of `users`: the shadow-tool commands that create or change each account.

use std::path::{Path, PathBuf};

use harden_host::Account;
use harden_plan::{Change, Command, Detail, Step, Warning};

use super::guards::{self, Planned};
use super::{Live, Password, ShellKind, User, Users};
use crate::diagnostic::Invalid;
use crate::facts::accounts::Name;
use crate::resource::{Diff, DiffContext, Failure, Resource};
use crate::steps::{groupadd, shadow_tool};

/// The shell a system account gets when the playbook names none.
pub(super) const SYSTEM_SHELL: &str = "/usr/sbin/nologin";

/// Compares every account with the live system.
pub(super) fn diff(section: &Users, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
    let mut diff = Diff::default();
    let mut errors = Vec::new();
    let mut planned = Vec::new();
    for (name, user) in &section.0 {
        let result = match cx.users.account(&name.value) {
            Some(account) => modify(name, user, &account, live, cx, &mut diff.warnings),
            None => create(name, user, live, cx).map(|c| (Some(c), None)),
        };
        match result {
            Ok((Some(change), plan)) => {
                diff.changes.push(change);
                planned.extend(plan);
            }
            Ok((None, _)) => diff.unchanged += 1,
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::Invalid(errors));
    }
    guards::check(&planned, cx, &mut diff.warnings)?;
    Ok(diff)
}

fn tool<const N: usize>(argv: [&str; N]) -> Command {
    shadow_tool(argv)
}

fn detail(name: &str, current: Option<String>, desired: Option<String>) -> Detail {
    Detail {
        name: name.into(),
        current,
        source: None,
        desired,
    }
}

/// The groups of `user` that must exist or be created by the plan; errors for the others.
fn check_groups(user: &User, cx: &DiffContext<'_>) -> Vec<Invalid> {
    let accounts = cx.facts.accounts(cx.users);
    user.group
        .iter()
        .chain(&user.groups)
        .filter(|g| accounts.gid(&g.value).is_none())
        .map(|g| {
            Invalid::new(
                g.at,
                format!("unknown group {g}: it neither exists nor is created by this plan"),
            )
            .help(format!(
                "add it under `groups:` (`{g}: {{}}`), or name an existing group"
            ))
        })
        .collect()
}

/// The shell the account should have and what it is, or why it cannot have it.
fn shell_of<'a>(user: &'a User, live: &Live) -> Result<Option<&'a str>, Invalid> {
    let Some(shell) = &user.shell else {
        return Ok(None);
    };
    match live.shells.get(&shell.value) {
        Some(ShellKind::Missing) | None => Err(Invalid::new(
            shell.at,
            format!("shell {} does not exist on the managed system", shell.value),
        )
        .help("install it first, or name an existing shell (/bin/bash, /usr/sbin/nologin)")),
        Some(_) => Ok(Some(&shell.value)),
    }
}

/// The change that creates `name`.
fn create(
    name: &Name,
    user: &User,
    live: &Live,
    cx: &DiffContext<'_>,
) -> Result<Change, Vec<Invalid>> {
    let mut errors = check_groups(user, cx);
    if let Some(uid) = &user.uid {
        if let Some(other) = cx.users.user_name(uid.value.0) {
            errors.push(
                Invalid::new(uid.at, format!("uid {} is already {other}'s", uid.value.0))
                    .help("choose a free uid, or leave `uid:` out for one to be chosen"),
            );
        }
    }
    let shell = match shell_of(user, live) {
        Ok(Some(shell)) => shell.to_owned(),
        Ok(None) if user.system => SYSTEM_SHELL.to_owned(),
        Ok(None) => live.default_shell.clone(),
        Err(e) => {
            errors.push(e);
            String::new()
        }
    };
    let planned = cx.facts.accounts.users.get(&name.value);
    let Some(planned) = planned.filter(|_| errors.is_empty()) else {
        if errors.is_empty() {
            errors.push(
                Invalid::new(
                    name.at,
                    format!("no free uid left for user {name} in the range of /etc/login.defs"),
                )
                .help("give it a `uid:`"),
            );
        }
        return Err(errors);
    };
    let mut steps = Vec::new();
    let private = cx
        .facts
        .accounts
        .groups
        .get(&name.value)
        .filter(|g| g.private_of.as_deref() == Some(name.value.as_str()));
    if let Some(group) = private {
        steps.push(Step::Run(groupadd(&name.value, group.gid, group.system)));
    }
    let home = user.home_for(&name.value);
    let make_home = user.makes_home() && live.exists.get(&home) != Some(&true);
    let mut argv: Vec<String> = [
        "useradd",
        "-u",
        &planned.uid.to_string(),
        "-g",
        &planned.gid.to_string(),
    ]
    .map(str::to_owned)
    .into();
    let supplementary: Vec<&str> = user.groups.iter().map(|g| g.value.as_str()).collect();
    if !supplementary.is_empty() {
        argv.extend(["-G".into(), supplementary.join(",")]);
    }
    if user.system {
        argv.push("-r".into());
    }
    argv.extend([
        "-s".into(),
        shell.clone(),
        "-d".into(),
        home.display().to_string(),
    ]);
    argv.push(if make_home { "-m" } else { "-M" }.into());
    // -l: no lastlog/faillog records, which would be files outside the snapshot.
    argv.extend(["-l".into(), name.value.clone()]);
    let mut command = shadow_tool(argv);
    if make_home {
        command = command.touching(new_home_paths(&home, live));
    }
    steps.push(Step::Run(command));
    let mut details = vec![
        detail("uid", None, Some(planned.uid.to_string())),
        detail(
            "group",
            None,
            Some(format!(
                "{} ({})",
                user.group.as_ref().map_or(&name.value, |g| &g.value),
                planned.gid
            )),
        ),
        detail("shell", None, Some(shell)),
        detail(
            "home",
            None,
            Some(format!(
                "{}{}",
                home.display(),
                if make_home { " (created)" } else { "" }
            )),
        ),
    ];
    if !supplementary.is_empty() {
        details.push(detail("groups", None, Some(supplementary.join(", "))));
    }
    Ok(Change {
        resource: Users::NAME.into(),
        target: name.value.clone(),
        reason: "user is missing".into(),
        details,
        steps,
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    })
}

/// The paths `useradd -m` creates: missing parents, the home, and the copy of `/etc/skel`,
/// so that the snapshot records them as absent and a rollback removes them.
fn new_home_paths(home: &Path, live: &Live) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = home
        .ancestors()
        .skip(1)
        .filter(|p| live.exists.get(*p) == Some(&false))
        .map(Path::to_path_buf)
        .collect();
    paths.push(home.to_path_buf());
    paths.extend(live.skel.iter().map(|entry| home.join(entry)));
    paths
}

/// A change to an existing account and what it means for the guards.
type Modified = (Option<Change>, Option<Planned>);

/// The change that brings the existing `account` to `user`, if one is needed.
fn modify(
    name: &Name,
    user: &User,
    account: &Account,
    live: &Live,
    cx: &DiffContext<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Modified, Vec<Invalid>> {
    let mut errors = check_groups(user, cx);
    if let Some(uid) = user.uid.as_ref().filter(|u| u.value.0 != account.uid) {
        errors.push(Invalid::new(uid.at, format!("user {name} exists with uid {}, not {}", account.uid, uid.value.0))
            .help("harden never renumbers an account (files carry its uid); drop `uid:` or renumber it by hand"));
    }
    if let Some(home) = user
        .home
        .as_ref()
        .filter(|h| Path::new(&h.value) != account.home)
    {
        errors.push(Invalid::new(home.at, format!("user {name} exists with home {}, not {}", account.home.display(), home.value))
            .help("harden sets the home only when it creates the account (moving one moves its data); drop `home:` or move it by hand"));
    }
    let shell = shell_of(user, live)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(errors);
    }
    let accounts = cx.facts.accounts(cx.users);
    let mut steps = Vec::new();
    let mut details = Vec::new();
    let mut planned = Planned::new(&name.value, account.uid, cx.users.groups_of(account));
    if let Some(shell) = shell.filter(|s| *s != account.shell) {
        steps.push(Step::Run(tool(["usermod", "-s", shell, &name.value])));
        details.push(detail(
            "shell",
            Some(account.shell.clone()),
            Some(shell.to_owned()),
        ));
        let login = live.shells.get(shell) == Some(&ShellKind::Login);
        planned.shell = Some((account.shell.clone(), shell.to_owned(), login));
    }
    let primary = user
        .group
        .as_ref()
        .and_then(|g| Some((g, accounts.gid(&g.value)?)));
    if let Some((group, _)) = primary.filter(|(_, gid)| *gid != account.gid) {
        steps.push(Step::Run(tool([
            "usermod",
            "-g",
            &group.value,
            &name.value,
        ])));
        let before = accounts
            .group_name(account.gid)
            .unwrap_or_else(|| account.gid.to_string());
        details.push(detail(
            "group",
            Some(before.clone()),
            Some(group.value.clone()),
        ));
        planned.swap_group(&before, &group.value);
    }
    let member_of: Vec<String> = cx
        .users
        .groups()
        .iter()
        .filter(|g| g.members.contains(&name.value))
        .map(|g| g.name.clone())
        .collect();
    let primary_gid = primary.map_or(account.gid, |(_, gid)| gid);
    let add: Vec<&str> = user
        .groups
        .iter()
        .map(|g| g.value.as_str())
        .filter(|g| !member_of.iter().any(|m| m == g) && accounts.gid(g) != Some(primary_gid))
        .collect();
    let remove: Vec<&String> = if user.exclusive {
        member_of
            .iter()
            .filter(|m| !user.groups.iter().any(|g| &g.value == *m))
            .collect()
    } else {
        Vec::new()
    };
    if !add.is_empty() {
        steps.push(Step::Run(tool([
            "usermod",
            "-a",
            "-G",
            &add.join(","),
            &name.value,
        ])));
    }
    for group in &remove {
        steps.push(Step::Run(tool([
            "gpasswd",
            "-d",
            &name.value,
            group.as_str(),
        ])));
    }
    if !add.is_empty() || !remove.is_empty() {
        let mut after: Vec<String> = member_of
            .iter()
            .filter(|m| !remove.contains(m))
            .cloned()
            .collect();
        after.extend(add.iter().map(|g| g.to_string()));
        let list = |groups: &[String]| match groups {
            [] => "(none)".to_owned(),
            some => some.join(", "),
        };
        details.push(detail("groups", Some(list(&member_of)), Some(list(&after))));
        for g in &add {
            planned.groups.push(g.to_string());
        }
        planned.groups.retain(|g| !remove.contains(&g));
        planned.groups_changed = true;
    }
    let password = live
        .passwords
        .get(&name.value)
        .copied()
        .unwrap_or(Password::Open);
    match (user.locked, password) {
        (Some(true), Password::Open) => {
            steps.push(Step::Run(tool(["usermod", "-L", &name.value])));
            details.push(detail("password", Some("usable".into()), Some("locked".into())));
            planned.locks = true;
        }
        (Some(false), Password::Locked) => {
            steps.push(Step::Run(tool(["usermod", "-U", &name.value])));
            details.push(detail("password", Some("locked".into()), Some("usable".into())));
        }
        (Some(false), Password::LockedEmpty) => warnings.push(Warning {
            resource: Users::NAME.into(),
            message: format!("user {name} has no password to unlock (`!` alone in /etc/shadow); `locked: false` leaves it as it is: set one with passwd"),
        }),
        _ => {}
    }
    if steps.is_empty() {
        return Ok((None, None));
    }
    let names: Vec<&str> = details.iter().map(|d| d.name.as_str()).collect();
    let reason = match names.as_slice() {
        [one] => format!("{one} differs"),
        many => format!("{} differ", many.join(" and ")),
    };
    Ok((
        Some(Change {
            resource: Users::NAME.into(),
            target: name.value.clone(),
            reason,
            details,
            steps,
            on_rollback: Vec::new(),
            rollback_checks: Vec::new(),
        }),
        Some(planned),
    ))
}
