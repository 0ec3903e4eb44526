//! `audit`: auditd rules in harden's own `/etc/audit/rules.d/50-harden.rules`, merged into
//! `/etc/audit/audit.rules` by `augenrules` and loaded into the kernel with
//! `augenrules --load` when auditd runs.
//!
//! What is verified before the apply is kept: the merged `audit.rules` holds every playbook
//! rule (a check after `augenrules`). What is not: the kernel's own reading of the rules.
//! The kernel's audit rules are not namespaced, so no test loads them (a copy of the machine
//! never has `CAP_AUDIT_CONTROL`), and a rule the kernel refuses fails the load at apply time
//! (`auditctl -R` exits non-zero), which rolls back and reloads the restored rules. Rules
//! are checked without I/O for their shape only: an option auditctl knows, and never `-e`
//! (`-e 2` locks the rules until a reboot, so no rollback could undo them) or `-D` (which
//! augenrules puts first itself).

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use harden_plan::{Attrs, Change, Command, Step, Warning};
use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps;

/// harden's rules file.
pub const DROP_IN: &str = "/etc/audit/rules.d/50-harden.rules";
/// The rules directory augenrules merges.
pub const RULES_D: &str = "/etc/audit/rules.d";
/// The merged file auditd loads at start.
pub const MERGED: &str = "/etc/audit/audit.rules";
const MARKER: &str = "## Managed by harden";

/// The options a rule line may start with (auditctl's).
const OPTIONS: [&str; 11] = [
    "-w",
    "-W",
    "-a",
    "-A",
    "-d",
    "-b",
    "-f",
    "-r",
    "--backlog_wait_time",
    "--loginuid-immutable",
    "--reset-lost",
];

/// The `audit:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Rules as auditctl takes them, one per item (`-w /etc/passwd -p wa -k identity`).
    #[serde(default)]
    pub rules: Vec<Located<String>>,
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// auditd is installed (`augenrules` exists).
    pub installed: bool,
    /// apt's simulation of installing auditd when it is not: every package, or apt's error.
    pub install: Option<Result<Vec<String>, String>>,
    /// harden's rules file now.
    pub drop_in: Option<String>,
    /// The merged rules file now.
    pub merged: Option<String>,
    /// auditd runs under systemd now, so the rules can be loaded.
    pub running: bool,
}

impl Resource for Audit {
    type Live = Live;
    const NAME: &'static str = "audit";

    /// A later playbook's rules come after the earlier ones'; a rule given twice is kept once.
    fn merge(&mut self, later: Self) {
        for rule in later.rules {
            if !self.rules.iter().any(|r| r.value == rule.value) {
                self.rules.push(rule);
            }
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        self.rules
            .iter()
            .filter_map(|r| check_rule(&r.value).err().map(|e| Invalid::new(r.at, e)))
            .collect()
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let read = |path: &str| {
            host.read_to_string(Path::new(path))
                .map_err(|e| Failure::Probe(format!("{path}: {e}")))
        };
        let mut live = Live {
            installed: host.which("augenrules").is_some(),
            drop_in: read(DROP_IN)?,
            merged: read(MERGED)?,
            ..Live::default()
        };
        if !live.installed {
            let out = host
                .run(&steps::apt_simulate_install(&["auditd"]))
                .await
                .map_err(|e| Failure::Probe(format!("apt-get -s: {e}")))?;
            live.install = Some(if out.success() {
                Ok(steps::simulated_installs(&out.stdout))
            } else {
                Err(out.stderr.trim().to_owned())
            });
        }
        if host.has_systemd() {
            live.running = host
                .unit_state("auditd.service")
                .await
                .is_some_and(|s| s.active == "active");
        }
        Ok(live)
    }

    fn diff(&self, live: &Live, _cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let content = render(&self.rules);
        let merged_ok = live
            .merged
            .as_deref()
            .is_some_and(|m| self.rules.iter().all(|r| m.lines().any(|l| l == r.value)));
        if live.drop_in.as_deref() == Some(content.as_str()) && merged_ok {
            diff.unchanged += 1;
            return Ok(diff);
        }
        if let Some(install) = &live.install {
            diff.changes.push(install_change(install)?);
        }
        if live.drop_in.as_deref() != Some(content.as_str()) {
            diff.changes.push(Change::new(
                Self::NAME,
                DROP_IN,
                if live.drop_in.is_none() {
                    "file is missing"
                } else {
                    "rules differ"
                },
                vec![Step::WriteFile {
                    path: DROP_IN.into(),
                    content,
                    attrs: Attrs::root(0o640),
                    before: live.drop_in.clone(),
                }],
            ));
        }
        diff.changes.push(self.merge_change(live));
        if !live.running {
            diff.warnings.push(Warning {
                resource: Self::NAME.into(),
                message: "auditd is not running under systemd here: the rules are merged into /etc/audit/audit.rules, which auditd loads when it starts; nothing is loaded into the kernel now".into(),
            });
        }
        Ok(diff)
    }
}

impl Audit {
    /// `augenrules` (merge only), a check that the merged file holds every rule, and the
    /// load where auditd runs; a rollback reloads the restored rules.
    fn merge_change(&self, live: &Live) -> Change {
        let merged_files = [
            PathBuf::from(MERGED),
            PathBuf::from(format!("{MERGED}.prev")),
        ];
        let mut steps = vec![
            Step::Run(
                Command::new(["augenrules"])
                    .timeout(60)
                    .touching(merged_files.iter().cloned()),
            ),
            Step::Validate(holds_rules(&self.rules)),
        ];
        let load = Command::new(["augenrules", "--load"])
            .timeout(60)
            .touching(merged_files.iter().cloned());
        let mut change = Change::new(Self::NAME, MERGED, "merge the rules files", Vec::new());
        if live.running {
            steps.push(Step::Reload {
                service: "auditd".into(),
                command: load.clone(),
            });
            change.reason = "merge the rules files and load them".into();
            change.on_rollback = vec![load];
        }
        change.steps = steps;
        change
    }
}

/// Installs auditd, undone by purging all that apt installed.
fn install_change(install: &Result<Vec<String>, String>) -> Result<Change, Failure> {
    let all = install
        .as_ref()
        .map_err(|e| Failure::Probe(format!("apt cannot install auditd: {e}")))?;
    let mut change = Change::new(
        Audit::NAME,
        "install auditd",
        format!("not installed; apt installs {}", all.join(", ")),
        vec![Step::Run(steps::apt_install(&["auditd"]))],
    );
    let undo: Vec<&str> = all.iter().map(String::as_str).collect();
    change.on_rollback = vec![steps::apt_purge(&undo)];
    Ok(change)
}

/// Checks one rule's shape: see the module docs.
pub(crate) fn check_rule(rule: &str) -> Result<(), String> {
    if rule.contains(['\n', '\r', '\0']) {
        return Err("an audit rule is one line".into());
    }
    let first = rule.split_whitespace().next().unwrap_or("");
    if first == "-e" {
        return Err(format!("{rule:?}: harden never sets -e (`-e 2` locks the rules until a reboot, so no rollback could undo them; `-e 0` turns auditing off)"));
    }
    if first == "-D" {
        return Err(format!(
            "{rule:?}: augenrules starts the merged rules with -D itself"
        ));
    }
    if !OPTIONS.contains(&first) {
        return Err(format!(
            "{rule:?} is not an audit rule: expected one starting with {}",
            OPTIONS.join(", ")
        ));
    }
    if rule.split_whitespace().count() < 2 && !first.starts_with("--") {
        return Err(format!("{rule:?} has no argument"));
    }
    Ok(())
}

/// The rules file's text.
pub fn render(rules: &[Located<String>]) -> String {
    let mut out = format!(
        "{MARKER} from the playbook's `audit` section; changes here are overwritten.\n\
         ## augenrules merges this file into {MERGED}.\n"
    );
    for rule in rules {
        out.push_str(&rule.value);
        out.push('\n');
    }
    out
}

/// A checker that fails unless the merged file holds every rule as a line of its own.
fn holds_rules(rules: &[Located<String>]) -> Command {
    let script = "fail=0\n\
                  for rule in \"$@\"; do\n\
                  \x20 grep -qxF -e \"$rule\" /etc/audit/audit.rules || { echo \"augenrules did not merge: $rule\" >&2; fail=1; }\n\
                  done\n\
                  exit $fail";
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "harden-audit-check".to_owned(),
    ];
    argv.extend(rules.iter().map(|r| r.value.clone()));
    Command::new(argv).timeout(30)
}
