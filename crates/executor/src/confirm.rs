//! Confirm or revert: an apply made with `--confirm-within` is rolled back unless it is
//! confirmed before its deadline.
//!
//! The rollback is armed outside harden's own process, so that it survives the operator's
//! SSH session, harden being killed and a lost connection: a transient systemd timer where
//! systemd runs (`systemd-run --on-active`), a detached process (`setsid`) elsewhere. Both
//! run `harden rollback --unconfirmed ID`, which rolls back only while the confirmation is
//! still pending: the state lives beside the snapshot (`confirm.json`) and is changed only
//! under the run lock, so a confirm and a firing timer cannot both win.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harden_host::Host;
use harden_plan::Command;
use serde::{Deserialize, Serialize};

use crate::snapshot::root_dir;
use crate::{fs, Error};

/// Where a confirmation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Armed: rolled back at the deadline unless confirmed.
    Pending,
    /// `harden confirm` disarmed it; the change stays.
    Confirmed,
    /// Not confirmed in time (or rolled back by hand meanwhile): the snapshot was restored.
    RolledBack,
}

impl State {
    /// The word `harden snapshots` shows.
    pub fn word(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Confirmed => "confirmed",
            State::RolledBack => "rolled_back",
        }
    }
}

/// A snapshot's confirmation, stored as `confirm.json` in its directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Where it stands.
    pub state: State,
    /// When the rollback fires unless confirmed.
    pub deadline: jiff::Timestamp,
    /// What fires it: `systemd timer` or `detached process`.
    pub armed_by: String,
    /// The transient unit's name (`harden-confirm-<id>`), when a systemd timer fires it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// When it was confirmed or rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<jiff::Timestamp>,
    /// Why it was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn path(state: &Path, id: &str) -> PathBuf {
    root_dir(state).join(id).join("confirm.json")
}

/// The confirmation of snapshot `id`, if it was applied with one.
pub(crate) fn read(host: &Host, state: &Path, id: &str) -> Result<Option<Confirmation>, Error> {
    let path = path(state, id);
    let Some(bytes) = host.read(&path).map_err(Error::Io)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))
}

/// Stores the confirmation of snapshot `id`.
pub(crate) fn write(
    host: &Host,
    state: &Path,
    id: &str,
    confirmation: &Confirmation,
) -> Result<(), Error> {
    let json = serde_json::to_vec(confirmation).map_err(|e| Error::Corrupt(e.to_string()))?;
    fs::write_private(host, &path(state, id), &json).map_err(Error::Io)
}

/// The transient unit that rolls snapshot `id` back.
pub fn unit_name(id: &str) -> String {
    format!("harden-confirm-{id}")
}

/// Arms the rollback of snapshot `id` in `within`, running `program` (harden itself). A
/// systemd timer where systemd runs, else a detached process.
///
/// The pending confirmation is recorded before the timer is started: a run killed in
/// between leaves an apply that `harden snapshots` shows pending past its deadline (and that
/// blocks the next apply until confirmed), never a timer with nothing recorded.
pub(crate) async fn arm(
    host: &Host,
    state: &Path,
    id: &str,
    within: Duration,
    program: &Path,
) -> Result<Confirmation, Error> {
    let deadline = jiff::Timestamp::now()
        .checked_add(
            jiff::SignedDuration::try_from(within).map_err(|e| Error::Refused(e.to_string()))?,
        )
        .map_err(|e| Error::Refused(e.to_string()))?;
    let (command, armed_by, unit) = arming_command(host, state, id, within, program);
    let confirmation = Confirmation {
        state: State::Pending,
        deadline,
        armed_by: armed_by.into(),
        unit,
        settled: None,
        reason: None,
    };
    write(host, state, id, &confirmation)?;
    let out = host
        .run(&command)
        .await
        .map_err(|e| Error::Refused(e.to_string()));
    let failed = match out {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "cannot arm the rollback: `{}` exited with {:?}: {}",
            command.display(),
            out.code,
            out.stderr.trim()
        )),
        Err(e) => Some(format!("cannot arm the rollback: {e}")),
    };
    if let Some(why) = failed {
        let unarmed = Confirmation {
            state: State::RolledBack,
            settled: Some(jiff::Timestamp::now()),
            reason: Some(why.clone()),
            ..confirmation
        };
        write(host, state, id, &unarmed)?;
        return Err(Error::Refused(why));
    }
    Ok(confirmation)
}

/// The command that arms the rollback, what it is, and its unit's name.
fn arming_command(
    host: &Host,
    state: &Path,
    id: &str,
    within: Duration,
    program: &Path,
) -> (Command, &'static str, Option<String>) {
    let program = program.display().to_string();
    let secs = within.as_secs().max(1);
    if host.has_systemd() {
        let unit = unit_name(id);
        let command = Command::new([
            "systemd-run".to_owned(),
            format!("--unit={unit}"),
            format!("--description=harden: roll back snapshot {id} unless confirmed"),
            format!("--on-active={secs}s"),
            "--timer-property=AccuracySec=1s".into(),
            "--quiet".into(),
            program,
            "rollback".into(),
            "--unconfirmed".into(),
            id.into(),
        ]);
        (command, "systemd timer", Some(unit))
    } else {
        // setsid -f: a new session, so neither the terminal's hangup nor the end of this
        // process reaches it; its output goes beside the snapshot.
        let log = host.outside_path(&root_dir(state).join(id).join("confirm.log"));
        let script =
            r#"exec </dev/null >>"$3" 2>&1; sleep "$1"; exec "$0" rollback --unconfirmed "$2""#;
        let command = Command::new([
            "setsid".to_owned(),
            "-f".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
            program,
            secs.to_string(),
            id.into(),
            log.display().to_string(),
        ]);
        (command, "detached process", None)
    }
}

/// Stops the timer of a confirmation, if it has one. A timer already gone (fired, or never
/// started because systemd stopped) is no failure.
pub(crate) async fn disarm(host: &Host, confirmation: &Confirmation) {
    if let Some(unit) = &confirmation.unit {
        if host.has_systemd() {
            let stop = Command::new(["systemctl", "stop", &format!("{unit}.timer")]).timeout(30);
            let _ = host.run(&stop).await;
        }
    }
}
