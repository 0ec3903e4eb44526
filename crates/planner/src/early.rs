//! Commands a probe will run whatever the facts say, started before the facts are in.
//!
//! Facts come first (`sshd -T`, whether the firewall is loaded), then the probes, which may
//! depend on them. Some probe commands depend on nothing: a daemon's dump of its own
//! configuration is the slowest answer of a plan (`fail2ban-client -d` is a Python
//! interpreter), and after the facts it would run alone on the critical path. Such commands
//! start at once, beside the facts; the probe then takes its answer from [`Early::run`],
//! which falls back to running the command when it was not started early.

use std::sync::Mutex;

use harden_host::{CommandError, Host, Output};
use harden_plan::Command;
use tokio::task::JoinHandle;

type Answer = Result<Output, CommandError>;

/// The commands started early, each until a probe takes its answer.
#[derive(Default)]
pub(crate) struct Early {
    started: Mutex<Vec<(Command, JoinHandle<Answer>)>>,
}

impl Early {
    /// Starts `commands` on `host`, each in a task of the current runtime.
    pub fn start(host: &Host, commands: Vec<Command>) -> Early {
        let started = commands
            .into_iter()
            .map(|command| {
                let (host, run) = (host.clone(), command.clone());
                (command, tokio::spawn(async move { host.run(&run).await }))
            })
            .collect();
        Early {
            started: Mutex::new(started),
        }
    }

    /// The answer of `command`: the early run's when there was one, else a run now.
    pub async fn run(&self, host: &Host, command: &Command) -> Answer {
        if let Some(task) = self.take(command) {
            if let Ok(answer) = task.await {
                return answer;
            }
        }
        host.run(command).await
    }

    fn take(&self, command: &Command) -> Option<JoinHandle<Answer>> {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let at = started.iter().position(|(c, _)| c == command)?;
        Some(started.swap_remove(at).1)
    }
}

impl Drop for Early {
    /// An answer nobody took (the probe failed before it asked) is not waited for: its
    /// process is killed with its task.
    fn drop(&mut self) {
        let started = self.started.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, task) in started.drain(..) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// The early run's answer is the one the probe gets, and it is taken once: a second
    /// ask runs the command again.
    #[test]
    fn an_early_answer_is_taken_once() {
        let host = Host::new("/");
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = dir.path().join("runs");
        let script = format!("echo x >> {0}; wc -l < {0}", counter.display());
        let command = Command::new(["sh", "-c", script.as_str()]);
        runtime().block_on(async {
            let early = Early::start(&host, vec![command.clone()]);
            let first = early.run(&host, &command).await.expect("first");
            let second = early.run(&host, &command).await.expect("second");
            assert_eq!(first.stdout.trim(), "1");
            assert_eq!(second.stdout.trim(), "2");
        });
    }

    /// A command nobody asks for is killed when the plan is done with it.
    #[test]
    fn an_answer_nobody_takes_is_killed() {
        let host = Host::new("/");
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        runtime().block_on(async {
            let early = Early::start(&host, vec![Command::new(["sh", "-c", script.as_str()])]);
            let pid = loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                match std::fs::read_to_string(&pid_file) {
                    Ok(pid) if pid.ends_with('\n') => break pid.trim().to_owned(),
                    _ => continue,
                }
            };
            drop(early);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = state.rsplit(')').next().unwrap_or_default().trim_start();
            assert!(
                state.is_empty() || state.starts_with('Z'),
                "sleep {pid} still runs: {state}"
            );
        });
    }
}
