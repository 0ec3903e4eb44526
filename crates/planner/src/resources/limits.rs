//! `limits`: core dumps off, in each of the three places that decide them.
//!
//! A core dump holds the memory of the process that crashed: passwords, keys, session
//! tokens. Three files of harden's own turn them off: a `limits.d` file (`* hard core 0`,
//! which pam_limits gives every login session), a `coredump.conf.d` drop-in (systemd-coredump
//! keeps nothing: `Storage=none`, `ProcessSizeMax=0`), and a `sysctl.d` file with
//! `fs.suid_dumpable = 0` (no dump of a process that changed its privileges), which is also
//! set in the running kernel with `sysctl -w` and put back on rollback. A file read after
//! harden's that sets another value is reported on every plan; the sysctl resource's reading
//! of the boot configuration (a fact) says which `sysctl.d` line wins.

use std::path::{Path, PathBuf};

use harden_plan::{Attrs, Change, Command, Detail, Step, Warning};
use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::facts::SysctlEntry;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps;

/// pam_limits' file: after the (usually empty) directory's others, so a site's later file or
/// a per-user line can still raise the limit for an account that needs dumps.
pub const LIMITS_FILE: &str = "/etc/security/limits.d/60-harden-coredump.conf";
/// systemd-coredump's drop-in.
pub const COREDUMP_FILE: &str = "/etc/systemd/coredump.conf.d/60-harden.conf";
const COREDUMP_DIR: &str = "/etc/systemd/coredump.conf.d";
/// The `sysctl.d` file: sorts just before the sysctl resource's own `99-zz-harden.conf`,
/// so a `sysctl` section that sets `fs.suid_dumpable` decides.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/99-zz-harden-coredump.conf";
const SUID_DUMPABLE: &str = "fs.suid_dumpable";
const SUID_DUMPABLE_PROC: &str = "/proc/sys/fs/suid_dumpable";

/// The `limits:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `false` (the default): no process may dump core. `true`: harden's files are removed
    /// and the system's own settings apply.
    pub core_dumps: Option<Located<bool>>,
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// harden's three files, as they are.
    pub limits_file: Option<String>,
    /// The coredump drop-in.
    pub coredump_file: Option<String>,
    /// The sysctl file.
    pub sysctl_file: Option<String>,
    /// `/etc/systemd/coredump.conf.d` exists.
    pub coredump_dir: bool,
    /// pam_limits' lines that set `core`, in read order: (file, line, domain, type, value).
    pub core_lines: Vec<LimitLine>,
    /// Where systemd-coredump's effective `Storage=` and `ProcessSizeMax=` come from
    /// (`systemd-analyze cat-config`); empty when it cannot say.
    pub coredump: Vec<(String, String, String)>,
    /// The running kernel's `fs.suid_dumpable` and whether it may be written (`None` under
    /// `--root`).
    pub suid_dumpable: Option<(String, bool)>,
    /// `sysctl` is installed.
    pub sysctl_tool: bool,
}

/// One `core` line of pam_limits' files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitLine {
    /// `file:line`.
    pub place: String,
    /// The domain (`*`, a user, `@group`).
    pub domain: String,
    /// `soft`, `hard` or `-`.
    pub kind: String,
    /// The limit.
    pub value: String,
}

const LIMITS_TEXT: &str =
    "# Managed by harden from the playbook's `limits` section; changes here are overwritten.\n\
# No core dumps for any login session: they hold the memory of what crashed.\n\
* soft core 0\n\
* hard core 0\n";

const COREDUMP_TEXT: &str =
    "# Managed by harden from the playbook's `limits` section; changes here are overwritten.\n\
[Coredump]\n\
Storage=none\n\
ProcessSizeMax=0\n";

const SYSCTL_TEXT: &str =
    "# Managed by harden from the playbook's `limits` section; changes here are overwritten.\n\
# No core dump of a process that changed its privileges (setuid programs).\n\
fs.suid_dumpable = 0\n";

impl Resource for Limits {
    type Live = Live;
    const NAME: &'static str = "limits";

    fn merge(&mut self, later: Self) {
        if later.core_dumps.is_some() {
            self.core_dumps = later.core_dumps;
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let read = |path: &str| {
            host.read_to_string(Path::new(path))
                .map_err(|e| Failure::Probe(format!("{path}: {e}")))
        };
        let mut live = Live {
            limits_file: read(LIMITS_FILE)?,
            coredump_file: read(COREDUMP_FILE)?,
            sysctl_file: read(SYSCTL_FILE)?,
            coredump_dir: matches!(host.stat(Path::new(COREDUMP_DIR)), Ok(Some(_))),
            sysctl_tool: host.which("sysctl").is_some(),
            ..Live::default()
        };
        let mut files = vec!["/etc/security/limits.conf".to_owned()];
        let names = host
            .read_dir(Path::new("/etc/security/limits.d"))
            .map_err(|e| Failure::Probe(format!("/etc/security/limits.d: {e}")))?;
        files.extend(
            names
                .iter()
                .map(|n| n.to_string_lossy())
                .filter(|n| n.ends_with(".conf"))
                .map(|n| format!("/etc/security/limits.d/{n}")),
        );
        for file in files {
            if let Some(text) = read(&file)? {
                live.core_lines.extend(core_lines(&file, &text));
            }
        }
        if host.which("systemd-analyze").is_some() {
            let out = host
                .run(
                    &Command::new(["systemd-analyze", "cat-config", "systemd/coredump.conf"])
                        .timeout(30),
                )
                .await;
            if let Ok(out) = out.as_ref().map(|o| (o.success(), &o.stdout)) {
                if out.0 {
                    live.coredump = coredump_settings(out.1);
                }
            }
        }
        if host.is_live() {
            live.suid_dumpable = suid_dumpable(host).await?;
        }
        Ok(live)
    }

    fn diff(&self, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        if self.core_dumps.as_ref().is_some_and(|c| c.value) {
            remove_files(live, &mut diff);
            return Ok(diff);
        }
        file(
            &mut diff,
            LIMITS_FILE,
            LIMITS_TEXT,
            &live.limits_file,
            Vec::new(),
        );
        let mut steps = Vec::new();
        if !live.coredump_dir {
            steps.push(Step::CreateDir {
                path: PathBuf::from(COREDUMP_DIR),
                attrs: Attrs::root(0o755),
            });
        }
        file(
            &mut diff,
            COREDUMP_FILE,
            COREDUMP_TEXT,
            &live.coredump_file,
            steps,
        );
        file(
            &mut diff,
            SYSCTL_FILE,
            SYSCTL_TEXT,
            &live.sysctl_file,
            Vec::new(),
        );
        report_limits(live, &mut diff);
        report_coredump(live, &mut diff);
        report_sysctl(&cx.facts.sysctl_boot, &mut diff);
        kernel(live, &mut diff)?;
        Ok(diff)
    }
}

fn warning(message: String) -> Warning {
    Warning {
        resource: Limits::NAME.into(),
        message,
    }
}

/// The `core` lines of one pam_limits file.
fn core_lines(file: &str, text: &str) -> Vec<LimitLine> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let words: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if let [domain, kind, "core", value] = words[..] {
            out.push(LimitLine {
                place: format!("{file}:{}", index + 1),
                domain: domain.to_owned(),
                kind: kind.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    out
}

/// `Storage=` and `ProcessSizeMax=` of the `[Coredump]` section in `systemd-analyze
/// cat-config` output, each line with its file: (key, value, file).
fn coredump_settings(text: &str) -> Vec<(String, String, String)> {
    let mut file = String::new();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(path) = line.strip_prefix("# /") {
            file = format!("/{path}");
        } else if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Coredump]" {
            if let Some((key, value)) = line.split_once('=') {
                let key = key.trim();
                if key == "Storage" || key == "ProcessSizeMax" {
                    out.push((key.to_owned(), value.trim().to_owned(), file.clone()));
                }
            }
        }
    }
    out
}

/// The running kernel's `fs.suid_dumpable`, and whether it may be written.
async fn suid_dumpable(host: &harden_host::Host) -> Result<Option<(String, bool)>, Failure> {
    let Some(value) = host
        .read_to_string(Path::new(SUID_DUMPABLE_PROC))
        .ok()
        .flatten()
    else {
        return Ok(None);
    };
    let out = host
        .run(&Command::new(["test", "-w", SUID_DUMPABLE_PROC]).timeout(15))
        .await
        .map_err(|e| Failure::Probe(format!("checking {SUID_DUMPABLE_PROC}: {e}")))?;
    Ok(Some((value.trim().to_owned(), out.success())))
}

/// A change writing `path` with `text` (after `before`, such as creating its directory)
/// when it differs.
fn file(diff: &mut Diff, path: &str, text: &str, current: &Option<String>, mut before: Vec<Step>) {
    if current.as_deref() == Some(text) {
        diff.unchanged += 1;
        return;
    }
    before.push(Step::WriteFile {
        path: PathBuf::from(path),
        content: text.to_owned(),
        attrs: Attrs::root(0o644),
        before: current.clone(),
    });
    let reason = if current.is_none() {
        "file is missing"
    } else {
        "content differs"
    };
    diff.changes
        .push(Change::new(Limits::NAME, path, reason, before));
}

/// `core_dumps: true`: harden's files go, the system's own settings apply again.
fn remove_files(live: &Live, diff: &mut Diff) {
    for (path, current) in [
        (LIMITS_FILE, &live.limits_file),
        (COREDUMP_FILE, &live.coredump_file),
        (SYSCTL_FILE, &live.sysctl_file),
    ] {
        match current {
            Some(text) => diff.changes.push(Change::new(
                Limits::NAME,
                path,
                "core dumps are allowed: harden's file goes",
                vec![Step::RemoveFile {
                    path: PathBuf::from(path),
                    before: Some(text.clone()),
                }],
            )),
            None => diff.unchanged += 1,
        }
    }
}

/// A `core` line read after harden's, or for particular users or groups (pam_limits prefers
/// those to `*`), that allows dumps.
fn report_limits(live: &Live, diff: &mut Diff) {
    for line in &live.core_lines {
        if line.place.starts_with(LIMITS_FILE) || line.value == "0" || line.kind == "soft" {
            continue;
        }
        let later =
            line.place.starts_with("/etc/security/limits.d/") && line.place.as_str() > LIMITS_FILE;
        if later || line.domain != "*" {
            diff.warnings.push(warning(format!(
                "{} sets the {} core limit of {} to {}: pam_limits gives that instead of harden's 0",
                line.place, line.kind, line.domain, line.value
            )));
        }
    }
}

/// systemd-coredump's effective values, when a file read after harden's sets others.
fn report_coredump(live: &Live, diff: &mut Diff) {
    for key in ["Storage", "ProcessSizeMax"] {
        let wanted = if key == "Storage" { "none" } else { "0" };
        let last = live.coredump.iter().rev().find(|(k, _, _)| k == key);
        if let Some((_, value, file)) = last {
            if file != COREDUMP_FILE && value != wanted {
                diff.warnings.push(warning(format!(
                    "{file} sets {key}={value} after harden's {COREDUMP_FILE}: systemd-coredump uses that"
                )));
            }
        }
    }
}

/// The `sysctl.d` line that sets `fs.suid_dumpable` at boot once harden's file is written,
/// when it is another file's and allows dumps.
fn report_sysctl(boot: &[SysctlEntry], diff: &mut Diff) {
    let name = |f: &str| Path::new(f).file_name().map(|n| n.to_owned());
    let own = name(SYSCTL_FILE);
    let winner = boot.iter().rfind(|e| {
        e.file != SYSCTL_FILE
            && e.key == SUID_DUMPABLE
            && (e.file == "/etc/sysctl.conf" || name(&e.file) > own)
    });
    if let Some(e) = winner {
        if e.value.trim() != "0" {
            diff.warnings.push(warning(format!(
                "{}:{} sets {SUID_DUMPABLE} = {} after harden's {SYSCTL_FILE}: boot will set that",
                e.file, e.line, e.value
            )));
        }
    }
}

/// `sysctl -w fs.suid_dumpable=0` on the running kernel, the old value back on rollback.
fn kernel(live: &Live, diff: &mut Diff) -> Result<(), Failure> {
    let Some((current, writable)) = &live.suid_dumpable else {
        return Ok(());
    };
    if current == "0" {
        diff.unchanged += 1;
        return Ok(());
    }
    if !writable {
        diff.warnings.push(warning(format!(
            "{SUID_DUMPABLE} is read-only here ({SUID_DUMPABLE_PROC} cannot be written, as in a container): 0 is applied at next boot, the kernel keeps {current} until then"
        )));
        return Ok(());
    }
    if !live.sysctl_tool {
        return Err(Failure::Unusable(
            "sysctl is not installed (Debian's `procps` package): install it first".into(),
        ));
    }
    let set = [(SUID_DUMPABLE.to_owned(), "0".to_owned())];
    let restore = [(SUID_DUMPABLE.to_owned(), current.clone())];
    let mut change = Change::new(
        Limits::NAME,
        "running kernel",
        "core dumps of setuid processes are allowed",
        vec![Step::Run(steps::sysctl_write(&set))],
    )
    .with_details(vec![Detail {
        name: SUID_DUMPABLE.into(),
        current: Some(current.clone()),
        source: Some("running kernel".into()),
        desired: Some("0".into()),
    }]);
    change.on_rollback = vec![steps::sysctl_write(&restore)];
    diff.changes.push(change);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use harden_host::UserDb;

    use crate::resources::Playbook;
    use crate::testing;

    fn plan(yaml: &str, live: &Live, boot: Vec<SysctlEntry>) -> Diff {
        let source = crate::diagnostic::Source {
            name: "pb.yaml".into(),
            text: yaml.into(),
        };
        let playbook = crate::playbook::load(vec![source])
            .expect("playbook")
            .playbook;
        let section = playbook.limits.clone().expect("section");
        let users = UserDb::parse(false, "", "");
        let (mut facts, live_facts) = testing::facts(&Playbook::default(), &users);
        facts.sysctl_boot = boot;
        let overrides = testing::no_overrides();
        let cx = DiffContext {
            users: &users,
            facts: &facts,
            live: &live_facts,
            overrides: &overrides,
        };
        section.diff(live, &cx).expect("diff")
    }

    fn targets(diff: &Diff) -> Vec<&str> {
        diff.changes.iter().map(|c| c.target.as_str()).collect()
    }

    #[test]
    fn core_dumps_off_writes_three_files_and_the_kernel_value() {
        let live = Live {
            suid_dumpable: Some(("2".into(), true)),
            sysctl_tool: true,
            ..Live::default()
        };
        let diff = plan("limits: { core_dumps: false }\n", &live, Vec::new());
        assert_eq!(
            targets(&diff),
            vec![LIMITS_FILE, COREDUMP_FILE, SYSCTL_FILE, "running kernel"]
        );
        assert!(matches!(diff.changes[1].steps[0], Step::CreateDir { .. }));
        assert_eq!(
            diff.changes[3].on_rollback[0].display(),
            "sysctl -q -w fs.suid_dumpable=2"
        );
        let again = Live {
            limits_file: Some(LIMITS_TEXT.into()),
            coredump_file: Some(COREDUMP_TEXT.into()),
            sysctl_file: Some(SYSCTL_TEXT.into()),
            coredump_dir: true,
            suid_dumpable: Some(("0".into(), true)),
            ..Live::default()
        };
        let diff = plan("limits: {}\n", &again, Vec::new());
        assert!(diff.changes.is_empty(), "{diff:?}");
        assert_eq!(diff.unchanged, 4);
    }

    #[test]
    fn overrides_in_each_place_are_reported() {
        let live = Live {
            limits_file: Some(LIMITS_TEXT.into()),
            coredump_file: Some(COREDUMP_TEXT.into()),
            sysctl_file: Some(SYSCTL_TEXT.into()),
            coredump_dir: true,
            core_lines: vec![
                LimitLine {
                    place: format!("{LIMITS_FILE}:4"),
                    domain: "*".into(),
                    kind: "hard".into(),
                    value: "0".into(),
                },
                LimitLine {
                    place: "/etc/security/limits.d/90-dev.conf:1".into(),
                    domain: "alice".into(),
                    kind: "hard".into(),
                    value: "unlimited".into(),
                },
            ],
            coredump: coredump_settings(
                "# /etc/systemd/coredump.conf\n[Coredump]\n#Storage=external\n\n# /etc/systemd/coredump.conf.d/60-harden.conf\n[Coredump]\nStorage=none\nProcessSizeMax=0\n\n# /etc/systemd/coredump.conf.d/90-keep.conf\n[Coredump]\nStorage=external\n",
            ),
            suid_dumpable: Some(("2".into(), false)),
            sysctl_tool: true,
        };
        let boot = vec![SysctlEntry {
            key: SUID_DUMPABLE.into(),
            value: "2".into(),
            file: "/etc/sysctl.d/99-zzz-local.conf".into(),
            line: 3,
        }];
        let diff = plan("limits: {}\n", &live, boot);
        assert!(diff.changes.is_empty(), "{diff:?}");
        let messages: Vec<&str> = diff.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0]
            .starts_with("/etc/security/limits.d/90-dev.conf:1 sets the hard core limit of alice"));
        assert!(messages[1]
            .starts_with("/etc/systemd/coredump.conf.d/90-keep.conf sets Storage=external"));
        assert!(
            messages[2].starts_with("/etc/sysctl.d/99-zzz-local.conf:3 sets fs.suid_dumpable = 2")
        );
        assert!(messages[3].contains("applied at next boot"));
    }

    #[test]
    fn core_dumps_on_removes_harden_s_files() {
        let live = Live {
            limits_file: Some(LIMITS_TEXT.into()),
            ..Live::default()
        };
        let diff = plan("limits: { core_dumps: true }\n", &live, Vec::new());
        assert_eq!(targets(&diff), vec![LIMITS_FILE]);
        assert!(matches!(diff.changes[0].steps[0], Step::RemoveFile { .. }));
    }

    #[test]
    fn bad_values_are_located_errors() {
        for (yaml, needle) in [
            ("limits:\n  core_dumps: never\n", "pb.yaml:2:15"),
            ("limits:\n  coredumps: false\n", "pb.yaml:2:3"),
        ] {
            let source = crate::diagnostic::Source {
                name: "pb.yaml".into(),
                text: yaml.into(),
            };
            let err = crate::playbook::load(vec![source])
                .expect_err(yaml)
                .to_string();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }
}
