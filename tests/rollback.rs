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
