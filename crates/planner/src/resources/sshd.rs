//! `sshd`: sshd_config directives, planned against the configuration sshd actually uses.
//!
//! This is the resource where a mistake costs the operator the machine, so it works in this
//! order and stops at the first doubt:
//!
//! 1. **Read what sshd reads** (`config`): the main file, `Include`d files in sshd's order,
//!    first value wins, multi-value directives accumulate, `Match` blocks are conditional.
//!    Where sshd is installed, `sshd -T` confirms the model (a disagreement is reported).
//! 2. **Check values before anything else** (`keywords`): names and types from a static
//!    table, then every directive through the installed sshd's own parser (`sshd -T -o ...`,
//!    which also knows directives newer than the table); when sshd rejects one, `ssh -Q`
//!    names the unsupported algorithm. Errors point at the playbook's file, line and column.
//! 3. **Write the fewest, safest edits** (`desired`): where the main file includes
//!    `sshd_config.d/*.conf`, harden owns one drop-in that sorts first
//!    (`00-harden.conf`) and leaves the distribution's files alone; otherwise it edits the
//!    main file in place, before the first `Match`. A line elsewhere that would still win
//!    (an earlier file, a second `Port`) is commented out with a note, and shown in the plan.
//!    The edited configuration is parsed again and must yield every desired value.
//!    `Match` blocks are never edited. One that keeps another value for some connections
//!    (`Match User legacy` / `PasswordAuthentication yes`) is a warning on every plan: it is a
//!    deliberate, visible exception. One that applies to every connection (`Match all`) and
//!    keeps another value is an error: the playbook cannot be honoured without editing it.
//! 4. **Refuse lockouts** (`guards`): no key login left, the firewall closed on a new port,
//!    keys sshd would ignore; each guard is named and can be overridden with `--allow`.
//! 5. **Validate, then activate**: `sshd -t` after the write (a failure rolls back before
//!    any reload), then a reload (systemd, or SIGHUP through the pidfile), then a check
//!    that sshd is still running and listening.

pub(crate) mod config;
mod desired;
mod guards;
mod keyed;
pub(crate) mod keywords;
mod probe;

use std::fmt;

use harden_host::{Host, UserDb};
use harden_plan::Command;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::facts::{LiveFacts, SshdFacts};
use crate::guard::Guard;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

pub use probe::Live;

/// The `sshd:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Sshd {
    /// Directives by their sshd names.
    #[serde(default)]
    pub config: Directives,
}

/// The directives of the `config:` map, in the order written.
#[derive(Clone, Debug, Default)]
pub struct Directives(pub Vec<Directive>);

/// One `Name: value` entry.
#[derive(Clone, Debug)]
pub struct Directive {
    /// The directive's name as written.
    pub name: Located<String>,
    /// Its value.
    pub value: Located<Value>,
}

impl Directive {
    /// The lower-case key sshd uses for it (aliases resolved).
    pub(crate) fn key(&self) -> String {
        config::key_of(&self.name.value)
    }

    /// The known directive, if the static table has it (aliases resolved).
    pub(crate) fn keyword(&self) -> Option<&'static keywords::Keyword> {
        keywords::canonical(&self.name.value)
    }

    /// The name to write: the manual's spelling when known, else as written.
    pub(crate) fn display_name(&self) -> &str {
        self.keyword().map_or(self.name.value.as_str(), |k| k.name)
    }

    /// The configuration lines this entry stands for, each as its arguments.
    pub(crate) fn lines(&self) -> Result<Vec<Vec<String>>, String> {
        let style = self
            .keyword()
            .map_or(keywords::ListStyle::Space, |k| k.list_style());
        match &self.value.value {
            Value::Bool(b) => Ok(vec![vec![if *b { "yes" } else { "no" }.to_owned()]]),
            Value::Int(n) => Ok(vec![vec![n.to_string()]]),
            Value::Text(text) => {
                check_text(text)?;
                if self
                    .keyword()
                    .is_some_and(|k| k.kind == keywords::Kind::Word)
                {
                    // One argument (a path, a name): spaces are part of it.
                    if text.trim().is_empty() {
                        return Err("a value is needed".into());
                    }
                    return Ok(vec![vec![text.trim().to_owned()]]);
                }
                let args = config::split_args(text).map_err(|e| format!("{e} in {text:?}"))?;
                if args.is_empty() {
                    return Err("a value is needed".into());
                }
                Ok(vec![args])
            }
            Value::List(items) => {
                if items.is_empty() {
                    return Err("an empty list; give at least one value".into());
                }
                for item in items {
                    check_text(item)?;
                    if item.is_empty() {
                        return Err("an empty item in the list".into());
                    }
                }
                Ok(match style {
                    keywords::ListStyle::Comma => vec![vec![items.join(",")]],
                    keywords::ListStyle::Space => vec![items.clone()],
                    keywords::ListStyle::Lines => items.iter().map(|i| vec![i.clone()]).collect(),
                })
            }
        }
    }

    /// The lines as sshd_config text (`Name arg arg`), arguments quoted where needed.
    pub(crate) fn rendered(&self) -> Result<Vec<String>, String> {
        let name = self.display_name();
        Ok(self
            .lines()?
            .into_iter()
            .map(|args| {
                let args: Vec<String> = args.iter().map(|a| keywords::quote(a)).collect();
                format!("{name} {}", args.join(" "))
            })
            .collect())
    }
}

fn check_text(text: &str) -> Result<(), String> {
    if text.contains(['\n', '\r', '\0']) {
        return Err(
            "a value cannot contain a line break or NUL: it would add configuration lines".into(),
        );
    }
    Ok(())
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Directives {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Directives".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<Value>();
        schemars::json_schema!({
            "description": "sshd_config directives by name (as sshd spells them, e.g. PermitRootLogin), each to yes/no, a number, text, or a list.",
            "type": "object",
            "additionalProperties": value
        })
    }
}

impl<'de> Deserialize<'de> for Directives {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Directives;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of sshd_config directives to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Directives, A::Error> {
                let mut entries = Vec::new();
                while let Some(name) = map.next_key::<Located<String>>()? {
                    let value = map.next_value::<Located<Value>>()?;
                    entries.push(Directive { name, value });
                }
                Ok(Directives(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// A directive's value as written in YAML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `true`/`false`, written `yes`/`no`.
    Bool(bool),
    /// A number.
    Int(i64),
    /// Text: the arguments as they would appear in sshd_config (quotes allowed).
    Text(String),
    /// A list: joined with commas (algorithms), one line each (`Port`, `ListenAddress`,
    /// `HostKey`), or arguments of one line (`AllowUsers`, `AuthenticationMethods`).
    List(Vec<String>),
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Value {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SshdValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "yes/no (true/false), a whole number, text (the arguments as in sshd_config), or a non-empty list of them.",
            "anyOf": [
                { "type": "boolean" },
                { "type": "integer" },
                { "type": "string" },
                {
                    "type": "array",
                    "minItems": 1,
                    "items": { "type": ["boolean", "integer", "string"] }
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("yes/no, a number, text, or a list of them")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v)
                    .map(Value::Int)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
                Err(E::custom(format!(
                    "{v} is read as a fractional number; sshd takes whole numbers, and a value with leading zeros (a mask such as 0177) must be quoted"
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Text(v.to_owned()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
                Err(E::custom("a value is needed (harden does not remove directives; leave the key out instead)"))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
                self.visit_unit()
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(match item {
                        Value::Bool(b) => if b { "yes" } else { "no" }.to_owned(),
                        Value::Int(n) => n.to_string(),
                        Value::Text(t) => t,
                        Value::List(_) => {
                            return Err(serde::de::Error::custom(
                                "a list inside a list; give plain values",
                            ))
                        }
                    });
                }
                Ok(Value::List(items))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl Resource for Sshd {
    type Live = Live;
    const NAME: &'static str = "sshd";
    const GUARDS: &'static [Guard] = &guards::REGISTRY;

    fn merge(&mut self, later: Self) {
        let replaced: Vec<String> = later.config.0.iter().map(Directive::key).collect();
        self.config.0.retain(|d| !replaced.contains(&d.key()));
        self.config.0.extend(later.config.0);
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        let mut seen: Vec<(String, u32)> = Vec::new();
        for d in &self.config.0 {
            let key = d.key();
            if let Some((_, line)) = seen.iter().find(|(k, _)| *k == key) {
                errors.push(Invalid::new(
                    d.name.at,
                    format!("{} is given twice (also on line {line})", d.display_name()),
                ));
                continue;
            }
            seen.push((key, d.name.at.line));
            errors.extend(validate_directive(d));
        }
        errors
    }

    async fn publish_live(
        section: Option<&Self>,
        host: &Host,
        users: &UserDb,
        live: &mut LiveFacts,
    ) {
        let dump = current_dump(host).await;
        let key_logins = keyed::key_logins(host, users, dump.as_ref(), section);
        let live_ports = live_ports(host, dump.as_ref());
        let planned_ports = section.and_then(desired_ports);
        let mut interest: Vec<u16> = live_ports.clone();
        interest.extend(planned_ports.iter().flatten());
        interest.extend(section.map(listen_address_ports).unwrap_or_default());
        interest.sort_unstable();
        interest.dedup();
        live.sshd = SshdFacts {
            dump,
            live_ports,
            planned_ports,
            ports_of_interest: interest,
            key_logins,
        };
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Self::Live, Failure> {
        probe::probe(self, cx).await
    }

    fn diff(&self, live: &Self::Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        desired::diff(self, live, cx)
    }
}

/// Checks one directive without I/O: its name is a directive harden can manage, and its
/// value has the right type. Names the static table lacks are left to the installed sshd.
fn validate_directive(d: &Directive) -> Vec<Invalid> {
    let name = d.name.value.as_str();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return vec![Invalid::new(
            d.name.at,
            format!("{name:?} is not an sshd_config directive name"),
        )];
    }
    if keywords::STRUCTURAL
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
    {
        return vec![Invalid::new(d.name.at, format!("{name} cannot be managed by harden"))
            .help("harden sets global directives in its own drop-in; write Match blocks and Includes in a file of your own")];
    }
    if let Some(old) = keywords::DEPRECATED
        .iter()
        .find(|s| s.eq_ignore_ascii_case(name))
    {
        return vec![Invalid::new(
            d.name.at,
            format!("{old} is deprecated: current sshd ignores it"),
        )
        .help("remove it from the playbook; see sshd_config(5) for its replacement")];
    }
    let lines = match d.lines() {
        Ok(lines) => lines,
        Err(why) => {
            return vec![Invalid::new(
                d.value.at,
                format!("{}: {why}", d.display_name()),
            )]
        }
    };
    let Some(keyword) = d.keyword() else {
        return Vec::new();
    };
    if keyword.list_style() != keywords::ListStyle::Lines && lines.len() > 1 {
        return vec![Invalid::new(
            d.value.at,
            format!("{} takes one line", keyword.name),
        )];
    }
    if let (keywords::Kind::Flag | keywords::Kind::Choice(_), Value::Int(_)) =
        (keyword.kind, &d.value.value)
    {
        return vec![
            Invalid::new(d.value.at, format!("{} is not a number", keyword.name)).help(
                keywords::check(keyword, &["?".into()])
                    .err()
                    .unwrap_or_default(),
            ),
        ];
    }
    let mut errors = Vec::new();
    for args in &lines {
        if let Err(why) = keywords::check(keyword, args) {
            errors.push(Invalid::new(d.value.at, why));
        }
    }
    errors
}

/// The ports `section`'s `Port` asks for, if it sets one.
pub(crate) fn desired_ports(section: &Sshd) -> Option<Vec<u16>> {
    let port = section.config.0.iter().rev().find(|d| d.key() == "port")?;
    let ports: Vec<u16> = match &port.value.value {
        Value::Int(n) => u16::try_from(*n).ok().into_iter().collect(),
        Value::Text(s) => s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Value::List(items) => items.iter().filter_map(|p| p.trim().parse().ok()).collect(),
        Value::Bool(_) => Vec::new(),
    };
    Some(ports)
}

/// The ports of `section`'s `ListenAddress` lines that name one.
fn listen_address_ports(section: &Sshd) -> Vec<u16> {
    section
        .config
        .0
        .iter()
        .filter(|d| d.key() == "listenaddress")
        .flat_map(|d| d.lines().unwrap_or_default())
        .filter_map(|line| line.first().and_then(|a| desired::listen_port(a)))
        .collect()
}

/// `sshd -T` of the current configuration, once per plan: its output or sshd's complaint;
/// `None` when sshd is not installed.
async fn current_dump(host: &Host) -> Option<Result<String, String>> {
    let sshd = host.which("sshd")?;
    probe::ensure_privsep_dir(host).await;
    let cmd = Command::new([sshd.display().to_string(), "-T".into()]).timeout(probe::SSHD_TIMEOUT);
    Some(match host.run(&cmd).await {
        Ok(out) if out.success() => Ok(out.stdout),
        Ok(out) => Err(probe::complaint(&out)),
        Err(e) => Err(e.to_string()),
    })
}

/// The ports sshd listens on now: as `sshd -T` reports them; from the configuration files
/// when sshd cannot tell; `[22]` when nothing says otherwise.
fn live_ports(host: &Host, dump: Option<&Result<String, String>>) -> Vec<u16> {
    if let Some(Ok(text)) = dump {
        let ports: Vec<u16> = text
            .lines()
            .filter_map(|l| l.strip_prefix("port "))
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        if !ports.is_empty() {
            return ports;
        }
    }
    let source = probe::HostSource(host);
    let parsed = config::parse(&source);
    let ports: Vec<u16> = parsed
        .global("port")
        .iter()
        .filter_map(|l| l.args.first()?.parse().ok())
        .collect();
    if ports.is_empty() {
        vec![22]
    } else {
        ports
    }
}

/// Where harden keeps its own sshd settings when the main file includes a drop-in directory.
pub(crate) const DROP_IN_NAME: &str = "00-harden.conf";

/// The header of harden's drop-in.
pub(crate) const DROP_IN_HEADER: &str = "\
# Managed by harden: this whole file is rewritten by `harden apply`; edit the playbook's
# `sshd:` section instead. sshd keeps the first value it reads for most directives, and
# this file sorts first in its directory, so these values win over later drop-ins and
# over the main file (except inside Match blocks).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn directive(name: &str, value: Value) -> Directive {
        Directive {
            name: Located::unplaced(name.into()),
            value: Located::unplaced(value),
        }
    }

    fn parse_section(yaml: &str) -> Result<Sshd, String> {
        serde_saphyr::from_str::<Sshd>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn yaml_values_become_sshd_lines() {
        let s = parse_section(
            "config:\n  PasswordAuthentication: false\n  PermitRootLogin: prohibit-password\n  Port: [22, 2222]\n  Ciphers: [aes256-gcm@openssh.com, chacha20-poly1305@openssh.com]\n  AllowUsers: [alice, bob]\n  MaxAuthTries: 3\n  Banner: \"/etc/my banner\"\n",
        )
        .expect("parses");
        let rendered: Vec<Vec<String>> = s
            .config
            .0
            .iter()
            .map(|d| d.rendered().expect("renders"))
            .collect();
        assert_eq!(
            rendered,
            vec![
                vec!["PasswordAuthentication no".to_string()],
                vec!["PermitRootLogin prohibit-password".into()],
                vec!["Port 22".into(), "Port 2222".into()],
                vec!["Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com".into()],
                vec!["AllowUsers alice bob".into()],
                vec!["MaxAuthTries 3".into()],
                vec!["Banner \"/etc/my banner\"".to_string()],
            ]
        );
        assert!(s.validate().is_empty());
    }

    #[test]
    fn names_keep_their_place_for_errors() {
        let s = parse_section("config:\n  PasswordAuthentication: no\n  MaxAuthTries: x\n")
            .expect("parses");
        assert_eq!(s.config.0[1].name.at.line, 3);
        assert_eq!(s.config.0[1].name.at.column, 3);
        let errors = s.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].at.line, errors[0].at.column), (3, 17));
        assert!(
            errors[0].message.contains("whole number"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn wrong_types_and_injections_are_refused() {
        let bad = |name: &str, value: Value| {
            let d = directive(name, value);
            let errors = validate_directive(&d);
            assert!(!errors.is_empty(), "{name} accepted");
            errors[0].message.clone()
        };
        assert!(bad("PasswordAuthentication", Value::Text("maybe".into())).contains("yes or no"));
        assert!(bad("PasswordAuthentication", Value::Int(1)).contains("not a number"));
        assert!(bad(
            "PasswordAuthentication",
            Value::Text("no\nPermitRootLogin yes".into())
        )
        .contains("line break"));
        assert!(bad("Port", Value::Int(70000)).contains("TCP port"));
        assert!(bad("LoginGraceTime", Value::Text("2 minutes".into())).contains("one value"));
        assert!(bad("Match", Value::Text("User x".into())).contains("cannot be managed"));
        assert!(bad("Protocol", Value::Int(2)).contains("deprecated"));
        assert!(bad("Ciphers", Value::List(vec![])).contains("empty list"));
        assert!(bad("Pass word", Value::Bool(true)).contains("not an sshd_config directive"));
        // Unknown to the table: left to the installed sshd.
        assert!(
            validate_directive(&directive("PerSourcePenaltiesX", Value::Bool(true))).is_empty()
        );
    }

    #[test]
    fn duplicate_names_in_one_playbook_are_errors_and_later_playbooks_override() {
        let s =
            parse_section("config:\n  PasswordAuthentication: no\n  passwordauthentication: yes\n")
                .expect("parses");
        assert!(s.validate()[0].message.contains("given twice"));
        let mut a = parse_section("config:\n  PasswordAuthentication: yes\n  MaxAuthTries: 3\n")
            .expect("parses");
        let b = parse_section("config:\n  passwordauthentication: no\n").expect("parses");
        a.merge(b);
        assert_eq!(a.config.0.len(), 2);
        assert_eq!(a.config.0[1].value.value, Value::Bool(false));
        assert!(a.validate().is_empty());
    }

    #[test]
    fn fractional_and_empty_values_are_errors() {
        assert!(parse_section("config:\n  StreamLocalBindMask: 0177\n").is_err());
        assert!(parse_section("config:\n  Banner:\n").is_err());
        assert!(parse_section("config:\n  AllowUsers: [[a]]\n").is_err());
    }

    #[test]
    fn desired_ports_reads_every_spelling() {
        let none = Sshd {
            config: Directives(vec![]),
        };
        assert_eq!(desired_ports(&none), None);
        let list = Sshd {
            config: Directives(vec![directive(
                "port",
                Value::List(vec!["22".into(), "2222".into()]),
            )]),
        };
        assert_eq!(desired_ports(&list), Some(vec![22, 2222]));
        let int = Sshd {
            config: Directives(vec![directive("Port", Value::Int(2222))]),
        };
        assert_eq!(desired_ports(&int), Some(vec![2222]));
    }
}
