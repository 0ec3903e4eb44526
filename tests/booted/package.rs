//! The Debian package built from this tree (`cargo deb`), installed with apt on a fresh copy
//! of each system: the man page renders, bash completes, `--version` names the commit, the
//! drift timer is installed but off and works once enabled, the binary is stripped, and a
//! purge leaves none of the package's files behind (snapshots in /var/lib/harden stay).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::support::booted::{Booted, Os};

/// Where the package is put in a copy, as an operator bakes it into an image (under its own
/// file name).
const DEB_DIR: &str = "/var/cache/harden";

/// Paths named like the package's files, in the trees a package installs into.
const FIND_OURS: &str = "find /etc /usr /var/lib -xdev \\( -name harden -o -name 'harden[-_.]*' \
                         -o -name _harden \\) -not -path '/var/lib/dpkg/*' 2>/dev/null | sort";

/// The package, built once per test run by `cargo deb` (cargo's fingerprints rebuild only
/// what changed); `None` when cargo-deb is not installed, outside CI.
pub(crate) fn package() -> Option<&'static PathBuf> {
    static DEB_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    DEB_FILE.get_or_init(build_package).as_ref()
}

/// `HARDEN_DEB` names a package already built from this tree (`.ci/run` builds it once for
/// lintian and this test); otherwise `cargo deb` builds it.
fn build_package() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HARDEN_DEB") {
        return Some(PathBuf::from(path));
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let has_cargo_deb = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_deb {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-deb is not installed: `cargo install --locked cargo-deb` (.ci/run does)"
        );
        eprintln!("skipped: cargo-deb is not installed (cargo install --locked cargo-deb)");
        return None;
    }
    let out = Command::new("cargo")
        .args(["deb", "--locked"])
        .current_dir(root)
        .output()
        .expect("run cargo deb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo deb failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // cargo-deb prints the path of the package it wrote, last.
    let path = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .expect("cargo deb names the package it wrote");
    Some(path)
}

/// `harden --version` of the binary under test: the same tree and commit as the package.
fn expected_version() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_harden"))
        .arg("--version")
        .output()
        .expect("run harden --version");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// The commit git reports for this tree, if it is a git checkout.
fn head_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `script` and returns its stdout, panicking with everything it said if it fails.
#[track_caller]
fn ok(m: &Booted, script: &str) -> String {
    m.sh(script).assert_ok().stdout
}

fn the_package_installs_works_and_purges(os: Os) {
    let Some(deb) = package() else {
        return;
    };
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    let bytes = std::fs::read(deb).expect("read the package");
    let name = deb
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    let deb = format!("{DEB_DIR}/{name}");
    m.chroot_write(&deb, &bytes);
    m.boot();
    let before = ok(&m, FIND_OURS);

    // Installed with apt from the file (the copy has no network: nothing else is needed).
    ok(
        &m,
        &format!("DEBIAN_FRONTEND=noninteractive apt-get install -y {deb}"),
    );
    let listed = ok(&m, "dpkg-query -L harden");
    for path in [
        "/usr/sbin/harden",
        "/usr/share/man/man8/harden.8.gz",
        "/usr/share/bash-completion/completions/harden",
        "/usr/share/zsh/vendor-completions/_harden",
        "/usr/share/fish/vendor_completions.d/harden.fish",
        "/usr/lib/systemd/system/harden-drift.service",
        "/usr/lib/systemd/system/harden-drift.timer",
        "/etc/harden/site.yaml",
        "/usr/share/harden/playbook.schema.json",
        "/usr/share/doc/harden/README.md",
        "/usr/share/doc/harden/playbooks/baseline.yaml",
    ] {
        assert!(
            listed.lines().any(|l| l == path),
            "{path} is not in the package:\n{listed}"
        );
    }
    assert_eq!(
        ok(&m, "dpkg-query -W -f='${Conffiles}' harden")
            .split_whitespace()
            .next(),
        Some("/etc/harden/site.yaml"),
        "the site playbook is not a conffile"
    );
    assert_eq!(ok(&m, "stat -c %a /etc/harden/site.yaml").trim(), "600");

    check_binary(&m);
    check_man_page(&m);
    check_completion(&m);
    check_units(&m);

    // A snapshot harden takes is the operator's data, not the package's: purge keeps it.
    ok(&m, "/usr/sbin/harden apply /etc/harden/site.yaml");
    let snapshots = ok(&m, "ls /var/lib/harden/snapshots");
    assert!(!snapshots.trim().is_empty(), "apply took no snapshot");

    let purge = ok(&m, "DEBIAN_FRONTEND=noninteractive apt-get purge -y harden");
    let after = ok(&m, FIND_OURS);
    let left: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .filter(|l| *l != "/var/lib/harden")
        .collect();
    assert!(left.is_empty(), "purge left {left:?} behind\n{purge}");
    for path in listed.lines().filter(|p| !before.lines().any(|b| b == *p)) {
        // Directories the system had before (/usr/sbin, /etc) stay, of course.
        let gone = m.sh(&format!("test -e '{path}' && ! test -d '{path}'"));
        assert!(!gone.success(), "purge left {path}");
    }
    m.sh("test -e /etc/harden").assert_fails();
    m.sh("test -e /etc/systemd/system/timers.target.wants/harden-drift.timer")
        .assert_fails();
    assert_eq!(ok(&m, "ls /var/lib/harden/snapshots"), snapshots);
}

/// `/usr/sbin/harden --version` names the commit of this tree; the binary is stripped.
fn check_binary(m: &Booted) {
    let version = ok(m, "/usr/sbin/harden --version");
    assert_eq!(version.trim(), expected_version());
    let (head, commit) = version
        .trim()
        .split_once(" (commit ")
        .expect("harden VERSION (commit COMMIT)");
    assert_eq!(head, format!("harden {}", env!("CARGO_PKG_VERSION")));
    let commit = commit.trim_end_matches(')');
    assert!(
        commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "not a commit: {version}"
    );
    if let Some(head) = head_commit() {
        assert_eq!(commit, head, "the package was built from another commit");
    }
    // Stripped: no symbol table and no line tables (the release build has both).
    let sections = ok(m, &format!("python3 -c '{ELF_SECTIONS}' /usr/sbin/harden"));
    assert!(sections.contains(".text"), "{sections}");
    assert!(
        !sections
            .split_whitespace()
            .any(|s| s == ".symtab" || s.starts_with(".debug")),
        "the installed binary is not stripped: {sections}"
    );
    let size: u64 = ok(m, "stat -c %s /usr/sbin/harden")
        .trim()
        .parse()
        .expect("a size");
    assert!(size < 20 << 20, "the installed binary is {size} bytes");
}

/// Prints the section names of a 64-bit little-endian ELF file (binutils is not on every
/// system; python3 is).
const ELF_SECTIONS: &str = "import struct, sys
d = open(sys.argv[1], \"rb\").read()
shoff = struct.unpack_from(\"<Q\", d, 0x28)[0]
size, count, names = struct.unpack_from(\"<HHH\", d, 0x3A)
header = lambda i: struct.unpack_from(\"<IIQQQQ\", d, shoff + i * size)
base = header(names)[4]
name = lambda i: d[base + header(i)[0]:d.index(0, base + header(i)[0])].decode()
print(\" \".join(name(i) for i in range(count)))";

/// `man harden` renders, with a section per subcommand and the version.
fn check_man_page(m: &Booted) {
    let page = ok(m, "MANWIDTH=100 MANPAGER=cat man harden 2>&1");
    for needle in [
        "harden(8)",
        "HARDEN PLAN",
        "HARDEN APPLY",
        "HARDEN ROLLBACK",
        "HARDEN SNAPSHOTS",
        "HARDEN VALIDATE",
        "HARDEN COMPLETIONS",
        "HARDEN SCHEMA",
        "EXIT STATUS",
        "--detailed-exitcode",
    ] {
        assert!(
            page.contains(needle),
            "man harden has no {needle:?}:\n{page}"
        );
    }
    assert!(
        page.contains(&expected_version()["harden ".len()..]),
        "{page}"
    );
    assert_eq!(
        ok(m, "man -w harden").trim(),
        "/usr/share/man/man8/harden.8.gz"
    );
}

/// bash completes `harden`: an interactive shell of a user (whose .bashrc, from /etc/skel,
/// loads bash-completion) loads harden's completion as a first Tab would, by name from the
/// package's file, and `complete -p` shows it.
fn check_completion(m: &Booted) {
    ok(m, "useradd -m -s /bin/bash reader");
    let run =
        m.sh("runuser -u reader -- bash -ic '__load_completion harden; complete -p harden' 2>&1");
    let shown = run.stdout.lines().find(|l| l.starts_with("complete "));
    assert!(
        shown.is_some_and(|l| l.contains("-F _harden") && l.ends_with(" harden")),
        "no completion for harden: {run}"
    );
    let words = m.sh(
        "runuser -u reader -- bash -ic 'COMP_WORDS=(harden pl); COMP_CWORD=1; COMP_LINE=\"harden pl\"; COMP_POINT=9; __load_completion harden; _harden harden pl harden; printf \"%s\\n\" \"${COMPREPLY[@]}\"' 2>/dev/null",
    );
    assert!(
        words.stdout.lines().any(|l| l.trim() == "plan"),
        "`harden pl<Tab>` does not complete to plan: {words}"
    );
}

/// The drift units: installed, not enabled; once enabled the timer is active and the service
/// runs against the packaged site playbook.
fn check_units(m: &Booted) {
    let state = m.exec(&["systemctl", "is-enabled", "harden-drift.timer"]);
    assert_eq!(state.stdout.trim(), "disabled", "{state}");
    ok(m, "systemctl enable --now harden-drift.timer");
    assert_eq!(
        ok(m, "systemctl is-active harden-drift.timer").trim(),
        "active"
    );
    let start = m.exec(&["systemctl", "start", "harden-drift.service"]);
    let show = ok(
        m,
        "systemctl show -p Result -p ExecMainStatus -p ExecMainStartTimestampMonotonic harden-drift.service",
    );
    let journal = ok(m, "journalctl -b --no-pager -o cat -u harden-drift.service");
    assert!(
        start.success() && show.contains("Result=success\n"),
        "harden-drift.service failed: {start}\n{show}\n{journal}"
    );
    assert!(
        !show.contains("ExecMainStartTimestampMonotonic=0\n"),
        "the service did not run (its condition?): {show}"
    );
    assert!(
        journal.contains("no drift: this host matches /etc/harden/site.yaml")
            || journal.contains("DRIFT DETECTED"),
        "{journal}"
    );
}

#[test]
fn debian12_the_package_installs_works_and_purges() {
    the_package_installs_works_and_purges(Os::Debian12);
}

#[test]
fn debian13_the_package_installs_works_and_purges() {
    the_package_installs_works_and_purges(Os::Debian13);
}

/// The lines systemd reads from a unit (comments and blank lines dropped), with the binary's
/// path as the package installs it.
fn unit_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("/usr/local/sbin/harden", "/usr/sbin/harden"))
        .collect()
}

/// The packaged units (`debian/harden-drift.*`) are the units of `examples/systemd/`, which
/// the booted tier tests in depth (`drift.rs`), running `/usr/sbin/harden`: only their header
/// comments differ.
#[test]
fn the_packaged_units_are_the_examples_running_the_packaged_binary() {
    for unit in ["harden-drift.service", "harden-drift.timer"] {
        let root = env!("CARGO_MANIFEST_DIR");
        let example = std::fs::read_to_string(format!("{root}/examples/systemd/{unit}"))
            .expect("read the example unit");
        let packaged = std::fs::read_to_string(format!("{root}/debian/{unit}"))
            .expect("read the packaged unit");
        assert_eq!(
            unit_lines(&packaged),
            unit_lines(&example),
            "debian/{unit} differs from examples/systemd/{unit}"
        );
        assert!(
            !packaged.contains("/usr/local/sbin/harden"),
            "debian/{unit}"
        );
    }
}

/// `harden completions SHELL` prints what the package installs for SHELL (both come from
/// the clap definitions: the binary at run time, build.rs at build time, into the
/// `harden-assets` directory beside the binary).
#[test]
fn harden_completions_prints_the_packaged_scripts() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_harden"));
    let assets = binary
        .parent()
        .expect("the binary's directory")
        .join("harden-assets/completions");
    for (shell, file, marker) in [
        ("bash", "harden", "complete -F _harden"),
        ("zsh", "_harden", "#compdef harden"),
        ("fish", "harden.fish", "complete -c harden"),
    ] {
        let out = Command::new(binary)
            .args(["completions", shell])
            .output()
            .expect("run harden completions");
        assert!(out.status.success(), "harden completions {shell}: {out:?}");
        let printed = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(
            printed.contains(marker),
            "{shell}: no {marker:?} in\n{printed}"
        );
        assert!(
            printed.contains("validate"),
            "{shell} does not complete the commands"
        );
        let packaged =
            std::fs::read_to_string(assets.join(file)).expect("read the packaged script");
        assert_eq!(
            printed, packaged,
            "harden completions {shell} differs from {file}"
        );
    }
    let refused = Command::new(binary)
        .args(["completions", "tcsh"])
        .output()
        .expect("run harden completions");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}
