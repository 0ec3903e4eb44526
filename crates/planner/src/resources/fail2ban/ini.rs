//! A model of how fail2ban merges its jail files, to say where a value comes from and which
//! file would override harden's.
//!
//! fail2ban reads `jail.conf`, then `jail.d/*.conf`, then `jail.local`, then `jail.d/*.local`
//! (each group sorted by name); a later definition of the same key in the same section wins,
//! and a key set in a jail's own section beats `[DEFAULT]` whatever the file order. The
//! effective values themselves come from `fail2ban-client -d` ([`super::dump`]); this model
//! only locates them (`file:line`) and finds the files that sort after harden's.

/// Directory of fail2ban's configuration.
pub const ETC: &str = "/etc/fail2ban";

/// One `key = value` line (with its continuation lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Key, lowercased as Python's ConfigParser does.
    pub key: String,
    /// Value, continuation lines joined with `\n`.
    pub value: String,
    /// Line of the key, from 1.
    pub line: usize,
}

/// A `[section]` and its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Name between the brackets.
    pub name: String,
    /// Its entries in file order.
    pub entries: Vec<Entry>,
}

/// One parsed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Absolute path on the managed system.
    pub path: String,
    /// Sections in file order (a name may repeat).
    pub sections: Vec<Section>,
}

/// Where a value is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition<'a> {
    /// File path.
    pub path: &'a str,
    /// Section it is set in.
    pub section: &'a str,
    /// Line, from 1.
    pub line: usize,
    /// The value as written.
    pub value: &'a str,
}

impl Definition<'_> {
    /// `path:line`.
    pub fn place(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }
}

/// Parses an INI file the way fail2ban's `ConfigParser` does, as far as locating values needs.
pub fn parse(path: &str, text: &str) -> File {
    let mut sections: Vec<Section> = Vec::new();
    let mut in_entry = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() {
            in_entry = false;
            continue;
        }
        if trimmed.starts_with(['#', ';']) {
            continue;
        }
        let value = strip_inline_comment(trimmed);
        if line.starts_with([' ', '\t']) && in_entry {
            if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                if !entry.value.is_empty() {
                    entry.value.push('\n');
                }
                entry.value.push_str(value);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            sections.push(Section {
                name: name.trim().to_owned(),
                entries: Vec::new(),
            });
            in_entry = false;
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else {
            in_entry = false;
            continue;
        };
        let Some(section) = sections.last_mut() else {
            in_entry = false;
            continue;
        };
        let key = trimmed[..split].trim().to_ascii_lowercase();
        let value = strip_inline_comment(trimmed[split + 1..].trim());
        section.entries.push(Entry {
            key,
            value: value.to_owned(),
            line: index + 1,
        });
        in_entry = true;
    }
    File {
        path: path.to_owned(),
        sections,
    }
}

/// ` ;` (whitespace then `;`) starts an inline comment.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b';' && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

/// The files fail2ban reads for its jails, in the order it reads them, given the names in
/// `jail.d/` (any order) and whether `jail.local` exists.
pub fn merge_order(jail_d: &[String], jail_local: bool) -> Vec<String> {
    merge_order_of("jail", jail_d, jail_local)
}

/// The same order for any of fail2ban's files: `BASE.conf`, `BASE.d/*.conf`, `BASE.local`,
/// `BASE.d/*.local` (`fail2ban` for the server's own settings).
pub fn merge_order_of(base: &str, names_in_d: &[String], local: bool) -> Vec<String> {
    let mut names: Vec<&String> = names_in_d.iter().filter(|n| !n.starts_with('.')).collect();
    names.sort();
    let mut paths = vec![format!("{ETC}/{base}.conf")];
    paths.extend(
        names
            .iter()
            .filter(|n| n.ends_with(".conf"))
            .map(|n| format!("{ETC}/{base}.d/{n}")),
    );
    if local {
        paths.push(format!("{ETC}/{base}.local"));
    }
    paths.extend(
        names
            .iter()
            .filter(|n| n.ends_with(".local"))
            .map(|n| format!("{ETC}/{base}.d/{n}")),
    );
    paths
}

/// The jail files as fail2ban merges them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Files in merge order.
    pub files: Vec<File>,
}

impl Config {
    /// Every definition of `key` in `section`, in merge order.
    pub fn definitions<'a>(
        &'a self,
        section: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = Definition<'a>> + 'a {
        self.files.iter().flat_map(move |file| {
            file.sections
                .iter()
                .filter(move |s| s.name == section)
                .flat_map(move |s| {
                    s.entries
                        .iter()
                        .filter(move |e| e.key == key)
                        .map(move |e| Definition {
                            path: &file.path,
                            section: &s.name,
                            line: e.line,
                            value: &e.value,
                        })
                })
        })
    }

    /// Where the value of `key` that jail `jail` runs with is set: the last definition in
    /// the jail's own section, else the last in `[DEFAULT]`.
    pub fn source<'a>(&'a self, jail: &'a str, key: &'a str) -> Option<Definition<'a>> {
        self.definitions(jail, key)
            .last()
            .or_else(|| self.definitions("DEFAULT", key).last())
    }

    /// Definitions read after the file `path` that override what `path` sets for `key` in
    /// `jail` (`own`: `path` sets it in the jail's own section; otherwise only in `[DEFAULT]`,
    /// which any jail section overrides, wherever it is).
    pub fn overriders<'a>(
        &'a self,
        path: &str,
        jail: &'a str,
        key: &'a str,
        own: bool,
    ) -> Vec<Definition<'a>> {
        let Some(position) = self.files.iter().position(|f| f.path == path) else {
            return Vec::new();
        };
        let later = |d: &Definition<'_>| {
            self.files
                .iter()
                .position(|f| f.path == d.path)
                .is_some_and(|i| i > position)
        };
        let mut found: Vec<Definition<'a>> = self
            .definitions(jail, key)
            .filter(|d| !own || later(d))
            .collect();
        if !own {
            found.retain(|d| d.path != path);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn conf_then_jail_local_then_local_each_sorted() {
        let order = merge_order(
            &names(&[
                "zz-harden.local",
                "defaults-debian.conf",
                "a.local",
                "00-x.conf",
                ".hidden.local",
            ]),
            true,
        );
        assert_eq!(
            order,
            vec![
                "/etc/fail2ban/jail.conf",
                "/etc/fail2ban/jail.d/00-x.conf",
                "/etc/fail2ban/jail.d/defaults-debian.conf",
                "/etc/fail2ban/jail.local",
                "/etc/fail2ban/jail.d/a.local",
                "/etc/fail2ban/jail.d/zz-harden.local",
            ]
        );
        // Digits sort before letters: a harden file named 00-*.local would lose to a.local.
        let order = merge_order(&names(&["00-harden.local", "sshd.local"]), false);
        assert_eq!(
            order.last().map(String::as_str),
            Some("/etc/fail2ban/jail.d/sshd.local")
        );
    }

    #[test]
    fn parses_sections_continuations_and_comments() {
        let file = parse(
            "/etc/fail2ban/jail.local",
            "# comment\n[DEFAULT]\nbantime = 1h ; inline\n\n[sshd]\nenabled: true\nlogpath = /var/log/a.log\n          /var/log/b.log\n; comment\nMaxRetry=3\n",
        );
        assert_eq!(file.sections.len(), 2);
        assert_eq!(
            file.sections[0].entries[0],
            Entry {
                key: "bantime".into(),
                value: "1h".into(),
                line: 3
            }
        );
        let sshd = &file.sections[1];
        assert_eq!(sshd.entries[0].value, "true");
        assert_eq!(sshd.entries[1].value, "/var/log/a.log\n/var/log/b.log");
        assert_eq!(
            sshd.entries[2],
            Entry {
                key: "maxretry".into(),
                value: "3".into(),
                line: 10
            }
        );
    }

    fn config() -> Config {
        Config {
            files: vec![
                parse("/etc/fail2ban/jail.conf", "[DEFAULT]\nmaxretry = 5\nbackend = auto\n[sshd]\nport = ssh\nbackend = %(sshd_backend)s\n"),
                parse("/etc/fail2ban/jail.d/defaults-debian.conf", "[sshd]\nenabled = true\n"),
                parse("/etc/fail2ban/jail.local", "[sshd]\nmaxretry = 10\n"),
                parse("/etc/fail2ban/jail.d/zz-harden.local", "[DEFAULT]\nmaxretry = 3\nbackend = polling\n[sshd]\nport = 2222\n"),
                parse("/etc/fail2ban/jail.d/zzz-late.local", "[sshd]\nport = 22\n"),
            ],
        }
    }

    #[test]
    fn a_jail_section_beats_default_whatever_the_file_order() {
        let cx = config();
        let src = cx.source("sshd", "maxretry").expect("set");
        assert_eq!(
            (src.path, src.line, src.value),
            ("/etc/fail2ban/jail.local", 2, "10")
        );
        let src = cx.source("sshd", "backend").expect("set");
        assert_eq!(src.path, "/etc/fail2ban/jail.conf");
        let src = cx.source("recidive", "maxretry").expect("set");
        assert_eq!(src.path, "/etc/fail2ban/jail.d/zz-harden.local");
    }

    #[test]
    fn overriders_of_harden_values_are_found() {
        let cx = config();
        let ours = "/etc/fail2ban/jail.d/zz-harden.local";
        // [DEFAULT] values are beaten by any jail section, before or after.
        let over = cx.overriders(ours, "sshd", "maxretry", false);
        assert_eq!(
            over.iter().map(Definition::place).collect::<Vec<_>>(),
            vec!["/etc/fail2ban/jail.local:2"]
        );
        // Jail-section values only by later files.
        let over = cx.overriders(ours, "sshd", "port", true);
        assert_eq!(
            over.iter().map(Definition::place).collect::<Vec<_>>(),
            vec!["/etc/fail2ban/jail.d/zzz-late.local:2"]
        );
        assert!(cx.overriders(ours, "sshd", "enabled", true).is_empty());
    }
}
