//! End-to-end tests of how a failed or interrupted apply is undone when the world moved
//! under it: another user swapping a managed file for a symlink mid-apply, and a run killed
//! while it writes its snapshot.

use crate::support::HARDEN_IN_SANDBOX;

/// Issue 16, finding 7: an unprivileged user replaces a managed file (in a directory they
/// own) with a symlink to /etc/shadow while the apply runs. No write goes through the link,
/// the rollback restores everything harden changed, leaves the planted link as found, says
/// so, and exits 1: exit 3 is for what harden could not restore of its own changes.
#[test]
fn issue16_a_file_swapped_for_a_symlink_mid_apply_is_left_as_found_and_is_no_incomplete_rollback() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("set -e
         useradd -m -s /bin/sh mallory
         install -d -o mallory -g mallory /srv/app
         printf 'old\\n' > /srv/app/config && chown mallory:mallory /srv/app/config
         mkdir -p /srv/tree && cd /srv/tree
         for d in $(seq 1 40); do mkdir $d && (cd $d && touch $(seq 1 500)); done")
        .assert_ok();
    // The tree first, slow enough to swap the file before its write comes.
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/tree, mode: \"u=rwX,g=,o=\", recurse: true }\n  - { path: /srv/app/config, content: \"new\\n\", owner: mallory, mode: \"0600\" }\n",
    );
    let shadow = sb
        .sh("sha256sum /etc/shadow; stat -c '%a %U' /etc/shadow")
        .assert_ok()
        .stdout;
    let tree = sb
        .sh("find /srv/tree -printf '%m %p\\n' | sort | sha256sum")
        .assert_ok()
        .stdout;
    let run = sb.sh(&format!(
        "(while [ ! -e /var/lib/harden/journal.json ]; do sleep 0.001; done; \
          setpriv --reuid=mallory --regid=mallory --clear-groups ln -sfn /etc/shadow /srv/app/config) & \
         {HARDEN_IN_SANDBOX} apply /tmp/pb.yaml; echo rc=$?; wait"
    ));
    assert!(run.stdout.contains("rc=1"), "{run}");
    assert!(
        run.stderr
            .contains("changed by someone else while harden ran, left as found: /srv/app/config"),
        "{run}"
    );
    assert!(!run.stderr.contains("INCOMPLETELY"), "{run}");
    assert_eq!(
        sb.sh("sha256sum /etc/shadow; stat -c '%a %U' /etc/shadow")
            .assert_ok()
            .stdout,
        shadow,
        "/etc/shadow was touched"
    );
    assert_eq!(
        sb.sh("readlink /srv/app/config").assert_ok().stdout.trim(),
        "/etc/shadow",
        "the planted link is left as found"
    );
    assert_eq!(
        sb.sh("find /srv/tree -printf '%m %p\\n' | sort | sha256sum")
            .assert_ok()
            .stdout,
        tree,
        "the tree was not restored"
    );
    assert!(!sb.exists("/var/lib/harden/journal.json"));
}

/// Issue 16, finding 8: a run killed while it copies a file into its snapshot leaves a
/// snapshot directory without manifest holding the blob's temporary file (the snapshot is
/// written before the journal, so nothing points at it). The next run's recovery removes
/// the incomplete snapshot: no temporary file is left anywhere. The state is the one such a
/// kill leaves, made directly: the window is a few milliseconds, too short to hit reliably
/// on a loaded machine (the crash suite kills real runs at many points).
#[test]
fn issue16_a_snapshot_left_half_written_by_a_kill_is_removed_by_the_next_run() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write("/srv/app.conf", "old\n");
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/app.conf, content: \"new\\n\" }\n",
    );
    sb.sh(
        "set -e
         install -d -m 700 /var/lib/harden /var/lib/harden/snapshots /var/lib/harden/snapshots/20261201T000000Z
         head -c 4096 /srv/app.conf > /var/lib/harden/snapshots/20261201T000000Z/.blob-000000.harden-tmp",
    )
    .assert_ok();
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]);
    plan.assert_ok();
    let next = sb.harden(&["apply", "/tmp/pb.yaml"]);
    next.assert_ok();
    let left = sb
        .sh("find /var/lib/harden /srv -name '*.harden-tmp'")
        .assert_ok()
        .stdout;
    assert_eq!(left, "", "temporary files left behind");
    let snapshots = sb.sh("ls /var/lib/harden/snapshots").assert_ok().stdout;
    assert_eq!(snapshots.lines().count(), 1, "{snapshots}");
    assert!(!snapshots.contains("20261201T000000Z"), "{snapshots}");
    assert_eq!(sb.read("/srv/app.conf"), "new\n");
}

/// Panics unless `doc` matches `crates/core/report.schema.json`, the schema of every
/// `--format json` document but the plan.
fn assert_report_schema(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../crates/core/report.schema.json"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{doc}: {errors:?}");
}

/// Every JSON document the commands print, from real runs, matches the report schema, and
/// carries the status its run had: valid, invalid, error, changed, unchanged, failed (with
/// its rollback), restored, snapshots.
#[test]
fn every_json_document_matches_the_report_schema() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write("/srv/app.conf", "old\n");
    sb.write(
        "/tmp/ok.yaml",
        "files:\n  - { path: /srv/app.conf, content: \"new\\n\", mode: \"0600\" }\n",
    );
    sb.write(
        "/tmp/bad.yaml",
        "files:\n  - { path: srv/relative, mode: \"0600\" }\n",
    );
    sb.write(
        "/tmp/fails.yaml",
        // /sys is mounted read-only in the sandbox: the second write fails.
        "files:\n  - { path: /srv/app.conf, content: \"newer\\n\" }\n  - { path: /sys/fs/harden-test, content: \"x\\n\" }\n",
    );
    let json = |args: &[&str]| -> (i32, serde_json::Value) {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let run = sb.harden(&all);
        let doc: serde_json::Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {run}"));
        assert_report_schema(&doc);
        (run.status, doc)
    };
    let status = |doc: &serde_json::Value| doc["status"].as_str().unwrap_or_default().to_owned();
    let (code, doc) = json(&["validate", "/tmp/ok.yaml"]);
    assert_eq!((code, status(&doc)), (0, "valid".into()));
    let (code, doc) = json(&["validate", "/tmp/bad.yaml"]);
    assert_eq!((code, status(&doc)), (1, "invalid".into()));
    assert_eq!(doc["errors"][0]["line"], 2);
    let (code, doc) = json(&["apply", "/tmp/nonexistent.yaml"]);
    assert_eq!(code, 1);
    assert!(
        matches!(status(&doc).as_str(), "invalid" | "error"),
        "{doc}"
    );
    let (code, doc) = json(&["apply", "/tmp/ok.yaml"]);
    assert_eq!((code, status(&doc)), (0, "changed".into()));
    let first = doc["snapshot"].as_str().expect("snapshot id").to_owned();
    let (code, doc) = json(&["apply", "/tmp/ok.yaml"]);
    assert_eq!((code, status(&doc)), (0, "unchanged".into()));
    let (code, doc) = json(&["apply", "/tmp/fails.yaml"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(status(&doc), "failed");
    assert_eq!(doc["rollback"]["complete"], true);
    assert_eq!(sb.read("/srv/app.conf"), "new\n");
    let (code, doc) = json(&["rollback", &first]);
    assert_eq!((code, status(&doc)), (0, "restored".into()));
    assert_eq!(sb.read("/srv/app.conf"), "old\n");
    let (code, doc) = json(&["snapshots"]);
    assert_eq!((code, status(&doc)), (0, "snapshots".into()));
    assert!(
        doc["snapshots"].as_array().is_some_and(|s| s.len() >= 2),
        "{doc}"
    );
}
