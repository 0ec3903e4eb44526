//! What every resource provides, and what it is given.

use std::collections::BTreeSet;

use harden_host::{CommandError, Host, Output, UserDb};
use harden_plan::{Change, Command, Warning};
use serde::de::DeserializeOwned;

use crate::diagnostic::Invalid;
use crate::early::Early;
use crate::facts::{Facts, LiveFacts, Pending};
use crate::guard::Guard;

/// One section of a playbook and the code that brings the system to it.
///
/// The steps are separate so that the diff, where the logic is, stays pure: `probe` reads the
/// live system, `diff` compares without I/O and is unit-tested with hand-made live states.
pub(crate) trait Resource: DeserializeOwned + Sized {
    /// What the probe learns about the live system.
    type Live;

    /// Section name in the playbook.
    const NAME: &'static str;

    /// The lockout guards this resource's diff may fire.
    const GUARDS: &'static [Guard] = &[];

    /// Folds a later playbook's section into this one; later values win.
    fn merge(&mut self, later: Self);

    /// Checks values that need no I/O (beyond what deserialising already checked).
    fn validate(&self) -> Vec<Invalid>;

    /// Tells the other resources what they need to know (see [`crate::facts`]), before any
    /// probe, from the playbook and the files: nothing here waits for a daemon. Called for
    /// every registered resource; `section` is `None` when the playbook has none.
    async fn publish(section: Option<&Self>, host: &Host, users: &UserDb, facts: &mut Facts) {
        let _ = (section, host, users, facts);
    }

    /// Tells the other resources what a daemon's answers say, while the other resources
    /// publish and the probes that need none of it run. Called for every registered
    /// resource, in registry order (each may read the live facts before it); facts about the
    /// live system are due without a section too (sshd's port matters to a playbook that
    /// only manages the firewall).
    async fn publish_live(
        section: Option<&Self>,
        host: &Host,
        users: &UserDb,
        live: &mut LiveFacts,
    ) {
        let _ = (section, host, users, live);
    }

    /// Commands the probe will run whatever the facts say, so that the planner starts them
    /// beside the facts ([`crate::early`]); the probe takes their answers from
    /// [`Context::run`].
    fn early(&self, host: &Host) -> Vec<Command> {
        let _ = host;
        Vec::new()
    }

    /// Reads the live state this section is about.
    async fn probe(&self, cx: &Context<'_>) -> Result<Self::Live, Failure>;

    /// Compares desired and live state, without I/O: its context has no host.
    fn diff(&self, live: &Self::Live, cx: &DiffContext<'_>) -> Result<Diff, Failure>;
}

/// What a probe may consult: the managed system itself, and the facts.
pub(crate) struct Context<'a> {
    /// The managed system.
    pub host: &'a Host,
    /// Its users and groups.
    pub users: &'a UserDb,
    /// What the resources published about themselves for this plan.
    pub facts: &'a Facts,
    /// What they publish from the daemons' answers, while this probe runs: see [`Self::live`].
    pub pending: &'a Pending,
    /// The commands the probes asked to start early.
    pub early: &'a Early,
    /// Whether a probe may stop at the first thing that would change.
    pub probing: crate::Probing,
}

impl<'a> Context<'a> {
    /// Runs `command` on the managed system, or takes its answer when it was started early.
    pub async fn run(&self, command: &Command) -> Result<Output, CommandError> {
        self.early.run(self.host, command).await
    }

    /// The facts from the daemons' answers: a probe awaits them only where it needs them,
    /// after its own reading, so that the reading runs beside `sshd -T`.
    pub async fn live(&self) -> &'a LiveFacts {
        self.pending.get().await
    }
}

/// What a diff may consult. It holds no host, so a diff cannot read or change the system:
/// everything it needs came from the probe, and its unit tests need no file system.
pub(crate) struct DiffContext<'a> {
    /// The managed system's users and groups.
    pub users: &'a UserDb,
    /// What the resources published about themselves for this plan.
    pub facts: &'a Facts,
    /// What they published from the daemons' answers.
    pub live: &'a LiveFacts,
    /// Lockout guards the operator chose to override.
    pub overrides: &'a BTreeSet<String>,
}

impl DiffContext<'_> {
    /// True when the operator overrode `guard`.
    pub fn overridden(&self, guard: &str) -> bool {
        self.overrides.contains(guard)
    }
}

/// What one resource would change.
#[derive(Debug, Default)]
pub(crate) struct Diff {
    /// Changes, in order.
    pub changes: Vec<Change>,
    /// Items already as desired.
    pub unchanged: u64,
    /// Things to tell the operator.
    pub warnings: Vec<Warning>,
}

/// Why a resource could not be planned.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Playbook values the live system shows to be impossible (an unknown owner).
    Invalid(Vec<Invalid>),
    /// A lockout guard refused the plan.
    Refused(Refusal),
    /// The live state could not be read.
    Probe(String),
    /// The live state is one harden must not build on (a configuration the daemon itself
    /// rejects): the operator must fix it first.
    Unusable(String),
}

/// A plan refused because it could cut off remote administration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The resource whose guard fired.
    pub resource: String,
    /// The guard's name, as given to `--allow`.
    pub guard: String,
    /// What would happen and why.
    pub message: String,
}
