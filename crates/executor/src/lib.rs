//! Carries out a plan: lock, snapshot, journal, steps, rollback.
//!
//! The executor knows nothing about sshd or ufw; it understands only the primitive
//! [`harden_plan::Step`]s. Its one design rule is that the system is never left between
//! two states: before the first change it takes a snapshot of every path the plan touches
//! and writes a journal naming it; any failed step restores the snapshot; a run killed
//! half-way leaves the journal behind, and the next run restores from it before doing
//! anything else ([`Executor::recover`]). Files are only ever replaced atomically
//! ([`fs::write_atomic`]), so each one is wholly old or wholly new at every instant.

mod confirm;
mod env;
pub mod fs;
mod lock;
mod precondition;
mod snapshot;
mod tree;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use harden_host::Host;
use harden_plan::{Batch, Change, Command, Enablement, Plan, Step, UnitState, UnitStep};
use serde::{Deserialize, Serialize};
use snapshot::Request;

pub use confirm::{unit_name, Confirmation, State as ConfirmState};
pub use lock::Lock;
pub use precondition::{sha256_hex, Found, PathState, Preconditions, TreeState};
pub use snapshot::{Entry, Manifest, Outcome, Reactivation, Saved, SavedTree, SavedUnit, KEEP};
pub use tree::TreeProgress;

/// Where harden keeps its state on the managed system.
pub const STATE_DIR: &str = "/var/lib/harden";

/// Why the executor stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// Another run holds the lock.
    #[error("another harden run holds the lock ({STATE_DIR}/lock) and did not finish within {} s", .0.as_secs())]
    Busy(Duration),
    /// No snapshot by that id.
    #[error("no snapshot {0:?}; `harden snapshots` lists them")]
    NoSnapshot(String),
    /// harden's own state is unreadable.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// Something the executor will not do.
    #[error("{0}")]
    Refused(String),
}

/// What happened during execution, for progress output. Libraries do not print.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step is about to run.
    Step {
        /// Its number, from 1.
        number: usize,
        /// How many steps there are.
        total: usize,
        /// The step.
        step: &'a Step,
    },
    /// A command ran.
    Ran {
        /// It.
        command: &'a Command,
        /// Its exit code.
        code: Option<i32>,
    },
    /// A tree step is under way (reported every few thousand entries, and at its end).
    Tree(TreeProgress<'a>),
    /// A command was skipped: a reload under `--root`, a unit's run state where systemd
    /// does not run.
    Skipped {
        /// The command not run.
        command: &'a Command,
    },
}

/// A step that failed.
#[derive(Debug, thiserror::Error)]
#[error("step {number} failed: {message}")]
pub struct StepFailed {
    /// Its number, from 1.
    pub number: usize,
    /// What failed.
    pub message: String,
}

/// The journal: present exactly while a run may have left the system half-changed.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    snapshot: String,
    pid: u32,
    started: jiff::Timestamp,
    /// Changes of the plan that were activated (a command, reload or unit step started),
    /// so that recovery after a crash reloads only services that saw a new configuration.
    /// `None` in journals of harden 0.1: then every service is reloaded (after its check).
    #[serde(default)]
    activated: Option<BTreeSet<usize>>,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The snapshot restored.
    pub snapshot: String,
    /// Paths that could not be restored, with why. Empty when the restore is complete.
    pub failures: Vec<String>,
    /// Paths someone else changed while harden ran (a symlink planted, a parent swapped),
    /// left as found, with what was found. Not failures: harden restored everything it
    /// changed itself.
    pub foreign: Vec<String>,
}

impl Restored {
    /// True when every path and every reload came back.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Carries out plans on one managed system.
#[derive(Clone, Debug)]
pub struct Executor {
    host: Host,
    state: PathBuf,
}

impl Executor {
    /// An executor for `host`, keeping its state in [`STATE_DIR`] inside it.
    pub fn new(host: Host) -> Self {
        Executor {
            host,
            state: PathBuf::from(STATE_DIR),
        }
    }

    fn journal_path(&self) -> PathBuf {
        self.state.join("journal.json")
    }

    /// Takes the run lock, waiting up to `wait` for a run in progress.
    pub fn lock(&self, wait: Duration) -> Result<Lock, Error> {
        lock::acquire(&self.host, &self.state, wait)
    }

    /// The snapshot an interrupted run left to restore from, if any. Reads only.
    pub fn interrupted(&self) -> Result<Option<String>, Error> {
        Ok(self.journal()?.map(|j| j.snapshot))
    }

    fn journal(&self) -> Result<Option<Journal>, Error> {
        let Some(bytes) = self.host.read(&self.journal_path()).map_err(Error::Io)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", self.journal_path().display())))
    }

    /// Finishes an interrupted run by restoring the snapshot it took, and clears what a
    /// run killed mid-write leaves behind (a snapshot without manifest, temporary files).
    /// Needs the lock.
    pub async fn recover(
        &self,
        _lock: &Lock,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Option<Restored>, Error> {
        fs::remove_leftover_temp(&self.host, &self.journal_path()).map_err(Error::Io)?;
        snapshot::remove_incomplete(&self.host, &self.state)?;
        let Some(journal) = self.journal()? else {
            return Ok(None);
        };
        let manifest = snapshot::load(&self.host, &self.state, &journal.snapshot)?;
        let restored = self
            .restore(&manifest, journal.activated.as_ref(), on)
            .await;
        audit_restore(&manifest, &restored, "recovery of an interrupted run");
        let result = format!("interrupted, {}", restore_result(&restored));
        self.record_outcome(&manifest.id, &result, restored_targets(&manifest))?;
        if restored.complete() {
            fs::remove(&self.host, &self.journal_path()).map_err(Error::Io)?;
        }
        Ok(Some(restored))
    }

    /// Snapshots everything `plan` touches and opens the journal. Needs the lock.
    pub async fn begin<'a>(
        &'a self,
        _lock: &'a Lock,
        plan: &'a Plan,
    ) -> Result<Transaction<'a>, Error> {
        let manifest = snapshot::take(&self.host, &self.state, Request::for_plan(plan)).await?;
        let activated = BTreeSet::new();
        self.write_journal(&manifest, Some(&activated))?;
        tracing::info!(
            target: AUDIT,
            snapshot = %manifest.id,
            playbooks = %plan.playbooks.join(", "),
            changes = plan.changes.len(),
            "apply started"
        );
        Ok(Transaction {
            executor: self,
            plan,
            manifest,
            activated,
        })
    }

    fn write_journal(
        &self,
        manifest: &Manifest,
        activated: Option<&BTreeSet<usize>>,
    ) -> Result<(), Error> {
        let journal = Journal {
            snapshot: manifest.id.clone(),
            pid: std::process::id(),
            started: manifest.created,
            activated: activated.cloned(),
        };
        let json = serde_json::to_vec(&journal).map_err(|e| Error::Corrupt(e.to_string()))?;
        fs::write_private(&self.host, &self.journal_path(), &json).map_err(Error::Io)
    }

    fn close_journal(&self) -> Result<(), Error> {
        fs::remove(&self.host, &self.journal_path()).map_err(Error::Io)
    }

    /// The state of every path and unit `plan` touches (the same ones its snapshot would
    /// save), for a saved plan to check before it is applied. Reads only.
    pub async fn preconditions(&self, plan: &Plan) -> Result<Preconditions, Error> {
        precondition::record(&self.host, plan).await
    }

    /// How the system now differs from `recorded`, one line per changed path or unit;
    /// empty when a saved plan still applies exactly. Reads only.
    pub async fn stale(&self, recorded: &Preconditions) -> Result<Vec<String>, Error> {
        precondition::stale(&self.host, recorded).await
    }

    /// Every complete snapshot, oldest first. Reads only.
    pub fn snapshots(&self) -> Result<Vec<Manifest>, Error> {
        snapshot::list(&self.host, &self.state)
    }

    /// Restores snapshot `id`; without one, the newest taken by an apply (so repeating
    /// `harden rollback` is idempotent). The current state of the same paths is snapshotted
    /// first, so a rollback can itself be undone by naming that snapshot. Needs the lock.
    pub async fn rollback(
        &self,
        _lock: &Lock,
        id: Option<&str>,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Restored, Error> {
        let target = match id {
            Some(id) => snapshot::load(&self.host, &self.state, id)?,
            None => self
                .snapshots()?
                .into_iter()
                .rev()
                .find(|m| m.purpose == "apply")
                .ok_or_else(|| Error::NoSnapshot("(no apply has taken one yet)".into()))?,
        };
        let before = snapshot::take(
            &self.host,
            &self.state,
            Request::to_undo(&target, &self.state),
        )
        .await?;
        self.write_journal(&before, None)?;
        let restored = self.restore(&target, None, on).await;
        audit_restore(&target, &restored, "rollback");
        self.record_outcome(
            &before.id,
            restore_result(&restored),
            restored_targets(&target),
        )?;
        if restored.complete() {
            self.close_journal()?;
            snapshot::prune(&self.host, &self.state, Some(&target.id))?;
        }
        self.settle_confirmation(&target.id, "rolled back with `harden rollback`")
            .await?;
        Ok(restored)
    }

    /// Rolls snapshot `id` back because its confirmation ran out, if it is still pending:
    /// `None` when it was confirmed (or rolled back) meanwhile. Needs the lock.
    pub async fn rollback_unconfirmed(
        &self,
        lock: &Lock,
        id: &str,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Option<Restored>, Error> {
        let Some(confirmation) = confirm::read(&self.host, &self.state, id)? else {
            return Err(Error::Refused(format!(
                "snapshot {id} was not applied with --confirm-within"
            )));
        };
        if confirmation.state != ConfirmState::Pending {
            tracing::info!(
                target: AUDIT,
                snapshot = %id,
                result = confirmation.state.word(),
                "confirmation deadline passed; nothing to roll back"
            );
            return Ok(None);
        }
        let reason = format!(
            "not confirmed by its deadline {}",
            confirmation.deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        tracing::warn!(target: AUDIT, snapshot = %id, "rolling back: {reason}");
        let restored = self.rollback(lock, Some(id), on).await?;
        let settled = Confirmation {
            state: ConfirmState::RolledBack,
            settled: Some(jiff::Timestamp::now()),
            reason: Some(reason),
            ..confirmation
        };
        confirm::write(&self.host, &self.state, id, &settled)?;
        Ok(Some(restored))
    }

    /// Arms the rollback of snapshot `id` in `within` unless `harden confirm` runs first;
    /// `program` is harden itself, which the timer runs. Needs the lock (so the rollback,
    /// which takes it too, cannot start before the confirmation is recorded).
    pub async fn arm(
        &self,
        _lock: &Lock,
        id: &str,
        within: Duration,
        program: &std::path::Path,
    ) -> Result<Confirmation, Error> {
        if !self.host.is_live() {
            return Err(Error::Refused(
                "--confirm-within needs the live system, not --root".into(),
            ));
        }
        let confirmation = confirm::arm(&self.host, &self.state, id, within, program).await?;
        tracing::info!(
            target: AUDIT,
            snapshot = %id,
            result = "pending",
            "rollback armed ({}) for {} unless confirmed",
            confirmation.armed_by,
            confirmation.deadline
        );
        Ok(confirmation)
    }

    /// The apply waiting for its confirmation, if any: its snapshot id and confirmation.
    pub fn pending(&self) -> Result<Option<(String, Confirmation)>, Error> {
        for manifest in self.snapshots()?.into_iter().rev() {
            if let Some(c) = confirm::read(&self.host, &self.state, &manifest.id)? {
                if c.state == ConfirmState::Pending {
                    return Ok(Some((manifest.id, c)));
                }
            }
        }
        Ok(None)
    }

    /// How the run that took snapshot `id` ended, when it did. Reads only.
    pub fn outcome(&self, id: &str) -> Result<Option<Outcome>, Error> {
        snapshot::read_outcome(&self.host, &self.state, id)
    }

    fn record_outcome(&self, id: &str, result: &str, targets: Vec<String>) -> Result<(), Error> {
        let outcome = Outcome {
            result: result.into(),
            finished: jiff::Timestamp::now(),
            targets,
        };
        snapshot::write_outcome(&self.host, &self.state, id, &outcome)
    }

    /// The confirmation of snapshot `id`, when it was applied with one. Reads only.
    pub fn confirmation(&self, id: &str) -> Result<Option<Confirmation>, Error> {
        confirm::read(&self.host, &self.state, id)
    }

    /// Confirms the pending apply: stops its timer and keeps the change. `None` when no
    /// apply is pending. Needs the lock.
    pub async fn confirm(&self, _lock: &Lock) -> Result<Option<(String, Confirmation)>, Error> {
        let Some((id, pending)) = self.pending()? else {
            return Ok(None);
        };
        let confirmed = Confirmation {
            state: ConfirmState::Confirmed,
            settled: Some(jiff::Timestamp::now()),
            ..pending
        };
        confirm::write(&self.host, &self.state, &id, &confirmed)?;
        confirm::disarm(&self.host, &confirmed).await;
        tracing::info!(target: AUDIT, snapshot = %id, result = "confirmed", "apply confirmed");
        Ok(Some((id, confirmed)))
    }

    /// Marks a pending confirmation of `id` as rolled back and stops its timer, after a
    /// rollback of that snapshot by hand.
    async fn settle_confirmation(&self, id: &str, reason: &str) -> Result<(), Error> {
        let Some(c) = confirm::read(&self.host, &self.state, id)? else {
            return Ok(());
        };
        if c.state != ConfirmState::Pending {
            return Ok(());
        }
        let settled = Confirmation {
            state: ConfirmState::RolledBack,
            settled: Some(jiff::Timestamp::now()),
            reason: Some(reason.into()),
            ..c
        };
        confirm::write(&self.host, &self.state, id, &settled)?;
        confirm::disarm(&self.host, &settled).await;
        Ok(())
    }

    /// Restores `manifest`: files, then units, then the reloads of the changes in
    /// `activated` (all of them when `None`), each only after its checks accept the restored
    /// configuration.
    async fn restore(
        &self,
        manifest: &Manifest,
        activated: Option<&BTreeSet<usize>>,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Restored {
        let paths = snapshot::restore(&self.host, &self.state, manifest);
        let mut failures = paths.failures;
        for saved in &manifest.units {
            failures.extend(self.restore_unit(saved, on).await);
        }
        for reactivation in &manifest.reactivate {
            if activated.is_some_and(|a| !a.contains(&reactivation.change)) {
                continue;
            }
            failures.extend(self.reactivate(reactivation, on).await);
        }
        for command in &manifest.after_restore {
            failures.extend(self.run_restoring(command, on).await.err());
        }
        Restored {
            snapshot: manifest.id.clone(),
            failures,
            foreign: paths.foreign,
        }
    }

    /// Brings one unit back to its saved enablement and run state through systemctl.
    async fn restore_unit(&self, saved: &SavedUnit, on: &mut dyn FnMut(Event<'_>)) -> Vec<String> {
        let Some(now) = self.host.unit_state(&saved.unit).await else {
            return vec![format!(
                "{}: systemctl is gone; cannot restore the unit's state",
                saved.unit
            )];
        };
        let commands = unit_restore(&saved.unit, &saved.state, &now, self.host.has_systemd());
        let mut failures = Vec::new();
        for command in &commands {
            failures.extend(self.run_restoring(command, on).await.err());
        }
        failures
    }

    /// Runs one change's reload commands after its checks accept the restored files; when a
    /// check rejects them, the running service is left alone (a reload onto a configuration
    /// its own checker rejects can stop it: sshd exits on a SIGHUP it cannot parse).
    async fn reactivate(
        &self,
        reactivation: &Reactivation,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Vec<String> {
        if !self.host.is_live() {
            for command in &reactivation.commands {
                on(Event::Skipped { command });
            }
            return Vec::new();
        }
        for check in &reactivation.checks {
            if let Err(why) = self.run_restoring(check, on).await {
                let service = reactivation
                    .commands
                    .first()
                    .map(Command::display)
                    .unwrap_or_default();
                return vec![format!(
                    "the restored configuration does not pass its check, so the running service was left as it is (not `{service}`): {why}. Fix the configuration, then reload the service"
                )];
            }
        }
        let mut failures = Vec::new();
        for command in &reactivation.commands {
            failures.extend(self.run_restoring(command, on).await.err());
        }
        failures
    }

    /// Runs a command of a restore; `Err` says why it failed.
    async fn run_restoring(
        &self,
        command: &Command,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), String> {
        let out = self.host.run(command).await.map_err(|e| e.to_string())?;
        on(Event::Ran {
            command,
            code: out.code,
        });
        if out.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` exited with {:?}: {}",
                command.display(),
                out.code,
                out.stderr.trim()
            ))
        }
    }
}

/// The systemctl commands that bring `unit` from `now` back to `saved`. Enablement is put
/// back where it was one harden can set; the run state only where systemd runs.
fn unit_restore(unit: &str, saved: &UnitState, now: &UnitState, running: bool) -> Vec<Command> {
    let systemctl = |verb: &str| Command::new(["systemctl", verb, unit]).timeout(120);
    let mut commands = Vec::new();
    if let Some(enablement) = Enablement::from_word(&saved.enablement) {
        if now.enablement != saved.enablement {
            if now.enablement == "masked" {
                commands.push(systemctl("unmask"));
            }
            match enablement {
                Enablement::Enabled => commands.push(systemctl("enable")),
                Enablement::Disabled => commands.push(systemctl("disable")),
                Enablement::Masked => {
                    // The links an enable made go too, as they were absent before.
                    if now.enablement == "enabled" {
                        commands.push(systemctl("disable"));
                    }
                    commands.push(systemctl("mask"));
                }
            }
        }
    }
    if running {
        // A unit in its restart loop (`activating`) runs as far as a restore is concerned;
        // `failed` and `inactive` are both stopped (a restore cannot bring back "failed").
        let runs =
            |word: &str| matches!(word, "active" | "activating" | "reloading" | "refreshing");
        let was = runs(&saved.active);
        let is = runs(&now.active);
        if was && !is {
            commands.push(systemctl("start"));
        } else if !was && is {
            commands.push(systemctl("stop"));
        }
    }
    commands
}

/// An apply in progress: the snapshot is taken and the journal open.
#[derive(Debug)]
pub struct Transaction<'a> {
    executor: &'a Executor,
    plan: &'a Plan,
    manifest: Manifest,
    activated: BTreeSet<usize>,
}

impl Transaction<'_> {
    /// The snapshot taken for this run.
    pub fn snapshot(&self) -> &str {
        &self.manifest.id
    }

    /// Runs every step in order; stops at the first failure (the caller then rolls back).
    /// `stop` is checked before each step: a signal handler sets it so that an interrupted
    /// run stops between two steps, where the snapshot restores it cleanly.
    pub async fn execute(
        &mut self,
        stop: &AtomicBool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), StepFailed> {
        let host = &self.executor.host;
        let steps: Vec<(usize, &Step)> = self.plan.steps().collect();
        let total = steps.len();
        let mut started = BTreeSet::new();
        let mut index = 0;
        while index < total {
            let batch = harden_plan::batch_at(&steps[index..]);
            if batch.len() > 1 {
                for (change, _) in batch {
                    if started.insert(*change) {
                        self.audit_change(*change);
                    }
                }
                self.execute_batch(index, batch, total, stop, on).await?;
                index += batch.len();
                continue;
            }
            let (change, step) = steps[index];
            index += 1;
            let number = index;
            if stop.load(Ordering::SeqCst) {
                return Err(StepFailed {
                    number,
                    message: "interrupted by a signal before this step".into(),
                });
            }
            on(Event::Step {
                number,
                total,
                step,
            });
            let fail =
                |message: String| failed(self.plan, &self.manifest.id, change, number, message);
            if started.insert(change) {
                self.audit_change(change);
            }
            if Change::activates(step) && self.activated.insert(change) {
                // Recorded before the step runs: a crash from here on must reload this
                // change's service on recovery.
                self.executor
                    .write_journal(&self.manifest, Some(&self.activated))
                    .map_err(|e| fail(e.to_string()))?;
            }
            match step {
                Step::WriteFile {
                    path,
                    content,
                    attrs,
                    ..
                } => {
                    fs::write_atomic(host, path, content.as_bytes(), *attrs)
                        .map_err(|e| fail(e.to_string()))?;
                }
                Step::SetAttrs { path, to, .. } => {
                    fs::set_attrs(host, path, *to).map_err(|e| fail(e.to_string()))?
                }
                Step::CreateDir { path, attrs } => {
                    fs::create_dir(host, path, *attrs).map_err(|e| fail(e.to_string()))?
                }
                Step::CreateFile { path, attrs } => {
                    fs::create_file(host, path, *attrs).map_err(|e| fail(e.to_string()))?
                }
                Step::RemoveFile { path, .. } => {
                    fs::remove(host, path).map_err(|e| fail(e.to_string()))?
                }
                Step::EditEnv {
                    path,
                    attrs,
                    create,
                    edits,
                } => env::edit(host, path, *attrs, *create, edits)
                    .map_err(|e| fail(e.to_string()))?,
                Step::Reload { command, .. } if !host.is_live() => on(Event::Skipped { command }),
                Step::Run(command) | Step::Validate(command) | Step::Reload { command, .. } => {
                    run_step(host, command, on).await.map_err(fail)?
                }
                Step::Unit(unit) => run_unit(host, unit, on).await.map_err(fail)?,
                Step::SetTreeAttrs(step) => {
                    self.apply_tree(index - 1, step, stop, on)
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// Runs the tree step of index `index` among the plan's steps, logging to its log in
    /// the snapshot.
    fn apply_tree(
        &self,
        index: usize,
        step: &harden_plan::TreeStep,
        stop: &AtomicBool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> std::io::Result<u64> {
        let saved = self
            .manifest
            .trees
            .iter()
            .find(|t| t.step == index)
            .ok_or_else(|| std::io::Error::other("the snapshot has no log for this tree"))?;
        let log = snapshot::root_dir(&self.executor.state)
            .join(&self.manifest.id)
            .join(&saved.log);
        tree::apply(&self.executor.host, step, &log, stop, &mut |p| {
            on(Event::Tree(p))
        })
    }

    /// The audit record of a change about to start.
    fn audit_change(&self, change: usize) {
        let c = &self.plan.changes[change];
        tracing::info!(
            target: AUDIT,
            snapshot = %self.manifest.id,
            resource = %c.resource,
            target = %c.target,
            reason = %c.reason,
            "changing"
        );
    }

    /// Runs `batch`, the steps from `first` (0-based), as one process: every change in it
    /// counts as activated from the start, since the process may get through any of them.
    async fn execute_batch(
        &mut self,
        first: usize,
        batch: &[(usize, &Step)],
        total: usize,
        stop: &AtomicBool,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), StepFailed> {
        let number = first + 1;
        let fail =
            |message: String| failed(self.plan, &self.manifest.id, batch[0].0, number, message);
        if stop.load(Ordering::SeqCst) {
            return Err(fail("interrupted by a signal before this step".into()));
        }
        let commands: Vec<&Command> = batch.iter().filter_map(|(_, s)| s.batchable()).collect();
        let mut newly = false;
        for (offset, (change, step)) in batch.iter().enumerate() {
            on(Event::Step {
                number: number + offset,
                total,
                step,
            });
            newly |= self.activated.insert(*change);
        }
        if newly {
            self.executor
                .write_journal(&self.manifest, Some(&self.activated))
                .map_err(|e| fail(e.to_string()))?;
        }
        let joined = Batch::join(&commands);
        let out = self
            .executor
            .host
            .run(&joined)
            .await
            .map_err(|e| fail(e.to_string()))?;
        for command in &commands {
            on(Event::Ran {
                command,
                code: out.code,
            });
        }
        if out.success() {
            return Ok(());
        }
        Err(fail(format!(
            "`{}` and the {} commands after it, run as one batch, exited with {}: {}",
            commands[0].display(),
            commands.len() - 1,
            out.code.map_or("a signal".into(), |c| c.to_string()),
            out.said()
        )))
    }

    /// Ends the run as a success: closes the journal and prunes old snapshots.
    pub fn commit(self) -> Result<String, Error> {
        // The outcome first: a run killed while it writes it still has its journal, and
        // the next run's recovery writes the outcome again (and leaves no temporary file).
        self.executor
            .record_outcome(&self.manifest.id, "applied", plan_targets(self.plan))?;
        self.executor.close_journal()?;
        snapshot::prune(&self.executor.host, &self.executor.state, None)?;
        tracing::info!(
            target: AUDIT,
            snapshot = %self.manifest.id,
            playbooks = %self.plan.playbooks.join(", "),
            changed = %changed_targets(self.plan),
            result = "applied",
            "apply finished: {} changes",
            self.plan.changes.len()
        );
        Ok(self.manifest.id)
    }

    /// Ends the run as a failure: restores the snapshot and reloads only the services this
    /// run activated, each after its checker accepts the restored configuration.
    pub async fn roll_back(self, on: &mut dyn FnMut(Event<'_>)) -> Result<Restored, Error> {
        let restored = self
            .executor
            .restore(&self.manifest, Some(&self.activated), on)
            .await;
        audit_restore(&self.manifest, &restored, "rollback of a failed apply");
        let result = format!("failed, {}", restore_result(&restored));
        self.executor
            .record_outcome(&self.manifest.id, &result, plan_targets(self.plan))?;
        if restored.complete() {
            self.executor.close_journal()?;
        }
        Ok(restored)
    }
}

/// Step `number`, of change `change`, failed: its audit record, and the error.
fn failed(
    plan: &Plan,
    snapshot: &str,
    change: usize,
    number: usize,
    message: String,
) -> StepFailed {
    let c = &plan.changes[change];
    tracing::warn!(
        target: AUDIT,
        %snapshot,
        resource = %c.resource,
        target = %c.target,
        result = "failed",
        "step {number} failed: {message}"
    );
    StepFailed { number, message }
}

/// The `tracing` target of the audit trail: the records an operator reads in the journal.
pub const AUDIT: &str = "harden";

/// `files /etc/ssh/sshd_config; sshd PasswordAuthentication`: what a plan changes, by name.
pub fn changed_targets(plan: &Plan) -> String {
    plan_targets(plan).join("; ")
}

/// Each change of `plan` as `resource target`.
fn plan_targets(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| format!("{} {}", c.resource, c.target))
        .collect()
}

/// The paths and units a restore of `manifest` puts back.
fn restored_targets(manifest: &Manifest) -> Vec<String> {
    let mut targets: Vec<String> = manifest
        .entries
        .iter()
        .map(|e| e.path.display().to_string())
        .collect();
    targets.extend(
        manifest
            .trees
            .iter()
            .map(|t| format!("{}/ (below)", t.root.display())),
    );
    targets.extend(manifest.units.iter().map(|u| u.unit.clone()));
    targets
}

/// `rolled back` or `rollback incomplete`.
fn restore_result(restored: &Restored) -> &'static str {
    if restored.complete() {
        "rolled back"
    } else {
        "rollback incomplete"
    }
}

/// One audit record for a restore of `manifest`: what it restored and how it went.
fn audit_restore(manifest: &Manifest, restored: &Restored, why: &str) {
    let changed = restored_targets(manifest);
    let playbooks = manifest.playbooks.join(", ");
    let changed = changed.join("; ");
    if restored.complete() {
        tracing::info!(target: AUDIT, snapshot = %manifest.id, %playbooks, %changed, result = "rolled_back", "{why}: restored snapshot {}", manifest.id);
    } else {
        tracing::error!(target: AUDIT, snapshot = %manifest.id, %playbooks, %changed, result = "rollback_incomplete", "{why}: snapshot {} restored incompletely: {}", manifest.id, restored.failures.join("; "));
    }
}

/// Runs a command step; `Err` says why it failed.
async fn run_step(
    host: &Host,
    command: &Command,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<(), String> {
    let out = host.run(command).await.map_err(|e| e.to_string())?;
    on(Event::Ran {
        command,
        code: out.code,
    });
    if out.success() {
        return Ok(());
    }
    Err(format!(
        "`{}` exited with {}: {}",
        command.display(),
        out.code.map_or("a signal".into(), |c| c.to_string()),
        out.said()
    ))
}

/// Sets a unit's enablement (offline too: in a chroot or under `--root`, systemctl edits
/// the unit links itself), then its run state where systemd runs.
async fn run_unit(
    host: &Host,
    unit: &UnitStep,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<(), String> {
    for command in unit.enable_commands() {
        run_step(host, &command, on).await?;
    }
    if let Some(command) = unit.action_command() {
        if host.has_systemd() {
            run_step(host, &command, on).await?;
        } else {
            on(Event::Skipped { command: &command });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their fixtures directly
mod tests {
    use super::*;
    use harden_plan::{Attrs, Change};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    fn me() -> (u32, u32) {
        let meta = std::fs::metadata("/proc/self").expect("proc");
        (meta.uid(), meta.gid())
    }

    /// A step writing `content` to `path` with `mode`, owned by whoever runs the test.
    fn write(path: &str, content: &str, mode: u32) -> Step {
        let (uid, gid) = me();
        Step::WriteFile {
            path: path.into(),
            content: content.into(),
            attrs: Attrs { mode, uid, gid },
            before: None,
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        let mut plan = Plan::new("/".into(), vec!["test.yaml".into()]);
        plan.changes.push(Change {
            resource: "files".into(),
            target: "t".into(),
            reason: "r".into(),
            details: vec![],
            steps,
            on_rollback: vec![],
            rollback_checks: Vec::new(),
        });
        plan
    }

    fn mode(root: &Path, p: &str) -> u32 {
        std::fs::metadata(root.join(p))
            .expect("meta")
            .permissions()
            .mode()
            & 0o7777
    }

    #[tokio::test]
    async fn a_failed_step_restores_everything_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("etc/a"), "old a").expect("write");
        std::fs::set_permissions(root.join("etc/a"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let plan = plan(vec![
            write("/etc/a", "new a", 0o600),
            write("/etc/b", "new b", 0o600),
            Step::Validate(Command::new(["false"])),
        ]);
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        let mut tx = executor.begin(&lock, &plan).await.expect("begin");
        let err = tx
            .execute(&AtomicBool::new(false), &mut |_| {})
            .await
            .expect_err("validate fails");
        assert_eq!(err.number, 3);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/a")).expect("read"),
            "new a"
        );
        let restored = tx.roll_back(&mut |_| {}).await.expect("rollback");
        assert!(restored.complete(), "{:?}", restored.failures);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/a")).expect("read"),
            "old a"
        );
        assert_eq!(mode(root, "etc/a"), 0o644);
        assert!(!root.join("etc/b").exists());
        assert_eq!(executor.interrupted().expect("journal"), None);
    }

    #[tokio::test]
    async fn an_interrupted_run_is_recovered_and_a_commit_can_be_rolled_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("f"), "old").expect("write");
        let plan = plan(vec![write("/f", "new", 0o640)]);
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        {
            let mut tx = executor.begin(&lock, &plan).await.expect("begin");
            tx.execute(&AtomicBool::new(false), &mut |_| {})
                .await
                .expect("execute");
            // Dropped without commit: as if the process had been killed here.
        }
        assert!(executor.interrupted().expect("journal").is_some());
        let restored = executor
            .recover(&lock, &mut |_| {})
            .await
            .expect("recover")
            .expect("something to recover");
        assert!(restored.complete());
        assert_eq!(
            std::fs::read_to_string(root.join("f")).expect("read"),
            "old"
        );

        let mut tx = executor.begin(&lock, &plan).await.expect("begin");
        tx.execute(&AtomicBool::new(false), &mut |_| {})
            .await
            .expect("execute");
        let id = tx.commit().expect("commit");
        assert_eq!(
            std::fs::read_to_string(root.join("f")).expect("read"),
            "new"
        );
        let restored = executor
            .rollback(&lock, Some(&id), &mut |_| {})
            .await
            .expect("rollback");
        assert!(restored.complete());
        assert_eq!(
            std::fs::read_to_string(root.join("f")).expect("read"),
            "old"
        );
        // Repeating it changes nothing; the rollback's own snapshot undoes it.
        let again = executor
            .rollback(&lock, None, &mut |_| {})
            .await
            .expect("again");
        assert!(again.complete());
        assert_eq!(
            std::fs::read_to_string(root.join("f")).expect("read"),
            "old"
        );
        let before_rollback = executor
            .snapshots()
            .expect("list")
            .into_iter()
            .find(|m| m.purpose == "rollback")
            .expect("rollback snapshot");
        let undo = executor
            .rollback(&lock, Some(&before_rollback.id), &mut |_| {})
            .await
            .expect("undo");
        assert!(undo.complete());
        assert_eq!(
            std::fs::read_to_string(root.join("f")).expect("read"),
            "new"
        );
    }

    /// A tree step over `root/srv`: mode 0600 for files, 0700 for directories.
    fn tree_plan() -> Plan {
        plan(vec![Step::SetTreeAttrs(harden_plan::TreeStep {
            root: "/srv".into(),
            rule: harden_plan::TreeRule {
                mode: Some(harden_plan::ModeRule::Clauses(vec![
                    harden_plan::ModeClause {
                        who: 0o7777,
                        op: harden_plan::ModeOp::Set,
                        perms: 0,
                        search: false,
                    },
                    harden_plan::ModeClause {
                        who: 0o4700,
                        op: harden_plan::ModeOp::Add,
                        perms: 0o666,
                        search: true,
                    },
                ])),
                uid: None,
                gid: None,
            },
            skip: Vec::new(),
            entries: 0,
            changes: 0,
            digest: String::new(),
            examples: Vec::new(),
        })])
    }

    #[tokio::test]
    async fn a_tree_killed_half_way_is_restored_entry_by_entry_from_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in 0..3 {
            std::fs::create_dir_all(root.join(format!("srv/d{d}"))).expect("mkdir");
            for f in 0..700 {
                let path = root.join(format!("srv/d{d}/f{f}"));
                std::fs::write(&path, "x").expect("write");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
        }
        let plan = tree_plan();
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        let mut reports = 0;
        {
            let mut tx = executor.begin(&lock, &plan).await.expect("begin");
            tx.execute(&AtomicBool::new(false), &mut |e| {
                reports += usize::from(matches!(e, Event::Tree(_)));
            })
            .await
            .expect("execute");
            // Dropped without commit: as if killed after the tree.
        }
        assert!(reports >= 1);
        assert_eq!(mode(root, "srv/d0"), 0o700);
        assert_eq!(mode(root, "srv/d2/f699"), 0o600);
        let restored = executor
            .recover(&lock, &mut |_| {})
            .await
            .expect("recover")
            .expect("something to recover");
        assert!(restored.complete(), "{:?}", restored.failures);
        assert_eq!(mode(root, "srv/d0"), 0o755);
        assert_eq!(mode(root, "srv/d2/f699"), 0o644);
        // A log cut short by a crash (the last record half-written) restores what it names.
        let mut tx = executor.begin(&lock, &plan).await.expect("begin");
        tx.execute(&AtomicBool::new(false), &mut |_| {})
            .await
            .expect("execute");
        let log = root
            .join("var/lib/harden/snapshots")
            .join(tx.snapshot())
            .join("tree-000");
        let mut bytes = std::fs::read(&log).expect("log");
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&log, bytes).expect("cut");
        drop(tx);
        let restored = executor
            .recover(&lock, &mut |_| {})
            .await
            .expect("recover")
            .expect("something to recover");
        assert!(restored.complete(), "{:?}", restored.failures);
        assert_eq!(mode(root, "srv/d1/f5"), 0o644);
        // The walk's last entry (names sort bytewise); its record was cut.
        assert_eq!(mode(root, "srv/d2/f99"), 0o600);
        assert_eq!(mode(root, "srv/d2/f699"), 0o644);
    }

    #[tokio::test]
    async fn a_stop_request_ends_the_run_before_the_next_step() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("f"), "old").expect("write");
        let plan = plan(vec![write("/f", "new", 0o600)]);
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        let mut tx = executor.begin(&lock, &plan).await.expect("begin");
        let err = tx
            .execute(&AtomicBool::new(true), &mut |_| {})
            .await
            .expect_err("stopped");
        assert!(err.message.contains("interrupted"), "{err}");
        assert_eq!(
            std::fs::read_to_string(root.join("f")).expect("read"),
            "old"
        );
        assert!(tx
            .roll_back(&mut |_| {})
            .await
            .expect("rollback")
            .complete());
    }

    #[tokio::test]
    async fn restores_touch_only_what_differs_and_undo_snapshots_copy_only_rewritten_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("attrs-only"), "a").expect("write");
        std::fs::write(root.join("rewritten"), "old").expect("write");
        let (uid, gid) = me();
        let plan = plan(vec![
            Step::SetAttrs {
                path: "/attrs-only".into(),
                from: Attrs {
                    mode: 0o644,
                    uid,
                    gid,
                },
                to: Attrs {
                    mode: 0o600,
                    uid,
                    gid,
                },
            },
            write("/rewritten", "new", 0o644),
        ]);
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        let mut tx = executor.begin(&lock, &plan).await.expect("begin");
        tx.execute(&AtomicBool::new(false), &mut |_| {})
            .await
            .expect("execute");
        let id = tx.commit().expect("commit");
        let ino = |p: &str| std::fs::metadata(root.join(p)).expect("meta").ino();
        let attrs_only = ino("attrs-only");

        assert!(executor
            .rollback(&lock, Some(&id), &mut |_| {})
            .await
            .expect("rollback")
            .complete());
        assert_eq!(
            ino("attrs-only"),
            attrs_only,
            "a mode change is undone in place"
        );
        let undo = executor
            .snapshots()
            .expect("list")
            .into_iter()
            .find(|m| m.purpose == "rollback")
            .expect("the rollback's own snapshot");
        let blobs: Vec<&str> = undo
            .entries
            .iter()
            .filter(|e| e.saved.as_ref().is_some_and(|s| s.blob.is_some()))
            .map(|e| e.path.to_str().unwrap_or_default())
            .collect();
        assert_eq!(
            blobs,
            vec!["/rewritten"],
            "only the file the restore rewrote is copied"
        );

        // Restoring again finds everything as saved and rewrites nothing.
        let rewritten = ino("rewritten");
        assert!(executor
            .rollback(&lock, Some(&id), &mut |_| {})
            .await
            .expect("again")
            .complete());
        assert_eq!(ino("rewritten"), rewritten);
        assert_eq!(
            std::fs::read_to_string(root.join("rewritten")).expect("read"),
            "old"
        );
    }

    #[tokio::test]
    async fn an_env_edit_is_snapshotted_and_rolled_back_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let old = "# app\nJWT_SECRET='changeme'\r\nDEBUG=true\n";
        std::fs::write(root.join(".env"), old).expect("write");
        std::fs::set_permissions(root.join(".env"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let (uid, gid) = me();
        let plan = plan(vec![Step::EditEnv {
            path: "/.env".into(),
            attrs: Attrs {
                mode: 0o600,
                uid,
                gid,
            },
            create: false,
            edits: vec![harden_plan::EnvEdit {
                key: "JWT_SECRET".into(),
                value: harden_plan::EnvValue::Generate(harden_plan::Generate {
                    alphabet: harden_plan::Alphabet::Hex,
                    bytes: 32,
                }),
            }],
        }]);
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        let mut tx = executor.begin(&lock, &plan).await.expect("begin");
        tx.execute(&AtomicBool::new(false), &mut |_| {})
            .await
            .expect("execute");
        let id = tx.commit().expect("commit");
        let new = std::fs::read_to_string(root.join(".env")).expect("read");
        assert!(new.starts_with("# app\nJWT_SECRET='") && new.ends_with("'\r\nDEBUG=true\n"));
        assert_eq!(mode(root, ".env"), 0o600);
        let manifest = executor
            .snapshots()
            .expect("list")
            .into_iter()
            .find(|m| m.id == id)
            .expect("the snapshot");
        let json = serde_json::to_string(&manifest).expect("json");
        assert!(
            !json.contains("changeme")
                && !new.lines().any(|l| json.contains(l) && l.contains("JWT"))
        );
        assert!(executor
            .rollback(&lock, Some(&id), &mut |_| {})
            .await
            .expect("rollback")
            .complete());
        assert_eq!(
            std::fs::read(root.join(".env")).expect("read"),
            old.as_bytes()
        );
        assert_eq!(mode(root, ".env"), 0o644);
    }

    fn state(enablement: &str, active: &str) -> UnitState {
        UnitState {
            enablement: enablement.into(),
            active: active.into(),
        }
    }

    fn lines(commands: Vec<Command>) -> Vec<String> {
        commands.iter().map(Command::display).collect()
    }

    #[test]
    fn a_unit_is_brought_back_to_its_saved_enablement_and_run_state() {
        // (saved, now, systemd runs, the commands that bring `now` back to `saved`)
        type Case = (
            (&'static str, &'static str),
            (&'static str, &'static str),
            bool,
            &'static [&'static str],
        );
        let cases: [Case; 7] = [
            // Enabled but failed at boot, then started by the apply: stopped again.
            (
                ("enabled", "failed"),
                ("enabled", "active"),
                true,
                &["stop"],
            ),
            // Disabled and failed, then enabled and left in its restart loop.
            (
                ("disabled", "failed"),
                ("enabled", "activating"),
                true,
                &["disable", "stop"],
            ),
            (
                ("disabled", "inactive"),
                ("enabled", "active"),
                true,
                &["disable", "stop"],
            ),
            // Masked before: the links the enable made go too.
            (
                ("masked", "inactive"),
                ("enabled", "inactive"),
                true,
                &["disable", "mask"],
            ),
            (
                ("enabled", "active"),
                ("masked", "inactive"),
                true,
                &["unmask", "enable", "start"],
            ),
            // Without systemd only the enablement, offline.
            (
                ("disabled", "unknown"),
                ("enabled", "unknown"),
                false,
                &["disable"],
            ),
            // A state harden cannot set (static), and nothing changed: nothing to do.
            (("static", "active"), ("static", "active"), true, &[]),
        ];
        for (saved, now, running, verbs) in cases {
            let got = lines(unit_restore(
                "fail2ban.service",
                &state(saved.0, saved.1),
                &state(now.0, now.1),
                running,
            ));
            let want: Vec<String> = verbs
                .iter()
                .map(|v| format!("systemctl {v} fail2ban.service"))
                .collect();
            assert_eq!(got, want, "from {now:?} back to {saved:?}");
        }
    }

    #[tokio::test]
    async fn preconditions_name_each_path_that_changed_since_they_were_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("rewritten"), "old").expect("write");
        std::fs::write(root.join("chmodded"), "a").expect("write");
        let (uid, gid) = me();
        let attrs = |mode| Attrs { mode, uid, gid };
        let plan = plan(vec![
            write("/rewritten", "new", 0o600),
            write("/created", "new", 0o600),
            Step::SetAttrs {
                path: "/chmodded".into(),
                from: attrs(0o644),
                to: attrs(0o600),
            },
        ]);
        let executor = Executor::new(Host::new(root));
        let recorded = executor.preconditions(&plan).await.expect("record");
        assert_eq!(recorded.paths.len(), 3);
        assert!(executor.stale(&recorded).await.expect("check").is_empty());
        // The content of a file only re-moded is not part of what the plan assumed.
        std::fs::write(root.join("chmodded"), "other").expect("write");
        assert!(executor.stale(&recorded).await.expect("check").is_empty());
        std::fs::write(root.join("rewritten"), "edited").expect("write");
        std::fs::write(root.join("created"), "x").expect("write");
        let stale = executor.stale(&recorded).await.expect("check");
        assert_eq!(
            stale,
            vec![
                "/created: was absent, now a file",
                "/rewritten: content changed"
            ]
        );
    }

    #[tokio::test]
    async fn only_the_newest_snapshots_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let executor = Executor::new(Host::new(root));
        let lock = executor.lock(Duration::from_secs(1)).expect("lock");
        for i in 0..KEEP + 3 {
            let plan = plan(vec![write("/f", &i.to_string(), 0o600)]);
            let mut tx = executor.begin(&lock, &plan).await.expect("begin");
            tx.execute(&AtomicBool::new(false), &mut |_| {})
                .await
                .expect("execute");
            tx.commit().expect("commit");
        }
        assert_eq!(executor.snapshots().expect("list").len(), KEEP);
    }
}
