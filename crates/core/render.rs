//! Plans and results for people (text) and programs (JSON).
//!
//! Rendering is kept apart from planning: the planner produces a plain [`Plan`] and this
//! module only decides how it looks.

use std::io::{self, Write};
use std::path::Path;

use anstyle::{AnsiColor, Style};
use harden_plan::{grouped, Attrs, Change, Command, EnvEdit, EnvValue, Plan, Step};
use similar::{ChangeTag, TextDiff};

const ADD: Style = AnsiColor::Green.on_default();
const DEL: Style = AnsiColor::Red.on_default();
const HEAD: Style = AnsiColor::Yellow.on_default().bold();
const DIM: Style = Style::new().dimmed();
const WARN: Style = AnsiColor::Magenta.on_default().bold();

/// Writes `plan` for people. `dry_run` adds the exact commands apply would run.
pub fn plan_text(out: &mut dyn Write, plan: &Plan, dry_run: bool) -> io::Result<()> {
    for change in &plan.changes {
        change_text(out, change, dry_run)?;
    }
    for warning in &plan.warnings {
        writeln!(
            out,
            "{WARN}warning{WARN:#} ({}): {}",
            warning.resource, warning.message
        )?;
    }
    summary(out, plan)
}

/// The closing line: `Plan: 3 to change, 12 unchanged.`
pub fn summary(out: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    if plan.is_empty() {
        writeln!(out, "No changes. {} unchanged.", plan.unchanged)
    } else {
        writeln!(
            out,
            "{HEAD}Plan:{HEAD:#} {} to change, {} unchanged.",
            plan.changes.len(),
            plan.unchanged
        )
    }
}

fn change_text(out: &mut dyn Write, change: &Change, dry_run: bool) -> io::Result<()> {
    writeln!(
        out,
        "{HEAD}~ {} {}{HEAD:#} {DIM}({}){DIM:#}",
        change.resource, change.target, change.reason
    )?;
    for d in &change.details {
        let current = d.current.as_deref().unwrap_or("(unset)");
        let desired = d.desired.as_deref().unwrap_or("(unset)");
        let source = d
            .source
            .as_ref()
            .map(|s| format!(" {DIM}[{s}]{DIM:#}"))
            .unwrap_or_default();
        writeln!(
            out,
            "    {}: {DEL}{current}{DEL:#} -> {ADD}{desired}{ADD:#}{source}",
            d.name
        )?;
    }
    for step in &change.steps {
        step_text(out, step, !change.details.is_empty(), dry_run)?;
    }
    if dry_run {
        for cmd in &change.rollback_checks {
            writeln!(out, "    {DIM}on rollback, check:{DIM:#} {}", cmd.display())?;
        }
        for cmd in &change.on_rollback {
            writeln!(out, "    {DIM}on rollback:{DIM:#} {}", cmd.display())?;
        }
    }
    Ok(())
}

/// One step of a change: a file's diff, a command, a unit's transition. Attribute changes
/// the change's details already show are not repeated.
fn step_text(
    out: &mut dyn Write,
    step: &Step,
    details_shown: bool,
    dry_run: bool,
) -> io::Result<()> {
    match step {
        Step::WriteFile {
            path,
            content,
            attrs,
            before,
        } => {
            let old = before.as_deref().unwrap_or("");
            let (from, verb) = if before.is_some() {
                (path.display().to_string(), "update")
            } else {
                ("/dev/null".into(), "create")
            };
            writeln!(out, "    {verb} {} {}", path.display(), attrs_text(attrs))?;
            diff_text(out, old, content, &from, &path.display().to_string())?;
        }
        Step::SetAttrs { from, to, .. } if !details_shown => {
            writeln!(out, "    {} -> {}", attrs_text(from), attrs_text(to))?;
        }
        Step::SetAttrs { .. } => {}
        Step::SetTreeAttrs(tree) => tree_text(out, tree)?,
        Step::CreateDir { path, attrs } => writeln!(
            out,
            "    create directory {} {}",
            path.display(),
            attrs_text(attrs)
        )?,
        Step::CreateFile { path, attrs } => writeln!(
            out,
            "    create empty file {} {}",
            path.display(),
            attrs_text(attrs)
        )?,
        Step::RemoveFile { path, before } => {
            writeln!(out, "    remove {}", path.display())?;
            if let Some(old) = before {
                diff_text(out, old, "", &path.display().to_string(), "/dev/null")?;
            }
        }
        Step::EditEnv {
            path, attrs, edits, ..
        } => writeln!(out, "    {}", env_edit_text(path, attrs, edits))?,
        Step::Run(cmd) => writeln!(out, "    {DIM}run:{DIM:#} {}", command_text(cmd, dry_run))?,
        Step::Validate(cmd) => {
            writeln!(out, "    {DIM}check:{DIM:#} {}", command_text(cmd, dry_run))?
        }
        Step::Reload { service, command } => {
            if dry_run {
                writeln!(
                    out,
                    "    {DIM}reload {service}:{DIM:#} {}",
                    command.display()
                )?;
            } else {
                writeln!(out, "    {DIM}reload {service}{DIM:#}")?;
            }
        }
        Step::Unit(unit) => {
            writeln!(out, "    {DIM}unit:{DIM:#} {}", unit.summary())?;
            if dry_run {
                for cmd in unit.enable_commands().iter().chain(&unit.action_command()) {
                    writeln!(out, "    {DIM}run:{DIM:#} {}", cmd.display())?;
                }
            }
        }
    }
    Ok(())
}

/// A command line; in a plan for reading, a multi-line script shows its first line only
/// (`--dry-run` and the JSON plan show every word).
fn command_text(cmd: &Command, whole: bool) -> String {
    let text = cmd.display();
    match text.split_once('\n') {
        Some((first, rest)) if !whole => {
            format!(
                "{first} ... ({} more lines; --dry-run shows them)",
                rest.lines().count()
            )
        }
        _ => text,
    }
}

/// `edit /opt/app/.env (mode 0600, owner 0:0): set DEBUG, JWT_SECRET (generated at apply)`.
/// Names keys, never values: the details above it say what each key is and becomes.
fn env_edit_text(path: &Path, attrs: &Attrs, edits: &[EnvEdit]) -> String {
    let keys: Vec<String> = edits
        .iter()
        .map(|e| match &e.value {
            EnvValue::Literal(_) => e.key.clone(),
            EnvValue::Generate(_) => format!("{} (generated at apply)", e.key),
        })
        .collect();
    format!(
        "edit {} {}: set {}",
        path.display(),
        attrs_text(attrs),
        keys.join(", ")
    )
}

/// A tree step: how many entries change, and a few of them.
fn tree_text(out: &mut dyn Write, tree: &harden_plan::TreeStep) -> io::Result<()> {
    writeln!(
        out,
        "    {} of {} entries below {} change, for example:",
        grouped(tree.changes),
        grouped(tree.entries),
        tree.root.display()
    )?;
    for e in &tree.examples {
        writeln!(
            out,
            "    {}: {DEL}{}{DEL:#} -> {ADD}{}{ADD:#}",
            e.path.display(),
            attrs_text(&e.from),
            attrs_text(&e.to)
        )?;
    }
    let more = tree.changes.saturating_sub(tree.examples.len() as u64);
    if more > 0 {
        writeln!(out, "    {DIM}and {} more{DIM:#}", grouped(more))?;
    }
    Ok(())
}

fn attrs_text(a: &Attrs) -> String {
    format!("(mode {:04o}, owner {}:{})", a.mode, a.uid, a.gid)
}

fn diff_text(out: &mut dyn Write, old: &str, new: &str, from: &str, to: &str) -> io::Result<()> {
    let diff = TextDiff::from_lines(old, new);
    writeln!(out, "    {DEL}--- {from}{DEL:#}")?;
    writeln!(out, "    {ADD}+++ {to}{ADD:#}")?;
    for group in diff.grouped_ops(3) {
        let (first, last) = match (group.first(), group.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => continue,
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        writeln!(
            out,
            "    {DIM}@@ -{},{} +{},{} @@{DIM:#}",
            old_range.start + 1,
            old_range.len(),
            new_range.start + 1,
            new_range.len()
        )?;
        for op in &group {
            for change in diff.iter_changes(op) {
                let (sign, style) = match change.tag() {
                    ChangeTag::Delete => ('-', DEL),
                    ChangeTag::Insert => ('+', ADD),
                    ChangeTag::Equal => (' ', Style::new()),
                };
                let line = change.value();
                let line = line.strip_suffix('\n').unwrap_or(line);
                writeln!(out, "    {style}{sign}{line}{style:#}")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use harden_plan::Detail;

    fn render(plan: &Plan, dry_run: bool) -> String {
        let mut out = Vec::new();
        plan_text(&mut anstream::StripStream::new(&mut out), plan, dry_run).expect("render");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_plan_renders_diffs_details_and_a_summary() {
        let mut plan = Plan::new("/".into(), vec!["<baseline>".into()]);
        plan.unchanged = 12;
        plan.changes.push(Change {
            resource: "sshd".into(),
            target: "/etc/ssh/sshd_config.d/00-harden.conf".into(),
            reason: "directives differ".into(),
            details: vec![Detail {
                name: "PasswordAuthentication".into(),
                current: Some("yes".into()),
                source: Some("/etc/ssh/sshd_config.d/50-cloud-init.conf:1".into()),
                desired: Some("no".into()),
            }],
            steps: vec![
                Step::WriteFile {
                    path: "/etc/ssh/sshd_config.d/00-harden.conf".into(),
                    content: "PasswordAuthentication no\n".into(),
                    attrs: Attrs {
                        mode: 0o600,
                        uid: 0,
                        gid: 0,
                    },
                    before: None,
                },
                Step::Validate(Command::new(["sshd", "-t"])),
                Step::Reload {
                    service: "ssh".into(),
                    command: Command::new(["systemctl", "reload", "ssh"]),
                },
            ],
            on_rollback: vec![],
            rollback_checks: Vec::new(),
        });
        let text = render(&plan, true);
        assert!(
            text.contains("~ sshd /etc/ssh/sshd_config.d/00-harden.conf"),
            "{text}"
        );
        assert!(
            text.contains(
                "PasswordAuthentication: yes -> no [/etc/ssh/sshd_config.d/50-cloud-init.conf:1]"
            ),
            "{text}"
        );
        assert!(text.contains("+PasswordAuthentication no"), "{text}");
        assert!(text.contains("check: sshd -t"), "{text}");
        assert!(text.contains("reload ssh: systemctl reload ssh"), "{text}");
        assert!(
            text.ends_with("Plan: 1 to change, 12 unchanged.\n"),
            "{text}"
        );
        assert!(
            !render(&plan, false).contains("systemctl"),
            "commands of reloads only in dry runs"
        );
    }

    #[test]
    fn multi_line_scripts_are_abbreviated_unless_dry_run() {
        let mut plan = Plan::new("/".into(), vec![]);
        plan.changes.push(Change {
            resource: "x".into(),
            target: "y".into(),
            reason: "z".into(),
            details: vec![],
            steps: vec![Step::Validate(Command::new([
                "sh",
                "-c",
                "one\ntwo\nthree",
            ]))],
            on_rollback: vec![],
            rollback_checks: Vec::new(),
        });
        assert!(render(&plan, false)
            .contains("check: sh -c 'one ... (2 more lines; --dry-run shows them)"));
        assert!(render(&plan, true).contains("two\nthree'"));
    }

    #[test]
    fn an_env_edit_shows_keys_and_descriptions_never_values() {
        let mut plan = Plan::new("/".into(), vec![]);
        plan.changes.push(Change {
            resource: "env_files".into(),
            target: "/opt/app/.env".into(),
            reason: "2 keys break their rules".into(),
            details: vec![Detail {
                name: "JWT_SECRET".into(),
                current: Some("8 characters, a known default".into()),
                source: None,
                desired: Some("generated (64 hex characters)".into()),
            }],
            steps: vec![Step::EditEnv {
                path: "/opt/app/.env".into(),
                attrs: Attrs {
                    mode: 0o600,
                    uid: 1000,
                    gid: 1000,
                },
                create: true,
                edits: vec![
                    harden_plan::EnvEdit {
                        key: "JWT_SECRET".into(),
                        value: EnvValue::Generate(harden_plan::Generate {
                            alphabet: harden_plan::Alphabet::Hex,
                            bytes: 32,
                        }),
                    },
                    harden_plan::EnvEdit {
                        key: "DEBUG".into(),
                        value: EnvValue::Literal("false".into()),
                    },
                ],
            }],
            on_rollback: vec![],
            rollback_checks: Vec::new(),
        });
        let text = render(&plan, true);
        assert!(
            text.contains(
                "    JWT_SECRET: 8 characters, a known default -> generated (64 hex characters)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    edit /opt/app/.env (mode 0600, owner 1000:1000): set JWT_SECRET (generated at apply), DEBUG\n"),
            "{text}"
        );
        assert!(!text.contains("---"), "no content diff: {text}");
    }

    #[test]
    fn an_empty_plan_says_so() {
        let mut plan = Plan::new("/".into(), vec![]);
        plan.unchanged = 4;
        assert_eq!(render(&plan, false), "No changes. 4 unchanged.\n");
    }
}
