//! Preconditions of a saved plan: the state of every path and unit a plan touches, as it
//! was when the plan was made, and what differs from it now.
//!
//! The paths and units are exactly those the snapshot of the same plan saves
//! ([`Request::for_plan`]): one list, so a saved plan cannot assume less than its apply
//! changes. A path's content is compared (by sha256) where a step may rewrite it; its
//! existence, kind, mode and owner everywhere.

use std::io::Read;
use std::path::{Path, PathBuf};

use harden_host::{Host, Kind, Links};
use harden_plan::{Plan, TreeSkip, UnitState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::snapshot::{kind_name, Request};
use crate::{fs, Error, SavedUnit};

/// What a plan assumed of the system it was made on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preconditions {
    /// Every path the plan touches, sorted.
    pub paths: Vec<PathState>,
    /// Every unit the plan changes, with its enablement and run state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<SavedUnit>,
    /// Every tree a tree step changes, as its walk found it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<TreeState>,
}

/// A tree as the plan found it: what a walk of it counts and hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeState {
    /// The tree's root.
    pub root: PathBuf,
    /// What its walk leaves to deeper entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<TreeSkip>,
    /// Entries below the root.
    pub entries: u64,
    /// The walk's digest of them.
    pub digest: String,
}

/// One path as the plan found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathState {
    /// The path on the managed system.
    pub path: PathBuf,
    /// What was there; `None` when nothing was.
    pub found: Option<Found>,
}

/// An existing path's kind, attributes and (where the plan rewrites it) content hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// `file`, `dir`, `symlink`, `socket` or `other`.
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Hex sha256 of the content, for regular files a step may rewrite or remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Reads the state of everything `plan` touches, as [`Preconditions`].
pub(crate) async fn record(host: &Host, plan: &Plan) -> Result<Preconditions, Error> {
    let request = Request::for_plan(plan);
    let mut paths = Vec::new();
    for (path, with_content) in request.paths() {
        let found = found(host, path, *with_content).map_err(Error::Io)?;
        paths.push(PathState {
            path: path.clone(),
            found,
        });
    }
    let mut units = Vec::new();
    for unit in request.units() {
        units.push(SavedUnit {
            unit: unit.clone(),
            state: unit_state(host, unit).await?,
        });
    }
    // The plan's own walk found the tree: its count and digest are what the plan assumed.
    let trees = plan
        .trees()
        .map(|t| TreeState {
            root: t.root.clone(),
            skip: t.skip.clone(),
            entries: t.entries,
            digest: t.digest.clone(),
        })
        .collect();
    Ok(Preconditions {
        paths,
        units,
        trees,
    })
}

/// How the tree of `then` differs from what the plan found, in words; `None` when it does
/// not.
fn tree_difference(host: &Host, then: &TreeState) -> Result<Option<String>, Error> {
    let walked = host.walk_tree(
        &then.root,
        Links::Any,
        &then.skip,
        &mut harden_host::Unvisited,
    );
    let now = match walked {
        Ok(now) => now,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some("the tree's directory is gone".into()))
        }
        Err(e) => return Err(Error::Io(e)),
    };
    if now.digest == then.digest {
        return Ok(None);
    }
    Ok(Some(format!(
        "entries below it changed ({} entries when planned, {} now)",
        then.entries, now.entries
    )))
}

/// Every way the system differs from `recorded`, one line per changed path or unit.
pub(crate) async fn stale(host: &Host, recorded: &Preconditions) -> Result<Vec<String>, Error> {
    let mut changed = Vec::new();
    for expected in &recorded.paths {
        let with_content = expected.found.as_ref().is_some_and(|f| f.sha256.is_some());
        let now = found(host, &expected.path, with_content).map_err(Error::Io)?;
        if let Some(why) = path_difference(expected.found.as_ref(), now.as_ref()) {
            changed.push(format!("{}: {why}", expected.path.display()));
        }
    }
    for tree in &recorded.trees {
        if let Some(why) = tree_difference(host, tree)? {
            changed.push(format!("{}: {why}", tree.root.display()));
        }
    }
    for saved in &recorded.units {
        let now = unit_state(host, &saved.unit).await?;
        if now != saved.state {
            changed.push(format!(
                "{}: was {}, {}; now {}, {}",
                saved.unit, saved.state.enablement, saved.state.active, now.enablement, now.active
            ));
        }
    }
    Ok(changed)
}

/// What is at `path` now; its content hashed when `with_content` and it is a regular file.
fn found(host: &Host, path: &Path, with_content: bool) -> std::io::Result<Option<Found>> {
    let Some(st) = host.stat(path)? else {
        return Ok(None);
    };
    let sha256 = if with_content && st.kind == Kind::File {
        let mut content = Vec::new();
        fs::open_read(host, path)?.read_to_end(&mut content)?;
        Some(hex(&Sha256::digest(&content)))
    } else {
        None
    };
    Ok(Some(Found {
        kind: kind_name(st.kind).into(),
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        sha256,
    }))
}

/// Why `now` is not what the plan found, in words; `None` when it is.
fn path_difference(then: Option<&Found>, now: Option<&Found>) -> Option<String> {
    match (then, now) {
        (None, None) => None,
        (None, Some(now)) => Some(format!("was absent, now a {}", now.kind)),
        (Some(then), None) => Some(format!("was a {}, now absent", then.kind)),
        (Some(then), Some(now)) => {
            let mut what = Vec::new();
            if then.kind != now.kind {
                what.push(format!("was a {}, now a {}", then.kind, now.kind));
            }
            if then.mode != now.mode {
                what.push(format!("mode {:04o} -> {:04o}", then.mode, now.mode));
            }
            if (then.uid, then.gid) != (now.uid, now.gid) {
                what.push(format!(
                    "owner {}:{} -> {}:{}",
                    then.uid, then.gid, now.uid, now.gid
                ));
            }
            if then.sha256.is_some() && then.sha256 != now.sha256 {
                what.push("content changed".into());
            }
            (!what.is_empty()).then(|| what.join(", "))
        }
    }
}

async fn unit_state(host: &Host, unit: &str) -> Result<UnitState, Error> {
    host.unit_state(unit).await.ok_or_else(|| {
        Error::Refused(format!(
            "cannot read the state of {unit}: systemctl is not installed"
        ))
    })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex sha256 of `bytes`, as saved plans record playbooks.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: u32, sha: Option<&str>) -> Found {
        Found {
            kind: "file".into(),
            mode,
            uid: 0,
            gid: 0,
            sha256: sha.map(str::to_owned),
        }
    }

    #[test]
    fn every_difference_is_named_and_sameness_is_none() {
        let a = file(0o644, Some("aa"));
        assert_eq!(path_difference(Some(&a), Some(&a)), None);
        assert_eq!(
            path_difference(Some(&a), Some(&file(0o600, Some("bb")))).as_deref(),
            Some("mode 0644 -> 0600, content changed")
        );
        assert_eq!(
            path_difference(None, Some(&a)).as_deref(),
            Some("was absent, now a file")
        );
        assert_eq!(
            path_difference(Some(&a), None).as_deref(),
            Some("was a file, now absent")
        );
        // Content is compared only where the plan recorded it.
        assert_eq!(path_difference(Some(&file(0o644, None)), Some(&a)), None);
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
