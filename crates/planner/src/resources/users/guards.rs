//! Lockout guards of `users`: a change to accounts must not take away the last account that
//! can log in over SSH with a key, and root's shell is never changed.
//!
//! "Can log in with a key" is the sshd resource's judgement of the live configuration,
//! published as a fact (`facts::KeyLogins`). A planned change costs an account that login
//! when it locks its password (sshd refuses a locked account under `UsePAM no`, and `sudo`
//! asks for the password the lock takes away), gives it a shell that refuses logins, or
//! changes its groups so that `AllowGroups`/`DenyGroups` refuse it. A guard fires only when
//! no keyed account would be left: locking one of two keyed admins is allowed.

use std::collections::BTreeMap;

use harden_plan::Warning;

use super::Users;
use crate::resource::{DiffContext, Failure, Refusal, Resource};

/// A change of root's login shell.
pub(super) const ROOT_SHELL: &str = "users-root-shell";
/// Locking the password of the last account with a key login.
pub(super) const LOCK_KEYED: &str = "users-lock-keyed";
/// A shell that refuses logins for the last account with a key login.
pub(super) const SHELL_KEYED: &str = "users-shell-keyed";
/// Group changes that make sshd's lists refuse the last account with a key login.
pub(super) const GROUPS_KEYED: &str = "users-groups-keyed";

/// What the plan does to one existing account, as far as the guards care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Planned {
    /// Login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its groups (primary and supplementary) after the plan.
    pub groups: Vec<String>,
    /// The plan changes its groups.
    pub groups_changed: bool,
    /// A new shell: before, after, and whether the new one gives a session.
    pub shell: Option<(String, String, bool)>,
    /// The plan locks its password.
    pub locks: bool,
}

impl Planned {
    /// An account the plan leaves as it is, so far.
    pub(super) fn new(name: &str, uid: u32, groups: Vec<String>) -> Self {
        Planned {
            name: name.to_owned(),
            uid,
            groups,
            groups_changed: false,
            shell: None,
            locks: false,
        }
    }

    /// A change of primary group from `before` to `after`.
    pub(super) fn swap_group(&mut self, before: &str, after: &str) {
        self.groups.retain(|g| g != before);
        self.groups.push(after.to_owned());
        self.groups_changed = true;
    }
}

/// Why `planned` would cost its account the key login, by guard.
fn losses(planned: &Planned, cx: &DiffContext<'_>) -> Vec<(&'static str, String)> {
    let keyed = &cx.live.sshd.key_logins;
    let mut out = Vec::new();
    if planned.locks {
        let why = if keyed.refuses_locked {
            "its password would be locked, and sshd (UsePAM no) refuses locked accounts"
        } else {
            "its password would be locked, and sudo asks for the password the lock takes away"
        };
        out.push((LOCK_KEYED, why.to_owned()));
    }
    if let Some((_, after, false)) = &planned.shell {
        out.push((
            SHELL_KEYED,
            format!("its shell would become {after}, which refuses logins"),
        ));
    }
    if planned.groups_changed {
        if let Some(why) = keyed.refused_by_lists(&planned.name, &planned.groups) {
            out.push((
                GROUPS_KEYED,
                format!("with groups {}: {why}", planned.groups.join(", ")),
            ));
        }
    }
    out
}

/// Checks the guards over every planned change; overridden ones become warnings.
pub(super) fn check(
    planned: &[Planned],
    cx: &DiffContext<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<(), Failure> {
    let mut fired: Vec<(&'static str, String)> = Vec::new();
    for p in planned.iter().filter(|p| p.uid == 0) {
        if let Some((before, after, _)) = &p.shell {
            fired.push((ROOT_SHELL, format!("the plan would change the login shell of {} (uid 0) from {before} to {after}: root's shell is what rescue logins and `su` use; leave it out of the playbook", p.name)));
        }
    }
    let keyed = &cx.live.sshd.key_logins.accounts;
    let mut lost: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut kept = 0;
    for (name, _) in keyed {
        let reasons = planned
            .iter()
            .find(|p| &p.name == name)
            .map(|p| losses(p, cx))
            .unwrap_or_default();
        if reasons.is_empty() {
            kept += 1;
        }
        for (guard, why) in reasons {
            lost.entry(guard)
                .or_default()
                .push(format!("{name}: {why}"));
        }
    }
    if !keyed.is_empty() && kept == 0 {
        for (guard, accounts) in lost {
            fired.push((guard, format!("no account could log in over SSH with a key any more ({}). Give another account a usable authorized key first, or leave this account as it is", accounts.join("; "))));
        }
    }
    let (overridden, refused): (Vec<_>, Vec<_>) =
        fired.into_iter().partition(|(g, _)| cx.overridden(g));
    for (guard, message) in overridden {
        warnings.push(Warning {
            resource: Users::NAME.into(),
            message: format!("lockout guard {guard} overridden by --allow {guard}: {message}"),
        });
    }
    let Some((guard, first)) = refused.first() else {
        return Ok(());
    };
    let mut message = first.clone();
    for (other, text) in &refused[1..] {
        message.push_str(&format!(
            "\nalso refused by {other}: {text} (override with --allow {other})"
        ));
    }
    Err(Failure::Refused(Refusal {
        resource: Users::NAME.into(),
        guard: (*guard).into(),
        message,
    }))
}
