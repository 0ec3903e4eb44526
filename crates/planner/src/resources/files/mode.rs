//! File modes as playbooks write them: octal (`"0640"`) or symbolic (`"u=rwX,g=rX,o="`).

use std::fmt;

use harden_plan::{ModeClause, ModeOp, ModeRule};
use serde::{Deserialize, Deserializer};

/// A mode to set: absolute bits, or `chmod`-style clauses applied to the current mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exactly these bits (`0o7777` mask).
    Octal(u32),
    /// Clauses applied in order, as `chmod` does.
    Symbolic(Vec<ModeClause>),
}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;
const ALL: u32 = 0o7777;

impl Mode {
    /// The mode a file with `current` bits ends up with.
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            Mode::Octal(bits) => *bits,
            Mode::Symbolic(clauses) => clauses
                .iter()
                .fold(current & ALL, |mode, c| c.apply(mode, is_dir)),
        }
    }

    /// The same mode as a plan carries it, for the executor to apply entry by entry.
    pub fn rule(&self) -> ModeRule {
        match self {
            Mode::Octal(bits) => ModeRule::Exact(*bits),
            Mode::Symbolic(clauses) => ModeRule::Clauses(clauses.clone()),
        }
    }
}

/// Parses a mode; the error says what was expected.
pub fn parse(text: &str) -> Result<Mode, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "empty mode: expected octal like \"0640\" or symbolic like \"u=rw,g=r,o=\"".into(),
        );
    }
    if text.chars().all(|c| c.is_ascii_digit()) {
        if let Some(bad) = text.chars().find(|c| !('0'..='7').contains(c)) {
            return Err(format!(
                "invalid octal mode \"{text}\": digit {bad} is not 0-7"
            ));
        }
        if text.len() > 4 {
            return Err(format!(
                "invalid octal mode \"{text}\": at most 4 octal digits (like \"0640\" or \"2750\")"
            ));
        }
        return u32::from_str_radix(text, 8)
            .map(Mode::Octal)
            .map_err(|e| format!("invalid octal mode \"{text}\": {e}"));
    }
    let mut clauses = Vec::new();
    for part in text.split(',') {
        clauses.push(
            parse_clause(part).map_err(|why| format!("invalid symbolic mode \"{text}\": {why}"))?,
        );
    }
    Ok(Mode::Symbolic(clauses))
}

fn parse_clause(part: &str) -> Result<ModeClause, String> {
    let op_at = part
        .find(['+', '-', '='])
        .ok_or_else(|| format!("clause \"{part}\" has no +, - or ="))?;
    let (who_text, rest) = part.split_at(op_at);
    let mut who = 0;
    for c in who_text.chars() {
        who |= match c {
            'u' => USER,
            'g' => GROUP,
            'o' => OTHER,
            'a' => ALL,
            _ => {
                return Err(format!(
                    "unknown class '{c}' in \"{part}\" (expected u, g, o or a)"
                ))
            }
        };
    }
    if who == 0 {
        who = ALL;
    }
    let mut chars = rest.chars();
    let op = match chars.next() {
        Some('+') => ModeOp::Add,
        Some('-') => ModeOp::Remove,
        _ => ModeOp::Set,
    };
    let perms: Vec<char> = chars.collect();
    if let Some(bad) = perms.iter().find(|c| !"rwxXst".contains(**c)) {
        return Err(format!(
            "unknown permission '{bad}' in \"{part}\" (expected r, w, x, X, s or t)"
        ));
    }
    if perms.iter().any(|c| "+-=".contains(*c)) {
        return Err(format!("\"{part}\": separate clauses with commas"));
    }
    let bits = perms.iter().fold(0, |bits, p| {
        bits | match p {
            'r' => 0o444,
            'w' => 0o222,
            'x' => 0o111,
            's' => 0o6000,
            't' => 0o1000,
            _ => 0,
        }
    });
    Ok(ModeClause {
        who,
        op,
        perms: bits,
        search: perms.contains(&'X'),
    })
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Mode, {
    "description": "Octal (\"0640\", quoted so that YAML keeps the leading zero) or symbolic as chmod takes it (\"u=rwX,g=rX,o=\", \"go-w\").",
    "anyOf": [
        { "type": "string", "pattern": "^([0-7]{3,4}|[ugoa]*[-+=][rwxXst]*(,[ugoa]*[-+=][rwxXst]*)*)$" },
        { "type": "integer", "minimum": 0, "maximum": 7777 }
    ]
});

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Octal(bits) => write!(f, "{bits:04o}"),
            Mode::Symbolic(_) => f.write_str("(symbolic)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(mode: &str, current: u32, is_dir: bool) -> u32 {
        parse(mode).expect("valid mode").apply(current, is_dir)
    }

    #[test]
    fn octal_modes_set_exact_bits() {
        assert_eq!(apply("0640", 0o777, false), 0o640);
        assert_eq!(apply("600", 0o644, false), 0o600);
        assert_eq!(apply("2750", 0o755, true), 0o2750);
    }

    #[test]
    fn capital_x_adds_search_to_directories_and_executables_only() {
        assert_eq!(apply("u=rwX,g=rX,o=", 0o644, false), 0o640);
        assert_eq!(apply("u=rwX,g=rX,o=", 0o755, false), 0o750);
        assert_eq!(apply("u=rwX,g=rX,o=", 0o700, true), 0o750);
    }

    #[test]
    fn add_remove_and_default_who() {
        assert_eq!(apply("go-rwx", 0o755, false), 0o700);
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("u+s,o-r", 0o755, false), 0o4751);
        assert_eq!(apply("a=", 0o777, false), 0);
    }

    #[test]
    fn bad_modes_say_what_is_wrong() {
        assert!(parse("0999").expect_err("bad").contains("digit 9"));
        assert!(parse("07777x").expect_err("bad").contains("no +, - or ="));
        assert!(parse("u=rwz")
            .expect_err("bad")
            .contains("unknown permission 'z'"));
        assert!(parse("q+r").expect_err("bad").contains("unknown class 'q'"));
        assert!(parse("01234").expect_err("bad").contains("at most 4"));
        assert!(parse("").is_err());
    }
}
