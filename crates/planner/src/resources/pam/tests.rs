//! Unit tests of the `pam` diff and of the pwquality and PAM file readers.

use super::conf::runs_pwquality;
use super::*;
use crate::testing;

fn diff(yaml: &str, live: &Live) -> Result<Diff, Failure> {
    testing::diff(yaml, |p| p.pam, live, &testing::root_only(), &[])
}

const PLAYBOOK: &str = "pam:
  pwquality:
    minlen: 14
    minclass: 3
    dcredit: -1
    dictcheck: true
    enforce_for_root: true
";

fn ready() -> Live {
    Live {
        in_stack: true,
        conf_d: true,
        live: true,
        files: vec![ConfFile::parse(MAIN, "# minlen = 8\n")],
        ..Live::default()
    }
}

fn targets(diff: &Diff) -> Vec<&str> {
    diff.changes.iter().map(|c| c.target.as_str()).collect()
}

#[test]
fn the_drop_in_holds_the_settings_and_a_login_check_follows() {
    let diff = diff(PLAYBOOK, &ready()).expect("diff");
    assert_eq!(targets(&diff), vec![DROP_IN, "login check"]);
    let Step::WriteFile { content, .. } = &diff.changes[0].steps[0] else {
        panic!("a write")
    };
    assert!(content.starts_with(MARKER));
    assert!(
        content.ends_with(
            "minlen = 14\ndcredit = -1\nminclass = 3\ndictcheck = 1\nenforce_for_root\n"
        ),
        "{content}"
    );
    let Step::Run(check) = &diff.changes[1].steps[0] else {
        panic!("a command")
    };
    assert_eq!(
        &check.argv[3..],
        ["harden-pam-check", "harden-pamcheck", "7", "sshd"]
    );
    assert!(check.touches.contains(&PathBuf::from("/etc/shadow")));
}

#[test]
fn a_system_as_asked_is_an_empty_plan() {
    let mut live = ready();
    let settings = testing::parse(PLAYBOOK)
        .expect("pb")
        .pam
        .expect("pam")
        .pwquality
        .expect("q")
        .settings();
    live.files
        .insert(0, ConfFile::parse(DROP_IN, &render(&settings)));
    let diff = diff(PLAYBOOK, &live).expect("diff");
    assert!(diff.changes.is_empty(), "{:?}", diff.changes);
    assert_eq!(diff.unchanged, 2);
}

#[test]
fn missing_packages_are_installed_with_the_pam_files_in_the_snapshot_and_purged_on_rollback() {
    let live = Live {
        missing: vec!["libpam-pwquality".into(), "pamtester".into()],
        install: Some(Ok(vec![
            "libcrack2".into(),
            "libpam-pwquality".into(),
            "pamtester".into(),
        ])),
        conf_d: false,
        ..ready()
    };
    let diff = diff(PLAYBOOK, &live).expect("diff");
    assert_eq!(
        targets(&diff),
        vec![
            "install libpam-pwquality, pamtester",
            DROP_IN,
            "login check"
        ]
    );
    let Step::Run(install) = &diff.changes[0].steps[0] else {
        panic!("a command")
    };
    assert!(install.touches.contains(&PathBuf::from(COMMON_PASSWORD)));
    assert!(diff.changes[0].on_rollback[0]
        .display()
        .ends_with("libcrack2 libpam-pwquality pamtester"));
    assert!(matches!(diff.changes[1].steps[0], Step::CreateDir { .. }));
}

#[test]
fn an_installed_module_out_of_the_stack_is_enabled_through_pam_auth_update() {
    let live = Live {
        in_stack: false,
        ..ready()
    };
    let diff = diff(PLAYBOOK, &live).expect("diff");
    let Step::Run(enable) = &diff.changes[0].steps[0] else {
        panic!("a command")
    };
    assert_eq!(
        enable.display(),
        "pam-auth-update --package --enable pwquality"
    );
}

#[test]
fn a_value_pwquality_conf_sets_is_an_error_at_the_playbook_key() {
    let mut live = ready();
    live.files = vec![ConfFile::parse(MAIN, "# local policy\nminlen = 8\n")];
    let Err(Failure::Invalid(errors)) = diff(PLAYBOOK, &live) else {
        panic!("invalid")
    };
    assert!(
        errors[0]
            .message
            .contains("/etc/security/pwquality.conf:2 sets minlen = 8"),
        "{errors:?}"
    );
    assert_eq!((errors[0].at.line, errors[0].at.column), (3, 13));
    // The same value there is no conflict; an earlier drop-in never is.
    live.files = vec![
        ConfFile::parse(
            "/etc/security/pwquality.conf.d/10-site.conf",
            "minlen = 10\n",
        ),
        ConfFile::parse(MAIN, "minlen = 14\n"),
    ];
    diff(PLAYBOOK, &live).expect("no conflict");
}

#[test]
fn under_root_the_check_is_left_out_and_the_plan_says_so() {
    let live = Live {
        live: false,
        ..ready()
    };
    let diff = diff(PLAYBOOK, &live).expect("diff");
    assert_eq!(targets(&diff), vec![DROP_IN]);
    assert!(diff.warnings[0].message.contains("not verified"));
}

#[test]
fn the_files_read_as_libpwquality_and_pam_read_them() {
    let file = ConfFile::parse(
        MAIN,
        "minlen=9 # comment\n  dcredit = -2\nenforce_for_root\n#ocredit = 1\n",
    );
    assert_eq!(
        file.entries,
        vec![
            (1, "minlen".into(), "9".into()),
            (2, "dcredit".into(), "-2".into()),
            (3, "enforce_for_root".into(), "set".into())
        ]
    );
    assert!(runs_pwquality("password\trequisite\t\t\tpam_pwquality.so retry=3\npassword [success=1 default=ignore] pam_unix.so obscure use_authtok\n"));
    assert!(!runs_pwquality("# password requisite pam_pwquality.so\npassword [success=1 default=ignore] pam_unix.so obscure yescrypt\n"));
}

#[test]
fn bad_input_is_located() {
    for (yaml, needle) in [
        ("pam:\n  pwquality: { minlen: 4 }\n", "below 6"),
        (
            "pam:\n  pwquality: { minclass: 5 }\n",
            "more than the 4 classes",
        ),
        ("pam:\n  pwquality: { minlen: -1 }\n", "minlen"),
        ("pam:\n  pwquality: { colour: red }\n", "unknown field"),
        (
            "pam:\n  check_services: [\"../x\"]\n",
            "invalid PAM service",
        ),
        ("pam:\n  check_services: []\n", "check no login"),
    ] {
        let err = testing::parse(yaml).expect_err(yaml);
        assert!(err.contains("pb.yaml:2:"), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}
