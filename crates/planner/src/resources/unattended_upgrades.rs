//! `unattended_upgrades`: automatic security updates through APT's periodic jobs.
//!
//! harden writes two files and leaves the package's `50unattended-upgrades` alone (Debian
//! creates it with ucf; the operator may have edited it): `20auto-upgrades`, which switches
//! the periodic update and upgrade on or off (the file `dpkg-reconfigure unattended-upgrades`
//! writes), and its own drop-in `52harden-unattended-upgrades`, read after `50...`. APT's
//! lists append across files, so the drop-in empties the origin lists with `#clear` before
//! giving its own: the playbook's origins, or this distribution's security origin.
//!
//! The effective view is APT's own: the probe is `apt-config dump`, and after writing, a
//! Validate step asks `apt-config dump` again that every value is what harden wrote, so a
//! file that sorts later and overrides a value fails the apply instead of going unnoticed.

pub(crate) mod aptconf;

use std::fmt;
use std::path::{Path, PathBuf};

use harden_plan::{
    Attrs, Change, Command, Detail, Enablement, Step, UnitAction, UnitState, UnitStep, Warning,
};
use serde::{Deserialize, Deserializer};

pub use aptconf::{AptDump, OsRelease};

use crate::diagnostic::Invalid;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps;

/// The file that switches APT's periodic jobs on.
pub const AUTO_UPGRADES: &str = "/etc/apt/apt.conf.d/20auto-upgrades";
/// harden's drop-in, read after the package's `50unattended-upgrades`.
pub const DROP_IN: &str = "/etc/apt/apt.conf.d/52harden-unattended-upgrades";
const MARKER: &str = "// Managed by harden";
const TIMERS: [&str; 2] = ["apt-daily.timer", "apt-daily-upgrade.timer"];

/// The `unattended_upgrades:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UnattendedUpgrades {
    /// Periodic package-list update and unattended upgrade (default: true).
    pub enabled: Option<Located<bool>>,
    /// Origins to upgrade from (default: the distribution's security origin).
    pub origins: Option<Located<Vec<Origin>>>,
    /// Reboot when an upgrade needs it.
    pub automatic_reboot: Option<Located<bool>>,
    /// When to reboot (`HH:MM` or `now`).
    pub automatic_reboot_time: Option<Located<RebootTime>>,
    /// Remove dependencies no longer needed after an upgrade.
    pub remove_unused_dependencies: Option<Located<bool>>,
    /// Remove old kernels after an upgrade.
    pub remove_unused_kernel_packages: Option<Located<bool>>,
    /// Where to mail reports.
    pub mail: Option<Located<Mail>>,
    /// When to mail (`always`, `only-on-error`, `on-change`).
    pub mail_report: Option<Located<MailReport>>,
    /// Download limit for APT over HTTP, in KB/s (`Acquire::http::Dl-Limit`: all of APT's
    /// HTTP downloads, not only unattended-upgrades').
    pub bandwidth_limit: Option<Located<Limit>>,
}

/// Checks a value for an APT configuration string: one line, no quote or backslash.
fn check_apt_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty value".into());
    }
    if text.contains(['"', '\\', '\'', '\n', '\r']) {
        return Err(format!("{text:?} contains a quote, backslash or line break, which APT's configuration cannot hold"));
    }
    Ok(())
}

/// An origin to upgrade from: an `Origins-Pattern` (`origin=Debian,label=Debian-Security`)
/// or an `Allowed-Origins` entry (`${distro_id}:${distro_codename}-security`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `key=value,...` with keys origin (o), label (l), archive (a, suite), codename (n),
    /// component (c), site.
    Pattern(String),
    /// `origin:archive`.
    Allowed(String),
}

impl Origin {
    /// The text APT reads.
    pub fn text(&self) -> &str {
        match self {
            Origin::Pattern(s) | Origin::Allowed(s) => s,
        }
    }
}

fn parse_origin(text: &str) -> Result<Origin, String> {
    check_apt_text(text)?;
    if text.contains('=') {
        for part in text.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "origin pattern {text:?}: {part:?} is not key=value"
                ));
            };
            let known = [
                "origin",
                "o",
                "label",
                "l",
                "archive",
                "a",
                "suite",
                "codename",
                "n",
                "component",
                "c",
                "site",
            ];
            if !known.contains(&key.trim()) {
                return Err(format!(
                    "origin pattern {text:?}: unknown key {key:?} (expected one of {})",
                    known.join(", ")
                ));
            }
            if value.trim().is_empty() {
                return Err(format!("origin pattern {text:?}: {key} has no value"));
            }
        }
        return Ok(Origin::Pattern(text.to_owned()));
    }
    match text.split_once(':') {
        Some((origin, archive)) if !origin.is_empty() && !archive.is_empty() => Ok(Origin::Allowed(text.to_owned())),
        _ => Err(format!(
            "invalid origin {text:?}: expected a pattern such as origin=Debian,codename=${{distro_codename}}-security,label=Debian-Security or origin:archive such as ${{distro_id}}:${{distro_codename}}-security"
        )),
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Origin, {
    "description": "An Origins-Pattern (origin=Debian,codename=${distro_codename}-security,label=Debian-Security) or origin:archive (${distro_id}:${distro_codename}-security).",
    "type": "string",
    "pattern": "^([^=,:\"\\\\'\\n\\r]+=[^,]+(,[^=,]+=[^,]+)*|[^:=\"\\\\'\\n\\r]+:[^\"\\\\'\\n\\r]+)$"
});

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_origin(&text).map_err(serde::de::Error::custom)
    }
}

/// `HH:MM` (24-hour) or `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebootTime(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(RebootTime, {
    "description": "HH:MM (24-hour, quoted: \"02:00\") or now.",
    "type": "string",
    "pattern": "^(now|([01][0-9]|2[0-3]):[0-5][0-9])$"
});

impl<'de> Deserialize<'de> for RebootTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let valid = text == "now"
            || matches!(text.split_once(':'), Some((h, m))
                if h.len() == 2 && m.len() == 2
                    && h.parse::<u8>().is_ok_and(|h| h < 24)
                    && m.parse::<u8>().is_ok_and(|m| m < 60));
        if valid {
            Ok(RebootTime(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid reboot time {text:?}: expected HH:MM (24-hour, quoted: \"02:00\") or now"
            )))
        }
    }
}

/// A mail address (or a local user name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Mail, {
    "description": "A mail address (user@example.org) or a local user such as root.",
    "type": "string",
    "pattern": "^[A-Za-z0-9._%+-]+(@[A-Za-z0-9._%+-]+)?$"
});

impl<'de> Deserialize<'de> for Mail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._%+-@".contains(c))
            && text.matches('@').count() <= 1
            && !text.starts_with('@')
            && !text.ends_with('@');
        if valid {
            Ok(Mail(text))
        } else {
            Err(serde::de::Error::custom(format!("invalid mail address {text:?}: expected user@example.org or a local user such as root")))
        }
    }
}

/// When unattended-upgrades mails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum MailReport {
    /// After every run.
    Always,
    /// When something failed.
    OnlyOnError,
    /// When packages changed.
    OnChange,
}

impl fmt::Display for MailReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailReport::Always => "always",
            MailReport::OnlyOnError => "only-on-error",
            MailReport::OnChange => "on-change",
        })
    }
}

/// A download limit in KB/s, at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub u32);

#[cfg(feature = "schema")]
crate::schema::literal!(Limit, {
    "description": "A download limit in KB/s, a whole number of at least 1.",
    "type": "integer",
    "minimum": 1,
    "maximum": 4294967295u32
});

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a download limit in KB/s (a whole number of at least 1)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Limit, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|v| *v >= 1)
                    .map(Limit)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "invalid bandwidth limit {v}: expected 1 to 4294967295 KB/s"
                        ))
                    })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Limit, E> {
                u64::try_from(v)
                    .map_err(|_| {
                        E::custom(format!(
                            "invalid bandwidth limit {v}: expected a positive number of KB/s"
                        ))
                    })
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Limit, E> {
                let digits = v.trim().trim_end_matches(['k', 'K']);
                digits
                    .parse::<u64>()
                    .map_err(|_| {
                        E::custom(format!(
                            "invalid bandwidth limit {v:?}: expected a number of KB/s such as 512"
                        ))
                    })
                    .and_then(|n| self.visit_u64(n))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One APT option harden sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// APT's key.
    pub key: &'static str,
    /// Its value.
    pub value: Value,
}

/// A scalar or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `Key "value";` (`boolean`: compared as a truth value).
    Scalar {
        /// The text.
        text: String,
        /// APT reads it as a boolean.
        boolean: bool,
    },
    /// `Key { "a"; "b"; };`
    List(Vec<String>),
}

impl Value {
    fn flag(on: bool) -> Value {
        Value::Scalar {
            text: if on { "true" } else { "false" }.into(),
            boolean: true,
        }
    }

    fn text(text: impl Into<String>) -> Value {
        Value::Scalar {
            text: text.into(),
            boolean: false,
        }
    }

    fn display(&self) -> String {
        match self {
            Value::Scalar { text, .. } => text.clone(),
            Value::List(items) if items.is_empty() => "(empty)".into(),
            Value::List(items) => items.join("; "),
        }
    }

    /// The value as `apt-config dump` shows it, without the key: `"1";`, or `"";` then each
    /// `"item";` for a list.
    fn dumped(&self) -> String {
        match self {
            Value::Scalar { text, .. } => format!("\"{text}\";"),
            Value::List(items) if items.is_empty() => String::new(),
            Value::List(items) => std::iter::once("\"\";".to_owned())
                .chain(items.iter().map(|i| format!("\"{i}\";")))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The current value of `key` in `dump`, in the same shape.
    fn current(&self, dump: &AptDump, key: &str) -> Option<Value> {
        match self {
            Value::Scalar { boolean, .. } => dump.scalar(key).map(|t| Value::Scalar {
                text: t.to_owned(),
                boolean: *boolean,
            }),
            Value::List(_) => Some(Value::List(dump.list(key).to_vec())),
        }
    }

    fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (
                Value::Scalar {
                    text: a,
                    boolean: true,
                },
                Value::Scalar { text: b, .. },
            ) => truth(a).is_some() && truth(a) == truth(b),
            _ => self == other,
        }
    }
}

/// APT's reading of a boolean.
fn truth(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "with" | "enable" | "1" => Some(true),
        "false" | "no" | "off" | "without" | "disable" | "0" => Some(false),
        _ => None,
    }
}

/// A systemd timer APT's periodic jobs need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    /// Unit name.
    pub unit: String,
    /// The unit file exists.
    pub installed: bool,
    /// Its `timers.target.wants` link exists.
    pub enabled: bool,
    /// Active now (only known on a live systemd system).
    pub active: Option<bool>,
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// `unattended-upgrade` is installed.
    pub installed: bool,
    /// /etc/os-release.
    pub os: OsRelease,
    /// Current `20auto-upgrades`.
    pub auto_upgrades: Option<String>,
    /// Current harden drop-in.
    pub drop_in: Option<String>,
    /// `apt-config dump`.
    pub dump: AptDump,
    /// APT's files in read order (path, text), to locate values.
    pub files: Vec<(String, String)>,
    /// apt-daily and apt-daily-upgrade timers.
    pub timers: Vec<Timer>,
    /// `systemctl` exists.
    pub systemctl: bool,
    /// The system runs systemd now (live only).
    pub systemd: bool,
    /// A mailer unattended-upgrades can use exists.
    pub mailer: bool,
}

impl Resource for UnattendedUpgrades {
    type Live = Live;
    const NAME: &'static str = "unattended_upgrades";

    fn merge(&mut self, later: Self) {
        macro_rules! take {
            ($($field:ident),*) => {
                $(if later.$field.is_some() { self.$field = later.$field; })*
            };
        }
        take!(
            enabled,
            origins,
            automatic_reboot,
            automatic_reboot_time,
            remove_unused_dependencies,
            remove_unused_kernel_packages,
            mail,
            mail_report,
            bandwidth_limit
        );
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        if let Some(origins) = &self.origins {
            if origins.value.is_empty() {
                errors.push(
                    Invalid::new(origins.at, "an empty `origins` list would upgrade nothing")
                        .help("list at least one origin, or set `enabled: false`"),
                );
            }
        }
        if let (Some(report), None) = (&self.mail_report, &self.mail) {
            errors.push(Invalid::new(report.at, "`mail_report` needs `mail`"));
        }
        errors
    }

    fn early(&self, _host: &harden_host::Host) -> Vec<Command> {
        vec![dump_command()]
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let failed = |what: &str, e: std::io::Error| Failure::Probe(format!("{what}: {e}"));
        let read = |path: &str| {
            host.read_to_string(Path::new(path))
                .map_err(|e| failed(path, e))
        };
        let mut live = Live {
            installed: host.which("unattended-upgrade").is_some(),
            os: read("/etc/os-release")?
                .or(read("/usr/lib/os-release")?)
                .map(|t| aptconf::parse_os_release(&t))
                .unwrap_or_default(),
            auto_upgrades: read(AUTO_UPGRADES)?,
            drop_in: read(DROP_IN)?,
            systemctl: host.which("systemctl").is_some(),
            systemd: host.has_systemd(),
            mailer: host.which("sendmail").is_some() || host.which("mail").is_some(),
            ..Live::default()
        };
        let names: Vec<String> = host
            .read_dir(Path::new(aptconf::CONF_D))
            .map_err(|e| failed(aptconf::CONF_D, e))?
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        for path in aptconf::read_order(&names) {
            if let Some(text) = read(&path)? {
                live.files.push((path, text));
            }
        }
        let out = cx
            .run(&dump_command())
            .await
            .map_err(|e| Failure::Probe(e.to_string()))?;
        if !out.success() {
            return Err(Failure::Probe(format!(
                "`apt-config dump` failed: {}",
                out.stderr.trim()
            )));
        }
        live.dump = aptconf::parse_dump(&out.stdout);

        if self.enabled.as_ref().is_none_or(|e| e.value) {
            for unit in TIMERS {
                let installed = [
                    "/lib/systemd/system",
                    "/usr/lib/systemd/system",
                    "/etc/systemd/system",
                ]
                .iter()
                .any(|dir| matches!(host.stat(&Path::new(dir).join(unit)), Ok(Some(_))));
                let link = Path::new("/etc/systemd/system/timers.target.wants").join(unit);
                let enabled = host
                    .stat(&link)
                    .map_err(|e| failed(&link.to_string_lossy(), e))?
                    .is_some();
                let active = if live.systemd {
                    let out = host
                        .run(&Command::new(["systemctl", "is-active", "--quiet", unit]).timeout(15))
                        .await;
                    Some(out.is_ok_and(|o| o.success()))
                } else {
                    None
                };
                live.timers.push(Timer {
                    unit: unit.to_owned(),
                    installed,
                    enabled,
                    active,
                });
            }
        }
        Ok(live)
    }

    fn diff(&self, live: &Live, _cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let desired = self.desired(&live.os)?;
        if !live.installed {
            diff.changes.push(Change::new(
                Self::NAME,
                "package unattended-upgrades",
                "unattended-upgrades is not installed",
                vec![Step::Run(steps::apt_install(&["unattended-upgrades"]))],
            ));
        }
        let wrote = file_changes(&desired, live, &mut diff);
        let messages = if wrote {
            diff.changes.push(Change::new(
                Self::NAME,
                "apt-config",
                "check that APT reads every value harden wrote",
                vec![Step::Validate(check_command(&desired.all()))],
            ));
            overridden_later(&desired, live)
        } else if live.installed {
            read_otherwise(&desired, live)
        } else {
            Vec::new()
        };
        diff.warnings.extend(messages.into_iter().map(warning));
        if self.enabled.as_ref().is_none_or(|e| e.value) {
            self.timers(live, &mut diff);
        }
        if self.mail.is_some() && !live.mailer {
            diff.warnings.push(warning("`mail` is set but neither sendmail nor mail is installed; unattended-upgrades cannot send reports".into()));
        }
        Ok(diff)
    }
}

fn warning(message: String) -> Warning {
    Warning {
        resource: UnattendedUpgrades::NAME.into(),
        message,
    }
}

impl Desired {
    /// Every setting harden writes, in both files.
    fn all(&self) -> Vec<&Setting> {
        self.periodic.iter().chain(self.drop_in.iter()).collect()
    }

    /// The file harden writes `setting` to.
    fn file_of(&self, setting: &Setting) -> &'static str {
        if self.periodic.contains(setting) {
            AUTO_UPGRADES
        } else {
            DROP_IN
        }
    }
}

/// A change for each of harden's two files whose text differs; true when any is written.
fn file_changes(desired: &Desired, live: &Live, diff: &mut Diff) -> bool {
    let mut wrote = false;
    for (path, settings, content, current) in [
        (
            AUTO_UPGRADES,
            &desired.periodic,
            render_auto_upgrades(&desired.periodic),
            &live.auto_upgrades,
        ),
        (
            DROP_IN,
            &desired.drop_in,
            render_drop_in(&desired.drop_in),
            &live.drop_in,
        ),
    ] {
        if current.as_deref() == Some(content.as_str()) {
            diff.unchanged += 1;
            continue;
        }
        wrote = true;
        let mut reason = if current.is_none() {
            "file is missing".to_owned()
        } else {
            "settings differ".to_owned()
        };
        if let (DROP_IN, Some(note)) = (path, &desired.note) {
            reason = format!("{reason} ({note})");
        }
        diff.changes.push(
            Change::new(
                UnattendedUpgrades::NAME,
                path,
                reason,
                vec![Step::WriteFile {
                    path: PathBuf::from(path),
                    content,
                    attrs: Attrs::root(0o644),
                    before: current.clone(),
                }],
            )
            .with_details(details(settings, live)),
        );
    }
    wrote
}

/// Values a file APT reads after harden's overrides (APT reads them differently now): the
/// apply's check will fail on them.
fn overridden_later(desired: &Desired, live: &Live) -> Vec<String> {
    let mut messages = Vec::new();
    for setting in desired.all() {
        let own = desired.file_of(setting);
        let current = setting.value.current(&live.dump, setting.key);
        if current.as_ref().is_some_and(|c| setting.value.same(c)) {
            continue;
        }
        if let Some((path, line)) = aptconf::locate(&live.files, setting.key) {
            if later(&live.files, path, own) {
                messages.push(format!(
                    "{path}:{line} sets {} after harden's {own}, so APT will not read the playbook's value and the apply will fail its check",
                    setting.key
                ));
            }
        }
    }
    messages
}

/// harden's files are right; what APT still reads differently, and from where.
fn read_otherwise(desired: &Desired, live: &Live) -> Vec<String> {
    let mut messages = Vec::new();
    for setting in desired.all() {
        let current = setting.value.current(&live.dump, setting.key);
        if current.as_ref().is_some_and(|c| setting.value.same(c)) {
            continue;
        }
        let place = aptconf::locate(&live.files, setting.key)
            .map(|(p, l)| format!(" (from {p}:{l})"))
            .unwrap_or_default();
        messages.push(format!(
            "APT reads {} as {}{place}, not the playbook's {}",
            setting.key,
            current.map_or("unset".into(), |c| c.display()),
            setting.value.display()
        ));
    }
    messages
}

/// True when `path` is read after `own` (`own` missing from the list counts as its name's place).
fn later(files: &[(String, String)], path: &str, own: &str) -> bool {
    if path == own {
        return false;
    }
    let position = |p: &str| files.iter().position(|(f, _)| f == p);
    match (position(path), position(own)) {
        (Some(a), Some(b)) => a > b,
        // harden's file does not exist yet: compare names the way APT sorts them.
        (Some(_), None) => {
            path == "/etc/apt/apt.conf" || (path.starts_with(aptconf::CONF_D) && path > own)
        }
        _ => false,
    }
}

/// What harden writes: `20auto-upgrades`, the drop-in, and how the origins were chosen.
struct Desired {
    periodic: Vec<Setting>,
    drop_in: Vec<Setting>,
    note: Option<String>,
}

impl UnattendedUpgrades {
    /// The settings of `20auto-upgrades` and of the drop-in, and a note on the origins chosen.
    fn desired(&self, os: &OsRelease) -> Result<Desired, Failure> {
        let on = self.enabled.as_ref().is_none_or(|e| e.value);
        let flag = if on { "1" } else { "0" };
        let periodic = vec![
            Setting {
                key: "APT::Periodic::Update-Package-Lists",
                value: Value::text(flag),
            },
            Setting {
                key: "APT::Periodic::Unattended-Upgrade",
                value: Value::text(flag),
            },
        ];
        let (origins, note) = match &self.origins {
            Some(origins) => (origins.value.clone(), None),
            None => {
                let (origins, what) = security_origins(os)?;
                (origins, Some(format!("origins: {what}")))
            }
        };
        let patterns = origins
            .iter()
            .filter(|o| matches!(o, Origin::Pattern(_)))
            .map(|o| o.text().to_owned())
            .collect();
        let allowed = origins
            .iter()
            .filter(|o| matches!(o, Origin::Allowed(_)))
            .map(|o| o.text().to_owned())
            .collect();
        let mut drop_in = vec![
            Setting {
                key: "Unattended-Upgrade::Origins-Pattern",
                value: Value::List(patterns),
            },
            Setting {
                key: "Unattended-Upgrade::Allowed-Origins",
                value: Value::List(allowed),
            },
        ];
        let flags = [
            (
                "Unattended-Upgrade::Automatic-Reboot",
                &self.automatic_reboot,
            ),
            (
                "Unattended-Upgrade::Remove-Unused-Dependencies",
                &self.remove_unused_dependencies,
            ),
            (
                "Unattended-Upgrade::Remove-Unused-Kernel-Packages",
                &self.remove_unused_kernel_packages,
            ),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                drop_in.push(Setting {
                    key,
                    value: Value::flag(v.value),
                });
            }
        }
        if let Some(time) = &self.automatic_reboot_time {
            drop_in.push(Setting {
                key: "Unattended-Upgrade::Automatic-Reboot-Time",
                value: Value::text(&time.value.0),
            });
        }
        if let Some(mail) = &self.mail {
            drop_in.push(Setting {
                key: "Unattended-Upgrade::Mail",
                value: Value::text(&mail.value.0),
            });
        }
        if let Some(report) = &self.mail_report {
            drop_in.push(Setting {
                key: "Unattended-Upgrade::MailReport",
                value: Value::text(report.value.to_string()),
            });
        }
        if let Some(limit) = &self.bandwidth_limit {
            drop_in.push(Setting {
                key: "Acquire::http::Dl-Limit",
                value: Value::text(limit.value.0.to_string()),
            });
        }
        Ok(Desired {
            periodic,
            drop_in,
            note,
        })
    }

    fn timers(&self, live: &Live, diff: &mut Diff) {
        let warn = |message: String| Warning {
            resource: Self::NAME.into(),
            message,
        };
        let missing: Vec<&Timer> = live.timers.iter().filter(|t| !t.installed).collect();
        if !missing.is_empty() && live.installed {
            let names: Vec<&str> = missing.iter().map(|t| t.unit.as_str()).collect();
            diff.warnings.push(warn(format!(
                "{} not found: APT's periodic jobs cannot run from systemd timers here",
                names.join(", ")
            )));
            return;
        }
        let disabled: Vec<&Timer> = live.timers.iter().filter(|t| !t.enabled).collect();
        let inactive: Vec<&Timer> = live
            .timers
            .iter()
            .filter(|t| t.enabled && t.active == Some(false))
            .collect();
        if disabled.is_empty() && inactive.is_empty() {
            diff.unchanged += 1;
            return;
        }
        if !live.systemctl {
            diff.warnings.push(warn("systemctl is not installed: cannot enable apt-daily.timer and apt-daily-upgrade.timer".into()));
            return;
        }
        // Through systemctl: the snapshot saves each timer's state and rollback restores it.
        let steps = live
            .timers
            .iter()
            .filter(|t| !t.enabled || t.active == Some(false))
            .map(|t| {
                Step::Unit(UnitStep {
                    unit: t.unit.clone(),
                    enablement: (!t.enabled).then_some(Enablement::Enabled),
                    action: (live.systemd && t.active != Some(true)).then_some(UnitAction::Start),
                    before: UnitState {
                        enablement: if t.enabled { "enabled" } else { "disabled" }.into(),
                        active: match t.active {
                            Some(true) => "active",
                            Some(false) => "inactive",
                            None => "unknown",
                        }
                        .into(),
                    },
                    timeout_secs: 60,
                })
            })
            .collect();
        let units: Vec<&str> = live.timers.iter().map(|t| t.unit.as_str()).collect();
        diff.changes.push(
            Change::new(
                Self::NAME,
                units.join(", "),
                if disabled.is_empty() {
                    "timers are enabled but not running"
                } else {
                    "APT's periodic timers are not enabled"
                },
                steps,
            )
            .with_details(
                live.timers
                    .iter()
                    .filter(|t| !t.enabled || t.active == Some(false))
                    .map(|t| Detail {
                        name: t.unit.clone(),
                        current: Some(
                            if t.enabled {
                                "enabled, inactive"
                            } else {
                                "disabled"
                            }
                            .into(),
                        ),
                        source: None,
                        desired: Some(
                            if live.systemd {
                                "enabled, active"
                            } else {
                                "enabled"
                            }
                            .into(),
                        ),
                    })
                    .collect(),
            ),
        );
    }
}

/// This distribution's security origins, and a description for the plan.
fn security_origins(os: &OsRelease) -> Result<(Vec<Origin>, String), Failure> {
    let release = match (&os.version_id, &os.codename) {
        (_, Some(codename)) => codename.clone(),
        (Some(version), None) => version.clone(),
        (None, None) => "this release".into(),
    };
    match os.id.as_str() {
        "debian" => {
            // Since Debian 11 the security suite is <codename>-security.
            let major = os.version_id.as_deref().and_then(|v| v.split('.').next()).and_then(|v| v.parse::<u32>().ok());
            let pattern = match major {
                Some(m) if m < 11 => "origin=Debian,codename=${distro_codename},label=Debian-Security",
                _ => "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
            };
            Ok((vec![Origin::Pattern(pattern.into())], format!("Debian's security suite for {release}")))
        }
        "ubuntu" => Ok((
            vec![
                Origin::Allowed("${distro_id}:${distro_codename}-security".into()),
                Origin::Allowed("${distro_id}ESMApps:${distro_codename}-apps-security".into()),
                Origin::Allowed("${distro_id}ESM:${distro_codename}-infra-security".into()),
            ],
            format!("Ubuntu's security pocket for {release} (and ESM's, when enabled)"),
        )),
        other => Err(Failure::Probe(format!(
            "cannot tell the security origin of this system (ID={other:?} in /etc/os-release; harden knows debian and ubuntu): list `origins` in the unattended_upgrades section"
        ))),
    }
}

/// `20auto-upgrades` exactly as `dpkg-reconfigure unattended-upgrades` writes it, so a system
/// already set up that way needs no change.
fn render_auto_upgrades(settings: &[Setting]) -> String {
    let mut out = String::new();
    for s in settings {
        render(&mut out, s);
    }
    out
}

fn render_drop_in(settings: &[Setting]) -> String {
    let mut out = format!(
        "{MARKER} from the playbook's `unattended_upgrades` section; changes here are overwritten.\n\
         // APT reads this file after 50unattended-upgrades. Lists add up across files, so the\n\
         // #clear lines empty the origin lists first: the origins below are the only ones.\n"
    );
    for s in settings
        .iter()
        .filter(|s| matches!(s.value, Value::List(_)))
    {
        out.push_str(&format!("#clear {};\n", s.key));
    }
    for s in settings {
        render(&mut out, s);
    }
    out
}

fn render(out: &mut String, setting: &Setting) {
    match &setting.value {
        Value::Scalar { text, .. } => out.push_str(&format!("{} \"{text}\";\n", setting.key)),
        Value::List(items) if items.is_empty() => {}
        Value::List(items) => {
            out.push_str(&format!("{} {{\n", setting.key));
            for item in items {
                out.push_str(&format!("\t\"{item}\";\n"));
            }
            out.push_str("};\n");
        }
    }
}

/// APT's whole configuration, merged as APT merges it.
fn dump_command() -> Command {
    Command::new(["apt-config", "dump"]).timeout(60)
}

/// A checker that fails unless `apt-config dump` shows every value exactly as written.
fn check_command(settings: &[&Setting]) -> Command {
    let script = "apt-config dump >/dev/null || exit 1\n\
                  fail=0\n\
                  while [ $# -ge 2 ]; do\n\
                  \x20 got=$(apt-config dump \"$1\" | sed 's/^[^ ]* //')\n\
                  \x20 if [ \"$got\" != \"$2\" ]; then\n\
                  \x20   printf 'APT reads %s as [%s], harden wrote [%s]\\n' \"$1\" \"$got\" \"$2\" >&2; fail=1\n\
                  \x20 fi\n\
                  \x20 shift 2\n\
                  done\n\
                  exit $fail";
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "harden-apt-check".to_owned(),
    ];
    for s in settings {
        argv.push(s.key.to_owned());
        argv.push(s.value.dumped());
    }
    Command::new(argv).timeout(60)
}

fn details(settings: &[Setting], live: &Live) -> Vec<Detail> {
    settings
        .iter()
        .filter_map(|s| {
            let current = s.value.current(&live.dump, s.key);
            if current.as_ref().is_some_and(|c| s.value.same(c)) {
                return None;
            }
            Some(Detail {
                name: s.key.into(),
                current: current
                    .filter(|c| !matches!(c, Value::List(l) if l.is_empty()))
                    .map(|c| c.display()),
                source: aptconf::locate(&live.files, s.key).map(|(p, l)| format!("{p}:{l}")),
                desired: Some(s.value.display()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
