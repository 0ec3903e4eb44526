//! Helpers for the resources' unit tests: the context a diff gets, built without a host.

use std::collections::BTreeSet;

use harden_host::{Host, UserDb};

use crate::facts::Facts;
use crate::resources::{publish_all, Playbook};

/// A root that does not exist: a diff under test can reach no file, and every fact about the
/// live system comes out empty (no sshd, no active firewall).
pub(crate) const NO_ROOT: &str = "/nonexistent-harden-test-root";

/// The facts the registry would gather for `playbook` on a host with nothing installed.
pub(crate) fn facts(playbook: &Playbook, users: &UserDb) -> Facts {
    let host = Host::new(NO_ROOT);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a test runtime")
        .block_on(publish_all(playbook, &host, users))
}

/// No lockout guard overridden.
pub(crate) fn no_overrides() -> BTreeSet<String> {
    BTreeSet::new()
}
