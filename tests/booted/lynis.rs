//! The built-in baseline judged by Lynis on booted Debian 12 and 13: the hardening index
//! after `harden apply`, no Lynis warning that the apply caused, key login kept and
//! passwords refused, and a second plan with nothing to do. Offline: the packages the
//! baseline installs (and Lynis itself on Debian 13) come from each release's local cache.

use super::{keyed_admin, peer_key, ssh_with_key, ssh_with_password, TEST_PASSWORD};
use crate::support::apt_cache;
use crate::support::booted::{Booted, Os};

/// The hardening index the baseline must reach on both releases.
const FLOOR: u32 = 80;

/// Runs Lynis's quick audit; returns its hardening index and its warnings (by test id).
fn lynis(m: &Booted) -> (u32, Vec<String>) {
    m.sh("rm -f /var/log/lynis-report.dat && lynis audit system --quick --no-colors >/var/log/lynis-run.log 2>&1")
        .assert_ok();
    let report = m.read("/var/log/lynis-report.dat");
    let index = report
        .lines()
        .find_map(|l| l.strip_prefix("hardening_index="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hardening index in Lynis's report:\n{report}"));
    let warnings = report
        .lines()
        .filter_map(|l| l.strip_prefix("warning[]="))
        .map(|w| w.split('|').next().unwrap_or(w).to_owned())
        .collect();
    (index, warnings)
}

/// The tests of the last audit that gave fewer hardening points than they could, from
/// Lynis's log: `TEST-ID: ... (got of max)`.
fn points_missed(m: &Booted) -> String {
    m.sh("awk '/Performing test ID/ {id = $NF} /assigned partial number of hardening points/ {print id \": \" $0}' /var/log/lynis.log")
        .stdout
}

fn the_baseline_reaches_the_lynis_floor(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.set_timeout(std::time::Duration::from_secs(900));
    apt_cache::stage_in_booted(&m);
    let peer = m.spawn_peer();
    let key = peer_key(&peer);
    m.boot();
    keyed_admin(&m, &key);
    // The admin's password predates the baseline's password quality rules.
    m.sh_with_stdin("chpasswd", &format!("admin:{TEST_PASSWORD}\n"))
        .assert_ok();
    apt_cache::use_in_booted(&m);
    if os == Os::Debian13 {
        m.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null")
            .assert_ok();
    }
    let (before, warned_before) = lynis(&m);

    m.harden(&["apply"]).assert_ok();
    let (after, warned_after) = lynis(&m);
    eprintln!(
        "lynis on {os:?}: hardening index {before} before the baseline, {after} after; \
         warnings before {warned_before:?}, after {warned_after:?}"
    );
    let caused: Vec<&String> = warned_after
        .iter()
        .filter(|w| !warned_before.contains(w))
        .collect();
    assert!(
        caused.is_empty(),
        "warnings the apply caused on {os:?}: {caused:?}"
    );
    assert!(
        after >= FLOOR,
        "hardening index {after} on {os:?} (before: {before}), floor {FLOOR}; points missed:\n{}",
        points_missed(&m)
    );
    let who = ssh_with_key(&peer, "admin", "id -un").assert_ok();
    assert_eq!(who.stdout.trim(), "admin", "{who}");
    let refused = ssh_with_password(&peer, "admin").assert_fails();
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "the password login was not refused for want of a key: {refused}"
    );
    m.harden(&["plan", "--detailed-exitcode"]).assert_status(0);
}

#[test]
fn debian12_the_baseline_reaches_the_lynis_floor() {
    the_baseline_reaches_the_lynis_floor(Os::Debian12);
}

#[test]
fn debian13_the_baseline_reaches_the_lynis_floor() {
    the_baseline_reaches_the_lynis_floor(Os::Debian13);
}
