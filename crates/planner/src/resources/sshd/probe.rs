//! Reading the live state: configuration files, what the installed sshd says about them,
//! the algorithms this OpenSSH supports, accounts and their keys, how sshd is run, and the
//! firewall. Nothing here writes, except creating sshd's privilege separation directory
//! (`/run/sshd`) on the running system, without which `sshd -T` refuses to run on a host
//! where the daemon has never started; it is empty, lives under `/run` and is what the daemon
//! creates itself. Under `--root` the plan creates it instead, as a step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use harden_host::{Host, Kind, Stat};
use harden_plan::Command;

use super::config::{self, Snapshot, Source};
use super::guards::{self, AccountFacts, KeyFile};
use super::keywords::{self, Query, Repeat};
use super::{Directive, Sshd};
use crate::resource::{Context, Failure};

/// Bound on each `sshd`/`ssh` query.
pub(crate) const SSHD_TIMEOUT: u64 = 20;
/// Where sshd is when it is installed but not found by name (for commands planned before
/// installation).
pub(crate) const SSHD_PATH: &str = "/usr/sbin/sshd";

/// The Debian default sshd_config, used to plan when openssh-server is not installed yet.
pub(crate) const DEBIAN_DEFAULT: &str = include_str!("debian_sshd_config");

/// What `sshd -T` printed: values by lower-case key, one entry per printed line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump(pub BTreeMap<String, Vec<String>>);

impl Dump {
    /// Parses `sshd -T` output.
    pub(crate) fn parse(text: &str) -> Self {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            if !key.is_empty() {
                values
                    .entry(key.to_ascii_lowercase())
                    .or_default()
                    .push(value.to_owned());
            }
        }
        Dump(values)
    }

    /// The printed values of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }
}

/// How the running sshd takes up a new configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// An image under `--root`: nothing runs, nothing reloads.
    Offline,
    /// A systemd unit (`ssh` on Debian and Ubuntu, `sshd` elsewhere).
    Systemd {
        /// Unit name without `.service`.
        unit: String,
        /// Ubuntu's socket activation: `ssh.socket` is active and owns the listening ports.
        socket: Option<SocketActivation>,
        /// The service is running now.
        active: bool,
    },
    /// A daemon started without systemd, found through its pidfile.
    Daemon {
        /// The effective `PidFile`.
        pidfile: PathBuf,
        /// True when the pidfile names a running sshd.
        running: bool,
    },
}

/// Ubuntu's `ssh.socket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SocketActivation {
    /// True when openssh's systemd generator derives the socket's ports from sshd_config
    /// (Ubuntu 24.04 and later); otherwise harden writes a socket drop-in itself.
    pub generator: bool,
    /// The drop-in harden would own, and its current text.
    pub drop_in: Option<String>,
    /// The drop-in's directory exists.
    pub drop_in_dir: bool,
}

/// Everything the diff needs to know about the live system.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// Path of the sshd binary; `None` when openssh-server is not installed.
    pub(crate) sshd: Option<PathBuf>,
    /// Configuration files and directory listings read.
    pub(crate) snapshot: Snapshot,
    /// Status of every existing file in the snapshot (and of directories that matter).
    pub(crate) stats: BTreeMap<PathBuf, Stat>,
    /// True when the main file was missing and the Debian default stands in for it.
    pub(crate) synthesized: bool,
    /// `sshd -T` for the current configuration.
    pub(crate) dump: Option<Dump>,
    /// Why `sshd -T` failed, when it did.
    pub(crate) dump_error: Option<String>,
    /// `sshd -T -C user=...` for accounts that `Match` blocks cover: (account, dump).
    pub(crate) per_user: Vec<(String, Dump)>,
    /// sshd's answer for each keyed account under the candidate configuration (`sshd -T -C
    /// user=... -o ...` with the playbook's directives), for the lockout guards.
    pub(crate) answers: BTreeMap<String, Dump>,
    /// Whether the paths a keyed account's session depends on exist (chroot directories
    /// and the shell inside them, forced commands).
    pub(crate) exists: BTreeMap<PathBuf, bool>,
    /// Errors the installed sshd reported for playbook directives, by index in the section.
    pub(crate) rejected: BTreeMap<usize, String>,
    /// Algorithms this OpenSSH supports, by query.
    pub(crate) algorithms: BTreeMap<Query, BTreeSet<String>>,
    /// Accounts with a login shell.
    pub(crate) accounts: Vec<AccountFacts>,
    /// Authorized keys files found, by path.
    pub(crate) key_files: BTreeMap<PathBuf, KeyFile>,
    /// How sshd is run.
    pub(crate) activation: Option<Activation>,
    /// TCP ports some program listens on now (live systems only).
    pub(crate) listening: Option<BTreeSet<u16>>,
    /// What the active firewall says about each port the playbook asks for.
    pub(crate) firewall: BTreeMap<u16, Option<bool>>,
    /// `/run/sshd` is missing (an image under `--root`, where harden does not create it
    /// while planning).
    pub(crate) privsep_missing: bool,
    /// `ss` is installed (the running check waits for the ports with it).
    pub(crate) has_ss: bool,
    /// `sshd -V`, for messages.
    pub(crate) version: Option<String>,
}

/// A [`Source`] over the managed system.
pub(crate) struct HostSource<'a>(pub &'a Host);

impl Source for HostSource<'_> {
    fn read(&self, path: &Path) -> Result<Option<String>, String> {
        self.0.read_to_string(path).map_err(|e| e.to_string())
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>, String> {
        self.0
            .read_dir(dir)
            .map(|names| {
                names
                    .into_iter()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect()
            })
            .map_err(|e| e.to_string())
    }
}

/// sshd's privilege separation directory.
pub(crate) const PRIVSEP_DIR: &str = "/run/sshd";

/// Creates `/run/sshd` on the running system when it is missing, so that `sshd -T` can run
/// (sshd creates it itself when it starts; on a host where it never ran, the plan could not
/// ask it otherwise). Never in an image under `--root`: there the plan creates it.
pub(crate) async fn ensure_privsep_dir(host: &Host) {
    if host.is_live()
        && matches!(host.stat(Path::new(PRIVSEP_DIR)), Ok(None))
        && matches!(host.stat(Path::new("/run")), Ok(Some(_)))
    {
        let _ = host
            .run(&Command::new(["mkdir", "-p", "-m", "0755", "/run/sshd"]).timeout(10))
            .await;
    }
}

/// Runs commands concurrently, returning their outputs in order.
async fn run_all(host: &Host, commands: Vec<Command>) -> Vec<Result<harden_host::Output, String>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, cmd) in commands.into_iter().enumerate() {
        let host = host.clone();
        set.spawn(async move { (i, host.run(&cmd).await.map_err(|e| e.to_string())) });
    }
    let mut results: Vec<Option<Result<harden_host::Output, String>>> = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, result)) = joined {
            if results.len() <= i {
                results.resize_with(i + 1, || None);
            }
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("the command did not complete".into())))
        .collect()
}

/// The `-o` arguments that put a directive in front of the configuration.
fn overlay_args(d: &Directive) -> Vec<String> {
    let Ok(lines) = d.rendered() else {
        return Vec::new();
    };
    lines
        .into_iter()
        .flat_map(|l| ["-o".to_owned(), l])
        .collect()
}

/// The error lines sshd printed, without its noise.
pub(crate) fn complaint(out: &harden_host::Output) -> String {
    let text = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let lines: Vec<String> = lines
        .iter()
        .map(|l| {
            // "command-line line 0: Bad SSH2 cipher spec 'x'." -> "Bad SSH2 cipher spec 'x'."
            match l.split_once(" line 0: ") {
                Some((head, rest)) if head.starts_with("command-line") => rest.to_owned(),
                _ => (*l).to_owned(),
            }
        })
        .collect();
    lines.join("; ")
}

/// Reads the live state for `section`.
pub(crate) async fn probe(section: &Sshd, cx: &Context<'_>) -> Result<Live, Failure> {
    let host = cx.host;
    let mut live = Live {
        sshd: host.which("sshd"),
        ..Live::default()
    };
    // 1. The configuration files, as sshd would read them.
    let parsed = read_config(host, &mut live);
    // 2. Accounts and their keys, for the lockout guards.
    let keyed = keyed_accounts(section, &parsed, cx, &mut live);
    // 3. What the installed sshd says, and which algorithms it has.
    let queries: BTreeSet<Query> = section
        .config
        .0
        .iter()
        .filter_map(|d| match d.keyword()?.kind {
            keywords::Kind::Algorithms(q) => Some(q),
            _ => None,
        })
        .collect();
    if let Some(sshd) = live.sshd.clone() {
        ensure_privsep_dir(host).await;
        let sshd = sshd.display().to_string();
        let asked = ask_sshd(section, &parsed, &keyed, cx, &sshd, &mut live).await;
        // Something is wrong (a directive rejected, or sshd cannot read the current
        // configuration): only then ask about each directive alone, so that the common
        // path is one or two sshd runs.
        if !asked.written && (asked.overlay_failed || live.dump.is_none()) {
            let singles = if live.dump.is_some() {
                asked.checked
            } else {
                Vec::new()
            };
            diagnose(section, host, &sshd, &singles, &queries, &mut live).await;
        }
    } else if let Some(ssh) = host.which("ssh") {
        // sshd is to be installed: the client of the same OpenSSH tells which algorithms
        // exist (the package pulls a matching client version).
        let ssh = ssh.display().to_string();
        let queries: Vec<Query> = queries.iter().copied().collect();
        let commands = queries.iter().map(|q| algorithms_query(&ssh, *q)).collect();
        for (q, result) in queries.iter().zip(run_all(host, commands).await) {
            match result {
                Ok(out) if out.success() => {
                    live.algorithms.insert(*q, algorithm_list(&out.stdout));
                }
                _ => {}
            }
        }
    }
    live.exists = session_paths(host, section, &live);
    live.has_ss = host.which("ss").is_some();
    live.privsep_missing = matches!(host.stat(Path::new(PRIVSEP_DIR)), Ok(None))
        && matches!(host.stat(Path::new("/run")), Ok(Some(_)));
    // 4. How sshd runs and what listens where.
    live.activation = Some(activation(host, &parsed, live.dump.as_ref()).await);
    if host.is_live() {
        // /proc/net/tcp where netlink is refused (a confined container).
        live.listening = Some(
            host.listening_tcp_ports()
                .unwrap_or_else(|_| listening_ports(host)),
        );
    }
    // The firewall's verdict on every port sshd may use, as the firewall resource gave it.
    let facts = cx.live().await;
    for &port in &facts.sshd.ports_of_interest {
        let verdict = facts.firewall.admits.get(&port).copied().flatten();
        live.firewall.insert(port, verdict);
    }
    Ok(live)
}

/// Reads sshd_config and everything it includes into `live.snapshot` (the Debian default
/// when sshd is not installed yet) and stats the files and include directories.
fn read_config(host: &Host, live: &mut Live) -> config::Config {
    let source = HostSource(host);
    let recording = config::Recording::new(&source);
    let parsed = config::parse(&recording);
    live.snapshot = recording.into_snapshot();
    if !parsed.main_exists && live.sshd.is_none() {
        // Not installed: plan against the configuration the package will install.
        live.synthesized = true;
        live.snapshot
            .put(Path::new(config::MAIN), DEBIAN_DEFAULT.to_owned());
    }
    let parsed = config::parse(&live.snapshot);
    let mut interesting: Vec<PathBuf> = live.snapshot.files.keys().cloned().collect();
    for include in &parsed.includes {
        if let Some(dir) = include.pattern.parent() {
            interesting.push(dir.to_path_buf());
        }
    }
    for path in interesting {
        if let Ok(Some(stat)) = host.stat(&path) {
            live.stats.insert(path, stat);
        }
    }
    parsed
}

/// Every account with a login shell into `live.accounts`, the key files sshd would read for
/// them into `live.key_files`; returns the accounts that hold a login key, at most eight,
/// root last: those the lockout guards ask sshd about.
fn keyed_accounts(
    section: &Sshd,
    parsed: &config::Config,
    cx: &Context<'_>,
    live: &mut Live,
) -> Vec<String> {
    let host = cx.host;
    let patterns = key_file_patterns(section, parsed);
    let shadow = host
        .read_to_string(Path::new("/etc/shadow"))
        .ok()
        .flatten()
        .unwrap_or_default();
    let today = days_since_epoch();
    let now = jiff::Timestamp::now().strftime("%Y%m%d%H%M%S").to_string();
    let mut keyed: Vec<AccountFacts> = Vec::new();
    for account in cx.users.accounts() {
        if !login_shell(host, &account.shell) {
            continue;
        }
        let facts = guards::account_facts(account, cx.users.groups_of(account), &shadow, today);
        for pattern in &patterns {
            let path = guards::expand(pattern, &facts);
            if !live.key_files.contains_key(&path) {
                if let Some(file) = read_key_file(host, cx.users, &path, &facts.home, &now) {
                    live.key_files.insert(path.clone(), file);
                }
            }
            let login_key = live
                .key_files
                .get(&path)
                .is_some_and(|f| f.keys.iter().any(|k| !k.forced_command));
            if login_key && !keyed.contains(&facts) {
                keyed.push(facts.clone());
            }
        }
        live.accounts.push(facts);
    }
    keyed.sort_by_key(|a| a.uid == 0);
    keyed.into_iter().take(8).map(|a| a.name).collect()
}

/// `AuthorizedKeysFile` patterns: the files', the playbook's, and OpenSSH's defaults.
fn key_file_patterns(section: &Sshd, parsed: &config::Config) -> BTreeSet<String> {
    let mut patterns: BTreeSet<String> = BTreeSet::new();
    for line in parsed
        .lines
        .iter()
        .filter(|l| l.key == "authorizedkeysfile")
    {
        patterns.extend(line.args.iter().cloned());
    }
    if let Some(d) = section
        .config
        .0
        .iter()
        .find(|d| d.key() == "authorizedkeysfile")
    {
        if let Ok(lines) = d.lines() {
            patterns.extend(lines.into_iter().flatten());
        }
    }
    patterns.extend([
        ".ssh/authorized_keys".to_owned(),
        ".ssh/authorized_keys2".to_owned(),
    ]);
    patterns.retain(|p| !p.eq_ignore_ascii_case("none"));
    patterns
}

/// What [`ask_sshd`] learnt beyond what it stored in `live`.
struct Asked {
    /// The playbook's directives given to sshd on its command line.
    checked: Vec<usize>,
    /// The files already say what the playbook says: the base run was the check.
    written: bool,
    /// sshd rejected the command line with the playbook's directives.
    overlay_failed: bool,
}

/// Runs sshd with the playbook's directives on its command line: they win over the files as
/// harden's first-sorting drop-in does, and `Match` blocks still apply on top. Asked for each
/// keyed account, that is sshd's own answer for the lockout guards, and it checks every
/// directive at once too. Also asks for the effective settings of each user a `Match User`
/// block names. The plain `sshd -T` ran once for the whole plan, when the facts were gathered.
async fn ask_sshd(
    section: &Sshd,
    parsed: &config::Config,
    keyed: &[String],
    cx: &Context<'_>,
    sshd: &str,
    live: &mut Live,
) -> Asked {
    let written = super::desired::already_written(section, &live.snapshot);
    let checked: Vec<usize> = if written {
        Vec::new()
    } else {
        section
            .config
            .0
            .iter()
            .enumerate()
            .filter(|(_, d)| d.keyword().is_none_or(|k| k.repeat != Repeat::Named))
            .map(|(i, _)| i)
            .collect()
    };
    let candidates: &[String] = if checked.is_empty() { &[] } else { keyed };
    let mut commands = Vec::new();
    if !checked.is_empty() {
        let overlay: Vec<String> = checked
            .iter()
            .flat_map(|&i| overlay_args(&section.config.0[i]))
            .collect();
        let asks: Vec<Option<&String>> = if candidates.is_empty() {
            vec![None]
        } else {
            candidates.iter().map(Some).collect()
        };
        for user in asks {
            let mut all = vec![sshd.to_owned(), "-T".to_owned()];
            if let Some(user) = user {
                all.extend(["-C".to_owned(), connection_spec(user)]);
            }
            all.extend(overlay.iter().cloned());
            commands.push(Command::new(all).timeout(SSHD_TIMEOUT));
        }
    }
    let users = match_users(parsed, cx);
    for user in &users {
        let argv = [
            sshd.to_owned(),
            "-T".into(),
            "-C".into(),
            connection_spec(user),
        ];
        commands.push(Command::new(argv).timeout(SSHD_TIMEOUT));
    }
    let mut results = run_all(cx.host, commands).await.into_iter();
    let overlay = if checked.is_empty() {
        None
    } else {
        results.next()
    };
    let dump = |result: &Result<harden_host::Output, String>| match result {
        Ok(out) if out.success() => Some(Dump::parse(&out.stdout)),
        _ => None,
    };
    if let (Some(first), Some(answer)) = (candidates.first(), overlay.as_ref().and_then(dump)) {
        live.answers.insert(first.clone(), answer);
    }
    for user in candidates.iter().skip(1) {
        if let Some(answer) = results.next().as_ref().and_then(dump) {
            live.answers.insert(user.clone(), answer);
        }
    }
    match &cx.live().await.sshd.dump {
        Some(Ok(text)) => live.dump = Some(Dump::parse(text)),
        Some(Err(e)) => live.dump_error = Some(e.clone()),
        None => {}
    }
    for user in users {
        if let Some(answer) = results.next().as_ref().and_then(dump) {
            live.per_user.push((user, answer));
        }
    }
    Asked {
        checked,
        written,
        overlay_failed: matches!(&overlay, Some(Ok(out)) if !out.success()),
    }
}

/// The version for the messages, the algorithms sshd's client knows (`ssh -Q`), and sshd's
/// verdict on each of the directives `singles` alone.
async fn diagnose(
    section: &Sshd,
    host: &Host,
    sshd: &str,
    singles: &[usize],
    queries: &BTreeSet<Query>,
    live: &mut Live,
) {
    let ssh = host.which("ssh").map(|p| p.display().to_string());
    let query_list: Vec<Query> = match &ssh {
        Some(_) => queries.iter().copied().collect(),
        None => Vec::new(),
    };
    let mut commands = vec![Command::new([sshd, "-V"]).timeout(SSHD_TIMEOUT)];
    let ssh = ssh.unwrap_or_default();
    commands.extend(query_list.iter().map(|q| algorithms_query(&ssh, *q)));
    commands.extend(singles.iter().map(|&i| {
        let mut argv = vec![sshd.to_owned(), "-T".to_owned()];
        argv.extend(overlay_args(&section.config.0[i]));
        Command::new(argv).timeout(SSHD_TIMEOUT)
    }));
    let mut results = run_all(host, commands).await.into_iter();
    if let Some(Ok(out)) = results.next() {
        live.version = out
            .stderr
            .lines()
            .next()
            .and_then(|l| l.split(',').next())
            .map(|l| l.trim().to_owned())
            .filter(|l| l.starts_with("OpenSSH"));
    }
    for q in &query_list {
        match results.next() {
            Some(Ok(out)) if out.success() => {
                live.algorithms.insert(*q, algorithm_list(&out.stdout));
            }
            _ => {}
        }
    }
    for (&i, result) in singles.iter().zip(results) {
        if let Ok(out) = result {
            if !out.success() {
                live.rejected.insert(i, complaint(&out));
            }
        }
    }
}

fn algorithms_query(ssh: &str, query: Query) -> Command {
    Command::new([ssh, "-Q", query.arg()]).timeout(SSHD_TIMEOUT)
}

fn algorithm_list(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Stats what a keyed account's session depends on, as sshd answered or as the playbook
/// and the files say: forced commands' programs, chroot directories and the shell in them.
fn session_paths(host: &Host, section: &Sshd, live: &Live) -> BTreeMap<PathBuf, bool> {
    let mut values: Vec<(&str, String)> = Vec::new();
    for d in &section.config.0 {
        let key = d.key();
        if key == "forcecommand" || key == "chrootdirectory" {
            for line in d.lines().unwrap_or_default() {
                values.push((
                    if key == "forcecommand" {
                        "ForceCommand"
                    } else {
                        "ChrootDirectory"
                    },
                    line.join(" "),
                ));
            }
        }
    }
    let mut exists = BTreeMap::new();
    for account in &live.accounts {
        let mut paths = Vec::new();
        if let Some(dump) = live.answers.get(&account.name) {
            paths.extend(guards::Settings::from_dump(dump).session_paths(account));
        }
        for (name, value) in &values {
            let mut dump = Dump::default();
            dump.0
                .insert(name.to_ascii_lowercase(), vec![value.clone()]);
            paths.extend(guards::Settings::from_dump(&dump).session_paths(account));
        }
        for path in paths {
            let found = matches!(host.stat(&path), Ok(Some(_)));
            exists.insert(path, found);
        }
    }
    exists
}

/// Accounts to ask `sshd -T -C` about: one named by each `Match User` block, and the first
/// ordinary login account, when `Match` blocks exist.
fn match_users(parsed: &config::Config, cx: &Context<'_>) -> Vec<String> {
    if parsed.matches.is_empty() {
        return Vec::new();
    }
    let mut users: Vec<String> = Vec::new();
    for block in &parsed.matches {
        for (attr, value) in &block.criteria {
            if attr.eq_ignore_ascii_case("user") {
                for name in value.split(',') {
                    if !name.contains(['*', '?', '!'])
                        && cx.users.account(name).is_some()
                        && !users.iter().any(|u| u == name)
                    {
                        users.push(name.to_owned());
                    }
                }
            }
        }
    }
    if let Some(admin) = cx
        .users
        .accounts()
        .iter()
        .find(|a| a.uid >= 1000 && a.uid < 60000)
    {
        if !users.contains(&admin.name) {
            users.push(admin.name.clone());
        }
    }
    users.truncate(4);
    users
}

/// A `-C` specification: the account, and addresses from the documentation ranges so that
/// address-dependent `Match` blocks do not apply (as for an administrator connecting from
/// anywhere else).
fn connection_spec(user: &str) -> String {
    format!("user={user},host=harden.invalid,addr=203.0.113.254,laddr=203.0.113.253,lport=22")
}

pub(crate) fn days_since_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// True when `shell` lets an account log in: it exists and is not nologin or false.
pub(crate) fn login_shell(host: &Host, shell: &str) -> bool {
    let shell = if shell.is_empty() { "/bin/sh" } else { shell };
    if shell.ends_with("/nologin") || shell.ends_with("/false") || !shell.starts_with('/') {
        return false;
    }
    matches!(host.stat(Path::new(shell)), Ok(Some(s)) if s.kind == Kind::File || s.kind == Kind::Symlink)
}

/// Reads an authorized keys file and the status of it and the directories sshd's StrictModes
/// checks (up to the home directory, or to `/` for a file outside it).
pub(crate) fn read_key_file(
    host: &Host,
    users: &harden_host::UserDb,
    path: &Path,
    home: &Path,
    now: &str,
) -> Option<KeyFile> {
    let stat = host.stat(path).ok()??;
    let text = host.read_to_string(path).ok()??;
    let mut chain = vec![guards::Link::new(path.to_path_buf(), Some(stat), users)];
    let mut dir = path.parent();
    while let Some(d) = dir {
        chain.push(guards::Link::new(
            d.to_path_buf(),
            host.stat(d).ok().flatten(),
            users,
        ));
        if d == home || d == Path::new("/") {
            break;
        }
        dir = d.parent();
    }
    Some(KeyFile {
        keys: guards::parse_keys(&text, now),
        chain,
    })
}

/// How sshd is run on this host.
async fn activation(host: &Host, parsed: &config::Config, dump: Option<&Dump>) -> Activation {
    if !host.is_live() {
        return Activation::Offline;
    }
    if host.has_systemd() {
        let ssh_unit = [
            "/etc/systemd/system/ssh.service",
            "/usr/lib/systemd/system/ssh.service",
            "/lib/systemd/system/ssh.service",
        ]
        .iter()
        .any(|p| matches!(host.stat(Path::new(p)), Ok(Some(_))));
        let unit = if ssh_unit { "ssh" } else { "sshd" };
        let active = host
            .run(
                &Command::new(["systemctl", "is-active", &format!("{unit}.socket")])
                    .timeout(SSHD_TIMEOUT),
            )
            .await
            .is_ok_and(|out| out.stdout.trim() == "active");
        let socket = active.then(|| SocketActivation {
            generator: [
                "/usr/lib/systemd/system-generators/sshd-socket-generator",
                "/lib/systemd/system-generators/sshd-socket-generator",
            ]
            .iter()
            .any(|p| matches!(host.stat(Path::new(p)), Ok(Some(_)))),
            drop_in: host.read_to_string(&socket_drop_in(unit)).ok().flatten(),
            drop_in_dir: socket_drop_in(unit)
                .parent()
                .is_some_and(|d| matches!(host.stat(d), Ok(Some(_)))),
        });
        let active = host
            .run(
                &Command::new(["systemctl", "is-active", &format!("{unit}.service")])
                    .timeout(SSHD_TIMEOUT),
            )
            .await
            .is_ok_and(|out| out.stdout.trim() == "active");
        return Activation::Systemd {
            unit: unit.to_owned(),
            socket,
            active,
        };
    }
    let pidfile = dump
        .and_then(|d| d.get("pidfile"))
        .and_then(|v| v.first().cloned())
        .or_else(|| {
            parsed
                .global("pidfile")
                .first()
                .and_then(|l| l.args.first().cloned())
        })
        .unwrap_or_else(|| "/run/sshd.pid".to_owned());
    let pidfile = PathBuf::from(pidfile);
    let running = host
        .read_to_string(&pidfile)
        .ok()
        .flatten()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .and_then(|pid| {
            host.read_to_string(&PathBuf::from(format!("/proc/{pid}/comm")))
                .ok()
                .flatten()
        })
        .is_some_and(|comm| comm.trim() == "sshd");
    Activation::Daemon { pidfile, running }
}

/// The socket drop-in harden owns on systems with socket activation and no generator.
pub(crate) fn socket_drop_in(unit: &str) -> PathBuf {
    PathBuf::from(format!(
        "/etc/systemd/system/{unit}.socket.d/00-harden-listen.conf"
    ))
}

/// TCP ports in LISTEN state, from `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_ports(host: &Host) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(Some(text)) = host.read_to_string(Path::new(table)) else {
            continue;
        };
        ports.extend(parse_listening(&text));
    }
    ports
}

fn parse_listening(text: &str) -> BTreeSet<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            if *state != "0A" {
                return None;
            }
            let port = local.rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_dump_keeps_repeated_keys() {
        let d = Dump::parse("port 22\nport 2222\npasswordauthentication no\nsubsystem sftp /usr/lib/openssh/sftp-server\n");
        assert_eq!(
            d.get("port"),
            Some(&["22".to_string(), "2222".to_string()][..])
        );
        assert_eq!(
            d.get("subsystem").map(|v| v[0].as_str()),
            Some("sftp /usr/lib/openssh/sftp-server")
        );
    }

    #[test]
    fn listening_sockets_come_from_proc() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        assert_eq!(parse_listening(tcp), BTreeSet::from([22]));
    }

    #[test]
    fn sshds_complaints_lose_their_prefix() {
        let out = harden_host::Output {
            code: Some(255),
            stdout: String::new(),
            stderr: "command-line line 0: Bad SSH2 cipher spec 'aes128-ctr,foo'.\n".into(),
        };
        assert_eq!(complaint(&out), "Bad SSH2 cipher spec 'aes128-ctr,foo'.");
    }
}
