//! End-to-end tests of a recursive `files` entry's tree as one step (`set_tree_attrs`):
//! what it changes and leaves alone (symlinks, hard links, deeper entries, another
//! filesystem), its rollback after a fault half-way and by `harden rollback`, saved plans
//! that go stale, and a JSON plan whose size does not grow with the tree.

use crate::support::{Sandbox, HARDEN_IN_SANDBOX as HARDEN};

/// Modes, owners and content below `dir` (not times), entries sorted.
fn content_and_attrs(sb: &Sandbox, dir: &str) -> String {
    sb.sh(&format!("cd {dir} && find . -printf '%m %U %G %y %s %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum"))
        .assert_ok()
        .stdout
}

/// `mode uid gid` of `path`, not following it.
fn attrs(sb: &Sandbox, path: &str) -> String {
    sb.sh(&format!("stat -c '%a %u %g' {path}"))
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

/// `dirs` directories of `files` files each below `root`, mode 0644 (0755 for every tenth).
fn make_tree(sb: &Sandbox, root: &str, dirs: u32, files: u32) {
    sb.sh(&format!(
        "/usr/bin/python3 -c \"
import os
for d in range({dirs}):
    path = '{root}/d%d' % d
    os.makedirs(path, mode=0o755)
    for f in range({files}):
        fd = os.open('%s/f%d' % (path, f), os.O_CREAT | os.O_WRONLY, 0o644)
        os.fchmod(fd, 0o755 if f % 10 == 0 else 0o644)
        os.close(fd)
\""
    ))
    .assert_ok();
}

/// The tree step of `root` in a JSON plan.
fn tree_step(plan: &serde_json::Value, root: &str) -> serde_json::Value {
    let steps: Vec<&serde_json::Value> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["steps"].as_array().expect("steps"))
        .filter(|s| s["op"] == "set_tree_attrs" && s["root"] == root)
        .collect();
    assert_eq!(steps.len(), 1, "{plan:#}");
    steps[0].clone()
}

#[test]
fn a_tree_changes_what_it_owns_and_never_links_mounts_or_deeper_entries() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh(
        "set -e; mkdir -p /srv/tree/a/b /srv/tree/private/inner /srv/tree/mnt; cd /srv/tree; \
         for f in a/one a/b/two private/inner/three keep; do echo $f > $f; chmod 644 $f; done; \
         echo run > a/run; chmod 755 a/run; chown nobody a/b/two; mkfifo a/fifo; chmod 666 a/fifo; \
         chmod 755 a a/b private private/inner mnt; \
         ln -s /etc/shadow a/soft; ln /etc/shadow a/hard; \
         mount -t tmpfs -o mode=755 tmpfs mnt; echo m > mnt/inside; chmod 644 mnt/inside",
    )
    .assert_ok();
    let shadow = sb
        .sh("stat -c '%a %U %G %i' /etc/shadow")
        .assert_ok()
        .stdout;
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/tree, mode: \"u=rwX,g=rX,o=\", group: nogroup, recurse: true }\n  - { path: /srv/tree/keep, mode: \"0400\" }\n  - { path: /srv/tree/private, mode: \"0700\", recurse: true }\n",
    );
    let before = content_and_attrs(&sb, "/srv/tree");

    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let step = tree_step(&plan, "/srv/tree");
    // a, a/b, a/one, a/b/two, a/run, a/fifo, a/soft, a/hard, mnt: keep and private are the
    // deeper entries'. Everything changes group but the symlink, the hard link and mnt.
    assert_eq!(step["entries"], 9, "{step:#}");
    assert_eq!(step["changes"], 6, "{step:#}");
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("skipped 1 file(s) under /srv/tree with more than one hard link"),
        "{warnings}"
    );
    let text = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok().stdout;
    assert!(
        text.contains("6 of 9 entries below /srv/tree change"),
        "{text}"
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    let nogroup = sb
        .sh("getent group nogroup | cut -d: -f3")
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    for (path, mode, uid) in [
        ("/srv/tree/a", "750", "0"),
        ("/srv/tree/a/b", "750", "0"),
        ("/srv/tree/a/one", "640", "0"),
        ("/srv/tree/a/run", "750", "0"),
        ("/srv/tree/a/fifo", "640", "0"),
    ] {
        assert_eq!(
            attrs(&sb, path),
            format!("{mode} {uid} {nogroup}"),
            "{path}"
        );
    }
    let nobody = sb.sh("id -u nobody").assert_ok().stdout.trim().to_owned();
    assert_eq!(
        attrs(&sb, "/srv/tree/a/b/two"),
        format!("640 {nobody} {nogroup}")
    );
    assert_eq!(
        attrs(&sb, "/srv/tree/keep"),
        "400 0 0",
        "the deeper entry decides"
    );
    assert_eq!(attrs(&sb, "/srv/tree/private/inner/three"), "700 0 0");
    assert_eq!(attrs(&sb, "/srv/tree/mnt"), "755 0 0", "another filesystem");
    assert_eq!(
        attrs(&sb, "/srv/tree/mnt/inside"),
        "644 0 0",
        "never entered"
    );
    assert_eq!(
        attrs(&sb, "/srv/tree/a/soft"),
        "777 0 0",
        "a symlink is never changed"
    );
    assert_eq!(
        sb.sh("stat -c '%a %U %G %i' /etc/shadow")
            .assert_ok()
            .stdout,
        shadow
    );
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(content_and_attrs(&sb, "/srv/tree"), before);
    assert_eq!(
        sb.sh("stat -c '%a %U %G %i' /etc/shadow")
            .assert_ok()
            .stdout,
        shadow
    );
}

#[test]
fn a_converged_tree_leaves_no_trace_and_a_changed_one_is_planned_whole() {
    let Some(sb) = crate::sandbox!() else { return };
    make_tree(&sb, "/srv/tree", 4, 1000);
    sb.sh("chmod -R 0700 /srv/tree").assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/tree, mode: \"0700\", recurse: true }\n",
    );
    // The read-only plan walks a converged tree whole, and it is the answer.
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(!sb.exists("/var/lib/harden"), "nothing to do: {run}");

    // Where the read-only plan stops at the first change, the plan applied is made again,
    // whole: it counts every entry of the tree, not those met before the stop.
    sb.sh("chmod 0600 /srv/tree/d3/f999").assert_ok();
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        run.output()
            .contains("1 of 4,004 entries below /srv/tree differ in mode"),
        "{run}"
    );
    assert_eq!(attrs(&sb, "/srv/tree/d3/f999"), "700 0 0");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
}

#[test]
fn a_fault_half_way_through_a_tree_rolls_every_entry_back() {
    let Some(sb) = crate::sandbox!() else { return };
    make_tree(&sb, "/srv/tree", 4, 1000);
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/tree, mode: \"u=rwX,g=rX,o=\", owner: nobody, recurse: true }\n",
    );
    let pristine = content_and_attrs(&sb, "/srv/tree");
    let run = sb.sh(&format!(
        "HARDEN_FAULT_TREE=2100 {HARDEN} apply /tmp/pb.yaml"
    ));
    assert_eq!(run.status, 1, "{run}");
    assert!(run.output().contains("injected fault"), "{run}");
    assert!(
        run.output().contains("rolled back: restored snapshot"),
        "{run}"
    );
    assert!(!sb.exists("/var/lib/harden/journal.json"));
    assert_eq!(content_and_attrs(&sb, "/srv/tree"), pristine);

    // Applied whole, then `harden rollback` restores the tree too, and can itself be undone.
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    let applied = content_and_attrs(&sb, "/srv/tree");
    assert_ne!(applied, pristine);
    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(content_and_attrs(&sb, "/srv/tree"), pristine);
    let undo = sb
        .sh("ls /var/lib/harden/snapshots | tail -1")
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    sb.harden(&["rollback", &undo]).assert_ok();
    assert_eq!(
        content_and_attrs(&sb, "/srv/tree"),
        applied,
        "the rollback is undone"
    );
}

#[test]
fn a_saved_plan_is_stale_when_an_entry_of_its_tree_changes() {
    let Some(sb) = crate::sandbox!() else { return };
    make_tree(&sb, "/srv/tree", 2, 100);
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/tree, mode: \"0700\", recurse: true }\n",
    );
    sb.harden(&["plan", "--out", "/tmp/plan.json", "/tmp/pb.yaml"])
        .assert_ok();
    sb.sh("chmod 600 /srv/tree/d1/f50").assert_ok();
    let before = content_and_attrs(&sb, "/srv/tree");
    let refused = sb.harden(&["apply", "/tmp/plan.json"]).assert_status(4);
    assert!(
        refused
            .output()
            .contains("/srv/tree: entries below it changed"),
        "{refused}"
    );
    assert_eq!(
        content_and_attrs(&sb, "/srv/tree"),
        before,
        "nothing changed"
    );

    sb.harden(&["plan", "--out", "/tmp/plan.json", "/tmp/pb.yaml"])
        .assert_ok();
    sb.harden(&["apply", "/tmp/plan.json"]).assert_ok();
    assert_eq!(attrs(&sb, "/srv/tree/d0/f3"), "700 0 0");
}

#[test]
fn the_json_plan_of_a_tree_does_not_grow_with_the_tree() {
    let Some(sb) = crate::sandbox!() else { return };
    make_tree(&sb, "/srv/small", 2, 10);
    make_tree(&sb, "/srv/large", 20, 1000);
    let size = |root: &str| {
        sb.write(
            "/tmp/pb.yaml",
            &format!("files:\n  - {{ path: {root}, mode: \"0700\", recurse: true }}\n"),
        );
        let out = sb
            .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
            .assert_ok();
        assert_eq!(
            tree_step(&out.json(), root)["examples"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );
        out.stdout.len()
    };
    let (small, large) = (size("/srv/small"), size("/srv/large"));
    assert!(
        large.abs_diff(small) < 64,
        "a plan of 20,020 entries is {large} bytes, one of 22 is {small}"
    );
}
