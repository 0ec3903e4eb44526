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

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{}: {}", self.place(err.at), err.message)?;
            let line = self
                .sources
                .get(err.at.source as usize)
                .and_then(|s| yaml_lines(&s.text).nth(err.at.line.saturating_sub(1) as usize));
            if let Some(line) = line {
                let number = err.at.line.to_string();
                let pad = " ".repeat(number.len());
                writeln!(f, "{pad} |")?;
                writeln!(f, "{number} | {line}")?;
                writeln!(
                    f,
                    "{pad} | {}^",
                    " ".repeat(err.at.column.saturating_sub(1) as usize)
                )?;
            }
            if let Some(help) = &err.help {
                writeln!(f, "  = help: {help}")?;
            }
        }
        Ok(())
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
