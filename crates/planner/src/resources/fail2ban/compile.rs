//! The playbook's filter expressions compiled by the installed fail2ban's own code, at plan
//! time, so that a bad one is a located playbook error instead of a failed check half-way
//! through an apply.
//!
//! `fail2ban-client -t` does not compile filters' expressions, and `fail2ban-regex` takes one
//! filter file per run, after it is written. So the probe runs one Python process, with the
//! interpreter fail2ban's own scripts name, that hands every expression to the classes the
//! server uses: `Filter.addFailRegex` (which expands `<HOST>` and the other tags, then
//! compiles), `Filter.addIgnoreRegex`, and `Filter.setDatePattern` followed by one match so
//! that the date template's expression is compiled too (fail2ban compiles it lazily). It
//! reads nothing and writes nothing.

use harden_plan::Command;

/// The filter keys fail2ban compiles, in the order they are checked and reported.
pub const KEYS: [&str; 3] = ["failregex", "ignoreregex", "datepattern"];

/// One expression to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    /// The playbook filter it belongs to.
    pub filter: String,
    /// One of [`KEYS`].
    pub key: &'static str,
    /// Its position in that key's list.
    pub index: usize,
    /// The expression, as the playbook gives it (fail2ban's reader turns the `%%` harden
    /// writes back into this).
    pub text: String,
}

/// An expression fail2ban refused, and fail2ban's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Which expression.
    pub expression: Expression,
    /// fail2ban's message, on one line, without the expanded expression it quotes.
    pub message: String,
}

/// What the check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to check, or no fail2ban to check with (the apply installs it, and checks
    /// with `fail2ban-regex`).
    #[default]
    Unchecked,
    /// Compiled; these were refused.
    Checked(Vec<Refused>),
    /// The compiler could not be run; why.
    Failed(String),
}

/// fail2ban's interpreter, from the `#!` line of one of its scripts; `python3` otherwise.
pub fn interpreter(script: Option<&str>) -> String {
    script
        .and_then(|text| text.lines().next())
        .and_then(|line| line.strip_prefix("#!"))
        .and_then(|line| line.split_whitespace().next())
        .filter(|path| path.starts_with('/'))
        .unwrap_or("python3")
        .to_owned()
}

/// Each line of output answers one expression, in order: `ok`, or `refused`, a tab, and
/// fail2ban's message with its line breaks as tabs.
const SCRIPT: &str = r#"
import logging, sys
logging.disable(logging.CRITICAL)
from fail2ban.server.filter import Filter
args = sys.argv[1:]
for key, text in zip(args[0::2], args[1::2]):
    f = Filter(None)
    try:
        if key == "failregex":
            f.addFailRegex(text)
        elif key == "ignoreregex":
            f.addIgnoreRegex(text)
        else:
            f.setDatePattern(text)
            for t in f.dateDetector.templates:
                t.template.matchDate("")
        print("ok")
    except Exception as e:
        print("refused\t" + " ".join(str(e).split("\n")).replace("\t", " ").strip())
sys.stdout.flush()
"#;

/// The one command that compiles every expression; read-only.
pub fn command(python: &str, expressions: &[Expression]) -> Command {
    let mut argv = vec![python.to_owned(), "-c".into(), SCRIPT.into()];
    for e in expressions {
        argv.push(e.key.to_owned());
        argv.push(e.text.clone());
    }
    Command::new(argv).timeout(60)
}

/// Reads the command's answers; an error when they do not add up to one per expression.
pub fn verdict(expressions: &[Expression], stdout: &str) -> Result<Vec<Refused>, String> {
    let answers: Vec<&str> = stdout.lines().collect();
    if answers.len() != expressions.len() {
        return Err(format!(
            "{} answer(s) for {} expression(s)",
            answers.len(),
            expressions.len()
        ));
    }
    let mut refused = Vec::new();
    for (expression, answer) in expressions.iter().zip(answers) {
        match answer.split_once('\t') {
            None if answer == "ok" => {}
            Some(("refused", message)) => refused.push(Refused {
                expression: expression.clone(),
                message: shorten(message),
            }),
            _ => return Err(format!("unexpected answer {answer:?}")),
        }
    }
    Ok(refused)
}

/// fail2ban quotes the whole expression after expanding `<HOST>` (hundreds of characters):
/// `Unable to compile regular expression '(unclosed (?:...))': missing ), ...` becomes
/// `Unable to compile regular expression: missing ), ...`.
fn shorten(message: &str) -> String {
    const HEAD: &str = "Unable to compile regular expression '";
    match message
        .strip_prefix(HEAD)
        .and_then(|rest| rest.rsplit_once("': "))
    {
        Some((_, reason)) => format!("Unable to compile regular expression: {reason}"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expression(key: &'static str, index: usize, text: &str) -> Expression {
        Expression {
            filter: "app".into(),
            key,
            index,
            text: text.into(),
        }
    }

    #[test]
    fn the_interpreter_is_the_one_fail2ban_runs_with() {
        assert_eq!(
            interpreter(Some("#!/usr/bin/python3\nimport x\n")),
            "/usr/bin/python3"
        );
        assert_eq!(
            interpreter(Some("#!/usr/bin/python3 -s\n")),
            "/usr/bin/python3"
        );
        assert_eq!(interpreter(Some("#!env python3\n")), "python3");
        assert_eq!(interpreter(None), "python3");
    }

    #[test]
    fn every_expression_is_an_argument_pair_of_one_command() {
        let list = [
            expression("failregex", 0, "Failed from <HOST>"),
            expression("datepattern", 0, "%Y-%m-%d"),
        ];
        let cmd = command("/usr/bin/python3", &list);
        assert_eq!(cmd.argv[0], "/usr/bin/python3");
        assert_eq!(cmd.argv[1], "-c");
        assert_eq!(
            &cmd.argv[3..],
            ["failregex", "Failed from <HOST>", "datepattern", "%Y-%m-%d"]
        );
    }

    #[test]
    fn refusals_keep_fail2bans_reason_without_the_expanded_expression() {
        let list = [
            expression("failregex", 0, "ok <HOST>"),
            expression("failregex", 1, "(unclosed <HOST>"),
            expression("datepattern", 0, "%Q"),
        ];
        let out = "ok\nrefused\tUnable to compile regular expression '(unclosed (?:\\[?(?P<ip4>x))': missing ), unterminated subpattern at position 0\nrefused\tFailed to set datepattern '%Q' (may be an invalid format or unescaped percent char): unsupported format character 'Q' (0x51) at index 1\n";
        let refused = verdict(&list, out).expect("answers add up");
        assert_eq!(refused.len(), 2);
        assert_eq!(refused[0].expression, list[1]);
        assert_eq!(
            refused[0].message,
            "Unable to compile regular expression: missing ), unterminated subpattern at position 0"
        );
        assert!(refused[1]
            .message
            .starts_with("Failed to set datepattern '%Q'"));
        assert!(verdict(&list, "ok\n").is_err());
        assert!(verdict(&list[..1], "Traceback (most recent call last):\n").is_err());
    }
}
