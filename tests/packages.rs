//! End-to-end tests of the `packages` resource with the real dpkg and apt, offline from the
//! local repository `tests/setup-debian.sh` fills: an install and its rollback (the
//! dependencies purged too), a removal and its rollback (reinstalled at the same version),
//! idempotence, the warning when a rollback would need the network, the remote-access
//! guard, and located errors.

use crate::support::apt_cache;
use crate::support::Sandbox;

/// dpkg's status word for `package` (`installed`, `config-files`, `not-installed`), and
/// its version when it has one.
fn status(sb: &Sandbox, package: &str) -> String {
    sb.sh(&format!(
        "dpkg-query -W -f '${{db:Status-Status}} ${{Version}}' {package} 2>/dev/null || echo not-installed"
    ))
    .stdout
    .trim()
    .to_owned()
}

#[test]
fn an_install_applies_once_and_its_rollback_purges_it_with_its_dependencies() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    assert_eq!(status(&sb, "debsums"), "not-installed");
    sb.write("/tmp/pb.yaml", "packages:\n  present: [tree, debsums]\n");

    let plan = sb.plan("/tmp/pb.yaml");
    assert_eq!(plan.changes.len(), 1, "{plan:?}");
    let change = &plan.changes[0];
    assert_eq!(change.target, "install tree, debsums");
    // debsums' perl dependencies come with it, and are named.
    assert!(change.reason.contains("libfile-fnmatch-perl"), "{change:?}");

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(status(&sb, "tree").starts_with("installed "));
    assert!(status(&sb, "debsums").starts_with("installed "));
    assert!(status(&sb, "libfile-fnmatch-perl").starts_with("installed "));
    // The tools work.
    sb.sh("tree -L 1 /etc/apt >/dev/null && debsums -s tree")
        .assert_ok();
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    for package in ["tree", "debsums", "libfile-fnmatch-perl"] {
        assert_eq!(status(&sb, package), "not-installed", "{package}");
    }
}

#[test]
fn a_removal_applies_once_and_its_rollback_reinstalls_the_same_version() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    sb.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q sl tree")
        .assert_ok();
    let version = status(&sb, "sl");
    assert!(version.starts_with("installed "), "{version}");
    sb.write(
        "/tmp/pb.yaml",
        "packages:\n  absent: [sl]\n  present: [tree]\n",
    );

    let plan = sb.plan("/tmp/pb.yaml");
    assert_eq!(plan.changes.len(), 1, "{plan:?}");
    assert_eq!(plan.changes[0].target, "remove sl");
    assert_eq!(plan.unchanged, 1);
    // The local repository holds the .deb: the rollback can reinstall it offline.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(!status(&sb, "sl").starts_with("installed "));
    assert!(!sb.exists("/usr/games/sl"));
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(status(&sb, "sl"), version);
    assert!(sb.exists("/usr/games/sl"));
}

#[test]
fn a_removal_apt_could_not_undo_offline_is_warned_about() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    sb.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q sl && apt-get clean")
        .assert_ok();
    // No source holds sl any more, and apt's cache is empty.
    sb.sh("rm -f /etc/apt/sources.list.d/* && find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete && apt-get -q -o APT::Sandbox::User=root update")
        .assert_ok();
    sb.write("/tmp/pb.yaml", "packages:\n  absent: [sl]\n");
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        run.output().contains("a rollback cannot reinstall sl"),
        "{run}"
    );
}

#[test]
fn a_removal_that_takes_the_ssh_server_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    let before = status(&sb, "openssh-server");
    assert!(before.starts_with("installed "), "{before}");
    // openssh-sftp-server goes, and openssh-server, which depends on it, with it.
    sb.write(
        "/tmp/pb.yaml",
        "packages:\n  absent: [openssh-sftp-server]\n",
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{run}");
    assert!(
        run.stderr.contains("--allow packages-remote-access"),
        "{run}"
    );
    assert!(run.stderr.contains("openssh-server"), "{run}");
    assert_eq!(status(&sb, "openssh-server"), before);
}

#[test]
fn unknown_and_malformed_packages_are_located_errors() {
    let Some(sb) = crate::sandbox!() else { return };
    apt_cache::use_in_sandbox(&sb);
    sb.write(
        "/tmp/pb.yaml",
        "packages:\n  present:\n    - tree\n    - no-such-package-here\n",
    );
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
    assert_ne!(run.status, 0, "{run}");
    assert!(run.stderr.contains("/tmp/pb.yaml:4:7"), "{run}");
    assert!(run.stderr.contains("no-such-package-here"), "{run}");
    sb.write("/tmp/pb.yaml", "packages:\n  absent: [Bad_Name]\n");
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
    assert_ne!(run.status, 0, "{run}");
    assert!(run.stderr.contains("/tmp/pb.yaml:2:"), "{run}");
    assert!(run.stderr.contains("invalid package name"), "{run}");
}
