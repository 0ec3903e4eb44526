//! End-to-end tests of the `login_defs` resource with the shadow tools: what `useradd` and
//! `chage` make of the edited file, the minimal edit, idempotence, rollback, located errors.

use crate::support::assert_located_errors;

const PLAYBOOK: &str = "login_defs:
  PASS_MAX_DAYS: 90
  PASS_MIN_DAYS: 1
  PASS_WARN_AGE: 10
  UMASK: \"027\"
  SHA_CRYPT_MIN_ROUNDS: 6000
";

#[test]
fn new_accounts_get_the_aging_and_umask_and_every_other_line_stays() {
    let Some(sb) = crate::sandbox!() else { return };
    let original = sb.read("/etc/login.defs");
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.stdout
            .contains("PASS_MAX_DAYS: 99999 -> 90 [/etc/login.defs:"),
        "{plan}"
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();

    // Only the values changed, and the missing key was appended; comments all kept.
    let edited = sb.read("/etc/login.defs");
    let removed: Vec<&str> = original
        .lines()
        .filter(|l| !edited.lines().any(|e| e == *l))
        .collect();
    let mut removed_keys: Vec<&str> = removed
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    removed_keys.sort_unstable();
    assert_eq!(
        removed_keys,
        vec!["PASS_MAX_DAYS", "PASS_MIN_DAYS", "PASS_WARN_AGE", "UMASK"]
    );
    let comments = |t: &str| t.lines().filter(|l| l.starts_with('#')).count();
    assert_eq!(
        comments(&edited),
        comments(&original) + 1,
        "one note for the appended key"
    );
    assert!(
        edited.contains("#SHA_CRYPT_MIN_ROUNDS 5000\n"),
        "commented default left alone"
    );
    assert!(edited.ends_with("SHA_CRYPT_MIN_ROUNDS\t6000\n"), "{edited}");

    // The shadow tools read it: a new account gets the aging, its home the umask.
    sb.sh("useradd -m -s /bin/bash tester").assert_ok();
    let chage = sb.sh("LC_ALL=C chage -l tester").assert_ok().stdout;
    for (label, days) in [
        ("Maximum number of days between password change", "90"),
        ("Minimum number of days between password change", "1"),
        ("Number of days of warning before password expires", "10"),
    ] {
        let line = chage
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} in:\n{chage}"));
        assert!(line.trim_end().ends_with(&format!(": {days}")), "{line}");
    }
    let home_mode_set = sb.sh("grep -q '^HOME_MODE' /etc/login.defs").success();
    if !home_mode_set {
        let mode = sb.sh("stat -c %a /home/tester").assert_ok().stdout;
        assert_eq!(mode.trim(), "750", "useradd made the home with UMASK 027");
    }

    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(
        sb.read("/etc/login.defs"),
        original,
        "restored byte for byte"
    );
}

#[test]
fn bad_values_are_plan_time_errors_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_located_errors(
        &sb,
        &[
            (
                "login_defs:\n  PASS_MAX_DAYS: 100000\n",
                "/tmp/bad.yaml:2:18",
                "out of range",
            ),
            (
                "login_defs:\n  UMASK: \"0888\"\n",
                "/tmp/bad.yaml:2:10",
                "invalid umask",
            ),
            (
                "login_defs:\n  ENCRYPT_METHOD: MD5\n",
                "/tmp/bad.yaml:2:19",
                "unknown variant `MD5`",
            ),
            (
                "login_defs:\n  SHA_CRYPT_MIN_ROUNDS: 10\n",
                "/tmp/bad.yaml:2:25",
                "out of range",
            ),
            (
                "login_defs:\n  LOGIN_RETRIES: 3\n",
                "/tmp/bad.yaml:2:3",
                "unknown field `LOGIN_RETRIES`",
            ),
            (
                "login_defs:\n  PASS_WARN_AGE: 30\n  PASS_MAX_DAYS: 7\n",
                "/tmp/bad.yaml:2:18",
                "PASS_WARN_AGE 30 is more than PASS_MAX_DAYS 7",
            ),
        ],
    );
}
