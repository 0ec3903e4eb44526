//! The command line.
//!
//! `build.rs` includes this file too, to render the man page and the shell completions from
//! these same definitions: it may use only `std`, `clap` and `clap_complete`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

/// The version and the commit it was built from, as `--version` prints it. `build.rs` sets
/// `HARDEN_VERSION`; the fallback is for build.rs's own compile of this file.
pub const VERSION: &str = match option_env!("HARDEN_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

/// Idempotent host hardening for Debian and Ubuntu: plan, apply, roll back.
#[derive(Debug, Parser)]
#[command(name = "harden", version = VERSION, about, long_about = None)]
pub struct Args {
    /// Operate on the system image mounted at DIR (image builds, chroots): paths, users and
    /// groups resolve inside DIR, commands run chrooted, services are not reloaded.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Output for people (text) or for programs (json, on stdout).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Override a lockout guard by name (repeatable); the refusal message names the guard.
    #[arg(long = "allow", global = true, value_name = "GUARD")]
    pub allow: Vec<String>,

    /// Seconds to wait for another harden run to finish.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 300)]
    pub lock_timeout: u64,

    /// More log records (repeatable): on stderr, or in the journal when there is one.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Fewer log records: errors only. `RUST_LOG` overrides both.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Cmd,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Coloured diffs for people (honours NO_COLOR and non-terminals).
    Text,
    /// One JSON document on stdout.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Show what apply would change (reads only).
    Plan {
        /// Playbooks, merged in order; none means the built-in baseline.
        playbooks: Vec<PathBuf>,
        /// Exit 2 when changes are pending (0: none, 1: error).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also save the plan to FILE (mode 0600) with what it assumes, for
        /// `harden apply FILE` to apply exactly; no secret is in it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Make the changes, validate, reload; roll back on any failure.
    Apply {
        /// Playbooks, merged in order; none means the built-in baseline. Or one saved plan
        /// (`harden plan --out`), applied exactly, refused as stale (exit 4) if anything it
        /// assumed changed.
        playbooks: Vec<PathBuf>,
        /// Roll the apply back unless `harden confirm` runs within DURATION (`20s`, `5m`);
        /// a systemd timer (or a detached process) does it, whatever happens to this one.
        #[arg(long, value_name = "DURATION")]
        confirm_within: Option<String>,
        /// Do everything but the changes: show the plan and every command it would run.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: exit 2 when changes are pending.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Restore a snapshot (default: the one taken by the newest apply) and reload.
    Rollback {
        /// Snapshot id, as `harden snapshots` lists it.
        id: Option<String>,
        /// Only if the confirmation of snapshot ID is still pending (what the timer armed by
        /// `--confirm-within` runs).
        #[arg(long, requires = "id")]
        unconfirmed: bool,
    },
    /// Keep the apply made with --confirm-within: disarm its rollback.
    Confirm,
    /// List snapshots, with any pending confirmation and its deadline.
    Snapshots,
    /// Show the history of applies and rollbacks, from the snapshots.
    ///
    /// One entry per snapshot kept: id, time, purpose, playbooks, changed targets, result,
    /// and its confirmation when it had one.
    Log,
    /// Show a saved plan (`harden plan --out`): what it changes and what it assumes.
    Show {
        /// The saved plan file.
        file: PathBuf,
    },
    /// Parse and check playbooks only.
    Validate {
        /// Playbooks, merged in order; none means the built-in baseline.
        playbooks: Vec<PathBuf>,
    },
    /// Print the shell completion script for SHELL (the Debian package installs them).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the playbook format, for editors (yaml-language-server).
    Schema,
}
