//! fail2ban's reading of its jail configuration (what `fail2ban-client -d` dumps), done in
//! this process: the same files in the same order, `[INCLUDES]` `before`/`after` with their
//! `.local` siblings, `KNOWN/` sections for replaced values, conditional sections, the same
//! interpolation ([`super::configparser`]), the jail options with fail2ban's types and
//! defaults, action names, and log paths globbed as fail2ban globs them.
//!
//! It covers what the plan compares: which jails run, their backend, their own settings,
//! log files, ignored addresses and actions (with `port` and `protocol` where the action
//! line gives them). Filters are found, not evaluated: their expressions and settings
//! (`failregex`, `usedns`, `maxlines`, ...) are left empty, and the caller asks
//! `fail2ban-client -d` when the playbook needs them. Anything unusual is [`Unsupported`],
//! which sends the caller to fail2ban itself too.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::LazyLock;

use fancy_regex::Regex;
use harden_host::{Host, Kind};

use super::configparser::{self, unsupported, Config, Parsed, Unsupported};
use super::dump::{Action, Dump, Jail};

/// A jail's own options that the dump shows as `['set', jail, option, value]`, with their
/// type: fail2ban's `JailReader._configOpts` less those it sends another way.
const SETTINGS: [(&str, Type); 16] = [
    ("maxretry", Type::Int),
    ("maxmatches", Type::Int),
    ("findtime", Type::Text),
    ("bantime", Type::Text),
    ("bantime.increment", Type::Bool),
    ("bantime.factor", Type::Text),
    ("bantime.formula", Type::Text),
    ("bantime.multipliers", Type::Text),
    ("bantime.maxtime", Type::Text),
    ("bantime.rndtime", Type::Text),
    ("bantime.overalljails", Type::Bool),
    ("ignorecommand", Type::Text),
    ("ignoreself", Type::Bool),
    ("ignorecache", Type::Text),
    ("logtimezone", Type::Text),
    ("logencoding", Type::Text),
];

/// The filter's options a jail may set (`FilterReader._configOpts`): read, so that an error
/// in them is noticed, but reported through the filter, which this reader leaves to
/// fail2ban.
const FILTER_OPTIONS: [(&str, Type); 7] = [
    ("usedns", Type::Text),
    ("prefregex", Type::Text),
    ("ignoreregex", Type::Text),
    ("failregex", Type::Text),
    ("maxlines", Type::Int),
    ("datepattern", Type::Text),
    ("journalmatch", Type::Text),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Text,
    Int,
    Bool,
}

/// Reads the jails under `base` (`/etc/fail2ban` on the managed system) as
/// `fail2ban-client -d` would report them.
pub fn read(host: &Host, base: &str) -> Result<Dump, Unsupported> {
    let mut files = Files {
        host,
        base: base.trim_end_matches('/').to_owned(),
        parsed: HashMap::new(),
    };
    let Some(mut config) = files.read("jail")? else {
        return unsupported!("no jail configuration under {base}");
    };
    config
        .defaults
        .insert("fail2ban_confpath".to_owned(), files.base.clone());
    let mut dump = Dump::default();
    // fail2ban's `sections()` leaves out the `KNOWN/` ones.
    let jails = config
        .sections
        .keys()
        .filter(|s| *s != "INCLUDES" && !s.starts_with("KNOWN/"));
    for section in jails {
        let enabled = value(&config, section, "enabled", Type::Bool)?;
        let backend = value(&config, section, "backend", Type::Text)?;
        let filter = value(&config, section, "filter", Type::Text)?;
        if enabled.as_deref() != Some("true") {
            continue;
        }
        let mut jail = Jail {
            backend: backend.unwrap_or_else(|| "auto".to_owned()),
            started: true,
            ..Jail::default()
        };
        if let Some(filter) = filter.filter(|f| !f.is_empty()) {
            let (name, _) = extract_options(&filter)?;
            files.require(&format!("filter.d/{name}"), section)?;
        }
        for (key, kind) in SETTINGS {
            if let Some(v) = value(&config, section, key, kind)? {
                jail.settings.insert(key.to_owned(), v);
            }
        }
        for (key, kind) in FILTER_OPTIONS {
            value(&config, section, key, kind)?;
        }
        if let Some(ignoreip) = value(&config, section, "ignoreip", Type::Text)? {
            jail.ignoreips = split_words(section, &ignoreip)?;
        }
        if let Some(action) = value(&config, section, "action", Type::Text)? {
            read_actions(&mut files, section, &action, &mut jail)?;
        }
        if !jail.backend.starts_with("systemd") {
            if let Some(logpath) = value(&config, section, "logpath", Type::Text)? {
                for line in logpath.split('\n') {
                    let (pattern, tail) = line.rsplit_once(' ').unwrap_or((line, "head"));
                    if !matches!(tail, "head" | "tail") {
                        return unsupported!("[{section}] logpath {line:?}");
                    }
                    jail.logpaths.extend(glob(host, pattern)?);
                }
                if jail.logpaths.is_empty() {
                    dump.without_logs.push(section.clone());
                }
            }
        }
        dump.jails.insert(section.clone(), jail);
    }
    Ok(dump)
}

/// Where this reading and fail2ban's dump disagree, on what this reading covers.
pub fn differences(own: &Dump, theirs: &Dump) -> Vec<String> {
    let mut found = Vec::new();
    let names = |d: &Dump| d.jails.keys().cloned().collect::<Vec<_>>();
    if names(own) != names(theirs) {
        found.push(format!(
            "jails {:?}, fail2ban: {:?}",
            names(own),
            names(theirs)
        ));
    }
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    for (name, mine) in &own.jails {
        let Some(other) = theirs.jails.get(name) else {
            continue;
        };
        let mut differs = |what: &str, a: String, b: String| {
            if a != b {
                found.push(format!("jail {name} {what}: {a}, fail2ban: {b}"));
            }
        };
        differs("backend", mine.backend.clone(), other.backend.clone());
        differs(
            "started",
            mine.started.to_string(),
            other.started.to_string(),
        );
        for (key, _) in SETTINGS {
            differs(
                key,
                format!("{:?}", mine.settings.get(key)),
                format!("{:?}", other.settings.get(key)),
            );
        }
        differs(
            "logpath",
            format!("{:?}", sorted(&mine.logpaths)),
            format!("{:?}", sorted(&other.logpaths)),
        );
        differs(
            "ignoreip",
            format!("{:?}", mine.ignoreips),
            format!("{:?}", other.ignoreips),
        );
        let actions = |j: &Jail| j.actions.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
        differs(
            "actions",
            format!("{:?}", actions(mine)),
            format!("{:?}", actions(other)),
        );
        for (a, b) in mine.actions.iter().zip(&other.actions) {
            for (key, value) in &a.params {
                differs(
                    &format!("action {} {key}", a.name),
                    value.clone(),
                    b.params.get(key).cloned().unwrap_or_default(),
                );
            }
        }
    }
    if sorted(&own.without_logs) != sorted(&theirs.without_logs) {
        found.push(format!(
            "jails without logs {:?}, fail2ban: {:?}",
            sorted(&own.without_logs),
            sorted(&theirs.without_logs)
        ));
    }
    found
}

/// One option of a jail with fail2ban's conversion (`int`, `bool`), as the dump prints it.
fn value(
    config: &Config,
    section: &str,
    key: &str,
    kind: Type,
) -> Result<Option<String>, Unsupported> {
    let Some(text) = config.get(section, key)? else {
        return Ok(None);
    };
    Ok(Some(match kind {
        Type::Text => text,
        // Python's `int()`: surrounding whitespace and a sign are accepted.
        Type::Int => match text.trim().parse::<i64>() {
            Ok(n)
                if text
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') =>
            {
                n.to_string()
            }
            _ => return unsupported!("[{section}] {key} = {text:?} is not a number"),
        },
        Type::Bool => {
            let on = matches!(text.to_lowercase().as_str(), "1" | "on" | "true" | "yes");
            on.to_string()
        }
    }))
}

/// fail2ban's `splitwords` for `ignoreip`; whitespace other than spaces and new lines splits
/// differently between fail2ban versions, so it is left to fail2ban.
fn split_words(section: &str, text: &str) -> Result<Vec<String>, Unsupported> {
    if text
        .chars()
        .any(|c| c.is_whitespace() && c != ' ' && c != '\n')
    {
        return unsupported!("[{section}] ignoreip holds a tab or other white space");
    }
    Ok(text
        .split([' ', ',', '\n'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The jail's actions: each named one must exist in `action.d/`.
fn read_actions(
    files: &mut Files<'_>,
    section: &str,
    text: &str,
    jail: &mut Jail,
) -> Result<(), Unsupported> {
    for token in split_with_options(text)? {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        let (name, options) = extract_options(token)?;
        if name.ends_with(".py") {
            return unsupported!("[{section}] runs the Python action {name}");
        }
        files.require(&format!("action.d/{name}"), section)?;
        let params: BTreeMap<String, String> = options
            .into_iter()
            .filter(|(k, v)| (k == "port" || k == "protocol") && !v.contains('<'))
            .collect();
        if jail.actions.is_empty() {
            for key in ["port", "protocol"] {
                if !params.contains_key(key) {
                    // From the action's own [Init], after tag substitution: fail2ban knows.
                    jail.unresolved.insert(key.to_owned());
                }
            }
        }
        jail.actions.push(Action { name, params });
    }
    Ok(())
}

/// Python's `$`: the end, or before a new line that ends the text.
const END: &str = r"(?=\n?\z)";

static OPTION: LazyLock<Result<Regex, fancy_regex::Error>> =
    LazyLock::new(|| Regex::new(&format!(r"(?s)^([^\[]+)(?:\[(.*)\])?\s*{END}")));
static OPTION_EXTRACT: LazyLock<Result<Regex, fancy_regex::Error>> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?s)\s*([\w\-_\.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|{END}|(?P<wrngA>.+))|,?\s*{END}|(?P<wrngB>.+)"#
    ))
});
static OPTION_SPLIT: LazyLock<Result<Regex, fancy_regex::Error>> = LazyLock::new(|| {
    Regex::new(
        r#"(?s)(?:[^\[\s]+(?:\s*\[\s*(?:[\w\-_\.]+=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?\s*|\S+)(?=\n\s*|\s+|\n?\z)"#,
    )
});

fn regex(
    re: &'static LazyLock<Result<Regex, fancy_regex::Error>>,
) -> Result<&'static Regex, Unsupported> {
    re.as_ref()
        .map_err(|e| Unsupported(format!("fail2ban's option syntax: {e}")))
}

/// fail2ban's `extractOptions`: `name[key=value, key="value"]` into the name and options.
fn extract_options(text: &str) -> Result<(String, BTreeMap<String, String>), Unsupported> {
    let failed = |e: fancy_regex::Error| Unsupported(format!("{text:?}: {e}"));
    let Some(caps) = regex(&OPTION)?.captures(text).map_err(failed)? else {
        return unsupported!("{text:?}: not `name[options]`");
    };
    let name = caps.get(1).map_or("", |m| m.as_str()).to_owned();
    let mut options = BTreeMap::new();
    if let Some(body) = caps.get(2).map(|m| m.as_str()).filter(|b| !b.is_empty()) {
        for found in regex(&OPTION_EXTRACT)?.captures_iter(body) {
            let found = found.map_err(failed)?;
            if found.name("wrngA").is_some() || found.name("wrngB").is_some() {
                return unsupported!("{text:?}: options fail2ban refuses");
            }
            let Some(key) = found.get(1) else { continue };
            let value = (2..=4)
                .find_map(|i| found.get(i))
                .map_or("", |m| m.as_str());
            options.insert(key.as_str().trim().to_owned(), value.trim().to_owned());
        }
    }
    Ok((name, options))
}

/// fail2ban's `splitWithOptions`: an action line into its actions.
fn split_with_options(text: &str) -> Result<Vec<String>, Unsupported> {
    regex(&OPTION_SPLIT)?
        .find_iter(text)
        .map(|m| {
            m.map(|m| m.as_str().to_owned())
                .map_err(|e| Unsupported(format!("{text:?}: {e}")))
        })
        .collect()
}

/// The files of fail2ban's configuration, each parsed once.
struct Files<'h> {
    host: &'h Host,
    base: String,
    parsed: HashMap<String, Option<Parsed>>,
}

impl Files<'_> {
    /// `ConfigReader.read(name)`: `name.conf`, `name.d/*.conf`, `name.local`,
    /// `name.d/*.local` that exist, with their includes, merged; `None` when none exists.
    fn read(&mut self, name: &str) -> Result<Option<Config>, Unsupported> {
        let base = format!("{}/{name}", self.base);
        let dir = format!("{base}.d");
        let names = self.names_in(&dir)?;
        let in_dir = |suffix: &str| {
            names
                .iter()
                .filter(|n| !n.starts_with('.') && n.ends_with(suffix))
                .map(|n| format!("{dir}/{n}"))
                .collect::<Vec<_>>()
        };
        let mut candidates = vec![format!("{base}.conf")];
        candidates.extend(in_dir(".conf"));
        candidates.push(format!("{base}.local"));
        candidates.extend(in_dir(".local"));
        let mut existing = Vec::new();
        for path in candidates {
            if self.is_file(&path)? {
                existing.push(path);
            }
        }
        if existing.is_empty() {
            return Ok(None);
        }
        let mut order = Vec::new();
        self.includes(&existing, &[], &mut order)?;
        let mut config = Config::default();
        for path in &order {
            if let Some(parsed) = self.parse(path)? {
                merge(&mut config, parsed);
            }
        }
        Ok(Some(config))
    }

    /// Fails unless `name` (a filter or action) exists and reads cleanly.
    fn require(&mut self, name: &str, section: &str) -> Result<(), Unsupported> {
        match self.read(name)? {
            Some(_) => Ok(()),
            None => unsupported!("[{section}] uses {name}, which does not exist"),
        }
    }

    /// `_getIncludes`: each file after its `before` files and before its `after` files,
    /// a file's `.local` sibling after it; a file already on the way is not read again.
    fn includes(
        &mut self,
        paths: &[String],
        seen: &[String],
        order: &mut Vec<String>,
    ) -> Result<(), Unsupported> {
        let mut expanded = Vec::new();
        for path in paths {
            expanded.push(path.clone());
            let local = format!("{}.local", without_extension(path));
            if !paths.contains(&local) && self.is_file(&local)? {
                expanded.push(local);
            }
        }
        for path in &expanded {
            let Some(parsed) = self.parse(path)? else {
                continue;
            };
            let lists = ["before", "after"].map(|key| {
                parsed
                    .sections
                    .iter()
                    .find(|(name, _)| name == "INCLUDES")
                    .and_then(|(_, options)| options.get(key).cloned())
            });
            let dir = Path::new(path)
                .parent()
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned());
            let mut chain = seen.to_vec();
            chain.push(path.clone());
            let resolve = |list: &Option<String>, files: &mut Self, order: &mut Vec<String>| {
                let Some(list) = list else { return Ok(()) };
                if list.contains('%') {
                    return unsupported!("{path}: [INCLUDES] with a reference");
                }
                for line in list.split('\n').filter(|l| !l.is_empty()) {
                    let target = if line.starts_with('/') {
                        line.to_owned()
                    } else {
                        format!("{dir}/{line}")
                    };
                    if !seen.contains(&target) {
                        files.includes(&[target], &chain, order)?;
                    }
                }
                Ok(())
            };
            resolve(&lists[0], self, order)?;
            order.push(path.clone());
            resolve(&lists[1], self, order)?;
        }
        Ok(())
    }

    /// The parsed file at `path`; `None` when it does not exist (Python skips it).
    fn parse(&mut self, path: &str) -> Result<Option<Parsed>, Unsupported> {
        if let Some(parsed) = self.parsed.get(path) {
            return Ok(parsed.clone());
        }
        let parsed = if self.is_file(path)? {
            let bytes = self
                .host
                .read(Path::new(path))
                .map_err(|e| Unsupported(format!("{path}: {e}")))?
                .unwrap_or_default();
            let Ok(text) = String::from_utf8(bytes) else {
                return unsupported!("{path}: not UTF-8");
            };
            Some(configparser::parse(path, &text)?)
        } else {
            None
        };
        self.parsed.insert(path.to_owned(), parsed.clone());
        Ok(parsed)
    }

    /// True for a regular file, false when nothing is there; links and other kinds are left
    /// to fail2ban.
    fn is_file(&self, path: &str) -> Result<bool, Unsupported> {
        match kind(self.host, path)? {
            None => Ok(false),
            Some(Kind::File) => Ok(true),
            Some(other) => unsupported!("{path} is a {other:?}"),
        }
    }

    /// Names in `dir` (none when it does not exist).
    fn names_in(&self, dir: &str) -> Result<Vec<String>, Unsupported> {
        match kind(self.host, dir)? {
            None => return Ok(Vec::new()),
            Some(Kind::Dir) => {}
            Some(other) => return unsupported!("{dir} is a {other:?}"),
        }
        let names = self
            .host
            .read_dir(Path::new(dir))
            .map_err(|e| Unsupported(format!("{dir}: {e}")))?;
        names
            .into_iter()
            .map(|n| {
                n.into_string()
                    .map_err(|n| Unsupported(format!("{dir}: name {n:?} is not UTF-8")))
            })
            .collect()
    }
}

/// Python's `os.path.splitext(path)[0]`: the path without the extension of its last
/// component (leading dots of a name start no extension).
fn without_extension(path: &str) -> &str {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let name = &path[name_start..];
    let leading = name.len() - name.trim_start_matches('.').len();
    match name[leading..].rfind('.') {
        Some(dot) => &path[..name_start + leading + dot],
        None => path,
    }
}

fn kind(host: &Host, path: &str) -> Result<Option<Kind>, Unsupported> {
    host.stat(Path::new(path))
        .map(|s| s.map(|s| s.kind))
        .map_err(|e| Unsupported(format!("{path}: {e}")))
}

/// One file's sections over the configuration so far, as fail2ban's `read` merges them.
fn merge(config: &mut Config, parsed: Parsed) {
    config.defaults.extend(parsed.defaults);
    for (name, mut options) in parsed.sections {
        // `[name?cond]` adds `key?cond` options to `[name]`.
        let name = match name.split_once('?') {
            Some((base, cond))
                if !base.is_empty()
                    && !cond.is_empty()
                    && base.chars().all(|c| c.is_alphanumeric() || c == '_') =>
            {
                options = options
                    .into_iter()
                    .map(|(k, v)| (format!("{k}?{cond}"), v))
                    .collect();
                base.to_owned()
            }
            _ => name,
        };
        if let Some(existing) = config.sections.get(&name) {
            let replaced: configparser::Options = existing
                .iter()
                .filter(|(k, _)| options.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            config
                .sections
                .entry(format!("KNOWN/{name}"))
                .or_default()
                .extend(replaced);
        }
        config.sections.entry(name).or_default().extend(options);
    }
}

/// Python's `glob.glob(pattern)` followed by fail2ban's check that each match exists: a
/// pattern only in the last component, matched against the directory's names (hidden ones
/// only by a pattern starting with `.`).
fn glob(host: &Host, pattern: &str) -> Result<Vec<String>, Unsupported> {
    if pattern.is_empty() {
        return Ok(Vec::new());
    }
    if !pattern.starts_with('/') || pattern.ends_with('/') || pattern.contains('\\') {
        return unsupported!("log path {pattern:?}");
    }
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let dir = if dir.is_empty() { "/" } else { dir };
    let magic = |s: &str| s.contains(['*', '?', '[']);
    if magic(dir) || name.contains("**") {
        return unsupported!("log path {pattern:?}: a pattern fail2ban expands itself");
    }
    let candidates = if magic(name) {
        let Ok(matcher) = glob::Pattern::new(name) else {
            return unsupported!("log path {pattern:?}");
        };
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let names = match kind(host, dir)? {
            Some(Kind::Dir) => host
                .read_dir(Path::new(dir))
                .map_err(|e| Unsupported(format!("{dir}: {e}")))?,
            Some(Kind::Symlink) => return unsupported!("log directory {dir} is a link"),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .filter(|n| name.starts_with('.') || !n.starts_with('.'))
            .filter(|n| matcher.matches_with(n, options))
            .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
            .collect()
    } else {
        vec![pattern.to_owned()]
    };
    let mut found = Vec::new();
    for path in candidates {
        match kind(host, &path)? {
            None => {}
            Some(Kind::Symlink) => return unsupported!("log path {path} is a link"),
            Some(_) => found.push(path),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_of_actions_and_filters_as_fail2ban_extracts_them() {
        let (name, options) =
            extract_options(r#"nftables[port="ssh,2222", protocol=tcp, chain='<known/chain>']"#)
                .expect("extracts");
        assert_eq!(name, "nftables");
        assert_eq!(options["port"], "ssh,2222");
        assert_eq!(options["protocol"], "tcp");
        assert_eq!(options["chain"], "<known/chain>");
        assert_eq!(extract_options("sshd").expect("plain").0, "sshd");
        assert!(extract_options("a[x=1, !]").is_err());
    }

    #[test]
    fn action_lines_split_between_actions_not_inside_their_options() {
        assert_eq!(
            split_with_options("iptables[name=a, port=\"1 2\"]\n  sendmail[dest=x]\nplain")
                .expect("splits"),
            // What fail2ban 1.0.2's own `splitWithOptions` returns for it.
            vec![
                "iptables[name=a, port=\"1 2\"]\n ",
                "sendmail[dest=x]",
                "plain"
            ]
        );
    }

    #[test]
    fn differences_name_the_jail_and_the_option() {
        let mut own = Dump::default();
        let mut jail = Jail {
            backend: "systemd".into(),
            started: true,
            ..Jail::default()
        };
        jail.settings.insert("maxretry".into(), "3".into());
        own.jails.insert("sshd".into(), jail.clone());
        let mut theirs = own.clone();
        assert!(differences(&own, &theirs).is_empty());
        jail.settings.insert("maxretry".into(), "5".into());
        theirs.jails.insert("sshd".into(), jail.clone());
        theirs.jails.insert("recidive".into(), jail);
        theirs.without_logs.push("recidive".into());
        let found = differences(&own, &theirs);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[1].contains("jail sshd maxretry"), "{found:?}");
    }

    #[test]
    fn extensions_as_python_splits_them() {
        assert_eq!(
            without_extension("/etc/fail2ban/jail.conf"),
            "/etc/fail2ban/jail"
        );
        assert_eq!(without_extension("/etc/a.d/paths"), "/etc/a.d/paths");
        assert_eq!(without_extension("/etc/a/.hidden"), "/etc/a/.hidden");
        assert_eq!(without_extension("/etc/a/x.tar.gz"), "/etc/a/x.tar");
    }

    #[test]
    fn later_files_replace_and_remember_what_they_replaced() {
        let mut config = Config::default();
        let first = configparser::parse("/a", "[sshd]\nport = ssh\nmaxretry = 3\n[j?x=1]\nk = v\n")
            .expect("parses");
        let second = configparser::parse("/b", "[sshd]\nport = 2222\n").expect("parses");
        merge(&mut config, first);
        merge(&mut config, second);
        assert_eq!(config.sections["sshd"]["port"], "2222");
        assert_eq!(config.sections["sshd"]["maxretry"], "3");
        assert_eq!(config.sections["KNOWN/sshd"]["port"], "ssh");
        assert_eq!(config.sections["j"]["k?x=1"], "v");
    }
}
