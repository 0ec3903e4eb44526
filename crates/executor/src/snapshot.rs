//! Snapshots: what every path a plan touches looked like before, and how to put it back.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use harden_host::{Host, Kind, Links};
use harden_plan::{Attrs, Command, Plan, Step, UnitState};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::{fs, tree};

/// How many snapshots are kept; older ones are deleted after each run.
pub const KEEP: usize = 20;

/// A snapshot's description, stored as `manifest.json` in its directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Sortable id: the UTC time it was taken (`20261123T181455Z`), plus `-N` if needed.
    pub id: String,
    /// When it was taken.
    pub created: jiff::Timestamp,
    /// What it was taken for: `apply` or `rollback`.
    pub purpose: String,
    /// Playbooks of the plan it was taken for.
    pub playbooks: Vec<String>,
    /// Number of changes in that plan.
    pub changes: usize,
    /// The saved state of every touched path.
    pub entries: Vec<Entry>,
    /// The saved state of every unit the plan changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<SavedUnit>,
    /// The trees of the plan's tree steps, each with the log of the entries it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<SavedTree>,
    /// What makes services take up restored files, change by change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactivate: Vec<Reactivation>,
    /// Reload commands of snapshots taken by harden 0.1, which had no checks: still run
    /// after restoring such a snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_restore: Vec<Command>,
}

/// How one change's service takes up the restored files.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reactivation {
    /// Index of the change in its plan.
    pub change: usize,
    /// Checkers that must accept the restored configuration first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Command>,
    /// The reload (or restart) commands.
    pub commands: Vec<Command>,
}

/// A tree step's log: the old attributes of every entry the step changed, appended (and
/// synced) before each change, in the snapshot directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTree {
    /// Index of the step among the plan's steps.
    pub step: usize,
    /// The tree's root.
    pub root: PathBuf,
    /// File name of the log in the snapshot directory.
    pub log: String,
}

/// A unit as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedUnit {
    /// Full unit name.
    pub unit: String,
    /// Its state then.
    pub state: UnitState,
}

/// One path as it was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The path on the managed system.
    pub path: PathBuf,
    /// Its state; `None` when it did not exist.
    pub saved: Option<Saved>,
}

/// An existing path's saved state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    /// `file`, `dir`, `socket` or `other`.
    pub kind: String,
    /// Mode and owner.
    pub attrs: Attrs,
    /// File name of its saved content in the snapshot directory, for files whose content a
    /// step may change.
    pub blob: Option<String>,
}

/// Where snapshots live on the managed system.
pub(crate) fn root_dir(state: &Path) -> PathBuf {
    state.join("snapshots")
}

pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Socket => "socket",
        Kind::Other => "other",
    }
}

/// What a snapshot must hold: paths (with or without their content), units, and what makes
/// services take up restored files.
pub(crate) struct Request {
    purpose: &'static str,
    playbooks: Vec<String>,
    changes: usize,
    /// Every path to save, sorted, each with whether its content must be saved too (only
    /// attributes otherwise: a mode change on 100,000 files copies no file).
    paths: BTreeMap<PathBuf, bool>,
    units: Vec<String>,
    /// Tree steps: the step's index and root, and for an undo the log whose entries to save.
    trees: Vec<(usize, PathBuf, Option<PathBuf>)>,
    reactivate: Vec<Reactivation>,
    after_restore: Vec<Command>,
}

impl Request {
    /// Everything `plan` may change: content where a step may rewrite or remove a file.
    pub(crate) fn for_plan(plan: &Plan) -> Request {
        let mut paths: BTreeMap<PathBuf, bool> = BTreeMap::new();
        for step in plan.changes.iter().flat_map(|c| &c.steps) {
            let content = matches!(
                step,
                Step::WriteFile { .. }
                    | Step::RemoveFile { .. }
                    | Step::EditEnv { .. }
                    | Step::Run(_)
            );
            for path in step.touched_paths() {
                *paths.entry(path.clone()).or_default() |= content;
            }
        }
        let reactivate = plan
            .changes
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.on_rollback.is_empty())
            .map(|(change, c)| Reactivation {
                change,
                checks: c.rollback_checks.clone(),
                commands: c.on_rollback.clone(),
            })
            .collect();
        Request {
            purpose: "apply",
            playbooks: plan.playbooks.clone(),
            changes: plan.changes.len(),
            paths,
            units: plan
                .touched_units()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            trees: plan
                .steps()
                .enumerate()
                .filter_map(|(i, (_, step))| match step {
                    Step::SetTreeAttrs(tree) => Some((i, tree.root.clone(), None)),
                    _ => None,
                })
                .collect(),
            reactivate,
            after_restore: Vec::new(),
        }
    }

    /// Every path to save, each with whether its content is saved too.
    pub(crate) fn paths(&self) -> &BTreeMap<PathBuf, bool> {
        &self.paths
    }

    /// Every unit whose state is saved.
    pub(crate) fn units(&self) -> &[String] {
        &self.units
    }

    /// What restoring `target` will change, so that the restore can itself be undone: the
    /// content of files it rewrites or removes, the attributes of the rest, and the units.
    pub(crate) fn to_undo(target: &Manifest, state: &Path) -> Request {
        let dir = root_dir(state).join(&target.id);
        let paths = target
            .entries
            .iter()
            .map(|e| {
                let rewrites = e.saved.as_ref().is_none_or(|s| s.blob.is_some());
                (e.path.clone(), rewrites)
            })
            .collect();
        Request {
            purpose: "rollback",
            playbooks: vec![format!("rollback to {}", target.id)],
            changes: target.changes,
            paths,
            units: target.units.iter().map(|u| u.unit.clone()).collect(),
            trees: target
                .trees
                .iter()
                .map(|t| (t.step, t.root.clone(), Some(dir.join(&t.log))))
                .collect(),
            reactivate: target.reactivate.clone(),
            after_restore: target.after_restore.clone(),
        }
    }
}

/// Takes the snapshot `request` describes and writes it durably.
pub(crate) async fn take(host: &Host, state: &Path, request: Request) -> Result<Manifest, Error> {
    let mut units = Vec::new();
    for unit in &request.units {
        let state = host.unit_state(unit).await.ok_or_else(|| {
            Error::Refused(format!(
                "cannot read the state of {unit}: systemctl is not installed"
            ))
        })?;
        units.push(SavedUnit {
            unit: unit.clone(),
            state,
        });
    }
    let base = root_dir(state);
    fs::create_private_dirs(host, &base).map_err(Error::Io)?;
    let id = new_id(host, &base)?;
    let dir = base.join(&id);
    fs::create_private_dirs(host, &dir).map_err(Error::Io)?;
    let mut entries = Vec::new();
    for (path, with_content) in request.paths {
        let saved = match host.stat(&path).map_err(Error::Io)? {
            None => None,
            Some(st) if st.kind == Kind::Symlink => {
                return Err(Error::Refused(format!(
                    "{} is a symlink; harden never changes symlinks",
                    path.display()
                )));
            }
            Some(st) => {
                let blob = if st.kind == Kind::File && with_content {
                    let name = format!("blob-{:06}", entries.len());
                    let mut content = Vec::new();
                    fs::open_read(host, &path)
                        .and_then(|mut f| f.read_to_end(&mut content))
                        .map_err(Error::Io)?;
                    fs::write_private(host, &dir.join(&name), &content).map_err(Error::Io)?;
                    Some(name)
                } else {
                    None
                };
                Some(Saved {
                    kind: kind_name(st.kind).into(),
                    attrs: Attrs {
                        mode: st.mode,
                        uid: st.uid,
                        gid: st.gid,
                    },
                    blob,
                })
            }
        };
        entries.push(Entry { path, saved });
    }
    let mut trees = Vec::new();
    for (n, (step, root, from)) in request.trees.into_iter().enumerate() {
        let log = format!("tree-{n:03}");
        fs::write_private(host, &dir.join(&log), b"").map_err(Error::Io)?;
        if let Some(from) = from {
            tree::save_current(host, &root, &from, &dir.join(&log)).map_err(Error::Io)?;
        }
        trees.push(SavedTree { step, root, log });
    }
    let manifest = Manifest {
        id,
        created: jiff::Timestamp::now(),
        purpose: request.purpose.into(),
        playbooks: request.playbooks,
        changes: request.changes,
        entries,
        units,
        trees,
        reactivate: request.reactivate,
        after_restore: request.after_restore,
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::Corrupt(e.to_string()))?;
    // The manifest is written last: a snapshot without one is incomplete and ignored.
    fs::write_private(host, &dir.join("manifest.json"), &json).map_err(Error::Io)?;
    Ok(manifest)
}

fn new_id(host: &Host, base: &Path) -> Result<String, Error> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let taken = host.read_dir(base).map_err(Error::Io)?;
    let mut id = stamp.clone();
    let mut n = 1;
    while taken.iter().any(|t| t.as_os_str() == id.as_str()) {
        n += 1;
        id = format!("{stamp}-{n:03}");
    }
    Ok(id)
}

/// Reads the snapshot `id`.
pub(crate) fn load(host: &Host, state: &Path, id: &str) -> Result<Manifest, Error> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(Error::NoSnapshot(id.into()));
    }
    let path = root_dir(state).join(id).join("manifest.json");
    let Some(bytes) = host.read(&path).map_err(Error::Io)? else {
        return Err(Error::NoSnapshot(id.into()));
    };
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))
}

/// Every complete snapshot, oldest first.
pub(crate) fn list(host: &Host, state: &Path) -> Result<Vec<Manifest>, Error> {
    let mut all = Vec::new();
    for name in host.read_dir(&root_dir(state)).map_err(Error::Io)? {
        let Some(id) = name.to_str() else { continue };
        match load(host, state, id) {
            Ok(m) => all.push(m),
            Err(Error::NoSnapshot(_)) => {} // incomplete: its manifest was never written
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}

/// Deletes all but the newest [`KEEP`] snapshots, never `keep_also`.
pub(crate) fn prune(host: &Host, state: &Path, keep_also: Option<&str>) -> Result<(), Error> {
    let base = root_dir(state);
    let names: Vec<String> = host
        .read_dir(&base)
        .map_err(Error::Io)?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .collect();
    let excess = names.len().saturating_sub(KEEP);
    for name in names.iter().take(excess) {
        if Some(name.as_str()) == keep_also {
            continue;
        }
        // Our own 0700 directory: nobody else can plant links in it.
        #[allow(clippy::disallowed_methods)]
        std::fs::remove_dir_all(host.outside_path(&base.join(name))).map_err(Error::Io)?;
    }
    Ok(())
}

/// Deletes snapshot directories that have no manifest: a run killed while it took its
/// snapshot leaves one (with a half-written blob's temporary file), and nothing can ever
/// restore from it; and the temporary files of outcomes and confirmations a kill left in
/// complete ones. Only under the lock, so no snapshot is being taken meanwhile.
pub(crate) fn remove_incomplete(host: &Host, state: &Path) -> Result<(), Error> {
    let base = root_dir(state);
    for name in host.read_dir(&base).map_err(Error::Io)? {
        let dir = base.join(&name);
        let is_dir = host
            .stat(&dir)
            .map_err(Error::Io)?
            .is_some_and(|s| s.kind == Kind::Dir);
        if is_dir {
            // A run killed while it recorded an outcome or a confirmation leaves the
            // write's temporary file in a complete snapshot.
            for name in ["outcome.json", "confirm.json"] {
                fs::remove_leftover_temp(host, &dir.join(name)).map_err(Error::Io)?;
            }
        }
        if is_dir
            && host
                .stat(&dir.join("manifest.json"))
                .map_err(Error::Io)?
                .is_none()
        {
            // Our own 0700 directory: nobody else can plant links in it.
            #[allow(clippy::disallowed_methods)]
            std::fs::remove_dir_all(host.outside_path(&dir)).map_err(Error::Io)?;
        }
    }
    Ok(())
}

/// What restoring the saved paths came to.
#[derive(Debug, Default)]
pub(crate) struct PathsRestored {
    /// Paths that could not be restored, with why.
    pub failures: Vec<String>,
    /// Paths someone else changed while harden ran, left as found, with what was found.
    pub foreign: Vec<String>,
}

/// Puts every saved path back. Continues past failures and returns them all. A path that
/// someone else changed under harden (a symlink where harden never makes one, a parent
/// swapped for another user's symlink, a file turned into a directory) is left as found and
/// reported apart: restoring through it could write where that someone chose.
pub(crate) fn restore(host: &Host, state: &Path, manifest: &Manifest) -> PathsRestored {
    let dir = root_dir(state).join(&manifest.id);
    let mut outcome = PathsRestored::default();
    // Trees first: their entries are below the paths saved one by one.
    for saved in manifest.trees.iter().rev() {
        tree::restore(host, &saved.root, &dir.join(&saved.log), &mut outcome);
    }
    // Children before parents, so directories a plan created are empty when removed.
    for entry in manifest.entries.iter().rev() {
        let path = &entry.path;
        match foreign_change(host, entry) {
            Ok(Some(found)) => {
                outcome.foreign.push(format!("{}: {found}", path.display()));
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                outcome.failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        }
        if let Err(e) = restore_entry(host, &dir, entry) {
            outcome.failures.push(format!("{}: {e}", path.display()));
        }
    }
    outcome
}

/// What shows that someone other than harden changed `entry`'s path since the snapshot.
fn foreign_change(host: &Host, entry: &Entry) -> std::io::Result<Option<String>> {
    let path = &entry.path;
    match host.open_parent(path, Links::RootOwned) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Ok(Some(format!("a directory above it was changed: {e}")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let Some(now) = host.stat(path)? else {
        return Ok(None);
    };
    if now.kind == Kind::Symlink {
        return Ok(Some(
            "it is now a symlink, which harden never makes; left as found".into(),
        ));
    }
    let saved = entry.saved.as_ref().map(|s| s.kind.as_str());
    let kind = kind_name(now.kind);
    match saved {
        Some(saved) if saved != kind => Ok(Some(format!(
            "it is now a {kind}, where harden saved a {saved}; left as found"
        ))),
        _ => Ok(None),
    }
}

fn restore_entry(host: &Host, dir: &Path, entry: &Entry) -> std::io::Result<()> {
    let path = &entry.path;
    fs::remove_leftover_temp(host, path)?;
    match &entry.saved {
        None => match host.stat(path)? {
            None => Ok(()),
            Some(_) => fs::remove(host, path),
        },
        Some(Saved {
            blob: Some(blob),
            attrs,
            ..
        }) => {
            let content = host.read(&dir.join(blob))?.ok_or_else(|| {
                std::io::Error::other(format!("snapshot content {blob} is missing"))
            })?;
            // A file already as saved is left untouched: restores stay minimal, and
            // succeed where nothing was changed (a read-only filesystem).
            let same = host.stat(path)?.is_some_and(|now| {
                (now.mode, now.uid, now.gid) == (attrs.mode, attrs.uid, attrs.gid)
            }) && host.read(path)?.as_deref() == Some(content.as_slice());
            if same {
                Ok(())
            } else {
                fs::write_atomic(host, path, &content, *attrs)
            }
        }
        Some(Saved {
            blob: None, attrs, ..
        }) => match host.stat(path)? {
            // Already as saved: nothing to do (and nothing that could fail).
            Some(now) if (now.mode, now.uid, now.gid) == (attrs.mode, attrs.uid, attrs.gid) => {
                Ok(())
            }
            Some(_) => fs::set_attrs(host, path, *attrs),
            None => Err(std::io::Error::other(
                "was removed and its content was not saved",
            )),
        },
    }
}

/// How the run that took a snapshot ended, stored as `outcome.json` beside its manifest for
/// `harden log`: the manifest is written before the run, this after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `applied`, `failed, rolled back`, `rolled back`, `restore incomplete`...
    pub result: String,
    /// When the run ended.
    pub finished: jiff::Timestamp,
    /// What it changed or restored, by name (`sshd PasswordAuthentication`, a path).
    pub targets: Vec<String>,
}

/// Records how the run of snapshot `id` ended.
pub(crate) fn write_outcome(
    host: &Host,
    state: &Path,
    id: &str,
    outcome: &Outcome,
) -> Result<(), Error> {
    let json = serde_json::to_vec(outcome).map_err(|e| Error::Corrupt(e.to_string()))?;
    fs::write_private(host, &root_dir(state).join(id).join("outcome.json"), &json)
        .map_err(Error::Io)
}

/// How the run of snapshot `id` ended; `None` for a run still going, killed, or older than
/// outcomes.
pub(crate) fn read_outcome(host: &Host, state: &Path, id: &str) -> Result<Option<Outcome>, Error> {
    let path = root_dir(state).join(id).join("outcome.json");
    let Some(bytes) = host.read(&path).map_err(Error::Io)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))
}
