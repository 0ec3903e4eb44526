//! End-to-end tests of the command line contract: exit codes, JSON documents, snapshots.

#[test]
fn exit_codes_follow_the_contract() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/c && echo 1 > /opt/c/f && chmod 644 /opt/c/f")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /opt/c/f, mode: \"0600\" }\n",
    );
    assert_eq!(sb.harden(&["plan", "/tmp/pb.yaml"]).status, 0);
    assert_eq!(
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        2
    );
    assert_eq!(
        sb.harden(&["apply", "--dry-run", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        2
    );
    assert_eq!(sb.harden(&["validate", "/tmp/pb.yaml"]).status, 0);
    assert_eq!(sb.harden(&["apply", "/tmp/pb.yaml"]).status, 0);
    assert_eq!(
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        0
    );
    assert_eq!(sb.harden(&["plan", "/tmp/missing.yaml"]).status, 1);
    assert_eq!(sb.harden(&["--root", "relative", "plan"]).status, 1);
    assert_eq!(sb.harden(&["rollback", "no-such-snapshot"]).status, 1);
}

#[test]
fn apply_and_snapshots_speak_json_for_programs() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/j && echo 1 > /opt/j/f && chmod 644 /opt/j/f")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /opt/j/f, mode: \"0640\" }\n",
    );
    let first = sb
        .harden(&["--format", "json", "apply", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    assert_eq!(first["status"], "changed");
    assert_eq!(first["changed"], true);
    let id = first["snapshot"].as_str().expect("snapshot id").to_owned();
    let second = sb
        .harden(&["--format", "json", "apply", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    assert_eq!(second["status"], "unchanged");
    assert_eq!(second["changed"], false);
    let list = sb
        .harden(&["--format", "json", "snapshots"])
        .assert_ok()
        .json();
    let snapshots = list["snapshots"].as_array().expect("list");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["id"], id.as_str());
    assert_eq!(snapshots[0]["changes"], 1);
    assert_eq!(snapshots[0]["playbooks"][0], "/tmp/pb.yaml");
    let invalid = sb.harden(&["--format", "json", "plan", "/tmp/nope.yaml"]);
    assert_eq!(invalid.status, 1);
    assert_eq!(invalid.json()["status"], "invalid");
}

#[test]
fn later_playbooks_override_earlier_ones() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/m && echo 1 > /opt/m/f && chmod 644 /opt/m/f")
        .assert_ok();
    sb.write(
        "/tmp/a.yaml",
        "files:\n  - { path: /opt/m/f, mode: \"0600\" }\n",
    );
    sb.write(
        "/tmp/b.yaml",
        "files:\n  - { path: /opt/m/f, mode: \"0640\" }\n",
    );
    sb.harden(&["apply", "/tmp/a.yaml", "/tmp/b.yaml"])
        .assert_ok();
    sb.sh("test \"$(stat -c '%a' /opt/m/f)\" = 640").assert_ok();
}

#[test]
fn text_output_is_plain_without_a_terminal() {
    let Some(sb) = crate::sandbox!() else { return };
    crate::support::keyed_admin(&sb);
    let plan = sb.harden(&["plan"]).assert_ok();
    assert!(
        !plan.stdout.contains('\u{1b}'),
        "colour codes in piped output: {:?}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Plan:") || plan.stdout.contains("No changes."),
        "{}",
        plan.stdout
    );
}
