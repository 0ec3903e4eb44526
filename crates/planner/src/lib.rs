//! Playbooks in, plans out.
//!
//! The planner reads playbooks ([`load_files`]), probes the live system through
//! [`harden_host::Host`], and diffs the two into a [`harden_plan::Plan`] ([`plan`]). It never
//! changes the system: `harden plan` is this crate and a renderer.
//!
//! Each resource lives in one module under `resources/` with its playbook section type, its
//! validation (no I/O), its probe and its pure diff; adding one is one file and one line in
//! the registry (`resources/mod.rs`). Values keep the file, line and column they were written
//! at ([`Located`]), so an error found at plan time (an owner that does not exist on this
//! system) points at the playbook just as a YAML error does.

mod diagnostic;
mod early;
mod facts;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod guard;
mod located;
mod playbook;
mod resource;
pub mod resources;
#[cfg(feature = "schema")]
mod schema;
mod steps;
#[cfg(test)]
mod testing;

use std::collections::BTreeSet;

use harden_host::Host;
use harden_plan::Plan;

pub use diagnostic::{Diagnostics, Invalid, Source};
pub use located::{At, Located};
pub use playbook::{load, load_files, Loaded, BASELINE, BASELINE_NAME};
pub use resource::Refusal;
pub use resources::Playbook;

use resource::Failure;

/// Choices that change what a plan may contain.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Lockout guards the operator overrides (`--allow GUARD`).
    pub overrides: BTreeSet<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The playbooks ask for something this system makes impossible.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// A lockout guard refused; nothing may be changed. The plan of the resources that did
    /// not refuse is kept, so that `harden plan` can still show it.
    #[error("{}", refusals_text(.0))]
    Refused(Vec<Refusal>, Box<Plan>),
    /// An option names something that does not exist (a lockout guard for `--allow`).
    #[error("{0}")]
    Usage(String),
    /// The live state is one harden must not change until the operator fixes it.
    #[error("{resource}: {message}")]
    Unusable {
        /// The resource.
        resource: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The live state could not be read.
    #[error("cannot read the live state of {resource}: {message}")]
    Probe {
        /// The resource whose probe failed.
        resource: String,
        /// Why.
        message: String,
    },
}

fn refusals_text(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| {
            format!(
                "refused ({}): {}\n  to override, pass --allow {}",
                r.resource, r.message, r.guard
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Probes `host` and diffs it against the loaded playbooks.
pub async fn plan(host: &Host, loaded: &Loaded, options: &Options) -> Result<Plan, PlanError> {
    plan_with(host, loaded, options, Probing::Whole).await
}

/// Plans as [`plan`] does, only to tell whether anything would change: the plan when
/// nothing would, `None` when something would. It costs less when something would: a
/// tree's walk stops at the first entry that differs. A refusal keeps no plan.
pub async fn plan_if_converged(
    host: &Host,
    loaded: &Loaded,
    options: &Options,
) -> Result<Option<Plan>, PlanError> {
    match plan_with(host, loaded, options, Probing::UntilChange).await {
        Ok(plan) => Ok(plan.is_empty().then_some(plan)),
        // The plan kept may be cut short: keep none.
        Err(PlanError::Refused(refused, _)) => Err(PlanError::Refused(
            refused,
            Box::new(Plan::new(host.root().to_path_buf(), loaded.names())),
        )),
        Err(e) => Err(e),
    }
}

/// How far the probes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probing {
    /// Everything, for a plan to show or apply.
    Whole,
    /// Until they meet something that would change: the diff then has a change, but maybe
    /// not all of it.
    UntilChange,
}

async fn plan_with(
    host: &Host,
    loaded: &Loaded,
    options: &Options,
    probing: Probing,
) -> Result<Plan, PlanError> {
    guard::check_overrides(&options.overrides).map_err(PlanError::Usage)?;
    let users = host.users().map_err(|e| PlanError::Probe {
        resource: "users".into(),
        message: e.to_string(),
    })?;
    let mut plan = Plan::new(host.root().to_path_buf(), loaded.names());
    let mut invalid = Vec::new();
    let mut refused = Vec::new();
    let results =
        resources::plan_all(&loaded.playbook, host, &users, &options.overrides, probing).await;
    for (resource, result) in results {
        match result {
            Ok(diff) => {
                plan.changes.extend(diff.changes);
                plan.unchanged += diff.unchanged;
                plan.warnings.extend(diff.warnings);
            }
            Err(Failure::Invalid(errors)) => invalid.extend(errors),
            Err(Failure::Refused(refusal)) => refused.push(refusal),
            Err(Failure::Probe(message)) => {
                return Err(PlanError::Probe {
                    resource: resource.into(),
                    message,
                })
            }
            Err(Failure::Unusable(message)) => {
                return Err(PlanError::Unusable {
                    resource: resource.into(),
                    message,
                })
            }
        }
    }
    if !invalid.is_empty() {
        return Err(PlanError::Invalid(loaded.diagnostics(invalid)));
    }
    if !refused.is_empty() {
        return Err(PlanError::Refused(refused, Box::new(plan)));
    }
    Ok(plan)
}
