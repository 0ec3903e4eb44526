//! `sysctl`: kernel settings, at boot through harden's own `sysctl.d` file and live through
//! `sysctl -w`.
//!
//! The plan compares two things for each key: the value the running kernel has
//! (`/proc/sys`), and the value boot will set, read from the `sysctl.d` files in the order
//! systemd-sysctl reads them (see [`conf`]), with the file and line that wins. harden's file,
//! [`DROP_IN`], sorts after every file the distribution ships, so the playbook wins at boot;
//! a site's file that sorts later still overrides it, and every plan says so.
//!
//! Apply writes the file, then sets the live values that differ with `sysctl -w`; a rollback
//! restores the file and sets the old live values again. A `/proc/sys` entry that cannot be
//! written (a container's read-only `/proc/sys`, where only the network namespace's `net.*`
//! keys are its own) is not a failure: the plan warns that the value applies at next boot.
//! Under `--root` only the file is planned: the running kernel is not the image's.

pub(crate) mod conf;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harden_host::{Host, UserDb};
use harden_plan::{Attrs, Change, Command, Detail, Step, Warning};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::facts::{Facts, SysctlEntry};
use crate::located::{At, Located};
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps;

/// harden's drop-in: after the distribution's files (`50-default.conf`, `99-sysctl.conf`,
/// `99-protect-links.conf`), before a site's `99-zz-site.conf`... or any name sorting later.
pub const DROP_IN: &str = "/etc/sysctl.d/99-zz-harden.conf";
const MARKER: &str = "# Managed by harden";

/// The `sysctl:` section: kernel settings by key.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Sysctl(pub BTreeMap<Key, Located<Value>>);

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Sysctl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sysctl".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<Value>();
        schemars::json_schema!({
            "description": "Kernel settings by sysctl key (net.ipv4.conf.all.accept_redirects: 0).",
            "type": "object",
            "propertyNames": { "type": "string", "pattern": "^-?[A-Za-z0-9_-]+([./][A-Za-z0-9_:@-]+)+$" },
            "additionalProperties": value
        })
    }
}

/// A sysctl key, in dotted form, with its place. Written with a leading `-` (as in
/// `sysctl.d`), it is optional: a kernel without it is not an error.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key (`net.ipv4.tcp_syncookies`), without the `-`.
    pub value: String,
    /// Where it was written.
    pub at: At,
    /// Written `-key`: skipped where the kernel lacks it (and at boot, quietly).
    pub optional: bool,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

/// Checks a key: components of letters, digits, `_`, `-` (and `:`, `@` in interface names),
/// separated by `.` or `/`; no glob (the playbook names the keys it sets).
fn check_key(key: &str) -> Result<(), String> {
    let parts: Vec<&str> = key.split(['.', '/']).collect();
    let valid_part = |p: &&str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-:@".contains(c))
    };
    if parts.len() < 2 || !parts.iter().all(valid_part) {
        return Err(format!(
            "invalid sysctl key {key:?}: expected dotted names such as net.ipv4.tcp_syncookies (no globs)"
        ));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let located = Located::<String>::deserialize(deserializer)?;
        let (optional, key) = match located.value.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, located.value.as_str()),
        };
        check_key(key).map_err(serde::de::Error::custom)?;
        Ok(Key {
            value: conf::normalize(key),
            at: located.at,
            optional,
        })
    }
}

/// A value: a number, a boolean (1 or 0) or text (`"4096 87380 6291456"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Value, {
    "description": "A number, true/false (written 1/0), or text such as \"32768 60999\".",
    "anyOf": [
        { "type": "integer" },
        { "type": "boolean" },
        { "type": "string", "pattern": "^[^\\n\\r]*[^\\s][^\\n\\r]*$" }
    ]
});

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sysctl value: a number, true/false or one line of text")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value(if v { "1" } else { "0" }.into()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value(v.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                if v.trim().is_empty() || v.contains(['\n', '\r']) {
                    return Err(E::custom(format!(
                        "invalid sysctl value {v:?}: expected one line of text that is not blank"
                    )));
                }
                Ok(Value(v.trim().to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The running kernel's value of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelValue {
    /// What `/proc/sys` shows; `None` when the key does not exist (or cannot be read).
    pub value: Option<String>,
    /// Root may write it here (false on a read-only `/proc/sys`).
    pub writable: bool,
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// The running system (not an image under `--root`): live values count.
    pub running: bool,
    /// `sysctl` is installed.
    pub sysctl_tool: bool,
    /// harden's drop-in as it is.
    pub drop_in: Option<String>,
    /// Every line of the boot configuration, in read order.
    pub(crate) entries: Vec<SysctlEntry>,
    /// The kernel's values of the playbook's keys (only on the running system).
    pub kernel: BTreeMap<String, KernelValue>,
}

impl Resource for Sysctl {
    type Live = Live;
    const NAME: &'static str = "sysctl";

    fn merge(&mut self, later: Self) {
        for (key, value) in later.0 {
            self.0.remove(&key);
            self.0.insert(key, value);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }

    /// The boot configuration, for `limits` (which writes `fs.suid_dumpable`).
    async fn publish(_: Option<&Self>, host: &Host, _: &UserDb, facts: &mut Facts) {
        facts.sysctl_boot = boot_entries(host).unwrap_or_default();
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let drop_in = host
            .read_to_string(Path::new(DROP_IN))
            .map_err(|e| Failure::Probe(format!("{DROP_IN}: {e}")))?;
        let mut live = Live {
            running: host.is_live(),
            sysctl_tool: host.which("sysctl").is_some(),
            drop_in,
            entries: boot_entries(host).map_err(Failure::Probe)?,
            kernel: BTreeMap::new(),
        };
        let keys: Vec<&str> = self.0.keys().map(|k| k.value.as_str()).collect();
        live.kernel = if live.running {
            kernel_values(host, &keys).await?
        } else {
            // Under --root, only to tell which keys this machine's kernel lacks (a warning).
            machine_values(&keys)
        };
        Ok(live)
    }

    fn diff(&self, live: &Live, _cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let errors = self.unknown_keys(live, &mut diff);
        if !errors.is_empty() {
            return Err(Failure::Invalid(errors));
        }
        self.file_change(live, &mut diff);
        self.overridden(live, &mut diff);
        self.live_change(live, &mut diff)?;
        Ok(diff)
    }
}

/// Every line of the boot configuration of `host`, in the order systemd-sysctl reads it.
fn boot_entries(host: &Host) -> Result<Vec<SysctlEntry>, String> {
    let mut listings = Vec::new();
    for dir in conf::DIRS {
        let names = host
            .read_dir(Path::new(dir))
            .map_err(|e| format!("{dir}: {e}"))?
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        listings.push((dir, names));
    }
    let mut files = conf::read_order(&listings);
    let links_main = files.iter().any(|f| {
        std::fs::read_link(host.outside_path(Path::new(f)))
            .is_ok_and(|t| t.file_name().is_some_and(|n| n == "sysctl.conf"))
    });
    if !links_main {
        files.push(conf::SYSCTL_CONF.to_owned());
    }
    let mut entries = Vec::new();
    for file in files {
        let text = host
            .read_to_string(Path::new(&file))
            .map_err(|e| format!("{file}: {e}"))?;
        if let Some(text) = text {
            entries.extend(conf::parse(&file, &text));
        }
    }
    Ok(entries)
}

/// The kernel's value of each key, and whether it may be written (one `test -w` each, which
/// sees a read-only mount as the kernel would refuse the write).
async fn kernel_values(
    host: &Host,
    keys: &[&str],
) -> Result<BTreeMap<String, KernelValue>, Failure> {
    let paths: Vec<String> = keys.iter().map(|k| conf::proc_path(k)).collect();
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "for f; do if [ -w \"$f\" ]; then echo w; else echo r; fi; done".to_owned(),
        "harden-sysctl-writable".to_owned(),
    ];
    argv.extend(paths.iter().cloned());
    let out = host
        .run(&Command::new(argv).timeout(30))
        .await
        .map_err(|e| Failure::Probe(format!("checking /proc/sys: {e}")))?;
    let writable: Vec<bool> = out.stdout.lines().map(|l| l == "w").collect();
    let mut values = BTreeMap::new();
    for (i, (key, path)) in keys.iter().zip(&paths).enumerate() {
        let value = host
            .read_to_string(Path::new(path))
            .ok()
            .flatten()
            .map(|v| v.trim_end_matches('\n').to_owned());
        let writable = writable.get(i).copied().unwrap_or(false);
        values.insert((*key).to_owned(), KernelValue { value, writable });
    }
    Ok(values)
}

/// This machine's values of `keys`, read-only, never written (nothing runs for them).
fn machine_values(keys: &[&str]) -> BTreeMap<String, KernelValue> {
    let machine = Host::new("/");
    keys.iter()
        .map(|key| {
            let value = machine
                .read_to_string(Path::new(&conf::proc_path(key)))
                .ok()
                .flatten();
            let value = value.map(|v| v.trim_end_matches('\n').to_owned());
            (
                (*key).to_owned(),
                KernelValue {
                    value,
                    writable: false,
                },
            )
        })
        .collect()
}

fn warning(message: String) -> Warning {
    Warning {
        resource: Sysctl::NAME.into(),
        message,
    }
}

impl Sysctl {
    /// Keys the running kernel does not have: errors on the running system; under `--root`
    /// (where the image will boot a kernel of its own) warnings.
    fn unknown_keys(&self, live: &Live, diff: &mut Diff) -> Vec<Invalid> {
        let mut errors = Vec::new();
        for key in self.0.keys() {
            let known = live
                .kernel
                .get(&key.value)
                .is_some_and(|k| k.value.is_some());
            if known || key.optional {
                continue;
            }
            if !live.running {
                diff.warnings.push(warning(format!(
                    "this machine's kernel has no sysctl {}: check that the image's kernel has it",
                    key.value
                )));
            } else {
                errors.push(
                    Invalid::new(
                        key.at,
                        format!(
                            "this kernel has no sysctl {} ({} does not exist or cannot be read)",
                            key.value,
                            conf::proc_path(&key.value)
                        ),
                    )
                    .help("check the name (`sysctl -a` lists them); write it `-KEY` (as sysctl.d does) if this kernel may lack it"),
                );
            }
        }
        errors
    }

    /// The drop-in's text: one line per key, in key order.
    fn render(&self) -> String {
        let mut out = format!(
            "{MARKER} from the playbook's `sysctl` section; changes here are overwritten.\n\
             # systemd-sysctl reads this file after the distribution's; a file that sorts later\n\
             # still overrides it (`harden plan` reports that).\n"
        );
        for (key, value) in &self.0 {
            let dash = if key.optional { "-" } else { "" };
            out.push_str(&format!("{dash}{} = {}\n", key.value, value.value.0));
        }
        out
    }

    /// The boot configuration once the drop-in holds the playbook's keys.
    fn planned_entries(&self, live: &Live) -> Vec<SysctlEntry> {
        let ours = conf::parse(DROP_IN, &self.render());
        let name = |f: &str| Path::new(f).file_name().map(|n| n.to_owned());
        let own_name = name(DROP_IN);
        let mut planned: Vec<SysctlEntry> = live
            .entries
            .iter()
            .filter(|e| e.file != DROP_IN)
            .cloned()
            .collect();
        let at = planned
            .iter()
            .position(|e| e.file == conf::SYSCTL_CONF || name(&e.file) > own_name)
            .unwrap_or(planned.len());
        planned.splice(at..at, ours);
        planned
    }

    fn file_change(&self, live: &Live, diff: &mut Diff) {
        let content = self.render();
        if live.drop_in.as_deref() == Some(content.as_str()) {
            diff.unchanged += 1;
            return;
        }
        let details = self
            .0
            .iter()
            .filter_map(|(key, value)| {
                let now = conf::winner(&live.entries, &key.value);
                if now.is_some_and(|e| conf::same_value(&e.value, &value.value.0)) {
                    return None;
                }
                Some(Detail {
                    name: format!("{} (at boot)", key.value),
                    current: now.map(|e| e.value.clone()),
                    source: now.map(|e| format!("{}:{}", e.file, e.line)),
                    desired: Some(value.value.0.clone()),
                })
            })
            .collect();
        let reason = if live.drop_in.is_none() {
            "file is missing"
        } else {
            "settings differ"
        };
        diff.changes.push(
            Change::new(
                Self::NAME,
                DROP_IN,
                reason,
                vec![Step::WriteFile {
                    path: PathBuf::from(DROP_IN),
                    content,
                    attrs: Attrs::root(0o644),
                    before: live.drop_in.clone(),
                }],
            )
            .with_details(details),
        );
    }

    /// Warns about each key a file read after the drop-in sets otherwise.
    fn overridden(&self, live: &Live, diff: &mut Diff) {
        let planned = self.planned_entries(live);
        for (key, value) in &self.0 {
            let Some(win) = conf::winner(&planned, &key.value) else {
                continue;
            };
            if win.file != DROP_IN && !conf::same_value(&win.value, &value.value.0) {
                diff.warnings.push(warning(format!(
                    "{}:{} sets {} = {} after harden's {DROP_IN}: boot will set that, not the playbook's {}",
                    win.file, win.line, key.value, win.value, value.value.0
                )));
            }
        }
    }

    /// `sysctl -w` for the live values that differ, and their old values for a rollback.
    fn live_change(&self, live: &Live, diff: &mut Diff) -> Result<(), Failure> {
        if !live.running {
            return Ok(());
        }
        let mut set = Vec::new();
        let mut restore = Vec::new();
        let mut details = Vec::new();
        for (key, value) in &self.0 {
            let Some(kernel) = live.kernel.get(&key.value) else {
                continue;
            };
            let Some(current) = &kernel.value else {
                continue;
            };
            if conf::same_value(current, &value.value.0) {
                diff.unchanged += 1;
                continue;
            }
            if !kernel.writable {
                diff.warnings.push(warning(format!(
                    "{} is read-only here ({} cannot be written, as in a container): {} is applied at next boot, the kernel keeps {} until then",
                    key.value,
                    conf::proc_path(&key.value),
                    value.value.0,
                    current
                )));
                continue;
            }
            set.push((key.value.clone(), value.value.0.clone()));
            restore.push((key.value.clone(), current.clone()));
            details.push(Detail {
                name: key.value.clone(),
                current: Some(current.clone()),
                source: Some("running kernel".into()),
                desired: Some(value.value.0.clone()),
            });
        }
        if set.is_empty() {
            return Ok(());
        }
        if !live.sysctl_tool {
            return Err(Failure::Unusable(
                "sysctl is not installed (Debian's `procps` package): install it first".into(),
            ));
        }
        let mut change = Change::new(
            Self::NAME,
            "running kernel",
            format!("{} live value(s) differ", set.len()),
            vec![Step::Run(steps::sysctl_write(&set))],
        )
        .with_details(details);
        change.on_rollback = vec![steps::sysctl_write(&restore)];
        diff.changes.push(change);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
