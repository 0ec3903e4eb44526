//! Errors in playbooks, each pointing at a file, line and column.

use std::fmt;

use crate::located::At;

/// A loaded playbook's name and text, kept to quote the offending line in errors.
#[derive(Clone, Debug)]
pub struct Source {
    /// What to call it: its path, or `<baseline>`.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// One thing wrong with a playbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Where.
    pub at: At,
    /// What is wrong and what was expected.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub help: Option<String>,
}

impl Invalid {
    /// An error at `at`.
    pub fn new(at: At, message: impl Into<String>) -> Self {
        Invalid {
            at,
            message: message.into(),
            help: None,
        }
    }

    /// The same error with advice.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Everything wrong with a set of playbooks, with their texts for quoting.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    /// The playbooks, indexed by [`At::source`].
    pub sources: Vec<Source>,
    /// The errors, in the order found.
    pub errors: Vec<Invalid>,
}

impl Diagnostics {
    /// `file:line:col` of a place.
    pub fn place(&self, at: At) -> String {
        let name = self
            .sources
            .get(at.source as usize)
            .map_or("<playbook>", |s| s.name.as_str());
        format!("{name}:{}:{}", at.line, at.column)
    }
}

impl Diagnostics {
    /// One error as its headline (`file:line:col: message`) and the lines that follow it:
    /// the quoted playbook line with a caret under the column, and the advice. Callers that
    /// decorate the headline (`error:`, colour) get it apart from the rest.
    pub fn render(&self, err: &Invalid) -> (String, Vec<String>) {
        let headline = format!("{}: {}", self.place(err.at), err.message);
        let mut rest = Vec::new();
        let line = self
            .sources
            .get(err.at.source as usize)
            .and_then(|s| yaml_lines(&s.text).nth(err.at.line.saturating_sub(1) as usize));
        if let Some(line) = line {
            let (shown, caret) = quoted(line, err.at.column.saturating_sub(1) as usize);
            let number = err.at.line.to_string();
            let pad = " ".repeat(number.len());
            rest.push(format!("{pad} |"));
            rest.push(format!("{number} | {shown}"));
            rest.push(format!("{pad} | {}^", " ".repeat(caret)));
        }
        if let Some(help) = &err.help {
            rest.push(format!("  = help: {help}"));
        }
        (headline, rest)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let (headline, rest) = self.render(err);
            writeln!(f, "{headline}")?;
            for line in rest {
                writeln!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

/// How many characters of a quoted line are shown on each side of the column.
const QUOTE_RADIUS: usize = 60;

/// The part of `line` worth quoting around character `column` (0-based), one character per
/// character so the caret lines up, and the caret's offset in it. Long lines are cut around
/// the column (`…` marks a cut); control characters, which would act on the terminal, are
/// shown as their Unicode pictures (NUL as ␀), and a tab as one space.
fn quoted(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let start = column.saturating_sub(QUOTE_RADIUS);
    let end = chars.len().min(column.max(start) + QUOTE_RADIUS);
    let mut shown = String::new();
    let mut caret = column - start;
    if start > 0 {
        shown.push('…');
        caret += 1;
    }
    shown.extend(chars[start.min(end)..end].iter().map(|&c| visible(c)));
    if end < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

/// `c`, or a visible stand-in for a control character.
fn visible(c: char) -> char {
    match c {
        '\t' => ' ',
        '\0'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        c if c.is_control() => '\u{fffd}',
        c => c,
    }
}

impl std::error::Error for Diagnostics {}

/// The lines of a playbook as YAML counts them, which is how error places are numbered: a
/// line ends at `\n`, `\r\n` or a lone `\r` (`str::lines` keeps a lone `\r` inside a line).
pub(crate) fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').flat_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        line.split('\r')
    })
}
