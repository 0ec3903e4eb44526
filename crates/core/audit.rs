//! The audit trail's subscriber: the libraries' `tracing` records go to the journal when
//! there is one (identifier `harden`, fields SNAPSHOT, PLAYBOOKS, RESOURCE, TARGET, RESULT,
//! CHANGED), and to stderr otherwise.
//!
//! The journal gets the whole trail (`info`) by default, since it is where an operator
//! looks afterwards; stderr only warnings and errors, since the text output already says
//! what happens. `-v` and `-q` move both by a level; `RUST_LOG` overrides them. No record
//! carries a secret: the libraries log names (paths, keys, units), never values.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// Where journald listens; present on every system booted with systemd.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The identifier `journalctl -t` finds harden's records by.
pub const IDENTIFIER: &str = "harden";

/// Installs the subscriber for this run.
pub fn init(verbose: u8, quiet: bool) {
    let journal = Path::new(JOURNAL_SOCKET)
        .exists()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        .map(|layer| {
            layer
                .with_syslog_identifier(IDENTIFIER.into())
                .with_field_prefix(None)
        });
    let base: i32 = if journal.is_some() { 2 } else { 1 };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level(base + i32::from(verbose) - i32::from(quiet))));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match journal {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .without_time(),
            )
            .try_init(),
    };
    // A second init (none happens) would keep the first; nothing to report.
    drop(result);
}

/// The level name for a verbosity: 0 errors only, 1 warnings, 2 the audit trail, 3 debug.
fn level(verbosity: i32) -> &'static str {
    match verbosity {
        i32::MIN..=0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}
