//! End-to-end tests of the `ufw` resource: the real ufw, iptables and sshd in a sandbox,
//! with real TCP connections from a peer network namespace (192.0.2.2 -> 192.0.2.1).

use crate::support::fixtures::{admin_key_login, kernel_rules, keyed_admin, start_sshd};
use crate::support::{Peer, Sandbox};

/// Listens on `ports` in the sandbox (the kernel completes handshakes from the backlog).
fn listen(sb: &Sandbox, ports: &[u16]) {
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    sb.sh(&format!(
        "python3 -c \"import socket,time\nss=[socket.create_server(('0.0.0.0',p)) for p in ({list},)]\ntime.sleep(3600)\" >/dev/null 2>&1 &"
    ))
    .assert_ok();
    let wait = ports
        .iter()
        .map(|p| format!("ss -Hltn 'sport = :{p}' | grep -q ."))
        .collect::<Vec<_>>()
        .join(" && ");
    sb.sh(&format!(
        "for i in $(seq 50); do if {wait}; then exit 0; fi; sleep 0.1; done; exit 1"
    ))
    .assert_ok();
}

/// A brand-new TCP connection from the peer: `open`, `timeout` (dropped) or `refused`.
fn connect(peer: &Peer, port: u16) -> String {
    let script = format!(
        "import socket\ntry:\n    socket.create_connection(('{}', {port}), timeout=2).close(); print('open')\nexcept socket.timeout:\n    print('timeout')\nexcept ConnectionRefusedError:\n    print('refused')\n",
        peer.sandbox_addr()
    );
    peer.sh(&format!("python3 -c \"{script}\""))
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

/// ufw's view and its state files: what a rollback must restore.
fn ufw_state(sb: &Sandbox) -> String {
    sb.sh("ufw status numbered; ufw status verbose | grep -E '^(Logging|Default)'; cat /etc/ufw/user.rules /etc/ufw/user6.rules /etc/ufw/ufw.conf /etc/default/ufw /etc/ufw/after.rules")
        .assert_ok()
        .stdout
}

/// Checksums and times of ufw's state files: a no-op apply leaves them alone.
fn state_files(sb: &Sandbox) -> String {
    sb.sh("cd /etc/ufw && stat -c '%n %Y %Z %s' user.rules user6.rules ufw.conf after.rules /etc/default/ufw && sha256sum user.rules user6.rules ufw.conf /etc/default/ufw")
        .assert_ok()
        .stdout
}

const TRAFFIC: &str = "ufw:
  enabled: true
  default: { incoming: deny, outgoing: allow }
  logging: low
  rules:
    - { allow: 22/tcp, comment: ssh }
    - { allow: 443/tcp }
    - { allow: 1935/tcp, from: 192.0.2.2/32 }
    - { allow: 5000/tcp, from: 198.51.100.0/24 }
";

#[test]
fn real_traffic_follows_the_rules_and_a_second_apply_changes_nothing() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    listen(&sb, &[443, 8080, 1935, 5000]);
    assert_eq!(connect(&peer, 8080), "open", "ufw starts inactive");
    sb.write("/tmp/pb.yaml", TRAFFIC);

    let plan = sb.plan("/tmp/pb.yaml");
    let targets: Vec<&str> = plan.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "allow 22/tcp",
            "allow 443/tcp",
            "allow 1935/tcp from 192.0.2.2",
            "allow 5000/tcp from 198.51.100.0/24",
            "enabled"
        ]
    );
    let touches = match &plan.changes[0].steps[0] {
        harden_plan::Step::Run(command) => command.touches.clone(),
        other => panic!("a ufw command, not {other:?}"),
    };
    assert!(
        touches
            .iter()
            .any(|p| p.as_path() == std::path::Path::new("/etc/ufw/user6.rules")),
        "{touches:?}"
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    sb.sh("ufw status | grep -q 'Status: active'").assert_ok();
    assert_eq!(connect(&peer, 443), "open");
    assert_eq!(
        connect(&peer, 8080),
        "timeout",
        "default incoming deny drops it"
    );
    assert_eq!(
        connect(&peer, 1935),
        "open",
        "allowed from the peer's address"
    );
    assert_eq!(
        connect(&peer, 5000),
        "timeout",
        "allowed from another network only"
    );

    // Idempotent: no ufw command, no file touched, zero changes.
    let files = state_files(&sb);
    let rules = kernel_rules(&sb);
    let again = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        again.stdout.contains("No changes. 8 unchanged."),
        "{}",
        again.stdout
    );
    assert!(!again.stderr.contains("run ufw"), "{}", again.stderr);
    assert_eq!(state_files(&sb), files);
    assert_eq!(kernel_rules(&sb), rules);
    assert_eq!(
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        0
    );
}

#[test]
fn order_is_kept_where_it_matters_with_real_inserts() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    listen(&sb, &[80, 81]);
    sb.sh("ufw allow 22/tcp && ufw allow 80/tcp && ufw allow 81/tcp && ufw --force enable")
        .assert_ok();
    assert_eq!(connect(&peer, 80), "open");
    // The denies must come before the allows they overlap: one per family for the
    // interface rule (IPv6 numbered after IPv4), one positional insert for the v4 one.
    sb.write(
        "/tmp/pb.yaml",
        "ufw:
  rules:
    - { allow: 22/tcp }
    - { deny: 80/tcp, interface: eth0 }
    - { allow: 80/tcp }
    - { reject: 81/tcp, from: 192.0.2.0/24 }
    - { allow: 81/tcp }
",
    );
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.stdout
            .contains("ufw insert 2 deny in on eth0 from 0.0.0.0/0 to 0.0.0.0/0 port 80 proto tcp"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("from ::/0 to ::/0"), "{}", plan.stdout);
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(connect(&peer, 80), "timeout");
    assert_eq!(connect(&peer, 81), "refused");
    let numbered = sb.sh("ufw status numbered").assert_ok().stdout;
    let at = |parts: &[&str]| {
        numbered
            .lines()
            .position(|l| parts.iter().all(|p| l.contains(p)))
            .unwrap_or_else(|| panic!("{parts:?}: {numbered}"))
    };
    assert!(
        at(&["] 80/tcp on eth0", "DENY"]) < at(&["] 80/tcp ", "ALLOW"]),
        "{numbered}"
    );
    assert!(
        at(&["80/tcp (v6) on eth0", "DENY"]) < at(&["80/tcp (v6)", "ALLOW"]),
        "{numbered}"
    );
    assert!(
        at(&["81/tcp", "REJECT"]) < at(&["] 81/tcp ", "ALLOW"]),
        "{numbered}"
    );
    sb.harden(&["apply", "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes.");

    // The wrong order is repaired by moving the rule that must go first.
    sb.sh("ufw --force delete 1 >/dev/null; ufw delete reject from 192.0.2.0/24 to any port 81 proto tcp && ufw allow 22/tcp && ufw reject from 192.0.2.0/24 to any port 81 proto tcp").assert_ok();
    assert_eq!(connect(&peer, 81), "open");
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(connect(&peer, 81), "refused");
    sb.harden(&["apply", "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes.");
}

#[test]
fn unlisted_rules_stay_without_purge_and_go_with_it_but_fail2ban_s_stay() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh(
        "ufw allow 22/tcp && ufw allow 8080/tcp && ufw allow from 198.51.100.0/24 to any port 25 proto tcp \
         && ufw prepend reject from 203.0.113.7 to any comment 'by Fail2Ban after 5 attempts against sshd' \
         && ufw --force enable",
    )
    .assert_ok();
    sb.write(
        "/tmp/keep.yaml",
        "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n",
    );
    let plan = sb.harden(&["plan", "/tmp/keep.yaml"]).assert_ok();
    assert!(
        plan.output()
            .contains("are not in the playbook and stay (purge: false)"),
        "{}",
        plan.output()
    );
    assert!(
        plan.output().contains("`allow 8080/tcp`")
            && plan
                .output()
                .contains("`allow 25/tcp from 198.51.100.0/24`"),
        "{}",
        plan.output()
    );
    sb.harden(&["apply", "/tmp/keep.yaml"]).assert_ok();
    let status = sb.sh("ufw status").assert_ok().stdout;
    assert!(
        status.contains("8080/tcp") && status.contains("443/tcp"),
        "{status}"
    );

    sb.write(
        "/tmp/purge.yaml",
        "ufw:\n  purge: true\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n",
    );
    let plan = sb.harden(&["plan", "/tmp/purge.yaml"]).assert_ok();
    assert!(
        plan.stdout.contains("ufw delete allow 8080/tcp"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("ufw delete allow in from 198.51.100.0/24 to 0.0.0.0/0 port 25 proto tcp"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("not in the playbook (purge: true)"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("203.0.113.7 to"),
        "fail2ban's rule is never deleted: {}",
        plan.stdout
    );
    sb.harden(&["apply", "/tmp/purge.yaml"]).assert_ok();
    let status = sb.sh("ufw status").assert_ok().stdout;
    assert!(
        !status.contains("8080") && !status.contains("25/tcp"),
        "{status}"
    );
    assert!(status.contains("203.0.113.7"), "{status}");
    sb.harden(&["apply", "/tmp/purge.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes.");
}

#[test]
fn the_lockout_guard_refuses_and_a_new_ssh_connection_works_when_allowed() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    sb.sh("mkdir -p /run/sshd && /usr/sbin/sshd").assert_ok();
    sb.write("/tmp/bad.yaml", "ufw:\n  enabled: true\n  default: { incoming: deny }\n  rules:\n    - { allow: 443/tcp }\n");
    let before = ufw_state(&sb);
    let changed = || {
        sb.upper_entries()
            .into_iter()
            .filter(|e| !e.starts_with("var"))
            .collect::<Vec<_>>()
    };
    let upper = changed();
    let refused = sb.harden(&["apply", "/tmp/bad.yaml"]).assert_status(1);
    assert!(
        refused.output().contains("--allow ufw-ssh-port") && refused.output().contains("22/tcp"),
        "{}",
        refused.output()
    );
    assert_eq!(ufw_state(&sb), before);
    assert_eq!(
        changed(),
        upper,
        "a refused plan changes nothing (beyond harden's lock file)"
    );
    assert_eq!(connect(&peer, 22), "open");

    sb.write("/tmp/good.yaml", "ufw:\n  enabled: true\n  default: { incoming: deny }\n  rules:\n    - { limit: 22/tcp }\n    - { allow: 443/tcp }\n");
    let apply = sb.harden(&["apply", "/tmp/good.yaml"]).assert_ok();
    assert!(
        apply.output().contains("`limit` on the SSH port"),
        "{}",
        apply.output()
    );
    assert_eq!(
        connect(&peer, 22),
        "open",
        "a brand-new connection to sshd passes the firewall"
    );
    let banner = peer
        .sh(&format!(
            "timeout 5 nc -w 3 {} 22 </dev/null | head -1",
            peer.sandbox_addr()
        ))
        .assert_ok()
        .stdout;
    assert!(banner.starts_with("SSH-2.0-"), "{banner}");
    assert_eq!(connect(&peer, 8080), "timeout");

    // Purging the ssh rule of the active firewall is refused too; --allow overrides.
    sb.write(
        "/tmp/purge.yaml",
        "ufw:\n  purge: true\n  rules:\n    - { allow: 443/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/purge.yaml"])
        .assert_status(1)
        .assert_stderr_contains("ufw-ssh-port");
    sb.harden(&["apply", "--allow", "ufw-ssh-port", "/tmp/purge.yaml"])
        .assert_ok();
    assert_eq!(connect(&peer, 22), "timeout");
}

#[test]
fn the_guard_uses_the_port_a_drop_in_gives_sshd() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    sb.write("/etc/ssh/sshd_config.d/10-port.conf", "Port 2222\n");
    sb.sh("mkdir -p /run/sshd && /usr/sbin/sshd && sshd -T | grep -qx 'port 2222'")
        .assert_ok();
    sb.write(
        "/tmp/p22.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n",
    );
    let refused = sb.harden(&["plan", "/tmp/p22.yaml"]).assert_status(1);
    assert!(
        refused.output().contains("2222/tcp"),
        "{}",
        refused.output()
    );
    sb.write(
        "/tmp/p2222.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 2222/tcp }\n",
    );
    sb.harden(&["plan", "/tmp/p2222.yaml"]).assert_ok();
    // `sshd` names sshd's effective port: the rule follows the drop-in.
    sb.write(
        "/tmp/sshd.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: sshd, comment: ssh }\n",
    );
    sb.harden(&["apply", "/tmp/sshd.yaml"])
        .assert_ok()
        .assert_stdout_contains("ufw allow 2222/tcp comment ssh");
    assert_eq!(connect(&peer, 2222), "open");
    sb.harden(&["apply", "/tmp/sshd.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes.");
}

/// Makes one ufw command fail after it has done its work, as a step that breaks half-way
/// through a real apply would: a wrapper earlier in PATH than /usr/sbin/ufw.
fn fail_ufw_command(sb: &Sandbox, pattern: &str) {
    sb.write(
        "/usr/local/sbin/ufw",
        &format!("#!/bin/sh\n/usr/sbin/ufw \"$@\"\nrc=$?\ncase \"$*\" in {pattern}) echo 'injected failure' >&2; exit 1;; esac\nexit $rc\n"),
    );
    sb.sh("chmod 755 /usr/local/sbin/ufw").assert_ok();
}

#[test]
fn a_failure_mid_apply_restores_the_previous_rules_exactly() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    listen(&sb, &[443, 8080]);
    sb.sh("ufw allow 22/tcp && ufw allow 8080/tcp && ufw deny from 192.0.2.0/24 to any port 443 proto tcp && ufw --force enable").assert_ok();
    let status = ufw_state(&sb);
    let kernel = kernel_rules(&sb);
    assert_eq!(
        (connect(&peer, 8080).as_str(), connect(&peer, 443).as_str()),
        ("open", "timeout")
    );

    // Rules inserted, appended and purged, a default changed (ufw restarts the firewall),
    // then the last command fails.
    fail_ufw_command(&sb, "*logging*");
    sb.write(
        "/tmp/pb.yaml",
        "ufw:
  purge: true
  default: { incoming: reject }
  logging: medium
  rules:
    - { allow: 22/tcp }
    - { allow: 443/tcp, from: 192.0.2.2 }
    - { deny: 443/tcp, from: 192.0.2.0/24 }
    - { allow: 9000:9010/udp }
",
    );
    let failed = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_status(1);
    assert!(
        failed.output().contains("injected failure"),
        "{}",
        failed.output()
    );
    assert!(
        failed.output().contains("ufw delete allow 8080/tcp"),
        "the purge ran before the failure: {}",
        failed.output()
    );
    assert_eq!(
        ufw_state(&sb),
        status,
        "ufw's rules and settings are restored"
    );
    assert_eq!(kernel_rules(&sb), kernel, "the kernel's rules are restored");
    assert_eq!(
        (connect(&peer, 8080).as_str(), connect(&peer, 443).as_str()),
        ("open", "timeout")
    );
}

/// A ufw killed while it probes the kernel leaves its scratch chain (`ufw-caps-test` plus a
/// random suffix); the wrapper leaves one in each family and fails as that kill would.
#[test]
fn a_ufw_killed_in_its_kernel_probe_leaves_no_chain_after_the_rollback() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("ufw allow 22/tcp && ufw --force enable").assert_ok();
    let kernel = kernel_rules(&sb);
    sb.write(
        "/usr/local/sbin/ufw",
        "#!/bin/sh\ncase \"$*\" in *443*) iptables -N ufw-caps-testk1ll_d; ip6tables -N ufw6-caps-testk1ll_d; ip6tables -A ufw6-caps-testk1ll_d -j ACCEPT; exit 137;; esac\nexec /usr/sbin/ufw \"$@\"\n",
    );
    sb.sh("chmod 755 /usr/local/sbin/ufw").assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 8080/tcp }\n    - { allow: 443/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_status(1);
    assert_eq!(kernel_rules(&sb), kernel, "no scratch chain is left");
}

#[test]
fn a_failed_enable_of_an_inactive_firewall_leaves_it_inactive() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    listen(&sb, &[8080]);
    let status = ufw_state(&sb);
    fail_ufw_command(&sb, "*enable*");
    sb.write(
        "/tmp/pb.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/pb.yaml"])
        .assert_status(1)
        .assert_stderr_contains("injected failure");
    assert_eq!(ufw_state(&sb), status);
    sb.sh("ufw status | grep -q 'Status: inactive'").assert_ok();
    // ufw's stop leaves its empty chains behind, but nothing filters any more.
    sb.sh(
        "! iptables -S | grep -q -- '-A ufw' && iptables -S INPUT | grep -q -- '-P INPUT ACCEPT'",
    )
    .assert_ok();
    assert_eq!(connect(&peer, 8080), "open");
}

#[test]
fn bad_input_is_an_error_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    for (rule, message) in [
        ("{ allow: 70000/tcp }", "port 70000 is out of range"),
        ("{ allow: ssh/xyz }", "unknown protocol `xyz`"),
        ("{ allow: 443/tcp, from: 203.0.113.0/33 }", "prefix /33"),
        (
            "{ allow: 443/tcp, to: 10.0.0.256 }",
            "`10.0.0.256` is not an IPv4 or IPv6 address",
        ),
        ("{ permit: 443/tcp }", "unknown field `permit`"),
        ("{ allow: 6000:6007 }", "needs a protocol"),
        (
            "{ allow: NoSuchProfile }",
            "unknown application profile or service `NoSuchProfile`",
        ),
    ] {
        sb.write("/tmp/pb.yaml", &format!("ufw:\n  rules:\n    - {rule}\n"));
        let run = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_status(1);
        assert!(
            run.stderr.contains("/tmp/pb.yaml:3:"),
            "{rule}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(message), "{rule}: {}", run.stderr);
    }
    let run = sb.harden(&["validate", "/tmp/pb.yaml"]);
    assert_eq!(
        run.status, 0,
        "a profile is looked up at plan time: {}",
        run.stderr
    );
}

#[test]
fn under_root_ufw_edits_the_image_and_never_the_firewall() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /mnt/img && mount --bind / /mnt/img")
        .assert_ok();
    let kernel = kernel_rules(&sb);
    sb.write("/tmp/pb.yaml", "ufw:\n  enabled: true\n  default: { incoming: reject }\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n");
    let plan = sb
        .harden(&["--root", "/mnt/img", "plan", "/tmp/pb.yaml"])
        .assert_ok();
    assert!(
        plan.stdout
            .contains("unshare --net --mount-proc -- ufw allow 443/tcp"),
        "{}",
        plan.stdout
    );
    sb.harden(&["--root", "/mnt/img", "apply", "/tmp/pb.yaml"])
        .assert_ok();
    assert_eq!(
        kernel_rules(&sb),
        kernel,
        "nothing reached this machine's firewall"
    );
    sb.sh("grep -q '^### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in$' /etc/ufw/user.rules && grep -q '^ENABLED=yes$' /etc/ufw/ufw.conf && grep -q 'DEFAULT_INPUT_POLICY=\"REJECT\"' /etc/default/ufw").assert_ok();
    sb.harden(&["--root", "/mnt/img", "apply", "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes.");

    // An image already enabled: ENABLED is paused while ufw edits, then back.
    sb.write("/tmp/more.yaml", "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n    - { allow: 8443/tcp }\n");
    sb.harden(&["--root", "/mnt/img", "apply", "/tmp/more.yaml"])
        .assert_ok();
    sb.sh(
        "grep -q 'allow tcp 8443' /etc/ufw/user.rules && grep -q '^ENABLED=yes$' /etc/ufw/ufw.conf",
    )
    .assert_ok();
    assert_eq!(kernel_rules(&sb), kernel);
}

#[test]
fn harden_rollback_restores_an_active_firewall_and_stops_one_it_started() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    listen(&sb, &[8080]);
    // Inactive before: the rollback of the apply that enabled ufw stops it again.
    let inactive = ufw_state(&sb);
    sb.write(
        "/tmp/on.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/on.yaml"]).assert_ok();
    assert_eq!(connect(&peer, 8080), "timeout");
    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(ufw_state(&sb), inactive);
    assert_eq!(connect(&peer, 8080), "open");

    // Active before: the rollback brings back its rules, settings and kernel rules.
    sb.sh("ufw allow 22/tcp && ufw allow 8080/tcp && ufw --force enable")
        .assert_ok();
    let (status, kernel) = (ufw_state(&sb), kernel_rules(&sb));
    sb.write(
        "/tmp/change.yaml",
        "ufw:\n  purge: true\n  default: { incoming: reject }\n  logging: high\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/change.yaml"]).assert_ok();
    assert_eq!(connect(&peer, 8080), "refused");
    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(ufw_state(&sb), status);
    assert_eq!(kernel_rules(&sb), kernel);
    assert_eq!(connect(&peer, 8080), "open");
}

#[test]
fn a_missing_ufw_is_installed_by_the_plan_and_a_failed_install_changes_nothing() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("dpkg --purge ufw >/dev/null 2>&1 && ! command -v ufw")
        .assert_ok();
    sb.write("/tmp/pb.yaml", TRAFFIC);
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    let out = plan.output();
    assert!(
        out.contains(
            "apt-get install -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ufw"
        ),
        "{out}"
    );
    assert!(
        out.contains("ufw allow 22/tcp comment ssh") && out.contains("ufw --force enable"),
        "{out}"
    );
    assert!(out.contains("assumes the package's defaults"), "{out}");
    // The sandbox has no network: the install fails, and the rollback leaves no trace.
    let before = sb
        .sh("ls /etc/ufw 2>&1; dpkg -s ufw 2>&1 | head -2; iptables -S")
        .stdout;
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_status(1);
    assert_eq!(
        sb.sh("ls /etc/ufw 2>&1; dpkg -s ufw 2>&1 | head -2; iptables -S")
            .stdout,
        before
    );
}

/// Two rules for the same traffic, as a site playbook merged after the baseline gives
/// (`allow: sshd` and `allow: 22/tcp`): ufw holds one rule for both, and the plan converges.
/// With different actions (`allow` and `limit`), the later replaces the earlier, as ufw does
/// and as a later playbook's rule does, and the plan says so.
#[test]
fn rules_for_the_same_traffic_converge_and_a_later_action_replaces_an_earlier() {
    let Some(sb) = crate::sandbox!() else { return };
    crate::support::keyed_admin(&sb);
    sb.write(
        "/tmp/pb.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: sshd, comment: ssh }\n    - { allow: 22/tcp, comment: ssh }\n    - { allow: 443/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
    let rules = sb.sh("ufw status | grep -c ALLOW").assert_ok();
    assert_eq!(rules.stdout.trim(), "4", "22 and 443, v4 and v6: {rules}");

    sb.write(
        "/tmp/pb.yaml",
        "ufw:\n  enabled: true\n  rules:\n    - { allow: sshd }\n    - { limit: 22/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stdout_contains(
        "`limit 22/tcp` (line 5) is for the same traffic as `allow sshd` (line 4) and replaces it",
    );
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
    sb.sh("ufw status | grep -q '^22/tcp .*LIMIT'").assert_ok();
}

/// Rules in every form ufw's batch must get right: appended, inserted before an overlapping
/// allow, `limit`, IPv6-only, outgoing, ranges, comments, and purges of unlisted rules.
const MANY: &str = "ufw:
  purge: true
  rules:
    - { deny: 443/tcp, from: 192.0.2.0/24 }
    - { allow: 22/tcp, comment: admin ssh }
    - { limit: 2222/tcp }
    - { allow: 443/tcp }
    - { allow: 8080/tcp, from: '2001:db8::/32' }
    - { allow: 9000:9010/udp }
    - { reject: 25/tcp, direction: out }
    - { allow: 5432/tcp, from: 10.0.0.0/8 }
";

/// Rules already there: kept where listed, purged where not.
const MANY_BEFORE: &str =
    "ufw allow 8000/tcp && ufw deny 23 && ufw allow 443/tcp && ufw allow from 10.0.0.0/8 to any port 5432 proto tcp";

/// What harden's one-process batch leaves, against every step of the same plan run by the
/// real ufw one process per command, with the firewall `active` or not.
/// `enabling`: the playbook enables the inactive firewall too, and ufw's enable runs last in
/// the batch's process.
fn batch_against_one_by_one(active: bool, enabling: bool) {
    batch_against_one_by_one_logging(active, enabling, None);
}

/// As [`batch_against_one_by_one`], ufw's `logging` level set to `logging` before.
fn batch_against_one_by_one_logging(active: bool, enabling: bool, logging: Option<&str>) {
    let Some(batched) = crate::sandbox!() else {
        return;
    };
    let Some(single) = crate::sandbox!() else {
        return;
    };
    let enable = if active { " && ufw --force enable" } else { "" };
    let playbook = if enabling {
        MANY.replacen("ufw:\n", "ufw:\n  enabled: true\n", 1)
    } else {
        MANY.to_owned()
    };
    let logging = logging.map_or(String::new(), |l| format!("ufw logging {l} && "));
    for sb in [&batched, &single] {
        sb.sh(&format!("{logging}{MANY_BEFORE}{enable}"))
            .assert_ok();
        sb.write("/tmp/pb.yaml", &playbook);
    }
    let plan = single.plan("/tmp/pb.yaml");
    let lines: Vec<String> = plan
        .steps()
        .map(|(_, step)| match step {
            harden_plan::Step::Run(command) => {
                assert!(command.batch.is_some(), "a rule command: {command:?}");
                command.display()
            }
            other => panic!("only rule commands: {other:?}"),
        })
        .collect();
    assert!(lines.len() >= 8, "{lines:?}");
    single.sh(&lines.join(" && ")).assert_ok();

    let apply = batched.sh(&format!(
        "HARDEN_FAULT_LOG=/tmp/fault.log {} apply /tmp/pb.yaml",
        crate::support::HARDEN_IN_SANDBOX
    ));
    apply.assert_ok();
    let ran = batched.read("/tmp/fault.log");
    let ufw_processes = ran.lines().filter(|l| l.contains("ufw.frontend")).count();
    assert_eq!(ufw_processes, 1, "one process for the rules: {ran}");
    assert!(!ran.contains("\tufw allow"), "{ran}");
    assert!(!ran.contains("\tufw --force enable"), "{ran}");
    if enabling {
        assert!(
            lines
                .last()
                .is_some_and(|l| l.ends_with("ufw --force enable")),
            "{lines:?}"
        );
        batched
            .sh("iptables -n -L ufw-user-input >/dev/null")
            .assert_ok();
    }
    assert_eq!(ufw_state(&batched), ufw_state(&single));
    assert_eq!(kernel_rules(&batched), kernel_rules(&single));
    batched
        .harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_ok();
}

#[test]
fn a_batch_leaves_what_one_ufw_per_command_leaves_on_an_inactive_firewall() {
    batch_against_one_by_one(false, false);
}

#[test]
fn a_batch_leaves_what_one_ufw_per_command_leaves_on_an_active_firewall() {
    batch_against_one_by_one(true, false);
}

#[test]
fn a_batch_that_ends_in_the_enable_leaves_what_one_ufw_per_command_leaves() {
    batch_against_one_by_one(false, true);
}

/// The batch's enable loads the logging chains in one `iptables-restore` per family: the
/// same chains as ufw's own enable at every other level (`low`, the default, is above;
/// the playbook leaves the level alone, since a change of it is a step of its own).
#[test]
fn a_batch_that_ends_in_the_enable_leaves_ufws_logging_chains_at_every_level() {
    for level in ["off", "medium", "high", "full"] {
        batch_against_one_by_one_logging(false, true, Some(level));
    }
}

/// The next `iptables-restore` fails, once; the real one runs after it.
fn fail_the_first_restore(sb: &Sandbox) {
    sb.sh("mv /usr/sbin/iptables-restore /usr/sbin/iptables-restore.real")
        .assert_ok();
    sb.write(
        "/usr/sbin/iptables-restore",
        "#!/bin/bash\nif [ ! -e /tmp/failed-once ]; then touch /tmp/failed-once; echo 'injected restore failure' >&2; exit 1; fi\nexec -a iptables-restore /usr/sbin/iptables-restore.real \"$@\"\n",
    );
    sb.sh("chmod 755 /usr/sbin/iptables-restore").assert_ok();
}

/// The apply of /tmp/pb.yaml fails in its batch, once it reached `what` (the injected
/// restore failure ran).
fn apply_fails_in_the_batch(sb: &Sandbox, what: &str) {
    let failed = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_status(1);
    assert!(
        failed.output().contains("run as one batch"),
        "{}",
        failed.output()
    );
    assert!(sb.exists("/tmp/failed-once"), "the batch reached {what}");
}

/// The batch's enable fails halfway (the first `iptables-restore` of ufw-init fails, IPv6
/// loads): the rollback restores the files and stops what was loaded.
#[test]
fn a_batch_whose_enable_fails_is_rolled_back_in_files_and_kernel() {
    enable_fails_and_is_rolled_back(fail_the_first_restore);
}

/// The enable fails at its last part, the logging chains' `iptables-restore` (IPv4), once
/// both families are loaded: rolled back as any other failed enable.
#[test]
fn a_batch_whose_logging_chains_fail_to_load_is_rolled_back_in_files_and_kernel() {
    enable_fails_and_is_rolled_back(|sb| {
        sb.sh("mv /usr/sbin/iptables-restore /usr/sbin/iptables-restore.real")
            .assert_ok();
        sb.write(
            "/usr/sbin/iptables-restore",
            "#!/bin/bash\ninput=$(cat)\nif [ ! -e /tmp/failed-once ] && grep -qF -- '-A ufw-after-logging-input -j LOG' <<<\"$input\"; then touch /tmp/failed-once; echo 'injected restore failure' >&2; exit 1; fi\nexec -a iptables-restore /usr/sbin/iptables-restore.real \"$@\" <<<\"$input\"\n",
        );
        sb.sh("chmod 755 /usr/sbin/iptables-restore").assert_ok();
    });
}

fn enable_fails_and_is_rolled_back(inject: fn(&Sandbox)) {
    let Some(sb) = crate::sandbox!() else { return };
    keyed_admin(&sb);
    start_sshd(&sb);
    sb.sh(MANY_BEFORE).assert_ok();
    let status = ufw_state(&sb);
    let kernel = kernel_rules(&sb);
    inject(&sb);
    sb.write(
        "/tmp/pb.yaml",
        &MANY.replacen("ufw:\n", "ufw:\n  enabled: true\n", 1),
    );
    apply_fails_in_the_batch(&sb, "its enable");
    assert_eq!(ufw_state(&sb), status, "ufw's rules files are restored");
    // ufw-init's force-stop, as ufw's own stop, leaves its primary chains behind, empty,
    // with the built-in chains' jumps to them: nothing is filtered.
    let lingering = |l: &&str| {
        l.starts_with(":ufw")
            || ["INPUT", "FORWARD", "OUTPUT"]
                .iter()
                .any(|c| l.starts_with(&format!("-A {c} -j ufw")))
    };
    let after: String = kernel_rules(&sb)
        .lines()
        .filter(|l| !lingering(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        after, kernel,
        "no ufw rule is left loaded, the policies are as before"
    );
    admin_key_login(&sb).assert_ok();
}

/// The batch updates the rules files, then fails to load them into the kernel (the first
/// `iptables-restore` fails): the rollback restores the files and the running chains.
#[test]
fn a_batch_that_fails_in_its_reload_is_rolled_back_in_files_and_kernel() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh(&format!("{MANY_BEFORE} && ufw --force enable"))
        .assert_ok();
    let status = ufw_state(&sb);
    let kernel = kernel_rules(&sb);
    fail_the_first_restore(&sb);
    sb.write("/tmp/pb.yaml", MANY);
    apply_fails_in_the_batch(&sb, "its reload");
    assert_eq!(ufw_state(&sb), status, "ufw's rules files are restored");
    assert_eq!(kernel_rules(&sb), kernel, "the kernel's rules are restored");
}
