//! Running the managed system's own tools, with a bound on time.

// This module is the one door for running programs (`.clippy.toml`).
#![allow(clippy::disallowed_types)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use harden_plan::Command;

/// What a finished command printed and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// True on exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A command that could not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command has no program.
    #[error("empty command")]
    Empty,
    /// It could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran past its timeout and was killed.
    #[error("`{command}` did not finish within {secs} s and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The bound it broke.
        secs: u64,
    },
}

pub(crate) async fn run(root: &Path, cmd: &Command) -> Result<Output, CommandError> {
    let Some(program) = cmd.argv.first() else {
        return Err(CommandError::Empty);
    };
    let mut process = if root == Path::new("/") {
        let mut p = tokio::process::Command::new(program);
        p.args(&cmd.argv[1..]);
        p
    } else {
        let mut p = tokio::process::Command::new("chroot");
        p.arg(root).args(&cmd.argv);
        p
    };
    process
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .kill_on_drop(true);
    let child = process.spawn().map_err(|source| CommandError::Spawn {
        command: cmd.display(),
        source,
    })?;
    let secs = cmd.timeout_secs.max(1);
    match tokio::time::timeout(Duration::from_secs(secs), child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(source)) => Err(CommandError::Spawn {
            command: cmd.display(),
            source,
        }),
        Err(_) => Err(CommandError::Timeout {
            command: cmd.display(),
            secs,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_and_exit_code_are_reported() {
        let out = run(
            Path::new("/"),
            &Command::new(["sh", "-c", "echo out; echo err >&2; exit 3"]),
        )
        .await
        .expect("run");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed() {
        let started = std::time::Instant::now();
        let err = run(Path::new("/"), &Command::new(["sleep", "30"]).timeout(1))
            .await
            .expect_err("timeout");
        assert!(
            matches!(err, CommandError::Timeout { secs: 1, .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let err = run(Path::new("/"), &Command::new(["/nonexistent/tool"]))
            .await
            .expect_err("spawn");
        assert!(matches!(err, CommandError::Spawn { .. }));
    }
}
