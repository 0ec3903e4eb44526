//! `fail2ban`: jails, their defaults, and filters for applications' own logs.
//!
//! harden owns two kinds of files and never edits the distribution's:
//! `/etc/fail2ban/jail.d/zz-harden.local` (every jail the playbook names, and `[DEFAULT]`) and
//! `/etc/fail2ban/filter.d/<name>.local` (one per playbook filter).
//!
//! The jail file's name is the main design decision. fail2ban reads `jail.conf`, then
//! `jail.d/*.conf`, then `jail.local`, then `jail.d/*.local`, each group sorted, and a later
//! definition wins; but a key in a jail's own section beats `[DEFAULT]` whatever the order
//! (Debian's `jail.conf` sets `backend` and `port` in `[sshd]`). So the file is a `.local` in
//! `jail.d` named to sort after the usual names (it beats `defaults-debian.conf`, `jail.local`
//! and `jail.d/sshd.local`), and each managed jail's section carries the full set of its
//! options, the playbook's defaults included. What can still override it (a later-sorting
//! file) is found by the merge-order model ([`ini`]) and reported.
//!
//! Effective values come from harden's own reading of the configuration ([`reader`]: fail2ban's
//! merge, include and interpolation rules, without starting Python), or from
//! `fail2ban-client -d` ([`dump`]) when the playbook needs what only fail2ban evaluates (its
//! filters) or the configuration holds something the reader does not follow;
//! `HARDEN_FAIL2BAN_READER=fail2ban` always asks fail2ban, `=compare` reads both ways and stops
//! on any difference. Whether the server runs is asked over its socket ([`server`]). The plan
//! shows the effective values against the desired ones, and,
//! when harden's files are already right, warns about any the daemon would still run
//! differently. A filter file is a `.local`: alone it defines a new filter, beside a
//! distribution `.conf` it overrides only the keys it sets, and it never replaces a file
//! the package owns.

mod compile;
pub(crate) mod configparser;
mod dump;
mod duration;
pub(crate) mod ini;
mod reader;
mod server;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use harden_host::Host;
use harden_plan::{
    Attrs, Change, Command, Detail, Enablement, Step, UnitAction, UnitState, UnitStep, Warning,
};
use serde::Deserialize;

pub use duration::{BanTime, Duration};
pub use values::{
    Addresses, Backend, Count, Factor, FilterRef, Lines, Multipliers, Name, OptionValue, Paths,
    Port, Ports, Protocol, Regexes, Text, UseDns, Word,
};

use crate::diagnostic::Invalid;
use crate::located::{At, Located};
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps::apt_install;

/// harden's jail file.
pub const JAIL_FILE: &str = "/etc/fail2ban/jail.d/zz-harden.local";
const JAIL_FILE_NAME: &str = "zz-harden.local";
const FILTER_DIR: &str = "/etc/fail2ban/filter.d";
const MARKER: &str = "# Managed by harden";
const AUTH_LOG: &str = "/var/log/auth.log";
/// A file of Debian's and Ubuntu's python3-systemd.
const PYTHON_SYSTEMD: &str = "/usr/lib/python3/dist-packages/systemd/journal.py";

/// harden's file for filter `name`.
pub fn filter_path(name: &str) -> String {
    format!("{FILTER_DIR}/{name}.local")
}

macro_rules! jail_options {
    ($($(#[$doc:meta])* $field:ident = $key:literal: $ty:ty,)*) => {
        /// The options of a jail, or of `[DEFAULT]`: fail2ban's jail options, each typed.
        /// An option not listed here is an error at its playbook line.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(deny_unknown_fields)]
        pub struct JailOptions {
            $(
                $(#[$doc])*
                #[serde(rename = $key)]
                pub $field: Option<Located<$ty>>,
            )*
        }

        impl JailOptions {
            /// Every option fail2ban knows under this section, by its fail2ban name.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Later values win, option by option.
            fn merge(&mut self, later: JailOptions) {
                $(
                    if later.$field.is_some() {
                        self.$field = later.$field;
                    }
                )*
            }

            /// The options set, in the order above.
            fn settings(&self) -> Vec<Setting> {
                let mut settings = Vec::new();
                $(
                    if let Some(v) = &self.$field {
                        settings.push(Setting { key: $key, value: Box::new(v.value.clone()), at: Some(v.at), note: None });
                    }
                )*
                settings
            }
        }
    };
}

jail_options! {
    /// Whether the jail runs (a jail the playbook names runs unless this says `false`).
    enabled = "enabled": bool,
    /// Ports to block for a banned address.
    port = "port": Ports,
    /// Filter in filter.d/, with optional arguments (`sshd[mode=aggressive]`).
    filter = "filter": FilterRef,
    /// Log files to watch.
    logpath = "logpath": Paths,
    /// How logs are read.
    backend = "backend": Backend,
    /// Journal match for the systemd backend.
    journalmatch = "journalmatch": Text,
    /// Actions, replacing the default `%(action_)s`.
    action = "action": Lines,
    /// The ban action used by the default actions.
    banaction = "banaction": Word,
    /// The ban action used by jails that block every port.
    banaction_allports = "banaction_allports": Word,
    /// How long a ban lasts (-1: permanent).
    bantime = "bantime": BanTime,
    /// Window in which failures are counted.
    findtime = "findtime": Duration,
    /// Failures within `findtime` that cause a ban.
    maxretry = "maxretry": Count,
    /// Matches kept per ticket.
    maxmatches = "maxmatches": Count,
    /// Lines a multi-line failure may span.
    maxlines = "maxlines": Count,
    /// Addresses, networks and host names never banned.
    ignoreip = "ignoreip": Addresses,
    /// Never ban the host's own addresses.
    ignoreself = "ignoreself": bool,
    /// Command deciding whether to ignore an address.
    ignorecommand = "ignorecommand": Text,
    /// Host-name resolution in logs.
    usedns = "usedns": UseDns,
    /// Encoding of the log files.
    logencoding = "logencoding": Word,
    /// Protocol of the blocked ports.
    protocol = "protocol": Protocol,
    /// Firewall chain of the ban action.
    chain = "chain": Word,
    /// Filter mode (`normal`, `ddos`, `extra`, `aggressive`).
    mode = "mode": Word,
    /// Recipient of mail actions.
    destemail = "destemail": Text,
    /// Sender of mail actions.
    sender = "sender": Text,
    /// Mail transfer agent of mail actions.
    mta = "mta": Word,
    /// Longer bans for repeat offenders.
    bantime_increment = "bantime.increment": bool,
    /// Factor of the increment formula.
    bantime_factor = "bantime.factor": Factor,
    /// The increment formula.
    bantime_formula = "bantime.formula": Text,
    /// Multipliers instead of the formula.
    bantime_multipliers = "bantime.multipliers": Multipliers,
    /// Longest ban the increment reaches.
    bantime_maxtime = "bantime.maxtime": Duration,
    /// Random time added to each ban.
    bantime_rndtime = "bantime.rndtime": Duration,
    /// Count a host's failures across all jails.
    bantime_overalljails = "bantime.overalljails": bool,
}

/// Options that only make sense in a jail, not in `[DEFAULT]`.
const JAIL_ONLY: &[&str] = &["enabled", "filter", "logpath", "journalmatch"];

/// Options written only into `[DEFAULT]` unless a jail sets them itself: jails such as
/// `recidive` choose `%(banaction_allports)s` in their own section.
const DEFAULT_ONLY: &[&str] = &["banaction", "banaction_allports"];

/// The `fail2ban:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Fail2ban {
    /// `[DEFAULT]` options, also written into every jail the playbook names.
    #[serde(default)]
    pub defaults: JailOptions,
    /// Jails by name: distribution jails (`sshd`) or new ones.
    #[serde(default)]
    pub jails: BTreeMap<Name, JailOptions>,
    /// Filters for applications' own logs, by name.
    #[serde(default)]
    pub filters: BTreeMap<Name, Filter>,
}

/// A filter: what a failure looks like in a log.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Expressions of a failure; each names the address with `<HOST>`.
    pub failregex: Option<Located<Regexes>>,
    /// Expressions of lines to ignore.
    pub ignoreregex: Option<Located<Regexes>>,
    /// Where the time stamp is and how it is written.
    pub datepattern: Option<Located<Regexes>>,
}

/// One option as harden writes it.
pub struct Setting {
    key: &'static str,
    value: Box<dyn OptionValue>,
    /// Where the playbook sets it; `None` for values harden chose.
    at: Option<At>,
    /// Why harden chose the value, for values it chose.
    note: Option<String>,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {}", self.key, self.value.lines().join(" / "))
    }
}

impl Setting {
    fn chosen(key: &'static str, value: impl OptionValue + 'static, note: String) -> Self {
        Setting {
            key,
            value: Box::new(value),
            at: None,
            note: Some(note),
        }
    }

    fn text(&self) -> String {
        self.value.lines().join(" ")
    }
}

/// fail2ban's systemd unit.
const UNIT: &str = "fail2ban.service";

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// `fail2ban-client` is installed.
    pub installed: bool,
    /// The server answers a ping on its socket (never checked under --root).
    pub running: bool,
    /// The server's socket, when it exists although the server does not answer.
    pub stale_socket: Option<PathBuf>,
    /// The managed system runs systemd (live only).
    pub systemd: bool,
    /// This is the running system, not an image under --root.
    pub live: bool,
    /// The jail files, in fail2ban's merge order, harden's included.
    pub config: ini::Config,
    /// Current content of harden's jail file.
    pub jail_file: Option<String>,
    /// Current content of harden's file for each playbook filter.
    pub filter_files: BTreeMap<String, Option<String>>,
    /// Filters available in filter.d (names of `.conf` and `.local` files).
    pub filter_names: BTreeSet<String>,
    /// Distribution filters (`filter.d/<name>.conf`) among the playbook's filters.
    pub distribution_filters: BTreeSet<String>,
    /// The effective configuration, when `fail2ban-client -d` could tell.
    pub dump: Option<dump::Dump>,
    /// Why the dump is missing.
    pub dump_error: Option<String>,
    /// `/var/log/auth.log` exists.
    pub auth_log: bool,
    /// Ports sshd listens on (or will, per the playbook).
    pub sshd_ports: Vec<u16>,
    /// Log paths (or patterns) of managed jails that match no file.
    pub missing_logs: BTreeSet<String>,
    /// `nft` is installed.
    pub nft: bool,
    /// `iptables` is installed.
    pub iptables: bool,
    /// python3-systemd is installed (the systemd backend needs it).
    pub python_systemd: bool,
    /// `fail2ban.service` as systemctl sees it, when systemd runs.
    pub unit: Option<UnitState>,
    /// What fail2ban's own compiler says of the playbook filters' expressions.
    pub compiled: compile::Verdict,
}

impl Resource for Fail2ban {
    type Live = Live;
    const NAME: &'static str = "fail2ban";

    fn merge(&mut self, later: Self) {
        self.defaults.merge(later.defaults);
        for (name, options) in later.jails {
            match self.jails.get_mut(name.value.as_str()) {
                Some(mine) => mine.merge(options),
                None => {
                    self.jails.insert(name, options);
                }
            }
        }
        for (name, filter) in later.filters {
            self.filters.remove(name.value.as_str());
            self.filters.insert(name, filter);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        for setting in self.defaults.settings() {
            if JAIL_ONLY.contains(&setting.key) {
                let at = setting.at.unwrap_or_default();
                let help = if setting.key == "enabled" {
                    "`enabled` in [DEFAULT] would switch on every jail of jail.conf; list the jails to run under `jails:`"
                } else {
                    "set it in the jail that reads the log, under `jails:`"
                };
                errors.push(
                    Invalid::new(
                        at,
                        format!("`{}` belongs to a jail, not to `defaults`", setting.key),
                    )
                    .help(help),
                );
            }
        }
        for (name, jail) in &self.jails {
            let backend = jail
                .backend
                .as_ref()
                .or(self.defaults.backend.as_ref())
                .map(|b| b.value);
            if let (Some(Backend::Systemd), Some(logpath)) = (backend, &jail.logpath) {
                errors.push(
                    Invalid::new(logpath.at, format!("jail {name} reads the systemd journal (backend: systemd), which ignores `logpath`"))
                        .help("remove `logpath` and select the journal entries with `journalmatch`, or choose backend auto or polling"),
                );
            }
            if jail.bantime_increment.is_none()
                && self.defaults.bantime_increment.is_none()
                && (jail.bantime_maxtime.is_some() || jail.bantime_factor.is_some())
            {
                // Harmless but probably not what was meant; fail2ban ignores them.
            }
        }
        for (name, filter) in &self.filters {
            if filter.failregex.is_none()
                && filter.ignoreregex.is_none()
                && filter.datepattern.is_none()
            {
                errors.push(
                    Invalid::new(name.at, format!("filter {name} sets nothing"))
                        .help("give `failregex` (and optionally `ignoreregex`, `datepattern`)"),
                );
            }
            if let Some(failregex) = &filter.failregex {
                for regex in &failregex.value.0 {
                    if !names_the_host(regex) {
                        errors.push(
                            Invalid::new(place_of(regex, failregex), format!("failregex {:?} does not say where the address is", regex.value))
                                .help("mark the address with <HOST> (or <ADDR>, <IP4>, <IP6>, <F-ID>...</F-ID>)"),
                        );
                    }
                }
            }
            if let Some(datepattern) = &filter.datepattern {
                if datepattern.value.0.len() != 1 {
                    errors.push(Invalid::new(
                        datepattern.at,
                        "`datepattern` is one pattern, not a list",
                    ));
                }
            }
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let mut live = Live {
            installed: host.which("fail2ban-client").is_some(),
            systemd: host.has_systemd(),
            live: host.is_live(),
            auth_log: exists(host, AUTH_LOG)?,
            nft: host.which("nft").is_some(),
            iptables: host.which("iptables").is_some(),
            python_systemd: exists(host, PYTHON_SYSTEMD)?,
            ..Live::default()
        };
        read_jail_files(host, &mut live)?;
        self.read_filters(host, &mut live)?;
        self.read_logs(cx, &mut live)?;
        if live.installed {
            self.ask_fail2ban(cx, &mut live).await?;
        }
        if self.sshd_jail_follows_sshd() {
            live.sshd_ports = cx.live().await.sshd.final_ports().to_vec();
        }
        Ok(live)
    }

    fn early(&self, host: &Host) -> Vec<Command> {
        // harden's own reading runs in the probe, beside `sshd -T`; fail2ban's dump starts
        // now only when it is sure to be needed (a configuration harden's reader does not
        // follow asks for it later, at the probe).
        let needed = Reading::chosen() != Reading::Harden || self.needs_dump().is_some();
        if needed && host.which("fail2ban-client").is_some() {
            vec![dump_command()]
        } else {
            Vec::new()
        }
    }

    fn diff(&self, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let desired = self.desired(live)?;
        self.check(&desired, live)?;
        diff.changes.extend(package_change(&desired, live));
        let mut written = Vec::new();
        written.extend(jail_change(&desired, live, &mut diff));
        written.extend(self.filter_changes(&desired, live, &mut diff));
        let files_change = !written.is_empty();
        let will_run = live.installed || live.live || !diff.changes.is_empty();
        let start = !live.running && live.live && live.systemd && will_run;
        if files_change || start {
            diff.changes.push(activation(live, &written, start));
        }
        let warn = |message: String| Warning {
            resource: Self::NAME.into(),
            message,
        };
        diff.warnings.extend(
            live_warnings(&desired, live, cx, start)
                .into_iter()
                .map(warn),
        );
        diff.warnings.extend(
            self.override_warnings(&desired, live, files_change)
                .into_iter()
                .map(warn),
        );
        Ok(diff)
    }
}

impl Fail2ban {
    /// A change per filter file whose text differs; returns the paths written.
    fn filter_changes(&self, desired: &Desired, live: &Live, diff: &mut Diff) -> Vec<String> {
        let mut written = Vec::new();
        for (name, filter) in &self.filters {
            let path = filter_path(&name.value);
            let distribution = live.distribution_filters.contains(&name.value);
            let text = render_filter_file(&name.value, filter, distribution);
            let current = live.filter_files.get(&name.value).cloned().flatten();
            if current.as_deref() == Some(text.as_str()) {
                diff.unchanged += 1;
                continue;
            }
            let reason = match (&current, distribution) {
                (None, false) => format!("filter {name} is missing"),
                (None, true) => {
                    format!("filter {name} overrides the distribution's {FILTER_DIR}/{name}.conf")
                }
                (Some(_), _) => format!("filter {name} differs"),
            };
            let details = filter_details(&name.value, filter, desired, live);
            diff.changes
                .push(config_file(&path, reason, details, text, current));
            written.push(path);
        }
        written
    }
}

/// fail2ban itself, and python3-systemd when a jail reads the journal: that backend needs
/// it (a Recommends of fail2ban, so not always there); `fail2ban-client -t` does not notice
/// its absence, the server does.
fn package_change(desired: &Desired, live: &Live) -> Option<Change> {
    let journal = desired.jails.iter().filter(|j| j.enabled).any(|j| {
        j.settings
            .iter()
            .any(|s| s.key == "backend" && s.value.matches("systemd"))
    });
    let mut packages = Vec::new();
    if !live.installed {
        packages.push("fail2ban");
    }
    if journal && !live.python_systemd {
        packages.push("python3-systemd");
    }
    if packages.is_empty() {
        return None;
    }
    let reason = match (live.installed, packages.len()) {
        (false, 1) => "fail2ban is not installed".to_owned(),
        (false, _) => {
            "fail2ban is not installed; python3-systemd reads the journal for backend = systemd"
                .to_owned()
        }
        (true, _) => {
            "python3-systemd is missing, which backend = systemd needs to read the journal"
                .to_owned()
        }
    };
    Some(Change::new(
        Fail2ban::NAME,
        format!("package {}", packages.join(", ")),
        reason,
        vec![Step::Run(apt_install(&packages))],
    ))
}

/// harden's jail file, when its text differs; returns its path when written.
fn jail_change(desired: &Desired, live: &Live, diff: &mut Diff) -> Option<String> {
    let text = render_jail_file(desired);
    if live.jail_file.as_deref() == Some(text.as_str()) {
        diff.unchanged += 1;
        return None;
    }
    let notes: Vec<&str> = desired
        .jails
        .iter()
        .flat_map(|j| j.settings.iter())
        .filter_map(|s| s.note.as_deref())
        .collect();
    let mut reason = if live.jail_file.is_none() {
        "harden's jail file is missing".to_owned()
    } else {
        "jail settings differ".to_owned()
    };
    if !notes.is_empty() {
        reason = format!("{reason} ({})", notes.join("; "));
    }
    let details = jail_details(desired, live);
    let change = config_file(JAIL_FILE, reason, details, text, live.jail_file.clone());
    diff.changes.push(change);
    Some(JAIL_FILE.into())
}

/// A configuration file written whole, 0644 root.
fn config_file(
    path: &str,
    reason: String,
    details: Vec<Detail>,
    content: String,
    before: Option<String>,
) -> Change {
    Change {
        resource: Fail2ban::NAME.into(),
        target: path.into(),
        reason,
        details,
        steps: vec![Step::WriteFile {
            path: PathBuf::from(path),
            content,
            attrs: Attrs::root(0o644),
            before,
        }],
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    }
}

/// Checks the new files (`fail2ban-client -t`, and fail2ban-regex for each filter written),
/// then reloads a running server or starts a stopped one.
fn activation(live: &Live, written_filters: &[String], start: bool) -> Change {
    let reload = Command::new(["fail2ban-client", "reload"]).timeout(120);
    let check = Command::new(["fail2ban-client", "-t"]).timeout(60);
    let mut steps = vec![Step::Validate(check.clone())];
    for path in written_filters.iter().filter(|p| p.as_str() != JAIL_FILE) {
        // `-t` does not compile filters' expressions; fail2ban-regex does.
        steps.push(Step::Validate(
            Command::new(["fail2ban-regex", "/dev/null", path]).timeout(60),
        ));
    }
    let mut on_rollback = Vec::new();
    if live.running {
        steps.push(Step::Reload {
            service: "fail2ban".into(),
            command: reload.clone(),
        });
        on_rollback.push(reload);
    } else if start {
        // Through systemctl, whose state the snapshot saves: a unit that is enabled but
        // failed at boot (Debian 12's stock sshd jail wants auth.log) only needs the
        // restart; enablement symlinks are systemd's, never harden's files.
        let before = live.unit.clone().unwrap_or_else(|| UnitState {
            enablement: "unknown".into(),
            active: "inactive".into(),
        });
        steps.push(Step::Unit(UnitStep {
            unit: UNIT.into(),
            enablement: (before.enablement != "enabled").then_some(Enablement::Enabled),
            action: Some(UnitAction::Restart),
            before,
            timeout_secs: 120,
        }));
        steps.push(Step::Validate(answering()));
    }
    let reason = if live.running {
        "check and load the new configuration"
    } else if start {
        "check the configuration and start fail2ban-server, which is not running"
    } else {
        "check the new configuration"
    };
    Change {
        resource: Fail2ban::NAME.into(),
        target: "fail2ban".into(),
        reason: reason.into(),
        details: Vec::new(),
        steps,
        on_rollback,
        rollback_checks: vec![check],
    }
}

/// Waits until fail2ban-server answers on its socket. systemd reports the unit started as
/// soon as the server process runs, before it has read its jails and opened the socket: the
/// verifying plan after the apply would find it "not running" and roll the apply back.
fn answering() -> Command {
    let script = "i=0; while [ $i -lt 300 ]; do if fail2ban-client ping >/dev/null 2>&1; then exit 0; fi; i=$((i+1)); sleep 0.1; done; echo 'fail2ban-server started but does not answer on its socket after 30 seconds' >&2; exit 1";
    Command::new(["sh", "-c", script]).timeout(45)
}

/// What the operator should know about the server and the settings around it.
fn live_warnings(desired: &Desired, live: &Live, cx: &DiffContext<'_>, start: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if live.live && !live.running && !start && live.installed {
        warnings.push(if let Some(socket) = &live.stale_socket {
            format!("fail2ban-server does not answer although {} exists; the configuration takes effect when it is restarted", socket.display())
        } else {
            "fail2ban-server is not running: no jail is active until it starts (`fail2ban-client start`)".into()
        });
    }
    if let compile::Verdict::Failed(why) = &live.compiled {
        warnings.push(format!("fail2ban's compiler could not check the filters' expressions ({why}); the apply still checks them with fail2ban-regex before anything is reloaded"));
    }
    if let Some(error) = &live.dump_error {
        warnings.push(format!(
            "`fail2ban-client -d` failed, so the plan cannot show what fail2ban runs with: {error}"
        ));
    }
    if cx.live.firewall.managed {
        let settings = desired
            .defaults
            .iter()
            .chain(desired.jails.iter().flat_map(|j| j.settings.iter()));
        for setting in settings {
            if matches!(setting.key, "banaction" | "banaction_allports" | "action")
                && setting.text().contains("ufw")
            {
                warnings.push(format!(
                    "`{} = {}` makes fail2ban write ufw rules, which the ufw resource manages too; prefer nftables-multiport",
                    setting.key,
                    setting.text()
                ));
            }
        }
    }
    warnings
}

fn failed(what: &str, e: std::io::Error) -> Failure {
    Failure::Probe(format!("{what}: {e}"))
}

fn exists(host: &Host, path: &str) -> Result<bool, Failure> {
    Ok(host
        .stat(Path::new(path))
        .map_err(|e| failed(path, e))?
        .is_some())
}

/// The jail files fail2ban reads, in its merge order (harden's own included, read or not).
fn read_jail_files(host: &Host, live: &mut Live) -> Result<(), Failure> {
    let mut jail_d: Vec<String> = host
        .read_dir(Path::new("/etc/fail2ban/jail.d"))
        .map_err(|e| failed("/etc/fail2ban/jail.d", e))?
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    if !jail_d.iter().any(|n| n == JAIL_FILE_NAME) {
        jail_d.push(JAIL_FILE_NAME.to_owned());
    }
    let jail_local = exists(host, "/etc/fail2ban/jail.local")?;
    for path in ini::merge_order(&jail_d, jail_local) {
        let text = host
            .read_to_string(Path::new(&path))
            .map_err(|e| failed(&path, e))?;
        if path == JAIL_FILE {
            live.jail_file.clone_from(&text);
        }
        live.config
            .files
            .push(ini::parse(&path, text.as_deref().unwrap_or("")));
    }
    Ok(())
}

impl Fail2ban {
    /// The filters filter.d holds, and the current text of the playbook's filters.
    fn read_filters(&self, host: &Host, live: &mut Live) -> Result<(), Failure> {
        for name in host
            .read_dir(Path::new(FILTER_DIR))
            .map_err(|e| failed(FILTER_DIR, e))?
        {
            let name = name.to_string_lossy();
            if let Some(stem) = name
                .strip_suffix(".conf")
                .or_else(|| name.strip_suffix(".local"))
            {
                live.filter_names.insert(stem.to_owned());
            }
        }
        for name in self.filters.keys() {
            let path = filter_path(&name.value);
            let content = host
                .read_to_string(Path::new(&path))
                .map_err(|e| failed(&path, e))?;
            live.filter_files.insert(name.value.clone(), content);
            if exists(host, &format!("{FILTER_DIR}/{}.conf", name.value))? {
                live.distribution_filters.insert(name.value.clone());
            }
        }
        Ok(())
    }

    /// True when the playbook enables the sshd jail without a port: it takes sshd's ports.
    fn sshd_jail_follows_sshd(&self) -> bool {
        self.jails.iter().any(|(name, jail)| {
            name.value == "sshd"
                && jail.port.is_none()
                && jail.enabled.as_ref().is_none_or(|e| e.value)
        })
    }

    /// The enabled jails' logs that do not exist (a log the playbook's `files` section
    /// creates exists before fail2ban starts).
    fn read_logs(&self, cx: &Context<'_>, live: &mut Live) -> Result<(), Failure> {
        for jail in self.jails.values() {
            if jail.enabled.as_ref().is_some_and(|e| !e.value) {
                continue;
            }
            for pattern in jail.logpath.iter().flat_map(|l| l.value.0.iter()) {
                let created = cx.facts.created_paths.contains(Path::new(pattern));
                if !created && !log_exists(cx.host, pattern).map_err(|e| failed(pattern, e))? {
                    live.missing_logs.insert(pattern.clone());
                }
            }
        }
        Ok(())
    }

    /// The installed fail2ban's view: its compiler on the filters, its configuration (read
    /// by harden, or dumped by fail2ban), its unit, and whether the server answers.
    async fn ask_fail2ban(&self, cx: &Context<'_>, live: &mut Live) -> Result<(), Failure> {
        // Each starts a Python interpreter or systemctl; they all run side by side (the dump,
        // when it is needed, may have started with the plan).
        let host = cx.host;
        let reading = Reading::chosen();
        let own = match reading {
            Reading::Fail2ban => None,
            _ => Some(self.own_reading(host)),
        };
        let ask_dump = reading != Reading::Harden || !matches!(own, Some(Ok(_)));
        let dump = dump_command();
        let (systemd, is_live) = (live.systemd, live.live);
        let (compiled, dumped, unit, running) = tokio::join!(
            self.compile(host),
            async {
                if ask_dump {
                    Some(cx.run(&dump).await)
                } else {
                    None
                }
            },
            async {
                if systemd {
                    host.unit_state(UNIT).await
                } else {
                    None
                }
            },
            async {
                if is_live {
                    Some(server_state(host).await)
                } else {
                    None
                }
            },
        );
        live.compiled = compiled;
        live.unit = unit;
        match dumped {
            None => {}
            Some(Ok(out)) if out.success() => match dump::parse(&out.stdout, &out.stderr) {
                Ok(d) => live.dump = Some(d),
                Err(e) => live.dump_error = Some(e),
            },
            Some(Ok(out)) => live.dump_error = Some(last_error(&out.stderr, &out.stdout)),
            Some(Err(e)) => live.dump_error = Some(e.to_string()),
        }
        match (reading, own) {
            (Reading::Harden, Some(Ok(own))) => live.dump = Some(own),
            (Reading::Compare, Some(own)) => compare(own, live)?,
            _ => {}
        }
        if let Some(running) = running {
            (live.running, live.stale_socket) = running?;
        }
        Ok(())
    }

    /// harden's own reading of fail2ban's configuration, when it answers everything this
    /// playbook compares.
    fn own_reading(&self, host: &Host) -> Result<dump::Dump, configparser::Unsupported> {
        if let Some(why) = self.needs_dump() {
            return Err(configparser::Unsupported(why.to_owned()));
        }
        let dump = reader::read(host, ini::ETC)?;
        for name in self.jails.keys() {
            if let Some(key) = dump
                .jails
                .get(&name.value)
                .and_then(|j| j.unresolved.first())
            {
                return configparser::unsupported!(
                    "jail {}: {key} comes from its action's own file",
                    name.value
                );
            }
        }
        Ok(dump)
    }

    /// Why this playbook needs fail2ban's own dump whatever the files hold.
    fn needs_dump(&self) -> Option<&'static str> {
        let sets = |o: &JailOptions| o.usedns.is_some() || o.maxlines.is_some();
        if !self.filters.is_empty() {
            Some("the playbook's filters are compared with the expressions fail2ban runs")
        } else if sets(&self.defaults) || self.jails.values().any(sets) {
            Some("usedns and maxlines run through fail2ban's filters")
        } else {
            None
        }
    }
}

/// How fail2ban's effective configuration is read (`HARDEN_FAIL2BAN_READER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// harden's reader, fail2ban's dump where it cannot answer (the default).
    Harden,
    /// `fail2ban-client -d` only (`fail2ban`).
    Fail2ban,
    /// Both, stopping the plan on any difference (`compare`).
    Compare,
}

impl Reading {
    fn chosen() -> Self {
        match std::env::var("HARDEN_FAIL2BAN_READER").as_deref() {
            Ok("fail2ban") => Reading::Fail2ban,
            Ok("compare") => Reading::Compare,
            _ => Reading::Harden,
        }
    }
}

/// `HARDEN_FAIL2BAN_READER=compare`: harden's reading must agree with fail2ban's dump on
/// everything it covers, and must cover the configuration.
fn compare(own: Result<dump::Dump, configparser::Unsupported>, live: &Live) -> Result<(), Failure> {
    let theirs = match (&live.dump, &live.dump_error) {
        (Some(d), _) => d,
        (None, Some(e)) => return Err(Failure::Probe(format!("fail2ban-client -d: {e}"))),
        (None, None) => return Err(Failure::Probe("fail2ban-client -d gave nothing".into())),
    };
    let own = own
        .map_err(|e| Failure::Probe(format!("harden cannot read fail2ban's configuration: {e}")))?;
    let differences = reader::differences(&own, theirs);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Failure::Probe(format!(
            "harden's reading of fail2ban's configuration differs from fail2ban-client -d: {}",
            differences.join("; ")
        )))
    }
}

/// fail2ban's dump of the configuration it would run with (no server needed).
fn dump_command() -> Command {
    Command::new(["fail2ban-client", "-d"]).timeout(60)
}

/// Whether the server answers, and its socket when that exists all the same.
async fn server_state(host: &Host) -> Result<(bool, Option<PathBuf>), Failure> {
    let socket = server::socket(host)?;
    let running = server::ping(host, &socket).await?;
    let stale = !running && host.stat(&socket).ok().flatten().is_some();
    Ok((running, stale.then_some(socket)))
}

/// True when a failregex says where the address is.
fn names_the_host(regex: &str) -> bool {
    [
        "<HOST>",
        "<ADDR>",
        "<IP4>",
        "<IP6>",
        "<DNS>",
        "<CIDR>",
        "<SUBNET>",
        "<F-ID>",
        "<F-ID/>",
        "(?P<host>",
        "(?P<ip4>",
        "(?P<ip6>",
        "(?P<dns>",
        "(?P<fid>",
        "(?P<cidr>",
    ]
    .iter()
    .any(|tag| regex.contains(tag))
}

/// Where one expression of a filter key was written: its own list item, or the key's value.
fn place_of(regex: &Located<String>, list: &Located<Regexes>) -> At {
    if regex.at == At::default() {
        list.at
    } else {
        regex.at
    }
}

impl Filter {
    /// The key's expressions, by name ([`compile::KEYS`]).
    fn key(&self, key: &str) -> Option<&Located<Regexes>> {
        match key {
            "failregex" => self.failregex.as_ref(),
            "ignoreregex" => self.ignoreregex.as_ref(),
            "datepattern" => self.datepattern.as_ref(),
            _ => None,
        }
    }
}

impl Fail2ban {
    /// Every expression of the playbook's filters, for fail2ban's compiler.
    fn expressions(&self) -> Vec<compile::Expression> {
        let mut all = Vec::new();
        for (name, filter) in &self.filters {
            for key in compile::KEYS {
                for (index, regex) in filter
                    .key(key)
                    .iter()
                    .flat_map(|l| l.value.0.iter())
                    .enumerate()
                {
                    all.push(compile::Expression {
                        filter: name.value.clone(),
                        key,
                        index,
                        text: regex.value.clone(),
                    });
                }
            }
        }
        all
    }

    /// Compiles every filter expression with the installed fail2ban, in one read-only run.
    async fn compile(&self, host: &Host) -> compile::Verdict {
        let expressions = self.expressions();
        if expressions.is_empty() {
            return compile::Verdict::Unchecked;
        }
        let script = ["fail2ban-regex", "fail2ban-client"]
            .iter()
            .find_map(|name| host.which(name))
            .and_then(|path| host.read_to_string(&path).ok().flatten());
        let python = compile::interpreter(script.as_deref());
        match host.run(&compile::command(&python, &expressions)).await {
            Ok(out) if out.success() => match compile::verdict(&expressions, &out.stdout) {
                Ok(refused) => compile::Verdict::Checked(refused),
                Err(why) => compile::Verdict::Failed(why),
            },
            Ok(out) => compile::Verdict::Failed(last_error(&out.stderr, &out.stdout)),
            Err(e) => compile::Verdict::Failed(e.to_string()),
        }
    }

    /// The expressions fail2ban refused, each at its playbook line, with fail2ban's reason.
    fn refused_expressions(&self, live: &Live) -> Vec<Invalid> {
        let compile::Verdict::Checked(refused) = &live.compiled else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for r in refused {
            let e = &r.expression;
            let Some(list) = self
                .filters
                .get(e.filter.as_str())
                .and_then(|f| f.key(e.key))
            else {
                continue;
            };
            let at = list
                .value
                .0
                .get(e.index)
                .map_or(list.at, |regex| place_of(regex, list));
            let invalid = Invalid::new(
                at,
                format!(
                    "fail2ban refuses {} {:?} of filter {}: {}",
                    e.key, e.text, e.filter, r.message
                ),
            );
            errors.push(if r.message.contains(" at position ") {
                invalid.help("the position counts in the expression after fail2ban replaces tags such as <HOST> with its own patterns")
            } else {
                invalid
            });
        }
        errors
    }
}

/// True when `pattern` (a path, or a glob in its last component) names an existing file.
fn log_exists(host: &Host, pattern: &str) -> std::io::Result<bool> {
    let path = Path::new(pattern);
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(false);
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    if parent.to_string_lossy().contains(['*', '?', '[', '%']) {
        return Ok(true); // fail2ban's own check (`-t`) covers what we cannot expand
    }
    if !name.contains(['*', '?', '[']) {
        return Ok(host.stat(path)?.is_some());
    }
    Ok(host
        .read_dir(parent)?
        .iter()
        .any(|entry| glob_match(&name, &entry.to_string_lossy())))
}

/// Shell-style matching of one path component (`*`, `?`, `[...]`) as fail2ban's glob
/// matches it: a `*` or `?` does not match a leading dot. A pattern the glob crate refuses
/// counts as matching: fail2ban's own check (`-t`) covers it.
fn glob_match(pattern: &str, name: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    glob::Pattern::new(pattern).map_or(true, |p| p.matches_with(name, options))
}

fn last_error(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    text.lines()
        .rev()
        .find(|l| l.contains("ERROR"))
        .or_else(|| text.lines().last())
        .unwrap_or("no output")
        .trim()
        .to_owned()
}

/// What harden writes: `[DEFAULT]` and each jail's settings.
#[derive(Debug, Default)]
struct Desired {
    defaults: Vec<Setting>,
    jails: Vec<DesiredJail>,
}

#[derive(Debug)]
struct DesiredJail {
    name: String,
    at: At,
    enabled: bool,
    /// The filter the jail uses: explicit, else the jail's name.
    filter: Option<(String, Option<At>)>,
    settings: Vec<Setting>,
}

impl Fail2ban {
    fn desired(&self, live: &Live) -> Result<Desired, Failure> {
        let mut defaults = self.defaults.settings();
        if self.defaults.banaction.is_none() {
            let (multiport, allports, why) = if live.nft || !live.iptables {
                (
                    "nftables-multiport",
                    "nftables-allports",
                    "bans go to nftables' own table, not to ufw's rules",
                )
            } else {
                (
                    "iptables-multiport",
                    "iptables-allports",
                    "nft is not installed; bans go to fail2ban's own iptables chains, not to ufw's",
                )
            };
            defaults.push(Setting::chosen(
                "banaction",
                Word(multiport.into()),
                why.into(),
            ));
            if self.defaults.banaction_allports.is_none() {
                defaults.push(Setting::chosen(
                    "banaction_allports",
                    Word(allports.into()),
                    why.into(),
                ));
            }
        }
        let mut jails = Vec::new();
        for (name, jail) in &self.jails {
            let enabled = jail.enabled.as_ref().is_none_or(|e| e.value);
            let mut settings = vec![Setting {
                key: "enabled",
                value: Box::new(enabled),
                at: jail.enabled.as_ref().map(|e| e.at),
                note: None,
            }];
            let mut own = jail.settings();
            if enabled {
                let mut inherited = self.defaults.settings();
                for key in JailOptions::KEYS.iter().filter(|k| **k != "enabled") {
                    if let Some(i) = own.iter().position(|s| s.key == *key) {
                        settings.push(own.remove(i));
                    } else if let Some(i) = inherited
                        .iter()
                        .position(|s| s.key == *key && !DEFAULT_ONLY.contains(key))
                    {
                        settings.push(inherited.remove(i));
                    } else if let Some(chosen) = chosen_for(name, jail, self, key, live) {
                        settings.push(chosen);
                    }
                }
            } else {
                settings.extend(own.into_iter().filter(|s| s.key != "enabled"));
            }
            let filter = match &jail.filter {
                Some(f) => Some((f.value.name.clone(), Some(f.at))),
                None => {
                    // The distribution's jail definition may name its filter.
                    let defined = live
                        .config
                        .definitions(&name.value, "filter")
                        .last()
                        .map(|d| d.value.to_owned());
                    match defined {
                        Some(v) if v.contains("%(") => None,
                        Some(v) => {
                            Some((v.split('[').next().unwrap_or(&v).trim().to_owned(), None))
                        }
                        None => Some((name.value.clone(), None)),
                    }
                }
            };
            jails.push(DesiredJail {
                name: name.value.clone(),
                at: name.at,
                enabled,
                filter,
                settings,
            });
        }
        Ok(Desired { defaults, jails })
    }

    /// Plan-time checks that need the live system.
    fn check(&self, desired: &Desired, live: &Live) -> Result<(), Failure> {
        let mut errors = self.refused_expressions(live);
        for jail in desired.jails.iter().filter(|j| j.enabled) {
            let Some(options) = self.jails.get(jail.name.as_str()) else {
                continue;
            };
            if let Some(logpath) = &options.logpath {
                let missing: Vec<&String> = logpath
                    .value
                    .0
                    .iter()
                    .filter(|p| live.missing_logs.contains(*p))
                    .collect();
                if !missing.is_empty() {
                    let list = missing
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    errors.push(
                        Invalid::new(logpath.at, format!("log file {list} of jail {} does not exist; fail2ban would refuse to start", jail.name))
                            .help("add it to `files` with `ensure: file` (and `parents: true`), or point `logpath` at the file the application writes"),
                    );
                }
            }
            if !live.installed {
                continue; // filter.d/ appears with the package
            }
            if let Some((filter, at)) = &jail.filter {
                let known = live.filter_names.contains(filter)
                    || self.filters.contains_key(filter.as_str());
                if !known {
                    errors.push(
                        Invalid::new(at.unwrap_or(jail.at), format!("jail {} uses filter {filter}, which is neither in `fail2ban.filters` nor in {FILTER_DIR}", jail.name))
                            .help(format!("define it under `filters: {{ {filter}: {{ failregex: [...] }} }}` or name an existing filter with `filter:`")),
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Failure::Invalid(errors))
        }
    }

    /// Settings the daemon would run differently from harden's file: from the dump when
    /// harden's files are already right, else from the merge-order model.
    /// Where fail2ban will not, or does not, run what the playbook says: before a write,
    /// the files read after harden's; with nothing to write, the running configuration.
    fn override_warnings(&self, desired: &Desired, live: &Live, files_change: bool) -> Vec<String> {
        let mut messages = jails_without_logs(desired, live);
        if files_change || !live.installed {
            for jail in &desired.jails {
                messages.extend(later_files(desired, jail, live));
            }
        } else if let Some(dump) = &live.dump {
            for jail in &desired.jails {
                messages.extend(self.running_differs(jail, dump, live));
            }
        }
        messages
    }

    /// What the running fail2ban does differently from `jail` of the playbook.
    fn running_differs(&self, jail: &DesiredJail, dump: &dump::Dump, live: &Live) -> Vec<String> {
        let mut messages = Vec::new();
        let Some(running) = dump.jails.get(&jail.name) else {
            if jail.enabled {
                messages.push(format!(
                    "fail2ban would not run jail {} although the playbook enables it{}",
                    jail.name,
                    source_note(live, &jail.name, "enabled")
                ));
            }
            return messages;
        };
        if !jail.enabled {
            messages.push(format!(
                "fail2ban runs jail {} although the playbook disables it{}",
                jail.name,
                source_note(live, &jail.name, "enabled")
            ));
            return messages;
        }
        for setting in &jail.settings {
            let Some(current) = running.option(setting.key) else {
                continue;
            };
            if !setting.value.matches(&current) {
                messages.push(format!(
                    "fail2ban runs jail {} with `{} = {current}`{}; the playbook says {}",
                    jail.name,
                    setting.key,
                    source_note(live, &jail.name, setting.key),
                    setting.text()
                ));
            }
        }
        let failregex = jail
            .filter
            .as_ref()
            .and_then(|(filter, _)| self.filters.get(filter.as_str()))
            .and_then(|f| f.failregex.as_ref());
        if let (Some(failregex), Some((filter, _))) = (failregex, &jail.filter) {
            if running.failregex != failregex.value.texts() {
                messages.push(format!(
                    "fail2ban runs jail {} with other failregex lines than filter {filter} of the playbook: {:?}",
                    jail.name, running.failregex
                ));
            }
        }
        messages
    }
}

/// Jails fail2ban would enable that have no log file and that the playbook leaves alone.
fn jails_without_logs(desired: &Desired, live: &Live) -> Vec<String> {
    let Some(dump) = &live.dump else {
        return Vec::new();
    };
    dump.without_logs
        .iter()
        .filter(|name| !desired.jails.iter().any(|j| &j.name == *name))
        .map(|name| format!(
            "jail {name}{} has no log file, so fail2ban refuses to start (and the apply fails its check); list it under fail2ban.jails (harden picks backend = systemd for sshd without /var/log/auth.log) or disable it there with `enabled: false`",
            source_note(live, name, "enabled")
        ))
        .collect()
}

/// Settings of `jail` that files fail2ban reads after harden's override: in the jail's
/// section, and for [DEFAULT]-only settings in the jail's own section elsewhere.
fn later_files(desired: &Desired, jail: &DesiredJail, live: &Live) -> Vec<String> {
    let mut messages = Vec::new();
    for setting in &jail.settings {
        for d in live
            .config
            .overriders(JAIL_FILE, &jail.name, setting.key, true)
        {
            messages.push(format!(
                "{} sets `{} = {}` for jail {} after harden's file; fail2ban will use it, not the playbook's {}",
                d.place(),
                setting.key,
                d.value,
                jail.name,
                setting.text()
            ));
        }
    }
    if !jail.enabled {
        return messages;
    }
    let defaults = desired
        .defaults
        .iter()
        .filter(|s| DEFAULT_ONLY.contains(&s.key))
        .filter(|s| !jail.settings.iter().any(|own| own.key == s.key));
    for setting in defaults {
        // `%(banaction_allports)s` (recidive) still follows harden's [DEFAULT].
        for d in live
            .config
            .overriders(JAIL_FILE, &jail.name, setting.key, false)
            .into_iter()
            .filter(|d| !d.value.contains("%("))
        {
            messages.push(format!(
                "{} sets `{} = {}` in jail {}'s own section, which beats harden's [DEFAULT] {}",
                d.place(),
                setting.key,
                d.value,
                jail.name,
                setting.text()
            ));
        }
    }
    messages
}

fn source_note(live: &Live, jail: &str, key: &str) -> String {
    live.config
        .source(jail, key)
        .map(|d| format!(" (set in {})", d.place()))
        .unwrap_or_default()
}

/// A value harden chooses for a managed jail when the playbook leaves it open.
fn chosen_for(
    name: &Name,
    jail: &JailOptions,
    all: &Fail2ban,
    key: &str,
    live: &Live,
) -> Option<Setting> {
    if name.value != "sshd" {
        return None;
    }
    match key {
        "port" if !live.sshd_ports.is_empty() => {
            let ports = Ports(live.sshd_ports.iter().map(|p| Port::Number(*p)).collect());
            let list = live.sshd_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
            Some(Setting::chosen("port", ports, format!("sshd: port {list} follows sshd's Port")))
        }
        "backend" if jail.logpath.is_none() && all.defaults.backend.is_none() && !live.auth_log => Some(Setting::chosen(
            "backend",
            Backend::Systemd,
            format!("sshd: backend = systemd because {AUTH_LOG} does not exist (sshd logs to the journal)"),
        )),
        _ => None,
    }
}

pub(crate) fn render_value(out: &mut String, key: &str, lines: &[String]) {
    let indent = " ".repeat(key.len() + 3);
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("{key} = {line}\n"));
        } else {
            out.push_str(&format!("{indent}{line}\n"));
        }
    }
}

fn render_jail_file(desired: &Desired) -> String {
    let mut out = format!(
        "{MARKER} from the playbook's `fail2ban` section; changes here are overwritten.\n\
         # fail2ban reads this file after jail.conf, jail.d/*.conf, jail.local and the jail.d/*.local\n\
         # files that sort before it; each jail below carries all of its options, so no earlier\n\
         # jail section overrides them.\n\n[DEFAULT]\n"
    );
    let mut last_note = None;
    for setting in &desired.defaults {
        if let Some(note) = &setting.note {
            if last_note != Some(note) {
                out.push_str(&format!("# {note}\n"));
            }
            last_note = Some(note);
        }
        render_value(&mut out, setting.key, &setting.value.lines());
    }
    for jail in &desired.jails {
        out.push_str(&format!("\n[{}]\n", jail.name));
        for setting in &jail.settings {
            if let Some(note) = &setting.note {
                out.push_str(&format!(
                    "# {}\n",
                    note.split_once(": ").map_or(note.as_str(), |(_, n)| n)
                ));
            }
            render_value(&mut out, setting.key, &setting.value.lines());
        }
    }
    out
}

fn render_filter_file(name: &str, filter: &Filter, overrides_distribution: bool) -> String {
    let mut out =
        format!("{MARKER} from the playbook's filter `{name}`; changes here are overwritten.\n");
    if overrides_distribution {
        out.push_str(&format!(
            "# It overrides these keys of the distribution's filter.d/{name}.conf.\n"
        ));
    }
    out.push_str("\n[Definition]\n");
    for (key, value) in [
        ("failregex", &filter.failregex),
        ("ignoreregex", &filter.ignoreregex),
        ("datepattern", &filter.datepattern),
    ] {
        if let Some(v) = value {
            render_value(&mut out, key, &v.value.escaped());
        }
    }
    out
}

fn jail_details(desired: &Desired, live: &Live) -> Vec<Detail> {
    let mut details = Vec::new();
    for setting in &desired.defaults {
        let source = live.config.definitions("DEFAULT", setting.key).last();
        let current = source.as_ref().map(|d| d.value.replace('\n', " "));
        if current.as_deref().is_some_and(|c| setting.value.matches(c)) {
            continue;
        }
        details.push(Detail {
            name: format!("[DEFAULT] {}", setting.key),
            current,
            source: source.map(|d| d.place()),
            desired: Some(setting.text()),
        });
    }
    for jail in &desired.jails {
        let running = live.dump.as_ref().map(|d| d.jails.get(&jail.name));
        for setting in &jail.settings {
            let source = live.config.source(&jail.name, setting.key);
            let current = match running {
                // The dump knows what runs: a jail missing from it is not running.
                Some(None) if setting.key == "enabled" => Some("false".to_owned()),
                Some(None) => {
                    // Not running: what it would inherit is noise; show only that it is off.
                    details.push(Detail {
                        name: format!("[{}] {}", jail.name, setting.key),
                        current: None,
                        source: None,
                        desired: Some(setting.text()),
                    });
                    continue;
                }
                Some(Some(j)) => j
                    .option(setting.key)
                    .or_else(|| source.as_ref().map(|d| d.value.replace('\n', " "))),
                None => source.as_ref().map(|d| d.value.replace('\n', " ")),
            };
            if current.as_deref().is_some_and(|c| setting.value.matches(c)) {
                continue;
            }
            details.push(Detail {
                name: format!("[{}] {}", jail.name, setting.key),
                current,
                source: source.map(|d| d.place()),
                desired: Some(setting.text()),
            });
        }
    }
    details
}

fn filter_details(name: &str, filter: &Filter, desired: &Desired, live: &Live) -> Vec<Detail> {
    // What a running jail that uses this filter matches now.
    let running = live.dump.as_ref().and_then(|d| {
        desired
            .jails
            .iter()
            .filter(|j| j.filter.as_ref().is_some_and(|(f, _)| f == name))
            .find_map(|j| d.jails.get(&j.name))
    });
    let mut details = Vec::new();
    for (key, value) in [
        ("failregex", &filter.failregex),
        ("ignoreregex", &filter.ignoreregex),
        ("datepattern", &filter.datepattern),
    ] {
        let Some(v) = value else { continue };
        let current = running.and_then(|j| match key {
            "failregex" => Some(j.failregex.join("\n")),
            "ignoreregex" => Some(j.ignoreregex.join("\n")),
            _ => j.settings.get(key).cloned(),
        });
        let desired = v.value.texts().join("\n");
        if current.as_deref() == Some(desired.as_str()) {
            continue;
        }
        details.push(Detail {
            name: format!("{name} {key}"),
            current: current.filter(|c| !c.is_empty()),
            source: None,
            desired: Some(desired),
        });
    }
    details
}

#[cfg(test)]
mod tests;
