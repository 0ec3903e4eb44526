//! The pure diff of `users`: the shadow-tool commands that create or change each account.

use std::path::{Path, PathBuf};

use harden_host::Account;
use harden_plan::{Change, Detail, Step, Warning};

use super::guards::{self, Planned};
use super::{Live, Password, ShellKind, User, Users};
use crate::diagnostic::Invalid;
use crate::facts::accounts::{Accounts, Name, PlannedUser};
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
    if !diff.changes.is_empty() && !live.tools {
        return Err(Failure::Unusable(
            "the shadow tools (useradd, usermod, gpasswd) are not installed on the managed system (Debian's `passwd` package): install them first".into(),
        ));
    }
    guards::check(&planned, cx, &mut diff.warnings)?;
    Ok(diff)
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

/// The shell and ids a new account gets, or what is wrong with it.
fn check_new<'a>(
    name: &Name,
    user: &User,
    live: &Live,
    cx: &'a DiffContext<'_>,
) -> Result<(String, &'a PlannedUser), Vec<Invalid>> {
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
    match planned {
        Some(planned) if errors.is_empty() => Ok((shell, planned)),
        None if errors.is_empty() => Err(vec![Invalid::new(
            name.at,
            format!("no free uid left for user {name} in the range of /etc/login.defs"),
        )
        .help("give it a `uid:`")]),
        _ => Err(errors),
    }
}

/// Everything `useradd` is told about a new account.
struct NewAccount<'a> {
    name: &'a str,
    ids: &'a PlannedUser,
    group: &'a str,
    shell: String,
    home: PathBuf,
    make_home: bool,
    groups: Vec<&'a str>,
    system: bool,
}

impl NewAccount<'_> {
    /// The `useradd` command line: every value explicit, so the plan shows what it does.
    fn useradd(&self) -> Vec<String> {
        let mut argv: Vec<String> = vec!["useradd".into(), "-u".into(), self.ids.uid.to_string()];
        argv.extend(["-g".into(), self.ids.gid.to_string()]);
        if !self.groups.is_empty() {
            argv.extend(["-G".into(), self.groups.join(",")]);
        }
        if self.system {
            argv.push("-r".into());
        }
        argv.extend(["-s".into(), self.shell.clone()]);
        argv.extend(["-d".into(), self.home.display().to_string()]);
        argv.push(if self.make_home { "-m" } else { "-M" }.into());
        // -l: no lastlog/faillog records, which would be files outside the snapshot.
        argv.extend(["-l".into(), self.name.into()]);
        argv
    }

    fn details(&self) -> Vec<Detail> {
        let made = if self.make_home { " (created)" } else { "" };
        let group = format!("{} ({})", self.group, self.ids.gid);
        let mut details = vec![
            detail("uid", None, Some(self.ids.uid.to_string())),
            detail("group", None, Some(group)),
            detail("shell", None, Some(self.shell.clone())),
            detail("home", None, Some(format!("{}{made}", self.home.display()))),
        ];
        if !self.groups.is_empty() {
            details.push(detail("groups", None, Some(self.groups.join(", "))));
        }
        details
    }
}

/// The change that creates `name`: its private group first when it needs one.
fn create(
    name: &Name,
    user: &User,
    live: &Live,
    cx: &DiffContext<'_>,
) -> Result<Change, Vec<Invalid>> {
    let (shell, ids) = check_new(name, user, live, cx)?;
    let home = user.home_for(&name.value);
    let new = NewAccount {
        name: &name.value,
        ids,
        group: user.group.as_ref().map_or(&name.value, |g| &g.value),
        shell,
        make_home: user.makes_home() && live.exists.get(&home) != Some(&true),
        home,
        groups: user.groups.iter().map(|g| g.value.as_str()).collect(),
        system: user.system,
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
    let mut command = shadow_tool(new.useradd());
    if new.make_home {
        command = command.touching(new_home_paths(&new.home, live));
    }
    steps.push(Step::Run(command));
    Ok(Change {
        resource: Users::NAME.into(),
        target: name.value.clone(),
        reason: "user is missing".into(),
        details: new.details(),
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

/// What is wrong with asking `user` of the existing `account`: a renumbering or a move.
fn check_existing(name: &Name, user: &User, account: &Account) -> Vec<Invalid> {
    let mut errors = Vec::new();
    if let Some(uid) = user.uid.as_ref().filter(|u| u.value.0 != account.uid) {
        errors.push(Invalid::new(uid.at, format!("user {name} exists with uid {}, not {}", account.uid, uid.value.0))
            .help("harden never renumbers an account (files carry its uid); drop `uid:` or renumber it by hand"));
    }
    let moved = |h: &&crate::located::Located<String>| Path::new(&h.value) != account.home;
    if let Some(home) = user.home.as_ref().filter(moved) {
        errors.push(Invalid::new(home.at, format!("user {name} exists with home {}, not {}", account.home.display(), home.value))
            .help("harden sets the home only when it creates the account (moving one moves its data); drop `home:` or move it by hand"));
    }
    errors
}

/// The steps and details of one account's change, built aspect by aspect.
struct Edit<'a> {
    name: &'a str,
    account: &'a Account,
    steps: Vec<Step>,
    details: Vec<Detail>,
    planned: Planned,
}

impl Edit<'_> {
    fn run<const N: usize>(&mut self, argv: [&str; N]) {
        self.steps.push(Step::Run(shadow_tool(argv)));
    }

    /// `usermod -s` when the shell differs.
    fn shell(&mut self, shell: Option<&str>, live: &Live) {
        let Some(shell) = shell.filter(|s| *s != self.account.shell) else {
            return;
        };
        self.run(["usermod", "-s", shell, self.name]);
        let before = self.account.shell.clone();
        self.details.push(detail(
            "shell",
            Some(before.clone()),
            Some(shell.to_owned()),
        ));
        let login = live.shells.get(shell) == Some(&ShellKind::Login);
        self.planned.shell = Some((before, shell.to_owned(), login));
    }

    /// `usermod -g` when the primary group differs; the gid it ends with.
    fn primary(&mut self, group: Option<(&str, u32)>, accounts: &Accounts<'_>) -> u32 {
        let Some((group, gid)) = group.filter(|(_, gid)| *gid != self.account.gid) else {
            return self.account.gid;
        };
        self.run(["usermod", "-g", group, self.name]);
        let before = accounts
            .group_name(self.account.gid)
            .unwrap_or_else(|| self.account.gid.to_string());
        self.details.push(detail(
            "group",
            Some(before.clone()),
            Some(group.to_owned()),
        ));
        self.planned.swap_group(&before, group);
        gid
    }

    /// `usermod -a -G` for missing supplementary groups, `gpasswd -d` for extra ones when
    /// `exclusive`. `member_of` are its supplementary groups now.
    fn memberships(
        &mut self,
        user: &User,
        member_of: &[String],
        primary: u32,
        accounts: &Accounts<'_>,
    ) {
        let add: Vec<&str> = user
            .groups
            .iter()
            .map(|g| g.value.as_str())
            .filter(|g| !member_of.iter().any(|m| m == g) && accounts.gid(g) != Some(primary))
            .collect();
        let listed = |m: &&String| user.groups.iter().any(|g| &g.value == *m);
        let remove: Vec<&String> = match user.exclusive {
            true => member_of.iter().filter(|m| !listed(m)).collect(),
            false => Vec::new(),
        };
        if add.is_empty() && remove.is_empty() {
            return;
        }
        if !add.is_empty() {
            self.run(["usermod", "-a", "-G", &add.join(","), self.name]);
        }
        for group in &remove {
            self.run(["gpasswd", "-d", self.name, group.as_str()]);
        }
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
        self.details
            .push(detail("groups", Some(list(member_of)), Some(list(&after))));
        self.planned
            .groups
            .extend(add.iter().map(|g| g.to_string()));
        self.planned.groups.retain(|g| !remove.contains(&g));
        self.planned.groups_changed = true;
    }

    /// `usermod -L`/`-U` when the lock differs; a warning when there is nothing to unlock.
    fn lock(&mut self, locked: Option<bool>, password: Password, warnings: &mut Vec<Warning>) {
        let change = |from: &str, to: &str| detail("password", Some(from.into()), Some(to.into()));
        match (locked, password) {
            (Some(true), Password::Open) => {
                self.run(["usermod", "-L", self.name]);
                self.details.push(change("usable", "locked"));
                self.planned.locks = true;
            }
            (Some(false), Password::Locked) => {
                self.run(["usermod", "-U", self.name]);
                self.details.push(change("locked", "usable"));
            }
            (Some(false), Password::LockedEmpty) => warnings.push(Warning {
                resource: Users::NAME.into(),
                message: format!("user {} has no password to unlock (`!` alone in /etc/shadow); `locked: false` leaves it as it is: set one with passwd", self.name),
            }),
            _ => {}
        }
    }

    /// The change, when any aspect needs one.
    fn finish(self) -> Modified {
        if self.steps.is_empty() {
            return (None, None);
        }
        let names: Vec<&str> = self.details.iter().map(|d| d.name.as_str()).collect();
        let reason = match names.as_slice() {
            [one] => format!("{one} differs"),
            many => format!("{} differ", many.join(" and ")),
        };
        let change = Change {
            resource: Users::NAME.into(),
            target: self.name.to_owned(),
            reason,
            details: self.details,
            steps: self.steps,
            on_rollback: Vec::new(),
            rollback_checks: Vec::new(),
        };
        (Some(change), Some(self.planned))
    }
}

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
    errors.extend(check_existing(name, user, account));
    let shell = shell_of(user, live)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(errors);
    }
    let accounts = cx.facts.accounts(cx.users);
    let mut edit = Edit {
        name: &name.value,
        account,
        steps: Vec::new(),
        details: Vec::new(),
        planned: Planned::new(&name.value, account.uid, cx.users.groups_of(account)),
    };
    edit.shell(shell, live);
    let group = user
        .group
        .as_ref()
        .and_then(|g| Some((g.value.as_str(), accounts.gid(&g.value)?)));
    let primary = edit.primary(group, &accounts);
    let member_of: Vec<String> = cx
        .users
        .groups()
        .iter()
        .filter(|g| g.members.contains(&name.value))
        .map(|g| g.name.clone())
        .collect();
    edit.memberships(user, &member_of, primary, &accounts);
    let password = live.passwords.get(&name.value).copied();
    edit.lock(user.locked, password.unwrap_or(Password::Open), warnings);
    Ok(edit.finish())
}
