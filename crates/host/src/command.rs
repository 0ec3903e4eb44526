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

    /// What the command said about itself: its standard error, or its output when it
    /// wrote nothing there.
    pub fn said(&self) -> &str {
        if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        }
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

/// Runs `cmd` (chrooted into `root` unless it is `/`) within its timeout. Debug builds pass
/// every command through the fault-injection hook (the `fault` module below) first.
pub(crate) async fn run(root: &Path, cmd: &Command) -> Result<Output, CommandError> {
    #[cfg(debug_assertions)]
    {
        let injection = fault::Injection::from_env();
        let injected = injection.next(cmd);
        if injected == Some(fault::When::Instead) {
            return Ok(injection.failed(String::new()));
        }
        let out = spawn_and_wait(root, cmd).await;
        if injected == Some(fault::When::After) {
            return Ok(injection.failed(out.map(|o| o.stdout).unwrap_or_default()));
        }
        out
    }
    #[cfg(not(debug_assertions))]
    spawn_and_wait(root, cmd).await
}

/// The search path every command runs with.
pub(crate) const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `program` found in [`PATH`] as `execvp` would find it; itself when it names a path or is
/// not found (the spawn then fails as it would have). A program given by its path is
/// started with `posix_spawn`; a bare name with a `PATH` of the command's own would make
/// the standard library fork the whole process instead.
fn resolve(program: &str) -> String {
    if program.contains('/') {
        return program.to_owned();
    }
    PATH.split(':')
        .map(|dir| format!("{dir}/{program}"))
        .find(|path| {
            Path::new(path).is_file()
                && nix::unistd::access(path.as_str(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
        .unwrap_or_else(|| program.to_owned())
}

async fn spawn_and_wait(root: &Path, cmd: &Command) -> Result<Output, CommandError> {
    let Some(program) = cmd.argv.first() else {
        return Err(CommandError::Empty);
    };
    let mut process = if root == Path::new("/") {
        let mut p = tokio::process::Command::new(resolve(program));
        p.arg0(program).args(&cmd.argv[1..]);
        p
    } else {
        let mut p = tokio::process::Command::new(resolve("chroot"));
        p.arg0("chroot").arg(root).args(&cmd.argv);
        p
    };
    process
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", PATH)
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

/// Fault injection for the reliability tests, compiled into debug builds only: a release
/// binary contains neither this code nor the names of its variables.
///
/// Every external command the process runs gets a number, from 1, in the order it starts
/// (probes, steps, checks, reloads and a rollback's commands alike). Two variables, read
/// once per process:
///
/// - `HARDEN_FAULT_COMMAND=SPEC`: a comma-separated list of `N` (command N is not run and
///   fails: exit code 1, stderr `injected fault`) and `N:after` (command N runs, its effect
///   happens, and then it is reported failed the same way; the harsher case). An unreadable
///   SPEC fails every command with a message saying so, rather than silently injecting
///   nothing.
/// - `HARDEN_FAULT_LOG=FILE`: appends `N<TAB>command line` to FILE as each command starts,
///   one line per command (newlines in a script shown as `\n`), with `<TAB>[fault]` or
///   `<TAB>[fault:after]` on the injected one; so a test can count the commands of a run, or
///   wait until a run has reached command N.
#[cfg(debug_assertions)]
mod fault {
    use std::io::Write as _;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    use harden_plan::Command;

    use super::Output;

    /// Whether an injected failure replaces the command or follows it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum When {
        /// The command does not run.
        Instead,
        /// The command runs; its result is replaced by a failure.
        After,
    }

    /// What the environment asked for.
    #[derive(Debug)]
    pub(super) struct Injection {
        /// Command numbers to fail, or why the variable could not be read.
        faults: Result<Vec<(usize, When)>, String>,
        log: Option<PathBuf>,
        count: AtomicUsize,
    }

    impl Injection {
        /// The process's injection, parsed from the environment on first use.
        pub(super) fn from_env() -> &'static Injection {
            static INJECTION: OnceLock<Injection> = OnceLock::new();
            INJECTION.get_or_init(|| {
                let spec = std::env::var("HARDEN_FAULT_COMMAND").unwrap_or_default();
                Injection::new(
                    &spec,
                    std::env::var_os("HARDEN_FAULT_LOG").map(PathBuf::from),
                )
            })
        }

        pub(super) fn new(spec: &str, log: Option<PathBuf>) -> Injection {
            Injection {
                faults: parse(spec),
                log,
                count: AtomicUsize::new(0),
            }
        }

        /// Numbers `cmd`, logs it, and says whether (and how) it is to fail.
        pub(super) fn next(&self, cmd: &Command) -> Option<When> {
            let number = self.count.fetch_add(1, Ordering::SeqCst) + 1;
            let when = match &self.faults {
                Ok(faults) => faults.iter().find(|(n, _)| *n == number).map(|(_, w)| *w),
                Err(_) => Some(When::Instead),
            };
            self.log(number, cmd, when);
            when
        }

        fn log(&self, number: usize, cmd: &Command, when: Option<When>) {
            let Some(path) = &self.log else { return };
            let mark = match when {
                None => "",
                Some(When::Instead) => "\t[fault]",
                Some(When::After) => "\t[fault:after]",
            };
            // One line per command (a script's newlines as `\n`), written in one call on an
            // O_APPEND file, so that `wc -l` counts commands and lines never mix.
            let shown = cmd.display().replace('\n', "\\n");
            let line = format!("{number}\t{shown}{mark}\n");
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = file.write_all(line.as_bytes());
            }
        }

        /// The stderr of an injected failure.
        fn message(&self) -> String {
            match &self.faults {
                Ok(_) => "injected fault".to_owned(),
                Err(why) => why.clone(),
            }
        }

        /// The result an injected failure reports: exit code 1, stderr `injected fault`,
        /// and whatever the command printed when it did run.
        pub(super) fn failed(&self, stdout: String) -> Output {
            Output {
                code: Some(1),
                stdout,
                stderr: self.message(),
            }
        }
    }

    /// `N` and `N:after` items, comma-separated; empty means no fault.
    fn parse(spec: &str) -> Result<Vec<(usize, When)>, String> {
        spec.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (number, when) = match item.strip_suffix(":after") {
                    Some(number) => (number, When::After),
                    None => (item, When::Instead),
                };
                match number.parse::<usize>() {
                    Ok(n) if n > 0 => Ok((n, when)),
                    _ => Err(format!(
                        "HARDEN_FAULT_COMMAND={spec}: expected N or N:after (N from 1), comma-separated"
                    )),
                }
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn commands_are_numbered_logged_and_the_chosen_ones_fail() {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = dir.path().join("log");
            let injection = Injection::new("2, 3:after", Some(log.clone()));
            let cmd = Command::new(["true"]);
            let got: Vec<_> = (0..3).map(|_| injection.next(&cmd)).collect();
            assert_eq!(got, [None, Some(When::Instead), Some(When::After)]);
            assert_eq!(injection.next(&Command::new(["sh", "-c", "a\nb"])), None);
            let text = std::fs::read_to_string(&log).expect("log");
            assert_eq!(
                text,
                "1\ttrue\n2\ttrue\t[fault]\n3\ttrue\t[fault:after]\n4\tsh -c 'a\\nb'\n"
            );
        }

        #[test]
        fn no_spec_injects_nothing_and_a_bad_one_fails_everything() {
            let cmd = Command::new(["true"]);
            assert_eq!(Injection::new("", None).next(&cmd), None);
            let bad = Injection::new("x", None);
            assert_eq!(bad.next(&cmd), Some(When::Instead));
            assert!(
                bad.message().contains("expected N or N:after"),
                "{}",
                bad.message()
            );
            assert!(parse("0").is_err());
            assert!(parse("3:before").is_err());
        }
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

    /// A bare name is found in the search path and started under its own name, as `execvp`
    /// starts it; one found nowhere fails to spawn.
    #[tokio::test]
    async fn bare_names_are_found_and_keep_their_name() {
        let sh = resolve("sh");
        assert!(sh.starts_with('/') && sh.ends_with("/sh"), "{sh}");
        let out = run(Path::new("/"), &Command::new(["cat", "/proc/self/cmdline"]))
            .await
            .expect("run");
        assert_eq!(out.stdout, "cat\0/proc/self/cmdline\0");
        let err = run(Path::new("/"), &Command::new(["no-such-harden-tool"]))
            .await
            .expect_err("spawn");
        assert!(matches!(err, CommandError::Spawn { .. }));
    }

    /// Release builds have no fault hook: the variables change nothing
    /// (`cargo test --release -p harden-host`).
    #[cfg(not(debug_assertions))]
    #[tokio::test]
    async fn release_builds_ignore_the_fault_variables() {
        std::env::set_var("HARDEN_FAULT_COMMAND", "1,2,3");
        let out = run(Path::new("/"), &Command::new(["true"]))
            .await
            .expect("run");
        assert!(out.success(), "{out:?}");
    }
}
