//! `users`: accounts that must exist, their shell, primary and supplementary groups, and
//! whether their password is locked, through the shadow tools (`useradd`, `usermod`,
//! `gpasswd`).
//!
//! An account the system lacks is created with the uid (and private group gid) chosen at plan
//! time and published, so `files` can own a path by it in the same apply. An existing one is
//! never renumbered or moved (files carry its uid, its home holds its data); its shell,
//! groups and lock are brought to the playbook. Users are never removed: see the README.
//! Lockout guards refuse a change that would take away the last account that can log in
//! over SSH with a key, judged with what the sshd resource publishes.

mod diff;
mod guards;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use harden_host::{Host, Kind, UserDb};
use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::facts::accounts::{self, Accounts, Id, Name, PlannedGroup, PlannedUser};
use crate::facts::Facts;
use crate::guard::Guard;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

/// The `users:` section: accounts by login name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Users(#[serde(deserialize_with = "accounts::nullable_values")] pub BTreeMap<Name, User>);

/// One account.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Its uid; chosen as `useradd` would when absent. Never changed on an existing account.
    pub uid: Option<Located<Id>>,
    /// A system account: its uid from the system range, no home made unless asked.
    #[serde(default)]
    pub system: bool,
    /// Login shell (`/usr/sbin/nologin` for a service account).
    pub shell: Option<Located<String>>,
    /// Home directory, set when the account is created (default `/home/NAME`).
    pub home: Option<Located<String>>,
    /// Create the home directory (from `/etc/skel`) with the account; default: yes for
    /// people, no for system accounts.
    pub create_home: Option<bool>,
    /// Primary group; default: a group named as the user (created when missing).
    pub group: Option<Name>,
    /// Supplementary groups it must be in.
    #[serde(default)]
    pub groups: Vec<Name>,
    /// Remove it from supplementary groups `groups` does not list.
    #[serde(default)]
    pub exclusive: bool,
    /// `true`: the password is locked (`usermod -L`; key logins still work). `false`: a
    /// locked password is unlocked. Unset: left alone.
    pub locked: Option<bool>,
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Users {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Users".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        accounts::map_schema::<User>(generator, "Accounts that must exist, by login name.")
    }
}

impl User {
    /// The home directory the account gets when created.
    fn home_for(&self, name: &str) -> PathBuf {
        self.home.as_ref().map_or_else(
            || Path::new("/home").join(name),
            |h| PathBuf::from(&h.value),
        )
    }

    /// Whether the home directory is made with the account.
    fn makes_home(&self) -> bool {
        self.create_home.unwrap_or(!self.system)
    }
}

/// A password's state in `/etc/shadow` (never its value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Password {
    /// Not locked.
    Open,
    /// Locked (`!`), with a password behind the lock that `usermod -U` would restore.
    Locked,
    /// Locked with nothing behind it (`!`, as `useradd` leaves a new account).
    LockedEmpty,
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// The password state of each managed account that exists.
    pub passwords: BTreeMap<String, Password>,
    /// Entries of `/etc/skel`, relative to it: what `useradd -m` copies into a new home.
    pub skel: Vec<PathBuf>,
    /// Whether each path a new home needs (the home and its parents) exists.
    pub exists: BTreeMap<PathBuf, bool>,
    /// Whether each shell the playbook names is a login shell that exists.
    pub shells: BTreeMap<String, ShellKind>,
    /// The shell `useradd` gives when none is named (`/etc/default/useradd`).
    pub default_shell: String,
    /// The shadow tools (`useradd`, `usermod`, `gpasswd`) are installed.
    pub tools: bool,
}

/// What a shell named in the playbook is on the managed system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellKind {
    /// It does not exist.
    Missing,
    /// It exists and refuses logins (`nologin`, `false`).
    NoLogin,
    /// It exists and gives a session.
    Login,
}

/// The guards this resource fires.
pub(crate) const GUARDS: [Guard; 4] = [
    Guard {
        name: guards::ROOT_SHELL,
        resource: "users",
        help: "a change of root's login shell",
    },
    Guard {
        name: guards::LOCK_KEYED,
        resource: "users",
        help: "locking the password of the last account that can log in with a key",
    },
    Guard {
        name: guards::SHELL_KEYED,
        resource: "users",
        help: "a shell that refuses logins for the last account that can log in with a key",
    },
    Guard {
        name: guards::GROUPS_KEYED,
        resource: "users",
        help: "group changes that make AllowGroups/DenyGroups refuse the last keyed account",
    },
];

impl Resource for Users {
    type Live = Live;
    const NAME: &'static str = "users";
    const GUARDS: &'static [Guard] = &GUARDS;

    fn merge(&mut self, later: Self) {
        for (name, user) in later.0 {
            self.0.remove(name.value.as_str());
            self.0.insert(name, user);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        self.0
            .iter()
            .flat_map(|(name, user)| validate_user(name, user))
            .collect()
    }

    /// The uid and primary gid of each account the plan creates (and the private groups it
    /// creates with them), after `groups` published its own.
    async fn publish(section: Option<&Self>, _: &Host, users: &UserDb, facts: &mut Facts) {
        for (name, user) in section.iter().flat_map(|s| &s.0) {
            if users.account(&name.value).is_some() {
                continue;
            }
            if let Some(planned) = plan_ids(name, user, users, &mut facts.accounts) {
                facts.accounts.users.insert(name.value.clone(), planned);
            }
        }
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        probe(self, cx)
    }

    fn diff(&self, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        diff::diff(self, live, cx)
    }
}

/// The ids a new account gets: the playbook's or `useradd`'s choice; its primary group's
/// gid, planning a private group when it needs one. `None` when the ranges are full or the
/// primary group is unknown (the diff says which).
fn plan_ids(
    name: &Name,
    user: &User,
    users: &UserDb,
    planned: &mut accounts::PlannedAccounts,
) -> Option<PlannedUser> {
    let taken = planned.uids_taken(users);
    let uid = match &user.uid {
        Some(uid) => uid.value.0,
        None => accounts::next_free(
            planned.ranges.users(user.system),
            user.system,
            &taken,
            |id| users.user_name(id).is_none(),
        )?,
    };
    let group = user
        .group
        .as_ref()
        .map_or(name.value.as_str(), |g| &g.value);
    if let Some(gid) = Accounts::new(users, planned).gid(group) {
        return Some(PlannedUser { uid, gid });
    }
    if user.group.is_some() {
        return None;
    }
    // A private group, with the uid as its gid when that is free (as useradd does).
    let gids = planned.gids_taken(users);
    let free = |id: u32| !gids.contains(&id) && users.group_name(id).is_none();
    let gid = if free(uid) {
        uid
    } else {
        accounts::next_free(planned.ranges.groups(user.system), user.system, &gids, free)?
    };
    planned.groups.insert(
        name.value.clone(),
        PlannedGroup {
            gid,
            system: user.system,
            private_of: Some(name.value.clone()),
        },
    );
    Some(PlannedUser { uid, gid })
}

fn validate_user(name: &Name, user: &User) -> Vec<Invalid> {
    let mut errors = Vec::new();
    if let Some(shell) = &user.shell {
        if let Err(why) = check_path(&shell.value) {
            errors.push(Invalid::new(shell.at, format!("shell {why}")));
        }
    }
    if let Some(home) = &user.home {
        if let Err(why) = check_path(&home.value) {
            errors.push(Invalid::new(home.at, format!("home {why}")));
        }
    }
    let mut seen = BTreeSet::new();
    for group in &user.groups {
        if !seen.insert(group.value.as_str()) {
            errors.push(Invalid::new(
                group.at,
                format!("group {group} is listed twice for user {name}"),
            ));
        }
    }
    errors
}

/// A path the shadow files can hold: absolute, normalised, no `:` or control characters.
fn check_path(path: &str) -> Result<(), String> {
    if path.contains(|c: char| c.is_control() || c == ':' || c == ',') {
        return Err(format!(
            "{path:?} contains a character /etc/passwd cannot hold (`:`, `,` or a control character)"
        ));
    }
    let p = Path::new(path);
    if !p.is_absolute()
        || path.contains("//")
        || (path.len() > 1 && path.ends_with('/'))
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!("{path:?} is not an absolute, normalised path"));
    }
    Ok(())
}

/// Where `useradd` keeps its defaults.
const USERADD_DEFAULTS: &str = "/etc/default/useradd";

fn probe(section: &Users, cx: &Context<'_>) -> Result<Live, Failure> {
    let host = cx.host;
    let read = |path: &str| {
        host.read_to_string(Path::new(path))
            .map_err(|e| Failure::Probe(format!("{path}: {e}")))
    };
    // Only a `locked:` needs the password field (and only whether it is locked).
    let shadow = if section.0.values().any(|u| u.locked.is_some()) {
        read("/etc/shadow")?.unwrap_or_default()
    } else {
        String::new()
    };
    let mut live = Live {
        default_shell: read(USERADD_DEFAULTS)?
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.trim().strip_prefix("SHELL=").map(str::to_owned))
            .unwrap_or_else(|| "/bin/sh".into()),
        tools: ["useradd", "usermod", "gpasswd"]
            .iter()
            .all(|t| host.which(t).is_some()),
        ..Live::default()
    };
    let stat = |path: &Path| {
        host.stat(path)
            .map_err(|e| Failure::Probe(format!("{}: {e}", path.display())))
    };
    let mut needs_skel = false;
    for (name, user) in &section.0 {
        if cx.users.account(&name.value).is_some() && user.locked.is_some() {
            live.passwords
                .insert(name.value.clone(), password_state(&shadow, &name.value));
        } else if user.makes_home() {
            needs_skel = true;
            let home = user.home_for(&name.value);
            for path in home.ancestors().filter(|p| *p != Path::new("/")) {
                live.exists
                    .insert(path.to_path_buf(), stat(path)?.is_some());
            }
        }
    }
    let named = section.0.values().filter_map(|u| u.shell.as_ref());
    for shell in named
        .map(|s| s.value.clone())
        .chain([live.default_shell.clone()])
    {
        let kind = match stat(Path::new(&shell))? {
            None => ShellKind::Missing,
            Some(s) if s.kind == Kind::Dir => ShellKind::Missing,
            Some(_) if shell.ends_with("/nologin") || shell.ends_with("/false") => {
                ShellKind::NoLogin
            }
            Some(_) => ShellKind::Login,
        };
        live.shells.insert(shell, kind);
    }
    if needs_skel {
        host.walk(Path::new("/etc/skel"), |e| {
            if e.depth > 0 {
                if let Ok(relative) = e.path.strip_prefix("/etc/skel") {
                    live.skel.push(relative.to_path_buf());
                }
            }
            Ok(())
        })
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(Failure::Probe(format!("/etc/skel: {e}"))),
        })?;
    }
    Ok(live)
}

/// The state of `name`'s password in the text of `/etc/shadow`.
fn password_state(shadow: &str, name: &str) -> Password {
    let field = shadow
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(1).map(|p| p.to_string()))
        .unwrap_or_default();
    match field.strip_prefix('!') {
        None => Password::Open,
        Some(rest) => {
            let rest = rest.trim_start_matches('!');
            if rest.is_empty() || rest == "*" {
                Password::LockedEmpty
            } else {
                Password::Locked
            }
        }
    }
}

#[cfg(test)]
mod tests;
