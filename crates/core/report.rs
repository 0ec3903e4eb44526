//! The JSON documents `harden --format json` prints, one per run, as types.
//!
//! Every command's output is one [`Report`]: the schema version and a `status` that says
//! which of the shapes below follows. The types are the contract: `report.schema.json` is
//! generated from them, and the end-to-end tests check real outputs against it.

use harden_plan::Plan;
use serde::Serialize;

/// One run's JSON document.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Report<'a> {
    /// Always [`harden_plan::SCHEMA_VERSION`].
    pub schema: u32,
    /// What happened, and what it carries.
    #[serde(flatten)]
    pub body: Body<'a>,
}

impl<'a> Report<'a> {
    /// A document with the current schema version.
    pub fn new(body: Body<'a>) -> Self {
        Report {
            schema: harden_plan::SCHEMA_VERSION,
            body,
        }
    }

    /// The document as one line of JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"schema":{},"status":"error","error":"cannot render the report: {e}"}}"#,
                harden_plan::SCHEMA_VERSION
            )
        })
    }
}

/// The shapes of a document, by `status`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Body<'a> {
    /// `validate`: the playbooks are valid.
    Valid {
        /// Playbooks, in merge order.
        playbooks: Vec<String>,
        /// Sections present after the merge.
        sections: Vec<&'static str>,
    },
    /// A playbook is invalid; nothing was probed or changed.
    Invalid {
        /// Every error found.
        errors: Vec<InvalidValue>,
    },
    /// A lockout guard refused the plan; nothing was changed.
    Refused {
        /// The refusal, naming the guard and its override.
        error: String,
        /// `plan`: the plan of everything that was not refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<&'a Plan>,
    },
    /// `apply`: nothing to change.
    Unchanged {
        /// Always false.
        changed: bool,
        /// The (empty) plan.
        plan: &'a Plan,
    },
    /// `apply`: the plan was applied and verified.
    Changed {
        /// Always true.
        changed: bool,
        /// The snapshot `harden rollback` restores.
        snapshot: String,
        /// With `--confirm-within`: the rollback armed unless `harden confirm` runs.
        #[serde(skip_serializing_if = "Option::is_none")]
        confirmation: Option<Confirmation>,
        /// A saved plan whose playbooks are gone or changed: why the verifying re-plan
        /// was skipped.
        #[serde(skip_serializing_if = "Option::is_none")]
        verification_skipped: Option<String>,
        /// The plan applied.
        plan: &'a Plan,
    },
    /// `apply FILE`: the saved plan was refused (exit 4); nothing was changed.
    Stale {
        /// Why, in one line.
        error: String,
        /// Each precondition that no longer holds: a changed path or unit, another
        /// machine, another harden version.
        changed: Vec<String>,
    },
    /// `apply`: an earlier apply waits for `harden confirm` (exit 5); nothing was changed.
    Unconfirmed {
        /// Why, in one line.
        error: String,
        /// The snapshot waiting.
        snapshot: String,
        /// Its confirmation.
        confirmation: Confirmation,
    },
    /// `confirm`: the pending apply was confirmed and its rollback disarmed.
    Confirmed {
        /// Its snapshot.
        snapshot: String,
        /// The confirmation, now `confirmed`.
        confirmation: Confirmation,
    },
    /// `log`: the history of applies and rollbacks, oldest first.
    Log {
        /// One entry per snapshot kept.
        entries: Vec<LogEntry>,
    },
    /// `apply`: a step failed and the run was rolled back.
    Failed {
        /// Always false.
        changed: bool,
        /// What failed.
        error: String,
        /// The snapshot restored.
        snapshot: String,
        /// How the rollback went.
        rollback: Rollback,
        /// The plan that failed.
        plan: &'a Plan,
    },
    /// `rollback`: the snapshot was restored completely.
    Restored {
        /// The snapshot.
        snapshot: String,
        /// Empty.
        failures: Vec<String>,
    },
    /// `rollback`: some paths or services could not be restored.
    Incomplete {
        /// The snapshot.
        snapshot: String,
        /// What could not be restored, and why.
        failures: Vec<String>,
    },
    /// `snapshots`: the snapshots kept, oldest first.
    Snapshots {
        /// Each snapshot.
        snapshots: Vec<Snapshot>,
    },
    /// Anything else that stopped the run.
    Error {
        /// What went wrong.
        error: String,
    },
}

/// One invalid value, located in its playbook.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct InvalidValue {
    /// The playbook.
    pub file: Option<String>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

/// How a failed apply's rollback went.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Rollback {
    /// True when everything harden changed was restored.
    pub complete: bool,
    /// What could not be restored.
    pub failures: Vec<String>,
    /// Paths someone else changed meanwhile, left as found.
    pub foreign: Vec<String>,
}

/// One snapshot in `harden snapshots`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Snapshot {
    /// Its id.
    pub id: String,
    /// When it was taken (RFC 3339).
    pub created: String,
    /// `apply` or `rollback`.
    pub purpose: String,
    /// The playbooks of its plan.
    pub playbooks: Vec<String>,
    /// Number of changes in its plan.
    pub changes: usize,
    /// Number of paths it saved.
    pub paths: usize,
    /// When it was applied with `--confirm-within`: where the confirmation stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

/// A confirm-or-revert: an apply rolled back at `deadline` unless confirmed.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Confirmation {
    /// `pending`, `confirmed` or `rolled_back`.
    pub state: String,
    /// When the rollback fires unless confirmed (RFC 3339).
    pub deadline: String,
    /// `systemd timer` or `detached process`.
    pub armed_by: String,
    /// The transient unit (`harden-confirm-<id>`), for a systemd timer.
    pub unit: Option<String>,
    /// When it was confirmed or rolled back (RFC 3339).
    pub settled: Option<String>,
    /// Why it was rolled back.
    pub reason: Option<String>,
}

impl From<&harden_executor::Confirmation> for Confirmation {
    fn from(c: &harden_executor::Confirmation) -> Self {
        Confirmation {
            state: c.state.word().into(),
            deadline: c.deadline.to_string(),
            armed_by: c.armed_by.clone(),
            unit: c.unit.clone(),
            settled: c.settled.map(|t| t.to_string()),
            reason: c.reason.clone(),
        }
    }
}

/// One run in `harden log`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LogEntry {
    /// Its snapshot's id.
    pub id: String,
    /// When it started (RFC 3339).
    pub time: String,
    /// `apply` or `rollback`.
    pub purpose: String,
    /// Its playbooks (`rollback to <id>` for a rollback).
    pub playbooks: Vec<String>,
    /// What it changed (`resource target`) or restored (paths and units).
    pub changed: Vec<String>,
    /// `applied`, `failed, rolled back`, `rolled back`, `rollback incomplete`,
    /// `interrupted, rolled back`, or `unknown` (killed, or made by an older harden).
    pub result: String,
    /// Its confirm-or-revert, if it had one.
    pub confirmation: Option<Confirmation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `report.schema.json` documents every `--format json` output except the plan itself;
    /// `UPDATE_SCHEMA=1 cargo test -p harden report` rewrites it.
    #[test]
    fn the_committed_report_schema_is_current() {
        let schema = schemars::schema_for!(Report<'static>);
        let text = serde_json::to_string_pretty(&schema).expect("schema") + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/core/report.schema.json"
        );
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            #[allow(clippy::disallowed_methods)] // a development file, not the managed system
            std::fs::write(path, &text).expect("write schema");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == text,
            "report.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p harden report"
        );
    }

    #[test]
    fn a_document_names_its_status_beside_the_schema_version() {
        let line = Report::new(Body::Error {
            error: "boom".into(),
        })
        .to_line();
        assert_eq!(
            line,
            format!(
                r#"{{"schema":{},"status":"error","error":"boom"}}"#,
                harden_plan::SCHEMA_VERSION
            )
        );
    }
}
