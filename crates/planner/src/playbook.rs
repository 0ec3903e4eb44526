//! Reading playbooks: YAML text to one merged, validated [`Playbook`].
//!
//! Every way a file can be wrong ends as an [`Invalid`] naming that file, with the line and
//! column where there is one: unreadable, too large, not UTF-8, YAML the parser refuses, a
//! value of the wrong type, or no content at all. An empty playbook is an error, not an empty
//! plan: a truncated site playbook must not report success on every host it reaches.

use std::io::Read as _;
use std::path::Path;

use crate::diagnostic::{Diagnostics, Invalid, Source};
use crate::located::{with_source, At};
use crate::resources::Playbook;

/// The built-in baseline, used when no playbook is named.
pub const BASELINE: &str = include_str!("../../../playbooks/baseline.yaml");

/// Name shown for the built-in baseline.
pub const BASELINE_NAME: &str = "<baseline>";

/// The largest playbook read. A hand-written playbook is kilobytes; this bound keeps a wrong
/// argument (a log, a disk image, `/dev/zero`) from being read into memory.
pub const MAX_PLAYBOOK_BYTES: u64 = 16 * 1024 * 1024;

/// Playbooks parsed, merged in order and checked, with their texts kept for later errors.
#[derive(Debug)]
pub struct Loaded {
    /// The merged desired state.
    pub playbook: Playbook,
    /// The texts it came from, for quoting in errors found later (at plan time).
    pub sources: Vec<Source>,
}

impl Loaded {
    /// Diagnostics for errors found after loading, quoting these playbooks.
    pub fn diagnostics(&self, errors: Vec<Invalid>) -> Diagnostics {
        Diagnostics {
            sources: self.sources.clone(),
            errors,
        }
    }

    /// Names of the playbooks, in merge order.
    pub fn names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name.clone()).collect()
    }
}

/// Reads the playbook files at `paths`, or the baseline when there are none. Every file is
/// read and parsed, so one run reports the errors of all of them.
pub fn load_files(paths: &[impl AsRef<Path>]) -> Result<Loaded, Diagnostics> {
    if paths.is_empty() {
        return load(vec![Source {
            name: BASELINE_NAME.into(),
            text: BASELINE.into(),
        }]);
    }
    let mut sources = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        let path = path.as_ref();
        // This file's own index, whatever happened to the ones before it.
        let index = index_of(sources.len());
        let name = path.display().to_string();
        let text = read_playbook(path).unwrap_or_else(|failure| {
            unreadable.push(failure.invalid(index));
            failure.text
        });
        sources.push(Source { name, text });
    }
    if unreadable.is_empty() {
        return load(sources);
    }
    let mut errors = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        if !unreadable.iter().any(|e| e.at.source == index_of(index)) {
            errors.extend(parse(index, &source.text).err());
        }
    }
    errors.extend(unreadable);
    errors.sort_by_key(|e| (e.at.source, e.at.line, e.at.column));
    Err(Diagnostics { sources, errors })
}

/// Why a playbook file could not be taken as text.
struct Unreadable {
    /// What of it could be read, to quote (invalid UTF-8 replaced).
    text: String,
    line: u32,
    column: u32,
    message: String,
    help: Option<String>,
}

impl Unreadable {
    /// The error, in playbook `source`.
    fn invalid(&self, source: u32) -> Invalid {
        let at = At {
            source,
            line: self.line,
            column: self.column,
        };
        let invalid = Invalid::new(at, self.message.clone());
        match &self.help {
            Some(help) => invalid.help(help.clone()),
            None => invalid,
        }
    }

    fn whole(message: String) -> Self {
        Unreadable {
            text: String::new(),
            line: 1,
            column: 1,
            message,
            help: None,
        }
    }
}

/// The file's text: at most [`MAX_PLAYBOOK_BYTES`], UTF-8.
fn read_playbook(path: &Path) -> Result<String, Unreadable> {
    let cannot = |e: std::io::Error| Unreadable::whole(format!("cannot read playbook: {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    if file.metadata().map_err(cannot)?.is_dir() {
        return Err(Unreadable::whole(
            "cannot read playbook: it is a directory".into(),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PLAYBOOK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_PLAYBOOK_BYTES {
        return Err(Unreadable::whole(format!(
            "playbook is larger than {} MiB; is this the right file?",
            MAX_PLAYBOOK_BYTES / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(e.as_bytes(), e.utf8_error()))
}

/// Where the first byte that is not UTF-8 is, and what it is.
fn not_utf8(bytes: &[u8], error: std::str::Utf8Error) -> Unreadable {
    let valid = &bytes[..error.valid_up_to()];
    let text = String::from_utf8_lossy(valid);
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let byte = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
    Unreadable {
        text: String::from_utf8_lossy(bytes).into_owned(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        message: format!("not UTF-8 text: byte 0x{byte:02X} is not valid UTF-8"),
        help: Some(
            if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
                "the file is UTF-16, as some editors save it; playbooks are UTF-8: `iconv -f utf-16 -t utf-8`".into()
            } else {
                "playbooks are UTF-8; convert the file, e.g. `iconv -f latin1 -t utf-8`".into()
            },
        ),
    }
}

fn index_of(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Parses `sources` in order, merges them (later keys override earlier ones) and validates
/// the result. Every error found is reported, not only the first.
pub fn load(sources: Vec<Source>) -> Result<Loaded, Diagnostics> {
    let mut merged = Playbook::default();
    let mut errors = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        match parse(index, &source.text) {
            Ok(playbook) => merged.merge(playbook),
            Err(invalid) => errors.push(invalid),
        }
    }
    if errors.is_empty() {
        errors = merged.validate();
    }
    if errors.is_empty() {
        Ok(Loaded {
            playbook: merged,
            sources,
        })
    } else {
        Err(Diagnostics { sources, errors })
    }
}

/// One playbook's text to its sections; a text with no section is an error.
fn parse(index: usize, text: &str) -> Result<Playbook, Invalid> {
    let source = index_of(index);
    let parsed = with_source(source, || {
        serde_saphyr::from_str_with_options::<Option<Playbook>>(text, parser_options())
    });
    match parsed {
        Ok(Some(playbook)) if !playbook.sections().is_empty() => Ok(playbook),
        Ok(found) => Err(empty(source, text, found.is_some())),
        Err(err) => Err(yaml_error(source, &err)),
    }
}

/// How deep a playbook may nest; one nests six levels at most
/// (`fail2ban.jails.NAME.ignoreip[]`).
const MAX_DEPTH: usize = 32;

/// The parser's limits. Comments are not handed to the deserializer at all: a playbook never
/// reads them, and buffering them is what the parser's look-ahead budget counted (33
/// consecutive comment lines inside a block were refused). What could make a small file cost
/// a lot stays tightly bounded: nesting, anchors, aliases and their expansion. Counts that
/// only grow with the file's size (values, events) are left to [`MAX_PLAYBOOK_BYTES`].
fn parser_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        emit_comments: false,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_aliases: 10_000,
            max_anchors: 10_000,
            // A shared value used in many places is fine; what aliases cost is bounded by
            // the replay limits below.
            enforce_alias_anchor_ratio: false,
            max_nodes: 4_000_000,
            max_events: 16_000_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 50_000,
            max_replay_stack_depth: 16,
        },
    }
}

/// The error for a playbook that sets nothing.
fn empty(source: u32, text: &str, mapping: bool) -> Invalid {
    let what = if mapping {
        "the playbook is empty: no section in it has a value"
    } else if text.lines().all(|l| {
        let l = l.trim_start_matches('\u{feff}').trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    }) {
        "the playbook is empty: it has nothing but blank lines and comments"
    } else {
        "the playbook is empty: its document is null"
    };
    Invalid::new(
        At {
            source,
            line: 1,
            column: 1,
        },
        what,
    )
    .help(format!(
        "a truncated or unfinished file? A playbook sets at least one of: {}",
        Playbook::SECTIONS.join(", ")
    ))
}

/// A parser error, located, in words for the operator rather than for the parser's caller.
fn yaml_error(source: u32, err: &serde_saphyr::Error) -> Invalid {
    let (line, column) = err.location().map_or((1, 1), |l| {
        (
            u32::try_from(l.line()).unwrap_or(1).max(1),
            u32::try_from(l.column()).unwrap_or(1).max(1),
        )
    });
    let at = At {
        source,
        line,
        column,
    };
    let (message, help) = explain(err);
    let invalid = Invalid::new(at, message);
    match help {
        Some(help) => invalid.help(help),
        None => invalid,
    }
}

/// The message and advice for a parser error.
fn explain(err: &serde_saphyr::Error) -> (String, Option<&'static str>) {
    use serde_saphyr::Error;
    match err {
        Error::AliasError { error, .. } => explain(error),
        Error::DuplicateMappingKey { key: Some(key), .. } => (
            format!("duplicate key `{key}`: each key may appear once in a mapping"),
            Some("merge the two into one (later playbooks may override this one's keys)"),
        ),
        Error::DuplicateMappingKey { key: None, .. } => (
            "duplicate key: each key may appear once in a mapping".into(),
            None,
        ),
        Error::MultipleDocuments { .. } => (
            "a second YAML document (`---`): a playbook is one document".into(),
            Some("put the second document in its own file and name both; later playbooks override earlier ones"),
        ),
        Error::Unexpected { expected, .. } => match *expected {
            "mapping start" => (
                "expected a mapping (`key: value` lines or `{ key: value }`)".into(),
                None,
            ),
            "sequence start" => (
                "expected a list (a YAML sequence: `- item` lines or `[a, b]`)".into(),
                None,
            ),
            _ => (message_of(err), None),
        },
        Error::Budget { breach, .. } => refused(budget_words(breach)),
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => {
            refused("has aliases that expand to too many values".into())
        }
        _ if message_of(err) == "recursion limit exceeded" => {
            refused(format!("nests more than {MAX_DEPTH} levels deep"))
        }
        _ => {
            let message = message_of(err);
            let help = message
                .contains("tabs")
                .then_some("indent YAML with spaces, not tabs");
            (message, help)
        }
    }
}

/// The message for input refused by a parser limit.
fn refused(what: String) -> (String, Option<&'static str>) {
    (
        format!("the playbook {what}; harden refuses such input rather than spend the host's memory on it"),
        Some("a playbook needs no deep nesting and few aliases: write the values out"),
    )
}

/// What a parser limit counted, in words.
fn budget_words(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach;
    match breach {
        BudgetBreach::Depth { .. } => format!("nests more than {MAX_DEPTH} levels deep"),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => {
            "has too many anchors (`&name`) or aliases (`*name`)".into()
        }
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => "has too many values".into(),
        BudgetBreach::Documents { .. } => "has more than one YAML document".into(),
        other => format!("exceeds a parser limit ({other:?})"),
    }
}

/// The parser's message without its own location prefix; we render the location.
fn message_of(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 3 column 11: invalid mode" -> "invalid mode"
    let stripped = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => first,
    };
    let stripped = match stripped.rsplit_once(" at line ") {
        Some((head, tail)) if tail.contains(" column ") => head,
        _ => stripped,
    };
    stripped.to_owned()
}

#[cfg(test)]
mod tests;
