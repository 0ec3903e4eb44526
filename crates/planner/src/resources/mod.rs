//! The registry of resources: one line each below, one module each beside this file.
//!
//! The macro turns the list into the [`Playbook`] type (one optional section per resource),
//! its merge and validation, and the planning loop that probes every present section
//! concurrently and then diffs them in registry order.

pub mod fail2ban;
pub mod files;
pub mod sshd;
pub mod ufw;
pub mod unattended_upgrades;

use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::resource::{Context, Diff, Failure, Resource};

macro_rules! registry {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// A playbook: the desired state, one optional section per resource.
        #[derive(Debug, Default, Deserialize)]
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

        /// Probes every present section concurrently, then diffs each, in registry order.
        pub(crate) async fn plan_all(cx: &Context<'_>) -> Vec<(&'static str, Result<Diff, Failure>)> {
            let ($($field,)*) = tokio::join!($(probe(cx.playbook.$field.as_ref(), cx),)*);
            let mut results = Vec::new();
            $(
                if let (Some(section), Some(live)) = (cx.playbook.$field.as_ref(), $field) {
                    let diff = live.and_then(|live| section.diff(&live, cx));
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
    /// Modes, owners and content of files.
    files: files::Files,
    /// sshd_config directives.
    sshd: sshd::Sshd,
    /// The ufw firewall.
    ufw: ufw::Ufw,
    /// fail2ban jails and filters.
    fail2ban: fail2ban::Fail2ban,
    /// Automatic security updates.
    unattended_upgrades: unattended_upgrades::UnattendedUpgrades,
}
