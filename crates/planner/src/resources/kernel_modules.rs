//! `kernel_modules`: modules that must not load, through harden's own `modprobe.d` file.
//!
//! Each blocked module gets `install <m> /bin/false` (modprobe runs that instead of loading
//! it, by name or as a dependency) and `blacklist <m>` (no alias, such as a device's, loads
//! it). modprobe keeps the first `install` line it reads for a module, so the file sorts
//! first. The effective state is modprobe's own: `modprobe --showconfig` in the probe, and
//! after writing, a check that `modprobe -n -v <m>` (a dry run: nothing loads) answers
//! `install /bin/false`. A module loaded now is reported, never unloaded: something may be
//! using it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use harden_plan::{Attrs, Change, Command, Detail, Step, Warning};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::located::{At, Located};
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

/// harden's file: sorts first, as modprobe keeps the first `install` line of a module.
pub const DROP_IN: &str = "/etc/modprobe.d/00-harden.conf";

/// Where modprobe reads its configuration; created with harden's file where it is missing
/// (kmod not installed yet), so that a later kmod finds the modules blocked.
const DIR: &str = "/etc/modprobe.d";
const MARKER: &str = "# Managed by harden";
/// What modprobe runs instead of loading a blocked module.
const REFUSE: &str = "/bin/false";

/// The `kernel_modules:` section: modules by name, each `blocked` or `allowed`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct KernelModules(pub BTreeMap<Module, Located<Policy>>);

#[cfg(feature = "schema")]
impl schemars::JsonSchema for KernelModules {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KernelModules".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let policy = generator.subschema_for::<Policy>();
        schemars::json_schema!({
            "description": "Kernel modules by name: blocked (never loaded) or allowed (harden writes nothing for it).",
            "type": "object",
            "propertyNames": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,56}$" },
            "additionalProperties": policy
        })
    }
}

/// What harden does with one module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Never loaded: `install <m> /bin/false` and `blacklist <m>`.
    Blocked,
    /// Not harden's business (a later playbook lifting an earlier one's block).
    Allowed,
}

/// A module name, as modprobe reads it (`-` and `_` are the same: compared as `_`).
#[derive(Clone, Debug)]
pub struct Module {
    /// The name, with `_`.
    pub value: String,
    /// The name as the playbook spells it, which the file keeps (`usb-storage`).
    pub written: String,
    /// Where it was written.
    pub at: At,
}

impl PartialEq for Module {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl Eq for Module {}
impl PartialOrd for Module {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Module {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<'de> Deserialize<'de> for Module {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let located = Located::<String>::deserialize(deserializer)?;
        let name = &located.value;
        // The kernel's MODULE_NAME_LEN less the terminator and padding: 56 characters.
        let valid = !name.is_empty()
            && name.len() <= 56
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(serde::de::Error::custom(format!(
                "invalid module name {name:?}: expected letters, digits, `_` or `-` (at most 56), such as usb_storage"
            )));
        }
        Ok(Module {
            value: normalize(name),
            written: name.clone(),
            at: located.at,
        })
    }
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// modprobe's configuration as `modprobe --showconfig` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModprobeConfig {
    /// The first `install` command of each module (the one modprobe runs).
    pub install: BTreeMap<String, String>,
    /// Blacklisted modules.
    pub blacklist: BTreeSet<String>,
}

impl ModprobeConfig {
    /// Reads `modprobe --showconfig`.
    pub fn parse(text: &str) -> ModprobeConfig {
        let mut config = ModprobeConfig::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("install"), Some(module)) => {
                    let command: Vec<&str> = words.collect();
                    config
                        .install
                        .entry(normalize(module))
                        .or_insert_with(|| command.join(" "));
                }
                (Some("blacklist"), Some(module)) => {
                    config.blacklist.insert(normalize(module));
                }
                _ => {}
            }
        }
        config
    }

    /// The module can load neither by name nor by alias.
    fn blocks(&self, module: &str) -> bool {
        let refused = self.install.get(module).is_some_and(|c| refuses(c));
        refused && self.blacklist.contains(module)
    }
}

/// An install command that loads nothing.
fn refuses(command: &str) -> bool {
    matches!(
        command.trim(),
        "/bin/false" | "/bin/true" | "/usr/bin/false" | "/usr/bin/true" | "false" | "true"
    )
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// harden's file as it is.
    pub drop_in: Option<String>,
    /// `modprobe --showconfig`; `None` when modprobe is not installed.
    pub config: Option<ModprobeConfig>,
    /// Modules loaded now (`/proc/modules`; empty under `--root`).
    pub loaded: BTreeSet<String>,
    /// `/etc/modprobe.d` does not exist (a system without kmod).
    pub dir_missing: bool,
}

impl Resource for KernelModules {
    type Live = Live;
    const NAME: &'static str = "kernel_modules";

    fn merge(&mut self, later: Self) {
        for (module, policy) in later.0 {
            self.0.remove(&module);
            self.0.insert(module, policy);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let drop_in = host
            .read_to_string(Path::new(DROP_IN))
            .map_err(|e| Failure::Probe(format!("{DROP_IN}: {e}")))?;
        let config = if host.which("modprobe").is_some() {
            let out = host
                .run(&Command::new(["modprobe", "--showconfig"]).timeout(60))
                .await
                .map_err(|e| Failure::Probe(e.to_string()))?;
            if !out.success() {
                return Err(Failure::Probe(format!(
                    "`modprobe --showconfig` failed: {}",
                    out.stderr.trim()
                )));
            }
            Some(ModprobeConfig::parse(&out.stdout))
        } else {
            None
        };
        let loaded = if host.is_live() {
            let text = host
                .read_to_string(Path::new("/proc/modules"))
                .ok()
                .flatten()
                .unwrap_or_default();
            text.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(normalize)
                .collect()
        } else {
            BTreeSet::new()
        };
        let dir_missing = host
            .stat(Path::new(DIR))
            .map_err(|e| Failure::Probe(format!("{DIR}: {e}")))?
            .is_none();
        Ok(Live {
            drop_in,
            config,
            loaded,
            dir_missing,
        })
    }

    fn diff(&self, live: &Live, _cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let pairs = self.blocked();
        let content = render(&pairs);
        let blocked: Vec<&str> = pairs.iter().map(|(name, _)| *name).collect();
        if live.drop_in.as_deref() == Some(content.as_str()) {
            diff.unchanged += 1;
            self.report_ineffective(&blocked, live, &mut diff);
        } else {
            diff.changes.push(file_change(&blocked, content, live));
            earlier_install_lines(&blocked, live, &mut diff);
        }
        for module in blocked.iter().filter(|m| live.loaded.contains(**m)) {
            diff.warnings.push(warning(format!(
                "{module} is loaded now: harden does not unload it (something may use it; `modprobe -r {module}` when nothing does); it cannot load again after the next boot"
            )));
        }
        if live.config.is_none() {
            diff.warnings.push(warning(
                "modprobe is not installed (Debian's `kmod` package): nothing loads modules on demand here, and the file takes effect once it is".into(),
            ));
        }
        Ok(diff)
    }
}

fn warning(message: String) -> Warning {
    Warning {
        resource: KernelModules::NAME.into(),
        message,
    }
}

impl KernelModules {
    /// The modules to block: (name with `_`, name as written).
    fn blocked(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .filter(|(_, p)| p.value == Policy::Blocked)
            .map(|(m, _)| (m.value.as_str(), m.written.as_str()))
            .collect()
    }

    /// harden's file is right, but modprobe reads another `install` line first.
    fn report_ineffective(&self, blocked: &[&str], live: &Live, diff: &mut Diff) {
        let Some(config) = &live.config else { return };
        for module in blocked {
            if config.blocks(module) {
                diff.unchanged += 1;
            } else {
                let install = config.install.get(*module).map_or("(none)", String::as_str);
                diff.warnings.push(warning(format!(
                    "modprobe does not block {module} although {DROP_IN} does (its install command is {install}): a file sorting before it in modprobe.d sets another"
                )));
            }
        }
    }
}

/// Modules for which another file's `install` line loads the module: modprobe reads it
/// before harden's (it runs the first), so the apply's check will fail.
fn earlier_install_lines(blocked: &[&str], live: &Live, diff: &mut Diff) {
    let Some(config) = &live.config else { return };
    for module in blocked {
        if let Some(command) = config.install.get(*module).filter(|c| !refuses(c)) {
            diff.warnings.push(warning(format!(
                "modprobe runs `{command}` for {module} (a modprobe.d file read before {DROP_IN}): the apply's check will fail until that line goes"
            )));
        }
    }
}

/// The file: two lines per blocked module, spelt as the playbook spells it.
fn render(blocked: &[(&str, &str)]) -> String {
    let mut out = format!(
        "{MARKER} from the playbook's `kernel_modules` section; changes here are overwritten.\n\
         # modprobe keeps the first install line of a module, so this file sorts first.\n"
    );
    for (_, module) in blocked {
        out.push_str(&format!("install {module} {REFUSE}\nblacklist {module}\n"));
    }
    out
}

fn file_change(blocked: &[&str], content: String, live: &Live) -> Change {
    let details = blocked
        .iter()
        .filter(|m| !live.config.as_ref().is_some_and(|c| c.blocks(m)))
        .map(|m| Detail {
            name: (*m).to_owned(),
            current: Some("loadable".into()),
            source: None,
            desired: Some("blocked".into()),
        })
        .collect();
    let mut steps = Vec::new();
    if live.dir_missing {
        steps.push(Step::CreateDir {
            path: PathBuf::from(DIR),
            attrs: Attrs::root(0o755),
        });
    }
    steps.push(Step::WriteFile {
        path: PathBuf::from(DROP_IN),
        content,
        attrs: Attrs::root(0o644),
        before: live.drop_in.clone(),
    });
    if live.config.is_some() && !blocked.is_empty() {
        steps.push(Step::Validate(check_command(blocked)));
    }
    let reason = if live.drop_in.is_none() {
        "file is missing"
    } else {
        "modules differ"
    };
    Change::new(KernelModules::NAME, DROP_IN, reason, steps).with_details(details)
}

/// Fails unless `modprobe -n -v` (a dry run) answers `install /bin/false` for each module.
fn check_command(blocked: &[&str]) -> Command {
    let script = "fail=0\n\
                  for m; do\n\
                  \x20 got=$(modprobe -n -v \"$m\" 2>&1 | head -n 1 | sed 's/[[:space:]]*$//')\n\
                  \x20 case \"$got\" in\n\
                  \x20   \"install /bin/false\"*) ;;\n\
                  \x20   *) printf 'modprobe -n -v %s: %s (not blocked)\\n' \"$m\" \"$got\" >&2; fail=1 ;;\n\
                  \x20 esac\n\
                  done\n\
                  exit $fail";
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "harden-modprobe-check".to_owned(),
    ];
    argv.extend(blocked.iter().map(|m| (*m).to_owned()));
    Command::new(argv).timeout(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use harden_host::UserDb;

    use crate::resources::Playbook;
    use crate::testing;

    fn plan(yaml: &str, live: &Live) -> Diff {
        let section = testing::parse(yaml)
            .expect("playbook")
            .kernel_modules
            .expect("section");
        let playbook = Playbook::default();
        let users = UserDb::parse(false, "", "");
        let (facts, live_facts) = testing::facts(&playbook, &users);
        let overrides = testing::no_overrides();
        let cx = DiffContext {
            users: &users,
            facts: &facts,
            live: &live_facts,
            overrides: &overrides,
        };
        section.diff(live, &cx).expect("diff")
    }

    const PB: &str = "kernel_modules:\n  dccp: blocked\n  usb-storage: blocked\n  sctp: allowed\n";

    #[test]
    fn blocked_modules_get_install_and_blacklist_lines_then_modprobe_s_check() {
        let live = Live {
            config: Some(ModprobeConfig::default()),
            ..Live::default()
        };
        let diff = plan(PB, &live);
        let change = &diff.changes[0];
        let Step::WriteFile { content, .. } = &change.steps[0] else {
            panic!("a file")
        };
        assert!(content.ends_with(
            "install dccp /bin/false\nblacklist dccp\ninstall usb-storage /bin/false\nblacklist usb-storage\n"
        ));
        let Step::Validate(check) = &change.steps[1] else {
            panic!("a check")
        };
        assert_eq!(&check.argv[4..], ["dccp", "usb_storage"]);
        assert_eq!(change.details.len(), 2);
    }

    #[test]
    fn a_system_without_modprobe_d_gets_the_directory_then_the_file() {
        let live = Live {
            dir_missing: true,
            ..Live::default()
        };
        let diff = plan(PB, &live);
        let steps = &diff.changes[0].steps;
        assert!(
            matches!(&steps[0], Step::CreateDir { path, .. } if path == Path::new(DIR)),
            "{steps:?}"
        );
        assert!(matches!(&steps[1], Step::WriteFile { .. }), "{steps:?}");
    }

    #[test]
    fn a_second_plan_is_empty_when_modprobe_blocks_them() {
        let config = ModprobeConfig::parse(
            "blacklist dccp\nblacklist usb_storage\ninstall dccp /bin/false\ninstall usb_storage /bin/false\noptions x y=1\n",
        );
        let live = Live {
            drop_in: Some(render(&[("dccp", "dccp"), ("usb_storage", "usb-storage")])),
            config: Some(config),
            ..Live::default()
        };
        let diff = plan(PB, &live);
        assert!(diff.changes.is_empty(), "{diff:?}");
        assert!(diff.warnings.is_empty(), "{:?}", diff.warnings);
        assert_eq!(diff.unchanged, 3);
    }

    #[test]
    fn an_earlier_install_line_and_a_loaded_module_are_reported() {
        let config = ModprobeConfig::parse(
            "install dccp /sbin/modprobe --ignore-install dccp\ninstall dccp /bin/false\nblacklist dccp\ninstall usb_storage /bin/false\nblacklist usb_storage\n",
        );
        let live = Live {
            drop_in: Some(render(&[("dccp", "dccp"), ("usb_storage", "usb-storage")])),
            config: Some(config),
            loaded: ["usb_storage".to_owned()].into(),
            dir_missing: false,
        };
        let diff = plan(PB, &live);
        let messages: Vec<&str> = diff.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(messages[0].contains("does not block dccp"), "{messages:?}");
        assert!(messages[0].contains("--ignore-install"), "{messages:?}");
        assert!(
            messages[1].starts_with("usb_storage is loaded now"),
            "{messages:?}"
        );
    }

    #[test]
    fn bad_names_and_policies_are_located_errors() {
        for (yaml, needle) in [
            (
                "kernel_modules:\n  \"usb storage\": blocked\n",
                "invalid module name",
            ),
            ("kernel_modules:\n  dccp: disabled\n", "unknown variant"),
        ] {
            let err = testing::parse(yaml).expect_err(yaml);
            assert!(err.contains("pb.yaml:2:"), "{yaml}: {err}");
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }
}
