//! Helpers for the resources' unit tests: the context a diff gets, built without a host.

use std::collections::BTreeSet;

use harden_host::{Host, UserDb};

use crate::facts::{Facts, LiveFacts};
use crate::resource::{Diff, DiffContext, Failure, Resource};
use crate::resources::{publish_all, publish_live_all, Playbook};

/// A root that does not exist: a diff under test can reach no file, and every fact about the
/// live system comes out empty (no sshd, no active firewall).
pub(crate) const NO_ROOT: &str = "/nonexistent-harden-test-root";

/// The facts the registry would gather for `playbook` on a host with nothing installed.
pub(crate) fn facts(playbook: &Playbook, users: &UserDb) -> (Facts, LiveFacts) {
    let host = Host::new(NO_ROOT);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a test runtime")
        .block_on(async {
            let facts = publish_all(playbook, &host, users).await;
            let live = publish_live_all(playbook, &host, users).await;
            (facts, live)
        })
}

/// No lockout guard overridden.
pub(crate) fn no_overrides() -> BTreeSet<String> {
    BTreeSet::new()
}

/// A user database with root alone.
pub(crate) fn root_only() -> UserDb {
    UserDb::parse(false, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n")
}

/// Loads one playbook text as `pb.yaml`; the error is the diagnostics as printed.
pub(crate) fn parse(yaml: &str) -> Result<Playbook, String> {
    let source = crate::diagnostic::Source {
        name: "pb.yaml".into(),
        text: yaml.into(),
    };
    crate::playbook::load(vec![source])
        .map(|l| l.playbook)
        .map_err(|d| d.to_string())
}

/// The diff of the section `section` takes out of `yaml`, against `live`, for `users`, with
/// the guards in `overrides` overridden.
pub(crate) fn diff<R: Resource>(
    yaml: &str,
    section: impl FnOnce(Playbook) -> Option<R>,
    live: &R::Live,
    users: &UserDb,
    overrides: &[&str],
) -> Result<Diff, Failure> {
    let playbook = parse(yaml).expect("playbook");
    let (facts, live_facts) = facts(&playbook, users);
    let overrides = overrides.iter().map(|s| (*s).to_owned()).collect();
    let cx = DiffContext {
        users,
        facts: &facts,
        live: &live_facts,
        overrides: &overrides,
    };
    section(playbook).expect("the section").diff(live, &cx)
}
