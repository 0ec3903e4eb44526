//! A booted machine for end-to-end tests: systemd as PID 1 of a disposable copy of this
//! machine (Debian 12) or of the Debian 13 image, under `systemd-nspawn`.
//!
//! The chroot [`Sandbox`](super::Sandbox) has no init system; what only a real boot shows
//! (units enabled but failed, cloud-init's stages as systemd orders them, reloads through
//! systemd, units with their sandboxing) is tested here. [`Booted::new`] builds, beside the
//! sandbox's pieces (its holder, command runner and overlay check are reused):
//!
//! - a *holder*, PID 1 of new mount, network, PID, UTS and IPC namespaces (as the sandbox's);
//!   in its mount namespace only: a fresh `/proc` and a tmpfs on `/run` (so nspawn's state
//!   never lands in this machine's `/run`), a tmpfs on a fresh host directory
//!   `/tmp/harden-booted-*` with `upper`, `work` and `merged`, and an overlay
//!   `lowerdir=<lower>,upperdir=upper,workdir=work` on `merged`, where `<lower>` is `/`
//!   (Debian 12) or the image directory [`TRIXIE_IMAGE`] (Debian 13);
//! - a cgroup of its own, `harden-booted-*`, under the test's cgroup in each hierarchy
//!   nspawn uses (the unified one and `name=systemd`), so that machines booted side by side
//!   never share nspawn's `payload`/`supervisor` groups.
//!
//! Before the first boot the copy can be edited as an image is ([`Booted::chroot_sh`],
//! [`Booted::chroot_write`]: commands chrooted into `merged`). [`Booted::boot`] then starts,
//! inside the holder's namespaces,
//! `systemd-nspawn --boot --register=no --keep-unit --private-network -D merged` with the
//! binary under test bound read-only at [`HARDEN_IN_SANDBOX`], this machine's journal, host
//! settings and nspawn files kept out (`--link-journal=no`, `--settings=no`,
//! `--resolv-conf=off`, `--timezone=off`), and `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1` (systemd
//! 257 in Debian 13 needs the unified cgroup hierarchy; this machine's PID 1 is not systemd
//! and its hierarchy is hybrid). It waits until `systemctl is-system-running` says `running`
//! or `degraded` ([`BOOT_TIMEOUT`]; past it, a panic shows `systemctl --failed`, the
//! journal's tail and the console). [`Booted::poweroff`] runs `systemctl poweroff` and waits
//! for nspawn to exit; [`Booted::boot`] again boots over the same upper layer (a reboot).
//!
//! Commands ([`Booted::sh`], [`Booted::harden`], ...) enter all of the container's
//! namespaces with `nsenter --all` under `setpriv --bounding-set` set to the container's own
//! bounding set (what nspawn left its PID 1, nothing more), with a clean environment, and
//! return the sandbox's [`Run`].
//!
//! Safety, since this runs as root on a real machine: before every command the test checks
//! from the host that the holder is still the process it started, that in its mount
//! namespace `merged` is the overlay on the test's tmpfs with the expected lower and upper
//! directories, that the container's PID 1 is still the one found at boot (a child of this
//! boot's nspawn, PID 1 of a PID namespace nested in the holder's) and that its root is
//! that same overlay; otherwise it panics without running anything. Teardown ([`Drop`],
//! also on panic) ends the holder, so the kernel kills every process of its PID namespace,
//! nspawn and the container included, and the mounts go with the mount namespaces; then it
//! removes the test's cgroups (empty directories of the cgroup file system) and the empty
//! host directory (`rmdir`, never a recursive delete). If the test process dies, the
//! holder's pipe closes and it all goes the same way (the empty directories may remain).
//!
//! Peers ([`Booted::spawn_peer`]) are the sandbox's [`Peer`]s: a network namespace of the
//! test's joined by a veth pair to the container's network namespace, documentation
//! addresses (`192.0.2.0/24` first); they are linked again after every boot.
//!
//! Several machines share one network through a [`Controller`]: a network namespace of the
//! test's (the host's filesystem read-only, private `/tmp`, `/run`, `/proc`), holding a bridge
//! `br0` at [`CONTROLLER_ADDR`]; [`Controller::link`] joins a running machine to it by a veth
//! pair (`eth0` inside the machine, a port of the bridge in the controller), all of it
//! created inside namespaces of the test's, never in this machine's own. It is gone with the
//! controller's holder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::sandbox::{
    assert_absolute, check_overlay, duration_ms, exit_code, harden_argv, host_tool_in_net,
    make_private_dir, namespace_id, parse_mountinfo_line, remove_sandbox_dir, root_available,
    run_command, Collector, Holder, Peer, Run, COMMAND_TIMEOUT, DROPPED_CAPS, HARDEN_IN_SANDBOX,
    HARDEN_ON_HOST, SANDBOX_PATH,
};

/// Where `tests/setup-debian.sh` keeps the Debian 13 image.
pub const TRIXIE_IMAGE: &str = "/var/cache/harden-tests/trixie";

/// The file the setup script writes last into a complete image.
const IMAGE_STAMP: &str = "etc/harden-test-image";

/// How long a boot may take until `systemctl is-system-running` says it is up.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a poweroff may take until nspawn has exited.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(60);

/// How long nspawn may take to show the container's PID 1.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The holder's setup, after the sandbox's prelude: `$1` is the directory, `$2` the lower
/// directory of the overlay.
const BOOTED_SETUP: &str = r#"
dir=$1
lower=$2
m=$dir/merged
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t tmpfs -o mode=0755,nosuid,nodev harden-booted-run /run
mount -t tmpfs -o mode=0700 harden-booted "$dir"
mkdir "$dir/upper" "$dir/work" "$m"
mount -t overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" overlay "$m"
ip link set lo up
echo "ready $host_pid"
exec perl -e "$reaper" >/dev/null 2>&1
"#;

/// Run by `nsenter` in the holder's namespaces: joins the test's cgroups (`$CGROUPS`), then
/// becomes nspawn.
const START_NSPAWN: &str = r#"
set -eu
for cgroup in $CGROUPS; do
    echo $$ > "$cgroup/cgroup.procs"
done
exec "$@"
"#;

/// Capability names by number, as `setpriv` spells them.
const CAPABILITIES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Which Debian a machine boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Debian 12 (bookworm): this machine itself, copy-on-write.
    Debian12,
    /// Debian 13 (trixie): the image `tests/setup-debian.sh` builds.
    Debian13,
}

impl Os {
    /// The overlay's lower directory; panics if the Debian 13 image is missing or incomplete.
    fn lower(self) -> &'static str {
        match self {
            Os::Debian12 => "/",
            Os::Debian13 => {
                let stamp = Path::new(TRIXIE_IMAGE).join(IMAGE_STAMP);
                assert!(
                    stamp.is_file(),
                    "the Debian 13 image {TRIXIE_IMAGE} is missing or incomplete (no {}): run `bash tests/setup-debian.sh`",
                    stamp.display()
                );
                TRIXIE_IMAGE
            }
        }
    }

    /// `VERSION_ID` in the machine's `/etc/os-release`.
    pub fn version_id(self) -> &'static str {
        match self {
            Os::Debian12 => "12",
            Os::Debian13 => "13",
        }
    }
}

/// `Some(Booted)` of `os` (not booted yet), or `None` (after printing why) when the test
/// must be skipped for want of root; under `CI` it panics instead. Exported at the crate
/// root: `let Some(mut m) = crate::booted!(Os::Debian12) else { return };`.
#[macro_export]
macro_rules! booted {
    ($os:expr) => {
        $crate::support::booted::Booted::for_test($os)
    };
}

/// A machine that boots a copy-on-write copy of Debian with systemd; see the module docs.
pub struct Booted {
    os: Os,
    holder: Holder,
    dir: PathBuf,
    merged: String,
    upper: String,
    lower: &'static str,
    cgroups: Vec<PathBuf>,
    machine: Option<Machine>,
    boots: u32,
    peers: Mutex<Vec<Arc<Peer>>>,
    peer_count: AtomicUsize,
    timeout_ms: AtomicU64,
}

/// One boot: nspawn and the container's PID 1.
struct Machine {
    /// `nsenter` into the holder, whose child is nspawn.
    nsenter: Child,
    /// Host PID of nspawn.
    nspawn: u32,
    /// Host PID of the container's PID 1 (systemd).
    init: u32,
    /// Its PID and mount namespaces, as recorded at boot.
    namespaces: [String; 2],
    /// `setpriv --bounding-set` argument: the container's own bounding set.
    bounding_set: String,
    /// nspawn's stdout (the container's console) and stderr.
    console: [Collector; 2],
}

impl Booted {
    /// Builds the copy of `os` (not booted yet). Panics if not root or if anything about it
    /// is not as it must be; tests use [`booted!`] for the root rule.
    pub fn new(os: Os) -> Booted {
        assert!(super::is_root(), "end-to-end tests need root; run as root");
        let lower = os.lower();
        let dir = make_private_dir("harden-booted");
        let dir_str = dir
            .to_str()
            .unwrap_or_else(|| panic!("directory {dir:?} is not UTF-8"))
            .to_owned();
        let holder = match Holder::spawn("harden-booted", BOOTED_SETUP, &[&dir_str, lower]) {
            Ok(holder) => holder,
            Err(e) => {
                remove_sandbox_dir(&dir);
                panic!("could not build the machine's copy: {e}");
            }
        };
        let mut booted = Booted {
            os,
            holder,
            merged: format!("{dir_str}/merged"),
            upper: format!("{dir_str}/upper"),
            lower,
            dir,
            cgroups: Vec::new(),
            machine: None,
            boots: 0,
            peers: Mutex::new(Vec::new()),
            peer_count: AtomicUsize::new(0),
            timeout_ms: AtomicU64::new(duration_ms(COMMAND_TIMEOUT)),
        };
        // From here on, a panic tears it down through Drop.
        if let Err(e) = booted.check_copy() {
            panic!("the machine's copy is not what it must be; refusing to use it: {e}");
        }
        booted.cgroups = make_cgroups(&dir_str);
        booted
    }

    /// The root rule (see [`root_available`]), then [`Booted::new`].
    pub fn for_test(os: Os) -> Option<Booted> {
        root_available().then(|| Booted::new(os))
    }

    /// Which Debian this is.
    pub fn os(&self) -> Os {
        self.os
    }

    /// How many times it has booted.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// Sets how long each later command may run before the test fails (default
    /// [`COMMAND_TIMEOUT`]).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms
            .store(duration_ms(timeout), Ordering::Relaxed);
    }

    /// Runs `/bin/sh -c script` chrooted into the copy while it is not running, as one
    /// edits an image before booting it (no `/proc`, `/dev` or `/run` inside).
    pub fn chroot_sh(&self, script: &str) -> Run {
        self.chroot(&["/bin/sh", "-c", script], None)
    }

    /// Writes `content` to the absolute path `path` of the copy while it is not running,
    /// creating parent directories; an existing file keeps its mode and owner.
    #[track_caller]
    pub fn chroot_write(&self, path: &str, content: &[u8]) {
        assert_absolute(path);
        let run = self.chroot(
            &["/bin/sh", "-c", WRITE_SCRIPT, "write", path],
            Some(content),
        );
        assert!(run.success(), "writing {path} in the copy failed: {run}");
    }

    /// Boots the copy and waits until systemd says it is up (`running` or `degraded`);
    /// links the peers to its network. Panics, with what systemd and the console say, if it
    /// does not come up within [`BOOT_TIMEOUT`].
    pub fn boot(&mut self) {
        assert!(self.machine.is_none(), "the machine is already running");
        if let Err(e) = self.check_copy() {
            panic!("refusing to boot: the machine's copy is not what it must be: {e}");
        }
        let machine = self.start_nspawn();
        self.machine = Some(machine);
        self.boots += 1;
        if let Err(e) = self.check() {
            panic!("refusing to use the machine: it is not what it must be: {e}");
        }
        self.wait_until_up();
        let init = self.init_pid();
        for peer in self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            peer.link_to(init);
        }
    }

    /// `systemctl poweroff`, then waits until nspawn has exited (killing it past
    /// [`POWEROFF_TIMEOUT`]). Returns nspawn's exit status (0 after a clean poweroff).
    pub fn poweroff(&mut self) -> i32 {
        // The command may lose its connection as systemd goes down: its status tells nothing.
        let _ = self.sh("systemctl poweroff --no-block");
        let mut machine = self
            .machine
            .take()
            .expect("poweroff of a machine that is not running");
        let deadline = Instant::now() + POWEROFF_TIMEOUT;
        loop {
            match machine.nsenter.try_wait() {
                Ok(Some(status)) => return exit_code(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => {
                    let console = machine.console();
                    machine.kill();
                    panic!(
                        "the machine did not power off within {POWEROFF_TIMEOUT:?}\n--- console (end) ---\n{}",
                        tail(&console, 4000)
                    );
                }
            }
        }
    }

    /// What the console showed so far in this boot (nspawn's output).
    pub fn console(&self) -> String {
        self.machine
            .as_ref()
            .map(Machine::console)
            .unwrap_or_default()
    }

    /// Host PID of the container's PID 1; panics if it is not running.
    pub fn init_pid(&self) -> u32 {
        self.running().init
    }

    /// Runs `/bin/sh -c script` inside the running machine.
    pub fn sh(&self, script: &str) -> Run {
        self.exec(&["/bin/sh", "-c", script])
    }

    /// Runs `/bin/sh -c script` inside, with `input` on stdin.
    pub fn sh_with_stdin(&self, script: &str, input: &str) -> Run {
        self.run(&["/bin/sh", "-c", script], Some(input.as_bytes()))
    }

    /// Runs the binary under test inside with `args`.
    pub fn harden(&self, args: &[&str]) -> Run {
        self.exec(&harden_argv(args))
    }

    /// Runs a program inside (looked up in [`SANDBOX_PATH`]), stdin `/dev/null`.
    pub fn exec(&self, argv: &[&str]) -> Run {
        self.run(argv, None)
    }

    /// Writes `content` to the absolute path `path` inside the running machine, creating
    /// parent directories; an existing file keeps its mode and owner.
    #[track_caller]
    pub fn write(&self, path: &str, content: &str) {
        assert_absolute(path);
        let run = self.run(
            &["/bin/sh", "-c", WRITE_SCRIPT, "write", path],
            Some(content.as_bytes()),
        );
        assert!(run.success(), "writing {path} in the machine failed: {run}");
    }

    /// Reads the absolute path `path` inside the running machine; panics if it cannot.
    #[track_caller]
    pub fn read(&self, path: &str) -> String {
        assert_absolute(path);
        let run = self.exec(&["/bin/cat", "--", path]);
        assert!(run.success(), "reading {path} in the machine failed: {run}");
        run.stdout
    }

    /// A network namespace joined to the machine by a veth pair (see [`Peer`]): the first
    /// is `192.0.2.2/24`, the machine's side `192.0.2.1/24` on `eth0`. It is linked now if
    /// the machine runs, and again at every boot.
    pub fn spawn_peer(&self) -> Arc<Peer> {
        let index = self.peer_count.fetch_add(1, Ordering::SeqCst);
        let peer = Arc::new(Peer::spawn(index));
        if self.machine.is_some() {
            if let Err(e) = self.check() {
                panic!("the machine is not what it must be: {e}");
            }
            peer.link_to(self.init_pid());
        }
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&peer));
        peer
    }

    /// What a leak check looks for once this machine is gone: its directory, its cgroups,
    /// and the holder's namespaces.
    pub fn traces(&self) -> Traces {
        Traces {
            dir: self.dir.clone(),
            cgroups: self.cgroups.clone(),
            namespaces: ["mnt", "pid", "net"]
                .iter()
                .filter_map(|ns| namespace_id(&self.holder.pid.to_string(), ns).ok())
                .collect(),
        }
    }

    fn running(&self) -> &Machine {
        self.machine
            .as_ref()
            .expect("the machine is not running: boot() it first")
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    fn chroot(&self, argv: &[&str], input: Option<&[u8]>) -> Run {
        assert!(
            self.machine.is_none(),
            "chroot commands are for a copy that is not running; use sh()"
        );
        if let Err(e) = self.check_copy() {
            panic!("refusing to run {argv:?}: the machine's copy is not what it must be: {e}");
        }
        let mut cmd = self.holder.nsenter();
        cmd.args(["setpriv", "--bounding-set", DROPPED_CAPS, "--"])
            .args(["chroot", &self.merged])
            .args(argv);
        run_command(
            cmd,
            input,
            self.timeout(),
            &format!("{argv:?} in the copy (chroot)"),
        )
    }

    fn run(&self, argv: &[&str], input: Option<&[u8]>) -> Run {
        if let Err(e) = self.check() {
            panic!("refusing to run {argv:?}: the machine is not what it must be: {e}");
        }
        let machine = self.running();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set", &machine.bounding_set, "--"])
            .args(["nsenter", "--target", &machine.init.to_string()])
            .args(["--all", "--root", "--wd", "--"])
            .args(argv)
            .env_clear()
            .envs([
                ("PATH", SANDBOX_PATH),
                ("HOME", "/root"),
                ("LANG", "C.UTF-8"),
                ("NO_COLOR", "1"),
            ])
            .current_dir("/");
        run_command(
            cmd,
            input,
            self.timeout(),
            &format!("{argv:?} in the booted {:?} machine", self.os),
        )
    }

    /// Checks the holder is still ours and `merged` still the overlay on our tmpfs.
    fn check_copy(&self) -> Result<(), String> {
        self.holder.check()?;
        check_overlay(
            self.holder.pid,
            &self.dir.to_string_lossy(),
            &self.merged,
            &self.upper,
            self.lower,
        )
    }

    /// [`Booted::check_copy`], and the container's PID 1 is still the one found at boot,
    /// with that overlay as its root.
    fn check(&self) -> Result<(), String> {
        self.check_copy()?;
        let machine = self.running();
        for (ns, recorded) in ["pid", "mnt"].iter().zip(&machine.namespaces) {
            let now = namespace_id(&machine.init.to_string(), ns)
                .map_err(|e| format!("the container's PID 1 ({}) is gone: {e}", machine.init))?;
            if &now != recorded {
                return Err(format!(
                    "PID {} is no longer the container's PID 1 ({ns} namespace {now}, not {recorded})",
                    machine.init
                ));
            }
        }
        check_root_is(machine.init, &self.upper, self.lower)
    }

    /// Starts nspawn in the holder's namespaces and the test's cgroups, and finds the
    /// container's PID 1.
    fn start_nspawn(&self) -> Machine {
        let mut cmd = self.holder.nsenter();
        let bind = format!("--bind-ro={HARDEN_ON_HOST}:{HARDEN_IN_SANDBOX}");
        cmd.args(["/bin/sh", "-c", START_NSPAWN, "start-nspawn"])
            .args(["systemd-nspawn", "--boot", "--register=no", "--keep-unit"])
            .args(["--private-network", "--private-users=no", "--settings=no"])
            .args(["--link-journal=no", "--resolv-conf=off", "--timezone=off"])
            .args(["--console=read-only", "--machine=harden-booted", "-D"])
            .arg(&self.merged)
            .arg(bind)
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .env("CGROUPS", join_paths(&self.cgroups))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut nsenter = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run systemd-nspawn: {e}"));
        let console = [
            Collector::start(nsenter.stdout.take().expect("stdout is piped")),
            Collector::start(nsenter.stderr.take().expect("stderr is piped")),
        ];
        let mut machine = Machine {
            nspawn: 0,
            init: 0,
            namespaces: [String::new(), String::new()],
            bounding_set: String::new(),
            nsenter,
            console,
        };
        if let Err(e) = machine.find_init(self.holder.pid) {
            let console = machine.console();
            machine.kill();
            panic!(
                "systemd-nspawn did not start the machine: {e}\n--- console ---\n{}",
                tail(&console, 4000)
            );
        }
        machine
    }

    /// Polls `systemctl is-system-running` until it says `running` or `degraded`.
    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.machine.as_mut().and_then(Machine::exited) {
                panic!(
                    "the machine stopped while booting (nspawn exit status {status})\n--- console (end) ---\n{}",
                    tail(&self.console(), 4000)
                );
            }
            let run = self.sh("systemctl is-system-running");
            last = run.stdout.trim().to_owned();
            match last.as_str() {
                "running" | "degraded" => return,
                "maintenance" | "stopping" => break,
                _ => thread::sleep(Duration::from_millis(200)),
            }
        }
        let failed = self.sh("systemctl --failed --no-pager --full").output();
        let jobs = self.sh("systemctl list-jobs --no-pager --full").output();
        let journal = self.sh("journalctl -b --no-pager -n 60").output();
        panic!(
            "the {:?} machine did not come up within {BOOT_TIMEOUT:?} (is-system-running: {last:?})\n\
             --- systemctl --failed ---\n{failed}\n--- systemctl list-jobs ---\n{jobs}\n\
             --- journal (end) ---\n{journal}\n--- console (end) ---\n{}",
            self.os,
            tail(&self.console(), 3000)
        );
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        let traces = self.traces();
        // Ending the holder kills its PID namespace: nspawn, the container and every
        // process in it; their mount namespaces (and so the overlay and tmpfs) go with them.
        self.holder.stop();
        if let Some(mut machine) = self.machine.take() {
            machine.kill();
        }
        // The kernel's kill is asynchronous: wait until the last of them has exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !traces.processes().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        remove_cgroups(&self.cgroups);
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        remove_sandbox_dir(&self.dir);
    }
}

impl Machine {
    /// Waits until nspawn (the child of `nsenter`) and the container's PID 1 (a child of
    /// nspawn, PID 1 of a PID namespace nested in the holder's, running systemd) show;
    /// records what [`Booted::check`] compares with.
    fn find_init(&mut self, holder: u32) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let holder_pid_ns = namespace_id(&holder.to_string(), "pid")?;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Err(format!("it exited with status {status}"));
            }
            if self.nspawn == 0 {
                self.nspawn = children(self.nsenter.id())
                    .into_iter()
                    .find(|&pid| comm(pid).as_deref() == Some("systemd-nspawn"))
                    .unwrap_or(0);
            }
            if self.nspawn != 0 {
                // Only once it is systemd: before its exec, nspawn's child still has the
                // capabilities that nspawn drops for the container.
                if let Some(init) = children(self.nspawn).into_iter().find(|&pid| {
                    is_nested_init(pid, &holder_pid_ns) && comm(pid).as_deref() == Some("systemd")
                }) {
                    return self.record(init);
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no container PID 1 after {START_TIMEOUT:?}"))
    }

    fn record(&mut self, init: u32) -> Result<(), String> {
        let pid = init.to_string();
        self.namespaces = [namespace_id(&pid, "pid")?, namespace_id(&pid, "mnt")?];
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("cannot read the status of {pid}: {e}"))?;
        let bounding = status_field(&status, "CapBnd:")
            .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
            .ok_or_else(|| format!("no CapBnd in the status of {pid}"))?;
        self.bounding_set = bounding_set_argument(bounding);
        self.init = init;
        Ok(())
    }

    /// What nspawn printed: the console, then its own messages.
    fn console(&self) -> String {
        let [stdout, stderr] = &self.console;
        format!("{}{}", stdout.snapshot(), stderr.snapshot())
    }

    /// nspawn's exit status, once it has exited.
    fn exited(&mut self) -> Option<i32> {
        self.nsenter.try_wait().ok().flatten().map(exit_code)
    }

    /// Kills nspawn if it still runs (the holder's end normally did) and reaps `nsenter`.
    fn kill(&mut self) {
        if self.exited().is_some() {
            return;
        }
        if self.nspawn != 0 && comm(self.nspawn).as_deref() == Some("systemd-nspawn") {
            // nspawn passes SIGTERM on to the container as an orderly shutdown; the holder's
            // end, if it comes, kills the rest.
            let _ = Command::new("kill")
                .args(["-TERM", &self.nspawn.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.nsenter.kill();
        let _ = self.nsenter.wait();
    }
}

/// What a machine leaves to be checked once it is dropped (see [`Booted::traces`]).
pub struct Traces {
    dir: PathBuf,
    cgroups: Vec<PathBuf>,
    namespaces: Vec<String>,
}

impl Traces {
    /// What is still there: the directory, a cgroup, a process in one of the holder's
    /// namespaces. Empty when the machine left nothing behind.
    pub fn left_behind(&self) -> Vec<String> {
        let mut left = Vec::new();
        if self.dir.exists() {
            left.push(format!("directory {}", self.dir.display()));
        }
        for cgroup in &self.cgroups {
            if cgroup.exists() {
                left.push(format!("cgroup {}", cgroup.display()));
            }
        }
        left.extend(self.processes());
        left
    }

    /// The processes still in one of the holder's namespaces.
    fn processes(&self) -> Vec<String> {
        let mut left = Vec::new();
        for pid in all_pids() {
            for ns in ["mnt", "pid", "net"] {
                if let Ok(id) = namespace_id(&pid.to_string(), ns) {
                    if self.namespaces.contains(&id) {
                        left.push(format!("process {pid} ({:?}) in {id}", comm(pid)));
                    }
                }
            }
        }
        left
    }
}

/// Writes stdin to `$1`, creating its parent directories.
const WRITE_SCRIPT: &str = r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#;

/// Creates the test's cgroup `harden-booted-*` (named after its directory) under the test
/// process's own cgroup in each hierarchy nspawn uses: the unified one and the named
/// `name=systemd` one, where mounted.
fn make_cgroups(dir: &str) -> Vec<PathBuf> {
    let name = Path::new(dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("the directory has a name");
    let own = fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/cgroup: {e}"));
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/mountinfo: {e}"));
    let mut cgroups = Vec::new();
    for mount in mountinfo.lines().filter_map(parse_mountinfo_line) {
        let controller = match mount.fs_type {
            "cgroup2" => "",
            "cgroup" if mount.super_options.split(',').any(|o| o == "name=systemd") => {
                "name=systemd"
            }
            _ => continue,
        };
        let Some(path) = own.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            (controllers == controller).then(|| path.to_owned())
        }) else {
            continue;
        };
        let cgroup = PathBuf::from(format!(
            "{}{}/{name}",
            mount.mount_point,
            path.trim_end_matches('/')
        ));
        fs::create_dir(&cgroup)
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", cgroup.display()));
        cgroups.push(cgroup);
    }
    assert!(
        !cgroups.is_empty(),
        "no cgroup2 or name=systemd hierarchy is mounted: systemd-nspawn cannot run here"
    );
    cgroups
}

/// Removes the test's cgroups, innermost first, once the processes in them are gone (a
/// cgroup is busy for a moment after its last process exits).
fn remove_cgroups(cgroups: &[PathBuf]) {
    for cgroup in cgroups {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match remove_cgroup_tree(cgroup) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    eprintln!("warning: could not remove cgroup {}: {e}", cgroup.display());
                    break;
                }
            }
        }
    }
}

/// `rmdir` of a cgroup and of the cgroups below it (their files are the kernel's; only
/// the directories are removed). Never follows anything out of the cgroup file system.
fn remove_cgroup_tree(cgroup: &Path) -> std::io::Result<()> {
    if !cgroup.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(cgroup)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    fs::remove_dir(cgroup)
}

/// Checks that the root of `pid`'s mount namespace is our overlay (`upper` over `lower`).
fn check_root_is(pid: u32, upper: &str, lower: &str) -> Result<(), String> {
    let path = format!("/proc/{pid}/mountinfo");
    let mountinfo = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let root = mountinfo
        .lines()
        .rev()
        .filter_map(parse_mountinfo_line)
        .find(|m| m.mount_point == "/")
        .ok_or_else(|| format!("nothing is mounted on / for {pid}"))?;
    let options: Vec<&str> = root.super_options.split(',').collect();
    let upperdir = format!("upperdir={upper}");
    let lowerdir = format!("lowerdir={lower}");
    if root.fs_type != "overlay"
        || !options.contains(&upperdir.as_str())
        || !options.contains(&lowerdir.as_str())
    {
        return Err(format!(
            "the container's root is {} with {}, not the overlay of {upper} over {lower}",
            root.fs_type, root.super_options
        ));
    }
    Ok(())
}

/// Whether `pid` is PID 1 of a PID namespace other than `outer` (and nested, so that it
/// has at least three PIDs: the host's, the holder's namespace's and its own 1).
fn is_nested_init(pid: u32, outer: &str) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let nspid: Vec<String> = status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let own_ns = namespace_id(&pid.to_string(), "pid").unwrap_or_default();
    nspid.len() >= 3 && nspid.last().map(String::as_str) == Some("1") && own_ns != outer
}

/// The value of a `/proc/PID/status` field.
fn status_field(status: &str, name: &str) -> Option<String> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(|v| v.trim().to_owned())
}

/// `-all,+chown,...`: exactly the capabilities set in `mask`.
fn bounding_set_argument(mask: u64) -> String {
    let mut argument = String::from("-all");
    for (bit, name) in CAPABILITIES.iter().enumerate() {
        if mask & (1 << bit) != 0 {
            argument.push_str(",+");
            argument.push_str(name);
        }
    }
    argument
}

/// Host PIDs of the children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The command name of `pid`.
fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// Every PID in `/proc`.
fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` bytes of `text` (at a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The controller's address on its bridge; machines get others of `192.0.2.0/24`.
pub const CONTROLLER_ADDR: &str = "192.0.2.1";

/// The controller's setup, after the sandbox's prelude: the host's filesystem read-only with
/// private `/proc`, `/sys`, `/tmp`, `/run`, `/dev/shm` (as a peer's), and the bridge `br0` at
/// `$1/24`.
const CONTROLLER_SETUP: &str = r#"
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777,nosuid,nodev harden-controller-tmp /tmp
mount -t tmpfs -o mode=0755,nosuid,nodev harden-controller-run /run
mount -t tmpfs -o mode=1777,nosuid,nodev harden-controller-shm /dev/shm
if ! mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys; then
    echo "$0: warning: could not mount sysfs on /sys" >&2
fi
ip link set lo up
ip link add br0 type bridge
ip addr add "$1/24" dev br0
ip link set br0 up
echo "ready $host_pid"
exec perl -e "$reaper" >/dev/null 2>&1
"#;

/// A network namespace of the test's with a bridge that machines are linked to, from which
/// a test drives them as an operator's workstation does; see the module docs.
pub struct Controller {
    holder: Holder,
    ports: AtomicUsize,
    timeout_ms: AtomicU64,
}

impl Controller {
    /// Builds the controller's namespaces and its bridge; panics if not root or if setup
    /// fails.
    pub fn new() -> Controller {
        assert!(super::is_root(), "end-to-end tests need root; run as root");
        let holder = Holder::spawn("harden-controller", CONTROLLER_SETUP, &[CONTROLLER_ADDR])
            .unwrap_or_else(|e| panic!("could not build the controller: {e}"));
        Controller {
            holder,
            ports: AtomicUsize::new(0),
            timeout_ms: AtomicU64::new(duration_ms(COMMAND_TIMEOUT)),
        }
    }

    /// The controller's address on the bridge.
    pub fn addr(&self) -> &'static str {
        CONTROLLER_ADDR
    }

    /// Sets how long each later command may run before the test fails (default
    /// [`COMMAND_TIMEOUT`]).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms
            .store(duration_ms(timeout), Ordering::Relaxed);
    }

    /// Joins the running machine `m` to the bridge: a veth pair made in the machine's network
    /// namespace, `eth0` there with `addr/24` (of `192.0.2.0/24`, not the controller's), its
    /// other end put straight into the controller as a port of `br0`. The machine must have
    /// no peer (a peer's link is its `eth0` too); link it again after a reboot.
    pub fn link(&self, m: &Booted, addr: &str) {
        assert!(
            addr.starts_with("192.0.2.") && addr != CONTROLLER_ADDR,
            "a machine's address on the bridge is one of 192.0.2.0/24 other than {CONTROLLER_ADDR}, not {addr:?}"
        );
        if let Err(e) = self.holder.check() {
            panic!("the controller is not what it must be: {e}");
        }
        if let Err(e) = m.check() {
            panic!("refusing to link the machine: it is not what it must be: {e}");
        }
        let port = format!("port{}", self.ports.fetch_add(1, Ordering::SeqCst));
        let machine_side = format!(
            "set -e
             ip link add eth0 type veth peer name {port} netns {controller}
             ip addr add {addr}/24 dev eth0
             ip link set eth0 up",
            controller = self.holder.pid,
        );
        host_tool_in_net(m.init_pid(), &machine_side).assert_ok();
        let bridge_side = format!(
            "set -e
             ip link set {port} master br0
             ip link set {port} up"
        );
        host_tool_in_net(self.holder.pid, &bridge_side).assert_ok();
    }

    /// Runs `/bin/sh -c script` in the controller, `HOME` its private `/tmp` (the host's
    /// filesystem is read-only there; same environment and dropped capabilities otherwise).
    pub fn sh(&self, script: &str) -> Run {
        self.run(script, None)
    }

    /// Writes `content` to `path` under the controller's private `/tmp`, creating parent
    /// directories.
    #[track_caller]
    pub fn write(&self, path: &str, content: &str) {
        assert!(
            path.starts_with("/tmp/"),
            "the controller writes under its /tmp only, not {path:?}"
        );
        let script = format!("mkdir -p -- \"$(dirname -- '{path}')\" && cat > '{path}'");
        let run = self.run(&script, Some(content.as_bytes()));
        assert!(
            run.success(),
            "writing {path} in the controller failed: {run}"
        );
    }

    /// What a leak check looks for once the controller is gone: a process in one of its
    /// namespaces (it has no directory or cgroup of its own; an empty path never exists).
    pub fn traces(&self) -> Traces {
        Traces {
            dir: PathBuf::new(),
            cgroups: Vec::new(),
            namespaces: ["mnt", "pid", "net"]
                .iter()
                .filter_map(|ns| namespace_id(&self.holder.pid.to_string(), ns).ok())
                .collect(),
        }
    }

    fn run(&self, script: &str, input: Option<&[u8]>) -> Run {
        if let Err(e) = self.holder.check() {
            panic!("refusing to run {script:?}: the controller is not what it must be: {e}");
        }
        let mut cmd = self.holder.nsenter();
        cmd.args(["setpriv", "--bounding-set", DROPPED_CAPS, "--"])
            .args(["/bin/sh", "-c", script])
            .env("HOME", "/tmp");
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed));
        run_command(
            cmd,
            input,
            timeout,
            &format!("{script:?} in the controller"),
        )
    }
}
