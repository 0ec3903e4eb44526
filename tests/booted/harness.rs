//! The harness itself: a boot comes up, commands run inside with no more privilege than the
//! container's own PID 1, a reboot keeps the upper layer, and nothing is left behind, also
//! when the test panics.

use std::panic::{self, AssertUnwindSafe};

use crate::support::booted::{Booted, Os, Traces};

/// Lines of this process's mount table (the host's mount namespace).
fn host_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("the host's mount table")
        .lines()
        .count()
}

/// The `CapBnd:` line of `/proc/PID/status` inside the machine.
fn bounding_set(m: &Booted, pid: &str) -> String {
    m.sh(&format!("grep '^CapBnd:' /proc/{pid}/status"))
        .assert_ok()
        .stdout
}

fn boot_twice_and_leave_nothing(os: Os) {
    let mounts = host_mounts();
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.chroot_write("/etc/harden-test-marker", b"kept\n");
    m.boot();
    // The machine is the one asked for, with systemd as PID 1.
    let version = m.sh(". /etc/os-release && echo $VERSION_ID").assert_ok();
    assert_eq!(version.stdout.trim(), os.version_id());
    assert_eq!(m.sh("cat /proc/1/comm").assert_ok().stdout, "systemd\n");
    m.sh("test -d /run/systemd/system").assert_ok();
    // Commands have the container's bounding set, which lacks what reaches past it.
    assert_eq!(bounding_set(&m, "self"), bounding_set(&m, "1"));
    m.sh("grep -q '^CapBnd:' /proc/self/status && ! setpriv -d | grep -qw sys_module")
        .assert_ok();
    m.harden(&["--version"]).assert_ok();
    // Only a booted machine runs commands; only a stopped copy is edited by chroot.
    let chroot = panic::catch_unwind(AssertUnwindSafe(|| m.chroot_sh("true")));
    assert!(chroot.is_err(), "a chroot command ran in a running machine");
    let machine_id = m.read("/etc/machine-id");
    assert_eq!(
        m.poweroff(),
        0,
        "nspawn's exit status after a clean poweroff"
    );
    let stopped = panic::catch_unwind(AssertUnwindSafe(|| m.sh("true")));
    assert!(stopped.is_err(), "a command ran in a machine that is off");
    // The reboot is over the same upper layer.
    m.boot();
    assert_eq!(m.read("/etc/harden-test-marker"), "kept\n");
    assert_eq!(m.read("/etc/machine-id"), machine_id);
    let traces = m.traces();
    drop(m);
    assert_eq!(traces.left_behind(), Vec::<String>::new());
    assert_eq!(host_mounts(), mounts, "the host's mount table changed");
}

#[test]
fn debian12_boots_reboots_and_leaves_nothing() {
    boot_twice_and_leave_nothing(Os::Debian12);
}

#[test]
fn debian13_boots_reboots_and_leaves_nothing() {
    boot_twice_and_leave_nothing(Os::Debian13);
}

#[test]
fn a_test_that_panics_in_a_booted_machine_leaves_nothing() {
    if !crate::support::root_available() {
        return;
    }
    let mounts = host_mounts();
    let mut traces: Option<Traces> = None;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut m = Booted::new(Os::Debian13);
        let peer = m.spawn_peer();
        m.boot();
        traces = Some(m.traces());
        // A daemon of the test's own, and a session from the peer, still running.
        m.sh("setsid sleep 600 >/dev/null 2>&1 &").assert_ok();
        peer.sh(&format!("ping -c 1 -W 5 {}", peer.sandbox_addr()))
            .assert_ok();
        panic!("the test fails here");
    }));
    assert!(outcome.is_err());
    let traces = traces.expect("the machine booted");
    assert_eq!(traces.left_behind(), Vec::<String>::new());
    assert_eq!(host_mounts(), mounts, "the host's mount table changed");
}
