//! What one resource needs to know about another, gathered before any probe or diff.
//!
//! Resources never import each other. Instead each may publish facts
//! ([`crate::resource::Resource::publish`]) about its own section and the part of the live
//! system it understands: sshd its listening ports (from the one `sshd -T` of the plan), the
//! firewall its verdict on those ports, the files section the attributes it will set, the groups and users sections the accounts
//! they create (with the ids chosen for them) and sshd the accounts that can log in with a key. The
//! registry asks every registered resource, in registry order and whether the playbook has
//! its section or not, then hands the facts to every probe and diff. A fact is plain data
//! owned by no resource, so a new resource can consume it without touching its producer.

pub(crate) mod accounts;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// Everything resources tell each other about one plan.
#[derive(Clone, Default)]
pub(crate) struct Facts {
    /// sshd: how it listens now and after the plan.
    pub sshd: SshdFacts,
    /// The firewall: whether the playbook manages one, and its verdict on sshd's ports.
    pub firewall: FirewallFacts,
    /// Attributes the playbook's `files` section gives paths, for other resources that write
    /// the same files (so that the two agree and the re-plan is empty).
    pub file_attrs: BTreeMap<PathBuf, PlannedAttrs>,
    /// Paths the `files` section creates when they are missing (`content`, `directory`,
    /// `ensure`): they exist by the time a later resource's steps run.
    pub created_paths: BTreeSet<PathBuf>,
    /// Groups and users the plan creates, with their ids; the system's id ranges.
    pub accounts: accounts::PlannedAccounts,
    /// What boot sets through `sysctl.d`, for resources that write a kernel setting of their
    /// own (`limits`: `fs.suid_dumpable`) and must report a file that overrides it.
    pub sysctl_boot: Vec<SysctlEntry>,
}

/// One `key = value` line of a `sysctl.d` file, as the sysctl resource read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SysctlEntry {
    /// The key in dotted form (`net.ipv4.conf.all.rp_filter`); may be a glob.
    pub key: String,
    /// The value, as written.
    pub value: String,
    /// The file, by the path systemd-sysctl reads it under.
    pub file: String,
    /// Its line, from 1.
    pub line: u32,
}

impl Facts {
    /// The system's accounts and those this plan creates, for resolving owners by name.
    pub(crate) fn accounts<'a>(&'a self, users: &'a harden_host::UserDb) -> accounts::Accounts<'a> {
        accounts::Accounts::new(users, &self.accounts)
    }
}

/// What the sshd resource tells the others.
#[derive(Clone, Debug, Default)]
pub(crate) struct SshdFacts {
    /// `sshd -T` of the current configuration, run once per plan: its output, or why it
    /// failed. `None` when sshd is not installed (or under a root it cannot run in).
    pub dump: Option<Result<String, String>>,
    /// Ports sshd listens on now: from `sshd -T`, else its files, else 22.
    pub live_ports: Vec<u16>,
    /// Ports sshd listens on after the plan, when the playbook sets `Port`.
    pub planned_ports: Option<Vec<u16>>,
    /// Every TCP port sshd may listen on, now or after the plan (`ListenAddress` ports
    /// included), for the firewall's verdict.
    pub ports_of_interest: Vec<u16>,
    /// The accounts that can log in with a key now, for other resources' lockout guards.
    pub key_logins: KeyLogins,
}

/// Why sshd's AllowUsers/AllowGroups/DenyUsers/DenyGroups would refuse a user with these
/// groups, if they would.
pub(crate) type ListCheck = Arc<dyn Fn(&str, &[String]) -> Option<String> + Send + Sync>;

/// Accounts that can log in over SSH with a key under sshd's current configuration, as the
/// sshd resource's own guards judge it (login shell, usable authorized key, StrictModes,
/// Allow/Deny lists, PermitRootLogin), so that another resource can tell when a change of
/// its own would take the last one away.
#[derive(Clone, Default)]
pub(crate) struct KeyLogins {
    /// The accounts, by name and uid.
    pub accounts: Vec<(String, u32)>,
    /// sshd refuses an account whose password is locked (`UsePAM no`).
    pub refuses_locked: bool,
    /// sshd's Allow/Deny lists; `None` when sshd is not installed.
    pub lists: Option<ListCheck>,
}

impl KeyLogins {
    /// Why sshd would refuse `user` with `groups` by its lists, if it would.
    pub(crate) fn refused_by_lists(&self, user: &str, groups: &[String]) -> Option<String> {
        self.lists.as_ref().and_then(|check| check(user, groups))
    }
}

impl std::fmt::Debug for KeyLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogins")
            .field("accounts", &self.accounts)
            .field("refuses_locked", &self.refuses_locked)
            .field("lists", &self.lists.as_ref().map(|_| "<check>"))
            .finish()
    }
}

impl SshdFacts {
    /// The ports sshd will listen on when the run ends.
    pub fn final_ports(&self) -> &[u16] {
        match &self.planned_ports {
            Some(ports) if !ports.is_empty() => ports,
            _ => &self.live_ports,
        }
    }
}

/// What the firewall resource tells the others.
#[derive(Clone, Debug, Default)]
pub(crate) struct FirewallFacts {
    /// The playbook manages the firewall (it has a `ufw` section).
    pub managed: bool,
    /// For each of sshd's ports of interest: does the firewall let new TCP connections in
    /// when the run ends? `None` when no firewall harden understands is active.
    pub admits: BTreeMap<u16, Option<bool>>,
}

/// A mode change: the new mode from the current one (symbolic modes depend on it).
pub(crate) type ModeChange = Arc<dyn Fn(u32) -> u32 + Send + Sync>;

/// Attributes the `files` section sets on one path; `None` where it leaves one alone.
#[derive(Clone, Default)]
pub(crate) struct PlannedAttrs {
    /// The mode, from the current one.
    pub mode: Option<ModeChange>,
    /// The owner's uid.
    pub uid: Option<u32>,
    /// The group's gid.
    pub gid: Option<u32>,
}

impl std::fmt::Debug for PlannedAttrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedAttrs")
            .field("mode", &self.mode.as_ref().map(|_| "<change>"))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts")
            .field("sshd", &self.sshd)
            .field("firewall", &self.firewall)
            .field("file_attrs", &self.file_attrs)
            .field("created_paths", &self.created_paths)
            .field("accounts", &self.accounts)
            .field("sysctl_boot", &self.sysctl_boot)
            .finish()
    }
}
