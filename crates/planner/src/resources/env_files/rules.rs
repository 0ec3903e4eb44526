//! The verdict on one key's current value: fine, to be set, or an error; described in words
//! that never contain a secret value.

use harden_plan::{EnvValue, Generate};

use crate::diagnostic::Invalid;
use crate::located::At;

/// Values that ship in examples, tutorials and `.env.example` files; a secret that equals one
/// (ignoring case, and blanks around it) is no secret.
pub(crate) const KNOWN_DEFAULTS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "changeit",
    "changethis",
    "change_this",
    "change-this",
    "changeme123",
    "replace_me",
    "replaceme",
    "replace-me",
    "replace_this",
    "replacethis",
    "secret",
    "secrets",
    "secretkey",
    "secret_key",
    "secret-key",
    "mysecret",
    "my_secret",
    "my-secret",
    "yoursecret",
    "your_secret",
    "your-secret",
    "your_secret_here",
    "your-secret-here",
    "your_secret_key",
    "your-secret-key",
    "your_jwt_secret",
    "your-jwt-secret",
    "jwt_secret",
    "jwtsecret",
    "jwt-secret",
    "supersecret",
    "super_secret",
    "topsecret",
    "password",
    "password1",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "pass",
    "passwd",
    "admin",
    "admin123",
    "administrator",
    "root",
    "toor",
    "example",
    "sample",
    "test",
    "testing",
    "test123",
    "demo",
    "default",
    "dev",
    "development",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
    "letmein",
    "welcome",
    "guest",
    "xxx",
    "todo",
    "fixme",
    "null",
    "none",
    "undefined",
    "insecure",
    "dummy",
    "foobar",
    "foo",
    "bar",
    "abc123",
    "key",
    "token",
    "apikey",
    "api_key",
];

/// How the rules of one key judge values. Built from the playbook, used without I/O.
#[derive(Clone, Debug)]
pub(crate) struct Rules<'a> {
    /// The key.
    pub key: &'a str,
    /// Where its rules are written, for errors.
    pub at: At,
    /// Its value is a secret: the known defaults are rejected, and it is never shown.
    pub secret: bool,
    /// Its value is never shown (every key but those with `equals` or `secret: false`).
    pub hidden: bool,
    /// It must be present (and not empty).
    pub required: bool,
    /// The shortest acceptable value, in characters.
    pub min_length: Option<u32>,
    /// Values the playbook rejects (compared ignoring case).
    pub reject: &'a [String],
    /// The one acceptable value.
    pub equals: Option<&'a str>,
    /// How a replacement is made.
    pub generate: Option<Generate>,
    /// A weak value is an error rather than replaced.
    pub error_on_weak: bool,
}

/// What becomes of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its values meet the rules (or it is absent and may be).
    Fine,
    /// It is given a new value.
    Set {
        /// The value, or how it is made.
        value: EnvValue,
        /// What it is now, in words safe to print.
        current: String,
        /// What it becomes, in words safe to print.
        desired: String,
        /// An existing value is replaced: what was made with it stops working.
        rotates: bool,
    },
}

/// Why a present value is weak, in words safe to print (`a known default, shorter than
/// 32`); `None` when it meets every rule.
fn weakness(rules: &Rules<'_>, value: &str, taken: &[&str]) -> Option<String> {
    let folded = value.trim().to_lowercase();
    let chars = value.chars().count();
    let mut why: Vec<String> = Vec::new();
    if rules.secret {
        if KNOWN_DEFAULTS.contains(&folded.as_str()) {
            why.push("a known default".into());
        } else if folded.starts_with('<') && folded.ends_with('>') {
            why.push("a placeholder".into());
        } else if chars > 1 && value.chars().all(|c| value.starts_with(c)) {
            why.push("one character repeated".into());
        }
    }
    if rules
        .reject
        .iter()
        .any(|r| r.trim().to_lowercase() == folded)
    {
        why.push("a value the playbook rejects".into());
    }
    if let Some(min) = rules.min_length {
        if chars < min as usize {
            why.push(format!("shorter than {min}"));
        }
    }
    if rules.secret && taken.contains(&value) {
        why.push("the same value as another secret of this file".into());
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// `8 characters`, `missing`: what a value is, without it (a secret) or as it is.
fn describe(rules: &Rules<'_>, value: Option<&str>, why: Option<&str>) -> String {
    let Some(value) = value else {
        return "missing".into();
    };
    let what = if !rules.hidden {
        format!("{value:?}")
    } else if value.is_empty() {
        "empty".into()
    } else {
        let n = value.chars().count();
        format!("{n} character{}", if n == 1 { "" } else { "s" })
    };
    match why {
        Some(why) => format!("{what}, {why}"),
        None => what,
    }
}

/// Judges `values` (every assignment of the key in the file, in order) against `rules`;
/// `taken` holds the values of the file's other secrets that stay.
pub(crate) fn judge(
    rules: &Rules<'_>,
    values: &[&str],
    taken: &[&str],
    path: &str,
) -> Result<Verdict, Invalid> {
    if let Some(equals) = rules.equals {
        if !values.is_empty() && values.iter().all(|v| *v == equals) {
            return Ok(Verdict::Fine);
        }
        let current = values.iter().find(|v| **v != equals).copied();
        return Ok(Verdict::Set {
            value: EnvValue::Literal(equals.to_owned()),
            current: describe(rules, current, None),
            desired: describe(rules, Some(equals), None),
            rotates: false,
        });
    }
    let present: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    if present.is_empty() {
        return missing(rules, values.first().copied(), path);
    }
    let weak = present
        .iter()
        .find_map(|v| weakness(rules, v, taken).map(|why| (*v, why)));
    let Some((value, why)) = weak else {
        return Ok(Verdict::Fine);
    };
    let current = describe(rules, Some(value), Some(&why));
    match rules.generate {
        Some(how) if !rules.error_on_weak => Ok(Verdict::Set {
            value: EnvValue::Generate(how),
            current,
            desired: format!("generated ({})", how.describe()),
            rotates: true,
        }),
        Some(_) => Err(Invalid::new(
            rules.at,
            format!("{} in {path} is {current}, and `on_weak: error` forbids replacing it", rules.key),
        )
        .help("give it a value that meets its rules, or set `on_weak: generate` to let harden replace it")),
        None => Err(Invalid::new(
            rules.at,
            format!("{} in {path} is {current}", rules.key),
        )
        .help("give it a value that meets its rules, or add `generate:` to let harden make one")),
    }
}

/// The verdict on a key that is absent or empty (`empty` is its value then).
fn missing(rules: &Rules<'_>, empty: Option<&str>, path: &str) -> Result<Verdict, Invalid> {
    let current = describe(rules, empty, None);
    match rules.generate {
        // Nothing uses a missing secret yet, so making one rotates nothing, whatever on_weak.
        Some(how) => Ok(Verdict::Set {
            value: EnvValue::Generate(how),
            current,
            desired: format!("generated ({})", how.describe()),
            rotates: false,
        }),
        None if rules.required => Err(Invalid::new(
            rules.at,
            format!("{} is required in {path} but is {current}", rules.key),
        )
        .help("add it to the file, or add `generate:` to let harden make one")),
        None => Ok(Verdict::Fine),
    }
}
