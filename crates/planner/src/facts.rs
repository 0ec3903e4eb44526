//! What one resource needs to know about another, gathered before any probe or beside them.
//!
//! Resources never import each other. Instead each may publish facts
//! ([`crate::resource::Resource::publish`]) about its own section and the part of the live
//! system it understands: the files section the attributes it will set, the groups and users
//! sections the accounts they create (with the ids chosen for them), sysctl what boot sets.
//! Those are in before any probe starts. Facts that need a daemon's answer are
//! [`LiveFacts`] ([`crate::resource::Resource::publish_live`]): sshd its listening ports and
//! the accounts that can log in with a key (from the one `sshd -T` of the plan), the firewall
//! its verdict on those ports. They are gathered while the probes run: a probe that needs
//! them waits for them ([`Pending`]), and the probes that do not run beside `sshd -T`.
//! The registry asks every registered resource, in registry order and whether the playbook
//! has its section or not, then hands the facts to every probe and diff. A fact is plain data
//! owned by no resource, so a new resource can consume it without touching its producer.

pub(crate) mod accounts;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

/// What resources tell each other about one plan from the playbook and the files alone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
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

/// What resources tell each other from a daemon's answers (`sshd -T`).
#[derive(Clone, Debug, Default)]
pub(crate) struct LiveFacts {
    /// sshd: how it listens now and after the plan.
    pub sshd: SshdFacts,
    /// The firewall: whether the playbook manages one, and its verdict on sshd's ports.
    pub firewall: FirewallFacts,
}

/// The live facts of one plan while they are gathered: a probe that needs them waits in
/// [`Pending::get`] until [`Pending::set`].
#[derive(Default)]
pub(crate) struct Pending {
    facts: OnceLock<LiveFacts>,
    ready: Notify,
}

impl Pending {
    /// Hands the facts to every probe waiting for them, and to those that ask later.
    pub(crate) fn set(&self, facts: LiveFacts) {
        let _ = self.facts.set(facts);
        self.ready.notify_waiters();
    }

    /// The facts, once they are set.
    pub(crate) async fn get(&self) -> &LiveFacts {
        loop {
            // Registered before the check, so that a `set` between the two still wakes it.
            let ready = self.ready.notified();
            if let Some(facts) = self.facts.get() {
                return facts;
            }
            ready.await;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe waiting for the live facts wakes when they are set, one asking later has
    /// them at once, and neither sees them before.
    #[test]
    fn pending_facts_wake_the_probes_waiting_for_them() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let pending = Pending::default();
        let order = std::sync::Mutex::new(Vec::new());
        runtime.block_on(async {
            let waiting = async {
                let facts = pending.get().await;
                order.lock().expect("order").push("waiter");
                facts.sshd.live_ports.clone()
            };
            let publishing = async {
                tokio::task::yield_now().await;
                order.lock().expect("order").push("set");
                pending.set(LiveFacts {
                    sshd: SshdFacts {
                        live_ports: vec![2222],
                        ..SshdFacts::default()
                    },
                    ..LiveFacts::default()
                });
            };
            let (ports, ()) = tokio::join!(waiting, publishing);
            assert_eq!(ports, [2222]);
            assert_eq!(pending.get().await.sshd.live_ports, [2222]);
        });
        assert_eq!(*order.lock().expect("order"), ["set", "waiter"]);
    }
}
