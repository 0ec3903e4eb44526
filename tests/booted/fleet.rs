//! A fleet rollout with the shipped Ansible example: three booted hosts (Debian 12, and
//! Debian 13), each in its own network namespace, on a bridge in a controller namespace, where
//! this machine's `ansible-playbook` rolls the binary under test out over real SSH, in the
//! example's batches.
//!
//! The story an operator lives through: a first rollout stops at its first batch because
//! harden refuses one host (root is the only account there with a key, and the site playbook
//! turns root logins off), the hosts of later batches untouched; the operator gives that host
//! a keyed admin, and the rollout then changes every host; a second one changes nothing.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use super::{keyed_admin, site_playbook, sshd_t, TEST_PASSWORD};
use crate::support::booted::{Booted, Controller, Os, Traces};
use crate::support::Run;

/// The shipped example.
const PLAYBOOK: &str = include_str!("../../examples/ansible/harden.yml");

/// Inventory names and bridge addresses of the hosts, in inventory (and so batch) order.
const HOSTS: [(&str, &str); 3] = [
    ("fleet1", "192.0.2.11"),
    ("fleet2", "192.0.2.12"),
    ("fleet3", "192.0.2.13"),
];

/// The controller's working directory (its private `/tmp`).
const WORK: &str = "/tmp/fleet";

/// The controller's private key, the one every host's admin authorizes.
const KEY: &str = "/tmp/fleet/id_ed25519";

/// How long one `ansible-playbook` run may take: three batches of one host, each a full apply.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(900);

/// The controller and its hosts; dropping it tears them all down.
struct Fleet {
    controller: Controller,
    hosts: Vec<Booted>,
}

impl Fleet {
    /// Boots the three hosts side by side and links them to a new controller; `None` when
    /// the test must be skipped for want of root.
    fn boot(os: Os) -> Option<Fleet> {
        let mut hosts = Vec::new();
        for _ in HOSTS {
            let host = crate::booted!(os)?;
            // The copy's PostgreSQL has no part here; not starting it three times keeps the
            // boots short.
            host.chroot_sh("ln -sf /dev/null /etc/systemd/system/postgresql.service")
                .assert_ok();
            hosts.push(host);
        }
        let controller = Controller::new();
        controller.set_timeout(ROLLOUT_TIMEOUT);
        let mut fleet = Fleet { controller, hosts };
        thread::scope(|scope| {
            for host in &mut fleet.hosts {
                scope.spawn(move || host.boot());
            }
        });
        for (host, (_, addr)) in fleet.hosts.iter().zip(HOSTS) {
            fleet.controller.link(host, addr);
        }
        Some(fleet)
    }

    /// The host named `name` in the inventory.
    fn host(&self, name: &str) -> &Booted {
        let index = HOSTS
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no host {name}"));
        &self.hosts[index]
    }

    /// What a leak check looks for once the fleet is gone.
    fn traces(&self) -> Vec<Traces> {
        let mut traces: Vec<Traces> = self.hosts.iter().map(Booted::traces).collect();
        traces.push(self.controller.traces());
        traces
    }

    /// Writes the inventory: the example's group variables (admin over SSH, python3), the
    /// controller's key, this machine's SSH client settings and known hosts kept out, and
    /// `su` to root for `become` (the Debian 12 copy of this machine has no sudo). `extra` is
    /// appended to the line of the host it names.
    fn inventory(&self, extra: &[(&str, &str)]) {
        let mut text = String::from("[harden]\n");
        for (name, addr) in HOSTS {
            text.push_str(&format!("{name} ansible_host={addr}"));
            for (_, vars) in extra.iter().filter(|(host, _)| *host == name) {
                text.push_str(&format!(" {vars}"));
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "\n[harden:vars]\nansible_user=admin\nansible_python_interpreter=/usr/bin/python3\n\
             ansible_ssh_private_key_file={KEY}\n\
             ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=/dev/null'\n\
             ansible_become_method=su\nansible_become_password={TEST_PASSWORD}\n"
        ));
        self.controller
            .write(&format!("{WORK}/inventory.ini"), &text);
    }

    /// `ansible-playbook` of the shipped example in the controller, against the inventory,
    /// with the binary under test and the site playbook; prints how long it took.
    fn rollout(&self, what: &str) -> Run {
        let started = Instant::now();
        let run = self.controller.sh(&format!(
            "cd {WORK} && ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=False \
             ansible-playbook -i inventory.ini -e harden_binary={bin} \
             -e harden_site_playbook={WORK}/site.yaml harden.yml",
            bin = env!("CARGO_BIN_EXE_harden"),
        ));
        let recap = run
            .stdout
            .split("PLAY RECAP")
            .nth(1)
            .unwrap_or("(no recap)");
        eprintln!(
            "fleet: {what} took {:.1?}, exit {}; recap:{}",
            started.elapsed(),
            run.status,
            recap.trim_end()
        );
        run
    }
}

/// The PLAY RECAP counters of `host` (`ok`, `changed`, `failed`, ...), or `None` when the
/// recap does not list it (Ansible never reached it).
fn recap(run: &Run, host: &str) -> Option<BTreeMap<String, u32>> {
    let recap = run.stdout.split("PLAY RECAP").nth(1)?;
    let line = recap
        .lines()
        .find(|l| l.split_whitespace().next() == Some(host) && l.contains(" changed="))?;
    Some(
        line.split_whitespace()
            .filter_map(|field| field.split_once('='))
            .filter_map(|(name, n)| Some((name.to_owned(), n.parse().ok()?)))
            .collect(),
    )
}

/// A counter of the recap of `host`; panics if the recap does not list it.
#[track_caller]
fn count(run: &Run, host: &str, name: &str) -> u32 {
    let counters = recap(run, host).unwrap_or_else(|| panic!("no recap of {host} in: {run}"));
    *counters
        .get(name)
        .unwrap_or_else(|| panic!("no {name}= in the recap of {host}: {counters:?}"))
}

/// The controller's key pair, the example and the site playbook in its working directory;
/// returns the public key.
fn prepare_controller(controller: &Controller) -> String {
    controller.write(&format!("{WORK}/harden.yml"), PLAYBOOK);
    controller.write(&format!("{WORK}/site.yaml"), &site_playbook());
    controller
        .sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C controller -f {KEY} && cat {KEY}.pub"
        ))
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

/// Root's password (what `su` asks for) and, for root, `public_key` as its only authorized
/// key.
fn root_with_key(host: &Booted, public_key: &str) {
    host.sh("install -d -m 0700 /root/.ssh").assert_ok();
    host.write("/root/.ssh/authorized_keys", &format!("{public_key}\n"));
    host.sh("chmod 0600 /root/.ssh/authorized_keys").assert_ok();
}

/// Panics unless `host` is as the copy booted: no harden installed, sshd's stock settings,
/// ufw off.
#[track_caller]
fn assert_untouched(fleet: &Fleet, name: &str, installed: bool) {
    let host = fleet.host(name);
    if !installed {
        host.sh("test ! -e /usr/local/sbin/harden && test ! -e /etc/harden")
            .assert_ok();
    }
    let t = sshd_t(host);
    for line in ["permitrootlogin without-password", "maxauthtries 6"] {
        assert!(
            t.iter().any(|l| l == line),
            "{name} was changed: no {line:?} in sshd -T:\n{t:?}"
        );
    }
    host.sh("ufw status | grep -qx 'Status: inactive'")
        .assert_ok();
}

/// Panics unless `host` is hardened as the site playbook says, and its snapshot is listed.
#[track_caller]
fn assert_hardened(fleet: &Fleet, name: &str) {
    let host = fleet.host(name);
    let t = sshd_t(host);
    for line in [
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "maxauthtries 3",
    ] {
        assert!(
            t.iter().any(|l| l == line),
            "{name}: no {line:?} in sshd -T:\n{t:?}"
        );
    }
    host.sh("ufw status | grep -qx 'Status: active'")
        .assert_ok();
    host.sh("/usr/local/sbin/harden snapshots | grep -q /etc/harden/site.yaml")
        .assert_ok();
}

/// The first rollout: fleet1 (the first batch) has a key for root only, and Ansible logs in
/// as root there. harden refuses, fleet1 fails alone and the rollout stops before the next
/// batch: fleet2 and fleet3 are not in the recap and not touched.
fn refused_rollout_stops_at_the_first_batch(fleet: &Fleet, public_key: &str) {
    root_with_key(fleet.host("fleet1"), public_key);
    fleet.inventory(&[("fleet1", "ansible_user=root ansible_become=false")]);
    let run = fleet.rollout("the refused rollout");
    assert_eq!(run.status, 2, "{run}");
    assert_eq!(count(&run, "fleet1", "failed"), 1, "{run}");
    assert_eq!(count(&run, "fleet1", "unreachable"), 0, "{run}");
    for part in [
        "harden apply failed on fleet1 with exit code",
        "refused by a lockout guard, nothing was changed",
        "root is the only account that can log in with a key",
        "NO MORE HOSTS LEFT",
    ] {
        assert!(run.stdout.contains(part), "no {part:?} in: {run}");
    }
    for name in ["fleet2", "fleet3"] {
        assert!(recap(&run, name).is_none(), "{name} was reached: {run}");
        assert!(!run.stdout.contains(&format!("[{name}]")), "{run}");
        assert_untouched(fleet, name, false);
    }
    // The binary and the site playbook were installed on fleet1; nothing else changed.
    assert_untouched(fleet, "fleet1", true);
}

/// The rollout once fleet1 has a keyed admin: every host changed and hardened.
fn rollout_changes_every_host(fleet: &Fleet) {
    fleet.inventory(&[]);
    let run = fleet.rollout("the first full rollout");
    assert_eq!(run.status, 0, "{run}");
    for (name, _) in HOSTS {
        assert!(count(&run, name, "changed") > 0, "{name}: {run}");
        assert_eq!(count(&run, name, "failed"), 0, "{name}: {run}");
        assert!(
            run.stdout.contains(&format!("{name}: changed: ")),
            "no changed summary of {name}: {run}"
        );
        assert_hardened(fleet, name);
    }
}

/// The same rollout again: nothing to do anywhere.
fn second_rollout_changes_nothing(fleet: &Fleet) {
    let run = fleet.rollout("the second full rollout");
    assert_eq!(run.status, 0, "{run}");
    for (name, _) in HOSTS {
        assert_eq!(count(&run, name, "changed"), 0, "{name}: {run}");
        assert_eq!(count(&run, name, "failed"), 0, "{name}: {run}");
        assert!(
            run.stdout.contains(&format!("{name}: unchanged: ")),
            "no unchanged summary of {name}: {run}"
        );
    }
}

/// Panics unless nothing of the fleet is left: no directory, cgroup or process.
#[track_caller]
fn assert_nothing_left(traces: &[Traces]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = traces.iter().flat_map(Traces::left_behind).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the fleet left behind: {left:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[track_caller]
fn refused_host_stops_the_rollout_then_every_host_is_hardened(os: Os) {
    let started = Instant::now();
    let Some(fleet) = Fleet::boot(os) else { return };
    eprintln!(
        "fleet: three hosts booted and linked in {:.1?}",
        started.elapsed()
    );
    let public_key = prepare_controller(&fleet.controller);
    for (name, _) in HOSTS {
        let host = fleet.host(name);
        host.sh_with_stdin("chpasswd", &format!("root:{TEST_PASSWORD}\n"))
            .assert_ok();
        if name != "fleet1" {
            keyed_admin(host, &public_key);
        }
    }
    refused_rollout_stops_at_the_first_batch(&fleet, &public_key);
    keyed_admin(fleet.host("fleet1"), &public_key);
    rollout_changes_every_host(&fleet);
    second_rollout_changes_nothing(&fleet);
    let traces = fleet.traces();
    drop(fleet);
    assert_nothing_left(&traces);
    eprintln!("fleet: the whole test took {:.1?}", started.elapsed());
}

#[test]
fn debian12_fleet_rollout_stops_at_a_refused_host_then_hardens_every_host() {
    refused_host_stops_the_rollout_then_every_host_is_hardened(Os::Debian12);
}

#[test]
fn debian13_fleet_rollout_stops_at_a_refused_host_then_hardens_every_host() {
    refused_host_stops_the_rollout_then_every_host_is_hardened(Os::Debian13);
}
