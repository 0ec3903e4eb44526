//! Build script: records the commit for `--version`, and renders what the Debian package
//! ships beside the binary (man page, shell completions, examples) from the sources.
//!
//! The package's files are written to `<target>/<profile>/harden-assets/`, where cargo-deb
//! finds them under its `target/release/` prefix (it maps that prefix to the real target
//! directory); `OUT_DIR` itself has a hash in its name that a manifest cannot name.

// The build script reports failures by panicking (cargo shows the message and stops), talks
// to cargo on stdout, and writes build outputs, not the managed system: the one-door rule
// for files and commands is for the product.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory as _;

#[allow(dead_code)]
#[path = "crates/core/args.rs"]
mod args;

/// Where the drop-in of `examples/systemd/` expects the binary (a hand install), and where
/// the package puts it.
const EXAMPLE_BINARY: &str = "/usr/local/sbin/harden";
const PACKAGE_BINARY: &str = "/usr/sbin/harden";

/// The schema line of the playbooks in this repository, and of their copies in the package.
const REPO_SCHEMA: &str = "$schema=../crates/planner/playbook.schema.json";
const PACKAGE_SCHEMA: &str = "$schema=/usr/share/harden/playbook.schema.json";

fn main() {
    let version = version();
    println!("cargo:rustc-env=HARDEN_VERSION={version}");
    let assets = assets_dir();
    fs::create_dir_all(assets.join("completions")).expect("create the assets directory");
    fs::create_dir_all(assets.join("examples")).expect("create the assets directory");
    fs::create_dir_all(assets.join("playbooks")).expect("create the assets directory");
    // The version is only known at run time here: leak it into the 'static str clap takes.
    let command = args::Args::command().version(&*String::leak(version));
    let page = man_page(command.clone());
    write(&assets.join("harden.8"), &page);
    write(&assets.join("harden.8.gz"), &gzip(&page));
    completions(command, &assets.join("completions"));
    auto_correct(&assets.join("examples"));
    playbooks(&assets.join("playbooks"));
    for path in [
        "crates/core/args.rs",
        "examples/systemd",
        "playbooks",
        "build.rs",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// `0.1.0 (commit 0123abcd…)`: the package version and the commit of the tree it was built
/// from. `HARDEN_COMMIT` names it for builds from a tree without git (a source tarball).
fn version() -> String {
    println!("cargo:rerun-if-env-changed=HARDEN_COMMIT");
    let commit = std::env::var("HARDEN_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    format!("{} (commit {commit})", env!("CARGO_PKG_VERSION"))
}

/// The commit git reports for HEAD, rebuilding whenever HEAD moves.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    // HEAD itself (a checkout), the branch it points at (a commit), packed refs (a gc).
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        println!("cargo:rerun-if-changed={packed}");
    }
    Some(commit)
}

/// `<target>/<profile>/harden-assets`: OUT_DIR is `<target>/<profile>/build/<pkg>-<hash>/out`.
fn assets_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let profile_dir = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is inside the target directory");
    profile_dir.join("harden-assets")
}

/// Writes `bytes` to `path` only when they differ, so that an unchanged page keeps its time.
fn write(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// harden(8): the command's own page, then a section per subcommand, then what an operator
/// looks for in section 8 (exit codes, files, environment).
fn man_page(command: clap::Command) -> Vec<u8> {
    let mut command = command;
    command.build();
    let man = clap_mangen::Man::new(command.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("harden {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page).expect("render");
    man.render_name_section(&mut page).expect("render");
    man.render_synopsis_section(&mut page).expect("render");
    man.render_description_section(&mut page).expect("render");
    page.extend_from_slice(DESCRIPTION.as_bytes());
    man.render_options_section(&mut page).expect("render");
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        subcommand_section(&mut page, sub);
    }
    page.extend_from_slice(TRAILER.as_bytes());
    man.render_version_section(&mut page).expect("render");
    page
}

/// `.SH "HARDEN PLAN"`: the subcommand's synopsis, what it does, and its own options (the
/// global ones are in OPTIONS above).
fn subcommand_section(page: &mut Vec<u8>, sub: &clap::Command) {
    let own = sub.clone().mut_args(|arg| {
        let help = arg.get_id() == "help";
        if arg.is_global_set() || help {
            arg.hide(true)
        } else {
            arg
        }
    });
    let man = clap_mangen::Man::new(own);
    let name = sub.get_bin_name().unwrap_or(sub.get_name()).to_uppercase();
    writeln!(page, ".SH \"{name}\"").expect("render");
    type Render = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let parts: [(Render, bool); 3] = [
        (clap_mangen::Man::render_synopsis_section, false),
        (clap_mangen::Man::render_description_section, false),
        (clap_mangen::Man::render_options_section, true),
    ];
    for (render, keep_heading) in parts {
        let mut part = Vec::new();
        render(&man, &mut part).expect("render");
        let text = String::from_utf8(part).expect("roff is text");
        // Each part is a page of its own: roff's preamble, then its .SH line. Here the
        // heading becomes a subsection, or goes.
        let Some(start) = text.find(".SH ") else {
            continue;
        };
        let (heading, body) = text[start..]
            .split_once('\n')
            .unwrap_or((&text[start..], ""));
        if keep_heading && !body.trim().is_empty() {
            let title = heading.trim_start_matches(".SH").trim();
            let _ = writeln!(page, ".SS {title}");
        }
        if !body.trim().is_empty() {
            page.extend_from_slice(b".PP\n");
            page.extend_from_slice(body.as_bytes());
        }
    }
}

/// Said once at the top of the page, after clap's one-line description.
const DESCRIPTION: &str = r#".PP
A playbook (YAML) states the security posture wanted: file modes and owners, sshd settings,
the ufw firewall, fail2ban jails, automatic security updates.
\fBharden plan\fR shows what would change on the live system;
\fBharden apply\fR makes exactly those changes, checks them with the daemons' own checkers,
reloads what must reload, and rolls everything back from a snapshot if any step fails.
The playbook format is described in /usr/share/doc/harden/README.md, and as a JSON Schema in
/usr/share/harden/playbook.schema.json (also printed by \fBharden schema\fR).
"#;

/// Exit codes, files and environment, as DESIGN.md and the README state them.
const TRAILER: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success; for \fBplan \-\-detailed\-exitcode\fR, nothing to change.
.TP
\fB1\fR
Error: an invalid playbook, a refused plan, or an apply that failed and was rolled back.
.TP
\fB2\fR
With \fB\-\-detailed\-exitcode\fR: changes are pending.
.TP
\fB3\fR
An apply failed and its rollback is incomplete: see the messages, and \fBharden snapshots\fR.
.TP
\fB4\fR
\fBharden apply\fR \fIFILE\fR refused a saved plan: stale (a path or unit it assumed changed),
or made on another machine or by another harden version. Nothing was changed.
.TP
\fB5\fR
An earlier \fBapply \-\-confirm\-within\fR waits for \fBharden confirm\fR; nothing was changed.
.SH FILES
.TP
\fI/etc/harden/site.yaml\fR
The site playbook that the drift check (\fBharden\-drift.service\fR) compares the host with.
The package installs a commented example that only checks file modes; edit it
(a conffile: upgrades keep your version).
.TP
\fI/var/lib/harden/\fR
Snapshots taken by \fBharden apply\fR and the journal of an apply in progress.
Kept when the package is purged: \fBharden rollback\fR can still restore them after a reinstall.
.TP
\fI/usr/share/harden/playbook.schema.json\fR
The JSON Schema of the playbook format, for editors.
.TP
\fI/usr/share/doc/harden/playbooks/\fR
Playbooks for common stacks, and the built-in baseline.
.TP
\fI/usr/lib/systemd/system/harden\-drift.timer\fR
A daily drift check, installed but not enabled: \fBsystemctl enable \-\-now harden\-drift.timer\fR.
.SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
When set, text output has no colour (it has none on a non\-terminal either).
.TP
\fBRUST_LOG\fR
Which log records to keep (for example \fBharden=debug\fR); overrides \fB\-v\fR and \fB\-q\fR.
Records go to the journal (identifier \fBharden\fR) when it runs, to stderr otherwise.
.SH "SEE ALSO"
\fBsshd_config\fR(5), \fBufw\fR(8), \fBfail2ban\fR(1), \fBunattended\-upgrade\fR(8),
\fBsystemd.timer\fR(5)
"#;

/// `gzip -9n`, as Debian policy wants man pages (cargo-deb compresses only the man pages it
/// did not build).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-9n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run gzip (Debian's gzip package)");
    let mut stdin = child.stdin.take().expect("gzip's stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("gzip");
    writer.join().expect("feed gzip").expect("feed gzip");
    assert!(out.status.success(), "gzip failed");
    out.stdout
}

/// bash, zsh and fish completion scripts, under the names their shells load them by.
fn completions(command: clap::Command, dir: &Path) {
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "harden"),
        (Shell::Zsh, "_harden"),
        (Shell::Fish, "harden.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command.clone(), "harden", &mut script);
        write(&dir.join(file), &script);
    }
}

/// The auto-correct drop-in of `examples/systemd/`, running the packaged binary. (The units
/// themselves are `debian/harden-drift.*`: cargo-deb looks for units before it builds.)
fn auto_correct(dir: &Path) {
    let source = "examples/systemd/harden-drift.service.d/auto-correct.conf";
    let text = fs::read_to_string(source).unwrap_or_else(|e| panic!("read {source}: {e}"));
    write(
        &dir.join("auto-correct.conf"),
        text.replace(EXAMPLE_BINARY, PACKAGE_BINARY).as_bytes(),
    );
}

/// The playbooks of `playbooks/`, their schema line naming the installed schema.
fn playbooks(dir: &Path) {
    let mut entries: Vec<_> = fs::read_dir("playbooks")
        .expect("read playbooks/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = fs::read_to_string(&path).expect("read a playbook");
        let name = path.file_name().expect("a file name");
        write(
            &dir.join(name),
            text.replacen(REPO_SCHEMA, PACKAGE_SCHEMA, 1).as_bytes(),
        );
    }
}
