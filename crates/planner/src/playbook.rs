//! Reading playbooks: YAML text to one merged, validated [`Playbook`].

use std::path::Path;

use crate::diagnostic::{yaml_lines, Diagnostics, Invalid, Source};
use crate::located::{with_source, At};
use crate::resources::Playbook;

/// The built-in baseline, used when no playbook is named.
pub const BASELINE: &str = include_str!("../../../playbooks/baseline.yaml");

/// Name shown for the built-in baseline.
pub const BASELINE_NAME: &str = "<baseline>";

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

/// Reads the playbook files at `paths`, or the baseline when there are none.
pub fn load_files(paths: &[impl AsRef<Path>]) -> Result<Loaded, Diagnostics> {
    if paths.is_empty() {
        return load(vec![Source {
            name: BASELINE_NAME.into(),
            text: BASELINE.into(),
        }]);
    }
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => sources.push(Source { name, text }),
                Err(_) => {
                    errors.push(Invalid::new(
                        place(sources.len() + errors.len(), 1, 1),
                        "not UTF-8 text",
                    ));
                    sources.push(Source {
                        name,
                        text: String::new(),
                    });
                }
            },
            Err(e) => {
                errors.push(Invalid::new(
                    place(sources.len(), 1, 1),
                    format!("cannot read playbook: {e}"),
                ));
                sources.push(Source {
                    name,
                    text: String::new(),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics { sources, errors });
    }
    load(sources)
}

fn place(source: usize, line: u32, column: u32) -> At {
    At {
        source: u32::try_from(source).unwrap_or(u32::MAX),
        line,
        column,
    }
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

fn parse(index: usize, text: &str) -> Result<Playbook, Invalid> {
    // Lines as YAML counts them: with `str::lines`, a file whose line breaks are lone `\r`
    // and whose first line is a comment would look like one comment line.
    if text.trim().is_empty()
        || yaml_lines(text).all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Playbook::default());
    }
    let source = u32::try_from(index).unwrap_or(u32::MAX);
    with_source(source, || serde_saphyr::from_str::<Playbook>(text)).map_err(|err| {
        let (line, column) = err.location().map_or((1, 1), |l| {
            (
                u32::try_from(l.line()).unwrap_or(1),
                u32::try_from(l.column()).unwrap_or(1),
            )
        });
        Invalid::new(
            At {
                source,
                line,
                column,
            },
            message_of(&err),
        )
    })
}

/// The parser's message without its own location prefix and snippet; we render both.
fn message_of(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
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
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    fn first_error(text: &str) -> String {
        let err = load(vec![source("pb.yaml", text)]).expect_err("invalid");
        err.to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn the_baseline_is_valid() {
        let loaded = load_files(&[] as &[&str]).expect("baseline loads");
        assert_eq!(loaded.names(), vec![BASELINE_NAME]);
    }

    #[test]
    fn unknown_top_level_key_names_file_line_and_column() {
        let msg = first_error("files: []\nfirewall: {}\n");
        assert!(
            msg.starts_with("pb.yaml:2:1: unknown field `firewall`"),
            "{msg}"
        );
    }

    #[test]
    fn yaml_syntax_errors_are_located() {
        let msg = first_error("files: [\n");
        assert!(msg.starts_with("pb.yaml:1:"), "{msg}");
    }

    #[test]
    fn comment_only_and_empty_playbooks_are_empty() {
        let loaded =
            load(vec![source("a.yaml", ""), source("b.yaml", "# nothing\n")]).expect("valid");
        assert!(loaded.playbook.files.is_none());
    }

    #[test]
    fn errors_after_lone_carriage_returns_quote_the_line_yaml_counts() {
        // Found by fuzzing (fuzz/regressions/playbook/): YAML ends a line at a lone `\r`, so
        // the error is on line 3, which `str::lines` does not find; and the file, one line to
        // `str::lines` starting with `#`, was taken for a comment-only (empty) playbook.
        let err = load(vec![source("pb.yaml", "# one\r# two\rfiles: 7\n")]).expect_err("invalid");
        let shown = err.to_string();
        assert!(shown.starts_with("pb.yaml:3:"), "{shown}");
        assert!(shown.contains("3 | files: 7"), "{shown}");
    }

    #[test]
    fn errors_name_the_playbook_they_are_in() {
        let err = load(vec![
            source("a.yaml", "files: []\n"),
            source("b.yaml", "files:\n  - path: relative\n"),
        ])
        .expect_err("invalid");
        let msg = err.to_string();
        assert!(msg.starts_with("b.yaml:2:11: "), "{msg}");
    }
}
