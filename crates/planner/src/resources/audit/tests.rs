//! Unit tests of the `audit` diff and of the rule checks.

use super::*;
use crate::testing;

fn diff(yaml: &str, live: &Live) -> Result<Diff, Failure> {
    testing::diff(yaml, |p| p.audit, live, &testing::root_only(), &[])
}

const PLAYBOOK: &str = "audit:
  rules:
    - -w /etc/passwd -p wa -k identity
    - -a always,exit -F arch=b64 -S sethostname -k system-locale
";

fn targets(diff: &Diff) -> Vec<&str> {
    diff.changes.iter().map(|c| c.target.as_str()).collect()
}

#[test]
fn rules_are_written_merged_checked_and_loaded_where_auditd_runs() {
    let live = Live {
        installed: true,
        running: true,
        ..Live::default()
    };
    let diff = diff(PLAYBOOK, &live).expect("diff");
    assert_eq!(targets(&diff), vec![DROP_IN, MERGED]);
    let merge = &diff.changes[1];
    assert!(matches!(&merge.steps[0], Step::Run(c) if c.display() == "augenrules"));
    assert!(
        matches!(&merge.steps[1], Step::Validate(c) if c.argv.last().map(String::as_str) == Some("-a always,exit -F arch=b64 -S sethostname -k system-locale"))
    );
    assert!(
        matches!(&merge.steps[2], Step::Reload { command, .. } if command.display() == "augenrules --load")
    );
    assert_eq!(merge.on_rollback[0].display(), "augenrules --load");
    assert!(diff.warnings.is_empty());
}

#[test]
fn without_a_running_auditd_nothing_is_loaded_and_the_plan_says_so() {
    let live = Live {
        installed: false,
        install: Some(Ok(vec!["libauparse0".into(), "auditd".into()])),
        ..Live::default()
    };
    let diff = diff(PLAYBOOK, &live).expect("diff");
    assert_eq!(targets(&diff), vec!["install auditd", DROP_IN, MERGED]);
    assert!(diff.changes[0].on_rollback[0]
        .display()
        .ends_with("libauparse0 auditd"));
    assert!(diff.changes[2]
        .steps
        .iter()
        .all(|s| !matches!(s, Step::Reload { .. })));
    assert!(diff.warnings[0]
        .message
        .contains("nothing is loaded into the kernel"));
}

#[test]
fn rules_in_place_and_merged_are_an_empty_plan() {
    let playbook = testing::parse(PLAYBOOK).expect("pb");
    let rules = playbook.audit.expect("audit").rules;
    let live = Live {
        installed: true,
        running: true,
        drop_in: Some(render(&rules)),
        merged: Some(format!("-D\n{}\n{}\n", rules[0].value, rules[1].value)),
        ..Live::default()
    };
    let diff = diff(PLAYBOOK, &live).expect("diff");
    assert!(diff.changes.is_empty(), "{:?}", diff.changes);
    // A merged file that lacks a rule is merged again.
    let live = Live {
        merged: Some("-D\n".into()),
        ..live
    };
    assert_eq!(targets(&diff_again(&live)), vec![MERGED]);
}

fn diff_again(live: &Live) -> Diff {
    diff(PLAYBOOK, live).expect("diff")
}

#[test]
fn bad_rules_are_located_errors() {
    for (yaml, needle) in [
        ("audit:\n  rules: [\"-e 2\"]\n", "never sets -e"),
        ("audit:\n  rules: [\"-D\"]\n", "augenrules starts"),
        (
            "audit:\n  rules: [\"watch /etc/passwd\"]\n",
            "is not an audit rule",
        ),
        ("audit:\n  rules: [\"-w\"]\n", "has no argument"),
        ("audit:\n  rules: [\"-w /etc/passwd\\n-e 2\"]\n", "one line"),
        ("audit:\n  watch: []\n", "unknown field"),
    ] {
        let err = testing::parse(yaml).expect_err(yaml);
        assert!(err.contains("pb.yaml:2:"), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}
