//! The env_files diff on hand-made live states: what is judged weak, what the plan says
//! about it, and that no value of a secret reaches the plan or an error.

use super::*;
use crate::diagnostic::Source;
use crate::playbook::load;
use harden_plan::{EnvValue, Plan};

fn users() -> harden_host::UserDb {
    harden_host::UserDb::parse(
        false,
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        "root:x:0:\napp:x:1000:\n",
    )
}

fn section(yaml: &str) -> EnvFiles {
    let loaded = load(vec![Source {
        name: "pb.yaml".into(),
        text: yaml.into(),
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    loaded.playbook.env_files.expect("an env_files section")
}

fn file_stat(mode: u32, uid: u32) -> Stat {
    Stat {
        kind: Kind::File,
        mode,
        uid,
        gid: uid,
        nlink: 1,
        dev: 1,
        ino: 1,
        size: 0,
    }
}

fn live(text: &str, mode: u32) -> EnvLive {
    EnvLive {
        stat: Some(file_stat(mode, 1000)),
        document: Some(harden_dotenv::parse(text).map_err(|e| e.to_string())),
        ..EnvLive::default()
    }
}

fn run(section: &EnvFiles, found: &EnvLive) -> Result<Diff, Vec<Invalid>> {
    let mut diff = Diff::default();
    diff_file(
        &section.0[0],
        found,
        &Accounts::existing(&users()),
        FromFiles::default(),
        &mut diff,
    )
    .map(|()| diff)
}

/// Everything a plan made of `diff` shows: its JSON and its details.
fn shown(diff: &Diff) -> String {
    let mut plan = Plan::new("/".into(), vec![]);
    plan.changes.extend(diff.changes.clone());
    plan.warnings.extend(diff.warnings.clone());
    serde_json::to_string(&plan).expect("json")
}

const STREAMING: &str = "env_files:
  - path: /opt/streaming-app/.env
    owner: app
    keys:
      JWT_SECRET: { min_length: 32, generate: { hex: 32 } }
      ADMIN_PASSWORD: { required: true, min_length: 16, generate: { urlsafe: 24 } }
      SESSION_KEY: { generate: { hex: 16 } }
      DEBUG: { equals: \"false\" }
";

#[test]
fn weak_default_short_and_missing_secrets_are_generated_and_described_without_values() {
    let s = section(STREAMING);
    let found = live(
        "# app\nJWT_SECRET=changeme\nADMIN_PASSWORD='Sh0rt-but-odd'\nDEBUG=true\n",
        0o644,
    );
    let diff = run(&s, &found).expect("diff");
    assert_eq!(diff.changes.len(), 1);
    let change = &diff.changes[0];
    let lines: Vec<String> = change
        .details
        .iter()
        .map(|d| {
            format!(
                "{}: {} -> {}",
                d.name,
                d.current.as_deref().unwrap_or("-"),
                d.desired.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            "JWT_SECRET: 8 characters, a known default, shorter than 32 -> generated (64 hex characters)",
            "ADMIN_PASSWORD: 13 characters, shorter than 16 -> generated (32 URL-safe base64 characters)",
            "SESSION_KEY: missing -> generated (32 hex characters)",
            "DEBUG: \"true\" -> \"false\"",
            "mode: 0644 -> 0600",
        ]
    );
    let Step::EditEnv { edits, attrs, .. } = &change.steps[0] else {
        panic!("an env edit: {:?}", change.steps)
    };
    assert_eq!(attrs.mode, 0o600);
    assert_eq!(attrs.uid, 1000);
    let keys: Vec<&str> = edits.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["JWT_SECRET", "ADMIN_PASSWORD", "SESSION_KEY", "DEBUG"]
    );
    assert_eq!(edits[3].value, EnvValue::Literal("false".into()));
    // Two live secrets are rotated, and the plan says what that breaks; the missing one is not.
    assert_eq!(diff.warnings.len(), 1);
    let warning = &diff.warnings[0].message;
    assert!(
        warning.contains("JWT_SECRET, ADMIN_PASSWORD are replaced") && warning.contains("sessions"),
        "{warning}"
    );
    let all = shown(&diff);
    for secret in ["changeme", "Sh0rt-but-odd"] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }
}

#[test]
fn a_known_default_is_weak_whatever_its_length_and_case() {
    let s = section(STREAMING);
    let found = live(
        "JWT_SECRET=ChangeMe\nADMIN_PASSWORD=aaaaaaaaaaaaaaaaaaaa\nSESSION_KEY=<your-session-key-here>\nDEBUG=false\n",
        0o600,
    );
    let diff = run(&s, &found).expect("diff");
    let currents: Vec<&str> = diff.changes[0]
        .details
        .iter()
        .filter_map(|d| d.current.as_deref())
        .collect();
    assert_eq!(
        currents,
        [
            "8 characters, a known default, shorter than 32",
            "20 characters, one character repeated",
            "23 characters, a placeholder"
        ]
    );
    let s = section(
        "env_files:\n  - path: /e\n    keys:\n      JWT_SECRET: { generate: { hex: 32 } }\n",
    );
    let diff = run(&s, &live("JWT_SECRET=Replace_Me\n", 0o600)).expect("diff");
    assert_eq!(
        diff.changes[0].details[0].current.as_deref(),
        Some("10 characters, a known default")
    );
}

#[test]
fn good_values_and_attributes_are_unchanged() {
    let s = section(STREAMING);
    let text = "JWT_SECRET=0123456789abcdef0123456789abcdef0123\nADMIN_PASSWORD=correct-horse-battery\nSESSION_KEY=fedcba9876543210fedc\nDEBUG=false\n";
    let diff = run(&s, &live(text, 0o600)).expect("diff");
    assert!(diff.changes.is_empty(), "{:?}", diff.changes);
    assert!(diff.warnings.is_empty());
    assert_eq!(diff.unchanged, 4);
    // Only the mode differs: attributes are set in place, no content is rewritten.
    let diff = run(&s, &live(text, 0o640)).expect("diff");
    assert!(matches!(diff.changes[0].steps[0], Step::SetAttrs { .. }));
    assert_eq!(diff.changes[0].reason, "mode or owner differs");
}

#[test]
fn on_weak_error_fails_naming_the_key_and_the_rule_never_the_value() {
    let s = section(
        "env_files:\n  - path: /opt/app/.env\n    on_weak: error\n    keys:\n      JWT_SECRET: { min_length: 32, generate: { hex: 32 } }\n      NEW_KEY: { generate: { hex: 32 } }\n",
    );
    let errors = run(&s, &live("JWT_SECRET=hunter2-hunter2\n", 0o600)).expect_err("weak");
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!((e.at.line, e.at.column), (5, 7));
    assert!(
        e.message
            .contains("JWT_SECRET in /opt/app/.env is 15 characters, shorter than 32")
            && e.message.contains("on_weak: error"),
        "{}",
        e.message
    );
    assert!(!format!("{e:?}").contains("hunter2"));
    // A missing key is still generated: no live secret is rotated.
    let diff = run(
        &s,
        &live("JWT_SECRET=0123456789abcdef0123456789abcdef\n", 0o600),
    )
    .expect("diff");
    assert_eq!(diff.changes[0].details[0].name, "NEW_KEY");
    assert!(diff.warnings.is_empty());
}

#[test]
fn a_required_key_without_generate_must_be_present() {
    let s = section(
        "env_files:\n  - path: /e\n    keys:\n      API_TOKEN: { required: true, secret: true }\n      OPTIONAL: { min_length: 8 }\n",
    );
    let errors = run(&s, &live("API_TOKEN=\n", 0o600)).expect_err("missing");
    assert!(
        errors[0]
            .message
            .contains("API_TOKEN is required in /e but is empty"),
        "{}",
        errors[0].message
    );
    let errors =
        run(&s, &live("API_TOKEN=fine-enough\nOPTIONAL=short\n", 0o600)).expect_err("short");
    assert_eq!(
        errors[0].message,
        "OPTIONAL in /e is 5 characters, shorter than 8"
    );
    assert!(run(&s, &live("API_TOKEN=fine-enough\n", 0o600)).is_ok());
    // Only a key declared `secret: false` (or with `equals`) has its value shown.
    let s = section(
        "env_files:\n  - path: /e\n    keys:\n      LEVEL: { min_length: 8, secret: false }\n",
    );
    let errors = run(&s, &live("LEVEL=short\n", 0o600)).expect_err("short");
    assert_eq!(
        errors[0].message,
        "LEVEL in /e is \"short\", shorter than 8"
    );
}

#[test]
fn two_secrets_sharing_a_value_get_the_second_replaced() {
    let s = section(
        "env_files:\n  - path: /e\n    keys:\n      ACCESS_SECRET: { generate: { hex: 32 } }\n      REFRESH_SECRET: { generate: { hex: 32 } }\n",
    );
    let same = "0123456789abcdef0123456789abcdef";
    let diff = run(
        &s,
        &live(
            &format!("ACCESS_SECRET={same}\nREFRESH_SECRET={same}\n"),
            0o600,
        ),
    )
    .expect("diff");
    let details = &diff.changes[0].details;
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].name, "REFRESH_SECRET");
    assert!(details[0]
        .current
        .as_deref()
        .is_some_and(|c| c.contains("the same value as another secret")));
}

#[test]
fn a_missing_file_is_created_and_an_unreadable_one_is_located() {
    let s = section(STREAMING);
    let missing = EnvLive {
        parent_is_dir: true,
        ..EnvLive::default()
    };
    let diff = run(&s, &missing).expect("diff");
    assert_eq!(diff.changes[0].reason, "file is missing");
    assert!(matches!(
        &diff.changes[0].steps[0],
        Step::EditEnv { create: true, edits, attrs, .. } if edits.len() == 4 && attrs.mode == 0o600 && attrs.uid == 1000
    ));
    let orphan = EnvLive::default();
    let errors = run(&s, &orphan).expect_err("no parent");
    assert!(errors[0]
        .message
        .contains("its parent /opt/streaming-app is not a directory"));

    let broken = live("JWT_SECRET='hunter2\n", 0o600);
    let Some(Err(why)) = &broken.document else {
        panic!("a parse error")
    };
    assert!(!why.contains("hunter2"));
    let errors = run(
        &s,
        &EnvLive {
            document: Some(Err(
                "/opt/streaming-app/.env:1: the value's opening ' is never closed".into(),
            )),
            ..broken
        },
    )
    .expect_err("unreadable");
    assert_eq!(errors[0].at.line, 2);
    assert!(errors[0].message.starts_with("/opt/streaming-app/.env:1: "));
}

#[test]
fn the_files_section_must_agree_on_mode_and_owner() {
    let s = section(
        "env_files:\n  - path: /e\n    mode: \"0640\"\n    keys:\n      DEBUG: { equals: \"false\" }\n",
    );
    let mode: crate::facts::ModeChange = std::sync::Arc::new(|_| 0o600);
    let planned = PlannedAttrs {
        mode: Some(mode),
        uid: Some(1000),
        gid: None,
    };
    let mut diff = Diff::default();
    let errors = diff_file(
        &s.0[0],
        &live("DEBUG=false\n", 0o640),
        &Accounts::existing(&users()),
        FromFiles {
            attrs: Some(&planned),
            parent_managed: false,
        },
        &mut diff,
    )
    .expect_err("conflict");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("another mode"),
        "{}",
        errors[0].message
    );
    // Without a mode of its own, the file takes the files section's mode and owner.
    let s = section("env_files:\n  - path: /e\n    keys:\n      DEBUG: { equals: \"false\" }\n");
    let mut diff = Diff::default();
    diff_file(
        &s.0[0],
        &live("DEBUG=false\n", 0o644),
        &Accounts::existing(&users()),
        FromFiles {
            attrs: Some(&planned),
            parent_managed: false,
        },
        &mut diff,
    )
    .expect("diff");
    assert!(matches!(
        diff.changes[0].steps[0],
        Step::SetAttrs {
            to: Attrs {
                mode: 0o600,
                uid: 1000,
                ..
            },
            ..
        }
    ));
}

#[test]
fn invalid_rules_are_located() {
    let load_errors = |yaml: &str| -> Vec<String> {
        match load(vec![Source {
            name: "pb.yaml".into(),
            text: yaml.into(),
        }]) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .errors
                .iter()
                .map(|e| format!("{}:{} {}", e.at.line, e.at.column, e.message))
                .collect(),
        }
    };
    let errors = load_errors(
        "env_files:\n  - path: /e\n    keys:\n      ADMIN_PASSWORD: { secret: true, equals: hunter2 }\n      bad-key: { required: true }\n      TOKEN: { generate: { hex: 8 } }\n      KEY: { min_length: 64, generate: { hex: 16 } }\n",
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[0].starts_with("4:47 ADMIN_PASSWORD is declared secret"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("5:7 invalid key \"bad-key\""),
        "{errors:?}"
    );
    assert!(errors[2].contains("8 random bytes"), "{errors:?}");
    assert!(
        errors[3].contains("fewer than its `min_length: 64`"),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains("hunter2")), "{errors:?}");
    let negative =
        load_errors("env_files:\n  - path: /e\n    keys:\n      K: { min_length: -1 }\n");
    assert!(
        negative.first().is_some_and(|e| e.starts_with("4:")),
        "{negative:?}"
    );
    let unknown = load_errors("env_files:\n  - path: /e\n    keys:\n      K: { lenght: 3 }\n");
    assert!(
        unknown.first().is_some_and(|e| e.starts_with("4:")),
        "{unknown:?}"
    );
    let relative =
        load_errors("env_files:\n  - path: opt/.env\n    mode: \"999\"\n    keys: { K: {} }\n");
    assert_eq!(relative.len(), 2, "{relative:?}");
}
