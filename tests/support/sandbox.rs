//! A disposable copy of this machine for end-to-end tests.
//!
//! [`Sandbox::new`] builds, in well under a second:
//!
//! - a *holder* process, started with `unshare --mount --net --pid --uts --ipc
//!   --fork --kill-child --propagation private`; it is PID 1 of a new PID
//!   namespace and keeps the namespaces alive between commands, so daemons
//!   (sshd, fail2ban-server, ...) started by one command are still there for
//!   the next. It reaps orphans (so no `<defunct>` daemons linger) and exits
//!   when its stdin (a pipe held by the test) closes;
//! - inside that mount namespace only: a tmpfs on a fresh host directory
//!   `/tmp/harden-sandbox-*`, holding `upper`, `work` and `merged`, and an
//!   overlay `lowerdir=/,upperdir=upper,workdir=work` on `merged`: the
//!   machine's root filesystem, copy-on-write;
//! - fresh mounts on `merged`: `/proc` (of the new PID namespace; its `sys`
//!   is read-only except `sys/net`, which is per network namespace, so a
//!   `sysctl` of a kernel-wide knob fails instead of changing the host),
//!   `/dev` (a tmpfs with null, zero, full, random, urandom, tty, a private
//!   devpts and the usual symlinks), `/run` (tmpfs with `lock` and `sshd`, as
//!   on a booted Debian), `/tmp` (tmpfs, 1777), `/sys` (sysfs of the new
//!   network namespace, read-only);
//! - the binary under test bind-mounted read-only at
//!   [`HARDEN_IN_SANDBOX`] (`/run/harden-test/bin/harden`, on the `/run`
//!   tmpfs);
//! - `lo` up in the new network namespace, and nothing else: no route out.
//!
//! Setup writes nothing to the overlay's upper layer, so
//! [`Sandbox::upper_entries`] lists exactly what the test's commands changed.
//!
//! Each command enters with `nsenter --target <holder> --mount --net --pid
//! --uts --ipc`, drops a few capabilities that reach past every namespace
//! (loading kernel modules, setting the clock, raw I/O, audit rules,
//! AppArmor policy, the kernel log; see [`DROPPED_CAPS`]) with `setpriv
//! --bounding-set`, then `chroot`s into `merged` and runs with a clean
//! environment (see [`SANDBOX_PATH`]), cwd `/`, stdin `/dev/null` unless
//! given.
//!
//! Safety, since this runs as root on a real machine:
//!
//! - the setup script refuses to mount anything unless it is PID 1 of a new
//!   PID namespace and in a mount namespace other than the test's;
//! - once it is up, and again before *every* command, the test checks from
//!   the host that the holder is still the process it started (same
//!   namespaces, none of them the test's own) and that, in its mount
//!   namespace, `merged` is an overlay with `lowerdir=/` and the sandbox's
//!   `upper`, on the sandbox's tmpfs; otherwise it panics without running
//!   anything;
//! - the only host path written is the sandbox directory itself: created
//!   empty, mounted on only inside the private namespace, and removed with a
//!   non-recursive `rmdir` after teardown (never a recursive delete);
//! - teardown ([`Drop`], which also runs when the test panics) closes the
//!   holder's stdin and waits for `unshare` to exit; PID 1 exiting makes the
//!   kernel kill every process in the namespace, daemons included, and the
//!   mounts vanish with the mount namespace. If the holder does not go within
//!   five seconds it is killed. If the test process itself dies, the pipe
//!   closes and the sandbox goes the same way (only the empty directory may
//!   remain).
//!
//! Reading and writing files: the mounts are private to the sandbox's mount
//! namespace, so `merged` is not visible at its host path. [`Sandbox::write`],
//! [`Sandbox::read`] and [`Sandbox::exists`] therefore go through commands
//! inside the chroot (so symlinks resolve inside the sandbox).
//! [`Sandbox::host_path`] gives `/proc/<holder>/root/<merged>/<path>`, which
//! does reach the sandbox's files from the host, but an *absolute symlink* on
//! that path resolves against the host's root: use it only to inspect
//! (preferably with `symlink_metadata`), never to write.
//!
//! Commands whose background children keep stdout/stderr open (`daemon &`)
//! still return: the output is collected until the command exits plus a
//! short grace period ([`OUTPUT_GRACE`]). Redirect background output
//! (`>/dev/null 2>&1 &`) to avoid that wait.
//!
//! Limits worth knowing: there is no systemd (no `systemctl`), no syslog
//! (`/dev/log` does not exist: start `sshd -E /var/log/auth.log` to get its
//! log in a file), and the kernel is the host's. The overlay covers the
//! host's root filesystem only: another filesystem mounted on the host (a
//! separate `/home`, `/boot`, ...) shows as an empty directory inside. The
//! host's files are read live, so a host file changed while a sandbox runs
//! may or may not show the change there.

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `PATH` of every command run in a sandbox or a peer.
pub const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the binary under test is, inside the sandbox.
pub const HARDEN_IN_SANDBOX: &str = "/run/harden-test/bin/harden";

/// How long one command may run before the test fails (see
/// [`Sandbox::set_timeout`]).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// How long output is still read after a command exited, for background
/// children that hold its stdout/stderr open.
pub const OUTPUT_GRACE: Duration = Duration::from_millis(250);

/// Capabilities removed from the bounding set of every command: those whose
/// effect reaches past the namespaces (host kernel modules, clock, raw
/// devices, audit rules, LSM policy, kernel log, reboot).
pub const DROPPED_CAPS: &str = "-sys_module,-sys_rawio,-sys_time,-sys_boot,-audit_control,\
                                -mac_admin,-mac_override,-syslog,-wake_alarm";

/// The binary under test, on the host.
pub(super) const HARDEN_ON_HOST: &str = env!("CARGO_BIN_EXE_harden");

/// `PATH` for the host tools that build and enter the sandbox.
pub(super) const HOST_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long building the namespaces may take before the test fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The namespaces the sandbox and its peers get, as named in `/proc/PID/ns`
/// and as `nsenter` flags.
const NAMESPACES: [(&str, &str); 5] = [
    ("mnt", "--mount"),
    ("net", "--net"),
    ("pid", "--pid"),
    ("uts", "--uts"),
    ("ipc", "--ipc"),
];

/// Addresses of the veth pairs to peers: (sandbox side, peer side), each a
/// /24 in a documentation range that is never routed.
const PEER_NETS: [(&str, &str); 3] = [
    ("192.0.2.1", "192.0.2.2"),
    ("198.51.100.1", "198.51.100.2"),
    ("203.0.113.1", "203.0.113.2"),
];

/// PID 1 of the namespaces once they are set up: reaps orphans, exits when
/// stdin reaches EOF (the test dropped the pipe, or died).
const REAPER: &str = r#"
$SIG{CHLD} = sub { 1 while waitpid(-1, 1) > 0 };
for (;;) {
    my $rin = ""; vec($rin, 0, 1) = 1;
    my $n = select(my $rout = $rin, undef, undef, 1);
    1 while waitpid(-1, 1) > 0;
    next if $n <= 0;
    my $got = sysread(STDIN, my $buf, 4096);
    next if !defined($got) && $!{EINTR};
    exit 0 if !$got;
}
"#;

/// Checks shared by both setup scripts: run by `sh -c SCRIPT NAME
/// HOST_MNT_NS REAPER ARGS...`; prints `ready <host pid>` when done, and
/// before that any warning or error (stderr goes to stdout).
const SETUP_PRELUDE: &str = r#"
set -eu
exec 2>&1
host_mnt_ns=$1
reaper=$2
shift 2
if [ "$$" != 1 ]; then
    echo "$0: not PID 1 of a new PID namespace; refusing to go on" >&2
    exit 1
fi
if [ "$(readlink /proc/self/ns/mnt)" = "$host_mnt_ns" ]; then
    echo "$0: still in the test's mount namespace; refusing to go on" >&2
    exit 1
fi
# /proc is still the host's here, so /proc/self is this shell's host PID.
read -r host_pid _ < /proc/self/stat
"#;

/// The sandbox's setup, after [`SETUP_PRELUDE`]; `$1` is the sandbox
/// directory, `$2` the binary under test.
const SANDBOX_SETUP: &str = r#"
dir=$1
bin=$2
m=$dir/merged
mount -t tmpfs -o mode=0700 harden-sandbox "$dir"
mkdir "$dir/upper" "$dir/work" "$m"
mount -t overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" overlay "$m"

mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
mount --bind "$m/proc/sys" "$m/proc/sys"
mount -o remount,bind,ro "$m/proc/sys"
mount --bind "$m/proc/sys/net" "$m/proc/sys/net"
mount -o remount,bind,rw "$m/proc/sys/net"
if [ -e "$m/proc/sysrq-trigger" ]; then
    mount --bind "$m/proc/sysrq-trigger" "$m/proc/sysrq-trigger"
    mount -o remount,bind,ro "$m/proc/sysrq-trigger"
fi

mount -t tmpfs -o mode=0755,nosuid,size=16m harden-sandbox-dev "$m/dev"
mknod -m 0666 "$m/dev/null" c 1 3
mknod -m 0666 "$m/dev/zero" c 1 5
mknod -m 0666 "$m/dev/full" c 1 7
mknod -m 0666 "$m/dev/random" c 1 8
mknod -m 0666 "$m/dev/urandom" c 1 9
mknod -m 0666 "$m/dev/tty" c 5 0
mkdir -m 0755 "$m/dev/pts"
mkdir -m 1777 "$m/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
ln -s pts/ptmx "$m/dev/ptmx"
ln -s /proc/self/fd "$m/dev/fd"
ln -s /proc/self/fd/0 "$m/dev/stdin"
ln -s /proc/self/fd/1 "$m/dev/stdout"
ln -s /proc/self/fd/2 "$m/dev/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev harden-sandbox-run "$m/run"
mkdir -m 1777 "$m/run/lock"
mkdir -m 0755 "$m/run/sshd"
mkdir -p -m 0755 "$m/run/harden-test/bin"
: > "$m/run/harden-test/bin/harden"
mount --bind "$bin" "$m/run/harden-test/bin/harden"
mount -o remount,bind,ro "$m/run/harden-test/bin/harden"

mount -t tmpfs -o mode=1777,nosuid,nodev harden-sandbox-tmp "$m/tmp"
if ! mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"; then
    echo "$0: warning: could not mount sysfs on /sys" >&2
fi

ip link set lo up
echo "ready $host_pid"
exec perl -e "$reaper" >/dev/null 2>&1
"#;

/// A peer's setup, after [`SETUP_PRELUDE`]: the host's filesystem, read-only,
/// with private `/proc`, `/sys`, `/tmp`, `/run`, `/dev/shm`.
const PEER_SETUP: &str = r#"
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777,nosuid,nodev harden-peer-tmp /tmp
mount -t tmpfs -o mode=0755,nosuid,nodev harden-peer-run /run
mount -t tmpfs -o mode=1777,nosuid,nodev harden-peer-shm /dev/shm
if ! mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys; then
    echo "$0: warning: could not mount sysfs on /sys" >&2
fi
ip link set lo up
echo "ready $host_pid"
exec perl -e "$reaper" >/dev/null 2>&1
"#;

/// Whether this process runs with effective UID 0.
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// The root rule of the end-to-end tests: true when root; otherwise panics
/// if `CI` is set, else prints why the test is skipped and returns false.
pub fn root_available() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("end-to-end tests need root; run as root (CI is set, so this fails instead of skipping)");
    }
    eprintln!("skipping: end-to-end tests need root");
    false
}

/// Returns from the calling test unless it can run as root (see
/// [`root_available`]). Exported at the crate root: `crate::require_root!()`.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::support::root_available() {
            return;
        }
    };
}

/// `Some(Sandbox)`, or `None` (after printing why) when the test must be
/// skipped for want of root: `let Some(sb) = crate::sandbox!() else { return
/// };`. Exported at the crate root; `use crate::support::*` also brings it.
#[macro_export]
macro_rules! sandbox {
    () => {
        $crate::support::Sandbox::for_test()
    };
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Exit status; 128 + N when killed by signal N.
    pub status: i32,
    /// Standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

/// The `assert_*` methods return a copy of the run, so that both
/// `let run = sb.sh(..).assert_ok();` and `run.assert_ok(); run.stdout` work.
impl Run {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panics, showing status, stdout and stderr, unless the command succeeded.
    #[track_caller]
    pub fn assert_ok(&self) -> Run {
        assert!(self.success(), "command failed: {self}");
        self.clone()
    }

    /// Panics, showing status, stdout and stderr, if the command succeeded.
    #[track_caller]
    pub fn assert_fails(&self) -> Run {
        assert!(
            !self.success(),
            "command succeeded but should have failed: {self}"
        );
        self.clone()
    }

    /// Panics, showing status, stdout and stderr, unless the command exited
    /// with `status`.
    #[track_caller]
    pub fn assert_status(&self, status: i32) -> Run {
        assert!(
            self.status == status,
            "expected exit status {status}, got {self}"
        );
        self.clone()
    }

    /// Panics unless stdout contains `needle`.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}: {self}"
        );
        self.clone()
    }

    /// Panics unless stderr contains `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self}"
        );
        self.clone()
    }

    /// Stdout parsed as JSON; panics, showing the run, if it is not JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// Stdout parsed as a plan; panics, showing the run, if it is not one.
    #[track_caller]
    pub fn plan(&self) -> harden_plan::Plan {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not a plan ({e}): {self}"))
    }

    /// Stdout followed by stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A disposable copy-on-write copy of this machine; see the module docs.
pub struct Sandbox {
    holder: Holder,
    dir: PathBuf,
    merged: String,
    upper: String,
    peers: AtomicUsize,
    timeout_ms: AtomicU64,
    created_in: Duration,
}

impl Sandbox {
    /// Builds a sandbox. Panics if not root ("end-to-end tests need root;
    /// run as root") or if anything about it is not as it must be; tests
    /// should use [`sandbox!`] (or [`Sandbox::for_test`]) to get the root
    /// rule.
    pub fn new() -> Sandbox {
        assert!(is_root(), "end-to-end tests need root; run as root");
        let started = Instant::now();
        let dir = make_private_dir("harden-sandbox");
        let dir_str = dir
            .to_str()
            .unwrap_or_else(|| panic!("sandbox directory {dir:?} is not UTF-8"))
            .to_owned();
        let holder =
            match Holder::spawn("harden-sandbox", SANDBOX_SETUP, &[&dir_str, HARDEN_ON_HOST]) {
                Ok(holder) => holder,
                Err(e) => {
                    remove_sandbox_dir(&dir);
                    panic!("could not build the sandbox: {e}");
                }
            };
        let mut sandbox = Sandbox {
            holder,
            merged: format!("{dir_str}/merged"),
            upper: format!("{dir_str}/upper"),
            dir,
            peers: AtomicUsize::new(0),
            timeout_ms: AtomicU64::new(duration_ms(COMMAND_TIMEOUT)),
            created_in: Duration::ZERO,
        };
        // From here on, a panic tears the sandbox down through Drop.
        if let Err(e) = sandbox.check() {
            panic!("the sandbox is not what it must be; refusing to use it: {e}");
        }
        sandbox.created_in = started.elapsed();
        sandbox
    }

    /// The root rule (see [`root_available`]), then [`Sandbox::new`].
    pub fn for_test() -> Option<Sandbox> {
        root_available().then(Sandbox::new)
    }

    /// How long [`Sandbox::new`] took.
    pub fn creation_time(&self) -> Duration {
        self.created_in
    }

    /// Host PID of the holder, PID 1 of the sandbox's PID namespace.
    pub fn holder_pid(&self) -> u32 {
        self.holder.pid
    }

    /// The sandbox directory on the host (`/tmp/harden-sandbox-*`), which is
    /// empty when seen from the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets how long each later command may run before the test fails
    /// (default [`COMMAND_TIMEOUT`]).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms
            .store(duration_ms(timeout), Ordering::Relaxed);
    }

    /// Runs `/bin/sh -c script` inside.
    pub fn sh(&self, script: &str) -> Run {
        self.exec(&["/bin/sh", "-c", script])
    }

    /// Runs `/bin/sh -c script` inside, with `input` on stdin.
    pub fn sh_with_stdin(&self, script: &str, input: &str) -> Run {
        self.exec_with_stdin(&["/bin/sh", "-c", script], input.as_bytes())
    }

    /// Runs the binary under test inside with `args`.
    pub fn harden(&self, args: &[&str]) -> Run {
        self.exec(&harden_argv(args))
    }

    /// The plan of `playbook` (`harden plan --format json`), as the plan type itself;
    /// panics, showing the run, if the plan fails or is not a plan.
    #[track_caller]
    pub fn plan(&self, playbook: &str) -> harden_plan::Plan {
        self.harden(&["plan", "--format", "json", playbook])
            .assert_ok()
            .plan()
    }

    /// Runs the binary under test inside with `args`, with `input` on stdin.
    pub fn harden_with_stdin(&self, args: &[&str], input: &str) -> Run {
        self.exec_with_stdin(&harden_argv(args), input.as_bytes())
    }

    /// Runs a program inside (looked up in [`SANDBOX_PATH`]), stdin
    /// `/dev/null`.
    pub fn exec(&self, argv: &[&str]) -> Run {
        self.run(argv, None)
    }

    /// Runs a program inside with `input` on stdin.
    pub fn exec_with_stdin(&self, argv: &[&str], input: &[u8]) -> Run {
        self.run(argv, Some(input))
    }

    /// Writes `content` to the absolute sandbox path `path`, creating parent
    /// directories; an existing file keeps its mode and owner.
    #[track_caller]
    pub fn write(&self, path: &str, content: &str) {
        self.write_bytes(path, content.as_bytes());
    }

    /// Like [`Sandbox::write`], for bytes.
    #[track_caller]
    pub fn write_bytes(&self, path: &str, content: &[u8]) {
        assert_absolute(path);
        let run = self.exec_with_stdin(
            &[
                "/bin/sh",
                "-c",
                r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#,
                "write",
                path,
            ],
            content,
        );
        assert!(run.success(), "writing {path} in the sandbox failed: {run}");
    }

    /// Reads the absolute sandbox path `path`; panics if it cannot.
    #[track_caller]
    pub fn read(&self, path: &str) -> String {
        assert_absolute(path);
        let run = self.exec(&["/bin/cat", "--", path]);
        assert!(run.success(), "reading {path} in the sandbox failed: {run}");
        run.stdout
    }

    /// Whether the absolute sandbox path `path` exists (a dangling symlink
    /// counts).
    #[track_caller]
    pub fn exists(&self, path: &str) -> bool {
        assert_absolute(path);
        self.exec(&[
            "/bin/sh",
            "-c",
            r#"test -e "$1" || test -L "$1""#,
            "exists",
            path,
        ])
        .success()
    }

    /// The host path through which the absolute sandbox path `path` can be
    /// inspected: `/proc/<holder>/root/<merged><path>`. Absolute symlinks on
    /// it resolve against the host's root: inspect only, never write.
    #[track_caller]
    pub fn host_path(&self, path: &str) -> PathBuf {
        assert_absolute(path);
        PathBuf::from(format!(
            "/proc/{}/root{}{}",
            self.holder.pid, self.merged, path
        ))
    }

    /// Every path in the overlay's upper layer (what commands inside created,
    /// changed or deleted), relative and sorted; directories included.
    pub fn upper_entries(&self) -> Vec<String> {
        if let Err(e) = self.check() {
            panic!("the sandbox is not what it must be: {e}");
        }
        let root = PathBuf::from(format!("/proc/{}/root{}", self.holder.pid, self.upper));
        let mut entries = Vec::new();
        list_tree(&root, "", &mut entries);
        entries.sort();
        entries
    }

    /// A second network namespace (with its own mount and PID namespaces, on
    /// the host's filesystem read-only), joined to the sandbox by a veth
    /// pair. The first peer is `192.0.2.2/24`, the sandbox's side
    /// `192.0.2.1/24` on `eth0`; a second and third get `198.51.100.0/24`
    /// (`eth1`) and `203.0.113.0/24` (`eth2`).
    pub fn spawn_peer(&self) -> Peer {
        let index = self.peers.fetch_add(1, Ordering::SeqCst);
        let peer = Peer::spawn(index);
        if let Err(e) = self.check() {
            panic!("the sandbox is not what it must be: {e}");
        }
        peer.link_to(self.holder.pid);
        peer
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    fn run(&self, argv: &[&str], input: Option<&[u8]>) -> Run {
        if let Err(e) = self.check() {
            panic!("refusing to run {argv:?}: the sandbox is not what it must be: {e}");
        }
        let mut cmd = self.holder.nsenter();
        cmd.args(["setpriv", "--bounding-set", DROPPED_CAPS, "--"])
            .args(["chroot", &self.merged])
            .args(argv);
        run_command(
            cmd,
            input,
            self.timeout(),
            &format!("{argv:?} in the sandbox"),
        )
    }

    /// Checks the holder is still ours and `merged` still the overlay.
    fn check(&self) -> Result<(), String> {
        self.holder.check()?;
        check_overlay(
            self.holder.pid,
            &self.dir.to_string_lossy(),
            &self.merged,
            &self.upper,
            "/",
        )
    }
}

/// Checks that, in the mount namespace of `pid`, `dir` is a tmpfs and `merged` an overlay on
/// it with `lowerdir=<lower>` and `upperdir=<upper>`.
pub(super) fn check_overlay(
    pid: u32,
    dir: &str,
    merged: &str,
    upper: &str,
    lower: &str,
) -> Result<(), String> {
    let path = format!("/proc/{pid}/mountinfo");
    let mountinfo = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // The last mount listed on a mount point is the one on top.
    let top = |mount_point: &str| {
        mountinfo
            .lines()
            .rev()
            .filter_map(parse_mountinfo_line)
            .find(|m| m.mount_point == mount_point)
    };
    let tmpfs = top(dir).ok_or_else(|| format!("nothing is mounted on {dir}"))?;
    if tmpfs.fs_type != "tmpfs" {
        return Err(format!("{dir} is {}, not the test's tmpfs", tmpfs.fs_type));
    }
    let overlay = top(merged).ok_or_else(|| format!("nothing is mounted on {merged}"))?;
    if overlay.fs_type != "overlay" {
        return Err(format!("{merged} is {}, not an overlay", overlay.fs_type));
    }
    if overlay.parent_id != tmpfs.id {
        return Err(format!(
            "the overlay on {merged} is not on the test's tmpfs"
        ));
    }
    let options: Vec<&str> = overlay.super_options.split(',').collect();
    let lowerdir = format!("lowerdir={lower}");
    let upperdir = format!("upperdir={upper}");
    if !options.contains(&lowerdir.as_str()) || !options.contains(&upperdir.as_str()) {
        return Err(format!(
            "the overlay on {merged} has options {}, not {lowerdir} and {upperdir}",
            overlay.super_options
        ));
    }
    Ok(())
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.holder.stop();
        remove_sandbox_dir(&self.dir);
    }
}

/// A network namespace joined to a sandbox; see [`Sandbox::spawn_peer`].
pub struct Peer {
    holder: Holder,
    addr: &'static str,
    sandbox_addr: &'static str,
    sandbox_iface: String,
}

impl Peer {
    /// A new peer with the `index`th pair of [`PEER_NETS`], not linked to anything yet.
    pub(super) fn spawn(index: usize) -> Peer {
        let Some(&(sandbox_addr, addr)) = PEER_NETS.get(index) else {
            panic!("a sandbox has at most {} peers", PEER_NETS.len());
        };
        let holder = Holder::spawn("harden-sandbox-peer", PEER_SETUP, &[])
            .unwrap_or_else(|e| panic!("could not build the peer: {e}"));
        Peer {
            holder,
            addr,
            sandbox_addr,
            sandbox_iface: format!("eth{index}"),
        }
    }

    /// Joins this peer to the network namespace of `pid` (the sandbox's holder, or a booted
    /// machine's PID 1) by a veth pair, addressed as [`PEER_NETS`] says. The pair is created in
    /// that namespace with its other end put straight into the peer's: the host's network
    /// namespace is never touched. A peer whose other end went away (a machine that powered
    /// off) can be linked again.
    pub(super) fn link_to(&self, pid: u32) {
        if let Err(e) = self.holder.check() {
            panic!("the peer is not what it must be: {e}");
        }
        let iface = &self.sandbox_iface;
        let (sandbox_addr, addr) = (self.sandbox_addr, self.addr);
        let sandbox_side = format!(
            "set -e
             ip link add {iface} type veth peer name eth0 netns {peer_pid}
             ip addr add {sandbox_addr}/24 dev {iface}
             ip link set {iface} up",
            peer_pid = self.holder.pid,
        );
        host_tool_in_net(pid, &sandbox_side).assert_ok();
        let peer_side = format!(
            "set -e
             ip addr add {addr}/24 dev eth0
             ip link set eth0 up"
        );
        host_tool_in_net(self.holder.pid, &peer_side).assert_ok();
    }

    /// Runs `/bin/sh -c script` in the peer (the host's filesystem,
    /// read-only; same environment and dropped capabilities as in the
    /// sandbox).
    pub fn sh(&self, script: &str) -> Run {
        if let Err(e) = self.holder.check() {
            panic!("refusing to run {script:?}: the peer is not what it must be: {e}");
        }
        let mut cmd = self.holder.nsenter();
        cmd.args(["setpriv", "--bounding-set", DROPPED_CAPS, "--"])
            .args(["/bin/sh", "-c", script]);
        run_command(
            cmd,
            None,
            COMMAND_TIMEOUT,
            &format!("{script:?} in the peer"),
        )
    }

    /// The peer's address, e.g. `192.0.2.2`.
    pub fn addr(&self) -> &str {
        self.addr
    }

    /// The sandbox's address on the link to this peer, e.g. `192.0.2.1`.
    pub fn sandbox_addr(&self) -> &str {
        self.sandbox_addr
    }

    /// The sandbox's interface on the link to this peer, e.g. `eth0`.
    pub fn sandbox_iface(&self) -> &str {
        &self.sandbox_iface
    }
}

/// PID 1 of a set of new namespaces, kept alive by a pipe on its stdin.
pub(super) struct Holder {
    /// The `unshare` process, parent of the holder.
    child: Child,
    /// Closing it makes the holder exit.
    stdin: Option<ChildStdin>,
    /// Host PID of the holder.
    pub(super) pid: u32,
    /// Its namespaces as `readlink /proc/PID/ns/NAME` shows them.
    namespaces: Vec<String>,
    stopped: bool,
}

impl Holder {
    /// Starts `unshare ... sh -c PRELUDE+script name HOST_MNT_NS REAPER
    /// args...` and waits for it to print `ready <host pid>`.
    pub(super) fn spawn(name: &str, script: &str, args: &[&str]) -> Result<Holder, String> {
        let own_mnt = namespace_id("self", "mnt")?;
        let mut child = Command::new("unshare")
            .args(["--mount", "--net", "--pid", "--uts", "--ipc"])
            .args(["--fork", "--kill-child", "--propagation", "private", "--"])
            .args(["/bin/sh", "-c", &format!("{SETUP_PRELUDE}{script}"), name])
            .arg(&own_mnt)
            .arg(REAPER)
            .args(args)
            .env_clear()
            .env("PATH", HOST_PATH)
            .env("LANG", "C.UTF-8")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let stdin = child.stdin.take();
        let stderr = Collector::start(child.stderr.take().expect("stderr is piped"));
        let stdout = child.stdout.take().expect("stdout is piped");
        // Lines up to and including `ready <pid>`; the thread ends there
        // (or at EOF, when setup failed).
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ready = line.starts_with("ready ");
                if tx.send(line).is_err() || ready {
                    break;
                }
            }
        });
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let mut said = Vec::new();
        let mut pid = None;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(ready) = line.strip_prefix("ready ") {
                pid = ready.trim().parse::<u32>().ok();
                break;
            }
            said.push(line);
        }
        let said = said.join("\n");
        let mut holder = Holder {
            child,
            stdin,
            pid: pid.unwrap_or(0),
            namespaces: Vec::new(),
            stopped: false,
        };
        let Some(pid) = pid else {
            holder.stop();
            let status = holder.child.try_wait().ok().flatten();
            return Err(format!(
                "{name} setup failed (unshare: {status:?}):\n{said}\n{}",
                stderr.finish(Instant::now() + OUTPUT_GRACE)
            ));
        };
        if !said.trim().is_empty() {
            eprintln!("{said}");
        }
        if let Err(e) = holder.verify_new(pid) {
            holder.stop();
            return Err(e);
        }
        Ok(holder)
    }

    /// Checks that `pid` is the child of our `unshare`, PID 1 of its PID
    /// namespace, in namespaces none of which is ours; records them.
    fn verify_new(&mut self, pid: u32) -> Result<(), String> {
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let ppid = field("PPid:");
        if ppid != [self.child.id().to_string()] {
            return Err(format!(
                "process {pid} is not the child of unshare {}",
                self.child.id()
            ));
        }
        let nspid = field("NSpid:");
        if nspid.len() < 2 || nspid.last() != Some(&"1") {
            return Err(format!(
                "process {pid} is not PID 1 of a new PID namespace (NSpid {nspid:?})"
            ));
        }
        let mut namespaces = Vec::new();
        for (ns, _) in NAMESPACES {
            let theirs = namespace_id(&pid.to_string(), ns)?;
            let ours = namespace_id("self", ns)?;
            if theirs == ours {
                return Err(format!("process {pid} shares our {ns} namespace ({ours})"));
            }
            namespaces.push(theirs);
        }
        self.namespaces = namespaces;
        Ok(())
    }

    /// Checks the holder is alive and still in the namespaces recorded.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.stopped {
            return Err("it was torn down".to_owned());
        }
        for ((ns, _), recorded) in NAMESPACES.iter().zip(&self.namespaces) {
            let now = namespace_id(&self.pid.to_string(), ns)
                .map_err(|e| format!("the holder (PID {}) is gone: {e}", self.pid))?;
            if &now != recorded {
                return Err(format!(
                    "PID {} is no longer the holder ({ns} namespace {now}, not {recorded})",
                    self.pid
                ));
            }
        }
        Ok(())
    }

    /// `nsenter` into all of the holder's namespaces, with the sandbox
    /// environment; the caller appends the command.
    pub(super) fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.pid.to_string())
            .args(NAMESPACES.map(|(_, flag)| flag))
            .arg("--")
            .env_clear()
            .envs([
                ("PATH", SANDBOX_PATH),
                ("HOME", "/root"),
                ("LANG", "C.UTF-8"),
                ("NO_COLOR", "1"),
            ])
            .current_dir("/");
        cmd
    }

    /// Ends the holder and so every process in its PID namespace, and waits
    /// for it. Idempotent.
    pub(super) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // EOF on its stdin: the holder (PID 1) exits, the kernel kills the
        // rest of the namespace, unshare reaps the holder and exits.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
                _ => {
                    // SIGKILL to unshare; --kill-child passes it on to the holder.
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.wait_holder_gone();
                    break;
                }
            }
        }
    }

    /// After `unshare` was killed: waits until the holder is gone.
    fn wait_holder_gone(&self) {
        if self.namespaces.is_empty() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match namespace_id(&self.pid.to_string(), "mnt") {
                Ok(ns) if ns == self.namespaces[0] => thread::sleep(Duration::from_millis(5)),
                _ => return,
            }
        }
        eprintln!("warning: sandbox holder {} did not exit", self.pid);
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a pipe to the end on a thread of its own.
pub(super) struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Collector {
    pub(super) fn start(mut pipe: impl Read + Send + 'static) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let sink = Arc::clone(&buf);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Collector { buf, done }
    }

    /// What was read so far.
    pub(super) fn snapshot(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// Waits for EOF until `deadline`, then returns what was read.
    pub(super) fn finish(self, deadline: Instant) -> String {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        self.snapshot()
    }
}

/// Runs `cmd` to completion, collecting its output; panics after `timeout`.
pub(super) fn run_command(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
    what: &str,
) -> Run {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let input = input.to_vec();
        // Ignore EPIPE: the command may not read its stdin.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = Collector::start(child.stdout.take().expect("stdout is piped"));
    let stderr = Collector::start(child.stderr.take().expect("stderr is piped"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => panic!("waiting for {what} failed: {e}"),
        // Unwinding drops the sandbox, which kills the command.
        Err(_) => panic!(
            "{what} still running after {timeout:?}\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
            stdout.snapshot(),
            stderr.snapshot()
        ),
    };
    let deadline = Instant::now() + OUTPUT_GRACE;
    Run {
        status: exit_code(status),
        stdout: stdout.finish(deadline),
        stderr: stderr.finish(deadline),
    }
}

/// Runs `/bin/sh -c script` with the host's tools in the network namespace
/// of `pid` (and nothing else of it).
pub(super) fn host_tool_in_net(pid: u32, script: &str) -> Run {
    let mut cmd = Command::new("nsenter");
    cmd.arg("--target")
        .arg(pid.to_string())
        .args(["--net", "--", "/bin/sh", "-c", script])
        .env_clear()
        .env("PATH", HOST_PATH)
        .current_dir("/");
    run_command(
        cmd,
        None,
        Duration::from_secs(30),
        &format!("{script:?} in net namespace of {pid}"),
    )
}

pub(super) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

pub(super) fn harden_argv<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec![HARDEN_IN_SANDBOX];
    argv.extend_from_slice(args);
    argv
}

#[track_caller]
pub(super) fn assert_absolute(path: &str) {
    assert!(
        path.starts_with('/'),
        "sandbox paths must be absolute, not {path:?}"
    );
}

pub(super) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `readlink /proc/PID/ns/NS`, e.g. `mnt:[4026531832]`.
pub(super) fn namespace_id(pid: &str, ns: &str) -> Result<String, String> {
    let path = format!("/proc/{pid}/ns/{ns}");
    fs::read_link(&path)
        .map(|target| target.to_string_lossy().into_owned())
        .map_err(|e| format!("cannot read {path}: {e}"))
}

/// One line of `/proc/PID/mountinfo`, the fields used here.
pub(super) struct MountInfo<'a> {
    pub(super) id: &'a str,
    pub(super) parent_id: &'a str,
    pub(super) mount_point: String,
    pub(super) fs_type: &'a str,
    pub(super) super_options: &'a str,
}

pub(super) fn parse_mountinfo_line(line: &str) -> Option<MountInfo<'_>> {
    let (before, after) = line.split_once(" - ")?;
    let mut before = before.split(' ');
    let id = before.next()?;
    let parent_id = before.next()?;
    let mount_point = unescape_mountinfo(before.nth(2)?);
    let mut after = after.split(' ');
    let fs_type = after.next()?;
    let _source = after.next()?;
    let super_options = after.next()?;
    Some(MountInfo {
        id,
        parent_id,
        mount_point,
        fs_type,
        super_options,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends every path under `dir` (relative, prefixed by `prefix`) to
/// `entries`, without following symlinks.
fn list_tree(dir: &Path, prefix: &str, entries: &mut Vec<String>) {
    let read = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in read {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let is_dir = entry
            .file_type()
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", entry.path().display()))
            .is_dir();
        if is_dir {
            list_tree(&entry.path(), &relative, entries);
        }
        entries.push(relative);
    }
}

/// Creates a fresh, empty, private `/tmp/<prefix>-*` directory.
pub(super) fn make_private_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for _ in 0..1000 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!(
            "/tmp/{prefix}-{}-{n}-{nanos:x}",
            std::process::id()
        ));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", dir.display()),
        }
    }
    panic!("cannot find a free /tmp/{prefix}-* name");
}

/// Removes the sandbox directory, which on the host is empty: a plain
/// `rmdir`, never a recursive delete.
#[allow(clippy::disallowed_methods)] // the test's own directory, not the product's files
pub(super) fn remove_sandbox_dir(dir: &Path) {
    if let Err(e) = fs::remove_dir(dir) {
        eprintln!(
            "warning: could not remove sandbox directory {}: {e}",
            dir.display()
        );
    }
}
