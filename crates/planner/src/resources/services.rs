//! `services`: systemd units that must be enabled, disabled or masked, and optionally
//! running or stopped, through the plan's unit step (`systemctl`), whose state the snapshot
//! saves and a rollback restores.
//!
//! The state is systemd's own words (`systemctl is-enabled`, `is-active`). A unit that serves
//! SSH (sshd's service under any of its names, or a socket listening on sshd's port) is never
//! disabled, masked or stopped unless the operator overrides the `services-ssh` guard.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use harden_plan::{Change, Command, Detail, Enablement, Step, UnitAction, UnitState, UnitStep};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::guard::Guard;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Refusal, Resource};

/// Disabling, masking or stopping the unit that serves SSH.
pub(crate) const SSH_GUARD: &str = "services-ssh";

/// Names Debian's OpenSSH server goes by.
const SSH_UNITS: [&str; 4] = ["ssh.service", "sshd.service", "ssh.socket", "ssh@.service"];

/// The administrator's unit directory, where `systemctl mask` writes its link.
const LOCAL_UNITS: &str = "/etc/systemd/system";

/// Seconds each `systemctl` call of a unit step may take.
const UNIT_TIMEOUT: u64 = 120;

/// The `services:` section: units by name.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Services(pub BTreeMap<UnitName, Service>);

/// What one unit must be.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `enabled`, `disabled` or `masked`, as `systemctl is-enabled` says it.
    pub enablement: Option<Located<Wanted>>,
    /// Running (`true`: started) or stopped (`false`); left as it is when absent. Only on a
    /// system booted with systemd; skipped in a chroot and under `--root`.
    pub running: Option<Located<bool>>,
}

/// An enablement a playbook asks for, in `systemctl is-enabled`'s words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Wanted {
    /// `systemctl enable` (after `unmask` when masked).
    Enabled,
    /// `systemctl disable`.
    Disabled,
    /// `systemctl mask`: nothing can start it, not even another unit.
    Masked,
}

impl Wanted {
    /// The plan's enablement.
    fn enablement(self) -> Enablement {
        match self {
            Wanted::Enabled => Enablement::Enabled,
            Wanted::Disabled => Enablement::Disabled,
            Wanted::Masked => Enablement::Masked,
        }
    }
}

/// A unit name (`cups.service`, `apt-daily.timer`); a name without a type gets `.service`.
#[derive(Clone, Debug)]
pub struct UnitName {
    /// The full unit name.
    pub value: String,
    /// Where it was written.
    pub at: crate::located::At,
}

/// The unit types a playbook may name.
const UNIT_TYPES: [&str; 8] = [
    "service",
    "socket",
    "timer",
    "path",
    "mount",
    "automount",
    "target",
    "swap",
];

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl PartialEq for UnitName {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for UnitName {}

impl PartialOrd for UnitName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for UnitName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

/// The full unit name of `text`, or why it is not one.
fn unit_name(text: &str) -> Result<String, String> {
    let valid_chars = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
    if !valid_chars || text.starts_with(['.', '-']) {
        return Err(format!(
            "invalid unit name {text:?}: expected a systemd unit such as cups.service or apt-daily.timer"
        ));
    }
    match text.rsplit_once('.') {
        Some((stem, kind)) if UNIT_TYPES.contains(&kind) && !stem.is_empty() => Ok(text.to_owned()),
        Some((_, kind)) if kind.chars().all(|c| c.is_ascii_lowercase()) && kind.len() > 3 => {
            Err(format!(
                "unit {text:?} has the unknown type .{kind} (expected one of {})",
                UNIT_TYPES.join(", ")
            ))
        }
        _ => Ok(format!("{text}.service")),
    }
}

impl<'de> Deserialize<'de> for UnitName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let located = Located::<String>::deserialize(deserializer)?;
        let value = unit_name(&located.value).map_err(serde::de::Error::custom)?;
        Ok(UnitName {
            value,
            at: located.at,
        })
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(UnitName, {
    "description": "A systemd unit (cups.service, apt-daily.timer); a name without a type is a .service.",
    "type": "string",
    "pattern": "^[A-Za-z0-9:_\\\\@][A-Za-z0-9:_.\\\\@-]*$"
});

/// What the probe learns of one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// `systemctl is-enabled` and `is-active` (`unknown` without systemd).
    pub state: UnitState,
    /// The unit serves SSH: one of the OpenSSH server's names (aliases resolved where
    /// systemd runs), a service that runs sshd, or a socket on sshd's port.
    pub serves_ssh: bool,
    /// Its unit file is a regular file in `/etc/systemd/system`, where `systemctl mask`
    /// would put its link: systemd refuses to mask such a unit.
    pub local_file: bool,
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// Each listed unit, by the playbook's name.
    pub units: BTreeMap<String, Unit>,
    /// `systemctl` exists.
    pub systemctl: bool,
    /// The system runs systemd now, so run states are known and can be changed.
    pub systemd: bool,
}

impl Resource for Services {
    type Live = Live;
    const NAME: &'static str = "services";
    const GUARDS: &'static [Guard] = &[Guard {
        name: SSH_GUARD,
        resource: "services",
        help: "disabling, masking or stopping the unit that serves SSH",
    }];

    fn merge(&mut self, later: Self) {
        for (name, service) in later.0 {
            let mine = self.0.entry(name).or_default();
            if service.enablement.is_some() {
                mine.enablement = service.enablement;
            }
            if service.running.is_some() {
                mine.running = service.running;
            }
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        for (name, service) in &self.0 {
            let masked = matches!(&service.enablement, Some(e) if e.value == Wanted::Masked);
            if let (true, Some(running)) = (masked, &service.running) {
                if running.value {
                    errors.push(
                        Invalid::new(running.at, format!("{name} cannot run while masked")).help(
                            "use `enablement: disabled` to keep it from starting at boot only",
                        ),
                    );
                }
            }
            if service.enablement.is_none() && service.running.is_none() {
                errors.push(
                    Invalid::new(
                        name.at,
                        format!("{name} sets neither `enablement` nor `running`"),
                    )
                    .help("say what the unit must be, or remove it"),
                );
            }
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let mut live = Live {
            systemctl: host.which("systemctl").is_some(),
            systemd: host.has_systemd(),
            ..Live::default()
        };
        if !live.systemctl {
            return Ok(live);
        }
        let ports = cx.live().await.sshd.final_ports().to_vec();
        for name in self.0.keys() {
            let Some(state) = host.unit_state(&name.value).await else {
                continue;
            };
            let serves_ssh = serves_ssh(host, &name.value, &ports, live.systemd).await;
            let local = std::path::Path::new(LOCAL_UNITS).join(&name.value);
            let local_file =
                matches!(host.stat(&local), Ok(Some(st)) if st.kind == harden_host::Kind::File);
            live.units.insert(
                name.value.clone(),
                Unit {
                    state,
                    serves_ssh,
                    local_file,
                },
            );
        }
        Ok(live)
    }

    fn diff(&self, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        if !live.systemctl {
            return Err(Failure::Unusable(
                "systemctl is not installed on the managed system: the services section needs systemd".into(),
            ));
        }
        let mut diff = Diff::default();
        let mut errors = Vec::new();
        let mut refused = Vec::new();
        for (name, service) in &self.0 {
            let Some(unit) = live.units.get(&name.value) else {
                continue;
            };
            match diff_unit(name, service, unit, live.systemd) {
                Ok(None) => diff.unchanged += 1,
                Ok(Some(change)) => {
                    if unit.serves_ssh && takes_away(&change) && !cx.overridden(SSH_GUARD) {
                        refused.push(name.value.clone());
                    }
                    diff.changes.push(change);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(Failure::Invalid(errors));
        }
        let skipped: Vec<&str> = self
            .0
            .iter()
            .filter(|(_, s)| s.running.is_some())
            .map(|(n, _)| n.value.as_str())
            .collect();
        if !live.systemd && !skipped.is_empty() {
            diff.warnings.push(harden_plan::Warning {
                resource: Self::NAME.into(),
                message: format!(
                    "systemd does not run here (a chroot, a container without init, or --root): the run state of {} is left as it is",
                    skipped.join(", ")
                ),
            });
        }
        if !refused.is_empty() {
            return Err(Failure::Refused(Refusal {
                resource: Self::NAME.into(),
                guard: SSH_GUARD.into(),
                message: format!(
                    "{} serves SSH: disabling, masking or stopping it can end remote administration",
                    refused.join(", ")
                ),
            }));
        }
        Ok(diff)
    }
}

/// True when `change` disables, masks or stops its unit.
fn takes_away(change: &Change) -> bool {
    change.steps.iter().any(|s| match s {
        Step::Unit(u) => {
            matches!(
                u.enablement,
                Some(Enablement::Disabled | Enablement::Masked)
            ) || u.action == Some(UnitAction::Stop)
        }
        _ => false,
    })
}

/// Whether `unit` serves SSH: by name, and where systemd runs by its other names, the
/// program it runs, and the ports it listens on.
async fn serves_ssh(host: &harden_host::Host, unit: &str, ports: &[u16], systemd: bool) -> bool {
    if SSH_UNITS.contains(&unit) {
        return true;
    }
    if !systemd {
        return false;
    }
    let show = Command::new([
        "systemctl",
        "show",
        "-p",
        "Names",
        "-p",
        "ExecStart",
        "-p",
        "Listen",
        "--",
        unit,
    ])
    .timeout(30);
    let Ok(out) = host.run(&show).await else {
        return false;
    };
    shows_ssh(&out.stdout, ports)
}

/// Reads `systemctl show -p Names -p ExecStart -p Listen`: an OpenSSH name, a service that
/// runs sshd, or a stream socket on one of sshd's `ports`.
pub(crate) fn shows_ssh(show: &str, ports: &[u16]) -> bool {
    show.lines().any(|line| {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        match key {
            "Names" => value.split_whitespace().any(|n| SSH_UNITS.contains(&n)),
            "ExecStart" => {
                value.contains("path=/usr/sbin/sshd ") || value.contains("/usr/sbin/sshd;")
            }
            "Listen" => value.split_whitespace().any(|l| {
                ports
                    .iter()
                    .any(|p| l == p.to_string() || l.ends_with(&format!(":{p}")))
            }),
            _ => false,
        }
    })
}

/// The change that brings `unit` to `service`, `None` when it is there, or why it cannot be.
fn diff_unit(
    name: &UnitName,
    service: &Service,
    unit: &Unit,
    systemd: bool,
) -> Result<Option<Change>, Invalid> {
    let before = &unit.state;
    let enablement = match &service.enablement {
        Some(want) => wanted_enablement(name, want, unit)?,
        None => None,
    };
    let action = match &service.running {
        Some(running) if systemd => wanted_action(running.value, &before.active),
        _ => None,
    };
    if enablement.is_none() && action.is_none() {
        return Ok(None);
    }
    let step = UnitStep {
        unit: name.value.clone(),
        enablement,
        action,
        before: before.clone(),
        timeout_secs: UNIT_TIMEOUT,
    };
    let after = step.after();
    let mut change = Change::new(
        Services::NAME,
        name.value.clone(),
        format!(
            "{}, {} should be {}, {}",
            before.enablement, before.active, after.enablement, after.active
        ),
        vec![Step::Unit(step)],
    )
    .with_details(vec![Detail {
        name: name.value.clone(),
        current: Some(format!("{}, {}", before.enablement, before.active)),
        source: None,
        desired: Some(format!("{}, {}", after.enablement, after.active)),
    }]);
    // A rollback restores the enablements harden can set; a mask over any other state
    // (static, not-found...) is lifted by an unmask of its own.
    if enablement == Some(Enablement::Masked) && Enablement::from_word(&before.enablement).is_none()
    {
        change.on_rollback =
            vec![Command::new(["systemctl", "unmask", name.value.as_str()]).timeout(UNIT_TIMEOUT)];
    }
    Ok(Some(change))
}

/// The enablement to set, `None` when the unit has it (or a state that amounts to it).
fn wanted_enablement(
    name: &UnitName,
    want: &Located<Wanted>,
    unit: &Unit,
) -> Result<Option<Enablement>, Invalid> {
    let current = unit.state.enablement.as_str();
    let wanted = want.value.enablement();
    if Enablement::from_word(current) == Some(wanted) {
        return Ok(None);
    }
    match (wanted, current) {
        (Enablement::Masked, _) if unit.local_file => Err(Invalid::new(
            want.at,
            format!("systemctl cannot mask {name}: its unit file is {LOCAL_UNITS}/{name}, where the mask's link would go"),
        )
        .help("disable it instead, or remove that file (an administrator's unit) with the files section")),
        (Enablement::Masked, _) => Ok(Some(Enablement::Masked)),
        // Nothing starts a unit that is not installed, or one with no [Install] section.
        (Enablement::Disabled, "not-found" | "static" | "indirect" | "generated" | "transient") => Ok(None),
        (Enablement::Enabled, "not-found") => Err(Invalid::new(
            name.at,
            format!("{name} is not installed (systemctl is-enabled: not-found)"),
        )
        .help("install its package first (the packages section), or fix the name")),
        (Enablement::Enabled, "static" | "indirect" | "generated" | "transient" | "alias") => Err(Invalid::new(
            want.at,
            format!("{name} is {current}: systemctl cannot enable it (it has no [Install] section of its own)"),
        )
        .help("enable the unit that wants it, or drop `enablement`")),
        (want, _) => Ok(Some(want)),
    }
}

/// The action that reaches `running`, `None` when the unit is there.
fn wanted_action(running: bool, active: &str) -> Option<UnitAction> {
    let runs = matches!(active, "active" | "activating" | "reloading" | "refreshing");
    match (running, runs) {
        (true, false) => Some(UnitAction::Start),
        (false, true) => Some(UnitAction::Stop),
        _ => None,
    }
}
