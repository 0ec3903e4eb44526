//! Dotenv files (`KEY=value`): read them, and change single keys while every other byte stays.
//!
//! Applications read these files with many different libraries, so this reader accepts the
//! syntax they share (python-dotenv, Docker Compose, the Node and Go loaders): blank lines and
//! `#` comments, an optional `export `, spaces around `=`, unquoted values (a ` #` starts a
//! comment), single-quoted literal values and double-quoted values with backslash escapes,
//! both of which may span lines. A line it does not understand is an error naming the line
//! but never its text: these files hold secrets, and an error message is printed.
//!
//! The design decision is that a [`Document`] is the file's own text cut into pieces, one per
//! line (or per multi-line assignment): [`Document::set`] rewrites only the value part of the
//! named key's lines, keeping their `export`, spacing, quote style and trailing comment, and
//! [`Document::render`] joins the pieces, so an unchanged document renders byte for byte.

use std::ops::Range;

/// A dotenv file's text, cut into lines, with its assignments understood.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Document {
    items: Vec<Item>,
}

/// Shows the keys only: a document holds secrets, and debug output ends up in logs.
impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

/// One piece of the file: kept as it is, or an assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    /// A blank line or a comment.
    Other(String),
    /// `KEY=value`.
    Assignment(Assignment),
}

/// One `KEY=value`, with where its value sits in its text.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Assignment {
    /// The whole text, line end(s) included.
    raw: String,
    /// The key.
    key: String,
    /// Whether it starts with `export `.
    export: bool,
    /// The value as written (with its quotes), within `raw`.
    span: Range<usize>,
    /// How the value is quoted.
    quote: Quote,
    /// The value as applications read it.
    value: String,
}

/// How a value is quoted in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    /// `KEY=value`.
    None,
    /// `KEY='value'`: literal.
    Single,
    /// `KEY="value"`: backslash escapes.
    Double,
}

/// A line the reader does not understand. Names the line, never its text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The line, from 1.
    pub line: usize,
    /// What was expected there.
    pub message: String,
}

/// True for the characters a key may hold (the first may not be a digit, `.` or `-`).
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// True when `key` is a name every dotenv reader accepts: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_portable_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads `text` as a dotenv file.
pub fn parse(text: &str) -> Result<Document, ParseError> {
    let mut items = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < text.len() {
        let (item, end) = parse_item(text, pos, line)?;
        line += text[pos..end].matches('\n').count();
        items.push(item);
        pos = end;
    }
    Ok(Document { items })
}

/// The end of the physical line that holds `pos`, past its `\n`.
fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Reads the item starting at `start` (a line start); returns it and where the next begins.
fn parse_item(text: &str, start: usize, line: usize) -> Result<(Item, usize), ParseError> {
    let end = line_end(text, start);
    let body = &text[start..end];
    let trimmed = body.trim_start();
    if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
        return Ok((Item::Other(body.to_owned()), end));
    }
    let mut pos = start + (body.len() - trimmed.len());
    let mut export = false;
    if let Some(rest) = trimmed.strip_prefix("export") {
        if rest.starts_with([' ', '\t']) {
            export = true;
            pos += "export".len();
            pos = skip_blanks(text, pos);
        }
    }
    let key_len = text[pos..]
        .find(|c: char| !key_char(c))
        .unwrap_or(text.len() - pos);
    let key = &text[pos..pos + key_len];
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-') {
        return Err(error(
            line,
            "expected a line `KEY=value`, a comment or a blank line",
        ));
    }
    pos = skip_blanks(text, pos + key_len);
    if !text[pos..].starts_with('=') {
        // Not even the key is named: a line without `=` may be a pasted secret.
        return Err(error(line, "expected `=` after the key"));
    }
    pos += 1;
    let after_equals = pos;
    pos = skip_blanks(text, pos);
    let (quote, mut value_end, value) = match text[pos..].chars().next() {
        Some('\'') => quoted(text, pos, '\'', line)?,
        Some('"') => quoted(text, pos, '"', line)?,
        _ => unquoted(text, pos),
    };
    // An empty unquoted value (before a comment, perhaps): a new value goes right after
    // `=`, so that the blanks and the comment after it stay as they are.
    if quote == Quote::None && value.is_empty() {
        pos = after_equals;
        value_end = after_equals;
    }
    let end = line_end(text, value_end.max(start));
    if quote != Quote::None {
        let rest = text[value_end..end].trim_start_matches([' ', '\t']);
        let rest = rest.trim_end_matches(['\n', '\r']);
        if !rest.is_empty() && !rest.starts_with('#') {
            let closing = line + text[start..value_end].matches('\n').count();
            return Err(error(closing, "unexpected text after the closing quote"));
        }
    }
    let assignment = Assignment {
        raw: text[start..end].to_owned(),
        key: key.to_owned(),
        export,
        span: pos - start..value_end - start,
        quote,
        value,
    };
    Ok((Item::Assignment(assignment), end))
}

fn skip_blanks(text: &str, pos: usize) -> usize {
    pos + text[pos..].len() - text[pos..].trim_start_matches([' ', '\t']).len()
}

/// An unquoted value from `pos`: to the end of the line or to a `#` after a blank, trimmed.
fn unquoted(text: &str, pos: usize) -> (Quote, usize, String) {
    let end = line_end(text, pos);
    let line = text[pos..end].trim_end_matches(['\n', '\r']);
    let mut cut = line.len();
    let mut previous_blank = true;
    for (i, c) in line.char_indices() {
        if c == '#' && previous_blank {
            cut = i;
            break;
        }
        previous_blank = c == ' ' || c == '\t';
    }
    let value = line[..cut].trim_end_matches([' ', '\t']);
    (Quote::None, pos + value.len(), value.to_owned())
}

/// A quoted value whose opening `quote` is at `pos`; returns its end (past the closing quote).
fn quoted(
    text: &str,
    pos: usize,
    quote: char,
    line: usize,
) -> Result<(Quote, usize, String), ParseError> {
    let mut value = String::new();
    let mut chars = text[pos + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => {
                let style = if quote == '"' {
                    Quote::Double
                } else {
                    Quote::Single
                };
                return Ok((style, pos + 1 + i + 1, value));
            }
            '\\' if quote == '"' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((_, e @ ('\\' | '"' | '\''))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            },
            '\r' if text[pos + 1 + i..].starts_with("\r\n") => {}
            c => value.push(c),
        }
    }
    Err(error(
        line,
        format!("the value's opening {quote} is never closed"),
    ))
}

/// True for characters a value may hold unquoted in every reader.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-.:/+=@,%".contains(c)
}

/// `value` written as the value of a line whose value was quoted `style`: the same quotes
/// when they can hold it, otherwise the simplest quoting that reads back as `value`.
pub fn render_value(value: &str, style: Quote) -> String {
    let single_ok = !value.contains(['\'', '\n', '\r']);
    match style {
        Quote::None if value.chars().all(plain) => value.to_owned(),
        Quote::None | Quote::Single if single_ok => format!("'{value}'"),
        _ => double_quoted(value),
    }
}

fn double_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Document {
    /// The text, exactly as read plus the edits made.
    pub fn render(&self) -> String {
        self.items
            .iter()
            .map(|item| match item {
                Item::Other(raw) => raw.as_str(),
                Item::Assignment(a) => a.raw.as_str(),
            })
            .collect()
    }

    fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.items.iter().filter_map(|item| match item {
            Item::Assignment(a) => Some(a),
            Item::Other(_) => None,
        })
    }

    /// Every value `key` is given, in file order (a key may be assigned more than once;
    /// readers disagree on which wins, so rules apply to each).
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.assignments()
            .filter(|a| a.key == key)
            .map(|a| a.value.as_str())
            .collect()
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values(key).pop()
    }

    /// Every key assigned, in file order, once each.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for a in self.assignments() {
            if !keys.contains(&a.key.as_str()) {
                keys.push(&a.key);
            }
        }
        keys
    }

    /// Gives `key` the value `value`: every line that assigns it is rewritten in place (its
    /// value part only), or, when none does, a line `KEY=value` is appended.
    pub fn set(&mut self, key: &str, value: &str) {
        let mut found = false;
        for item in &mut self.items {
            if let Item::Assignment(a) = item {
                if a.key == key {
                    a.replace(value);
                    found = true;
                }
            }
        }
        if !found {
            self.append(key, value);
        }
    }

    fn append(&mut self, key: &str, value: &str) {
        let crlf = self.render().contains("\r\n");
        let eol = if crlf { "\r\n" } else { "\n" };
        let last = self.items.last_mut().map(|item| match item {
            Item::Other(raw) => raw,
            Item::Assignment(a) => &mut a.raw,
        });
        if let Some(last) = last {
            if !last.ends_with('\n') {
                last.push_str(eol);
            }
        }
        let export = {
            let mut all = self.assignments().peekable();
            all.peek().is_some() && all.all(|a| a.export)
        };
        let prefix = if export { "export " } else { "" };
        let written = render_value(value, Quote::None);
        let raw = format!("{prefix}{key}={written}{eol}");
        let start = prefix.len() + key.len() + 1;
        self.items.push(Item::Assignment(Assignment {
            span: start..start + written.len(),
            raw,
            key: key.to_owned(),
            export,
            quote: Quote::None,
            value: value.to_owned(),
        }));
    }
}

impl Assignment {
    /// Rewrites the value part of this line, keeping everything around it.
    fn replace(&mut self, value: &str) {
        let written = render_value(value, self.quote);
        self.raw.replace_range(self.span.clone(), &written);
        self.span = self.span.start..self.span.start + written.len();
        self.quote = match written.chars().next() {
            Some('\'') => Quote::Single,
            Some('"') => Quote::Double,
            _ => Quote::None,
        };
        self.value = value.to_owned();
    }
}

#[cfg(test)]
mod tests;
