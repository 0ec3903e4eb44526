//! `harden`: idempotent host hardening for Debian and Ubuntu servers.
//!
//! The binary wires the crates together: the planner turns playbooks and the live system
//! into a plan, the executor carries it out, and `render` shows it. See `README.md`.

// Libraries never print; the binary is where output belongs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod audit;
mod render;
mod report;
mod saved;
mod workflow;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use harden_executor::{Event, Executor, Restored};
use harden_host::Host;
use harden_plan::{Plan, Step};
use harden_planner::{Loaded, Options, PlanError};
use report::{Body, InvalidValue, Report, Rollback, Snapshot};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use args::{Args, Cmd, Format};

/// Exit codes of DESIGN.md.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const PENDING: u8 = 2;
    pub const ROLLBACK_INCOMPLETE: u8 = 3;
    /// A saved plan was refused: stale, or from another machine or harden version.
    pub const STALE: u8 = 4;
    /// An apply made with `--confirm-within` waits for `harden confirm`.
    pub const UNCONFIRMED: u8 = 5;
}

fn main() -> ExitCode {
    let args = Args::parse();
    audit::init(args.verbose, args.quiet);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if args.format == Format::Json {
                println!(
                    "{}",
                    Report::new(Body::Error {
                        error: format!("{e:#}")
                    })
                    .to_line()
                );
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Writes text for people to stdout in one go, coloured only when that is wanted
/// (a terminal, and no NO_COLOR).
pub(crate) fn print(
    render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    render(&mut buffer)?;
    let mut out = anstream::stdout().lock();
    out.write_all(&buffer)?;
    out.flush()
}

/// Messages for people, on stderr.
macro_rules! say {
    ($args:expr, $($fmt:tt)*) => {
        if $args.format == Format::Text {
            anstream::eprintln!($($fmt)*);
        }
    };
}

async fn run(args: &Args) -> anyhow::Result<u8> {
    if !args.root.is_absolute() || !args.root.is_dir() {
        anyhow::bail!(
            "--root {}: not an absolute path to a directory",
            args.root.display()
        );
    }
    let host = Host::new(args.root.clone());
    match &args.command {
        Cmd::Validate { playbooks } => {
            let Some(loaded) = load(args, playbooks) else {
                return Ok(exit::FAILED);
            };
            match args.format {
                Format::Json => println!(
                    "{}",
                    Report::new(Body::Valid {
                        playbooks: loaded.names(),
                        sections: loaded.playbook.sections(),
                    })
                    .to_line()
                ),
                Format::Text => println!(
                    "valid: {} (sections: {})",
                    loaded.names().join(", "),
                    loaded.playbook.sections().join(", ")
                ),
            }
            Ok(exit::OK)
        }
        Cmd::Plan {
            playbooks,
            detailed_exitcode,
            out,
        } => {
            let Some(loaded) = load(args, playbooks) else {
                return Ok(exit::FAILED);
            };
            let out = out.as_deref().map(|file| (file, playbooks.as_slice()));
            plan_only(args, &host, &loaded, false, *detailed_exitcode, out).await
        }
        Cmd::Apply {
            playbooks,
            dry_run,
            confirm_within,
            ..
        } if workflow::saved_plan_arg(playbooks)?.is_some() => {
            let within = workflow::parse_within(&host, confirm_within.as_deref())?;
            workflow::apply_saved(args, &host, &playbooks[0], *dry_run, within).await
        }
        Cmd::Apply {
            playbooks,
            dry_run: true,
            detailed_exitcode,
            ..
        } => {
            let Some(loaded) = load(args, playbooks) else {
                return Ok(exit::FAILED);
            };
            plan_only(args, &host, &loaded, true, *detailed_exitcode, None).await
        }
        Cmd::Apply {
            playbooks,
            dry_run: false,
            confirm_within,
            ..
        } => {
            let within = workflow::parse_within(&host, confirm_within.as_deref())?;
            if let Some(code) = workflow::refuse_while_pending(args, &host)? {
                return Ok(code);
            }
            let Some(loaded) = load(args, playbooks) else {
                return Ok(exit::FAILED);
            };
            apply(args, &host, &loaded, within).await
        }
        Cmd::Rollback {
            id: Some(id),
            unconfirmed: true,
        } => workflow::rollback_unconfirmed(args, &host, id).await,
        Cmd::Rollback { id, .. } => rollback(args, &host, id.as_deref()).await,
        Cmd::Confirm => workflow::confirm(args, &host).await,
        Cmd::Log => workflow::log(args, &host),
        Cmd::Show { file } => workflow::show(args, file),
        Cmd::Snapshots => snapshots(args, &host),
        Cmd::Completions { shell } => completions(*shell),
        Cmd::Schema => schema(),
    }
}

/// Prints the completion script for `shell`; the same as the package installs (build.rs).
fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    use clap::CommandFactory as _;
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Args::command(), "harden", &mut out);
    out.flush()?;
    Ok(exit::OK)
}

/// Prints the JSON Schema of the playbook format, generated from the types the loader reads
/// playbooks into.
fn schema() -> anyhow::Result<u8> {
    let schema = schemars::schema_for!(harden_planner::Playbook);
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(exit::OK)
}

/// Loads playbooks, printing their errors; `None` when they are invalid.
fn load(args: &Args, playbooks: &[std::path::PathBuf]) -> Option<Loaded> {
    match harden_planner::load_files(playbooks) {
        Ok(loaded) => Some(loaded),
        Err(diagnostics) => {
            report_invalid(args, &diagnostics);
            None
        }
    }
}

fn report_invalid(args: &Args, diagnostics: &harden_planner::Diagnostics) {
    match args.format {
        Format::Json => {
            let errors: Vec<_> = diagnostics
                .errors
                .iter()
                .map(|e| {
                    let file = diagnostics
                        .sources
                        .get(e.at.source as usize)
                        .map(|s| s.name.clone());
                    InvalidValue {
                        file,
                        line: e.at.line,
                        column: e.at.column,
                        message: e.message.clone(),
                        help: e.help.clone(),
                    }
                })
                .collect();
            println!("{}", Report::new(Body::Invalid { errors }).to_line());
        }
        Format::Text => {
            // The headline of each error is marked, whatever the file's name starts with.
            for (i, err) in diagnostics.errors.iter().enumerate() {
                if i > 0 {
                    anstream::eprintln!();
                }
                let (headline, rest) = diagnostics.render(err);
                anstream::eprintln!(
                    "{}error:{} {headline}",
                    anstyle::AnsiColor::Red.on_default().bold().render(),
                    anstyle::Reset.render()
                );
                for line in rest {
                    anstream::eprintln!("{line}");
                }
            }
        }
    }
}

fn options(args: &Args) -> Options {
    Options {
        overrides: args.allow.iter().cloned().collect::<BTreeSet<_>>(),
    }
}

/// Plans, printing refusals and errors; `Err(code)` when no plan could be made. A refused
/// plan is still shown (without the refused resources' changes) when `show_refused`.
async fn make_plan(
    args: &Args,
    host: &Host,
    loaded: &Loaded,
    show_refused: bool,
) -> Result<Plan, u8> {
    harden_planner::plan(host, loaded, &options(args))
        .await
        .map_err(|e| plan_failed(args, loaded, e, show_refused))
}

/// Prints why no plan could be made; the exit code.
fn plan_failed(args: &Args, loaded: &Loaded, error: PlanError, show_refused: bool) -> u8 {
    match error {
        PlanError::Invalid(diagnostics) => {
            report_invalid(args, &diagnostics);
            exit::FAILED
        }
        ref e @ PlanError::Refused(_, ref partial) => {
            tracing::warn!(
                target: harden_executor::AUDIT,
                playbooks = %loaded.names().join(", "),
                result = "refused",
                "plan refused by a guard: {e}"
            );
            match args.format {
                Format::Json => println!(
                    "{}",
                    Report::new(Body::Refused {
                        error: e.to_string(),
                        plan: show_refused.then_some(&**partial),
                    })
                    .to_line()
                ),
                Format::Text => {
                    if show_refused {
                        let _ = print(|out| render::plan_text(out, partial, false));
                        anstream::eprintln!("apply would be refused:");
                    }
                    anstream::eprintln!("{e}");
                }
            }
            if !show_refused {
                say!(args, "nothing was changed");
            }
            exit::FAILED
        }
        e => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    Report::new(Body::Error {
                        error: e.to_string()
                    })
                    .to_line()
                ),
                Format::Text => anstream::eprintln!("error: {e}"),
            }
            exit::FAILED
        }
    }
}

/// Plans and shows the plan; with `out`, also saves it (`harden plan --out FILE`), with
/// the playbook paths it was loaded from.
async fn plan_only(
    args: &Args,
    host: &Host,
    loaded: &Loaded,
    dry_run: bool,
    detailed: bool,
    out: Option<(&std::path::Path, &[std::path::PathBuf])>,
) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    if let Some(id) = executor.interrupted()? {
        say!(args, "warning: an earlier apply was interrupted; the next `harden apply` or `harden rollback` first restores snapshot {id}");
    }
    let plan = match make_plan(args, host, loaded, true).await {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    if let Some((file, playbooks)) = out {
        let saved = saved::make(host, loaded, playbooks, &args.allow, plan.clone()).await?;
        saved::write(file, &saved)?;
        say!(
            args,
            "saved the plan to {}; `harden apply {}` applies exactly it",
            file.display(),
            file.display()
        );
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&plan)?),
        Format::Text => {
            print(|out| render::plan_text(out, &plan, dry_run))?;
        }
    }
    Ok(if detailed && !plan.is_empty() {
        exit::PENDING
    } else {
        exit::OK
    })
}

pub(crate) fn progress(args: &Args) -> impl FnMut(Event<'_>) + '_ {
    let mut tree = TreeReports::new();
    move |event| {
        if args.format != Format::Text {
            return;
        }
        match event {
            Event::Tree(p) => tree.report(&p),
            Event::Step {
                number,
                total,
                step,
            } => {
                // Every step for plans a person reads; every 5% for large ones.
                let every = (total / 20).max(1);
                if total <= 200 || number % every == 0 || number == total {
                    anstream::eprintln!("[{number}/{total}] {}", step_text(step));
                }
            }
            Event::Ran { code: Some(0), .. } => {}
            Event::Ran { command, code } => {
                anstream::eprintln!("  `{}` exited with {code:?}", command.display())
            }
            Event::Skipped { command } => {
                anstream::eprintln!(
                    "  not live (--root, or no systemd): skipped `{}`",
                    command.display()
                )
            }
        }
    }
}

/// When to report a tree step's progress on stderr: every second on a terminal, every 30
/// seconds otherwise (a log stays readable), and at the end of a tree that was reported.
struct TreeReports {
    every: Duration,
    started: std::time::Instant,
    last: Option<std::time::Instant>,
}

impl TreeReports {
    fn new() -> Self {
        use std::io::IsTerminal as _;
        let terminal = std::io::stderr().is_terminal();
        TreeReports {
            every: Duration::from_secs(if terminal { 1 } else { 30 }),
            started: std::time::Instant::now(),
            last: None,
        }
    }

    fn report(&mut self, p: &harden_executor::TreeProgress<'_>) {
        let now = std::time::Instant::now();
        let since = self.last.unwrap_or(self.started);
        let end = p.walked >= p.entries;
        if now.duration_since(since) < self.every && !(end && self.last.is_some()) {
            return;
        }
        self.last = Some(now);
        anstream::eprintln!(
            "  files: {} of {} entries under {} ({} changed)",
            harden_plan::grouped(p.walked),
            harden_plan::grouped(p.entries),
            p.root.display(),
            harden_plan::grouped(p.changed)
        );
    }
}

fn step_text(step: &Step) -> String {
    match step {
        Step::SetTreeAttrs(tree) => format!(
            "set the attributes of {} of {} entries below {}",
            harden_plan::grouped(tree.changes),
            harden_plan::grouped(tree.entries),
            tree.root.display()
        ),
        Step::WriteFile { path, .. } => format!("write {}", path.display()),
        Step::SetAttrs { path, to, .. } => format!(
            "set {} to mode {:04o}, owner {}:{}",
            path.display(),
            to.mode,
            to.uid,
            to.gid
        ),
        Step::CreateDir { path, .. } => format!("create directory {}", path.display()),
        Step::CreateFile { path, .. } => format!("create empty file {}", path.display()),
        Step::RemoveFile { path, .. } => format!("remove {}", path.display()),
        Step::EditEnv { path, edits, .. } => {
            format!("edit {}: {}", path.display(), env_keys(edits))
        }
        Step::Run(cmd) => format!("run {}", cmd.display()),
        Step::Validate(cmd) => format!("check {}", cmd.display()),
        Step::Reload { service, .. } => format!("reload {service}"),
        Step::Unit(unit) => format!("unit {}", unit.summary()),
    }
}

/// The keys an env-file step sets, by name only (values are never shown).
fn env_keys(edits: &[harden_plan::EnvEdit]) -> String {
    edits
        .iter()
        .map(|e| e.key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn report_restored(args: &Args, restored: &Restored, what: &str) {
    for found in &restored.foreign {
        say!(
            args,
            "warning: changed by someone else while harden ran, left as found: {found}"
        );
    }
    if restored.complete() {
        say!(args, "{what}: restored snapshot {}", restored.snapshot);
    } else {
        say!(
            args,
            "{what}: snapshot {} restored INCOMPLETELY:",
            restored.snapshot
        );
        for failure in &restored.failures {
            say!(args, "  {failure}");
        }
    }
}

async fn apply(
    args: &Args,
    host: &Host,
    loaded: &Loaded,
    within: Option<Duration>,
) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    // A read-only plan first: an impossible playbook, a refusal or nothing to do must leave
    // the system exactly as it was, not even a lock file created. It only tells whether
    // anything would change, so it stops where it first meets a change.
    let converged = harden_planner::plan_if_converged(host, loaded, &options(args)).await;
    let converged = match converged {
        Ok(converged) => converged,
        Err(e) => return Ok(plan_failed(args, loaded, e, false)),
    };
    let interrupted = executor.interrupted()?.is_some();
    let plan = if let (Some(plan), false) = (converged, interrupted) {
        plan
    } else {
        // The authoritative plan is made under the lock, after any recovery.
        let lock = executor.lock(Duration::from_secs(args.lock_timeout))?;
        let mut on = progress(args);
        if let Some(restored) = executor.recover(&lock, &mut on).await? {
            report_restored(args, &restored, "an earlier apply was interrupted");
            if !restored.complete() {
                return Ok(exit::ROLLBACK_INCOMPLETE);
            }
        }
        let plan = match make_plan(args, host, loaded, false).await {
            Ok(plan) => plan,
            Err(code) => return Ok(code),
        };
        if !plan.is_empty() {
            let how = How {
                verify: Ok(loaded),
                options: options(args),
                within,
            };
            return execute(args, host, &how, &executor, &lock, plan).await;
        }
        plan
    };
    if within.is_some() {
        say!(args, "nothing changed, so there is nothing to confirm");
    }
    match args.format {
        Format::Json => println!(
            "{}",
            Report::new(Body::Unchanged {
                changed: false,
                plan: &plan
            })
            .to_line()
        ),
        Format::Text => print(|out| render::summary(out, &plan))?,
    }
    Ok(exit::OK)
}

/// How to apply a plan: what to verify it against (the playbooks, or why it cannot be
/// verified), and whether to arm a confirm-or-revert.
pub(crate) struct How<'a> {
    /// The playbooks the verifying re-plan uses, or why there is none.
    pub verify: Result<&'a Loaded, String>,
    /// The guard overrides the plan was made with, for the verifying re-plan.
    pub options: Options,
    /// `--confirm-within`.
    pub within: Option<Duration>,
}

/// Applies a non-empty plan under the lock: snapshot, steps, verification, rollback.
pub(crate) async fn execute(
    args: &Args,
    host: &Host,
    how: &How<'_>,
    executor: &Executor,
    lock: &harden_executor::Lock,
    plan: Plan,
) -> anyhow::Result<u8> {
    let mut on = progress(args);
    if args.format == Format::Text {
        print(|out| render::plan_text(out, &plan, false))?;
    }
    // From here on, Ctrl-C, SIGTERM and SIGHUP stop the run between two steps and roll it
    // back, rather than leave the restore to the next run. (SIGKILL still can't be caught:
    // the journal covers it.)
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    let mut tx = executor
        .begin(lock, &plan)
        .await
        .context("cannot take the snapshot; nothing was changed")?;
    let snapshot = tx.snapshot().to_owned();
    say!(
        args,
        "snapshot {snapshot} taken; applying {} changes",
        plan.changes.len()
    );
    let failure = match (tx.execute(&stop, &mut on).await, &how.verify) {
        (Err(failed), _) => Some(failed.to_string()),
        (Ok(()), Ok(loaded)) => verify(host, loaded, &how.options).await,
        (Ok(()), Err(why)) => {
            say!(args, "verification skipped: {why}");
            None
        }
    };
    let Some(failure) = failure else {
        let id = tx.commit()?;
        let confirmation = match how.within {
            Some(within) => Some(workflow::arm(args, executor, lock, &id, within).await?),
            None => None,
        };
        match args.format {
            Format::Json => println!(
                "{}",
                Report::new(Body::Changed {
                    changed: true,
                    snapshot: id,
                    confirmation: confirmation.as_ref().map(report::Confirmation::from),
                    verification_skipped: how.verify.as_ref().err().cloned(),
                    plan: &plan
                })
                .to_line()
            ),
            Format::Text => say!(
                args,
                "Applied {} changes. `harden rollback {id}` undoes them.",
                plan.changes.len()
            ),
        }
        return Ok(exit::OK);
    };
    tracing::warn!(
        target: harden_executor::AUDIT,
        snapshot = %snapshot,
        result = "failed",
        "apply failed, rolling back: {failure}"
    );
    say!(args, "error: {failure}; rolling back");
    let restored = tx.roll_back(&mut on).await?;
    report_restored(args, &restored, "rolled back");
    let code = if restored.complete() {
        exit::FAILED
    } else {
        exit::ROLLBACK_INCOMPLETE
    };
    if args.format == Format::Json {
        let rollback = Rollback {
            complete: restored.complete(),
            failures: restored.failures,
            foreign: restored.foreign,
        };
        let body = Body::Failed {
            changed: false,
            error: failure,
            snapshot,
            rollback,
            plan: &plan,
        };
        println!("{}", Report::new(body).to_line());
    }
    Ok(code)
}

/// Plans again after the steps: a change that did not take must not be reported as made.
/// `None` when nothing is left to do, else why the apply failed.
async fn verify(host: &Host, loaded: &Loaded, options: &Options) -> Option<String> {
    match harden_planner::plan(host, loaded, options).await {
        Ok(after) if after.is_empty() => None,
        Ok(after) => {
            let targets: Vec<String> = after
                .changes
                .iter()
                .map(|c| format!("{} {} ({})", c.resource, c.target, c.reason))
                .collect();
            Some(format!(
                "applied, but these changes did not take: {}",
                targets.join("; ")
            ))
        }
        Err(e) => Some(format!(
            "applied, but the system could not be verified: {e}"
        )),
    }
}

async fn rollback(args: &Args, host: &Host, id: Option<&str>) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    let lock = executor.lock(Duration::from_secs(args.lock_timeout))?;
    let mut on = progress(args);
    if let Some(restored) = executor.recover(&lock, &mut on).await? {
        report_restored(args, &restored, "an earlier run was interrupted");
        if !restored.complete() {
            return Ok(exit::FAILED);
        }
    }
    let restored = executor.rollback(&lock, id, &mut on).await?;
    report_restored(args, &restored, "rollback");
    if args.format == Format::Json {
        println!(
            "{}",
            Report::new(if restored.complete() {
                Body::Restored {
                    snapshot: restored.snapshot.clone(),
                    failures: Vec::new(),
                }
            } else {
                Body::Incomplete {
                    snapshot: restored.snapshot.clone(),
                    failures: restored.failures.clone(),
                }
            })
            .to_line()
        );
    }
    Ok(if restored.complete() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn snapshots(args: &Args, host: &Host) -> anyhow::Result<u8> {
    let executor = Executor::new(host.clone());
    let all = executor.snapshots()?;
    let mut confirmations = Vec::new();
    for m in &all {
        confirmations.push(executor.confirmation(&m.id)?);
    }
    match args.format {
        Format::Json => {
            let list: Vec<_> = all
                .iter()
                .zip(&confirmations)
                .map(|(m, c)| Snapshot {
                    id: m.id.clone(),
                    created: m.created.to_string(),
                    purpose: m.purpose.clone(),
                    playbooks: m.playbooks.clone(),
                    changes: m.changes,
                    paths: m.entries.len(),
                    confirmation: c.as_ref().map(report::Confirmation::from),
                })
                .collect();
            println!(
                "{}",
                Report::new(Body::Snapshots { snapshots: list }).to_line()
            );
        }
        Format::Text => {
            print(|out| {
                if all.is_empty() {
                    return writeln!(out, "no snapshots");
                }
                writeln!(
                    out,
                    "{:<22} {:<25} {:<9} {:>7}  PLAYBOOKS",
                    "ID", "CREATED", "PURPOSE", "CHANGES"
                )?;
                for (m, c) in all.iter().zip(&confirmations) {
                    writeln!(
                        out,
                        "{:<22} {:<25} {:<9} {:>7}  {}{}",
                        m.id,
                        m.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
                        m.purpose,
                        m.changes,
                        m.playbooks.join(", "),
                        c.as_ref()
                            .map(workflow::confirmation_text)
                            .unwrap_or_default()
                    )?;
                }
                Ok(())
            })?;
        }
    }
    Ok(exit::OK)
}
