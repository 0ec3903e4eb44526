//! harden's speed against its references, each pair timed on the same work in the same
//! disposable copy of this machine (the test sandbox: an overlay of `/` in private
//! namespaces), so that the machine's noise cancels in the ratios.
//!
//! Run as root: `bash benches/setup.sh && cargo bench --bench speed` (the setup installs the
//! pinned Ansible from PyPI into a virtual environment). `HARDEN_BENCH_LARGE=1` adds the
//! 1,000,000-entry tree; `HARDEN_BENCH_TRACE=plan` (or `apply`, or `converged`: the plan after
//! an apply) prints instead every program one
//! run of harden starts, with times (strace), to show where its time goes;
//! `HARDEN_BENCH_ONLY=playbook,ufw,tree` (any of them) runs only those parts. The table it
//! prints is the README's speed table.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;

use support::{keyed_admin, start_sshd, Sandbox, HARDEN_IN_SANDBOX};

/// The Ansible the setup script installs.
const ANSIBLE: &str = "/var/cache/harden-bench/ansible-10.7.0/bin/ansible-playbook";

/// Times a command inside the copy: `runs` runs, the median wall time, and the peak
/// resident memory of the largest process among them. Fails on an exit code not in `ok`.
const TIMER: &str = r#"
import json, resource, subprocess, sys, time
runs, ok, cmd = int(sys.argv[1]), [int(c) for c in sys.argv[2].split(",")], sys.argv[3:]
times = []
for _ in range(runs):
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times.append(time.perf_counter() - start)
    if done.returncode not in ok:
        sys.exit("%s exited with %d: %s" % (cmd, done.returncode, done.stderr.decode()[-2000:]))
times.sort()
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"median": times[len(times) // 2], "peak_kb": peak}))
"#;

/// One timing: median seconds and peak memory in MB.
#[derive(Clone, Copy)]
struct Timing {
    secs: f64,
    peak_mb: f64,
}

fn time(sb: &Sandbox, runs: u32, ok: &str, cmd: &str) -> Timing {
    sb.write("/tmp/timer.py", TIMER);
    let out = sb
        .sh(&format!("/usr/bin/python3 /tmp/timer.py {runs} {ok} {cmd}"))
        .assert_ok();
    let doc: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("the timer's JSON");
    Timing {
        secs: doc["median"].as_f64().expect("median"),
        peak_mb: doc["peak_kb"].as_f64().expect("peak") / 1024.0,
    }
}

/// The rows of the table.
#[derive(Default)]
struct Table {
    rows: String,
}

impl Table {
    fn row(&mut self, work: &str, harden: Timing, reference: Option<(&str, Timing)>, goal: &str) {
        let (reference, ratio) = match reference {
            Some((name, t)) => (
                format!("{name}: {}", secs(t.secs)),
                format!("{:.1}×", t.secs / harden.secs),
            ),
            None => ("—".into(), "—".into()),
        };
        let _ = writeln!(
            self.rows,
            "| {work} | {} | {:.0} MB | {reference} | {ratio} | {goal} |",
            secs(harden.secs),
            harden.peak_mb
        );
        eprintln!(
            "speed: {work}: {} ({reference}, {ratio})",
            secs(harden.secs)
        );
    }
}

fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

/// The work Ansible and harden both do: sshd 5 keys, ufw deny plus 22, 3 file modes,
/// unattended-upgrades, fail2ban's sshd jail.
const PLAYBOOK: &str = "sshd:
  config:
    PasswordAuthentication: false
    PermitRootLogin: prohibit-password
    X11Forwarding: false
    MaxAuthTries: 3
    ClientAliveInterval: 300
ufw:
  enabled: true
  default: { incoming: deny, outgoing: allow }
  rules:
    - { allow: 22/tcp }
files:
  - { path: /etc/ssh/sshd_config, mode: '0600' }
  - { path: /etc/issue, mode: '0600' }
  - { path: /etc/issue.net, mode: '0600' }
unattended_upgrades:
  enabled: true
fail2ban:
  jails:
    sshd: { enabled: true, maxretry: 5, bantime: 1h }
";

const ANSIBLE_PLAYBOOK: &str = "- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: sshd settings
      ansible.builtin.copy:
        dest: /etc/ssh/sshd_config.d/10-hardening.conf
        mode: '0644'
        content: |
          PasswordAuthentication no
          PermitRootLogin prohibit-password
          X11Forwarding no
          MaxAuthTries 3
          ClientAliveInterval 300
        validate: /usr/sbin/sshd -t -f %s
      notify: reload sshd
    - name: incoming deny
      community.general.ufw: { default: deny, direction: incoming }
    - name: outgoing allow
      community.general.ufw: { default: allow, direction: outgoing }
    - name: ssh
      community.general.ufw: { rule: allow, port: '22', proto: tcp }
    - name: enabled
      community.general.ufw: { state: enabled }
    - { name: sshd_config mode, ansible.builtin.file: { path: /etc/ssh/sshd_config, mode: '0600' } }
    - { name: issue mode, ansible.builtin.file: { path: /etc/issue, mode: '0600' } }
    - { name: issue.net mode, ansible.builtin.file: { path: /etc/issue.net, mode: '0600' } }
    - name: unattended-upgrades installed
      ansible.builtin.apt: { name: unattended-upgrades, state: present }
    - name: unattended-upgrades enabled
      ansible.builtin.copy:
        dest: /etc/apt/apt.conf.d/20auto-upgrades
        content: |
          APT::Periodic::Update-Package-Lists \"1\";
          APT::Periodic::Unattended-Upgrade \"1\";
    - name: sshd jail
      ansible.builtin.copy:
        dest: /etc/fail2ban/jail.d/sshd.local
        content: |
          [sshd]
          enabled = true
          maxretry = 5
          bantime = 1h
      notify: reload fail2ban
  handlers:
    - { name: reload sshd, ansible.builtin.command: pkill -HUP -x sshd }
    - { name: reload fail2ban, ansible.builtin.command: fail2ban-client reload }
";

/// A copy as a cloud server comes up: a keyed admin, sshd and fail2ban running.
fn server() -> Sandbox {
    let sb = Sandbox::new();
    keyed_admin(&sb);
    start_sshd(&sb);
    sb.sh("touch /var/log/auth.log && mkdir -p /run/fail2ban && fail2ban-client -x start >/dev/null 2>&1 && fail2ban-client ping >/dev/null")
        .assert_ok();
    sb.write("/root/pb.yaml", PLAYBOOK);
    sb.write("/root/site.yml", ANSIBLE_PLAYBOOK);
    sb
}

fn harden(args: &str) -> String {
    format!("{HARDEN_IN_SANDBOX} {args}")
}

fn ansible(args: &str) -> String {
    format!("env ANSIBLE_NOCOLOR=1 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 {ANSIBLE} -i localhost, {args} /root/site.yml")
}

fn playbook_against_ansible(table: &mut Table) {
    let ours = server();
    let sshd_t = time(&ours, 11, "0", "/usr/sbin/sshd -T");
    let plan = time(&ours, 11, "0", &harden("plan /root/pb.yaml"));
    let first = time(&ours, 1, "0", &harden("apply /root/pb.yaml"));
    let second = time(&ours, 5, "0", &harden("apply /root/pb.yaml"));
    let converged = time(
        &ours,
        11,
        "0",
        &harden("plan --detailed-exitcode /root/pb.yaml"),
    );

    let theirs = server();
    let check = time(&theirs, 3, "0", &ansible("--check"));
    let apply = time(&theirs, 1, "0", &ansible(""));
    let again = time(&theirs, 3, "0", &ansible(""));

    table.row(
        "plan of the playbook",
        plan,
        Some(("`ansible-playbook --check`", check)),
        "≥ 150×, ≤ 20 MB",
    );
    table.row(
        "first apply",
        first,
        Some(("Ansible's first apply", apply)),
        "≥ 20×",
    );
    table.row(
        "second apply (nothing to do)",
        second,
        Some(("Ansible's second apply", again)),
        "≥ 150×",
    );
    table.row(
        "converged plan",
        converged,
        Some(("one `sshd -T`", sshd_t)),
        "harden ≤ 1.5× it",
    );
}

fn ufw_rules(table: &mut Table) {
    let mut rules = String::from(
        "ufw:\n  enabled: true\n  default: { incoming: deny }\n  rules:\n    - { allow: 22/tcp }\n",
    );
    let mut loop_ = String::from("ufw allow 22/tcp");
    for port in 10000..10049 {
        let _ = writeln!(rules, "    - {{ allow: {port}/tcp }}");
        let _ = write!(loop_, " && ufw allow {port}/tcp");
    }
    for active in [false, true] {
        let ours = Sandbox::new();
        let theirs = Sandbox::new();
        for sb in [&ours, &theirs] {
            sb.write("/root/ufw.yaml", &rules);
            sb.write(
                "/root/ufw.sh",
                &format!("{loop_} && ufw default deny incoming && ufw --force enable\n"),
            );
            if active {
                sb.sh("ufw allow 2222/tcp && ufw --force enable")
                    .assert_ok();
            }
        }
        let harden = time(&ours, 1, "0", &harden("apply /root/ufw.yaml"));
        let one_by_one = time(&theirs, 1, "0", "sh /root/ufw.sh");
        let state = if active {
            "an active firewall"
        } else {
            "an inactive firewall, then enabled"
        };
        table.row(
            &format!("apply of 50 ufw rules, {state}"),
            harden,
            Some(("one `ufw` process per rule", one_by_one)),
            "≤ 1 s",
        );
    }
}

/// A tree of `dirs` directories of `files` files each, plus its root, in two identical
/// copies: one for harden, one for `chmod -R`.
fn tree(dirs: u32, files: u32) -> Sandbox {
    let sb = Sandbox::new();
    sb.set_timeout(std::time::Duration::from_secs(1800));
    sb.sh(&format!(
        "/usr/bin/python3 -c \"
import os
for root in ('/srv/tree', '/srv/chmod'):
    for d in range({dirs}):
        path = '%s/d%d' % (root, d)
        os.makedirs(path, mode=0o755)
        for f in range({files}):
            os.close(os.open('%s/f%d' % (path, f), os.O_CREAT | os.O_WRONLY, 0o644))
\"",
    ))
    .assert_ok();
    sb.write(
        "/root/tree.yaml",
        "files:\n  - { path: /srv/tree, mode: 'u=rwX,g=rX,o=', recurse: true }\n",
    );
    sb
}

fn tree_against_find_and_chmod(table: &mut Table, dirs: u32, files: u32) {
    let entries = u64::from(dirs) * u64::from(files + 1) + 1;
    let sb = tree(dirs, files);
    let find = time(&sb, 5, "0", "find /srv/tree -xdev -printf '%m %U %G\\n'");
    let plan = time(&sb, 5, "0", &harden("plan /root/tree.yaml"));
    let apply = time(&sb, 1, "0", &harden("apply /root/tree.yaml"));
    let chmod = time(&sb, 1, "0", "chmod -R u=rwX,g=rX,o= /srv/chmod");
    let replan = time(
        &sb,
        5,
        "0",
        &harden("plan --detailed-exitcode /root/tree.yaml"),
    );
    let n = harden_plan::grouped(entries);
    table.row(
        &format!("plan, {n}-entry tree"),
        plan,
        Some(("`find -printf`", find)),
        "harden ≤ 1.2× it",
    );
    table.row(
        &format!("apply, {n}-entry tree"),
        apply,
        Some(("`chmod -R`", chmod)),
        "harden ≤ 1.5× it, ≤ 64 MB",
    );
    table.row(
        &format!("re-plan, {n}-entry tree"),
        replan,
        Some(("`find -printf`", find)),
        "harden ≤ 1.2× it",
    );
}

/// Where the time of `harden COMMAND /root/pb.yaml` goes: every program it starts, with
/// the time it started and the time it ended (`HARDEN_BENCH_STRACE` replaces the filter,
/// `-e trace=all` for every system call).
fn trace(command: &str) {
    let sb = server();
    // `converged`: the plan after an apply, when there is nothing to do.
    let command = if command == "converged" {
        sb.sh(&harden("apply /root/pb.yaml")).assert_ok();
        "plan"
    } else {
        command
    };
    let run = harden(&format!("{command} /root/pb.yaml"));
    // `HARDEN_BENCH_PROFILE=1`: where harden's own processor time goes (perf, harden's
    // process only, not the programs it starts).
    let script = if std::env::var_os("HARDEN_BENCH_PROFILE").is_some() {
        format!(
            "perf stat -e task-clock --no-inherit {run} 2>&1 >/dev/null | grep -e task-clock -e elapsed; \
             perf record -q --no-inherit -F 20000 -g -o /tmp/perf.data {run} >/dev/null 2>&1; \
             perf report -i /tmp/perf.data --no-children --sort dso,symbol -g none 2>/dev/null | grep '%' | head -60 | cut -c1-150"
        )
    } else {
        let filter = std::env::var("HARDEN_BENCH_STRACE")
            .unwrap_or_else(|_| "-e trace=execve,exit_group".into());
        format!(
            "strace --seccomp-bpf -f -tt {filter} -e signal=none -o /tmp/trace {run} >/dev/null; \
             grep -v -e resumed -e ENOENT /tmp/trace | cut -c1-150"
        )
    };
    let out = sb.sh(&script).assert_ok();
    println!("{}", out.stdout);
}

fn main() {
    if !support::root_available() {
        eprintln!("speed: needs root (the copies are mount and network namespaces)");
        std::process::exit(1);
    }
    if !std::path::Path::new(ANSIBLE).exists() {
        eprintln!("speed: Ansible is missing: run `bash benches/setup.sh` first");
        std::process::exit(1);
    }
    if let Ok(command) = std::env::var("HARDEN_BENCH_TRACE") {
        trace(&command);
        return;
    }
    let only = std::env::var("HARDEN_BENCH_ONLY").ok();
    let wanted = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    let mut table = Table::default();
    if wanted("playbook") {
        playbook_against_ansible(&mut table);
    }
    if wanted("ufw") {
        ufw_rules(&mut table);
    }
    if wanted("tree") {
        tree_against_find_and_chmod(&mut table, 100, 1000);
    }
    if std::env::var_os("HARDEN_BENCH_LARGE").is_some() {
        tree_against_find_and_chmod(&mut table, 1000, 1000);
    }
    println!("| work | harden | harden's peak memory | reference | ratio | goal |");
    println!("| --- | --- | --- | --- | --- | --- |");
    print!("{}", table.rows);
}
