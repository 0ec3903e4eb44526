//! Python's `ConfigParser` as fail2ban configures it (strict, `;` inline comments, `%(name)s`
//! interpolation with fail2ban's `%(section/option)s` and `%(__name__)s`), reproduced for
//! reading fail2ban's files without starting Python.
//!
//! Everything here either does what Python does or says it cannot ([`Unsupported`]): a file
//! Python would refuse, a reference this reader does not follow. The caller then asks
//! fail2ban itself, so a gap costs time, never a wrong answer.

use std::collections::BTreeMap;

/// Why this reader cannot stand in for fail2ban's own: the caller asks fail2ban instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Err(Unsupported(format!(...)))`.
macro_rules! unsupported {
    ($($arg:tt)*) => {
        Err(crate::resources::fail2ban::configparser::Unsupported(format!($($arg)*)))
    };
}
pub(crate) use unsupported;

/// Options of one section, keys lowercased, values as written (continuation lines joined
/// with `\n`).
pub type Options = BTreeMap<String, String>;

/// One file as Python's `ConfigParser.read` leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `[DEFAULT]`.
    pub defaults: Options,
    /// Other sections, in the order they first appear.
    pub sections: Vec<(String, Options)>,
}

/// Parses `text` as Python 3's `ConfigParser(strict=True, inline_comment_prefixes=";")`
/// does; `Unsupported` where Python would raise (a duplicate, a line outside any section, a
/// line without `=` or `:`).
pub fn parse(path: &str, text: &str) -> Result<Parsed, Unsupported> {
    if text.contains('\r') || text.starts_with('\u{feff}') {
        return unsupported!("{path}: carriage returns or a byte order mark");
    }
    let mut parsed = Parsed::default();
    // Lines of each value before they are joined; `None`: [DEFAULT].
    let mut values: Vec<(Option<usize>, String, Vec<String>)> = Vec::new();
    let mut section: Option<Option<usize>> = None;
    let mut option: Option<usize> = None;
    let mut indent = usize::MAX;
    let mut seen: Vec<(String, String)> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        let comment = comment_start(line);
        let value = line[..comment.unwrap_or(line.len())].trim();
        if value.is_empty() {
            // An empty line inside a value is kept (empty_lines_in_values), unless the line
            // held a comment.
            if comment.is_none() {
                if let Some(i) = option {
                    values[i].2.push(String::new());
                }
            }
            continue;
        }
        let level = line.len() - line.trim_start().len();
        if let (Some(_), Some(i)) = (section, option) {
            if level > indent {
                values[i].2.push(value.to_owned());
                continue;
            }
        }
        indent = level;
        if let Some(name) = header(value) {
            option = None;
            if name == "DEFAULT" {
                section = Some(None);
                continue;
            }
            if parsed.sections.iter().any(|(n, _)| n == name) {
                return unsupported!("{path}:{number}: section [{name}] repeats");
            }
            parsed.sections.push((name.to_owned(), Options::new()));
            section = Some(Some(parsed.sections.len() - 1));
            continue;
        }
        let Some(current) = section else {
            return unsupported!("{path}:{number}: a line before any section");
        };
        let Some(split) = value.find(['=', ':']) else {
            return unsupported!("{path}:{number}: neither `=` nor `:`");
        };
        let key = value[..split].trim_end().to_lowercase();
        if key.is_empty() {
            return unsupported!("{path}:{number}: no option name");
        }
        let section_name = match current {
            Some(i) => parsed.sections[i].0.clone(),
            None => "DEFAULT".to_owned(),
        };
        if seen.iter().any(|(s, k)| *s == section_name && *k == key) {
            return unsupported!("{path}:{number}: option {key} repeats in [{section_name}]");
        }
        seen.push((section_name, key.clone()));
        values.push((current, key, vec![value[split + 1..].trim().to_owned()]));
        option = Some(values.len() - 1);
    }
    for (section, key, lines) in values {
        let value = lines.join("\n").trim_end().to_owned();
        match section {
            Some(i) => parsed.sections[i].1.insert(key, value),
            None => parsed.defaults.insert(key, value),
        };
    }
    Ok(parsed)
}

/// Where a comment starts: a `;` at the start or after whitespace, or the whole line when it
/// starts (after whitespace) with `#` or `;`.
fn comment_start(line: &str) -> Option<usize> {
    if line.trim_start().starts_with(['#', ';']) {
        return Some(0);
    }
    let mut previous: Option<char> = None;
    for (i, c) in line.char_indices() {
        if c == ';' && previous.is_none_or(char::is_whitespace) {
            return Some(i);
        }
        previous = Some(c);
    }
    None
}

/// The name of a `[section]` line: from the first `[` to the last `]` (Python's
/// `\[(?P<header>.+)\]`, matched at the start only).
fn header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// Longest interpolated value this reader builds: references ten levels deep can multiply a
/// value's length past any real configuration (fail2ban itself would not finish either).
const MAX_VALUE: usize = 1 << 20;

/// Merged sections with fail2ban's interpolation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `[DEFAULT]`.
    pub defaults: Options,
    /// Sections by name (with `KNOWN/name` sections for values a later file replaced).
    pub sections: BTreeMap<String, Options>,
}

impl Config {
    /// The value of `option` in `section`, interpolated; `None` when neither the section nor
    /// `[DEFAULT]` sets it.
    pub fn get(&self, section: &str, option: &str) -> Result<Option<String>, Unsupported> {
        let own = self.sections.get(section);
        let Some(raw) = own
            .and_then(|s| s.get(option))
            .or_else(|| self.defaults.get(option))
        else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(section, option, raw, &Options::new(), 1, &mut out)?;
        Ok(Some(out))
    }

    /// Python's `BasicInterpolation._interpolate_some` under fail2ban's wrapper, which at
    /// every level maps `%(section/option)s` references of `rest` into the lookup.
    fn interpolate(
        &self,
        section: &str,
        option: &str,
        rest: &str,
        extra: &Options,
        depth: usize,
        out: &mut String,
    ) -> Result<(), Unsupported> {
        if depth > MAX_DEPTH {
            return unsupported!("[{section}] {option}: interpolation deeper than {MAX_DEPTH}");
        }
        if out.len() > MAX_VALUE {
            return unsupported!("[{section}] {option}: interpolates to over {MAX_VALUE} bytes");
        }
        let mut extra = extra.clone();
        extra.insert("__name__".to_owned(), section.to_owned());
        self.map_section_options(section, rest, &mut extra)?;
        let mut rest = rest;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some(b'(') => {
                    let Some(close) = rest.find(')').filter(|c| *c > 2) else {
                        return unsupported!("[{section}] {option}: bad reference {rest:?}");
                    };
                    if rest.as_bytes().get(close + 1) != Some(&b's') {
                        return unsupported!("[{section}] {option}: bad reference {rest:?}");
                    }
                    let name = rest[2..close].to_lowercase();
                    rest = &rest[close + 2..];
                    let Some(value) = extra
                        .get(&name)
                        .or_else(|| self.sections.get(section).and_then(|s| s.get(&name)))
                        .or_else(|| self.defaults.get(&name))
                    else {
                        return unsupported!("[{section}] {option}: %({name})s is not set");
                    };
                    if value.contains('%') {
                        self.interpolate(section, option, value, &extra, depth + 1, out)?;
                    } else {
                        out.push_str(value);
                    }
                }
                _ => return unsupported!("[{section}] {option}: a lone `%`"),
            }
        }
        out.push_str(rest);
        Ok(())
    }

    /// fail2ban's `_map_section_options`: `%(sec/opt)s` takes `opt` of section `sec`
    /// (`default/opt`: of `[DEFAULT]`), falling back to `[DEFAULT]`.
    fn map_section_options(
        &self,
        section: &str,
        rest: &str,
        extra: &mut Options,
    ) -> Result<(), Unsupported> {
        if !rest.contains('/') || !rest.contains("%(") {
            return Ok(());
        }
        for (reference, owner, opt) in section_references(rest) {
            let in_map = extra.contains_key(&reference)
                || self
                    .sections
                    .get(section)
                    .is_some_and(|s| s.contains_key(&reference))
                || self.defaults.contains_key(&reference);
            if in_map {
                continue;
            }
            let owner = owner.to_lowercase();
            if owner == "known" {
                // A jail's `known/` options also come from its filter, which this reader
                // does not evaluate.
                return unsupported!("[{section}]: %({reference})s");
            }
            let value = if owner == "default" {
                self.defaults.get(&opt)
            } else {
                let Some(options) = self
                    .sections
                    .get(&reference[..reference.len() - opt.len() - 1])
                else {
                    continue;
                };
                options.get(&opt).or_else(|| self.defaults.get(&opt))
            };
            if let Some(value) = value {
                extra.insert(reference, value.clone());
            }
        }
        Ok(())
    }
}

/// `%(sec/opt)s` references (fail2ban's `%\(([\w\-]+/([^\)]+))\)s`): the whole
/// `sec/opt`, `sec` and `opt`.
fn section_references(text: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("%(") {
        let body = &rest[start + 2..];
        let owner_len = body
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(body.len(), |(i, _)| i);
        let after_owner = &body[owner_len..];
        if owner_len > 0 && after_owner.starts_with('/') {
            if let Some(close) = after_owner.find(')') {
                let opt = &after_owner[1..close];
                if !opt.is_empty() && after_owner[close + 1..].starts_with('s') {
                    found.push((
                        body[..owner_len + close].to_owned(),
                        body[..owner_len].to_owned(),
                        opt.to_owned(),
                    ));
                    rest = &after_owner[close + 2..];
                    continue;
                }
            }
        }
        rest = &rest[start + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Parsed {
        parse("/t.conf", text).expect("parses")
    }

    #[test]
    fn values_comments_and_continuations_as_python_reads_them() {
        let p = one("[DEFAULT]\nA = 1 ; inline\nb: two;not-a-comment\n# full\n  ; full too\n[j]\nlog = /a\n  /b\n\n  /c\n# c\n  /d\n\nnext = x\n");
        assert_eq!(p.defaults["a"], "1");
        assert_eq!(p.defaults["b"], "two;not-a-comment");
        let j = &p.sections[0];
        assert_eq!(j.0, "j");
        assert_eq!(j.1["log"], "/a\n/b\n\n/c\n/d");
        assert_eq!(j.1["next"], "x");
    }

    #[test]
    fn what_python_refuses_is_unsupported() {
        for text in [
            "key = 1\n",
            "[a]\nx = 1\nx = 2\n",
            "[a]\n[a]\n",
            "[a]\nno delimiter\n",
            "[a]\n= value\n",
            "[a]\r\nx = 1\r\n",
        ] {
            assert!(parse("/t.conf", text).is_err(), "{text:?}");
        }
        // [DEFAULT] may be opened twice; its keys still may not repeat.
        assert!(parse("/t.conf", "[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n").is_ok());
        assert!(parse("/t.conf", "[DEFAULT]\na = 1\n[DEFAULT]\na = 2\n").is_err());
    }

    #[test]
    fn headers_take_everything_to_the_last_bracket() {
        assert_eq!(header("[a] x"), Some("a"));
        assert_eq!(header("[a]]"), Some("a]"));
        assert_eq!(header("[]"), None);
        assert_eq!(one("[sshd?mode=x]\na=1\n").sections[0].0, "sshd?mode=x");
    }

    fn config(defaults: &[(&str, &str)], sections: &[(&str, &[(&str, &str)])]) -> Config {
        let options = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Options>()
        };
        Config {
            defaults: options(defaults),
            sections: sections
                .iter()
                .map(|(n, o)| ((*n).to_owned(), options(o)))
                .collect(),
        }
    }

    #[test]
    fn interpolation_follows_the_section_then_default() {
        let c = config(
            &[
                ("log", "/var/log/%(name)s.log"),
                ("name", "default"),
                ("pct", "100%%"),
            ],
            &[
                ("sshd", &[("logpath", "%(log)s"), ("name", "auth")]),
                (
                    "other",
                    &[("x", "%(sshd/name)s %(default/name)s %(__name__)s %(pct)s")],
                ),
                (
                    "bad",
                    &[
                        ("a", "%(missing)s"),
                        ("b", "50%"),
                        ("c", "%(loop)s"),
                        ("loop", "%(loop)s"),
                    ],
                ),
            ],
        );
        assert_eq!(
            c.get("sshd", "logpath"),
            Ok(Some("/var/log/auth.log".into()))
        );
        assert_eq!(
            c.get("other", "log"),
            Ok(Some("/var/log/default.log".into()))
        );
        assert_eq!(
            c.get("other", "x"),
            Ok(Some("auth default other 100%".into()))
        );
        assert_eq!(c.get("other", "nothing"), Ok(None));
        for key in ["a", "b", "c"] {
            assert!(c.get("bad", key).is_err(), "{key}");
        }
    }

    #[test]
    fn known_references_are_left_to_fail2ban() {
        let c = config(
            &[],
            &[("j", &[("ignoreip", "%(known/ignoreip)s 10.0.0.1")])],
        );
        assert!(c.get("j", "ignoreip").is_err());
    }

    #[test]
    fn section_references_are_found_as_fail2ban_finds_them() {
        assert_eq!(
            section_references("%(a/b)s x %(known/c/d)s %(plain)s %(bad/)s"),
            vec![
                ("a/b".into(), "a".into(), "b".into()),
                ("known/c/d".into(), "known".into(), "c/d".into())
            ]
        );
    }
}
