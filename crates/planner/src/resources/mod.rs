//! The registry of resources: one line each below, one module each beside this file.
//!
//! The macro turns the list into the [`Playbook`] type (one optional section per resource),
//! its merge and validation, and the planning loop that probes every present section
//! concurrently and then diffs them in registry order.

pub mod audit;
pub mod env_files;
pub mod fail2ban;
pub mod files;
pub mod groups;
pub mod kernel_modules;
pub mod limits;
pub mod login_defs;
pub mod packages;
pub mod pam;
pub mod services;
pub mod sshd;
pub mod sysctl;
pub mod ufw;
pub mod unattended_upgrades;
pub mod users;

use serde::Deserialize;

use std::collections::BTreeSet;

use harden_host::{Host, UserDb};

use crate::diagnostic::Invalid;
use crate::early::Early;
use crate::facts::{Facts, LiveFacts, Pending};
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

macro_rules! registry {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// A playbook: the desired state, one optional section per resource.
        #[derive(Debug, Default, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(deny_unknown_fields)]
        pub struct Playbook {
            $($(#[$doc])* pub $field: Option<$ty>,)*
        }

        impl Playbook {
            /// Every section a playbook may set, in registry order.
            pub const SECTIONS: &'static [&'static str] = &[$(<$ty as Resource>::NAME),*];

            /// Folds a later playbook into this one; later keys win.
            pub(crate) fn merge(&mut self, later: Playbook) {
                $(
                    match (&mut self.$field, later.$field) {
                        (Some(mine), Some(theirs)) => mine.merge(theirs),
                        (mine @ None, theirs) => *mine = theirs,
                        (Some(_), None) => {}
                    }
                )*
            }

            /// Checks every section without I/O.
            pub(crate) fn validate(&self) -> Vec<Invalid> {
                let mut errors = Vec::new();
                $(
                    if let Some(section) = &self.$field {
                        errors.extend(section.validate());
                    }
                )*
                errors
            }

            /// Names of the sections present.
            pub fn sections(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $(
                    if self.$field.is_some() {
                        names.push(<$ty as Resource>::NAME);
                    }
                )*
                names
            }
        }

        /// Every resource's facts, gathered in registry order (each may read those before it).
        pub(crate) async fn publish_all(playbook: &Playbook, host: &Host, users: &UserDb) -> Facts {
            let mut facts = Facts::default();
            $(<$ty as Resource>::publish(playbook.$field.as_ref(), host, users, &mut facts).await;)*
            facts
        }

        /// Every resource's facts from the daemons' answers, in registry order.
        pub(crate) async fn publish_live_all(
            playbook: &Playbook,
            host: &Host,
            users: &UserDb,
        ) -> LiveFacts {
            let mut live = LiveFacts::default();
            $(<$ty as Resource>::publish_live(playbook.$field.as_ref(), host, users, &mut live).await;)*
            live
        }

        /// Every resource's lockout guards, in registry order.
        pub(crate) fn guards() -> Vec<&'static crate::guard::Guard> {
            let mut all = Vec::new();
            $(all.extend(<$ty as Resource>::GUARDS.iter());)*
            all
        }

        /// Gathers every resource's facts in registry order, probes every present section
        /// concurrently, beside the facts from the daemons, then diffs each, in registry order.
        pub(crate) async fn plan_all(
            playbook: &Playbook,
            host: &Host,
            users: &UserDb,
            overrides: &BTreeSet<String>,
            probing: crate::Probing,
        ) -> Vec<(&'static str, Result<Diff, Failure>)> {
            let mut early = Vec::new();
            $(early.extend(playbook.$field.as_ref().map(|s| s.early(host)).unwrap_or_default());)*
            let early = &Early::start(host, early);
            let pending = &Pending::default();
            // Polled first, so that `sshd -T`, the answer the most probes wait for, starts first.
            let publishing = async { pending.set(publish_live_all(playbook, host, users).await) };
            let probing = async {
                // On the one thread, the early commands' tasks start their processes only
                // when this task waits: let them, before the reading below holds the thread.
                tokio::task::yield_now().await;
                let facts = publish_all(playbook, host, users).await;
                let cx = &Context { host, users, facts: &facts, pending, early, probing };
                let lives = tokio::join!($(probe(playbook.$field.as_ref(), cx),)*);
                (facts, lives)
            };
            let ((), (facts, ($($field,)*))) = tokio::join!(publishing, probing);
            let (facts, live) = (&facts, pending.get().await);
            let dx = &DiffContext { users, facts, live, overrides };
            let mut results = Vec::new();
            $(
                if let (Some(section), Some(live)) = (playbook.$field.as_ref(), $field) {
                    let diff = live.and_then(|live| section.diff(&live, dx));
                    results.push((<$ty as Resource>::NAME, diff));
                }
            )*
            results
        }
    };
}

async fn probe<R: Resource>(
    section: Option<&R>,
    cx: &Context<'_>,
) -> Option<Result<R::Live, Failure>> {
    match section {
        Some(section) => Some(section.probe(cx).await),
        None => None,
    }
}

registry! {
    /// Debian packages that must be installed or must not be (first: a package's files and
    /// accounts are there before the sections that set their modes or use them).
    packages: packages::Packages,
    /// Groups that must exist (before `users` and `files`, which may use them).
    groups: groups::Groups,
    /// Accounts that must exist, their shell, groups and password lock (before `files`).
    users: users::Users,
    /// Modes, owners and content of files.
    files: files::Files,
    /// Dotenv files: secrets and settings of applications.
    env_files: env_files::EnvFiles,
    /// sshd_config directives.
    sshd: sshd::Sshd,
    /// The ufw firewall.
    ufw: ufw::Ufw,
    /// fail2ban jails and filters.
    fail2ban: fail2ban::Fail2ban,
    /// Automatic security updates.
    unattended_upgrades: unattended_upgrades::UnattendedUpgrades,
    /// Kernel settings: harden's `sysctl.d` file and the running kernel.
    sysctl: sysctl::Sysctl,
    /// Kernel modules that must not load: harden's `modprobe.d` file.
    kernel_modules: kernel_modules::KernelModules,
    /// Password aging, umask and hashing in `/etc/login.defs`, edited in place.
    login_defs: login_defs::LoginDefs,
    /// Core dumps off: pam_limits, systemd-coredump and `fs.suid_dumpable`.
    limits: limits::Limits,
    /// systemd units that must be enabled, disabled or masked, running or stopped.
    services: services::Services,
    /// Password quality through PAM, checked by a real login before it is kept.
    pam: pam::Pam,
    /// auditd rules, merged by augenrules and loaded where auditd runs.
    audit: audit::Audit,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The registry's resources, by module name: each module is named as its section.
    const RESOURCES: &[&str] = super::Playbook::SECTIONS;

    fn sources(dir: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("read the sources").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source");
                out.push((path, text));
            }
        }
    }

    /// Resources stand alone: what one needs of another comes through the facts
    /// (`crate::facts`), never through a `use` of the other's module.
    #[test]
    fn no_resource_imports_another() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/resources");
        let mut all = Vec::new();
        sources(&dir, &mut all);
        let mut found = Vec::new();
        for (path, text) in &all {
            let relative = path.strip_prefix(&dir).expect("under resources");
            let owner = relative
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|c| c.trim_end_matches(".rs"))
                .unwrap_or_default();
            if owner == "mod" {
                continue;
            }
            if !RESOURCES.contains(&owner) {
                found.push(format!("{owner} is not named as a registered section"));
            }
            let depth = relative.components().count();
            let up = "super::".repeat(depth);
            for other in RESOURCES.iter().filter(|r| **r != owner) {
                for pattern in [format!("resources::{other}"), format!("{up}{other}")] {
                    if text.contains(&format!("{pattern}::"))
                        || text.contains(&format!("{pattern};"))
                    {
                        found.push(format!("{} uses {pattern}", relative.display()));
                    }
                }
            }
        }
        assert!(found.is_empty(), "resources import each other: {found:?}");
        assert!(all.len() > 20, "the sources were not found");
    }
}
