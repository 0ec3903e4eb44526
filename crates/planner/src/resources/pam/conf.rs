//! The files the `pam` resource reads: pwquality configuration as libpwquality parses it
//! (`key = value` or a bare flag, `#` comments, the last value winning), the password stack
//! of `common-password`, and apt's install simulation.

use crate::located::At;

use super::{CONF_D, MAIN};

/// Settings that are flags: present or absent, no value.
const FLAGS: [&str; 2] = ["enforce_for_root", "local_users_only"];

/// One pwquality configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfFile {
    /// Its path.
    pub path: String,
    /// Its text.
    pub text: String,
    /// Its settings: line (from 1), key, value (`set` for a flag).
    pub entries: Vec<(usize, String, String)>,
}

impl ConfFile {
    /// Parses `text` as libpwquality does.
    pub fn parse(path: &str, text: &str) -> ConfFile {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    return None;
                }
                let (key, rest) = line
                    .split_once(|c: char| c.is_whitespace() || c == '=')
                    .unwrap_or((line, ""));
                let value = rest.trim_start().trim_start_matches('=').trim();
                let value = if FLAGS.contains(&key) { "set" } else { value };
                Some((i + 1, key.to_owned(), value.to_owned()))
            })
            .collect();
        ConfFile {
            path: path.to_owned(),
            text: text.to_owned(),
            entries,
        }
    }
}

/// One setting harden writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// libpwquality's key.
    pub key: &'static str,
    /// Its value (1 or 0 for a flag).
    pub value: i64,
    /// The key is a flag (present or absent).
    pub flag: bool,
    /// Where the playbook sets it.
    pub at: At,
}

impl Setting {
    /// `key = value`.
    pub fn number(key: &'static str, value: i64, at: At) -> Setting {
        Setting {
            key,
            value,
            flag: false,
            at,
        }
    }

    /// A bare `key` when `on`.
    pub fn flag(key: &'static str, on: bool, at: At) -> Setting {
        Setting {
            key,
            value: i64::from(on),
            flag: true,
            at,
        }
    }

    /// The value as [`ConfFile`] records it: the number, or `set` / `unset` for a flag.
    pub fn text(&self) -> String {
        match (self.flag, self.value) {
            (true, 0) => "unset".into(),
            (true, _) => "set".into(),
            (false, v) => v.to_string(),
        }
    }

    /// The line harden writes, `None` for a flag that is off (absence is the only way).
    pub fn line(&self) -> Option<String> {
        match (self.flag, self.value) {
            (true, 0) => None,
            (true, _) => Some(self.key.to_owned()),
            (false, v) => Some(format!("{} = {v}", self.key)),
        }
    }
}

/// True when libpwquality reads `path` after `own`: a later drop-in, or the main file.
fn read_after(path: &str, own: &str) -> bool {
    path == MAIN || (path.starts_with(CONF_D) && path > own)
}

/// The last place a file read after `own` sets `key`: path, line, value.
pub fn last_elsewhere(files: &[ConfFile], key: &str, own: &str) -> Option<(String, usize, String)> {
    files
        .iter()
        .filter(|f| f.path != own && read_after(&f.path, own))
        .flat_map(|f| {
            f.entries
                .iter()
                .filter(|(_, k, _)| k == key)
                .map(|(line, _, value)| (f.path.clone(), *line, value.clone()))
        })
        .last()
}

/// Where `key`'s effective value comes from now: path, line, value.
pub fn effective(files: &[ConfFile], key: &str) -> Option<(String, usize, String)> {
    files
        .iter()
        .flat_map(|f| {
            f.entries
                .iter()
                .filter(|(_, k, _)| k == key)
                .map(|(line, _, value)| (f.path.clone(), *line, value.clone()))
        })
        .last()
}

/// True when a `password` line of the stack runs `pam_pwquality`.
pub fn runs_pwquality(common_password: &str) -> bool {
    common_password.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some("password") && words.any(|w| w.ends_with("pam_pwquality.so"))
    })
}
