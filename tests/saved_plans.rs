//! End-to-end tests of the operator workflow (issue 13) in the chroot sandbox: saved plans
//! applied exactly or refused as stale, the confirm-or-revert's detached process (no
//! systemd here; the booted tier tests the timer), and `harden log`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{Run, Sandbox};

const PLAYBOOK: &str = "files:\n  - { path: /srv/app.conf, content: \"new\\n\", mode: \"0640\" }\n";

const PLAN: &str = "/root/plan.json";

fn setup(sb: &Sandbox) {
    sb.write("/srv/app.conf", "old\n");
    sb.sh("chmod 644 /srv/app.conf").assert_ok();
    sb.write("/tmp/pb.yaml", PLAYBOOK);
}

/// The snapshots' ids, as `harden snapshots --format json` lists them.
fn snapshot_ids(sb: &Sandbox) -> Vec<String> {
    sb.harden(&["snapshots", "--format", "json"])
        .assert_ok()
        .json()["snapshots"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn a_saved_plan_is_written_private_shown_and_applied_exactly() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.harden(&["plan", "--out", PLAN, "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stderr_contains("saved the plan to /root/plan.json");
    let mode = sb.sh(&format!("stat -c %a {PLAN}")).assert_ok().stdout;
    assert_eq!(mode.trim(), "600");
    assert_eq!(
        sb.read("/srv/app.conf"),
        "old\n",
        "plan --out changed the file"
    );

    let shown = sb.harden(&["show", PLAN]).assert_ok();
    assert!(shown.stdout.contains("~ files /srv/app.conf"), "{shown}");
    assert!(
        shown
            .stdout
            .contains("/srv/app.conf: file 0644 0:0 sha256 "),
        "{shown}"
    );
    let json = sb
        .harden(&["show", PLAN, "--format", "json"])
        .assert_ok()
        .json();
    assert_eq!(json["format"], "harden-saved-plan");
    let machine_id = sb.read("/etc/machine-id");
    assert_eq!(json["machine_id"].as_str(), Some(machine_id.trim()));
    let assumed: BTreeSet<String> = json["preconditions"]["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["path"].as_str().expect("a path").to_owned())
        .collect();

    let applied = sb
        .harden(&["apply", PLAN, "--format", "json"])
        .assert_ok()
        .json();
    assert_eq!(applied["status"], "changed", "{applied}");
    assert!(applied.get("verification_skipped").is_none(), "{applied}");
    assert_eq!(sb.read("/srv/app.conf"), "new\n");
    // Exactly its changes: the snapshot saved the paths the plan assumed, no more.
    let id = applied["snapshot"].as_str().expect("snapshot id");
    let manifest: serde_json::Value =
        serde_json::from_str(&sb.read(&format!("/var/lib/harden/snapshots/{id}/manifest.json")))
            .expect("manifest");
    let saved: BTreeSet<String> = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["path"].as_str().expect("a path").to_owned())
        .collect();
    assert_eq!(saved, assumed);

    // Applied again, its preconditions no longer hold (the file is new now): refused.
    sb.harden(&["apply", PLAN])
        .assert_status(4)
        .assert_stderr_contains("/srv/app.conf: mode 0644 -> 0640, content changed");
}

#[test]
fn a_saved_plan_made_stale_by_an_edit_is_refused_naming_it_and_changes_nothing() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.harden(&["plan", "--out", PLAN, "/tmp/pb.yaml"])
        .assert_ok();
    sb.write("/srv/app.conf", "old\n# an unrelated edit\n");
    let before = sb.upper_entries();
    let refused = sb.harden(&["apply", PLAN]).assert_status(4);
    assert!(
        refused.stderr.contains("/srv/app.conf: content changed"),
        "{refused}"
    );
    assert!(refused.stderr.contains("nothing was changed"), "{refused}");
    assert_eq!(sb.read("/srv/app.conf"), "old\n# an unrelated edit\n");
    assert_eq!(sb.upper_entries(), before, "a refused plan wrote something");
    let json = sb
        .harden(&["apply", PLAN, "--format", "json"])
        .assert_status(4)
        .json();
    assert_eq!(json["status"], "stale");
    assert_eq!(json["changed"][0], "/srv/app.conf: content changed");

    // Another machine: refused before anything else is compared.
    sb.write("/srv/app.conf", "old\n");
    sb.write("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    sb.harden(&["apply", PLAN])
        .assert_status(4)
        .assert_stderr_contains("made on machine");
    assert_eq!(sb.read("/srv/app.conf"), "old\n");
}

#[test]
fn a_saved_plan_whose_playbook_is_gone_applies_without_the_verifying_replan_and_says_so() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.harden(&["plan", "--out", PLAN, "/tmp/pb.yaml"])
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/other, content: \"x\\n\" }\n",
    );
    let run = sb.harden(&["apply", PLAN]).assert_ok();
    assert!(
        run.stderr
            .contains("verification skipped: a recorded playbook changed since the plan was saved"),
        "{run}"
    );
    assert_eq!(sb.read("/srv/app.conf"), "new\n");
    assert!(!sb.exists("/srv/other"), "the changed playbook was applied");
}

/// An env file's secrets, old and generated, are never in the saved plan, the output or
/// the log records (`-vv` puts every record on stderr).
#[test]
fn no_secret_is_in_a_saved_plan_or_the_log_records() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write(
        "/opt/app/.env",
        "JWT_SECRET='changeme-old-secret'\nDEBUG=true\n",
    );
    sb.write(
        "/tmp/env.yaml",
        "env_files:\n  - path: /opt/app/.env\n    keys:\n      JWT_SECRET: { min_length: 32, generate: { hex: 32 } }\n",
    );
    sb.harden(&["plan", "--out", PLAN, "/tmp/env.yaml"])
        .assert_ok();
    let file = sb.read(PLAN);
    assert!(
        file.contains("edit_env") && !file.contains("changeme"),
        "{file}"
    );
    let run = sb.harden(&["-vv", "apply", PLAN]).assert_ok();
    assert!(run.stderr.contains("apply finished"), "no records: {run}");
    let env = sb.read("/opt/app/.env");
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("JWT_SECRET="))
        .expect("the key")
        .trim_matches('\'')
        .to_owned();
    assert_eq!(secret.len(), 64, "{env}");
    for text in [&run.stdout, &run.stderr, &file] {
        assert!(
            !text.contains(&secret) && !text.contains("changeme"),
            "{run}"
        );
    }
    let log = sb.harden(&["log"]).assert_ok();
    assert!(!log.stdout.contains(&secret), "{log}");
}

#[test]
fn log_lists_applies_and_rollbacks_with_their_targets_and_results() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    sb.harden(&["rollback"]).assert_ok();
    let json = sb.harden(&["log", "--format", "json"]).assert_ok().json();
    let entries = json["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{json}");
    assert_eq!(entries[0]["purpose"], "apply");
    assert_eq!(entries[0]["result"], "applied");
    assert_eq!(entries[0]["changed"][0], "files /srv/app.conf");
    assert_eq!(entries[1]["purpose"], "rollback");
    assert_eq!(entries[1]["result"], "rolled back");
    assert_eq!(entries[1]["changed"][0], "/srv/app.conf");
    let text = sb.harden(&["log"]).assert_ok();
    assert!(
        text.stdout.contains("apply /tmp/pb.yaml: applied"),
        "{text}"
    );
}

fn apply_with_confirmation(sb: &Sandbox, within: &str) -> Run {
    sb.harden(&["apply", "--confirm-within", within, "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stderr_contains("Rollback armed (detached process)")
}

/// Without systemd, a detached process rolls an unconfirmed apply back at its deadline;
/// meanwhile a second apply is refused (exit 5) and `snapshots` shows the deadline.
#[test]
fn an_unconfirmed_apply_is_rolled_back_by_its_deadline_without_systemd() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    apply_with_confirmation(&sb, "3s");
    assert_eq!(sb.read("/srv/app.conf"), "new\n");
    sb.harden(&["snapshots"])
        .assert_ok()
        .assert_stdout_contains("[confirmation pending until ");
    sb.harden(&["apply", "/tmp/pb.yaml"])
        .assert_status(5)
        .assert_stderr_contains("waits for `harden confirm`");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(sb.read("/srv/app.conf"), "old\n", "not rolled back");
    let listed = sb.harden(&["snapshots"]).assert_ok();
    assert!(
        listed
            .stdout
            .contains("[rolled back: not confirmed by its deadline"),
        "{listed}"
    );
    sb.harden(&["confirm"])
        .assert_status(1)
        .assert_stderr_contains("too late");
    let ids = snapshot_ids(&sb);
    let log = sb.read(&format!("/var/lib/harden/snapshots/{}/confirm.log", ids[0]));
    assert!(
        log.contains("rolling back: not confirmed by its deadline"),
        "{log}"
    );
}

#[test]
fn a_confirmed_apply_stays_after_its_deadline() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    apply_with_confirmation(&sb, "3s");
    sb.harden(&["confirm"])
        .assert_ok()
        .assert_stderr_contains("confirmed: the apply of snapshot");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        sb.read("/srv/app.conf"),
        "new\n",
        "rolled back though confirmed"
    );
    sb.harden(&["snapshots"])
        .assert_ok()
        .assert_stdout_contains("[confirmed]");
    // Nothing pending any more: another apply goes ahead.
    sb.write("/srv/app.conf", "edited\n");
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
}

/// `doc` must match `crates/core/report.schema.json`.
fn assert_report_schema(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../crates/core/report.schema.json"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{doc}: {errors:?}");
}

/// The documents of this workflow, from real runs, match the report schema: stale,
/// changed with a confirmation, unconfirmed, confirmed, snapshots with one, log.
#[test]
fn the_workflow_s_json_documents_match_the_report_schema() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    let json = |args: &[&str], code: i32| -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let doc = sb.harden(&all).assert_status(code).json();
        assert_report_schema(&doc);
        doc
    };
    sb.harden(&["plan", "--out", PLAN, "/tmp/pb.yaml"])
        .assert_ok();
    sb.write("/srv/app.conf", "edited\n");
    assert_eq!(json(&["apply", PLAN], 4)["status"], "stale");
    let changed = json(&["apply", "--confirm-within", "1m", "/tmp/pb.yaml"], 0);
    assert_eq!(changed["confirmation"]["state"], "pending", "{changed}");
    assert_eq!(changed["confirmation"]["armed_by"], "detached process");
    let refused = json(&["apply", "/tmp/pb.yaml"], 5);
    assert_eq!(refused["status"], "unconfirmed");
    assert_eq!(refused["snapshot"], changed["snapshot"]);
    let listed = json(&["snapshots"], 0);
    assert_eq!(listed["snapshots"][0]["confirmation"]["state"], "pending");
    assert_eq!(json(&["confirm"], 0)["status"], "confirmed");
    let log = json(&["log"], 0);
    assert_eq!(log["entries"][0]["confirmation"]["state"], "confirmed");
}
