//! The harness itself: a boot comes up, commands run inside, a reboot keeps the upper
//! layer, and nothing is left behind.

use crate::support::booted::Os;

fn boot_twice_and_leave_nothing(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.chroot_write("/etc/harden-test-marker", b"kept\n");
    m.boot();
    let first_id = m.read("/etc/machine-id");
    m.sh(". /etc/os-release && echo $VERSION_ID").assert_ok();
    assert_eq!(m.poweroff(), 0);
    m.boot();
    assert_eq!(m.read("/etc/harden-test-marker"), "kept\n");
    assert_eq!(m.read("/etc/machine-id"), first_id);
    let traces = m.traces();
    drop(m);
    assert_eq!(traces.left_behind(), Vec::<String>::new());
}

#[test]
fn debian12_boots_reboots_and_leaves_nothing() {
    boot_twice_and_leave_nothing(Os::Debian12);
}

#[test]
fn debian13_boots_reboots_and_leaves_nothing() {
    boot_twice_and_leave_nothing(Os::Debian13);
}
