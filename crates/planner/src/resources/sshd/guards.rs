//! Lockout guards: would the planned configuration still let an administrator in?
//!
//! An account *can log in with a key* when it has a login shell, is not expired, is not
//! refused for a locked password (`UsePAM no` and `!` in `/etc/shadow`), is allowed by
//! `PermitRootLogin` (uid 0) and by `AllowUsers`/`AllowGroups`/`DenyUsers`/`DenyGroups`,
//! `PubkeyAuthentication` is on, `AuthenticationMethods` can be met with a key, and one of
//! its `AuthorizedKeysFile`s (with `%h`, `%u`, `%U`, `%%`) holds a key sshd would accept
//! (not only `command=` keys, a type `PubkeyAcceptedAlgorithms` allows, and, with
//! `StrictModes yes`, files and directories owned by root or the account and writable by no
//! one else). Settings are evaluated per account, `Match User`/`Group` blocks included;
//! blocks that depend on the client's address are taken not to apply.
//!
//! A guard fires when the plan takes away the last key login (each account that loses it
//! names the guard for its reason), or when it disables password and keyboard-interactive
//! login while no account can log in with a key. A state that was already locked out and
//! that the plan does not change is reported as a warning, not refused: refusing would not
//! protect anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harden_host::{Account, Kind, Stat, UserDb};

use super::config::{Config, Conn};
use super::keywords::{self, Keyword};
use super::probe::Dump;
use crate::guard::Guard;

/// Passwords off while no account has a usable key.
pub(crate) const NO_KEYED_LOGIN: &str = "sshd-no-keyed-login";
/// `PermitRootLogin` refusing root, the only account with a usable key.
pub(crate) const ROOT_ONLY_KEYED: &str = "sshd-root-only-keyed";
/// Allow/Deny lists excluding every account with a usable key.
pub(crate) const ALLOWUSERS: &str = "sshd-allowusers";
/// A new port the active firewall does not let in.
pub(crate) const PORT_FIREWALL: &str = "sshd-port-firewall";
/// Keys sshd would ignore because of file modes or owners.
pub(crate) const STRICTMODES: &str = "sshd-strictmodes";
/// `UsePAM no` refusing accounts whose password is locked.
pub(crate) const LOCKED_ACCOUNT: &str = "sshd-locked-account";
/// A key login that gets no shell: a `ForceCommand` that runs something else, a
/// `ChrootDirectory` that does not exist or holds no shell.
pub(crate) const NO_SESSION: &str = "sshd-no-session";

/// The guards, with what each refuses, for `--allow` and the README.
pub(crate) const REGISTRY: [Guard; 7] = [
    Guard {
        name: NO_KEYED_LOGIN,
        resource: "sshd",
        help: "passwords off while no login-capable account keeps a usable key",
    },
    Guard {
        name: ROOT_ONLY_KEYED,
        resource: "sshd",
        help: "PermitRootLogin refusing root, the only account with a usable key",
    },
    Guard {
        name: ALLOWUSERS,
        resource: "sshd",
        help: "Allow/Deny lists excluding every account with a usable key",
    },
    Guard {
        name: PORT_FIREWALL,
        resource: "sshd",
        help: "a new port the active firewall does not let in",
    },
    Guard {
        name: STRICTMODES,
        resource: "sshd",
        help: "the only keys are ones StrictModes makes sshd ignore",
    },
    Guard {
        name: LOCKED_ACCOUNT,
        resource: "sshd",
        help: "UsePAM no while every keyed account has a locked password",
    },
    Guard {
        name: NO_SESSION,
        resource: "sshd",
        help: "ForceCommand or ChrootDirectory leaving keyed accounts no shell",
    },
];

/// What the guards judge a plan with, besides the configurations.
pub(crate) struct Evidence<'a> {
    /// Authorized keys files found, by path.
    pub files: &'a BTreeMap<PathBuf, KeyFile>,
    /// sshd's own answer (`sshd -T -C user=...` with the candidate configuration) for each
    /// keyed account it was asked about: where present, it replaces harden's reading of the
    /// candidate, so `Match` blocks, `ForceCommand` and `ChrootDirectory` are sshd's.
    pub answers: &'a BTreeMap<String, Dump>,
    /// Whether paths a session depends on exist (chroot directories, the shell inside them,
    /// forced commands).
    pub exists: &'a BTreeMap<PathBuf, bool>,
}

/// What the probe learnt about an account with a login shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccountFacts {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell.
    pub shell: PathBuf,
    /// Its groups.
    pub groups: Vec<String>,
    /// Password field starts with `!`.
    pub locked: bool,
    /// The account's expiry date has passed.
    pub expired: bool,
}

/// An authorized keys file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyFile {
    /// The keys in it.
    pub keys: Vec<KeyLine>,
    /// The file and the directories above it that StrictModes checks.
    pub chain: Vec<Link>,
}

/// One path StrictModes checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    /// The path.
    pub path: PathBuf,
    /// Its status; `None` when it could not be read.
    pub stat: Option<Stat>,
    /// Whether Debian's sshd tolerates it being group-writable.
    pub group_write: GroupWrite,
}

/// Debian and Ubuntu patch sshd (`user-group-modes`) to accept a group-writable file or
/// directory when its group has exactly one member, the user: this records whether the
/// path's group is such a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupWrite {
    /// Group write makes sshd refuse the path.
    Refused,
    /// Tolerated for any user (the group's only member is the file's owner).
    Tolerated,
    /// Tolerated only when the user logging in has this uid.
    OnlyFor(u32),
}

impl Link {
    /// A path whose group-write bit is judged with [`group_write`].
    pub(crate) fn new(path: PathBuf, stat: Option<Stat>, users: &UserDb) -> Self {
        let group_write = match stat {
            Some(s) if s.mode & 0o020 != 0 => group_write(users, s.gid, s.uid),
            _ => GroupWrite::Refused,
        };
        Link {
            path,
            stat,
            group_write,
        }
    }
}

/// Debian's `secure_permissions` for a group-writable path owned by `owner` with group `gid`:
/// every account whose primary group it is must be the user, and a supplementary member list,
/// if any, must be exactly the owner; at least one member in all.
pub(crate) fn group_write(users: &UserDb, gid: u32, owner: u32) -> GroupWrite {
    let Some(group) = users.groups().iter().find(|g| g.gid == gid) else {
        return GroupWrite::Refused;
    };
    let primary: Vec<u32> = users
        .accounts()
        .iter()
        .filter(|a| a.gid == gid)
        .map(|a| a.uid)
        .collect();
    let mut members = primary.len();
    if !group.members.is_empty() {
        members += 1;
        let owner_name = users.user_name(owner);
        if group.members.len() > 1 || owner_name.as_deref() != Some(group.members[0].as_str()) {
            return GroupWrite::Refused;
        }
    }
    if members == 0 {
        return GroupWrite::Refused;
    }
    match primary.first() {
        None => GroupWrite::Tolerated,
        Some(&uid) if primary.iter().all(|u| *u == uid) => GroupWrite::OnlyFor(uid),
        Some(_) => GroupWrite::Refused,
    }
}

/// One key line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyLine {
    /// Key type (`ssh-ed25519`).
    pub kind: String,
    /// It carries `command=`: it runs one command, not a login.
    pub forced_command: bool,
    /// Its `expiry-time` has passed: sshd refuses it.
    pub expired: bool,
}

/// The facts about `account` from its passwd entry and `/etc/shadow`.
pub(crate) fn account_facts(
    account: &Account,
    groups: Vec<String>,
    shadow: &str,
    today: i64,
) -> AccountFacts {
    let entry = shadow
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&account.name.as_str()));
    let locked = entry
        .as_ref()
        .and_then(|f| f.get(1))
        .is_some_and(|p| p.starts_with('!'));
    let expired = entry
        .as_ref()
        .and_then(|f| f.get(7))
        .and_then(|d| d.parse::<i64>().ok())
        .is_some_and(|day| day >= 0 && day <= today);
    AccountFacts {
        name: account.name.clone(),
        uid: account.uid,
        home: account.home.clone(),
        shell: PathBuf::from(&account.shell),
        groups,
        locked,
        expired,
    }
}

/// An `AuthorizedKeysFile` token for `account`: `%h`, `%u`, `%U`, `%%` expanded, relative
/// paths taken from the home directory.
pub(crate) fn expand(token: &str, account: &AccountFacts) -> PathBuf {
    let mut out = String::new();
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&account.home.to_string_lossy()),
            Some('u') => out.push_str(&account.name),
            Some('U') => out.push_str(&account.uid.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    if out.starts_with('/') {
        PathBuf::from(out)
    } else {
        account.home.join(out)
    }
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The keys of an `authorized_keys` file: `[options] type base64 [comment]` lines. `now` is
/// the current time as `YYYYMMDDHHMMSS`, to judge `expiry-time` options by.
pub(crate) fn parse_keys(text: &str, now: &str) -> Vec<KeyLine> {
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (options, rest) = if KEY_TYPES.iter().any(|t| line.starts_with(&format!("{t} "))) {
            ("", line)
        } else {
            split_options(line)
        };
        let mut words = rest.split_whitespace();
        let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
            continue;
        };
        if !KEY_TYPES.contains(&kind)
            || blob.len() < 16
            || !blob
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        {
            continue;
        }
        let names = option_names(options);
        let forced_command = names.iter().any(|(o, _)| o.eq_ignore_ascii_case("command"));
        let expired = names
            .iter()
            .filter(|(o, _)| o.eq_ignore_ascii_case("expiry-time"))
            .any(|(_, value)| expiry_passed(value, now));
        keys.push(KeyLine {
            kind: kind.to_owned(),
            forced_command,
            expired,
        });
    }
    keys
}

/// Splits `options rest` where options may hold quoted strings with spaces.
fn split_options(line: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

/// The options of a key line as (name, value) pairs; values without their quotes.
fn option_names(options: &str) -> Vec<(String, String)> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut value = String::new();
    let mut quoted = false;
    let mut in_value = false;
    for c in options.chars() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted && !in_value => in_value = true,
            ',' if !quoted => {
                names.push((std::mem::take(&mut current), std::mem::take(&mut value)));
                in_value = false;
            }
            _ if in_value => value.push(c),
            _ if !quoted => current.push(c),
            _ => {}
        }
    }
    if !current.is_empty() {
        names.push((current, value));
    }
    names
}

/// True when an `expiry-time` value (`YYYYMMDD[HHMM[SS]]`, as sshd reads it) lies before
/// `now` (`YYYYMMDDHHMMSS`). sshd reads it as local time unless it ends in `Z`; the hours
/// that makes are not worth a time zone database here. An unreadable value makes sshd
/// refuse the key line, so it counts as passed.
fn expiry_passed(value: &str, now: &str) -> bool {
    let digits = value.trim_end_matches(['Z', 'z']);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let padded = format!("{digits:0<14}");
    padded.as_str() < now
}

/// The authentication settings one account gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    password: bool,
    kbd: bool,
    pubkey: bool,
    use_pam: bool,
    permit_root: String,
    strict_modes: bool,
    key_files: Vec<String>,
    allow_users: Vec<String>,
    deny_users: Vec<String>,
    allow_groups: Vec<String>,
    deny_groups: Vec<String>,
    methods: Vec<String>,
    keys_elsewhere: bool,
    accepted: Option<String>,
    force_command: Option<String>,
    chroot: Option<String>,
}

impl Settings {
    /// The `AuthorizedKeysFile` tokens.
    pub(crate) fn key_files(&self) -> &[String] {
        &self.key_files
    }

    /// Replaces the Allow/Deny list `key` (`allowgroups`...) with `values`, as a playbook
    /// that sets it will.
    pub(crate) fn set_list(&mut self, key: &str, values: Vec<String>) {
        match key {
            "allowusers" => self.allow_users = values,
            "denyusers" => self.deny_users = values,
            "allowgroups" => self.allow_groups = values,
            "denygroups" => self.deny_groups = values,
            _ => {}
        }
    }

    /// `UsePAM yes`: a locked password does not stop a key login.
    pub(crate) fn use_pam(&self) -> bool {
        self.use_pam
    }

    /// Password or keyboard-interactive (through PAM) login is possible.
    pub(crate) fn passwords(&self) -> bool {
        self.password || (self.kbd && self.use_pam)
    }
}

/// A configuration and the defaults sshd fills in for what it does not set.
pub(crate) struct World<'a> {
    /// The parsed configuration.
    pub config: &'a Config,
    /// Default arguments of a directive no line sets.
    pub defaults: &'a dyn Fn(&Keyword) -> Vec<String>,
}

impl World<'_> {
    fn args(&self, name: &str, conn: Option<&Conn<'_>>) -> Vec<String> {
        let Some(keyword) = keywords::lookup(name) else {
            return Vec::new();
        };
        let effective = self.config.effective(keyword, conn);
        if effective.lines.is_empty() {
            (self.defaults)(keyword)
        } else {
            effective.args()
        }
    }

    fn flag(&self, name: &str, conn: Option<&Conn<'_>>) -> bool {
        self.args(name, conn)
            .first()
            .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    }

    fn set(&self, name: &str, conn: Option<&Conn<'_>>) -> bool {
        self.args(name, conn)
            .first()
            .is_some_and(|v| !v.eq_ignore_ascii_case("none"))
    }

    /// The settings for `account`.
    pub(crate) fn settings(&self, account: &AccountFacts) -> Settings {
        let conn = Conn {
            user: &account.name,
            groups: &account.groups,
        };
        let c = Some(&conn);
        Settings {
            password: self.flag("PasswordAuthentication", c),
            kbd: self.flag("KbdInteractiveAuthentication", c),
            pubkey: self.flag("PubkeyAuthentication", c),
            use_pam: self.flag("UsePAM", c),
            permit_root: self
                .args("PermitRootLogin", c)
                .first()
                .map(|v| v.to_ascii_lowercase())
                .unwrap_or_default(),
            strict_modes: self.flag("StrictModes", c),
            key_files: self.args("AuthorizedKeysFile", c),
            allow_users: self.args("AllowUsers", c),
            deny_users: self.args("DenyUsers", c),
            allow_groups: self.args("AllowGroups", c),
            deny_groups: self.args("DenyGroups", c),
            methods: self.args("AuthenticationMethods", c),
            keys_elsewhere: self.set("AuthorizedKeysCommand", c)
                || self.set("TrustedUserCAKeys", c),
            accepted: self.args("PubkeyAcceptedAlgorithms", c).first().cloned(),
            force_command: set_value(self.args("ForceCommand", c).join(" ")),
            chroot: set_value(self.args("ChrootDirectory", c).join(" ")),
        }
    }
}

/// A value that is not `none` (sshd's word for unset).
fn set_value(value: String) -> Option<String> {
    (!value.is_empty() && !value.eq_ignore_ascii_case("none")).then_some(value)
}

impl Settings {
    /// The settings sshd itself reports for one connection (`sshd -T -C`).
    pub(crate) fn from_dump(dump: &Dump) -> Settings {
        let words = |key: &str| -> Vec<String> {
            dump.get(key)
                .unwrap_or_default()
                .iter()
                .flat_map(|l| l.split_whitespace().map(str::to_owned))
                .collect()
        };
        let line = |key: &str| -> String {
            dump.get(key)
                .and_then(|l| l.first())
                .cloned()
                .unwrap_or_default()
        };
        let flag = |key: &str| line(key).eq_ignore_ascii_case("yes");
        Settings {
            password: flag("passwordauthentication"),
            kbd: flag("kbdinteractiveauthentication"),
            pubkey: flag("pubkeyauthentication"),
            use_pam: flag("usepam"),
            permit_root: line("permitrootlogin").to_ascii_lowercase(),
            strict_modes: flag("strictmodes"),
            key_files: words("authorizedkeysfile"),
            allow_users: words("allowusers"),
            deny_users: words("denyusers"),
            allow_groups: words("allowgroups"),
            deny_groups: words("denygroups"),
            methods: words("authenticationmethods"),
            keys_elsewhere: set_value(line("authorizedkeyscommand")).is_some()
                || set_value(line("trustedusercakeys")).is_some(),
            accepted: set_value(line("pubkeyacceptedalgorithms")),
            force_command: set_value(line("forcecommand")),
            chroot: set_value(line("chrootdirectory")),
        }
    }

    /// Paths whose existence decides whether `account` gets a session: the forced
    /// command's program and the chroot directory with the shell inside it.
    pub(crate) fn session_paths(&self, account: &AccountFacts) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        if let Some(program) = self.force_command.as_deref().and_then(forced_program) {
            paths.push(PathBuf::from(program));
        }
        if let Some(chroot) = &self.chroot {
            let dir = expand(chroot, account);
            let shell = account.shell.strip_prefix("/").unwrap_or(&account.shell);
            paths.push(dir.join(shell));
            paths.push(dir);
        }
        paths
    }
}

/// The absolute program a `ForceCommand` runs, when it names one.
fn forced_program(command: &str) -> Option<&str> {
    command
        .split_whitespace()
        .next()
        .filter(|p| p.starts_with('/'))
}

/// Programs that never give an administrator a shell.
const NO_SHELL: &[&str] = &["false", "true", "nologin", "internal-sftp", "sftp-server"];

/// Why an account cannot log in with a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The account has expired.
    Expired,
    /// `UsePAM no` and a locked password.
    Locked,
    /// `PermitRootLogin` refuses uid 0.
    RootLogin(String),
    /// Allow/Deny lists refuse it: which one.
    NotAllowed(String),
    /// `PubkeyAuthentication no`.
    PubkeyOff,
    /// `AuthenticationMethods` cannot be met with a key.
    Methods(String),
    /// No usable key in its authorized keys files.
    NoKey,
    /// Keys exist but StrictModes makes sshd ignore them: why.
    StrictModes(String),
    /// Every key it has carries an `expiry-time` in the past.
    KeysExpired,
    /// The key login would give no shell: why.
    NoSession(String),
}

impl Reason {
    /// The guard named after this reason.
    pub(crate) fn guard(&self) -> &'static str {
        match self {
            Reason::RootLogin(_) => ROOT_ONLY_KEYED,
            Reason::NotAllowed(_) => ALLOWUSERS,
            Reason::StrictModes(_) => STRICTMODES,
            Reason::Locked => LOCKED_ACCOUNT,
            Reason::NoSession(_) => NO_SESSION,
            Reason::Expired
            | Reason::PubkeyOff
            | Reason::Methods(_)
            | Reason::NoKey
            | Reason::KeysExpired => NO_KEYED_LOGIN,
        }
    }

    fn describe(&self) -> String {
        match self {
            Reason::Expired => "the account has expired".into(),
            Reason::Locked => "its password is locked (`!` in /etc/shadow)".into(),
            Reason::RootLogin(v) => format!("PermitRootLogin {v} refuses root"),
            Reason::NotAllowed(why) => why.clone(),
            Reason::PubkeyOff => "PubkeyAuthentication no".into(),
            Reason::Methods(m) => format!("AuthenticationMethods {m} cannot be met with a key"),
            Reason::NoKey => "no usable authorized key".into(),
            Reason::StrictModes(why) => why.clone(),
            Reason::KeysExpired => {
                "its authorized keys have expired (an expiry-time in the past)".into()
            }
            Reason::NoSession(why) => why.clone(),
        }
    }
}

/// Whether `account` can log in with a key under `settings`, and get a shell.
pub(crate) fn key_login(
    account: &AccountFacts,
    settings: &Settings,
    evidence: &Evidence<'_>,
) -> Result<(), Vec<Reason>> {
    let files = evidence.files;
    let mut reasons = Vec::new();
    if account.expired {
        reasons.push(Reason::Expired);
    }
    if !settings.use_pam && account.locked {
        reasons.push(Reason::Locked);
    }
    if account.uid == 0 && matches!(settings.permit_root.as_str(), "no" | "forced-commands-only") {
        reasons.push(Reason::RootLogin(settings.permit_root.clone()));
    }
    if let Some(why) = refused_by_lists(account, settings) {
        reasons.push(Reason::NotAllowed(why));
    }
    if !settings.pubkey {
        reasons.push(Reason::PubkeyOff);
    }
    if !methods_allow_keys(settings) {
        reasons.push(Reason::Methods(settings.methods.join(" ")));
    }
    if !settings.keys_elsewhere {
        match usable_keys(account, settings, files) {
            Ok(()) => {}
            Err(r) => reasons.push(r),
        }
    }
    if let Some(why) = no_session(account, settings, evidence.exists) {
        reasons.push(Reason::NoSession(why));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Why a key login of `account` would get no shell under `s`, if it would not.
fn no_session(
    account: &AccountFacts,
    s: &Settings,
    exists: &BTreeMap<PathBuf, bool>,
) -> Option<String> {
    if let Some(command) = &s.force_command {
        let program = command.split_whitespace().next().unwrap_or_default();
        let name = program.rsplit('/').next().unwrap_or(program);
        if NO_SHELL.contains(&name) {
            return Some(format!("ForceCommand {command} runs instead of a shell"));
        }
        if exists.get(Path::new(program)) == Some(&false) {
            return Some(format!("ForceCommand {command}: {program} does not exist"));
        }
    }
    if let Some(chroot) = &s.chroot {
        let dir = expand(chroot, account);
        if exists.get(&dir) == Some(&false) {
            return Some(format!("ChrootDirectory {chroot} does not exist"));
        }
        let shell = account.shell.strip_prefix("/").unwrap_or(&account.shell);
        if exists.get(&dir.join(shell)) == Some(&false) {
            return Some(format!(
                "ChrootDirectory {chroot} holds no {} for the session",
                account.shell.display()
            ));
        }
    }
    None
}

fn user_part(pattern: &str) -> &str {
    pattern.split_once('@').map_or(pattern, |(u, _)| u)
}

/// Why the Allow/Deny lists of `s` refuse `account`, if they do.
pub(crate) fn refused_by_lists(account: &AccountFacts, s: &Settings) -> Option<String> {
    use super::config::match_pattern;
    if let Some(p) = s.deny_users.iter().find(|p| {
        let (user, host) = p.split_once('@').unwrap_or((p, "*"));
        host == "*" && match_pattern(&account.name, user)
    }) {
        return Some(format!("DenyUsers {p} refuses it"));
    }
    if !s.allow_users.is_empty()
        && !s
            .allow_users
            .iter()
            .any(|p| match_pattern(&account.name, user_part(p)))
    {
        return Some(format!("not in AllowUsers {}", s.allow_users.join(" ")));
    }
    if let Some(p) = s
        .deny_groups
        .iter()
        .find(|p| account.groups.iter().any(|g| match_pattern(g, p)))
    {
        return Some(format!("DenyGroups {p} refuses it"));
    }
    if !s.allow_groups.is_empty()
        && !s
            .allow_groups
            .iter()
            .any(|p| account.groups.iter().any(|g| match_pattern(g, p)))
    {
        return Some(format!(
            "none of its groups is in AllowGroups {}",
            s.allow_groups.join(" ")
        ));
    }
    None
}

fn methods_allow_keys(s: &Settings) -> bool {
    if s.methods.is_empty() || s.methods.iter().any(|m| m.eq_ignore_ascii_case("any")) {
        return true;
    }
    s.methods.iter().any(|list| {
        let methods: Vec<&str> = list
            .split(',')
            .map(|m| m.split(':').next().unwrap_or(m))
            .collect();
        methods.contains(&"publickey")
            && methods.iter().all(|m| match *m {
                "publickey" => s.pubkey,
                "password" => s.password,
                "keyboard-interactive" => s.kbd && s.use_pam,
                _ => false,
            })
    })
}

fn type_accepted(kind: &str, accepted: Option<&str>) -> bool {
    let variants: Vec<&str> = if kind == "ssh-rsa" {
        vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    } else {
        vec![kind]
    };
    let by_default = kind != "ssh-dss";
    let Some(value) = accepted else {
        return by_default;
    };
    match keywords::algorithm_names(value) {
        Ok((None, names)) => variants
            .iter()
            .any(|v| names.iter().any(|n| super::config::match_pattern(v, n))),
        Ok((Some('-'), names)) => {
            by_default
                && !variants
                    .iter()
                    .all(|v| names.iter().any(|n| super::config::match_pattern(v, n)))
        }
        Ok((Some(_), names)) => by_default || variants.iter().any(|v| names.contains(v)),
        Err(_) => by_default,
    }
}

fn usable_keys(
    account: &AccountFacts,
    s: &Settings,
    files: &BTreeMap<PathBuf, KeyFile>,
) -> Result<(), Reason> {
    let mut strict_problem: Option<String> = None;
    let mut expired = false;
    for token in &s.key_files {
        if token.eq_ignore_ascii_case("none") {
            continue;
        }
        let path = expand(token, account);
        let Some(file) = files.get(&path) else {
            continue;
        };
        let login =
            |k: &&KeyLine| !k.forced_command && type_accepted(&k.kind, s.accepted.as_deref());
        if !file.keys.iter().filter(login).any(|k| !k.expired) {
            if file.keys.iter().any(|k| login(&k)) {
                expired = true;
            }
            continue;
        }
        if s.strict_modes {
            if let Some(why) = strict_modes_problem(file, account) {
                strict_problem.get_or_insert(why);
                continue;
            }
        }
        return Ok(());
    }
    Err(match strict_problem {
        Some(why) => Reason::StrictModes(why),
        None if expired => Reason::KeysExpired,
        None => Reason::NoKey,
    })
}

/// The first thing sshd's StrictModes check (`safe_path`, with Debian's tolerance of
/// private groups) would object to.
fn strict_modes_problem(file: &KeyFile, account: &AccountFacts) -> Option<String> {
    for (i, link) in file.chain.iter().enumerate() {
        let Some(stat) = link.stat else { continue };
        if stat.kind == Kind::Symlink {
            continue;
        }
        let p = link.path.display();
        let what = if i == 0 { "file" } else { "directory" };
        if stat.uid != 0 && stat.uid != account.uid {
            return Some(format!(
                "{what} {p} is owned by uid {}, not {} or root",
                stat.uid, account.name
            ));
        }
        let group_ok = match link.group_write {
            GroupWrite::Refused => false,
            GroupWrite::Tolerated => true,
            GroupWrite::OnlyFor(uid) => uid == account.uid,
        };
        let world = stat.mode & 0o002 != 0;
        let group = stat.mode & 0o020 != 0 && !group_ok;
        if world || group {
            let who = if world { "world" } else { "group" };
            return Some(format!(
                "{what} {p} is {who}-writable (mode {:04o}; fix with chmod go-w {p})",
                stat.mode
            ));
        }
    }
    None
}

/// An account, its settings, and whether it can log in with a key.
type Judged<'a> = (&'a AccountFacts, Settings, Result<(), Vec<Reason>>);

/// A refusal: the guard to name, and the explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fired {
    /// Guard name.
    pub guard: &'static str,
    /// What would happen, and what to do instead.
    pub message: String,
}

/// What the guards make of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Guards that fire, most specific first (overrides not yet applied).
    pub fired: Vec<Fired>,
    /// Things to tell the operator.
    pub warnings: Vec<String>,
}

/// Checks the login guards for a change from `before` to `after`. sshd's answers in
/// `evidence` stand for `after` where they exist.
pub(crate) fn check_logins(
    before: &World<'_>,
    after: &World<'_>,
    accounts: &[AccountFacts],
    evidence: &Evidence<'_>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let judge = |world: &World<'_>, answers: Option<&BTreeMap<String, Dump>>| -> Vec<Judged<'_>> {
        accounts
            .iter()
            .map(|a| {
                let s = match answers.and_then(|d| d.get(&a.name)) {
                    Some(dump) => Settings::from_dump(dump),
                    None => world.settings(a),
                };
                let r = key_login(a, &s, evidence);
                (a, s, r)
            })
            .collect()
    };
    let was = judge(before, None);
    let will = judge(after, Some(evidence.answers));
    if will.iter().any(|(_, _, r)| r.is_ok()) {
        return verdict;
    }
    let passwords_before = passwords(&was, before);
    let passwords_after = passwords(&will, after);
    let lost: Vec<&AccountFacts> = was
        .iter()
        .filter(|(_, _, r)| r.is_ok())
        .map(|(a, _, _)| *a)
        .collect();
    let mut by_guard = Reasons::default();
    if !lost.is_empty() {
        // Key logins that work now and would not: each lost account and why.
        for (account, _, result) in &will {
            if let (true, Err(reasons)) = (lost.iter().any(|l| l.name == account.name), result) {
                by_guard.add(account, reasons);
            }
        }
    } else if passwords_before && !passwords_after {
        passwords_off(&will, evidence, &mut by_guard);
    } else {
        if !passwords_after {
            verdict.warnings.push(
                "no account can log in over SSH: passwords are off and no login-capable account has a usable authorized key; this plan does not change that".into(),
            );
        }
        return verdict;
    }
    for guard in REGISTRY.iter().map(|g| g.name) {
        if let Some(accounts) = by_guard.0.remove(guard) {
            verdict.fired.push(Fired {
                guard,
                message: message(guard, &accounts, passwords_after),
            });
        }
    }
    verdict
}

/// Whether passwords are accepted: for any account judged, or for a connection by nobody
/// in particular when there is no account to judge.
fn passwords(judged: &[Judged<'_>], world: &World<'_>) -> bool {
    if !judged.is_empty() {
        return judged.iter().any(|(_, s, _)| s.passwords());
    }
    let nobody = AccountFacts {
        name: String::new(),
        uid: u32::MAX,
        home: PathBuf::from("/"),
        shell: PathBuf::from("/bin/sh"),
        groups: vec![],
        locked: false,
        expired: false,
    };
    world.settings(&nobody).passwords()
}

/// Passwords go and no account can log in with a key: why each account holding a key
/// cannot (beyond not having one), or that no account holds one.
fn passwords_off(will: &[Judged<'_>], evidence: &Evidence<'_>, by_guard: &mut Reasons) {
    let keyed: Vec<_> = will
        .iter()
        .filter(|(a, s, _)| {
            s.key_files.iter().any(|t| {
                evidence
                    .files
                    .get(&expand(t, a))
                    .is_some_and(|f| f.keys.iter().any(|k| !k.forced_command))
            })
        })
        .collect();
    for (account, _, result) in &keyed {
        let Err(reasons) = result else { continue };
        let relevant: Vec<Reason> = reasons
            .iter()
            .filter(|r| **r != Reason::NoKey)
            .cloned()
            .collect();
        by_guard.add(
            account,
            if relevant.is_empty() {
                reasons
            } else {
                &relevant
            },
        );
    }
    if keyed.is_empty() {
        by_guard.0.entry(NO_KEYED_LOGIN).or_default();
    }
}

/// Why accounts lose their login, by the first guard (in registry order) each reason fires.
#[derive(Default)]
struct Reasons(BTreeMap<&'static str, Vec<String>>);

impl Reasons {
    fn add(&mut self, account: &AccountFacts, reasons: &[Reason]) {
        let mut guards: Vec<&'static str> = reasons.iter().map(Reason::guard).collect();
        guards.sort_by_key(|g| REGISTRY.iter().position(|a| a.name == *g));
        guards.dedup();
        let why = reasons
            .iter()
            .map(Reason::describe)
            .collect::<Vec<_>>()
            .join("; ");
        if let Some(first) = guards.first() {
            self.0
                .entry(first)
                .or_default()
                .push(format!("{}: {why}", account.name));
        }
    }
}

fn message(guard: &str, accounts: &[String], passwords_after: bool) -> String {
    let list = if accounts.is_empty() {
        String::new()
    } else {
        format!(" ({})", accounts.join("; "))
    };
    let consequence = if passwords_after {
        "no account could log in over SSH with a key any more"
    } else {
        "no account could log in over SSH at all (password and keyboard-interactive login are off)"
    };
    match guard {
        ROOT_ONLY_KEYED => format!(
            "root is the only account that can log in with a key, and the new PermitRootLogin would refuse it{list}: {consequence}. Give an unprivileged administrator account an authorized key first, or keep PermitRootLogin prohibit-password"
        ),
        ALLOWUSERS => format!(
            "AllowUsers/AllowGroups/DenyUsers/DenyGroups would exclude every account that can log in with a key{list}: {consequence}. Add such an account to the list"
        ),
        STRICTMODES => format!(
            "sshd would ignore the only usable authorized keys because of their file modes or owners{list}: {consequence}. Fix the modes (chmod go-w on the home directory, ~/.ssh and authorized_keys)"
        ),
        NO_SESSION => format!(
            "the accounts that can log in with a key would get no shell{list}: {consequence}. Limit ForceCommand and ChrootDirectory to the accounts they are for with a Match block, or make the chroot hold a shell"
        ),
        LOCKED_ACCOUNT => format!(
            "UsePAM no makes sshd refuse accounts whose password is locked, and every account with a key has one{list}: {consequence}. Keep UsePAM yes, or replace the lock with `usermod -p '*' NAME` (no password, not locked)"
        ),
        _ if passwords_after => format!(
            "after this change no login-capable account could log in with a key{list}: {consequence}, only with a password. Keep PubkeyAuthentication and AuthenticationMethods compatible with the administrators' keys"
        ),
        _ => format!(
            "password and keyboard-interactive login would be off while no login-capable account has a usable authorized key{}: {consequence}. Add a key for an account with a login shell first (ssh-copy-id), then disable passwords",
            if accounts.is_empty() { " (no account with a login shell has any authorized key)".to_owned() } else { list }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::sshd::config::{parse, Snapshot, MAIN};
    use std::path::Path;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmEXAMPLEKEYexamplekeyEXAMPLEKEYexample alice@laptop\n";
    const NOW: &str = "20261201120000";

    fn stat(kind: Kind, mode: u32, uid: u32) -> Option<Stat> {
        Some(Stat {
            kind,
            mode,
            uid,
            gid: uid,
            nlink: 1,
            dev: 1,
            ino: 1,
            size: 1,
        })
    }

    fn account(name: &str, uid: u32) -> AccountFacts {
        let home = if uid == 0 {
            PathBuf::from("/root")
        } else {
            PathBuf::from(format!("/home/{name}"))
        };
        AccountFacts {
            name: name.into(),
            uid,
            home,
            shell: "/bin/bash".into(),
            groups: vec![name.into()],
            locked: false,
            expired: false,
        }
    }

    fn keyed(files: &mut BTreeMap<PathBuf, KeyFile>, a: &AccountFacts, home_mode: u32) {
        let path = a.home.join(".ssh/authorized_keys");
        let link = |path: PathBuf, stat| Link {
            path,
            stat,
            group_write: GroupWrite::Refused,
        };
        files.insert(
            path.clone(),
            KeyFile {
                keys: parse_keys(KEY, NOW),
                chain: vec![
                    link(path, stat(Kind::File, 0o600, a.uid)),
                    link(a.home.join(".ssh"), stat(Kind::Dir, 0o700, a.uid)),
                    link(a.home.clone(), stat(Kind::Dir, home_mode, a.uid)),
                ],
            },
        );
    }

    fn config(text: &str) -> Config {
        let mut s = Snapshot::default();
        s.put(Path::new(MAIN), text.into());
        parse(&s)
    }

    fn defaults(k: &Keyword) -> Vec<String> {
        k.default
            .map(|d| d.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn verdict(
        before: &str,
        after: &str,
        accounts: &[AccountFacts],
        files: &BTreeMap<PathBuf, KeyFile>,
    ) -> Verdict {
        let (b, a) = (config(before), config(after));
        let d: &dyn Fn(&Keyword) -> Vec<String> = &defaults;
        check_logins(
            &World {
                config: &b,
                defaults: d,
            },
            &World {
                config: &a,
                defaults: d,
            },
            accounts,
            &Evidence {
                files,
                answers: &BTreeMap::new(),
                exists: &BTreeMap::new(),
            },
        )
    }

    fn guards(v: &Verdict) -> Vec<&'static str> {
        v.fired.iter().map(|f| f.guard).collect()
    }

    const BASE: &str = "UsePAM yes\nKbdInteractiveAuthentication no\n";

    #[test]
    fn disabling_passwords_without_any_key_is_refused() {
        let alice = account("alice", 1000);
        let v = verdict(
            BASE,
            &format!("PasswordAuthentication no\n{BASE}"),
            &[alice],
            &BTreeMap::new(),
        );
        assert_eq!(guards(&v), vec![NO_KEYED_LOGIN]);
        assert!(
            v.fired[0]
                .message
                .contains("no account with a login shell has any authorized key"),
            "{}",
            v.fired[0].message
        );
    }

    #[test]
    fn disabling_passwords_with_a_keyed_account_passes() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        let v = verdict(
            BASE,
            &format!("PasswordAuthentication no\n{BASE}"),
            &[alice],
            &files,
        );
        assert!(v.fired.is_empty(), "{v:?}");
    }

    #[test]
    fn keyboard_interactive_through_pam_still_counts_as_password_login() {
        let alice = account("alice", 1000);
        let v = verdict(
            "UsePAM yes\n",
            "PasswordAuthentication no\nUsePAM yes\n",
            &[alice],
            &BTreeMap::new(),
        );
        assert!(
            v.fired.is_empty(),
            "kbd-interactive via PAM is still on: {v:?}"
        );
    }

    #[test]
    fn root_as_the_only_keyed_account() {
        let root = account("root", 0);
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &root, 0o700);
        let v = verdict(
            BASE,
            &format!("PermitRootLogin no\n{BASE}"),
            &[root.clone(), alice.clone()],
            &files,
        );
        assert_eq!(guards(&v), vec![ROOT_ONLY_KEYED]);
        keyed(&mut files, &alice, 0o750);
        let v = verdict(
            BASE,
            &format!("PermitRootLogin no\n{BASE}"),
            &[root, alice],
            &files,
        );
        assert!(v.fired.is_empty(), "alice still has a key");
    }

    #[test]
    fn allow_lists_that_exclude_every_keyed_account() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        let v = verdict(
            BASE,
            &format!("AllowUsers bob carol@10.0.0.1\n{BASE}"),
            std::slice::from_ref(&alice),
            &files,
        );
        assert_eq!(guards(&v), vec![ALLOWUSERS]);
        assert!(
            v.fired[0].message.contains("not in AllowUsers bob"),
            "{}",
            v.fired[0].message
        );
        let v = verdict(
            BASE,
            &format!("AllowUsers bob ali*@10.0.0.0/8\n{BASE}"),
            std::slice::from_ref(&alice),
            &files,
        );
        assert!(v.fired.is_empty());
        let v = verdict(
            BASE,
            &format!("AllowGroups admins\n{BASE}"),
            std::slice::from_ref(&alice),
            &files,
        );
        assert_eq!(guards(&v), vec![ALLOWUSERS]);
        let v = verdict(BASE, &format!("DenyUsers alice\n{BASE}"), &[alice], &files);
        assert_eq!(guards(&v), vec![ALLOWUSERS]);
    }

    #[test]
    fn a_group_writable_home_makes_sshd_ignore_the_key() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o775);
        let v = verdict(
            BASE,
            &format!("PasswordAuthentication no\n{BASE}"),
            std::slice::from_ref(&alice),
            &files,
        );
        assert_eq!(guards(&v), vec![STRICTMODES]);
        assert!(
            v.fired[0]
                .message
                .contains("/home/alice is group-writable (mode 0775"),
            "{}",
            v.fired[0].message
        );
        // Turning StrictModes on is what breaks the key here.
        let v = verdict(
            &format!("StrictModes no\n{BASE}"),
            &format!("StrictModes yes\n{BASE}"),
            &[alice],
            &files,
        );
        assert_eq!(guards(&v), vec![STRICTMODES]);
    }

    #[test]
    fn debian_tolerates_a_group_writable_home_in_a_private_group() {
        let users = UserDb::parse(
            false,
            "alice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:100::/home/bob:/bin/bash\ncarol:x:1002:100::/home/carol:/bin/bash\n",
            "alice:x:1000:\nusers:x:100:\nstaff:x:50:alice\nempty:x:60:\n",
        );
        assert_eq!(group_write(&users, 1000, 1000), GroupWrite::OnlyFor(1000));
        assert_eq!(
            group_write(&users, 100, 1001),
            GroupWrite::Refused,
            "two accounts share it"
        );
        assert_eq!(
            group_write(&users, 50, 1000),
            GroupWrite::Tolerated,
            "alice is its only member"
        );
        assert_eq!(
            group_write(&users, 60, 1000),
            GroupWrite::Refused,
            "no member at all"
        );
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o775);
        for file in files.values_mut() {
            file.chain[2].group_write = GroupWrite::OnlyFor(1000);
        }
        let v = verdict(
            BASE,
            &format!("PasswordAuthentication no\n{BASE}"),
            &[alice],
            &files,
        );
        assert!(v.fired.is_empty(), "{v:?}");
    }

    #[test]
    fn use_pam_no_refuses_locked_accounts() {
        let mut alice = account("alice", 1000);
        alice.locked = true;
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        let v = verdict(
            "UsePAM yes\n",
            "UsePAM no\n",
            std::slice::from_ref(&alice),
            &files,
        );
        assert_eq!(guards(&v), vec![LOCKED_ACCOUNT]);
        let v = verdict(
            "UsePAM yes\n",
            "UsePAM yes\nPasswordAuthentication no\n",
            &[alice],
            &files,
        );
        assert!(
            v.fired.is_empty(),
            "with PAM a locked password does not stop key login"
        );
    }

    #[test]
    fn turning_public_keys_off_ends_key_login_even_with_passwords_on() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        let v = verdict(
            BASE,
            &format!("PubkeyAuthentication no\nPasswordAuthentication yes\n{BASE}"),
            &[alice],
            &files,
        );
        assert_eq!(guards(&v), vec![NO_KEYED_LOGIN]);
        assert!(
            v.fired[0].message.contains("only with a password"),
            "{}",
            v.fired[0].message
        );
    }

    #[test]
    fn match_blocks_count_per_account() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        let after = format!(
            "PasswordAuthentication no\n{BASE}Match User alice\n  PubkeyAuthentication no\n"
        );
        let v = verdict(BASE, &after, &[alice], &files);
        assert_eq!(guards(&v), vec![NO_KEYED_LOGIN]);
    }

    #[test]
    fn an_already_locked_out_host_is_a_warning_not_a_refusal() {
        let alice = account("alice", 1000);
        let cfg = format!("PasswordAuthentication no\n{BASE}");
        let v = verdict(
            &cfg,
            &format!("MaxAuthTries 3\n{cfg}"),
            &[alice],
            &BTreeMap::new(),
        );
        assert!(v.fired.is_empty());
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn key_files_expand_tokens_and_skip_forced_commands() {
        let alice = account("alice", 1000);
        assert_eq!(
            expand("%h/.ssh/authorized_keys", &alice),
            PathBuf::from("/home/alice/.ssh/authorized_keys")
        );
        assert_eq!(
            expand("/etc/ssh/keys/%u", &alice),
            PathBuf::from("/etc/ssh/keys/alice")
        );
        assert_eq!(expand("/k/%U/%%x", &alice), PathBuf::from("/k/1000/%x"));
        assert_eq!(
            expand(".ssh/authorized_keys", &alice),
            PathBuf::from("/home/alice/.ssh/authorized_keys")
        );
        let keys = parse_keys(&format!(
            "# comment\ncommand=\"/usr/bin/backup\",no-pty {KEY}from=\"10.0.0.1,10.0.0.2\" {KEY}restrict {KEY}not a key\n"
        ), NOW);
        assert_eq!(keys.len(), 3);
        assert!(keys[0].forced_command);
        assert!(!keys[1].forced_command && !keys[2].forced_command);
        assert!(keys.iter().all(|k| !k.expired));
    }

    #[test]
    fn a_key_whose_expiry_time_has_passed_is_expired() {
        let keys = parse_keys(
            &format!("expiry-time=\"20000101\" {KEY}expiry-time=\"203001011200Z\",no-pty {KEY}expiry-time=\"soon\" {KEY}"),
            NOW,
        );
        let expired: Vec<bool> = keys.iter().map(|k| k.expired).collect();
        assert_eq!(expired, vec![true, false, true]);
    }

    #[test]
    fn only_expired_keys_are_no_key_login() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        for file in files.values_mut() {
            file.keys = parse_keys(&format!("expiry-time=\"20000101\" {KEY}"), NOW);
        }
        let v = verdict(
            "PasswordAuthentication yes\n",
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
            &[alice],
            &files,
        );
        assert_eq!(guards(&v), vec![NO_KEYED_LOGIN]);
        assert!(v.fired[0].message.contains("expired"), "{v:?}");
    }

    #[test]
    fn sshds_answer_decides_the_session_forced_commands_and_chroots() {
        let alice = account("alice", 1000);
        let mut files = BTreeMap::new();
        keyed(&mut files, &alice, 0o755);
        let answer = |extra: &str| {
            let mut dump = Dump::default();
            for line in [
                "passwordauthentication no",
                "pubkeyauthentication yes",
                "usepam yes",
                "permitrootlogin without-password",
                "strictmodes yes",
                "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2",
                "authenticationmethods any",
                "authorizedkeyscommand none",
                "trustedusercakeys none",
                extra,
            ] {
                let (k, v) = line.split_once(' ').unwrap_or((line, ""));
                dump.0.entry(k.into()).or_default().push(v.into());
            }
            BTreeMap::from([("alice".to_owned(), dump)])
        };
        let judge = |answers: &BTreeMap<String, Dump>, exists: &BTreeMap<PathBuf, bool>| {
            let (b, a) = (
                config("PasswordAuthentication yes\n"),
                config("PasswordAuthentication no\n"),
            );
            let d: &dyn Fn(&Keyword) -> Vec<String> = &defaults;
            check_logins(
                &World {
                    config: &b,
                    defaults: d,
                },
                &World {
                    config: &a,
                    defaults: d,
                },
                std::slice::from_ref(&alice),
                &Evidence {
                    files: &files,
                    answers,
                    exists,
                },
            )
        };
        let none = BTreeMap::new();
        assert!(judge(&answer("forcecommand none"), &none).fired.is_empty());
        let v = judge(&answer("forcecommand /bin/false"), &none);
        assert_eq!(guards(&v), vec![NO_SESSION]);
        assert!(v.fired[0]
            .message
            .contains("ForceCommand /bin/false runs instead of a shell"));
        let missing = BTreeMap::from([(PathBuf::from("/srv/jail/alice"), false)]);
        let v = judge(&answer("chrootdirectory /srv/jail/%u"), &missing);
        assert_eq!(guards(&v), vec![NO_SESSION]);
        assert!(v.fired[0].message.contains("does not exist"), "{v:?}");
        let empty = BTreeMap::from([
            (PathBuf::from("/srv/jail/alice"), true),
            (PathBuf::from("/srv/jail/alice/bin/bash"), false),
        ]);
        let v = judge(&answer("chrootdirectory /srv/jail/%u"), &empty);
        assert!(v.fired[0].message.contains("holds no /bin/bash"), "{v:?}");
    }

    #[test]
    fn pubkey_algorithm_lists_can_exclude_a_key_type() {
        assert!(type_accepted("ssh-ed25519", None));
        assert!(!type_accepted("ssh-dss", None));
        assert!(type_accepted("ssh-rsa", Some("rsa-sha2-512,ssh-ed25519")));
        assert!(!type_accepted("ssh-ed25519", Some("rsa-sha2-512")));
        assert!(!type_accepted("ssh-ed25519", Some("-ssh-ed25519*")));
        assert!(type_accepted("ssh-dss", Some("+ssh-dss")));
    }

    #[test]
    fn shadow_tells_locked_and_expired() {
        let a = Account {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        };
        let f = account_facts(
            &a,
            vec![],
            "alice:!$y$j9T$x:19000:0:99999:7::100:\n",
            20_000,
        );
        assert!(f.locked && f.expired);
        let f = account_facts(&a, vec![], "alice:$y$j9T$x:19000:0:99999:7:::\n", 20_000);
        assert!(!f.locked && !f.expired);
    }
}
