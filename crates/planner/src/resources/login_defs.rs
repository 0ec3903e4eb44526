//! `login_defs`: password aging, the default umask and password hashing in `/etc/login.defs`.
//!
//! The file has no drop-in directory, so harden edits it in place, minimally: the value of
//! each uncommented line of a key the playbook sets is rewritten (its indentation and the
//! spacing after the key kept), every other line stays byte for byte, commented-out defaults
//! (`#SHA_CRYPT_MIN_ROUNDS 5000`) included, and a key the file does not set is appended. The
//! shadow tools read the last line of a key; harden gives every line of it the value.
//!
//! The values apply to what reads the file from then on: `useradd` (aging of new accounts,
//! the mode of new homes), pam_umask, `chpasswd` and `newusers`. Existing accounts keep their
//! aging (`chage` changes those).

use std::path::{Path, PathBuf};

use harden_plan::{Attrs, Change, Detail, Step};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

/// The file.
pub const LOGIN_DEFS: &str = "/etc/login.defs";

/// The `login_defs:` section, by the file's own key names.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginDefs {
    /// Days a password may be used (new accounts); 99999 means forever.
    #[serde(rename = "PASS_MAX_DAYS")]
    pub pass_max_days: Option<Located<Days>>,
    /// Days before a password may be changed again (new accounts).
    #[serde(rename = "PASS_MIN_DAYS")]
    pub pass_min_days: Option<Located<Days>>,
    /// Days of warning before a password expires (new accounts).
    #[serde(rename = "PASS_WARN_AGE")]
    pub pass_warn_age: Option<Located<Days>>,
    /// The default umask (pam_umask, new homes): an octal string such as "027".
    #[serde(rename = "UMASK")]
    pub umask: Option<Located<Umask>>,
    /// How `chpasswd` and `newusers` hash passwords.
    #[serde(rename = "ENCRYPT_METHOD")]
    pub encrypt_method: Option<Located<EncryptMethod>>,
    /// Fewest SHA-crypt rounds (SHA256, SHA512).
    #[serde(rename = "SHA_CRYPT_MIN_ROUNDS")]
    pub sha_crypt_min_rounds: Option<Located<Rounds>>,
    /// Most SHA-crypt rounds (SHA256, SHA512).
    #[serde(rename = "SHA_CRYPT_MAX_ROUNDS")]
    pub sha_crypt_max_rounds: Option<Located<Rounds>>,
    /// yescrypt's cost (YESCRYPT), 1 to 11.
    #[serde(rename = "YESCRYPT_COST_FACTOR")]
    pub yescrypt_cost_factor: Option<Located<Cost>>,
}

/// A whole number within bounds, deserialised with a located error outside them.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub i64);

        #[cfg(feature = "schema")]
        crate::schema::literal!($name, {
            "description": $what,
            "type": "integer",
            "minimum": $min,
            "maximum": $max
        });

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let v = i64::deserialize(deserializer).map_err(|_| {
                    serde::de::Error::custom(format!("expected {}: a whole number from {} to {}", $what, $min, $max))
                })?;
                if !($min..=$max).contains(&v) {
                    return Err(serde::de::Error::custom(format!(
                        "{v} is out of range: expected {} from {} to {}",
                        $what, $min, $max
                    )));
                }
                Ok($name(v))
            }
        }
    };
}

bounded!(
    /// A number of days.
    Days, 0, 99999, "a number of days"
);
bounded!(
    /// SHA-crypt rounds, as crypt(3) accepts them.
    Rounds, 1000, 999_999_999, "SHA-crypt rounds"
);
bounded!(
    /// yescrypt's cost factor.
    Cost, 1, 11, "a yescrypt cost factor"
);

/// A umask: three or four octal digits, kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Umask(pub String);

impl Umask {
    fn bits(text: &str) -> Option<u32> {
        u32::from_str_radix(text, 8).ok().filter(|b| *b <= 0o777)
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Umask, {
    "description": "An octal umask, quoted: \"027\" (unquoted, YAML may read it as a number; harden reads its digits).",
    "anyOf": [
        { "type": "string", "pattern": "^0?[0-7]{3}$" },
        { "type": "integer", "minimum": 0, "maximum": 777 }
    ]
});

impl<'de> Deserialize<'de> for Umask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected an octal umask as a quoted string, such as \"027\"")
        })?;
        let digits = text.len() == 3 || (text.len() == 4 && text.starts_with('0'));
        if !digits || Umask::bits(&text).is_none() {
            return Err(serde::de::Error::custom(format!(
                "invalid umask {text:?}: expected three octal digits such as \"027\""
            )));
        }
        Ok(Umask(text))
    }
}

/// A password hashing method the shadow tools know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum EncryptMethod {
    /// SHA-256 crypt.
    Sha256,
    /// SHA-512 crypt.
    Sha512,
    /// yescrypt (Debian 13's default).
    Yescrypt,
}

impl EncryptMethod {
    fn word(self) -> &'static str {
        match self {
            EncryptMethod::Sha256 => "SHA256",
            EncryptMethod::Sha512 => "SHA512",
            EncryptMethod::Yescrypt => "YESCRYPT",
        }
    }
}

/// What the probe learns: the file, if there is one.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// `/etc/login.defs`.
    pub text: Option<String>,
}

/// One key the playbook sets, how it is written and how values compare.
struct Wanted {
    key: &'static str,
    value: String,
    same: fn(&str, &str) -> bool,
}

fn same_number(a: &str, b: &str) -> bool {
    a.parse::<i64>()
        .ok()
        .is_some_and(|x| b.parse::<i64>().ok() == Some(x))
}

fn same_umask(a: &str, b: &str) -> bool {
    Umask::bits(a).is_some_and(|x| Umask::bits(b) == Some(x))
}

fn same_text(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b
}

impl Resource for LoginDefs {
    type Live = Live;
    const NAME: &'static str = "login_defs";

    fn merge(&mut self, later: Self) {
        macro_rules! take {
            ($($field:ident),*) => {
                $(if later.$field.is_some() { self.$field = later.$field; })*
            };
        }
        take!(
            pass_max_days,
            pass_min_days,
            pass_warn_age,
            umask,
            encrypt_method,
            sha_crypt_min_rounds,
            sha_crypt_max_rounds,
            yescrypt_cost_factor
        );
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        if let (Some(min), Some(max)) = (&self.pass_min_days, &self.pass_max_days) {
            if min.value.0 > max.value.0 {
                errors.push(Invalid::new(
                    min.at,
                    format!("PASS_MIN_DAYS {} is more than PASS_MAX_DAYS {}: no password could ever be changed", min.value.0, max.value.0),
                ));
            }
        }
        if let (Some(warn), Some(max)) = (&self.pass_warn_age, &self.pass_max_days) {
            if warn.value.0 > max.value.0 {
                errors.push(Invalid::new(
                    warn.at,
                    format!(
                        "PASS_WARN_AGE {} is more than PASS_MAX_DAYS {}",
                        warn.value.0, max.value.0
                    ),
                ));
            }
        }
        if let (Some(min), Some(max)) = (&self.sha_crypt_min_rounds, &self.sha_crypt_max_rounds) {
            if min.value.0 > max.value.0 {
                errors.push(Invalid::new(
                    min.at,
                    format!(
                        "SHA_CRYPT_MIN_ROUNDS {} is more than SHA_CRYPT_MAX_ROUNDS {}",
                        min.value.0, max.value.0
                    ),
                ));
            }
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let text = cx
            .host
            .read_to_string(Path::new(LOGIN_DEFS))
            .map_err(|e| Failure::Probe(format!("{LOGIN_DEFS}: {e}")))?;
        Ok(Live { text })
    }

    fn diff(&self, live: &Live, _cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let wanted = self.wanted();
        let before = live.text.clone().unwrap_or_default();
        let (after, details) = edit(&before, &wanted);
        diff.unchanged += (wanted.len() - details.len()) as u64;
        if details.is_empty() {
            return Ok(diff);
        }
        let reason = if live.text.is_none() {
            "file is missing".to_owned()
        } else {
            format!("{} setting(s) differ", details.len())
        };
        diff.changes.push(
            Change::new(
                Self::NAME,
                LOGIN_DEFS,
                reason,
                vec![Step::WriteFile {
                    path: PathBuf::from(LOGIN_DEFS),
                    content: after,
                    attrs: Attrs::root(0o644),
                    before: live.text.clone(),
                }],
            )
            .with_details(details),
        );
        Ok(diff)
    }
}

impl LoginDefs {
    /// The keys set, in the file's own order of sections.
    fn wanted(&self) -> Vec<Wanted> {
        let mut out = Vec::new();
        let mut push = |key, value: String, same| out.push(Wanted { key, value, same });
        for (key, days) in [
            ("PASS_MAX_DAYS", &self.pass_max_days),
            ("PASS_MIN_DAYS", &self.pass_min_days),
            ("PASS_WARN_AGE", &self.pass_warn_age),
        ] {
            if let Some(d) = days {
                push(
                    key,
                    d.value.0.to_string(),
                    same_number as fn(&str, &str) -> bool,
                );
            }
        }
        if let Some(u) = &self.umask {
            push("UMASK", u.value.0.clone(), same_umask);
        }
        if let Some(m) = &self.encrypt_method {
            push("ENCRYPT_METHOD", m.value.word().to_owned(), same_text);
        }
        for (key, rounds) in [
            ("SHA_CRYPT_MIN_ROUNDS", &self.sha_crypt_min_rounds),
            ("SHA_CRYPT_MAX_ROUNDS", &self.sha_crypt_max_rounds),
        ] {
            if let Some(r) = rounds {
                push(key, r.value.0.to_string(), same_number);
            }
        }
        if let Some(c) = &self.yescrypt_cost_factor {
            push("YESCRYPT_COST_FACTOR", c.value.0.to_string(), same_number);
        }
        out
    }
}

/// The key and value of an uncommented line: `(key, start of the value, value)`.
fn setting(line: &str) -> Option<(&str, usize, &str)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return None;
    }
    let indent = line.len() - trimmed.len();
    let key_end = trimmed.find(char::is_whitespace)?;
    let key = &trimmed[..key_end];
    let rest = &trimmed[key_end..];
    let value_at = indent + key_end + (rest.len() - rest.trim_start().len());
    Some((key, value_at, line[value_at..].trim_end()))
}

/// The file with each wanted key set, and a detail for each key that changes.
fn edit(text: &str, wanted: &[Wanted]) -> (String, Vec<Detail>) {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut details = Vec::new();
    let mut appended = Vec::new();
    for want in wanted {
        let mut found = false;
        let mut current = None;
        for (index, line) in lines.iter_mut().enumerate() {
            let Some((key, value_at, value)) = setting(line) else {
                continue;
            };
            if key != want.key {
                continue;
            }
            found = true;
            if !(want.same)(value, &want.value) {
                current = Some((value.to_owned(), index + 1));
                *line = format!("{}{}", &line[..value_at], want.value);
            }
        }
        if !found {
            appended.push(format!("{}\t{}", want.key, want.value));
            details.push(detail(want, None));
        } else if let Some((value, line)) = current {
            details.push(detail(want, Some((value, line))));
        }
    }
    if !appended.is_empty() {
        lines.push("# Added by harden from the playbook's `login_defs` section.".into());
        lines.extend(appended);
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    (out, details)
}

fn detail(want: &Wanted, current: Option<(String, usize)>) -> Detail {
    Detail {
        name: want.key.into(),
        source: current
            .as_ref()
            .map(|(_, line)| format!("{LOGIN_DEFS}:{line}")),
        current: current.map(|(value, _)| value),
        desired: Some(want.value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<LoginDefs, String> {
        let source = crate::diagnostic::Source {
            name: "pb.yaml".into(),
            text: yaml.into(),
        };
        crate::playbook::load(vec![source])
            .map(|l| l.playbook.login_defs.expect("section"))
            .map_err(|d| d.to_string())
    }

    const FILE: &str = "# header\nUMASK\t\t022\n\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\n#SHA_CRYPT_MIN_ROUNDS 5000\nENCRYPT_METHOD SHA512\n";

    #[test]
    fn only_the_values_change_comments_and_order_stay_and_missing_keys_are_appended() {
        let section = load(
            "login_defs:\n  PASS_MAX_DAYS: 365\n  PASS_MIN_DAYS: 0\n  UMASK: \"027\"\n  SHA_CRYPT_MIN_ROUNDS: 5000\n",
        )
        .expect("section");
        let (after, details) = edit(FILE, &section.wanted());
        assert_eq!(
            after,
            "# header\nUMASK\t\t027\n\nPASS_MAX_DAYS\t365\nPASS_MIN_DAYS\t0\n#SHA_CRYPT_MIN_ROUNDS 5000\nENCRYPT_METHOD SHA512\n# Added by harden from the playbook's `login_defs` section.\nSHA_CRYPT_MIN_ROUNDS\t5000\n"
        );
        let names: Vec<(&str, Option<&str>, Option<&str>)> = details
            .iter()
            .map(|d| (d.name.as_str(), d.current.as_deref(), d.source.as_deref()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("PASS_MAX_DAYS", Some("99999"), Some("/etc/login.defs:4")),
                ("UMASK", Some("022"), Some("/etc/login.defs:2")),
                ("SHA_CRYPT_MIN_ROUNDS", None, None)
            ]
        );
        // The second plan: nothing to change.
        let (again, details) = edit(&after, &section.wanted());
        assert_eq!(again, after);
        assert!(details.is_empty());
    }

    #[test]
    fn equal_values_written_otherwise_are_left_alone() {
        let section =
            load("login_defs:\n  UMASK: \"0022\"\n  PASS_MIN_DAYS: 0\n").expect("section");
        let (after, details) = edit(FILE, &section.wanted());
        assert_eq!(after, FILE);
        assert!(details.is_empty());
    }

    #[test]
    fn every_line_of_a_key_set_twice_gets_the_value() {
        let section = load("login_defs:\n  ENCRYPT_METHOD: YESCRYPT\n").expect("section");
        let (after, _) = edit(
            "ENCRYPT_METHOD SHA512\n  ENCRYPT_METHOD\tMD5\n",
            &section.wanted(),
        );
        assert_eq!(
            after,
            "ENCRYPT_METHOD YESCRYPT\n  ENCRYPT_METHOD\tYESCRYPT\n"
        );
    }

    #[test]
    fn bad_values_are_located_errors() {
        for (yaml, place, needle) in [
            (
                "login_defs:\n  PASS_MAX_DAYS: 100000\n",
                "pb.yaml:2:18",
                "out of range",
            ),
            (
                "login_defs:\n  PASS_MAX_DAYS: soon\n",
                "pb.yaml:2:18",
                "a number of days",
            ),
            (
                "login_defs:\n  UMASK: 27\n",
                "pb.yaml:2:10",
                "three octal digits",
            ),
            (
                "login_defs:\n  UMASK: \"0888\"\n",
                "pb.yaml:2:10",
                "invalid umask",
            ),
            (
                "login_defs:\n  ENCRYPT_METHOD: DES\n",
                "pb.yaml:2:19",
                "unknown variant",
            ),
            (
                "login_defs:\n  YESCRYPT_COST_FACTOR: 12\n",
                "pb.yaml:2:25",
                "out of range",
            ),
            (
                "login_defs:\n  pass_max_days: 90\n",
                "pb.yaml:2:3",
                "unknown field",
            ),
            (
                "login_defs:\n  PASS_MIN_DAYS: 30\n  PASS_MAX_DAYS: 7\n",
                "pb.yaml:2:18",
                "more than PASS_MAX_DAYS",
            ),
        ] {
            let err = load(yaml).expect_err(yaml);
            assert!(err.contains(place), "{yaml}: {err}");
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }
}
