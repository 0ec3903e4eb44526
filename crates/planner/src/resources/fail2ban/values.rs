//! Typed values of fail2ban options, each checked while deserialising so that a wrong value
//! is reported at its playbook line, and each rendered the way fail2ban's INI reader wants it.
//!
//! fail2ban reads its files with Python's `ConfigParser`: `%(name)s` interpolates, a lone `%`
//! is an error, ` ;` starts an inline comment, a line starting with `#` or `;` is a comment,
//! and values are stripped. Text values are refused when any of that would change them.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer};

use super::duration::{BanTime, Duration};
use crate::located::{At, Located};

/// How an option's value is written into a fail2ban file and compared with what fail2ban
/// reports (`fail2ban-client -d`).
pub trait OptionValue {
    /// The value's lines: one, or several written as continuation lines.
    fn lines(&self) -> Vec<String>;

    /// True when `effective`, as [`super::dump`] reports it, means this value.
    fn matches(&self, effective: &str) -> bool {
        self.lines().join(" ") == effective
    }
}

impl OptionValue for bool {
    fn lines(&self) -> Vec<String> {
        vec![if *self { "true" } else { "false" }.to_owned()]
    }
    fn matches(&self, effective: &str) -> bool {
        match effective.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => *self,
            "false" | "no" | "off" | "0" => !*self,
            _ => false,
        }
    }
}

impl OptionValue for Duration {
    fn lines(&self) -> Vec<String> {
        vec![self.to_string()]
    }
    fn matches(&self, effective: &str) -> bool {
        super::duration::parse(effective).is_ok_and(|d| d.seconds() == self.seconds())
    }
}

impl OptionValue for BanTime {
    fn lines(&self) -> Vec<String> {
        vec![self.to_string()]
    }
    fn matches(&self, effective: &str) -> bool {
        super::duration::parse_bantime(effective).is_ok_and(|b| b.seconds() == self.seconds())
    }
}

/// A scalar as YAML gives it, before a type's own check.
#[derive(Clone, Debug)]
enum Scalar {
    Text(String),
    Int(i128),
    Bool(bool),
    Float(f64),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Text(s) => f.write_str(s),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Float(x) => write!(f, "{x}"),
        }
    }
}

struct ScalarVisitor;

impl serde::de::Visitor<'_> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i128::from(v)))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i128::from(v)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Deserialises one scalar or a list of scalars, converting each with `item`.
fn one_or_many<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    item: impl Fn(Scalar) -> Result<T, String>,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let items = one_or_many_placed(deserializer, expecting, item)?;
    Ok(items.into_iter().map(|i| i.value).collect())
}

/// [`one_or_many`], keeping where each item of a list was written; a lone scalar has no
/// place of its own (it is at the place of the whole value).
fn one_or_many_placed<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    item: impl Fn(Scalar) -> Result<T, String>,
) -> Result<Vec<Located<T>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Visitor<F> {
        expecting: &'static str,
        item: F,
    }
    impl<F> Visitor<F> {
        fn one<T, E: serde::de::Error>(self, scalar: Scalar) -> Result<Vec<Located<T>>, E>
        where
            F: Fn(Scalar) -> Result<T, String>,
        {
            (self.item)(scalar)
                .map(|x| vec![Located::unplaced(x)])
                .map_err(E::custom)
        }
    }
    impl<'de, T, F: Fn(Scalar) -> Result<T, String>> serde::de::Visitor<'de> for Visitor<F> {
        type Value = Vec<Located<T>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.one(Scalar::Text(v.to_owned()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.one(Scalar::Int(i128::from(v)))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.one(Scalar::Int(i128::from(v)))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.one(Scalar::Float(v))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.one(Scalar::Bool(v))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(scalar) = seq.next_element::<Located<Scalar>>()? {
                let value = (self.item)(scalar.value).map_err(serde::de::Error::custom)?;
                items.push(Located {
                    value,
                    at: scalar.at,
                });
            }
            if items.is_empty() {
                return Err(serde::de::Error::custom(format!(
                    "empty list: expected {}",
                    self.expecting
                )));
            }
            Ok(items)
        }
    }
    deserializer.deserialize_any(Visitor { expecting, item })
}

fn text_of(scalar: Scalar) -> String {
    scalar.to_string()
}

/// Checks that `text` survives fail2ban's INI reader unchanged as one value line.
/// `interpolate`: `%(name)s` references are allowed (jail options); otherwise `%` is literal
/// and is doubled when written (regular expressions).
pub fn check_ini_text(text: &str, interpolate: bool) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty value".into());
    }
    if text.contains(['\n', '\r']) {
        return Err(format!("{text:?} spans several lines; give a list instead"));
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!("{text:?} contains the control character {c:?}"));
    }
    if text.trim() != text {
        return Err(format!(
            "{text:?} has leading or trailing spaces, which fail2ban strips"
        ));
    }
    if text.starts_with(['#', ';']) {
        return Err(format!(
            "{text:?} starts with `{}`, which fail2ban reads as a comment",
            &text[..1]
        ));
    }
    if text.contains(" ;") || text.contains("\t;") {
        return Err(format!("{text:?} contains ` ;`, which fail2ban reads as the start of a comment; write `[;]` or `\\s;`"));
    }
    if interpolate {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                match bytes.get(i + 1) {
                    Some(b'%') => i += 1,
                    Some(b'(') => {}
                    _ => return Err(format!("{text:?} has a lone `%`: write `%%` for a percent sign, `%(name)s` for a reference")),
                }
            }
            i += 1;
        }
    }
    Ok(())
}

/// A line of text for a jail option (`%(name)s` references allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Text, {
    "description": "A line of text (`%(name)s` references allowed).",
    "type": ["string", "number", "boolean"]
});

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let scalar = Scalar::deserialize(deserializer)?;
        let text = text_of(scalar);
        check_ini_text(&text, true).map_err(serde::de::Error::custom)?;
        Ok(Text(text))
    }
}

impl OptionValue for Text {
    fn lines(&self) -> Vec<String> {
        vec![self.0.clone()]
    }
    fn matches(&self, effective: &str) -> bool {
        // A `%(name)s` reference is interpolated in the dump: nothing to compare.
        self.0.contains("%(") || self.0 == effective
    }
}

/// One or more lines of text (`action`): each becomes a continuation line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lines(pub Vec<String>);

#[cfg(feature = "schema")]
crate::schema::literal!(Lines, {
    "description": "A line of text or a list of lines.",
    "anyOf": [{ "type": ["string", "number", "boolean"] }, { "type": "array", "items": { "type": ["string", "number", "boolean"] } }]
});

impl<'de> Deserialize<'de> for Lines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many(deserializer, "a line of text or a list of lines", |s| {
            let text = text_of(s);
            check_ini_text(&text, true).map(|()| text)
        })
        .map(Lines)
    }
}

impl OptionValue for Lines {
    fn lines(&self) -> Vec<String> {
        self.0.clone()
    }
    fn matches(&self, effective: &str) -> bool {
        if self.0.iter().any(|l| l.contains("%(")) {
            return true;
        }
        // fail2ban reports the action names it runs; compare names.
        let names: Vec<&str> = self
            .0
            .iter()
            .map(|l| l.split('[').next().unwrap_or(l).trim())
            .collect();
        names.join(" ") == effective
    }
}

/// A single word: an action or chain name, an encoding, a filter mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Word, {
    "description": "One word: letters, digits and `_.-:/@+`.",
    "anyOf": [{ "type": "string", "pattern": "^[A-Za-z0-9_.:/@+-]+$" }, { "type": "number" }]
});

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = text_of(Scalar::deserialize(deserializer)?);
        let ok = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-:/@+".contains(c));
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "invalid value {text:?}: expected one word (letters, digits, `_.-:/@+`)"
            )));
        }
        Ok(Word(text))
    }
}

impl OptionValue for Word {
    fn lines(&self) -> Vec<String> {
        vec![self.0.clone()]
    }
}

/// A whole number of at least 1 (`maxretry`, `maxmatches`, `maxlines`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub u32);

#[cfg(feature = "schema")]
crate::schema::literal!(Count, {
    "description": "A whole number of at least 1.",
    "anyOf": [{ "type": "integer", "minimum": 1, "maximum": 4294967295u32 }, { "type": "string", "pattern": "^\\s*\\+?[0-9]+\\s*$" }]
});

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let scalar = Scalar::deserialize(deserializer)?;
        let parsed = match &scalar {
            Scalar::Int(n) => Some(*n),
            Scalar::Text(t) => t.trim().parse::<i128>().ok(),
            _ => None,
        };
        match parsed.map(u32::try_from) {
            Some(Ok(n)) if n >= 1 => Ok(Count(n)),
            _ => Err(serde::de::Error::custom(format!(
                "invalid count {scalar}: expected a whole number of at least 1"
            ))),
        }
    }
}

impl OptionValue for Count {
    fn lines(&self) -> Vec<String> {
        vec![self.0.to_string()]
    }
}

/// A positive decimal number (`bantime.factor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factor(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Factor, {
    "description": "A positive number such as 1 or 1.5.",
    "anyOf": [{ "type": "number", "exclusiveMinimum": 0 }, { "type": "string", "pattern": "^[0-9.]+$" }]
});

impl<'de> Deserialize<'de> for Factor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = text_of(Scalar::deserialize(deserializer)?);
        match text.parse::<f64>() {
            Ok(x)
                if x.is_finite()
                    && x > 0.0
                    && text.chars().all(|c| c.is_ascii_digit() || c == '.') =>
            {
                Ok(Factor(text))
            }
            _ => Err(serde::de::Error::custom(format!(
                "invalid factor {text:?}: expected a positive number such as 1 or 1.5"
            ))),
        }
    }
}

impl OptionValue for Factor {
    fn lines(&self) -> Vec<String> {
        vec![self.0.clone()]
    }
    fn matches(&self, effective: &str) -> bool {
        matches!((self.0.parse::<f64>(), effective.parse::<f64>()), (Ok(a), Ok(b)) if (a - b).abs() < 1e-9)
    }
}

/// `bantime.multipliers`: whole numbers, written space-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multipliers(pub Vec<u32>);

#[cfg(feature = "schema")]
crate::schema::literal!(Multipliers, {
    "description": "Whole numbers, as a list or separated by spaces (\"1 2 4 8\").",
    "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "pattern": "^[0-9\\s]*$" }, { "type": "array", "items": { "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "pattern": "^[0-9\\s]*$" }] } }]
});

impl<'de> Deserialize<'de> for Multipliers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = one_or_many(
            deserializer,
            "whole numbers, as a list or separated by spaces",
            |s| {
                let text = text_of(s);
                text.split_whitespace()
                    .map(|w| {
                        w.parse::<u32>().map_err(|_| {
                            format!("invalid multiplier {w:?}: expected a whole number")
                        })
                    })
                    .collect::<Result<Vec<u32>, String>>()
            },
        )?;
        Ok(Multipliers(items.into_iter().flatten().collect()))
    }
}

impl OptionValue for Multipliers {
    fn lines(&self) -> Vec<String> {
        vec![self
            .0
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")]
    }
}

/// One element of a `port` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Port {
    /// A number.
    Number(u16),
    /// A range `low:high`.
    Range(u16, u16),
    /// A service name from /etc/services (`ssh`, `http`).
    Service(String),
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Range(a, b) => write!(f, "{a}:{b}"),
            Port::Service(s) => f.write_str(s),
        }
    }
}

fn parse_port_number(text: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(u16::try_from(n).unwrap_or(u16::MAX)),
        _ => Err(format!("invalid port {text:?}: expected 1 to 65535")),
    }
}

fn parse_port(text: &str) -> Result<Port, String> {
    let text = text.trim();
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        return parse_port_number(text).map(Port::Number);
    }
    if let Some((low, high)) = text.split_once(':') {
        let (low, high) = (parse_port_number(low)?, parse_port_number(high)?);
        if low > high {
            return Err(format!(
                "invalid port range {text:?}: the first port is above the second"
            ));
        }
        return Ok(Port::Range(low, high));
    }
    let service = !text.is_empty()
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if service {
        Ok(Port::Service(text.to_owned()))
    } else {
        Err(format!("invalid port {text:?}: expected a number, a range such as 8000:8010, or a service name such as ssh"))
    }
}

/// `port`: numbers, ranges and service names, written comma-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports(pub Vec<Port>);

#[cfg(feature = "schema")]
crate::schema::literal!(Ports, {
    "description": "A port, a range (8000:8010), a service name, comma-separated, or a list of them.",
    "anyOf": [{ "type": "integer", "minimum": 1, "maximum": 65535 }, { "type": "string", "minLength": 1 }, { "type": "array", "items": { "anyOf": [{ "type": "integer", "minimum": 1, "maximum": 65535 }, { "type": "string", "minLength": 1 }] } }]
});

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = one_or_many(
            deserializer,
            "a port, a range (8000:8010), a service name, or a list of them",
            |s| match s {
                Scalar::Int(n) => u16::try_from(n)
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(|n| vec![Port::Number(n)])
                    .ok_or_else(|| format!("invalid port {n}: expected 1 to 65535")),
                other => text_of(other).split(',').map(parse_port).collect(),
            },
        )?;
        Ok(Ports(items.into_iter().flatten().collect()))
    }
}

impl OptionValue for Ports {
    fn lines(&self) -> Vec<String> {
        vec![self
            .0
            .iter()
            .map(Port::to_string)
            .collect::<Vec<_>>()
            .join(",")]
    }
    fn matches(&self, effective: &str) -> bool {
        let mut want: Vec<String> = self.0.iter().map(Port::to_string).collect();
        let mut have: Vec<String> = effective.split(',').map(|p| p.trim().to_owned()).collect();
        want.sort();
        have.sort();
        want == have
    }
}

/// `logpath`: absolute paths (shell globs allowed), one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths(pub Vec<String>);

#[cfg(feature = "schema")]
crate::schema::literal!(Paths, {
    "description": "An absolute path (shell globs allowed, no spaces) or a list of them.",
    "anyOf": [{ "type": "string", "pattern": "^/\\S*$" }, { "type": "array", "items": { "type": "string", "pattern": "^/\\S*$" } }]
});

impl<'de> Deserialize<'de> for Paths {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many(deserializer, "an absolute path or a list of them", |s| {
            let text = text_of(s);
            if !text.starts_with('/') {
                return Err(format!(
                    "log path {text:?} is relative; an absolute path is expected"
                ));
            }
            if text.contains(char::is_whitespace) {
                return Err(format!(
                    "log path {text:?} contains spaces, which fail2ban splits on"
                ));
            }
            check_ini_text(&text, true).map(|()| text)
        })
        .map(Paths)
    }
}

impl OptionValue for Paths {
    fn lines(&self) -> Vec<String> {
        self.0.clone()
    }
    fn matches(&self, effective: &str) -> bool {
        if self.0.iter().any(|p| p.contains(['*', '?', '[', '%'])) {
            // Globs and references expand to other names; the file check covers them.
            return true;
        }
        let mut want = self.0.clone();
        let mut have: Vec<String> = effective.split_whitespace().map(str::to_owned).collect();
        want.sort();
        have.sort();
        want == have
    }
}

/// `ignoreip`: addresses, networks (CIDR) and host names, written space-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addresses(pub Vec<String>);

fn check_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    if let Ok(ip) = addr.parse::<IpAddr>() {
        if let Some(prefix) = prefix {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match prefix.parse::<u8>() {
                Ok(p) if p <= max => {}
                _ => {
                    return Err(format!(
                        "invalid network {text:?}: the prefix length must be 0 to {max}"
                    ))
                }
            }
        }
        return Ok(text.to_owned());
    }
    let hostname = prefix.is_none()
        && !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !text.starts_with(['-', '.'])
        && !text.chars().all(|c| c.is_ascii_digit() || c == '.');
    if hostname {
        Ok(text.to_owned())
    } else {
        Err(format!("invalid address {text:?}: expected an IP address, a network such as 192.0.2.0/24, or a host name"))
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Addresses, {
    "description": "IP addresses, networks (192.0.2.0/24) or host names, separated by spaces, or a list of them.",
    "anyOf": [{ "type": ["string", "number", "boolean"] }, { "type": "array", "items": { "type": ["string", "number", "boolean"] } }]
});

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = one_or_many(
            deserializer,
            "addresses, networks or host names, as a list or separated by spaces",
            |s| {
                text_of(s)
                    .split_whitespace()
                    .map(check_address)
                    .collect::<Result<Vec<_>, _>>()
            },
        )?;
        Ok(Addresses(items.into_iter().flatten().collect()))
    }
}

impl OptionValue for Addresses {
    fn lines(&self) -> Vec<String> {
        vec![self.0.join(" ")]
    }
    fn matches(&self, effective: &str) -> bool {
        let mut want = self.0.clone();
        let mut have: Vec<String> = effective.split_whitespace().map(str::to_owned).collect();
        want.sort();
        have.sort();
        want == have
    }
}

macro_rules! keyword {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            const ALL: &'static [(&'static str, $name)] = &[$(($text, $name::$variant),)*];

            /// The word fail2ban uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // YAML reads a bare `no`/`yes` as a boolean (`usedns: no`).
                let text = match Scalar::deserialize(deserializer)? {
                    Scalar::Bool(b) => if b { "yes" } else { "no" }.to_owned(),
                    other => text_of(other),
                };
                Self::ALL
                    .iter()
                    .find(|(t, _)| t.eq_ignore_ascii_case(&text))
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        let choices: Vec<&str> = Self::ALL.iter().map(|(t, _)| *t).collect();
                        serde::de::Error::custom(format!("invalid value {text:?}: expected one of {}", choices.join(", ")))
                    })
            }
        }

        /// One of the words, in any case (`no` and `yes` also as YAML booleans).
        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let words: Vec<&str> = Self::ALL.iter().map(|(t, _)| *t).collect();
                let pattern = crate::schema::any_case(&words);
                let mut choices = vec![serde_json::json!({ "type": "string", "pattern": pattern })];
                if words.contains(&"yes") || words.contains(&"no") {
                    choices.push(serde_json::json!({ "type": "boolean" }));
                }
                schemars::json_schema!({ "description": words.join(", "), "anyOf": choices })
            }
        }

        impl OptionValue for $name {
            fn lines(&self) -> Vec<String> {
                vec![self.as_str().to_owned()]
            }
            fn matches(&self, effective: &str) -> bool {
                // `systemd[journalflags=1]` is still the systemd backend.
                effective.split('[').next().unwrap_or(effective).eq_ignore_ascii_case(self.as_str())
            }
        }
    };
}

keyword! {
    /// Where a jail reads its log from.
    Backend {
        /// pyinotify, else polling.
        Auto = "auto",
        /// inotify events on the log files.
        Pyinotify = "pyinotify",
        /// Polls the files' status.
        Polling = "polling",
        /// The systemd journal (needs python3-systemd).
        Systemd = "systemd",
    }
}

keyword! {
    /// Whether fail2ban resolves host names in logs.
    UseDns {
        /// Resolve and use.
        Yes = "yes",
        /// Resolve, warn, use.
        Warn = "warn",
        /// Use addresses only.
        No = "no",
        /// Use the text as is.
        Raw = "raw",
    }
}

keyword! {
    /// Transport protocol of the banned ports.
    Protocol {
        /// TCP.
        Tcp = "tcp",
        /// UDP.
        Udp = "udp",
        /// SCTP.
        Sctp = "sctp",
        /// DCCP.
        Dccp = "dccp",
        /// Every protocol (allports actions).
        All = "all",
    }
}

/// A jail or filter name: used in section headers, file names and firewall set names.
#[derive(Clone, Debug)]
pub struct Name {
    /// The name.
    pub value: String,
    /// Where it was written.
    pub at: At,
}

impl Name {
    /// A name with no place (tests, built-ins).
    pub fn unplaced(value: &str) -> Self {
        Name {
            value: value.to_owned(),
            at: At::default(),
        }
    }
}

/// Checks a jail or filter name.
pub fn check_name(name: &str) -> Result<(), String> {
    let reserved = ["default", "includes", "definition", "init"];
    if name.is_empty()
        || name.starts_with(['.', '-'])
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!("invalid name {name:?}: use letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"));
    }
    if reserved.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name:?} is a reserved section name in fail2ban's files"
        ));
    }
    if name.len() > 64 {
        return Err(format!("name {name:?} is longer than 64 characters"));
    }
    Ok(())
}

#[cfg(feature = "schema")]
crate::schema::literal!(Name, {
    "description": "A jail or filter name: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 64 characters; not default, includes, definition or init.",
    "type": "string",
    "pattern": "^(?!(?:[dD][eE][fF][aA][uU][lL][tT]|[iI][nN][cC][lL][uU][dD][eE][sS]|[dD][eE][fF][iI][nN][iI][tT][iI][oO][nN]|[iI][nN][iI][tT])$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
});

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let located = Located::<String>::deserialize(deserializer)?;
        check_name(&located.value).map_err(serde::de::Error::custom)?;
        Ok(Name {
            value: located.value,
            at: located.at,
        })
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// `filter` of a jail: a filter name with optional arguments (`sshd[mode=aggressive]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRef {
    /// The filter's name (its file in filter.d/).
    pub name: String,
    /// The whole value as written.
    pub text: String,
}

#[cfg(feature = "schema")]
crate::schema::literal!(FilterRef, {
    "description": "A filter name with optional arguments (`sshd[mode=aggressive]`).",
    "type": "string",
    "minLength": 1
});

impl<'de> Deserialize<'de> for FilterRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = text_of(Scalar::deserialize(deserializer)?);
        let (name, args) = match text.split_once('[') {
            Some((name, args)) => (name, Some(args)),
            None => (text.as_str(), None),
        };
        // `%(__name__)s` and other references name the filter indirectly.
        if !name.contains("%(") {
            check_name(name).map_err(serde::de::Error::custom)?;
        }
        if let Some(args) = args {
            if !args.ends_with(']') {
                return Err(serde::de::Error::custom(format!(
                    "invalid filter {text:?}: arguments are written name[key=value, ...]"
                )));
            }
        }
        check_ini_text(&text, true).map_err(serde::de::Error::custom)?;
        Ok(FilterRef {
            name: name.to_owned(),
            text,
        })
    }
}

impl OptionValue for FilterRef {
    fn lines(&self) -> Vec<String> {
        vec![self.text.clone()]
    }
}

/// The regular expressions of a filter key (`failregex`, `ignoreregex`, `datepattern`), one
/// per line, each with the place it was written at when given as a list (a single one is at
/// the key's place): fail2ban's compiler judges them one by one. `%` is literal here and
/// written doubled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regexes(pub Vec<Located<String>>);

impl Regexes {
    /// The expressions as the playbook gives them.
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(|r| r.value.clone()).collect()
    }

    /// The lines as written into a filter file.
    pub fn escaped(&self) -> Vec<String> {
        self.0.iter().map(|r| r.replace('%', "%%")).collect()
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Regexes, {
    "description": "A regular expression (a failure names the address with <HOST>) or a list of them.",
    "anyOf": [{ "type": ["string", "number", "boolean"] }, { "type": "array", "items": { "type": ["string", "number", "boolean"] } }]
});

impl<'de> Deserialize<'de> for Regexes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many_placed(
            deserializer,
            "a regular expression or a list of them",
            |s| {
                let text = text_of(s);
                check_ini_text(&text, false).map(|()| text)
            },
        )
        .map(Regexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_accept_numbers_ranges_and_names() {
        assert_eq!(parse_port("2222"), Ok(Port::Number(2222)));
        assert_eq!(parse_port("8000:8010"), Ok(Port::Range(8000, 8010)));
        assert_eq!(parse_port("ssh"), Ok(Port::Service("ssh".into())));
        assert!(parse_port("0").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("9:1").is_err());
        assert!(parse_port("a b").is_err());
        let ports = Ports(vec![Port::Number(22), Port::Number(2222)]);
        assert_eq!(ports.lines(), vec!["22,2222"]);
        assert!(ports.matches("2222,22"));
        assert!(!ports.matches("ssh"));
    }

    #[test]
    fn addresses_are_ips_networks_or_names() {
        assert!(check_address("127.0.0.1/8").is_ok());
        assert!(check_address("::1").is_ok());
        assert!(check_address("2001:db8::/32").is_ok());
        assert!(check_address("bastion.example.org").is_ok());
        assert!(check_address("10.0.0.0/33").is_err());
        assert!(check_address("300.1.1.1").is_err());
        assert!(check_address("a/b").is_err());
    }

    #[test]
    fn ini_text_that_fail2ban_would_change_is_refused() {
        assert!(check_ini_text("%(action_)s", true).is_ok());
        assert!(check_ini_text("100%", true).is_err());
        assert!(check_ini_text("100%%", true).is_ok());
        assert!(check_ini_text("100%", false).is_ok());
        assert!(check_ini_text("a ; b", false).is_err());
        assert!(check_ini_text("#x", false).is_err());
        assert!(check_ini_text(" x", false).is_err());
        assert!(check_ini_text("a\nb", false).is_err());
        assert!(check_ini_text("/var/log/a\0b", false).is_err());
        assert!(check_ini_text("a\u{1b}[31m", false).is_err());
        assert!(check_ini_text("a\tb <HOST>", false).is_ok());
    }

    #[test]
    fn names_are_safe_for_files_and_sections() {
        assert!(check_name("streaming-app").is_ok());
        assert!(check_name("nginx_http.auth").is_ok());
        assert!(check_name("DEFAULT").is_err());
        assert!(check_name("../x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn regexes_double_percent_signs() {
        let r = Regexes(vec![Located::unplaced("100% from <HOST>".into())]);
        assert_eq!(r.escaped(), vec!["100%% from <HOST>"]);
    }

    #[test]
    fn keywords_compare_without_arguments() {
        assert!(Backend::Systemd.matches("systemd"));
        assert!(Backend::Systemd.matches("systemd[journalflags=1]"));
        assert!(!Backend::Auto.matches("systemd"));
        assert!(true.matches("True"));
        assert!(!false.matches("True"));
    }
}
