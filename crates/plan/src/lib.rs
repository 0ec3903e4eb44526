//! The plan: what `harden` would change on a host, as plain data.
//!
//! The planner is the only producer of a [`Plan`]; the executor and the renderers are its
//! only consumers. Keeping it a passive, serialisable value is what makes plans honest:
//! `harden plan` prints exactly the value that `harden apply` executes, and
//! `--format json` is this type serialised (schema documented in `README.md`).
//!
//! A plan is an ordered list of [`Change`]s. Each change belongs to one resource, says why
//! it exists, and carries the primitive [`Step`]s that make it happen. The executor knows
//! nothing about sshd or ufw: it understands only these steps.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Version of the JSON schema of [`Plan`]; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run would do, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
pub struct Plan {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The system root the plan was made for (`/` unless `--root`).
    pub root: PathBuf,
    /// Playbooks the plan was made from, in merge order (`<baseline>` for the built-in one).
    pub playbooks: Vec<String>,
    /// Changes to make, in order.
    pub changes: Vec<Change>,
    /// Number of managed items already in the desired state.
    pub unchanged: u64,
    /// Things the operator should know that do not stop the plan.
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// An empty plan for `root`.
    pub fn new(root: PathBuf, playbooks: Vec<String>) -> Self {
        Plan {
            schema: SCHEMA_VERSION,
            root,
            playbooks,
            ..Plan::default()
        }
    }

    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Every step of every change, in execution order, with the index of its change.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.changes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.steps.iter().map(move |s| (i, s)))
    }

    /// Every unit a step changes, sorted and unique; the snapshot saves their state.
    pub fn touched_units(&self) -> Vec<&str> {
        let mut units: Vec<&str> = self
            .steps()
            .filter_map(|(_, s)| match s {
                Step::Unit(u) => Some(u.unit.as_str()),
                _ => None,
            })
            .collect();
        units.sort_unstable();
        units.dedup();
        units
    }

    /// Every tree step, in execution order.
    pub fn trees(&self) -> impl Iterator<Item = &TreeStep> {
        self.steps().filter_map(|(_, s)| match s {
            Step::SetTreeAttrs(tree) => Some(tree),
            _ => None,
        })
    }

    /// Every path a step may modify; the snapshot must hold all of them.
    pub fn touched_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .steps()
            .flat_map(|(_, s)| s.touched_paths())
            .cloned()
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

/// One change to one managed item, and the steps that make it.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The resource that asked for it: `files`, `sshd`, `ufw`, ...
    pub resource: String,
    /// What is changed, for people: a path, a directive, a rule.
    pub target: String,
    /// Why, for people only; the executor never reads it.
    pub reason: String,
    /// Current and desired values the change is about, for display.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
    /// The primitive operations, in order.
    pub steps: Vec<Step>,
    /// Commands that make the system take up the restored files again after a rollback
    /// (for example `ufw reload`, or reloading sshd). They run only when this change was
    /// *activated*: one of its [`Step::Run`], [`Step::Reload`] or [`Step::Unit`] steps had
    /// started, so a daemon that never saw the new configuration is never disturbed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_rollback: Vec<Command>,
    /// The daemon's own checkers (`sshd -t`, `fail2ban-client -t`), run on the restored
    /// configuration before `on_rollback`: when one rejects it (a foreign file another tool
    /// broke), the rollback leaves the running daemon alone and says so, rather than
    /// reloading it onto a configuration that would make it exit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_checks: Vec<Command>,
}

impl Change {
    /// A change made by `steps` alone: no details to show, nothing to run on rollback but
    /// the snapshot's restore.
    pub fn new(
        resource: impl Into<String>,
        target: impl Into<String>,
        reason: impl Into<String>,
        steps: Vec<Step>,
    ) -> Change {
        Change {
            resource: resource.into(),
            target: target.into(),
            reason: reason.into(),
            details: Vec::new(),
            steps,
            on_rollback: Vec::new(),
            rollback_checks: Vec::new(),
        }
    }

    /// The same change, showing `details`.
    pub fn with_details(mut self, details: Vec<Detail>) -> Change {
        self.details = details;
        self
    }

    /// True when `step` makes the system take up a change (a command, a reload, a unit
    /// operation), as opposed to writing files or checking them.
    pub fn activates(step: &Step) -> bool {
        matches!(step, Step::Run(_) | Step::Reload { .. } | Step::Unit(_))
    }
}

/// One value a change is about: where it stands now, where it comes from, what it becomes.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// Name of the value (`PasswordAuthentication`, `mode`).
    pub name: String,
    /// Current value, or `None` when unset.
    pub current: Option<String>,
    /// Where the current value comes from (`/etc/ssh/sshd_config.d/50-cloud-init.conf:1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Desired value, or `None` when it is to be removed.
    pub desired: Option<String>,
}

/// Ownership and permission bits of a file, numerically.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attrs {
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

impl Attrs {
    /// `mode`, owned by root:root.
    pub const fn root(mode: u32) -> Attrs {
        Attrs {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// A primitive operation. Paths are absolute paths on the managed system (inside `root`).
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Replace (or create) a regular file atomically with `content` and `attrs`.
    WriteFile {
        /// File to write.
        path: PathBuf,
        /// Full new content.
        content: String,
        /// Mode and owner the file has from the moment it appears.
        attrs: Attrs,
        /// Content before the change (`None` when the file does not exist), for diffs.
        before: Option<String>,
    },
    /// Change mode and/or owner of an existing file, directory or socket.
    SetAttrs {
        /// Path to change; never followed if it is a symlink.
        path: PathBuf,
        /// Attributes before.
        from: Attrs,
        /// Attributes after.
        to: Attrs,
    },
    /// Create a directory (parents must exist).
    CreateDir {
        /// Directory to create.
        path: PathBuf,
        /// Its mode and owner.
        attrs: Attrs,
    },
    /// Create an empty regular file when nothing is at `path` (its parent must exist). A
    /// file that is there by the time the step runs is left exactly as it is: this step
    /// never truncates.
    CreateFile {
        /// File to create.
        path: PathBuf,
        /// Its mode and owner from the moment it appears.
        attrs: Attrs,
    },
    /// Remove a file.
    RemoveFile {
        /// File to remove.
        path: PathBuf,
        /// Content before, for diffs.
        before: Option<String>,
    },
    /// Run a command that changes the system.
    Run(Command),
    /// Run a checker; a non-zero exit fails the run, which then rolls back.
    Validate(Command),
    /// Make a running service take up its new configuration. Skipped under `--root`.
    Reload {
        /// Service name, for display.
        service: String,
        /// The command that reloads it.
        command: Command,
    },
    /// Set a systemd unit's enablement and/or run state through `systemctl`. Its state
    /// before the apply is saved in the snapshot and restored by rollback; the symlinks that
    /// record enablement are systemd's and never touched by harden's file code.
    Unit(UnitStep),
    /// Give keys of a dotenv file their values, editing only those keys' lines, and write
    /// the file atomically with `attrs`. The executor reads the file and draws generated
    /// values itself at apply time, so the plan (printed, serialised, saved) carries no
    /// file content and no secret, old or new.
    EditEnv {
        /// The dotenv file.
        path: PathBuf,
        /// Mode and owner the file has from the moment it is written.
        attrs: Attrs,
        /// Whether the file may be created when it is missing.
        create: bool,
        /// The keys to set, in order.
        edits: Vec<EnvEdit>,
    },
    /// Give every entry below a directory the attributes `rule` computes from its own,
    /// in one walk: the plan holds counts, a digest and a few examples, never the entries.
    SetTreeAttrs(TreeStep),
}

/// A recursive entry's tree: what [`Step::SetTreeAttrs`] changes below `root` and what the
/// plan found there.
///
/// The walk never follows a symlink and never leaves `root`'s filesystem (a mount point
/// below it is neither changed nor entered); symlinks and regular files with more than one
/// hard link are never changed ([`TreeStep::target`]).
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeStep {
    /// The directory; itself is not part of the step (its own change is a `set_attrs`).
    pub root: PathBuf,
    /// The attributes each entry gets.
    pub rule: TreeRule,
    /// Paths below `root` that deeper playbook entries manage, left to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<TreeSkip>,
    /// Entries found below `root` when planning (skipped ones not counted).
    pub entries: u64,
    /// How many of them change.
    pub changes: u64,
    /// Hex sha256 of every entry found (relative path, kind and attributes) in walk order:
    /// a saved plan is stale when the tree no longer hashes to it.
    pub digest: String,
    /// A few of the entries that change, for display.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<TreeExample>,
}

/// `1,000,101`: a count with its thousands grouped, as the plan's texts show counts.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A path below a tree's root that the tree leaves alone.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSkip {
    /// The path (absolute).
    pub path: PathBuf,
    /// Whether everything below it is left alone too (its entry recurses).
    pub below: bool,
}

/// One entry of a tree that changes, for display.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeExample {
    /// The path.
    pub path: PathBuf,
    /// Attributes before.
    pub from: Attrs,
    /// Attributes after.
    pub to: Attrs,
}

/// The attributes a tree's entries get: a mode computed from each entry's own, and owner
/// and group when given.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeRule {
    /// The mode, when the entry sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ModeRule>,
    /// Owner uid, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group gid, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl TreeRule {
    /// The attributes `found` gets, or `None` when it is left as it is: a symlink, a mount
    /// point, a hard-linked file, or an entry already right.
    pub fn target(&self, found: &TreeFound) -> Option<Attrs> {
        match found.kind {
            TreeKind::Symlink | TreeKind::Mount => None,
            TreeKind::File if found.hardlinked => None,
            kind => {
                let to = self.apply(found.attrs, kind == TreeKind::Dir);
                (to != found.attrs).then_some(to)
            }
        }
    }

    /// The attributes an entry that is `is_dir` and has `from` now gets.
    pub fn apply(&self, from: Attrs, is_dir: bool) -> Attrs {
        Attrs {
            mode: self
                .mode
                .as_ref()
                .map_or(from.mode, |m| m.apply(from.mode, is_dir)),
            uid: self.uid.unwrap_or(from.uid),
            gid: self.gid.unwrap_or(from.gid),
        }
    }
}

/// What a tree's walk meets: enough of an entry to decide whether it changes. Ordered by
/// kind, then attributes, for a stable order of a plan's examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreeFound {
    /// Regular file, directory or anything else that may change.
    pub kind: TreeKind,
    /// Its attributes.
    pub attrs: Attrs,
    /// A regular file with more than one hard link: it may be a file outside the tree.
    pub hardlinked: bool,
}

/// The kinds of entry a tree's walk tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A socket, FIFO or device: its attributes change, it is never opened.
    Special,
    /// A symbolic link: never changed, never followed.
    Symlink,
    /// A mount point of another filesystem: never changed, never entered.
    Mount,
}

impl TreeStep {
    /// The attributes `found` gets, or `None` when it is left as it is: a symlink, a mount
    /// point, a hard-linked file, or an entry already right.
    pub fn target(&self, found: &TreeFound) -> Option<Attrs> {
        self.rule.target(found)
    }

    /// True when the tree leaves `path` (absolute, below the root) to a deeper entry.
    pub fn skips(&self, path: &std::path::Path) -> bool {
        self.skip
            .iter()
            .any(|s| path == s.path || s.below && path.starts_with(&s.path))
    }
}

/// A mode as `chmod` applies it: exact bits, or clauses applied in order to the current
/// mode (`u=rwX,g=rX,o=`).
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeRule {
    /// Exactly these bits (`0o7777` mask).
    Exact(u32),
    /// Clauses applied in order, as `chmod` does.
    Clauses(Vec<ModeClause>),
}

impl ModeRule {
    /// The mode an entry with `current` bits ends up with.
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            ModeRule::Exact(bits) => *bits,
            ModeRule::Clauses(clauses) => clauses
                .iter()
                .fold(current & 0o7777, |mode, c| c.apply(mode, is_dir)),
        }
    }
}

/// One `who op perms` clause of a symbolic mode.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeClause {
    /// The bits of the classes it names (`u` is `0o4700`, `a` is `0o7777`).
    pub who: u32,
    /// `+`, `-` or `=`.
    pub op: ModeOp,
    /// The bits its permissions name for every class (`r` is `0o444`, `s` is `0o6000`).
    pub perms: u32,
    /// `X`: search for directories, execute only where someone may already execute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub search: bool,
}

/// The operator of a [`ModeClause`].
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeOp {
    /// `+`.
    Add,
    /// `-`.
    Remove,
    /// `=`.
    Set,
}

impl ModeClause {
    /// The mode after this clause, from `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let search = self.search && (is_dir || mode & 0o111 != 0);
        let bits = (self.perms | if search { 0o111 } else { 0 }) & self.who;
        match self.op {
            ModeOp::Add => mode | bits,
            ModeOp::Remove => mode & !bits,
            // `=` clears the who-bits it names (but not setuid/setgid on directories, as
            // chmod does, unless it names `s`).
            ModeOp::Set => {
                let keep = if is_dir {
                    0o6000 & !(self.perms & 0o6000)
                } else {
                    0
                };
                (mode & !(self.who & !keep)) | bits
            }
        }
    }
}

/// One key of a dotenv file and the value it gets.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvEdit {
    /// The key.
    pub key: String,
    /// Its new value.
    pub value: EnvValue,
}

/// A dotenv value to write.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValue {
    /// This value, from the playbook (never for keys declared secret).
    Literal(String),
    /// A new random value from the operating system's cryptographic random source.
    Generate(Generate),
}

/// How a secret is generated: `bytes` random bytes written in `alphabet`, as Python's
/// `secrets.token_hex` and `token_urlsafe` do.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generate {
    /// How the bytes are written.
    pub alphabet: Alphabet,
    /// How many random bytes.
    pub bytes: u32,
}

impl Generate {
    /// How many characters the written value has.
    pub fn characters(&self) -> usize {
        let bytes = self.bytes as usize;
        match self.alphabet {
            Alphabet::Hex => bytes * 2,
            // Unpadded base64: 4 characters per 3 bytes, rounded up.
            Alphabet::Urlsafe => (bytes * 4).div_ceil(3),
        }
    }

    /// `64 hex characters`.
    pub fn describe(&self) -> String {
        let alphabet = match self.alphabet {
            Alphabet::Hex => "hex",
            Alphabet::Urlsafe => "URL-safe base64",
        };
        format!("{} {alphabet} characters", self.characters())
    }
}

/// The characters a generated value is written in.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// Lower-case hexadecimal, two characters per byte.
    Hex,
    /// Unpadded URL-safe base64 (`A-Z a-z 0-9 - _`).
    Urlsafe,
}

/// A unit's enablement, as `systemctl is-enabled` names it.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enablement {
    /// `systemctl enable` (after `unmask` when masked).
    Enabled,
    /// `systemctl disable`.
    Disabled,
    /// `systemctl mask`.
    Masked,
}

impl Enablement {
    /// The word `systemctl is-enabled` prints for it.
    pub fn word(self) -> &'static str {
        match self {
            Enablement::Enabled => "enabled",
            Enablement::Disabled => "disabled",
            Enablement::Masked => "masked",
        }
    }

    /// The enablement `systemctl is-enabled` reports as `word`, for the states harden can
    /// set; `None` for the others (static, alias, generated, not-found...).
    pub fn from_word(word: &str) -> Option<Enablement> {
        match word {
            "enabled" => Some(Enablement::Enabled),
            "disabled" => Some(Enablement::Disabled),
            "masked" => Some(Enablement::Masked),
            _ => None,
        }
    }
}

/// What to do to a unit's run state. Only on a system booted with systemd: skipped in a
/// chroot, in a container without init, and under `--root`.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitAction {
    /// `systemctl start`.
    Start,
    /// `systemctl stop`.
    Stop,
    /// `systemctl restart`.
    Restart,
    /// `systemctl reload`.
    Reload,
    /// `systemctl try-reload-or-restart`: only if it runs.
    TryReloadOrRestart,
}

impl UnitAction {
    /// The `systemctl` verb.
    pub fn verb(self) -> &'static str {
        match self {
            UnitAction::Start => "start",
            UnitAction::Stop => "stop",
            UnitAction::Restart => "restart",
            UnitAction::Reload => "reload",
            UnitAction::TryReloadOrRestart => "try-reload-or-restart",
        }
    }
}

/// A unit's state in `systemctl`'s words: `is-enabled` and `is-active`.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// `enabled`, `disabled`, `masked`, `static`, `not-found`...
    pub enablement: String,
    /// `active`, `inactive`, `failed`, `activating`... (`unknown` without systemd).
    pub active: String,
}

/// One operation on one systemd unit.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStep {
    /// Full unit name (`fail2ban.service`, `apt-daily.timer`).
    pub unit: String,
    /// Enablement to set, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enablement: Option<Enablement>,
    /// Run state to reach, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<UnitAction>,
    /// The state seen when planning, for display.
    pub before: UnitState,
    /// Seconds each `systemctl` call may take.
    pub timeout_secs: u64,
}

impl UnitStep {
    /// The state after the step, in `systemctl`'s words, for display.
    pub fn after(&self) -> UnitState {
        let enablement = self
            .enablement
            .map_or_else(|| self.before.enablement.clone(), |e| e.word().to_owned());
        let active = match self.action {
            None => self.before.active.clone(),
            Some(UnitAction::Stop) => "inactive".into(),
            Some(UnitAction::TryReloadOrRestart) if self.before.active != "active" => {
                self.before.active.clone()
            }
            Some(_) => "active".into(),
        };
        UnitState { enablement, active }
    }

    /// `fail2ban.service: enabled, failed -> enabled, active`.
    pub fn summary(&self) -> String {
        let after = self.after();
        format!(
            "{}: {}, {} -> {}, {}",
            self.unit, self.before.enablement, self.before.active, after.enablement, after.active
        )
    }

    /// The `systemctl` commands that set the enablement, in order.
    pub fn enable_commands(&self) -> Vec<Command> {
        let Some(enablement) = self.enablement else {
            return Vec::new();
        };
        let systemctl = |verb: &str| {
            Command::new(["systemctl", verb, self.unit.as_str()]).timeout(self.timeout_secs)
        };
        let mut commands = Vec::new();
        if self.before.enablement == "masked" && enablement != Enablement::Masked {
            commands.push(systemctl("unmask"));
        }
        commands.push(match enablement {
            Enablement::Enabled => systemctl("enable"),
            Enablement::Disabled => systemctl("disable"),
            Enablement::Masked => systemctl("mask"),
        });
        commands
    }

    /// The `systemctl` command that reaches the run state, if any.
    pub fn action_command(&self) -> Option<Command> {
        self.action.map(|a| {
            Command::new(["systemctl", a.verb(), self.unit.as_str()]).timeout(self.timeout_secs)
        })
    }
}

impl Step {
    /// Paths this step may modify.
    pub fn touched_paths(&self) -> Vec<&PathBuf> {
        match self {
            Step::WriteFile { path, .. }
            | Step::SetAttrs { path, .. }
            | Step::CreateDir { path, .. }
            | Step::CreateFile { path, .. }
            | Step::RemoveFile { path, .. }
            | Step::EditEnv { path, .. } => vec![path],
            Step::Run(cmd) => cmd.touches.iter().collect(),
            // A tree's entries are saved one by one as its walk changes them.
            Step::Validate(_) | Step::Reload { .. } | Step::Unit(_) | Step::SetTreeAttrs(_) => {
                Vec::new()
            }
        }
    }

    /// The command of a [`Step::Run`] that may run in a batch (see [`Batch`]).
    pub fn batchable(&self) -> Option<&Command> {
        match self {
            Step::Run(command) if command.batch.is_some() => Some(command),
            _ => None,
        }
    }

    /// True for steps that change the system (everything but validation).
    pub fn mutates(&self) -> bool {
        !matches!(self, Step::Validate(_))
    }
}

/// An external command. It runs without a shell, chrooted under `--root`, with a timeout.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Seconds before the command is killed and counted as failed.
    pub timeout_secs: u64,
    /// Files the command may modify; the snapshot holds them so rollback can restore them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touches: Vec<PathBuf>,
    /// How this command may run together with the ones next to it, in one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

impl Batch {
    /// One command running every command of a batch: the runner, then each command's
    /// arguments prefixed with their count; as long as they would take one after the other,
    /// touching what any of them touches. Commands without a batch are left out.
    pub fn join(commands: &[&Command]) -> Command {
        let mut argv = Vec::new();
        let mut touches: Vec<PathBuf> = Vec::new();
        let mut timeout = 0;
        for command in commands {
            let Some(batch) = &command.batch else {
                continue;
            };
            if argv.is_empty() {
                argv.extend(batch.runner.iter().cloned());
            }
            argv.push(batch.args.len().to_string());
            argv.extend(batch.args.iter().cloned());
            touches.extend(command.touches.iter().cloned());
            timeout += command.timeout_secs;
        }
        touches.sort();
        touches.dedup();
        Command::new(argv).timeout(timeout).touching(touches)
    }
}

/// The steps at the start of `steps` that the executor runs as one batch: consecutive
/// batchable runs with the same runner (just the first step when it is not batchable).
pub fn batch_at<'s, 'p>(steps: &'s [(usize, &'p Step)]) -> &'s [(usize, &'p Step)] {
    let runner = |step: &'p Step| {
        step.batchable()
            .and_then(|c| c.batch.as_ref())
            .map(|b| &b.runner)
    };
    let Some(first) = steps.first().and_then(|(_, s)| runner(s)) else {
        return &steps[..steps.len().min(1)];
    };
    let len = steps
        .iter()
        .take_while(|(_, s)| runner(s) == Some(first))
        .count();
    &steps[..len]
}

/// A command that a runner can execute together with others: consecutive [`Step::Run`] steps
/// whose `runner` is the same run as one process, `runner` followed by each command's
/// `args` prefixed with their count (`runner 2 allow 22/tcp 2 deny 23`). The runner executes
/// them in order with the daemon's own code and stops at the first failure, so the batch
/// leaves what the commands run one by one would leave, without a process per command.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The program that runs a batch, with its leading arguments.
    pub runner: Vec<String>,
    /// This command's arguments as the runner takes them.
    pub args: Vec<String>,
}

impl Command {
    /// A command with the default timeout of 60 seconds and no touched files.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            timeout_secs: 60,
            touches: Vec::new(),
            batch: None,
        }
    }

    /// Same command with another timeout.
    pub fn timeout(mut self, secs: u64) -> Self {
        self.timeout_secs = secs;
        self
    }

    /// Same command, declaring files it modifies.
    pub fn touching<I: IntoIterator<Item = PathBuf>>(mut self, paths: I) -> Self {
        self.touches.extend(paths);
        self
    }

    /// Same command, runnable in a batch by `runner` with `args`.
    pub fn batched(mut self, runner: Vec<String>, args: Vec<String>) -> Self {
        self.batch = Some(Batch { runner, args });
        self
    }

    /// The command line as a person would type it.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| {
                if a.is_empty()
                    || a.contains(|c: char| c.is_whitespace() || "'\"$`\\|&;<>()*?".contains(c))
                {
                    format!("'{}'", a.replace('\'', r"'\''"))
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A note for the operator attached to a resource.
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Resource that raised it.
    pub resource: String,
    /// What the operator should know.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batched(args: &[&str], runner: &str) -> Step {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Step::Run(
            Command::new(std::iter::once("tool".to_owned()).chain(args.clone()))
                .timeout(10)
                .touching([PathBuf::from(format!("/etc/{}", args[0]))])
                .batched(vec![runner.to_owned(), "-c".to_owned()], args),
        )
    }

    #[test]
    fn consecutive_runs_of_one_runner_form_a_batch_and_anything_else_ends_it() {
        let steps = [
            batched(&["a", "1"], "py"),
            batched(&["b"], "py"),
            batched(&["a", "2"], "py"),
            batched(&["c"], "other"),
            Step::Run(Command::new(["plain"])),
            batched(&["d"], "py"),
        ];
        let indexed: Vec<(usize, &Step)> = steps.iter().enumerate().collect();
        let lens: Vec<usize> = {
            let mut at = 0;
            let mut lens = Vec::new();
            while at < indexed.len() {
                let len = batch_at(&indexed[at..]).len();
                lens.push(len);
                at += len;
            }
            lens
        };
        assert_eq!(lens, [3, 1, 1, 1]);
        let commands: Vec<&Command> = steps[..3].iter().filter_map(Step::batchable).collect();
        let joined = Batch::join(&commands);
        assert_eq!(
            joined.argv,
            ["py", "-c", "2", "a", "1", "1", "b", "2", "a", "2"]
        );
        assert_eq!(joined.timeout_secs, 30);
        assert_eq!(
            joined.touches,
            [PathBuf::from("/etc/a"), PathBuf::from("/etc/b")]
        );
        assert_eq!(joined.batch, None);
    }

    fn attrs(mode: u32) -> Attrs {
        Attrs {
            mode,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn touched_paths_are_sorted_and_unique() {
        let mut plan = Plan::new("/".into(), vec![]);
        plan.changes.push(Change {
            resource: "files".into(),
            target: "/b".into(),
            reason: "mode".into(),
            details: vec![],
            steps: vec![
                Step::SetAttrs {
                    path: "/b".into(),
                    from: attrs(0o644),
                    to: attrs(0o600),
                },
                Step::Run(Command::new(["true"]).touching(["/a".into(), "/b".into()])),
                Step::Validate(Command::new(["true"]).touching(["/ignored".into()])),
            ],
            on_rollback: vec![],
            rollback_checks: Vec::new(),
        });
        let paths = plan.touched_paths();
        assert_eq!(paths, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn json_round_trip_keeps_tagged_steps() {
        let step = Step::Reload {
            service: "ssh".into(),
            command: Command::new(["systemctl", "reload", "ssh"]),
        };
        let json = serde_json::to_string(&step).expect("serialise");
        assert!(json.contains(r#""op":"reload""#), "{json}");
        let back: Step = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, step);
    }

    /// The JSON schema in `plan.schema.json` documents `harden plan --format json`; it is
    /// generated from these types. `UPDATE_SCHEMA=1 cargo test -p harden-plan` rewrites it.
    #[test]
    fn the_committed_schema_is_current() {
        let schema = schemars::schema_for!(Plan);
        let text = serde_json::to_string_pretty(&schema).expect("schema") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plan.schema.json");
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            #[allow(clippy::disallowed_methods)] // a development file, not the managed system
            std::fs::write(path, &text).expect("write schema");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == text,
            "plan.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p harden-plan"
        );
    }

    #[test]
    fn an_env_edit_names_keys_and_how_values_are_made_never_the_values() {
        let step = Step::EditEnv {
            path: "/opt/app/.env".into(),
            attrs: attrs(0o600),
            create: true,
            edits: vec![
                EnvEdit {
                    key: "JWT_SECRET".into(),
                    value: EnvValue::Generate(Generate {
                        alphabet: Alphabet::Hex,
                        bytes: 32,
                    }),
                },
                EnvEdit {
                    key: "DEBUG".into(),
                    value: EnvValue::Literal("false".into()),
                },
            ],
        };
        let json = serde_json::to_string(&step).expect("serialise");
        assert_eq!(
            json,
            r#"{"op":"edit_env","path":"/opt/app/.env","attrs":{"mode":384,"uid":0,"gid":0},"create":true,"edits":[{"key":"JWT_SECRET","value":{"generate":{"alphabet":"hex","bytes":32}}},{"key":"DEBUG","value":{"literal":"false"}}]}"#
        );
        assert_eq!(serde_json::from_str::<Step>(&json).expect("parse"), step);
        assert_eq!(step.touched_paths(), vec![&PathBuf::from("/opt/app/.env")]);
    }

    #[test]
    fn generated_lengths_are_those_of_python_s_secrets_module() {
        let of = |alphabet, bytes| Generate { alphabet, bytes }.characters();
        assert_eq!(of(Alphabet::Hex, 32), 64);
        assert_eq!(of(Alphabet::Urlsafe, 32), 43);
        assert_eq!(of(Alphabet::Urlsafe, 30), 40);
        assert_eq!(
            Generate {
                alphabet: Alphabet::Hex,
                bytes: 32
            }
            .describe(),
            "64 hex characters"
        );
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let cmd = Command::new(["ufw", "allow", "from 1.2.3.4", "it's"]);
        assert_eq!(cmd.display(), r#"ufw allow 'from 1.2.3.4' 'it'\''s'"#);
    }
}
