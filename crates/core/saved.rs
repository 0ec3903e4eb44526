//! Saved plans: `harden plan --out FILE` and `harden apply FILE`, what was reviewed is what
//! runs.
//!
//! A saved plan is the plan together with what it assumed: the state of every path and
//! unit it touches (the executor's [`Preconditions`], the same list its snapshot saves), the
//! playbooks' hashes, the harden version and the machine id. Applying it checks all of that
//! first and refuses, changing nothing, when anything differs: a plan made stale by a change
//! in between is never applied. The file is written 0600 and holds no secret: an env file
//! is edited by [`harden_plan::Step::EditEnv`], which carries key names and how values are
//! made, never a value or the file's content.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harden_executor::{sha256_hex, Executor, Preconditions};
use harden_host::Host;
use harden_plan::{Plan, Step};
use harden_planner::Loaded;
use serde::{Deserialize, Serialize};

/// The `format` field that tells a saved plan from a playbook.
pub const FORMAT: &str = "harden-saved-plan";

/// Version of the saved-plan format; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// A saved plan file.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The harden version that made it (`--version`); only the same one applies it.
    pub harden: String,
    /// `/etc/machine-id` of the managed system (the image's under `--root`).
    pub machine_id: String,
    /// When it was made (RFC 3339).
    pub created: jiff::Timestamp,
    /// The playbooks it was made from, in merge order.
    pub playbooks: Vec<PlaybookHash>,
    /// The guards overridden (`--allow`) when it was made; the verifying re-plan after the
    /// apply overrides the same ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// What the plan assumed of every path and unit it touches.
    pub preconditions: Preconditions,
    /// The plan itself, applied exactly.
    pub plan: Plan,
}

/// One playbook a saved plan was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaybookHash {
    /// Its name as given (`site.yaml`, `<baseline>`).
    pub name: String,
    /// Its absolute path when it is a file, to find it again for the verifying re-plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Hex sha256 of its text.
    pub sha256: String,
}

/// Just the header, to tell a saved plan from a playbook without parsing either fully.
#[derive(Deserialize)]
struct Header {
    format: String,
}

/// The managed system's machine id (empty when it has none).
pub fn machine_id(host: &Host) -> anyhow::Result<String> {
    let text = host
        .read_to_string(Path::new("/etc/machine-id"))
        .context("cannot read /etc/machine-id")?;
    Ok(text.unwrap_or_default().trim().to_owned())
}

/// Makes the saved plan of `plan`, recording what it assumes now.
pub async fn make(
    host: &Host,
    loaded: &Loaded,
    playbooks: &[PathBuf],
    allow: &[String],
    plan: Plan,
) -> anyhow::Result<SavedPlan> {
    refuse_env_content(&plan)?;
    let preconditions = Executor::new(host.clone())
        .preconditions(&plan)
        .await
        .context("cannot record the plan's preconditions")?;
    let hashes = loaded
        .sources
        .iter()
        .enumerate()
        .map(|(i, source)| PlaybookHash {
            name: source.name.clone(),
            path: playbooks.get(i).and_then(|p| std::path::absolute(p).ok()),
            sha256: sha256_hex(source.text.as_bytes()),
        })
        .collect();
    Ok(SavedPlan {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        harden: crate::args::VERSION.into(),
        machine_id: machine_id(host)?,
        created: jiff::Timestamp::now(),
        playbooks: hashes,
        allow: allow.to_vec(),
        preconditions,
        plan,
    })
}

/// Refuses to save a plan that would carry an env file's content: env files are edited by
/// key ([`Step::EditEnv`], no values); a step that writes or removes one whole would hold
/// its text, secrets included.
fn refuse_env_content(plan: &Plan) -> anyhow::Result<()> {
    let env_files: Vec<&PathBuf> = plan
        .steps()
        .filter_map(|(_, s)| match s {
            Step::EditEnv { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    for (_, step) in plan.steps() {
        let holds_content = match step {
            Step::WriteFile { path, .. } => Some(path),
            Step::RemoveFile { path, before, .. } if before.is_some() => Some(path),
            _ => None,
        };
        if let Some(path) = holds_content.filter(|p| env_files.contains(p)) {
            anyhow::bail!(
                "the plan carries the content of env file {}, which may hold secrets; not saving it",
                path.display()
            );
        }
    }
    Ok(())
}

/// Writes `saved` to `file` atomically, mode 0600, owned by whoever runs harden.
pub fn write(file: &Path, saved: &SavedPlan) -> anyhow::Result<()> {
    let file = std::path::absolute(file)
        .with_context(|| format!("{}: cannot make the path absolute", file.display()))?;
    let mut json = serde_json::to_vec_pretty(saved)?;
    json.push(b'\n');
    let attrs = harden_plan::Attrs {
        mode: 0o600,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    harden_executor::fs::write_atomic(&Host::new("/"), &file, &json, attrs)
        .with_context(|| format!("cannot write {}", file.display()))
}

/// Reads `file` as a saved plan: `Ok(None)` when it is something else (a playbook).
pub fn read(file: &Path) -> anyhow::Result<Option<SavedPlan>> {
    let Ok(bytes) = std::fs::read(file) else {
        return Ok(None); // unreadable: the playbook loader reports it
    };
    match serde_json::from_slice::<Header>(&bytes) {
        Ok(header) if header.format == FORMAT => {}
        _ => return Ok(None),
    }
    let saved: SavedPlan = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a saved plan harden can read", file.display()))?;
    if saved.format_version != FORMAT_VERSION {
        anyhow::bail!(
            "{}: saved-plan format {} (this harden reads {FORMAT_VERSION})",
            file.display(),
            saved.format_version
        );
    }
    Ok(Some(saved))
}

/// Why `saved` may not be applied to `host` by this harden, one line each: another
/// version, another machine, another root, or a touched path or unit that changed since.
pub async fn stale(host: &Host, saved: &SavedPlan) -> anyhow::Result<Vec<String>> {
    let mut why = Vec::new();
    if saved.harden != crate::args::VERSION {
        why.push(format!(
            "made by harden {}, this is harden {}",
            saved.harden,
            crate::args::VERSION
        ));
    }
    let here = machine_id(host)?;
    if saved.machine_id != here {
        why.push(format!(
            "made on machine {:?}, this is machine {here:?}",
            saved.machine_id
        ));
    }
    if saved.plan.root != host.root() {
        why.push(format!(
            "made for --root {}, applied to {}",
            saved.plan.root.display(),
            host.root().display()
        ));
    }
    if !why.is_empty() {
        return Ok(why);
    }
    let changed = Executor::new(host.clone())
        .stale(&saved.preconditions)
        .await?;
    Ok(changed)
}

/// The recorded playbooks, loaded again for the verifying re-plan, when every one is still
/// there with the same text; otherwise why not.
pub fn playbooks_again(saved: &SavedPlan) -> Result<Loaded, String> {
    let mut paths = Vec::new();
    for p in &saved.playbooks {
        match &p.path {
            Some(path) => paths.push(path.clone()),
            None if p.name == harden_planner::BASELINE_NAME => {}
            None => return Err(format!("playbook {} has no recorded path", p.name)),
        }
    }
    let loaded = harden_planner::load_files(&paths)
        .map_err(|_| "a recorded playbook is missing or no longer valid".to_owned())?;
    let same = loaded.sources.len() == saved.playbooks.len()
        && loaded
            .sources
            .iter()
            .zip(&saved.playbooks)
            .all(|(s, p)| sha256_hex(s.text.as_bytes()) == p.sha256);
    if same {
        Ok(loaded)
    } else {
        Err("a recorded playbook changed since the plan was saved".into())
    }
}
