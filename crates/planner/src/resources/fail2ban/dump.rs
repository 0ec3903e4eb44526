//! What fail2ban will run with: the output of `fail2ban-client -d`.
//!
//! `-d` parses the whole configuration (jail.conf, jail.d, the .local files, filters and
//! actions, with every interpolation done) and prints the commands it would send to the
//! server, one Python list per line: `['set', 'sshd', 'maxretry', 5]`. It needs no running
//! server, so it is the probe of the effective configuration.

use std::collections::{BTreeMap, BTreeSet};

/// A value of Python's literal syntax, as far as the dump uses it.
#[derive(Clone, Debug, PartialEq)]
pub enum Py {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// A list or tuple.
    List(Vec<Py>),
}

impl Py {
    /// The value as fail2ban would write it in a file.
    pub fn text(&self) -> String {
        match self {
            Py::Str(s) => s.clone(),
            Py::Int(n) => n.to_string(),
            Py::Float(x) => x.to_string(),
            Py::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
            Py::None => String::new(),
            Py::List(items) => items.iter().map(Py::text).collect::<Vec<_>>().join(" "),
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Py::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses one Python literal (the whole of `text`).
pub fn parse_literal(text: &str) -> Result<Py, String> {
    let mut parser = Parser {
        chars: text.char_indices().peekable(),
        text,
    };
    let value = parser.value()?;
    parser.skip_ws();
    match parser.chars.peek() {
        None => Ok(value),
        Some((i, _)) => Err(format!("trailing text at {i}")),
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            self.chars.next();
        }
    }

    fn value(&mut self) -> Result<Py, String> {
        self.skip_ws();
        match self.chars.peek().map(|(_, c)| *c) {
            Some('[') | Some('(') => self.list(),
            Some('\'') | Some('"') => self.string().map(Py::Str),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let word = self.word();
                match word.as_str() {
                    "True" => Ok(Py::Bool(true)),
                    "False" => Ok(Py::Bool(false)),
                    "None" => Ok(Py::None),
                    other => Err(format!("unexpected word {other:?}")),
                }
            }
            Some(c) => Err(format!("unexpected {c:?}")),
            None => Err("unexpected end".into()),
        }
    }

    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some((_, c)) = self.chars.peek().copied() {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        word
    }

    fn number(&mut self) -> Result<Py, String> {
        let mut text = String::new();
        while let Some((_, c)) = self.chars.peek().copied() {
            if c.is_ascii_digit() || "-+.eE".contains(c) {
                text.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Py::Int(n));
        }
        text.parse::<f64>()
            .map(Py::Float)
            .map_err(|_| format!("bad number {text:?}"))
    }

    fn list(&mut self) -> Result<Py, String> {
        let close = match self.chars.next() {
            Some((_, '[')) => ']',
            _ => ')',
        };
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.chars.peek().is_some_and(|(_, c)| *c == close) {
                self.chars.next();
                return Ok(Py::List(items));
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.chars.next() {
                Some((_, ',')) => {}
                Some((_, c)) if c == close => return Ok(Py::List(items)),
                Some((i, c)) => {
                    return Err(format!("expected `,` or `{close}` at {i}, found {c:?}"))
                }
                None => return Err(format!("unclosed list in {:?}", self.text)),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let Some((_, quote)) = self.chars.next() else {
            return Err("expected a string".into());
        };
        let mut out = String::new();
        loop {
            let Some((_, c)) = self.chars.next() else {
                return Err("unterminated string".into());
            };
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = self.chars.next() else {
                return Err("unterminated escape".into());
            };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' | '\'' | '"' => out.push(e),
                'x' => out.push(self.hex(2)?),
                'u' => out.push(self.hex(4)?),
                'U' => out.push(self.hex(8)?),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Result<char, String> {
        let mut code = 0u32;
        for _ in 0..digits {
            let digit = self
                .chars
                .next()
                .and_then(|(_, c)| c.to_digit(16))
                .ok_or("bad escape")?;
            code = code * 16 + digit;
        }
        char::from_u32(code).ok_or_else(|| "bad escape".into())
    }
}

/// One action of a jail, with its parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Action {
    /// Its name (`nftables-multiport`).
    pub name: String,
    /// Parameters (`port`, `protocol`, ...), interpolated.
    pub params: BTreeMap<String, String>,
}

/// What fail2ban would run for one jail.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Jail {
    /// Backend from `['add', jail, backend]`.
    pub backend: String,
    /// `set` options: `maxretry`, `findtime`, `bantime.increment`, ...
    pub settings: BTreeMap<String, String>,
    /// Log files (`addlogpath`).
    pub logpaths: Vec<String>,
    /// Addresses never banned (`addignoreip`).
    pub ignoreips: Vec<String>,
    /// Failure expressions.
    pub failregex: Vec<String>,
    /// Ignored expressions.
    pub ignoreregex: Vec<String>,
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// True when the dump starts it.
    pub started: bool,
    /// Options harden's own reading ([`super::reader`]) could not resolve (`port`,
    /// `protocol` given by the action's own file); empty in fail2ban's dump.
    pub unresolved: BTreeSet<String>,
}

impl Jail {
    /// The effective value of a jail option, as the playbook would write it; `None` for
    /// options the dump does not show.
    pub fn option(&self, key: &str) -> Option<String> {
        match key {
            "enabled" => Some(self.started.to_string()),
            "backend" => Some(self.backend.clone()),
            "logpath" => Some(self.logpaths.join(" ")),
            "ignoreip" => Some(self.ignoreips.join(" ")),
            "banaction" => self.actions.first().map(|a| a.name.clone()),
            "action" => Some(
                self.actions
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "port" | "protocol" => self
                .actions
                .first()
                .and_then(|a| a.params.get(key).cloned()),
            _ => self.settings.get(key).cloned(),
        }
    }
}

/// The parsed dump.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dump {
    /// Jails by name (only enabled jails appear).
    pub jails: BTreeMap<String, Jail>,
    /// Jails fail2ban found no log file for (from its warnings).
    pub without_logs: Vec<String>,
}

/// Parses `fail2ban-client -d`: commands on stdout, warnings on stderr.
pub fn parse(stdout: &str, stderr: &str) -> Result<Dump, String> {
    let mut dump = Dump::default();
    for line in stdout.lines().map(str::trim).filter(|l| l.starts_with('[')) {
        let Py::List(items) = parse_literal(line)
            .map_err(|e| format!("cannot read `fail2ban-client -d` line {line:?}: {e}"))?
        else {
            continue;
        };
        apply(&mut dump, &items);
    }
    for line in stderr.lines() {
        if let Some(rest) = line.split("Have not found any log file for ").nth(1) {
            if let Some(jail) = rest.trim().strip_suffix(" jail") {
                dump.without_logs.push(jail.to_owned());
            }
        }
    }
    Ok(dump)
}

fn strings(items: &[Py]) -> Vec<String> {
    items
        .iter()
        .flat_map(|i| match i {
            Py::List(inner) => inner.iter().map(Py::text).collect(),
            other => vec![other.text()],
        })
        .collect()
}

fn apply(dump: &mut Dump, items: &[Py]) {
    let command = items.first().and_then(Py::as_str).unwrap_or_default();
    let Some(jail_name) = items.get(1).and_then(Py::as_str) else {
        return;
    };
    match command {
        "add" => {
            let backend = items.get(2).map(Py::text).unwrap_or_default();
            dump.jails.insert(
                jail_name.to_owned(),
                Jail {
                    backend,
                    ..Jail::default()
                },
            );
        }
        "start" => {
            if let Some(jail) = dump.jails.get_mut(jail_name) {
                jail.started = true;
            }
        }
        "set" | "multi-set" => {
            let Some(jail) = dump.jails.get_mut(jail_name) else {
                return; // server-wide settings: ['set', 'loglevel', 'INFO']
            };
            let Some(option) = items.get(2).and_then(Py::as_str) else {
                return;
            };
            let rest = &items[3.min(items.len())..];
            match option {
                "addlogpath" => {
                    // ['set', jail, 'addlogpath', path, 'head'] or [path, 'head']
                    if let Some(path) = rest.first() {
                        match path {
                            Py::List(inner) => jail.logpaths.extend(inner.first().map(Py::text)),
                            other => jail.logpaths.push(other.text()),
                        }
                    }
                }
                "addignoreip" => jail.ignoreips.extend(strings(rest)),
                "addfailregex" => jail.failregex.extend(strings(rest)),
                "addignoreregex" => jail.ignoreregex.extend(strings(rest)),
                "addaction" => jail.actions.push(Action {
                    name: rest.first().map(Py::text).unwrap_or_default(),
                    params: BTreeMap::new(),
                }),
                "action" => {
                    // ['multi-set', jail, 'action', name, [[key, value], ...]]
                    let name = rest.first().map(Py::text).unwrap_or_default();
                    if let (Some(action), Some(Py::List(pairs))) = (
                        jail.actions.iter_mut().find(|a| a.name == name),
                        rest.get(1),
                    ) {
                        for pair in pairs {
                            if let Py::List(kv) = pair {
                                if let (Some(Py::Str(k)), Some(v)) = (kv.first(), kv.get(1)) {
                                    action.params.insert(k.clone(), v.text());
                                }
                            }
                        }
                    }
                }
                other => {
                    jail.settings.insert(
                        other.to_owned(),
                        rest.iter().map(Py::text).collect::<Vec<_>>().join(" "),
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literals() {
        assert_eq!(
            parse_literal("['set', 'sshd', 'maxretry', 5]"),
            Ok(Py::List(vec![
                Py::Str("set".into()),
                Py::Str("sshd".into()),
                Py::Str("maxretry".into()),
                Py::Int(5)
            ]))
        );
        assert_eq!(
            parse_literal(r#"["it's", 'a\\b\n', True, None, -1, 1.5]"#),
            Ok(Py::List(vec![
                Py::Str("it's".into()),
                Py::Str("a\\b\n".into()),
                Py::Bool(true),
                Py::None,
                Py::Int(-1),
                Py::Float(1.5)
            ]))
        );
        assert!(parse_literal("['unclosed'").is_err());
    }

    const DUMP: &str = r#"['set', 'syslogsocket', 'auto']
['set', 'loglevel', 'INFO']
['add', 'sshd', 'systemd']
['set', 'sshd', 'usedns', 'warn']
['set', 'sshd', 'addjournalmatch', '_SYSTEMD_UNIT=sshd.service', '+', '_COMM=sshd']
['set', 'sshd', 'maxretry', 3]
['set', 'sshd', 'findtime', '10m']
['set', 'sshd', 'bantime', '1h']
['set', 'sshd', 'bantime.increment', True]
['set', 'sshd', 'addignoreip', '127.0.0.1/8', '::1']
['set', 'sshd', 'addaction', 'nftables-multiport']
['multi-set', 'sshd', 'action', 'nftables-multiport', [['actionstart', "nft add table inet f2b-table\nfor proto in $(echo 'tcp' | sed 's/,/ /g'); do"], ['port', '2222'], ['protocol', 'tcp']]]
['add', 'app', 'auto']
['multi-set', 'app', 'addfailregex', ['Failed login from <HOST>', 'second 100% <HOST>']]
['set', 'app', 'addlogpath', '/var/log/streaming-app.log', 'head']
['set', 'app', 'addaction', 'iptables-multiport']
['start', 'sshd']
['start', 'app']
"#;

    #[test]
    fn jails_and_their_options() {
        let stderr = "2026-01-01 fail2ban.jailreader [1]: WARNING Have not found any log file for nginx-http-auth jail\n";
        let dump = parse(DUMP, stderr).expect("parse");
        let sshd = &dump.jails["sshd"];
        assert_eq!(sshd.option("backend").as_deref(), Some("systemd"));
        assert_eq!(sshd.option("maxretry").as_deref(), Some("3"));
        assert_eq!(sshd.option("bantime.increment").as_deref(), Some("true"));
        assert_eq!(sshd.option("ignoreip").as_deref(), Some("127.0.0.1/8 ::1"));
        assert_eq!(sshd.option("port").as_deref(), Some("2222"));
        assert_eq!(
            sshd.option("banaction").as_deref(),
            Some("nftables-multiport")
        );
        assert_eq!(sshd.option("enabled").as_deref(), Some("true"));
        let app = &dump.jails["app"];
        assert_eq!(
            app.failregex,
            vec!["Failed login from <HOST>", "second 100% <HOST>"]
        );
        assert_eq!(app.logpaths, vec!["/var/log/streaming-app.log"]);
        assert_eq!(dump.without_logs, vec!["nginx-http-auth"]);
    }
}
