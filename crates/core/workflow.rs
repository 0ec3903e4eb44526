//! The operator's workflow around apply: saved plans applied exactly (`apply FILE`,
//! `show FILE`), confirm-or-revert (`--confirm-within`, `confirm`, the timer's
//! `rollback --unconfirmed`) and the history (`log`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harden_executor::{Confirmation, Executor, Lock};
use harden_host::Host;

use crate::args::{Args, Format};
use crate::report::{self, Body, LogEntry, Report};
use crate::saved::{self, SavedPlan};
use crate::{execute, exit, print, progress, render, report_restored, How};

/// Messages for people, on stderr.
macro_rules! say {
    ($args:expr, $($fmt:tt)*) => {
        if $args.format == Format::Text {
            anstream::eprintln!($($fmt)*);
        }
    };
}

/// The saved plan `apply` was given, if its one argument is one. A saved plan mixed with
/// playbooks is an error: it is applied alone, exactly.
pub fn saved_plan_arg(playbooks: &[PathBuf]) -> anyhow::Result<Option<SavedPlan>> {
    let mut found = None;
    for file in playbooks {
        if let Some(saved) = saved::read(file)? {
            if playbooks.len() > 1 {
                anyhow::bail!(
                    "{} is a saved plan: apply it alone, without playbooks",
                    file.display()
                );
            }
            found = Some(saved);
        }
    }
    Ok(found)
}

/// `--confirm-within DURATION` (`20s`, `5m`, `1h 30m`).
/// Refused under `--root`: an image has no services to lock anyone out, and no timer of
/// its own to roll back with.
pub fn parse_within(host: &Host, text: Option<&str>) -> anyhow::Result<Option<Duration>> {
    let Some(text) = text else { return Ok(None) };
    if !host.is_live() {
        anyhow::bail!("--confirm-within needs the live system, not --root; nothing was changed");
    }
    let within = humantime::parse_duration(text)
        .map_err(|e| anyhow::anyhow!("--confirm-within {text:?}: {e} (for example 20s, 5m)"))?;
    if within < Duration::from_secs(1) {
        anyhow::bail!("--confirm-within {text:?}: at least one second");
    }
    Ok(Some(within))
}

/// Refuses an apply while an earlier one waits for its confirmation (exit 5): applying
/// over it would make its rollback undo this apply too, or this one's undo the other's.
pub fn refuse_while_pending(args: &Args, host: &Host) -> anyhow::Result<Option<u8>> {
    let Some((id, pending)) = Executor::new(host.clone()).pending()? else {
        return Ok(None);
    };
    let error = format!(
        "the apply of snapshot {id} waits for `harden confirm` (it is rolled back at {} otherwise); confirm it first",
        pending.deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    tracing::warn!(target: harden_executor::AUDIT, snapshot = %id, result = "refused", "apply refused: {error}");
    match args.format {
        Format::Json => println!(
            "{}",
            Report::new(Body::Unconfirmed {
                error,
                snapshot: id,
                confirmation: report::Confirmation::from(&pending),
            })
            .to_line()
        ),
        Format::Text => {
            anstream::eprintln!("error: {error}");
            anstream::eprintln!("nothing was changed");
        }
    }
    Ok(Some(exit::UNCONFIRMED))
}

/// `harden apply FILE`: checks every precondition of the saved plan, then applies exactly
/// it, under the lock.
pub async fn apply_saved(
    args: &Args,
    host: &Host,
    file: &Path,
    dry_run: bool,
    within: Option<Duration>,
) -> anyhow::Result<u8> {
    if dry_run {
        anyhow::bail!(
            "--dry-run takes playbooks; `harden show {}` shows a saved plan",
            file.display()
        );
    }
    if let Some(code) = refuse_while_pending(args, host)? {
        return Ok(code);
    }
    let saved = saved::read(file)?
        .ok_or_else(|| anyhow::anyhow!("{}: not a saved plan", file.display()))?;
    // Read-only first: a stale plan leaves the system as it was, not even a lock file.
    if let Some(code) = refuse_stale(args, host, file, &saved).await? {
        return Ok(code);
    }
    if saved.plan.is_empty() {
        match args.format {
            Format::Json => println!(
                "{}",
                Report::new(Body::Unchanged {
                    changed: false,
                    plan: &saved.plan
                })
                .to_line()
            ),
            Format::Text => print(|out| render::summary(out, &saved.plan))?,
        }
        return Ok(exit::OK);
    }
    let executor = Executor::new(host.clone());
    let lock = executor.lock(Duration::from_secs(args.lock_timeout))?;
    let mut on = progress(args);
    if let Some(restored) = executor.recover(&lock, &mut on).await? {
        report_restored(args, &restored, "an earlier apply was interrupted");
        if !restored.complete() {
            return Ok(exit::ROLLBACK_INCOMPLETE);
        }
    }
    // Again under the lock: what is checked is what the steps find.
    if let Some(code) = refuse_stale(args, host, file, &saved).await? {
        return Ok(code);
    }
    let loaded = saved::playbooks_again(&saved);
    let how = How {
        verify: loaded.as_ref().map_err(Clone::clone),
        options: harden_planner::Options {
            overrides: saved.allow.iter().cloned().collect(),
        },
        within,
    };
    execute(args, host, &how, &executor, &lock, saved.plan.clone()).await
}

/// Refuses a saved plan that no longer applies exactly (exit 4), naming each change.
async fn refuse_stale(
    args: &Args,
    host: &Host,
    file: &Path,
    saved: &SavedPlan,
) -> anyhow::Result<Option<u8>> {
    let changed = saved::stale(host, saved).await?;
    if changed.is_empty() {
        return Ok(None);
    }
    let error = format!(
        "the saved plan {} is stale: {} of what it assumed no longer holds; make a new plan",
        file.display(),
        changed.len()
    );
    tracing::warn!(
        target: harden_executor::AUDIT,
        playbooks = %saved.plan.playbooks.join(", "),
        changed = %changed.join("; "),
        result = "stale",
        "saved plan refused: {error}"
    );
    match args.format {
        Format::Json => println!("{}", Report::new(Body::Stale { error, changed }).to_line()),
        Format::Text => {
            anstream::eprintln!("error: {error}:");
            for line in &changed {
                anstream::eprintln!("  {line}");
            }
            anstream::eprintln!("nothing was changed");
        }
    }
    Ok(Some(exit::STALE))
}

/// Arms the rollback of a committed apply. When it cannot be armed, the apply is rolled
/// back at once: the operator asked not to keep it without that net.
pub async fn arm(
    args: &Args,
    executor: &Executor,
    lock: &Lock,
    id: &str,
    within: Duration,
) -> anyhow::Result<Confirmation> {
    let program = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find harden's own executable: {e}"))?;
    match executor.arm(lock, id, within, &program).await {
        Ok(confirmation) => {
            say!(
                args,
                "Rollback armed ({}): snapshot {id} is restored at {} unless `harden confirm` runs first (from a new SSH session: proof that logging in still works).",
                confirmation.armed_by,
                confirmation.deadline.strftime("%Y-%m-%d %H:%M:%S UTC")
            );
            Ok(confirmation)
        }
        Err(e) => {
            say!(args, "error: {e}; rolling back now");
            let restored = executor
                .rollback(lock, Some(id), &mut progress(args))
                .await?;
            report_restored(args, &restored, "rolled back");
            Err(e.into())
        }
    }
}

/// `harden rollback --unconfirmed ID`, run by the timer at the deadline.
pub async fn rollback_unconfirmed(args: &Args, host: &Host, id: &str) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    let lock = executor.lock(Duration::from_secs(args.lock_timeout))?;
    let mut on = progress(args);
    if let Some(restored) = executor.recover(&lock, &mut on).await? {
        report_restored(args, &restored, "an earlier run was interrupted");
    }
    let Some(restored) = executor.rollback_unconfirmed(&lock, id, &mut on).await? else {
        say!(
            args,
            "snapshot {id} was confirmed (or rolled back) in time; nothing to do"
        );
        return Ok(exit::OK);
    };
    report_restored(args, &restored, "not confirmed in time, rolled back");
    Ok(if restored.complete() {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// `harden confirm`: keeps the pending apply. Exit 1 when it was already rolled back.
pub async fn confirm(args: &Args, host: &Host) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    let lock = executor.lock(Duration::from_secs(args.lock_timeout))?;
    if let Some((id, confirmation)) = executor.confirm(&lock).await? {
        match args.format {
            Format::Json => println!(
                "{}",
                Report::new(Body::Confirmed {
                    snapshot: id,
                    confirmation: report::Confirmation::from(&confirmation),
                })
                .to_line()
            ),
            Format::Text => say!(args, "confirmed: the apply of snapshot {id} stays"),
        }
        return Ok(exit::OK);
    }
    // Nothing pending: say whether it is because the newest one ran out.
    let newest = executor.snapshots()?.into_iter().rev().find_map(|m| {
        executor
            .confirmation(&m.id)
            .ok()
            .flatten()
            .map(|c| (m.id, c))
    });
    match newest {
        Some((id, c)) if c.state == harden_executor::ConfirmState::RolledBack => {
            anyhow::bail!(
                "too late: the apply of snapshot {id} was rolled back ({})",
                c.reason.unwrap_or_default()
            )
        }
        _ => anyhow::bail!("no apply waits for confirmation"),
    }
}

/// ` [pending until 2026-12-01 14:00:00 UTC]`, the confirmation column of `snapshots`.
pub fn confirmation_text(c: &Confirmation) -> String {
    let when = |t: &jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    match c.state {
        harden_executor::ConfirmState::Pending => {
            format!("  [confirmation pending until {}]", when(&c.deadline))
        }
        harden_executor::ConfirmState::Confirmed => "  [confirmed]".into(),
        harden_executor::ConfirmState::RolledBack => format!(
            "  [rolled back: {}]",
            c.reason.as_deref().unwrap_or("not confirmed")
        ),
    }
}

/// `harden log`: one entry per snapshot kept, oldest first.
pub fn log(args: &Args, host: &Host) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    let mut entries = Vec::new();
    for m in executor.snapshots()? {
        let outcome = executor.outcome(&m.id)?;
        let confirmation = executor.confirmation(&m.id)?;
        entries.push(LogEntry {
            time: m.created.to_string(),
            purpose: m.purpose.clone(),
            playbooks: m.playbooks.clone(),
            changed: outcome
                .as_ref()
                .map(|o| o.targets.clone())
                .unwrap_or_default(),
            result: outcome.map_or_else(|| "unknown".into(), |o| o.result),
            confirmation: confirmation.as_ref().map(report::Confirmation::from),
            id: m.id,
        });
    }
    match args.format {
        Format::Json => println!("{}", Report::new(Body::Log { entries }).to_line()),
        Format::Text => print(|out| log_text(out, &entries))?,
    }
    Ok(exit::OK)
}

fn log_text(out: &mut Vec<u8>, entries: &[LogEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "no history: no snapshots");
    }
    for e in entries {
        let confirmation = e
            .confirmation
            .as_ref()
            .map(|c| format!(" (confirmation {})", c.state))
            .unwrap_or_default();
        writeln!(
            out,
            "{} {} {}: {}{confirmation} [{}]",
            e.id,
            e.purpose,
            e.playbooks.join(", "),
            e.result,
            e.time
        )?;
        for target in &e.changed {
            writeln!(out, "    {target}")?;
        }
    }
    Ok(())
}

/// `harden show FILE`: the saved plan, for people (the plan and what it assumes) or as the
/// file's own JSON.
pub fn show(args: &Args, file: &Path) -> anyhow::Result<u8> {
    let saved = saved::read(file)?
        .ok_or_else(|| anyhow::anyhow!("{}: not a saved plan", file.display()))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&saved)?),
        Format::Text => print(|out| show_text(out, &saved))?,
    }
    Ok(exit::OK)
}

fn show_text(out: &mut Vec<u8>, saved: &SavedPlan) -> std::io::Result<()> {
    writeln!(
        out,
        "saved plan made {} by harden {} on machine {} for root {}",
        saved.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        saved.harden,
        saved.machine_id,
        saved.plan.root.display()
    )?;
    for p in &saved.playbooks {
        writeln!(out, "playbook {} sha256 {}", p.name, p.sha256)?;
    }
    writeln!(
        out,
        "assumes {} paths and {} units as they were:",
        saved.preconditions.paths.len(),
        saved.preconditions.units.len()
    )?;
    for p in &saved.preconditions.paths {
        match &p.found {
            None => writeln!(out, "  {}: absent", p.path.display())?,
            Some(f) => writeln!(
                out,
                "  {}: {} {:04o} {}:{}{}",
                p.path.display(),
                f.kind,
                f.mode,
                f.uid,
                f.gid,
                f.sha256
                    .as_ref()
                    .map(|h| format!(" sha256 {h}"))
                    .unwrap_or_default()
            )?,
        }
    }
    for u in &saved.preconditions.units {
        writeln!(
            out,
            "  {}: {}, {}",
            u.unit, u.state.enablement, u.state.active
        )?;
    }
    render::plan_text(out, &saved.plan, false)
}
