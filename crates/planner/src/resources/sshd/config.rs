//! Reading sshd_config the way sshd reads it, and editing it minimally.
//!
//! The parser follows OpenSSH's `servconf.c`: a keyword (any case) then arguments split like
//! `argv_split` (quotes, backslash escapes, `#` starting a comment at the start of a word),
//! `Include` expanded in place with `glob(3)` order (bytewise, no leading-dot matches,
//! relative paths under `/etc/ssh`, a missing file is no error), and `Match` opening a
//! conditional block that lasts until the next `Match` or the end of the file it is in (an
//! included file's `Match` ends with that file; lines included from inside a `Match` block
//! belong to it).
//!
//! Parsing is pure: it reads through [`Source`], which the probe implements over the host
//! (recording what it read into a [`Snapshot`]) and the diff implements over that snapshot,
//! so the diff can parse the configuration it is about to write and check the result.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::keywords::{self, Keyword, Repeat};

/// The main configuration file.
pub(crate) const MAIN: &str = "/etc/ssh/sshd_config";
/// Where relative `Include` paths start.
pub(crate) const SSH_DIR: &str = "/etc/ssh";
/// sshd's limit on nested includes.
const MAX_DEPTH: usize = 16;

/// Files and directory listings, as read from the host.
pub(crate) trait Source {
    /// Text of a file; `Ok(None)` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<String>, String>;
    /// Names in a directory, sorted bytewise; empty when it does not exist.
    fn list(&self, dir: &Path) -> Result<Vec<String>, String>;
}

/// Everything the parser read: file texts (`None` when missing) and directory listings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// File texts by path.
    pub files: BTreeMap<PathBuf, Option<String>>,
    /// Directory listings by path.
    pub dirs: BTreeMap<PathBuf, Vec<String>>,
}

impl Snapshot {
    /// Sets a file's text, adding its name to the listing of its directory.
    pub(crate) fn put(&mut self, path: &Path, text: String) {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let names = self.dirs.entry(dir.to_path_buf()).or_default();
            let name = name.to_string_lossy().into_owned();
            if !names.contains(&name) {
                names.push(name);
                names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            }
        }
        self.files.insert(path.to_path_buf(), Some(text));
    }

    /// The text of a file, when it exists.
    pub(crate) fn text(&self, path: &Path) -> Option<&str> {
        self.files.get(path).and_then(|t| t.as_deref())
    }
}

impl Source for Snapshot {
    fn read(&self, path: &Path) -> Result<Option<String>, String> {
        Ok(self.files.get(path).cloned().flatten())
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>, String> {
        Ok(self.dirs.get(dir).cloned().unwrap_or_default())
    }
}

/// A [`Source`] that reads through another and records every answer.
pub(crate) struct Recording<'a> {
    inner: &'a dyn Source,
    seen: RefCell<Snapshot>,
}

impl<'a> Recording<'a> {
    /// Records what `inner` answers.
    pub(crate) fn new(inner: &'a dyn Source) -> Self {
        Recording {
            inner,
            seen: RefCell::new(Snapshot::default()),
        }
    }
    /// What was read.
    pub(crate) fn into_snapshot(self) -> Snapshot {
        self.seen.into_inner()
    }
}

impl Source for Recording<'_> {
    fn read(&self, path: &Path) -> Result<Option<String>, String> {
        let text = self.inner.read(path)?;
        self.seen
            .borrow_mut()
            .files
            .insert(path.to_path_buf(), text.clone());
        Ok(text)
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>, String> {
        let names = self.inner.list(dir)?;
        self.seen
            .borrow_mut()
            .dirs
            .insert(dir.to_path_buf(), names.clone());
        Ok(names)
    }
}

/// Where a line is in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// For every connection.
    Global,
    /// Inside the `Match` block with this index.
    Match(usize),
}

/// One directive line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The file it is in.
    pub file: PathBuf,
    /// Its line number, from 1.
    pub number: usize,
    /// Position in sshd's reading order.
    pub seq: usize,
    /// The keyword as written.
    pub keyword: String,
    /// The keyword in lower case, aliases resolved to the current name.
    pub key: String,
    /// The arguments, unquoted.
    pub args: Vec<String>,
    /// Where it applies.
    pub scope: Scope,
}

impl Line {
    /// `file:line`.
    pub(crate) fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.number)
    }
}

/// A `Match` line and what it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MatchBlock {
    /// File of the `Match` line.
    pub file: PathBuf,
    /// Its line number.
    pub number: usize,
    /// Criteria: (attribute as written, argument).
    pub criteria: Vec<(String, String)>,
    /// The `Match` block an `Include` inside which brought this file in.
    pub parent: Option<usize>,
}

impl MatchBlock {
    /// `Match User bob` as written, for messages.
    pub(crate) fn describe(&self) -> String {
        let words: Vec<String> = self
            .criteria
            .iter()
            .map(|(a, v)| {
                if v.is_empty() {
                    a.clone()
                } else {
                    format!("{a} {v}")
                }
            })
            .collect();
        format!("Match {}", words.join(" "))
    }
}

/// A global `Include` line of the main file and what it expanded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Include {
    /// File of the line.
    pub file: PathBuf,
    /// Its line number.
    pub number: usize,
    /// The pattern, made absolute.
    pub pattern: PathBuf,
    /// Where the line applies.
    pub scope: Scope,
}

/// A parsed configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Config {
    /// Directive lines in reading order (`Include` and `Match` lines excluded).
    pub lines: Vec<Line>,
    /// `Match` blocks by index.
    pub matches: Vec<MatchBlock>,
    /// `Include` lines, in reading order.
    pub includes: Vec<Include>,
    /// Files read, in reading order.
    pub files: Vec<PathBuf>,
    /// Lines sshd would reject or that harden could not follow: `file:line: why`.
    pub problems: Vec<String>,
    /// False when the main file does not exist.
    pub main_exists: bool,
    /// An `Include` nested too deeply. sshd refuses the whole configuration then, so reading
    /// stops at once: an include cycle would otherwise be expanded exponentially.
    pub too_deep: bool,
}

/// sshd's `WHITESPACE`: what `strdelim` skips between the keyword and its arguments.
const WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// Splits a line into keyword and arguments as sshd does; `None` for blank and comment lines.
pub(crate) fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let trimmed = line.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    let mut rest = trimmed.trim_start_matches([' ', '\t', '\r', '\n']);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    // sshd's `strdelim`: a leading `=` ends an empty first word, and sshd takes the word after
    // it as the keyword (`=Port=22` is `Port 22`); a second `=` leaves no keyword at all.
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start_matches(WHITESPACE);
        if rest.is_empty() || rest.starts_with(['=', '#']) {
            return Ok(None);
        }
    }
    let end = rest
        .find([' ', '\t', '\r', '\n', '='])
        .unwrap_or(rest.len());
    let keyword = rest[..end].to_owned();
    let mut after = rest[end..].trim_start_matches(WHITESPACE);
    if let Some(stripped) = after.strip_prefix('=') {
        after = stripped.trim_start_matches(WHITESPACE);
    }
    let args = split_args(after)?;
    Ok(Some((keyword, args)))
}

/// OpenSSH's `argv_split` with comments: words split on blanks, `"` and `'` quote, `\` escapes
/// a quote, a backslash or (outside quotes) a space, `#` at the start of a word ends the line.
pub(crate) fn split_args(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                match chars.get(i + 1) {
                    Some(&n)
                        if n == '\'' || n == '"' || n == '\\' || (quote.is_none() && n == ' ') =>
                    {
                        arg.push(n);
                        i += 2;
                        continue;
                    }
                    _ => arg.push(c),
                }
            } else if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        args.push(arg);
    }
    Ok(args)
}

/// The lower-case key of a keyword as written: aliases resolve to the current name, unknown
/// keywords stay as they are.
pub(crate) fn key_of(keyword: &str) -> String {
    match keywords::canonical(keyword) {
        Some(k) => k.name.to_ascii_lowercase(),
        None => keyword.to_ascii_lowercase(),
    }
}

/// Parses the configuration starting at [`MAIN`].
pub(crate) fn parse(source: &dyn Source) -> Config {
    let mut config = Config::default();
    let main = Path::new(MAIN);
    match source.read(main) {
        Ok(Some(text)) => {
            config.main_exists = true;
            parse_text(source, &mut config, main, &text, None, 0);
        }
        Ok(None) => {}
        Err(e) => config.problems.push(format!("{MAIN}: {e}")),
    }
    config
}

fn parse_text(
    source: &dyn Source,
    config: &mut Config,
    file: &Path,
    text: &str,
    outer: Option<usize>,
    depth: usize,
) {
    if config.too_deep {
        return;
    }
    config.files.push(file.to_path_buf());
    let mut scope = outer.map_or(Scope::Global, Scope::Match);
    for (index, raw) in text.lines().enumerate() {
        if config.too_deep {
            return;
        }
        let number = index + 1;
        let (keyword, args) = match split_line(raw) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(why) => {
                config
                    .problems
                    .push(format!("{}:{number}: {why}", file.display()));
                continue;
            }
        };
        if keyword.eq_ignore_ascii_case("match") {
            let criteria = match_criteria(&args);
            config.matches.push(MatchBlock {
                file: file.to_path_buf(),
                number,
                criteria,
                parent: outer,
            });
            scope = Scope::Match(config.matches.len() - 1);
            continue;
        }
        if args.is_empty() {
            config.problems.push(format!(
                "{}:{number}: no argument after keyword {keyword:?}",
                file.display()
            ));
            continue;
        }
        if keyword.eq_ignore_ascii_case("include") {
            include(source, config, (file, number), &args, scope, depth);
            continue;
        }
        let seq = config.lines.len();
        config.lines.push(Line {
            file: file.to_path_buf(),
            number,
            seq,
            key: key_of(&keyword),
            keyword,
            args,
            scope,
        });
    }
}

/// An `Include` line: each file its patterns match is parsed in place, in the scope of the
/// line (a Match block's include stays inside the block). Nesting deeper than sshd allows
/// marks the whole configuration as refused.
fn include(
    source: &dyn Source,
    config: &mut Config,
    (file, number): (&Path, usize),
    args: &[String],
    scope: Scope,
    depth: usize,
) {
    if depth + 1 > MAX_DEPTH {
        config.problems.push(format!(
            "{}:{number}: includes nested too deeply (sshd refuses this configuration)",
            file.display()
        ));
        config.too_deep = true;
        return;
    }
    let inner = match scope {
        Scope::Global => None,
        Scope::Match(m) => Some(m),
    };
    for arg in args {
        let pattern = if arg.starts_with('/') {
            PathBuf::from(arg)
        } else {
            Path::new(SSH_DIR).join(arg)
        };
        config.includes.push(Include {
            file: file.to_path_buf(),
            number,
            pattern: pattern.clone(),
            scope,
        });
        let found = match glob(source, &pattern) {
            Ok(found) => found,
            Err(e) => {
                config
                    .problems
                    .push(format!("{}:{number}: {e}", file.display()));
                continue;
            }
        };
        for path in found {
            match source.read(&path) {
                Ok(Some(text)) => parse_text(source, config, &path, &text, inner, depth + 1),
                Ok(None) => {}
                Err(e) => config.problems.push(format!(
                    "{}:{number}: cannot read {}: {e}",
                    file.display(),
                    path.display()
                )),
            }
        }
    }
}

fn match_criteria(args: &[String]) -> Vec<(String, String)> {
    let mut criteria = Vec::new();
    let mut words = args.iter();
    while let Some(attr) = words.next() {
        if attr.eq_ignore_ascii_case("all") {
            criteria.push((attr.clone(), String::new()));
            continue;
        }
        let value = words.next().cloned().unwrap_or_default();
        criteria.push((attr.clone(), value));
    }
    criteria
}

/// Paths matching an absolute `glob(3)` pattern, sorted; a pattern without wildcards yields
/// the path itself (whether or not it exists; the reader skips missing files, as sshd does).
pub(crate) fn glob(source: &dyn Source, pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    if !text.contains(['*', '?', '[']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let mut found = vec![PathBuf::from("/")];
    for part in text.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for base in &found {
            if part.contains(['*', '?', '[']) {
                for name in source.list(base)? {
                    if fnmatch(part, &name) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(part));
            }
        }
        found = next;
    }
    found.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(found)
}

/// `fnmatch(3)` with `FNM_PERIOD`: `*`, `?`, `[...]`, `[!...]`, `\` escapes; a leading `.`
/// must be matched literally.
pub(crate) fn fnmatch(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char], failed: &mut Failed) -> bool {
        if failed.contains(&(p.len(), n.len())) {
            return false;
        }
        let matched = match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..], failed)),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..], failed),
            Some('[') => {
                let Some(&c) = n.first() else { return false };
                let mut i = 1;
                let negate = matches!(p.get(1), Some('!') | Some('^'));
                if negate {
                    i += 1;
                }
                let mut matched = false;
                let mut first = true;
                while i < p.len() && (first || p[i] != ']') {
                    first = false;
                    if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                        if p[i] <= c && c <= p[i + 2] {
                            matched = true;
                        }
                        i += 3;
                    } else {
                        if p[i] == c {
                            matched = true;
                        }
                        i += 1;
                    }
                }
                if i >= p.len() {
                    // No closing bracket: `[` is an ordinary character.
                    c == '[' && go(&p[1..], &n[1..], failed)
                } else {
                    matched != negate && go(&p[i + 1..], &n[1..], failed)
                }
            }
            Some('\\') if p.len() > 1 => {
                !n.is_empty() && n[0] == p[1] && go(&p[2..], &n[1..], failed)
            }
            Some(&c) => !n.is_empty() && n[0] == c && go(&p[1..], &n[1..], failed),
        };
        if !matched {
            failed.insert((p.len(), n.len()));
        }
        matched
    }
    go(&p, &n, &mut Failed::new())
}

/// The (pattern left, text left) lengths already known not to match. Without it, each `*`
/// retries every split of the text and `a***...***b` takes exponential time (found by
/// fuzzing: an `Include` glob with a hundred stars hung the parse).
type Failed = std::collections::HashSet<(usize, usize)>;

/// OpenSSH's `match_pattern`: `*` and `?` wildcards only.
pub(crate) fn match_pattern(text: &str, pattern: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char], failed: &mut Failed) -> bool {
        if failed.contains(&(p.len(), t.len())) {
            return false;
        }
        let matched = match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..], failed)),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..], failed),
            Some(&c) => !t.is_empty() && t[0] == c && go(&p[1..], &t[1..], failed),
        };
        if !matched {
            failed.insert((p.len(), t.len()));
        }
        matched
    }
    go(&p, &t, &mut Failed::new())
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns, `!` negates; `1` on a match,
/// `-1` on a negated match, `0` otherwise.
pub(crate) fn match_pattern_list(text: &str, list: &str) -> i32 {
    let mut found = 0;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if match_pattern(text, pattern) {
            if negated {
                return -1;
            }
            found = 1;
        }
    }
    found
}

/// Who is connecting, as far as harden can tell: the account and its groups. Addresses and
/// host names are unknown, so `Match Address/Host/LocalAddress/LocalPort/RDomain` blocks are
/// taken not to apply (as `sshd -T` without `-C` does).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conn<'a> {
    /// Account name.
    pub user: &'a str,
    /// Names of its groups.
    pub groups: &'a [String],
}

/// The value sshd uses for one directive, and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Effective<'a> {
    /// The lines that make the value (one for first-wins directives), in reading order.
    pub lines: Vec<&'a Line>,
    /// True when a `Match` block supplied them.
    pub from_match: bool,
}

impl Effective<'_> {
    /// The values, one per line.
    #[cfg(test)]
    pub(crate) fn values(&self) -> Vec<String> {
        self.lines.iter().map(|l| l.args.join(" ")).collect()
    }

    /// Every argument of every line.
    pub(crate) fn args(&self) -> Vec<String> {
        self.lines
            .iter()
            .flat_map(|l| l.args.iter().cloned())
            .collect()
    }
}

impl Config {
    /// True when the `Match` block `index` (and every block around it) applies to `conn`.
    pub(crate) fn applies(&self, index: usize, conn: &Conn<'_>) -> bool {
        let Some(block) = self.matches.get(index) else {
            return false;
        };
        if let Some(parent) = block.parent {
            if !self.applies(parent, conn) {
                return false;
            }
        }
        if block.criteria.is_empty() {
            return false;
        }
        block
            .criteria
            .iter()
            .all(|(attr, value)| match attr.to_ascii_lowercase().as_str() {
                "all" => true,
                "user" => match_pattern_list(conn.user, value) == 1,
                "group" => {
                    let results: Vec<i32> = conn
                        .groups
                        .iter()
                        .map(|g| match_pattern_list(g, value))
                        .collect();
                    !results.contains(&-1) && results.contains(&1)
                }
                _ => false,
            })
    }

    /// True when the `Match` block `index` applies to every connection (`Match all`).
    pub(crate) fn unconditional(&self, index: usize) -> bool {
        let Some(block) = self.matches.get(index) else {
            return false;
        };
        !block.criteria.is_empty()
            && block
                .criteria
                .iter()
                .all(|(a, _)| a.eq_ignore_ascii_case("all"))
            && block.parent.is_none_or(|p| self.unconditional(p))
    }

    /// True when the `Match` block `index` depends on the address, host or port of the
    /// connection, which harden cannot know.
    pub(crate) fn depends_on_network(&self, index: usize) -> bool {
        let Some(block) = self.matches.get(index) else {
            return false;
        };
        block
            .criteria
            .iter()
            .any(|(a, _)| !matches!(a.to_ascii_lowercase().as_str(), "all" | "user" | "group"))
            || block.parent.is_some_and(|p| self.depends_on_network(p))
    }

    /// Global lines of `key` in reading order.
    pub(crate) fn global(&self, key: &str) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| l.key == key && l.scope == Scope::Global)
            .collect()
    }

    /// The value sshd uses for `keyword`: for everyone (`conn` = `None`), or for one account.
    pub(crate) fn effective<'a>(
        &'a self,
        keyword: &Keyword,
        conn: Option<&Conn<'_>>,
    ) -> Effective<'a> {
        self.effective_key(&keyword.name.to_ascii_lowercase(), keyword.repeat, conn)
    }

    /// [`Config::effective`] for a lower-case key and its way of combining lines.
    pub(crate) fn effective_key<'a>(
        &'a self,
        key: &str,
        repeat: Repeat,
        conn: Option<&Conn<'_>>,
    ) -> Effective<'a> {
        let pick = |lines: Vec<&'a Line>| -> Vec<&'a Line> {
            match repeat {
                Repeat::First => lines.into_iter().take(1).collect(),
                Repeat::Accumulate | Repeat::Named => lines,
            }
        };
        // `Match all` blocks apply to every connection (and `sshd -T` shows them).
        let in_match: Vec<&Line> = self
            .lines
            .iter()
            .filter(|l| l.key == key)
            .filter(|l| match (l.scope, conn) {
                (Scope::Match(m), Some(conn)) => self.applies(m, conn),
                (Scope::Match(m), None) => self.unconditional(m),
                (Scope::Global, _) => false,
            })
            .collect();
        if !in_match.is_empty() && repeat != Repeat::Named {
            return Effective {
                lines: pick(in_match),
                from_match: true,
            };
        }
        Effective {
            lines: pick(self.global(key)),
            from_match: false,
        }
    }

    /// Lines of `key` inside `Match` blocks.
    pub(crate) fn in_matches(&self, key: &str) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| l.key == key && matches!(l.scope, Scope::Match(_)))
            .collect()
    }
}

/// A change to one line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Replace line `number` with these lines.
    Replace {
        /// Line number, from 1.
        number: usize,
        /// New lines (without newlines).
        with: Vec<String>,
    },
    /// Turn line `number` into a comment saying why.
    CommentOut {
        /// Line number, from 1.
        number: usize,
        /// The comment's explanation.
        why: String,
    },
    /// Insert lines before line `number` (`lines + 1` appends).
    Insert {
        /// Line number, from 1.
        before: usize,
        /// New lines.
        lines: Vec<String>,
    },
}

/// Applies `edits` to `text`, keeping every other line byte for byte. Returns the new text
/// and, for each edit, the numbers its new lines have in it.
pub(crate) fn apply_edits(text: &str, edits: &[Edit]) -> (String, Vec<Vec<usize>>) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + 256);
    let mut placed: Vec<Vec<usize>> = vec![Vec::new(); edits.len()];
    let mut written = 0usize;
    let push = |out: &mut String, line: &str, written: &mut usize| {
        out.push_str(line);
        *written += 1;
    };
    for number in 1..=lines.len() + 1 {
        for (i, edit) in edits.iter().enumerate() {
            if let Edit::Insert { before, lines: new } = edit {
                if *before == number {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push_str(newline);
                    }
                    for l in new {
                        push(&mut out, &format!("{l}{newline}"), &mut written);
                        placed[i].push(written);
                    }
                }
            }
        }
        let Some(original) = lines.get(number - 1) else {
            break;
        };
        let ending = if original.ends_with("\r\n") {
            "\r\n"
        } else if original.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        let replaced = edits.iter().enumerate().find(|(_, e)| match e {
            Edit::Replace { number: n, .. } | Edit::CommentOut { number: n, .. } => *n == number,
            Edit::Insert { .. } => false,
        });
        match replaced {
            Some((i, Edit::Replace { with, .. })) => {
                for (j, l) in with.iter().enumerate() {
                    let end = if j + 1 == with.len() && ending.is_empty() {
                        ""
                    } else if ending.is_empty() {
                        newline
                    } else {
                        ending
                    };
                    push(&mut out, &format!("{l}{end}"), &mut written);
                    placed[i].push(written);
                }
            }
            Some((i, Edit::CommentOut { why, .. })) => {
                let body = original.trim_end_matches(['\r', '\n']);
                push(
                    &mut out,
                    &format!("# {why}: {}{ending}", body.trim_start()),
                    &mut written,
                );
                placed[i].push(written);
            }
            _ => push(&mut out, original, &mut written),
        }
    }
    (out, placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const DEBIAN: &str = "\n# This is the sshd server system-wide configuration file.\n\nInclude /etc/ssh/sshd_config.d/*.conf\n\n#Port 22\n#PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\nSubsystem\tsftp\t/usr/lib/openssh/sftp-server\n\n# Example of overriding settings on a per-user basis\n#Match User anoncvs\n#\tX11Forwarding no\n";

    fn snapshot(files: &[(&str, &str)]) -> Snapshot {
        let mut s = Snapshot::default();
        for (path, text) in files {
            s.put(Path::new(path), (*text).to_owned());
        }
        s
    }

    fn kw(name: &str) -> &'static Keyword {
        keywords::lookup(name).expect("known")
    }

    #[test]
    fn lines_split_like_sshd() {
        assert_eq!(split_line("  # comment").expect("ok"), None);
        // `strdelim` skips carriage returns and newlines after `=` and after the keyword.
        assert_eq!(split_line("=\r v").expect("ok"), Some(("v".into(), vec![])));
        assert_eq!(
            split_line("Port\r22").expect("ok"),
            Some(("Port".into(), vec!["22".into()]))
        );
        assert_eq!(split_line("").expect("ok"), None);
        assert_eq!(
            split_line("Port 22").expect("ok"),
            Some(("Port".into(), vec!["22".into()]))
        );
        assert_eq!(
            split_line("MaxAuthTries=3").expect("ok"),
            Some(("MaxAuthTries".into(), vec!["3".into()]))
        );
        assert_eq!(
            split_line("MaxAuthTries = 3 # three").expect("ok"),
            Some(("MaxAuthTries".into(), vec!["3".into()]))
        );
        assert_eq!(
            split_line("Banner \"/etc/my banner\"").expect("ok"),
            Some(("Banner".into(), vec!["/etc/my banner".into()]))
        );
        assert_eq!(
            split_line("AcceptEnv LANG a#b").expect("ok"),
            Some(("AcceptEnv".into(), vec!["LANG".into(), "a#b".into()]))
        );
        assert_eq!(
            split_line("X a\\ b 'c d'").expect("ok"),
            Some(("X".into(), vec!["a b".into(), "c d".into()]))
        );
        assert!(split_line("Banner \"open").is_err());
    }

    #[test]
    fn a_leading_equals_sign_ends_an_empty_word_as_in_sshd() {
        // Found by fuzzing (fuzz/regressions/sshd_config/): `=2` gave an empty keyword.
        assert_eq!(
            split_line("=Port=22").expect("ok"),
            Some(("Port".into(), vec!["22".into()]))
        );
        assert_eq!(split_line(" = 2").expect("ok"), Some(("2".into(), vec![])));
        assert_eq!(split_line("==2").expect("ok"), None);
        assert_eq!(split_line("=#x").expect("ok"), None);
    }

    #[test]
    fn fnmatch_follows_glob_rules() {
        assert!(fnmatch("*.conf", "50-cloud-init.conf"));
        assert!(!fnmatch("*.conf", ".hidden.conf"));
        assert!(!fnmatch("*.conf", "x.conf.dpkg-old"));
        assert!(fnmatch("[0-9]*.conf", "00-harden.conf"));
        assert!(!fnmatch("[!0-9]*.conf", "00-harden.conf"));
        assert!(fnmatch("?0-*", "00-harden.conf"));
        assert!(fnmatch("a\\*", "a*"));
    }

    #[test]
    fn many_stars_match_in_polynomial_time() {
        // Found by fuzzing (fuzz/regressions/sshd_config/): every `*` retried every split.
        let stars = "*".repeat(200);
        assert!(fnmatch(&format!("ssh{stars}d_config.d"), "sshd_config.d"));
        assert!(!fnmatch(&format!("ssh{stars}x"), "sshd_config.d"));
        assert!(!match_pattern(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            &"*a".repeat(40)
        ));
        assert!(match_pattern("alice", &format!("{stars}e")));
    }

    #[test]
    fn a_drop_in_read_first_wins_over_the_main_file() {
        let s = snapshot(&[
            (
                MAIN,
                "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nPort 22\n",
            ),
            (
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "PasswordAuthentication yes\n",
            ),
        ]);
        let c = parse(&s);
        let e = c.effective(kw("PasswordAuthentication"), None);
        assert_eq!(e.values(), vec!["yes"]);
        assert_eq!(
            e.lines[0].place(),
            "/etc/ssh/sshd_config.d/50-cloud-init.conf:1"
        );
    }

    #[test]
    fn includes_sort_bytewise_and_relative_paths_start_in_etc_ssh() {
        let s = snapshot(&[
            (
                MAIN,
                "Include extra/*.conf\nInclude /etc/ssh/missing.conf\n",
            ),
            ("/etc/ssh/extra/b.conf", "MaxAuthTries 4\n"),
            ("/etc/ssh/extra/B.conf", "MaxAuthTries 5\n"),
            ("/etc/ssh/extra/a.txt", "MaxAuthTries 6\n"),
        ]);
        let c = parse(&s);
        let e = c.effective(kw("MaxAuthTries"), None);
        assert_eq!(e.values(), vec!["5"], "B sorts before b");
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.files.len(), 3);
    }

    #[test]
    fn multi_value_directives_accumulate() {
        let s = snapshot(&[(
            MAIN,
            "Port 22\nPort 2222\nAllowUsers alice\nAllowUsers bob carol\nHostKey /a\n",
        )]);
        let c = parse(&s);
        assert_eq!(c.effective(kw("Port"), None).values(), vec!["22", "2222"]);
        assert_eq!(
            c.effective(kw("AllowUsers"), None).args(),
            vec!["alice", "bob", "carol"]
        );
    }

    #[test]
    fn match_blocks_apply_per_user_and_end_with_their_file() {
        let s = snapshot(&[
            (MAIN, "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nMatch Group admins\n  X11Forwarding yes\nMatch User bob,!alice\n  PasswordAuthentication yes\n"),
            ("/etc/ssh/sshd_config.d/10-a.conf", "Match Address 10.0.0.0/8\n  MaxAuthTries 2\n"),
            ("/etc/ssh/sshd_config.d/20-b.conf", "MaxAuthTries 3\n"),
        ]);
        let c = parse(&s);
        // The drop-in's Match ended with its file: 20-b.conf's line is global.
        assert_eq!(c.effective(kw("MaxAuthTries"), None).values(), vec!["3"]);
        let groups = vec!["users".to_string()];
        let bob = Conn {
            user: "bob",
            groups: &groups,
        };
        let alice = Conn {
            user: "alice",
            groups: &groups,
        };
        assert_eq!(
            c.effective(kw("PasswordAuthentication"), Some(&bob))
                .values(),
            vec!["yes"]
        );
        assert!(
            c.effective(kw("PasswordAuthentication"), Some(&bob))
                .from_match
        );
        assert_eq!(
            c.effective(kw("PasswordAuthentication"), Some(&alice))
                .values(),
            vec!["no"]
        );
        assert_eq!(
            c.effective(kw("PasswordAuthentication"), None).values(),
            vec!["no"]
        );
        let admins = vec!["admins".to_string()];
        let carol = Conn {
            user: "carol",
            groups: &admins,
        };
        assert_eq!(
            c.effective(kw("X11Forwarding"), Some(&carol)).values(),
            vec!["yes"]
        );
        assert!(c.depends_on_network(0));
        assert!(!c.depends_on_network(1));
    }

    #[test]
    fn match_all_applies_to_everyone() {
        let s = snapshot(&[(
            MAIN,
            "PasswordAuthentication no\nMatch all\nPasswordAuthentication yes\n",
        )]);
        let c = parse(&s);
        let e = c.effective(kw("PasswordAuthentication"), None);
        assert_eq!(e.values(), vec!["yes"]);
        assert!(e.from_match);
    }

    #[test]
    fn lines_included_from_a_match_block_belong_to_it() {
        let s = snapshot(&[
            (MAIN, "Match User bob\nInclude /etc/ssh/bob.conf\n"),
            ("/etc/ssh/bob.conf", "Banner /etc/bob\n"),
        ]);
        let c = parse(&s);
        assert_eq!(c.lines[0].scope, Scope::Match(0));
        assert!(c.global("banner").is_empty());
    }

    #[test]
    fn an_include_cycle_stops_at_the_depth_limit_without_expanding_every_path() {
        // Found by fuzzing (fuzz/regressions/sshd_config/): a drop-in that includes its own
        // directory twice made 2^16 copies of itself before the depth limit stopped each one.
        let mut s = snapshot(&[(MAIN, "Include /etc/ssh/sshd_config.d/*.conf\n")]);
        s.put(
            Path::new("/etc/ssh/sshd_config.d/loop.conf"),
            "Port 22\nInclude /etc/ssh/sshd_config.d/*.conf /etc/ssh/sshd_config.d/*.conf\n".into(),
        );
        let c = parse(&s);
        assert!(c.too_deep);
        assert!(
            c.files.len() <= MAX_DEPTH + 1,
            "{} files read",
            c.files.len()
        );
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].contains("nested too deeply"));
    }

    #[test]
    fn aliases_share_a_key() {
        let s = snapshot(&[(
            MAIN,
            "ChallengeResponseAuthentication yes\nKbdInteractiveAuthentication no\n",
        )]);
        let c = parse(&s);
        assert_eq!(
            c.effective(kw("KbdInteractiveAuthentication"), None)
                .values(),
            vec!["yes"]
        );
    }

    #[test]
    fn debian_default_parses_cleanly() {
        let c = parse(&snapshot(&[(MAIN, DEBIAN)]));
        assert!(c.problems.is_empty());
        assert_eq!(c.includes.len(), 1);
        assert_eq!(
            c.includes[0].pattern,
            PathBuf::from("/etc/ssh/sshd_config.d/*.conf")
        );
        assert_eq!(c.effective(kw("UsePAM"), None).values(), vec!["yes"]);
        assert!(c
            .effective(kw("PasswordAuthentication"), None)
            .lines
            .is_empty());
    }

    #[test]
    fn patterns_match_like_openssh() {
        assert_eq!(match_pattern_list("bob", "alice,b*"), 1);
        assert_eq!(match_pattern_list("bob", "*,!bob"), -1);
        assert_eq!(match_pattern_list("carol", "alice,bob"), 0);
    }

    #[test]
    fn edits_keep_every_other_byte() {
        let text = "# top\nPasswordAuthentication yes\nPort 22\n\nMatch User x\n";
        let (out, placed) = apply_edits(
            text,
            &[
                Edit::Replace {
                    number: 2,
                    with: vec!["PasswordAuthentication no".into()],
                },
                Edit::CommentOut {
                    number: 3,
                    why: "disabled by harden".into(),
                },
                Edit::Insert {
                    before: 5,
                    lines: vec!["MaxAuthTries 3".into()],
                },
            ],
        );
        assert_eq!(out, "# top\nPasswordAuthentication no\n# disabled by harden: Port 22\n\nMaxAuthTries 3\nMatch User x\n");
        assert_eq!(placed, vec![vec![2], vec![3], vec![5]]);
        let (appended, placed) = apply_edits(
            "A 1",
            &[Edit::Insert {
                before: 2,
                lines: vec!["B 2".into()],
            }],
        );
        assert_eq!(appended, "A 1\nB 2\n");
        assert_eq!(placed, vec![vec![2]]);
    }
}
