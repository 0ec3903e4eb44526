//! Kernel settings under systemd-nspawn: the container's own network namespace takes its
//! `net.*` keys live, and the rest of its `/proc/sys` is read-only, so those keys are written
//! for the next boot with a warning instead of failing the apply. A rollback puts the live
//! network value back. This machine's own values are checked unchanged from the test process.

use crate::support::booted::{Booted, Os};

const NET: &str = "net.ipv4.conf.all.log_martians";
const READ_ONLY: &str = "kernel.kptr_restrict";
const FILE: &str = "/etc/sysctl.d/99-zz-harden.conf";

fn sysctl_n(m: &Booted, key: &str) -> String {
    m.exec(&["sysctl", "-n", key])
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

/// This machine's own value of `key`, read by the test process.
fn machine_value(key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_owned()
}

fn flip(value: &str) -> &'static str {
    if value == "0" {
        "1"
    } else {
        "0"
    }
}

fn network_keys_apply_live_and_the_rest_at_next_boot(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.boot();
    let machine = (machine_value(NET), machine_value(READ_ONLY));
    let before = (sysctl_n(&m, NET), sysctl_n(&m, READ_ONLY));
    let want = (flip(&before.0), flip(&before.1));
    m.write(
        "/root/sysctl.yaml",
        &format!("sysctl:\n  {NET}: {}\n  {READ_ONLY}: {}\n", want.0, want.1),
    );
    let plan = m.harden(&["plan", "/root/sysctl.yaml"]).assert_ok();
    assert!(plan.stdout.contains(&format!("~ sysctl {FILE}")), "{plan}");
    assert!(plan.stdout.contains("~ sysctl running kernel"), "{plan}");
    assert!(
        plan.stdout
            .contains(&format!("{READ_ONLY} is read-only here")),
        "{plan}"
    );

    let apply = m.harden(&["apply", "/root/sysctl.yaml"]).assert_ok();
    assert!(apply.output().contains("applied at next boot"), "{apply}");
    assert_eq!(sysctl_n(&m, NET), want.0);
    assert_eq!(
        sysctl_n(&m, READ_ONLY),
        before.1,
        "a read-only key cannot move"
    );
    assert!(m
        .read(FILE)
        .contains(&format!("{READ_ONLY} = {}\n", want.1)));
    m.harden(&["plan", "--detailed-exitcode", "/root/sysctl.yaml"])
        .assert_status(0);

    m.harden(&["rollback"]).assert_ok();
    assert_eq!(
        sysctl_n(&m, NET),
        before.0,
        "the live value was not put back"
    );
    assert!(
        !m.sh(&format!("test -e {FILE}")).success(),
        "file not removed"
    );
    assert_eq!(
        (machine_value(NET), machine_value(READ_ONLY)),
        machine,
        "this machine's own values moved"
    );
}

#[test]
fn debian12_network_keys_apply_live_and_the_rest_at_next_boot() {
    network_keys_apply_live_and_the_rest_at_next_boot(Os::Debian12);
}

#[test]
fn debian13_network_keys_apply_live_and_the_rest_at_next_boot() {
    network_keys_apply_live_and_the_rest_at_next_boot(Os::Debian13);
}
