//! `ufw`: the firewall as ufw holds it: enabled or not, default policies, logging, rules.
//!
//! The probe reads ufw's own persisted state and never scrapes `ufw status`: the
//! `### tuple ###` lines of `/etc/ufw/user.rules` and `user6.rules` hold every rule in a
//! structured form (present even while ufw is inactive), `/etc/ufw/ufw.conf` holds ENABLED
//! and LOGLEVEL, `/etc/default/ufw` the default policies and IPV6. One `iptables -L
//! ufw-user-input` tells whether the firewall is really loaded, as `ufw status` itself tells.
//!
//! Rules compare by meaning ([`rule::Key`]), order is kept where it matters, and every
//! change goes through ufw's command line (`ufw allow`, `ufw insert N`, `ufw prepend`, `ufw
//! delete <rule>`, `ufw default`, `ufw logging`, `ufw --force enable`), each a
//! `Run` step declaring ufw's state files so the snapshot holds them. Deletes name the rule,
//! never a number, so a rule fail2ban inserts meanwhile cannot shift what is deleted. On a
//! running firewall ufw applies each rule command itself (an append is one live iptables
//! call; an insert or delete reloads ufw's user chains); nothing else is reloaded, and the
//! firewall is enabled last, once.
//!
//! Playbook rules from several playbooks add up; a later rule matching the same traffic as
//! an earlier one (same target, direction, addresses, interface) replaces it. The target
//! `sshd` means sshd's port(s): the playbook's `sshd.config.Port`, or `sshd -T`'s.
//! Rules whose comment names another tool (fail2ban, sshguard, crowdsec, denyhosts,
//! docker, kubernetes, or "managed by ...") are never purged.
//!
//! Rollback: the executor restores the state files; the first ufw change then runs `ufw
//! reload` when the firewall was running before (ufw rebuilds its chains from the restored
//! files: same rules, same iptables), and the change that enabled a firewall that was not
//! running runs `ufw-init force-stop` (stops it without touching the restored ufw.conf;
//! ufw's own stop leaves its empty chains in place). A ufw this plan installed is purged.
//!
//! Under `--root` no command may reach the build host's firewall: ufw runs chrooted inside
//! `unshare --net --mount-proc` (its capability probe and any live update hit a throwaway
//! network namespace; the private /proc lets it see the kernel's IPv6 support), ENABLED is
//! written into ufw.conf directly, and an image whose ufw.conf says ENABLED=yes is set to
//! `no` while ufw edits its rules (ufw would otherwise try to update a running firewall
//! that does not exist there and fail), then back.

mod order;
pub mod rule;
pub mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harden_host::{Host, UserDb};
use harden_plan::{Attrs, Change, Command, Detail, Step, Warning};
use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::facts::LiveFacts;
use crate::guard::Guard;
use crate::resource::{Context, Diff, DiffContext, Failure, Refusal, Resource};
use crate::steps;

use order::{FamilyInput, Final, Outcome, Unit, Want};
use rule::{Family, Key, Net, Ports, Proto, Rule, Service, Spec, Target, Tuple};
use state::{LogLevel, Policy, Profile, ServiceEntry, Settings};

/// The rule target meaning "the port(s) sshd listens on": the playbook's `sshd.config.Port`
/// when it sets one, otherwise sshd's effective Port (`sshd -T`).
pub const SSHD_TARGET: &str = "sshd";

/// Guard name for `--allow`: the firewall would block the SSH port.
pub const GUARD_SSH_PORT: &str = "ufw-ssh-port";

const UFW_CONF: &str = "/etc/ufw/ufw.conf";
const DEFAULTS: &str = "/etc/default/ufw";
const USER_RULES: &str = "/etc/ufw/user.rules";
const USER6_RULES: &str = "/etc/ufw/user6.rules";
const APPS_DIR: &str = "/etc/ufw/applications.d";

/// Files a ufw command may rewrite; every ufw step declares all of them. `ufw default`
/// rewrites after.rules and after6.rules too (it switches their log prefixes).
const STATE_FILES: [&str; 6] = [
    USER_RULES,
    USER6_RULES,
    UFW_CONF,
    DEFAULTS,
    "/etc/ufw/after.rules",
    "/etc/ufw/after6.rules",
];

/// Comment words that mark a rule as another tool's: such rules are never purged.
const FOREIGN_MARKERS: [&str; 7] = [
    "fail2ban",
    "sshguard",
    "crowdsec",
    "denyhosts",
    "docker",
    "kubernetes",
    "managed by",
];

/// The `ufw:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Ufw {
    /// Whether the firewall is on (and started at boot).
    pub enabled: Option<bool>,
    /// Default policies.
    #[serde(default)]
    pub default: Defaults,
    /// Log level.
    pub logging: Option<LogLevel>,
    /// Rules, in the order they must keep where they overlap.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Delete rules the playbook does not list (except other tools' rules).
    pub purge: Option<bool>,
}

/// `default:` policies.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Incoming traffic not matched by a rule.
    pub incoming: Option<Policy>,
    /// Outgoing traffic.
    pub outgoing: Option<Policy>,
    /// Forwarded traffic.
    pub routed: Option<Policy>,
}

/// What the probe found.
#[derive(Clone, Debug)]
pub struct Live {
    /// `ufw` is installed.
    pub installed: bool,
    /// Its settings (the package defaults when not installed).
    pub settings: Settings,
    /// The firewall is loaded in the kernel; `None` under `--root`.
    pub running: Option<bool>,
    /// Tuples of each family ufw manages, in order.
    pub tuples: FamilyRules,
    /// Tuples ufw skips as malformed.
    pub malformed: Vec<String>,
    /// Application profiles by lowercased name.
    pub profiles: Profiles,
    /// /etc/services by name.
    pub services: Services,
    /// Ports sshd listens on now.
    pub ssh_listening: Vec<u16>,
    /// Ports the playbook's sshd section sets, if it does.
    pub ssh_desired: Option<Vec<u16>>,
    /// Docker is installed.
    pub docker: bool,
    /// ufw.conf's text and attributes (for writing ENABLED under `--root`).
    pub conf: Option<(String, Attrs)>,
    /// Path of ufw-init in the managed system.
    pub init: PathBuf,
    /// The ufw script and its Python, for running rule commands in one process; `None`
    /// when ufw is not a Python script harden recognises.
    pub script: Option<Script>,
}

/// ufw as a Python program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The interpreter of its `#!` line.
    pub python: String,
    /// The script itself (ufw checks its own permissions, as it does when run).
    pub path: String,
}

impl Live {
    /// The port(s) sshd will listen on once the plan is applied.
    pub fn ssh_ports(&self) -> &[u16] {
        self.ssh_desired.as_deref().unwrap_or(&self.ssh_listening)
    }
}

impl Resource for Ufw {
    type Live = Live;
    const NAME: &'static str = "ufw";
    const GUARDS: &'static [Guard] = &[Guard {
        name: GUARD_SSH_PORT,
        resource: "ufw",
        help: "an active firewall that would drop sshd's port",
    }];

    fn merge(&mut self, later: Self) {
        self.enabled = later.enabled.or(self.enabled);
        self.default.incoming = later.default.incoming.or(self.default.incoming);
        self.default.outgoing = later.default.outgoing.or(self.default.outgoing);
        self.default.routed = later.default.routed.or(self.default.routed);
        self.logging = later.logging.or(self.logging);
        self.purge = later.purge.or(self.purge);
        for rule in later.rules {
            match self.rules.iter_mut().find(|r| r.same_match(&rule)) {
                Some(earlier) => *earlier = rule,
                None => self.rules.push(rule),
            }
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(first) = self.rules[..i].iter().find(|r| r.same_match(rule)) {
                errors.push(
                    Invalid::new(
                        rule.at(),
                        format!(
                            "this rule matches the same traffic as the one on line {}",
                            first.at().line
                        ),
                    )
                    .help("keep one of them"),
                );
            }
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Self::Live, Failure> {
        let host = cx.host;
        let installed = host.which("ufw").is_some();
        let (settings, conf) = read_settings(host, installed)?;
        let (tuples, malformed) = read_rules(host, installed, settings.ipv6)?;
        let named = self
            .rules
            .iter()
            .any(|r| matches!(r.target.value, Target::Name { .. }));
        let (profiles, services) = if named {
            read_names(host)?
        } else {
            Default::default()
        };
        let running = running(host, installed).await?;
        let script = script(host);
        if !host.is_live() && installed && host.which("unshare").is_none() {
            return Err(Failure::Probe(
                "under --root, ufw runs inside `unshare --net --mount-proc` so that it cannot touch this machine's firewall, and the image has no unshare (util-linux)".into(),
            ));
        }
        let exists = |p: &str| matches!(host.stat(Path::new(p)), Ok(Some(_)));
        let docker = [
            "/usr/bin/dockerd",
            "/lib/systemd/system/docker.service",
            "/usr/lib/systemd/system/docker.service",
            "/etc/systemd/system/docker.service",
        ]
        .iter()
        .any(|p| exists(p));
        let init = if exists("/lib/ufw/ufw-init") {
            "/lib/ufw/ufw-init"
        } else {
            "/usr/lib/ufw/ufw-init"
        };
        let sshd = &cx.live().await.sshd;
        Ok(Live {
            installed,
            settings,
            running,
            tuples,
            malformed,
            profiles,
            services,
            ssh_listening: sshd.live_ports.clone(),
            ssh_desired: sshd.planned_ports.clone().filter(|p| !p.is_empty()),
            docker,
            conf,
            init: PathBuf::from(init),
            script,
        })
    }

    fn diff(&self, live: &Self::Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        plan(self, live, cx.overridden(GUARD_SSH_PORT))
    }

    /// Whether the firewall lets each of sshd's ports in when the run ends: the rules ufw
    /// holds now, or, for a port they drop, a rule of this playbook that opens it.
    async fn publish_live(section: Option<&Self>, host: &Host, _: &UserDb, live: &mut LiveFacts) {
        live.firewall.managed = section.is_some();
        for &port in &live.sshd.ports_of_interest {
            let now = live_admits(host, port);
            let opened = section.is_some_and(|s| playbook_admits(s, port));
            let verdict = if now == Some(false) && opened {
                Some(true)
            } else {
                now
            };
            live.firewall.admits.insert(port, verdict);
        }
    }
}

/// A playbook rule resolved against the system: what it matches and how ufw spells it.
struct Resolved {
    service: Service,
    alts: Vec<(Proto, Ports)>,
    dport: Option<String>,
    dapp: Option<String>,
    proto: Proto,
}

fn resolve(rule: &Rule, live: &Live) -> Result<Resolved, Invalid> {
    match &rule.target.value {
        Target::Ports { ports, proto } => Ok(Resolved {
            service: Service::Ports(*proto, ports.clone()),
            alts: vec![(*proto, ports.clone())],
            dport: (*ports != Ports::Any).then(|| ports.to_string()),
            dapp: None,
            proto: *proto,
        }),
        Target::Name { name, proto } if name == SSHD_TARGET => {
            if proto.is_some_and(|p| p != Proto::Tcp) {
                return Err(Invalid::new(
                    rule.at(),
                    "`sshd` is sshd's TCP port(s): write `sshd` or `sshd/tcp`",
                ));
            }
            let mut ports: Vec<(u16, u16)> = live.ssh_ports().iter().map(|p| (*p, *p)).collect();
            ports.sort_unstable();
            ports.dedup();
            let ports = Ports::List(ports);
            Ok(Resolved {
                service: Service::Ports(Proto::Tcp, ports.clone()),
                alts: vec![(Proto::Tcp, ports.clone())],
                dport: Some(ports.to_string()),
                dapp: None,
                proto: Proto::Tcp,
            })
        }
        Target::Name { name, proto } => {
            // ufw's order: a name in /etc/services is a service, otherwise a profile.
            if let Some(entry) = live.services.get(name) {
                let proto = match (proto, entry.proto) {
                    (None, p) => p,
                    (Some(p), Proto::Any) => *p,
                    (Some(p), q) if *p == q => q,
                    (Some(p), q) => {
                        return Err(Invalid::new(
                            rule.at(),
                            format!(
                                "service {name} is {} in /etc/services, not {}",
                                q.as_str(),
                                p.as_str()
                            ),
                        ))
                    }
                };
                let ports = Ports::List(vec![(entry.port, entry.port)]);
                return Ok(Resolved {
                    service: Service::Ports(proto, ports.clone()),
                    alts: vec![(proto, ports)],
                    dport: Some(entry.port.to_string()),
                    dapp: None,
                    proto,
                });
            }
            let Some(profile) = live.profiles.get(&name.to_lowercase()) else {
                return Err(Invalid::new(rule.at(), format!("unknown application profile or service `{name}`"))
                    .help("`ufw app list` shows the profiles of /etc/ufw/applications.d; or give a port such as 22/tcp"));
            };
            if proto.is_some() {
                return Err(Invalid::new(
                    rule.at(),
                    format!("`{name}` is an application profile: it takes no protocol"),
                ));
            }
            Ok(Resolved {
                service: Service::App(profile.name.clone()),
                alts: profile.entries.clone(),
                dport: None,
                dapp: Some(profile.name.clone()),
                proto: Proto::Any,
            })
        }
    }
}

fn is_foreign(comment: &str) -> bool {
    let c = comment.to_lowercase();
    FOREIGN_MARKERS.iter().any(|m| c.contains(m)) && !c.contains("managed by harden")
}

fn rules_path(family: Family) -> &'static str {
    match family {
        Family::V4 => USER_RULES,
        Family::V6 => USER6_RULES,
    }
}

/// Groups a family's tuples into ufw's numbered rules (an application rule may have several).
fn units(family: Family, tuples: &[Tuple]) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    for t in tuples {
        let key = t.key(family).ok();
        let alts = (t.proto, Ports::parse(&t.dport).unwrap_or(Ports::Any));
        if t.dapp.is_some() || t.sapp.is_some() {
            if let Some(unit) = out
                .iter_mut()
                .find(|u| u.key.is_some() && u.key == key && u.spec.forward == t.forward)
            {
                unit.alts.push(alts);
                unit.tuples += 1;
                continue;
            }
        }
        out.push(Unit {
            key,
            effect: t.effect,
            spec: t.spec(),
            alts: vec![alts],
            tuples: 1,
            foreign: is_foreign(&t.comment),
            text: rule::describe(t, family),
            source: format!("{}:{}", rules_path(family), t.line),
        });
    }
    out
}

fn wants(
    section: &Ufw,
    live: &Live,
    errors: &mut Vec<Invalid>,
    notes: &mut Vec<String>,
) -> Vec<FamilyInput> {
    let system: Vec<Family> = live.tuples.iter().map(|(f, _)| *f).collect();
    let mut inputs: Vec<FamilyInput> = live
        .tuples
        .iter()
        .map(|(family, tuples)| FamilyInput {
            family: *family,
            live: units(*family, tuples),
            wants: Vec::new(),
        })
        .collect();
    for (index, rule) in section.rules.iter().enumerate() {
        let resolved = match resolve(rule, live) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let families: Vec<Family> = match rule.family() {
            Some(f) if system.contains(&f) => vec![f],
            Some(_) => {
                errors.push(
                    Invalid::new(rule.at(), "this rule has an IPv6 address and ufw's IPv6 support is off (IPV6=no in /etc/default/ufw)")
                        .help("set IPV6=yes in /etc/default/ufw, or drop the rule"),
                );
                continue;
            }
            None if resolved.proto.v4_only() => vec![Family::V4],
            None => system.clone(),
        };
        for family in families {
            let want = want(index, rule, &resolved, family);
            if let Some(input) = inputs.iter_mut().find(|i| i.family == family) {
                add(section, input, want, notes);
            }
        }
    }
    inputs
}

/// What playbook rule `index` asks of ufw in `family`: its key, and how to spell it.
fn want(index: usize, rule: &Rule, resolved: &Resolved, family: Family) -> Want {
    let (iface_in, iface_out) = match rule.direction {
        rule::Direction::In => (rule.interface.clone(), None),
        rule::Direction::Out => (None, rule.interface.clone()),
    };
    let key = Key {
        family,
        forward: false,
        direction: rule.direction,
        iface_in: iface_in.clone(),
        iface_out: iface_out.clone(),
        src: rule.from.unwrap_or(Net::anywhere(family)),
        sport: Ports::Any,
        sapp: None,
        dst: rule.to.unwrap_or(Net::anywhere(family)),
        service: resolved.service.clone(),
    };
    let text = |n: Option<Net>| n.map_or_else(|| family.anywhere().to_owned(), |n| n.to_string());
    let spec = Spec {
        forward: false,
        effect: rule.effect,
        direction: rule.direction,
        iface_in,
        iface_out,
        src: text(rule.from),
        sport: None,
        sapp: None,
        dst: text(rule.to),
        dport: resolved.dport.clone(),
        dapp: resolved.dapp.clone(),
        proto: resolved.proto,
        comment: rule.comment.clone(),
    };
    let anywhere = rule.from.is_none() && rule.to.is_none();
    let both = anywhere.then(|| Spec {
        src: "any".into(),
        dst: "any".into(),
        ..spec.clone()
    });
    Want {
        rule: index,
        key,
        effect: rule.effect,
        spec,
        both,
        alts: resolved.alts.clone(),
        tuples: resolved.alts.len(),
    }
}

/// Adds `want` to its family's input, unless an earlier rule is for the same traffic.
fn add(section: &Ufw, input: &mut FamilyInput, want: Want, notes: &mut Vec<String>) {
    match same_traffic(&input.wants, &want) {
        // ufw holds one rule per traffic: the second is the first again.
        Some(first) if input.wants[first].effect == want.effect => {}
        // As across playbooks, the later rule for the same traffic replaces it.
        Some(first) => {
            let earlier = input.wants.remove(first);
            let note = replaced(section, &earlier, &want);
            if !notes.contains(&note) {
                notes.push(note);
            }
            input.wants.push(want);
        }
        None => input.wants.push(want),
    }
}

/// The earlier playbook rule for the same traffic as `want` (the same key and ports), by
/// index: ufw keeps one rule for it, and a second `ufw allow` of it is a no-op (or, with
/// another action, replaces the first).
fn same_traffic(wants: &[Want], want: &Want) -> Option<usize> {
    wants
        .iter()
        .position(|w| w.rule != want.rule && w.key == want.key && w.alts == want.alts)
}

fn replaced(section: &Ufw, earlier: &Want, later: &Want) -> String {
    let (earlier, later) = (&section.rules[earlier.rule], &section.rules[later.rule]);
    format!(
        "`{later}` (line {}) is for the same traffic as `{earlier}` (line {}) and replaces it: ufw keeps one rule per traffic",
        later.at().line,
        earlier.at().line
    )
}

/// True when iptables' complaint says the chain does not exist (the wording differs between
/// the legacy and the nf_tables backends).
fn chain_missing(stderr: &str) -> bool {
    [
        "No chain/target/match",
        "does not exist",
        "doesn't exist",
        "is incompatible",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// Whether the firewall ufw holds now lets a new TCP connection to `port` in, by the same
/// rule the `ufw-ssh-port` guard applies to a plan's end state; `None` when ufw is not
/// installed or not enabled. sshd's port guard asks this.
pub(crate) fn live_admits(host: &Host, port: u16) -> Option<bool> {
    let read = |path: &str| host.read_to_string(Path::new(path)).ok().flatten();
    host.which("ufw")?;
    let settings = Settings::parse(&read(UFW_CONF)?, &read(DEFAULTS).unwrap_or_default());
    if !settings.enabled {
        return None;
    }
    if settings.incoming == Policy::Allow {
        return Some(true);
    }
    let mut families = vec![(Family::V4, USER_RULES)];
    if settings.ipv6 && Path::new("/proc/sys/net/ipv6").exists() {
        families.push((Family::V6, USER6_RULES));
    }
    Some(families.into_iter().any(|(family, path)| {
        let (tuples, _) = rule::parse_rules_file(&read(path).unwrap_or_default());
        let held: Vec<Final> = units(family, &tuples).iter().map(Final::of_live).collect();
        order::admits_port(&held, port)
    }))
}

/// True when `section` lists a rule that lets TCP `port` in from anywhere: a port rule that
/// covers it, or the `sshd` target (which follows sshd's port). Used by sshd's guard, so that a
/// playbook moving sshd and opening the new port in the same run is not refused.
pub(crate) fn playbook_admits(section: &Ufw, port: u16) -> bool {
    section.rules.iter().any(|rule| {
        let open = rule.effect.action.admits()
            && rule.direction == rule::Direction::In
            && rule.from.is_none()
            && rule.to.is_none()
            && rule.interface.is_none();
        open && match &rule.target.value {
            Target::Ports { ports, proto } => {
                matches!(proto, Proto::Tcp | Proto::Any) && ports.contains(port)
            }
            Target::Name { name, .. } => name == SSHD_TARGET,
        }
    })
}

/// Settings a plan ends with, and whether the firewall ends up active.
struct Posture {
    active: bool,
    incoming: Policy,
}

fn ssh_blocked(t: &Posture, lists: &[(Family, Vec<Final>)], ports: &[u16]) -> bool {
    t.active
        && t.incoming != Policy::Allow
        && !ports
            .iter()
            .any(|p| lists.iter().any(|(_, l)| order::admits_port(l, *p)))
}

fn ports_text(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("{p}/tcp"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs rule commands in one process with ufw's own code (see the script).
const BATCH: &str = include_str!("ufw/batch.py");

/// The managed system's ufw as a Python script: its path and the python3 of its `#!` line;
/// Debian's when ufw is not installed yet (the plan installs Debian's package).
fn script(host: &Host) -> Option<Script> {
    let Some(path) = host.which("ufw") else {
        return Some(Script {
            python: "/usr/bin/python3".into(),
            path: "/usr/sbin/ufw".into(),
        });
    };
    let text = host.read_to_string(&path).ok().flatten()?;
    let python = text.lines().next()?.strip_prefix("#!")?.trim();
    let name = Path::new(python).file_name()?.to_str()?;
    let plain = python.starts_with('/') && !python.contains(char::is_whitespace);
    let path = path.to_str()?.to_owned();
    (plain && name.starts_with("python3")).then(|| Script {
        python: python.to_owned(),
        path,
    })
}

struct Emitter {
    is_live: bool,
    /// ufw's script, when rule commands may run as one batch.
    script: Option<Script>,
    changes: Vec<Change>,
}

impl Emitter {
    /// A rule command (`allow`, `insert`, `delete`...): runnable in one process with the
    /// rule commands next to it.
    fn rule_command(&self, args: Vec<String>) -> Command {
        let command = self.command(args.clone());
        let Some(script) = &self.script else {
            return command;
        };
        let mut runner = self.prefix();
        runner.extend([
            script.python.clone(),
            "-c".into(),
            BATCH.into(),
            script.path.clone(),
        ]);
        command.batched(runner, args)
    }

    /// What every ufw command runs under: nothing on a live system; under `--root`, its own
    /// network and process namespaces, so that it cannot touch this machine's firewall.
    fn prefix(&self) -> Vec<String> {
        if self.is_live {
            Vec::new()
        } else {
            ["unshare", "--net", "--mount-proc", "--"]
                .map(String::from)
                .to_vec()
        }
    }

    fn command(&self, args: impl IntoIterator<Item = String>) -> Command {
        let mut argv = self.prefix();
        argv.push("ufw".into());
        argv.extend(args);
        Command::new(argv)
            .timeout(180)
            .touching(STATE_FILES.iter().map(PathBuf::from))
    }

    fn push(&mut self, target: String, reason: String, details: Vec<Detail>, steps: Vec<Step>) {
        self.changes
            .push(Change::new(Ufw::NAME, target, reason, steps).with_details(details));
    }
}

fn detail(
    name: &str,
    current: Option<String>,
    source: Option<String>,
    desired: Option<String>,
) -> Detail {
    Detail {
        name: name.into(),
        current,
        source,
        desired,
    }
}

/// ufw's rules per family, as its user rules files hold them.
type FamilyRules = Vec<(Family, Vec<Tuple>)>;
/// Application profiles by name.
type Profiles = BTreeMap<String, Profile>;
/// /etc/services entries by name.
type Services = BTreeMap<String, ServiceEntry>;

fn read(host: &Host, path: &str) -> Result<Option<String>, Failure> {
    host.read_to_string(Path::new(path))
        .map_err(|e| Failure::Probe(format!("{path}: {e}")))
}

/// ufw's settings (the package's defaults when it is not installed), and ufw.conf's text
/// and attributes for edits under `--root`.
fn read_settings(
    host: &Host,
    installed: bool,
) -> Result<(Settings, Option<(String, Attrs)>), Failure> {
    let conf_text = read(host, UFW_CONF)?;
    let mut settings = if installed {
        Settings::parse(
            conf_text.as_deref().unwrap_or(""),
            read(host, DEFAULTS)?.as_deref().unwrap_or(""),
        )
    } else {
        Settings::package_defaults()
    };
    // ufw manages IPv6 only when the kernel has it too (its `use_ipv6`); the kernel is this
    // machine's, under --root as well.
    settings.ipv6 &= Path::new("/proc/sys/net/ipv6").exists();
    let conf = match (conf_text, host.stat(Path::new(UFW_CONF))) {
        (Some(text), Ok(Some(st))) => Some((
            text,
            Attrs {
                mode: st.mode,
                uid: st.uid,
                gid: st.gid,
            },
        )),
        _ => None,
    };
    Ok((settings, conf))
}

/// The rules in ufw's user rules files, per family, and the lines ufw would skip.
fn read_rules(
    host: &Host,
    installed: bool,
    ipv6: bool,
) -> Result<(FamilyRules, Vec<String>), Failure> {
    let mut tuples = Vec::new();
    let mut malformed = Vec::new();
    let mut families = vec![(Family::V4, USER_RULES)];
    if ipv6 {
        families.push((Family::V6, USER6_RULES));
    }
    for (family, path) in families {
        let (found, bad) = if installed {
            rule::parse_rules_file(&read(host, path)?.unwrap_or_default())
        } else {
            Default::default()
        };
        malformed.extend(bad.into_iter().map(|b| format!("{path} {b}")));
        tuples.push((family, found));
    }
    Ok((tuples, malformed))
}

/// Application profiles and /etc/services, for rules that name a target.
fn read_names(host: &Host) -> Result<(Profiles, Services), Failure> {
    let mut texts = Vec::new();
    for name in host
        .read_dir(Path::new(APPS_DIR))
        .map_err(|e| Failure::Probe(format!("{APPS_DIR}: {e}")))?
    {
        let path = Path::new(APPS_DIR).join(&name);
        if let Ok(Some(text)) = host.read_to_string(&path) {
            texts.push(text);
        }
    }
    let profiles = state::parse_profiles(texts.iter().map(String::as_str));
    let services = state::parse_services(&read(host, "/etc/services")?.unwrap_or_default());
    Ok((profiles, services))
}

/// Whether ufw's chains are loaded; `None` under `--root`, where no firewall runs.
async fn running(host: &Host, installed: bool) -> Result<Option<bool>, Failure> {
    if !host.is_live() {
        return Ok(None);
    }
    if !installed {
        return Ok(Some(false));
    }
    let check = Command::new(["iptables", "-w", "5", "-n", "-L", "ufw-user-input"]).timeout(15);
    match host.run(&check).await {
        Ok(out) if out.success() => Ok(Some(true)),
        // Only iptables' own "no such chain" means ufw is not loaded. Anything else (the
        // xtables lock still busy, a broken iptables) tells nothing, and reading it as "not
        // loaded" would plan an enable whose rollback stops a firewall that was active all
        // along.
        Ok(out) if chain_missing(&out.stderr) => Ok(Some(false)),
        Ok(out) => Err(Failure::Probe(format!(
            "cannot tell whether ufw is running: `{}` exited with {:?}: {}",
            check.display(),
            out.code,
            out.stderr.trim()
        ))),
        Err(e) => Err(Failure::Probe(format!(
            "cannot tell whether ufw is running: {e}"
        ))),
    }
}

fn plan(section: &Ufw, live: &Live, overridden: bool) -> Result<Diff, Failure> {
    let mut diff = Diff::default();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let inputs = wants(section, live, &mut errors, &mut notes);
    if !errors.is_empty() {
        return Err(Failure::Invalid(errors));
    }
    for note in notes {
        warn(&mut diff, note);
    }
    let purge = section.purge.unwrap_or(false);
    let outcome: Outcome = order::plan(&inputs, section.rules.len(), purge);
    let turn = Transition::new(section, live);
    guard_ssh(section, live, &outcome, &turn, overridden, &mut diff)?;

    let mut em = Emitter {
        is_live: turn.is_live,
        script: live.script.clone(),
        changes: Vec::new(),
    };
    if !live.installed {
        install(&mut em, &mut diff);
    }
    // A running firewall being turned off goes first: the edits below are then file-only.
    if turn.need_disable && turn.is_live {
        let cmd = em.command(["disable".to_owned()]);
        em.push(
            "enabled".into(),
            "ufw is enabled".into(),
            vec![enabled_detail(true, false)],
            vec![Step::Run(cmd)],
        );
    }
    rule_changes(&mut em, section, &outcome, &mut diff);
    rule_warnings(section, &outcome, purge, &mut diff);
    policy_changes(&mut em, section, &live.settings, &mut diff);
    if turn.is_live {
        enable_change(&mut em, section, &turn, &mut diff);
    } else {
        root_enabled(&mut em, section, live, turn.want_enabled, &mut diff);
    }
    let mut changes = em.changes;
    rollback(&mut changes, live, turn.is_live, turn.active_now);
    live_warnings(live, &inputs, turn.want_enabled, &mut diff);
    diff.changes = changes;
    Ok(diff)
}

/// Whether the firewall is on now, and what the playbook makes of that.
struct Transition {
    /// ufw commands reach the kernel (not under `--root`).
    is_live: bool,
    /// The firewall is loaded now.
    active_now: bool,
    /// ufw.conf says ENABLED=yes.
    conf_enabled: bool,
    /// `enabled: true` and the firewall is not both loaded and enabled at boot.
    need_enable: bool,
    /// `enabled: false` and the firewall is loaded or enabled at boot.
    need_disable: bool,
    /// The firewall is active when the run ends.
    want_enabled: bool,
}

impl Transition {
    fn new(section: &Ufw, live: &Live) -> Self {
        let settings = &live.settings;
        let running = live.installed && live.running.unwrap_or(settings.enabled);
        let conf_enabled = live.installed && settings.enabled;
        // Enabled means both: ENABLED=yes (started at boot) and loaded now.
        let need_enable = section.enabled == Some(true) && !(conf_enabled && running);
        let need_disable = section.enabled == Some(false) && (conf_enabled || running);
        Transition {
            is_live: live.running.is_some(),
            active_now: running,
            conf_enabled,
            need_enable,
            need_disable,
            want_enabled: if need_enable {
                true
            } else if need_disable {
                false
            } else {
                running
            },
        }
    }
}

/// The lockout guard, on the state before and after the plan: refuses (unless overridden) a
/// plan after which no rule admits sshd's port while one did before.
fn guard_ssh(
    section: &Ufw,
    live: &Live,
    outcome: &Outcome,
    turn: &Transition,
    overridden: bool,
    diff: &mut Diff,
) -> Result<(), Failure> {
    let final_ports = live.ssh_ports();
    let before = Posture {
        active: turn.active_now,
        incoming: live.settings.incoming,
    };
    let after = Posture {
        active: turn.want_enabled,
        incoming: section.default.incoming.unwrap_or(live.settings.incoming),
    };
    let blocked_before = ssh_blocked(&before, &outcome.initial, &live.ssh_listening);
    let blocked_after = ssh_blocked(&after, &outcome.finals, final_ports);
    if !blocked_after {
        return Ok(());
    }
    if blocked_before {
        warn(
            diff,
            format!(
                "ufw already blocks SSH ({}); this plan does not change that",
                ports_text(final_ports)
            ),
        );
        return Ok(());
    }
    let source = if live.ssh_desired.is_some() {
        "the playbook's sshd Port"
    } else {
        "sshd's effective Port (sshd -T)"
    };
    let port = final_ports.first().copied().unwrap_or(22);
    let message = format!(
        "the firewall would be active with incoming policy `{}` and no rule allowing {} ({source}): every new SSH connection would be dropped. Add a rule such as `{{ allow: {port}/tcp }}` or `{{ limit: {port}/tcp }}` (or `{{ allow: OpenSSH }}` for port 22)",
        after.incoming.as_str(),
        ports_text(final_ports),
    );
    if overridden {
        warn(
            diff,
            format!("guard {GUARD_SSH_PORT} overridden: {message}"),
        );
        return Ok(());
    }
    Err(Failure::Refused(Refusal {
        resource: Ufw::NAME.into(),
        guard: GUARD_SSH_PORT.into(),
        message,
    }))
}

fn warn(diff: &mut Diff, message: String) {
    diff.warnings.push(Warning {
        resource: Ufw::NAME.into(),
        message,
    });
}

fn install(em: &mut Emitter, diff: &mut Diff) {
    em.push(
        "package ufw".into(),
        "ufw is not installed".into(),
        Vec::new(),
        vec![Step::Run(steps::apt_install(&["ufw"]))],
    );
    warn(diff, "ufw is not installed: the plan installs it and assumes the package's defaults (no rules, inactive, incoming deny, outgoing allow, routed deny, logging low); a rollback purges it again".into());
}

fn enabled_detail(from: bool, to: bool) -> Detail {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    detail(
        "enabled",
        Some(yes_no(from)),
        Some(UFW_CONF.into()),
        Some(yes_no(to)),
    )
}

/// The commands that bring each playbook rule into place, then the purges.
fn rule_changes(em: &mut Emitter, section: &Ufw, outcome: &Outcome, diff: &mut Diff) {
    for (rule, ops) in section.rules.iter().zip(&outcome.rules) {
        if ops.ops.is_empty() {
            diff.unchanged += 1;
            continue;
        }
        let current = (!ops.current.is_empty()).then(|| {
            ops.current
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        });
        let source = ops.current.first().map(|(_, s)| s.clone());
        let steps = ops
            .ops
            .iter()
            .map(|op| Step::Run(em.rule_command(op.args.clone())))
            .collect();
        em.push(
            rule.to_string(),
            ops.reasons.join("; "),
            vec![detail("rule", current, source, Some(rule.to_string()))],
            steps,
        );
    }
    for p in &outcome.purges {
        let steps = vec![Step::Run(em.rule_command(p.op.args.clone()))];
        em.push(
            p.text.clone(),
            "not in the playbook (purge: true)".into(),
            vec![detail(
                "rule",
                Some(p.text.clone()),
                Some(p.source.clone()),
                None,
            )],
            steps,
        );
    }
}

/// Rules ufw holds that the playbook does not list, and what they mean for the listed ones.
fn rule_warnings(section: &Ufw, outcome: &Outcome, purge: bool, diff: &mut Diff) {
    if !outcome.kept.is_empty() {
        let kept: Vec<String> = outcome.kept.iter().map(|t| format!("`{t}`")).collect();
        warn(
            diff,
            format!(
                "{} rule(s) in ufw are not in the playbook and stay (purge: false): {}",
                outcome.kept.len(),
                kept.join(", ")
            ),
        );
    }
    for (_, list) in &outcome.finals {
        for (rule, text) in order::shadowed(list) {
            let message = format!(
                "`{}` comes after `{text}`, which ufw holds and the playbook does not list: where they overlap, `{text}` decides (list it, or set purge: true)",
                section.rules[rule]
            );
            if !diff.warnings.iter().any(|w| w.message == message) {
                warn(diff, message);
            }
        }
    }
    if purge && !outcome.foreign.is_empty() {
        warn(
            diff,
            format!(
                "kept {} rule(s) another tool (fail2ban...) added: {}",
                outcome.foreign.len(),
                outcome.foreign.join(", ")
            ),
        );
    }
}

/// Default policies and the logging level.
fn policy_changes(em: &mut Emitter, section: &Ufw, settings: &Settings, diff: &mut Diff) {
    for (name, desired, current) in [
        ("incoming", section.default.incoming, settings.incoming),
        ("outgoing", section.default.outgoing, settings.outgoing),
        ("routed", section.default.routed, settings.routed),
    ] {
        match desired {
            Some(d) if d != current => {
                let cmd = em.command(["default", d.as_str(), name].map(String::from));
                em.push(
                    format!("default {name} policy"),
                    format!("the default {name} policy is {}", current.as_str()),
                    vec![detail(
                        &format!("default {name}"),
                        Some(current.as_str().into()),
                        Some(DEFAULTS.into()),
                        Some(d.as_str().into()),
                    )],
                    vec![Step::Run(cmd)],
                );
            }
            Some(_) => diff.unchanged += 1,
            None => {}
        }
    }
    match section.logging {
        Some(level) if level != settings.logging => {
            let cmd = em.command(["logging", level.as_str()].map(String::from));
            em.push(
                "logging".into(),
                format!("ufw logs at level {}", settings.logging.as_str()),
                vec![detail(
                    "logging",
                    Some(settings.logging.as_str().into()),
                    Some(UFW_CONF.into()),
                    Some(level.as_str().into()),
                )],
                vec![Step::Run(cmd)],
            );
        }
        Some(_) => diff.unchanged += 1,
        None => {}
    }
}

/// On a live system: `ufw --force enable` last, once the rules are in place (in the rule
/// commands' process when they run as one: ufw then probes the kernel and starts once).
fn enable_change(em: &mut Emitter, section: &Ufw, turn: &Transition, diff: &mut Diff) {
    if !turn.need_enable {
        if section.enabled.is_some() {
            diff.unchanged += 1;
        }
        return;
    }
    let cmd = em
        .rule_command(vec!["--force".to_owned(), "enable".to_owned()])
        .timeout(300);
    let reason = match (turn.conf_enabled, turn.active_now) {
        (true, _) => "ufw.conf says ENABLED=yes but the firewall is not loaded",
        (false, true) => {
            "the firewall is loaded but ufw.conf says ENABLED=no (not started at boot)"
        }
        (false, false) => "ufw is inactive",
    };
    em.push(
        "enabled".into(),
        reason.into(),
        vec![enabled_detail(false, true)],
        vec![Step::Run(cmd)],
    );
}

/// What the operator should know about the live system around the firewall.
fn live_warnings(live: &Live, inputs: &[FamilyInput], want_enabled: bool, diff: &mut Diff) {
    for w in &live.malformed {
        warn(diff, format!("ufw skips a malformed rule: {w}"));
    }
    if live.docker && want_enabled {
        warn(diff, "Docker is installed: ports Docker publishes (`-p`) go through its own iptables chains and bypass ufw's rules; bind them to 127.0.0.1 or use the DOCKER-USER chain".into());
    }
    let limits = |port: u16| {
        inputs.iter().flat_map(|i| &i.wants).any(|w| {
            w.effect.action == rule::Action::Limit
                && w.alts.iter().any(|(proto, ports)| {
                    matches!(proto, Proto::Tcp | Proto::Any) && ports.contains(port)
                })
        })
    };
    let limited: Vec<u16> = live
        .ssh_ports()
        .iter()
        .copied()
        .filter(|p| limits(*p))
        .collect();
    if !limited.is_empty() {
        warn(diff, format!(
            "`limit` on the SSH port ({}) denies an address after 6 connections in 30 seconds: bursts of automation (Ansible, scp loops, CI) trip it; prefer `allow` from their addresses before it",
            ports_text(&limited)
        ));
    }
}

/// Under `--root`: ENABLED is written into ufw.conf. If the image's ufw.conf says yes while
/// ufw commands must run, it says no for their time (ufw would try to update a firewall
/// that is not running there and fail).
fn root_enabled(em: &mut Emitter, section: &Ufw, live: &Live, want_enabled: bool, diff: &mut Diff) {
    let Some((text, attrs)) = live.conf.clone() else {
        if want_enabled && live.installed {
            diff.warnings.push(Warning {
                resource: Ufw::NAME.into(),
                message: format!("{UFW_CONF} is missing in the image; not enabling ufw"),
            });
        }
        return;
    };
    let runs_ufw = !em.changes.is_empty();
    let was = live.settings.enabled;
    if runs_ufw && was {
        let paused = state::set_assignment(&text, "ENABLED", "no");
        let step = Step::WriteFile {
            path: UFW_CONF.into(),
            content: paused,
            attrs,
            before: Some(text.clone()),
        };
        em.changes.insert(
            0,
            Change::new(
                Ufw::NAME,
                UFW_CONF,
                "ufw edits an image's rules only while ENABLED=no (set back below)",
                vec![step],
            ),
        );
    }
    if runs_ufw && was || want_enabled != was {
        let level = section.logging.unwrap_or(live.settings.logging);
        let content = state::set_assignment(
            &state::set_assignment(&text, "ENABLED", if want_enabled { "yes" } else { "no" }),
            "LOGLEVEL",
            level.as_str(),
        );
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
        em.push(
            "enabled".into(),
            if want_enabled == was {
                "restore ENABLED after editing the rules".into()
            } else {
                format!("ufw.conf says ENABLED={}", yes_no(was))
            },
            vec![detail(
                "enabled",
                Some(yes_no(was)),
                Some(UFW_CONF.into()),
                Some(yes_no(want_enabled)),
            )],
            vec![Step::WriteFile {
                path: UFW_CONF.into(),
                content,
                attrs,
                before: Some(text),
            }],
        );
    } else if section.enabled.is_some() {
        diff.unchanged += 1;
    }
}

/// Attaches what a rollback must run once the state files are restored.
fn rollback(changes: &mut [Change], live: &Live, is_live: bool, active_now: bool) {
    undo(changes, live, is_live, active_now);
    if is_live {
        if let Some(first) = changes.first_mut() {
            first.on_rollback.push(caps_test_cleanup());
        }
    }
}

/// ufw probes the kernel's netfilter features in a scratch chain named `ufw-caps-test` or
/// `ufw6-caps-test` plus a random suffix, and deletes it afterwards. A ufw killed between
/// the two (an interrupted apply) leaves the chain behind; the rollback removes it, so the
/// firewall is the one from before the apply.
fn caps_test_cleanup() -> Command {
    const SCRIPT: &str = r#"for t in iptables ip6tables; do
  command -v "$t" >/dev/null 2>&1 || continue
  for c in $("$t" -w 5 -S 2>/dev/null | sed -n 's/^-N \(ufw6\{0,1\}-caps-test[a-z0-9_]*\)$/\1/p'); do
    "$t" -w 5 -F "$c" && "$t" -w 5 -X "$c" || exit 1
  done
done"#;
    Command::new(["sh", "-c", SCRIPT]).timeout(60)
}

fn undo(changes: &mut [Change], live: &Live, is_live: bool, active_now: bool) {
    if !is_live {
        // Under --root nothing was loaded; the snapshot restores the image's files. A
        // package installed by this plan is removed again.
        if !live.installed {
            if let Some(install) = changes.first_mut() {
                install.on_rollback = vec![steps::apt_purge(&["ufw"])];
            }
        }
        return;
    }
    // Where the firewall was not loaded before, a ufw chain in either family (but ufw's
    // scratch chain, see `caps_test_cleanup`) means this plan's enable ran, perhaps halfway
    // (one family loaded, the other failed): stop it then, and only then, or default
    // policies another tool set would be reset to ACCEPT.
    let init = live.init.display();
    let stop_if_started = format!(
        "for t in iptables ip6tables; do if command -v $t >/dev/null 2>&1 && $t -w 5 -S 2>/dev/null | grep -v -e -caps-test | grep -q '^-N ufw6\\{{0,1\\}}-'; then exec {init} force-stop; fi; done"
    );
    let stop_if_started = Command::new(["sh", "-c", stop_if_started.as_str()]).timeout(120);
    if !live.installed {
        // Then remove the package again. One command each, in this order, on the install
        // change: the purge removes ufw-init.
        if let Some(install) = changes.first_mut() {
            install.on_rollback = vec![stop_if_started, steps::apt_purge(&["ufw"])];
        }
        return;
    }
    if active_now {
        // Changes run in order, so the first one has run whenever any has: one reload.
        if let Some(first) = changes.first_mut() {
            first.on_rollback = vec![Command::new(["ufw", "reload"]).timeout(300)];
        }
    } else if let Some(enable) = changes.iter_mut().find(|c| c.target == "enabled") {
        // Run in one batch with the rule commands, the enable counts as begun even when
        // the batch failed before it.
        enable.on_rollback = vec![stop_if_started];
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
