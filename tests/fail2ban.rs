//! End-to-end tests of the `fail2ban` resource: the jails a real fail2ban-server runs, real
//! bans in nftables, sshd's port followed, filters fail2ban cannot compile refused at plan time,
//! idempotence, located errors.

use crate::support::Sandbox;

/// The streaming application of the issue: its own log, its own filter, port 8000.
const APP: &str = "fail2ban:
  defaults: { bantime: 1h, findtime: 10m, maxretry: 5, ignoreip: [127.0.0.1/8, '::1'] }
  jails:
    sshd: { enabled: true }
    streaming-app: { port: 8000, filter: streaming-app, logpath: /var/log/streaming-app.log, maxretry: 3 }
  filters:
    streaming-app: { failregex: ['Failed login from <HOST>'] }
";

/// Starts fail2ban-server the way the sandbox allows (no systemd).
fn start_fail2ban(sb: &Sandbox) {
    sb.sh("mkdir -p /run/fail2ban && fail2ban-client -x start >/dev/null 2>&1 && fail2ban-client ping").assert_ok();
}

/// `fail2ban-client get JAIL OPTION`, trimmed.
fn get(sb: &Sandbox, jail: &str, option: &str) -> String {
    sb.sh(&format!("fail2ban-client get {jail} {option}"))
        .assert_ok()
        .stdout
        .trim()
        .to_owned()
}

/// Appends `count` failures of `addr` to the application's log, time-stamped now.
fn app_failures(sb: &Sandbox, addr: &str, count: usize) {
    sb.sh(&format!(
        "for i in $(seq {count}); do echo \"$(date '+%Y-%m-%d %H:%M:%S') Failed login from {addr}\" >> /var/log/streaming-app.log; done"
    ))
    .assert_ok();
}

/// Polls `fail2ban-client status JAIL` until it lists `addr` as banned (fail2ban reads logs
/// asynchronously), for at most 60 seconds.
fn wait_banned(sb: &Sandbox, jail: &str, addr: &str) -> String {
    sb.sh(&format!(
        "for i in $(seq 300); do s=$(fail2ban-client status {jail}); case \"$s\" in *\"Banned IP list:\"*{addr}*) echo \"$s\"; exit 0;; esac; sleep 0.2; done; \
         echo \"$s\"; tail -20 /var/log/fail2ban.log; exit 1"
    ))
    .assert_ok()
    .stdout
}

#[test]
fn jails_run_with_the_playbook_values_and_a_failure_burst_is_banned_in_nftables() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("touch /var/log/streaming-app.log && test ! -e /var/log/auth.log")
        .assert_ok();
    sb.write("/tmp/pb.yaml", APP);

    // The plan says what harden chose for the sshd jail, and why.
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let changes = plan["changes"].as_array().expect("changes");
    let jail = changes
        .iter()
        .find(|c| c["target"] == "/etc/fail2ban/jail.d/zz-harden.local")
        .expect("jail file planned");
    let reason = jail["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("backend = systemd because /var/log/auth.log does not exist"),
        "{reason}"
    );
    let backend = jail["details"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["name"] == "[sshd] backend")
        .expect("backend detail");
    assert_eq!(backend["desired"], "systemd");
    let last = changes.last().expect("changes");
    let steps: Vec<&str> = last["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["op"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        steps,
        vec!["validate", "validate"],
        "fail2ban is not running: check only, no reload"
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    start_fail2ban(&sb);
    let status = sb.sh("fail2ban-client status").assert_ok().stdout;
    assert!(
        status.contains("sshd") && status.contains("streaming-app"),
        "{status}"
    );
    assert_eq!(get(&sb, "streaming-app", "maxretry"), "3");
    assert_eq!(get(&sb, "streaming-app", "bantime"), "3600");
    assert_eq!(get(&sb, "streaming-app", "findtime"), "600");
    assert_eq!(get(&sb, "sshd", "maxretry"), "5");
    assert_eq!(get(&sb, "sshd", "bantime"), "3600");
    let sshd = sb.sh("fail2ban-client status sshd").assert_ok().stdout;
    assert!(
        sshd.contains("Journal matches"),
        "the sshd jail reads the journal: {sshd}"
    );
    let ignored = get(&sb, "streaming-app", "ignoreip");
    assert!(
        ignored.contains("127.0.0.0/8") && ignored.contains("::1"),
        "{ignored}"
    );

    // A burst of failures from one address is banned, in nftables' own table.
    app_failures(&sb, "192.0.2.10", 4);
    let status = wait_banned(&sb, "streaming-app", "192.0.2.10");
    assert!(status.contains("Currently banned:\t1"), "{status}");
    // The status lists a ban as soon as it is decided; the ban action adds the address to
    // nftables' set right after, so wait for it there too.
    let rules = sb
        .sh("for i in $(seq 150); do t=$(nft list table inet f2b-table); case \"$t\" in *192.0.2.10*) break;; esac; sleep 0.2; done; echo \"$t\"")
        .assert_ok()
        .stdout;
    assert!(rules.contains("192.0.2.10"), "{rules}");
    assert!(rules.contains("tcp dport 8000"), "{rules}");
    let ufw_chains = sb
        .sh("iptables-save 2>/dev/null | grep -c f2b || true")
        .stdout;
    assert_eq!(
        ufw_chains.trim(),
        "0",
        "no ban lands in iptables (ufw's rules)"
    );

    // Nothing left to do; a second apply changes nothing and touches no file.
    let again = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(again.stdout.contains("No changes."), "{again}");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    // A changed value reaches the running server through a reload.
    sb.write("/tmp/pb.yaml", &APP.replace("maxretry: 3", "maxretry: 7"));
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let changes = plan["changes"].as_array().expect("changes");
    let detail = changes[0]["details"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["name"] == "[streaming-app] maxretry")
        .cloned();
    let detail = detail.expect("maxretry detail");
    assert_eq!(
        (detail["current"].as_str(), detail["desired"].as_str()),
        (Some("3"), Some("7"))
    );
    let ops: Vec<&str> = changes.last().expect("last")["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["op"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ops,
        vec!["validate", "reload"],
        "the filter is unchanged: no fail2ban-regex"
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(get(&sb, "streaming-app", "maxretry"), "7");
    // The ban survived the reload.
    assert!(sb
        .sh("fail2ban-client status streaming-app")
        .assert_ok()
        .stdout
        .contains("192.0.2.10"));
    sb.sh("fail2ban-client stop").assert_ok();
}

/// Finding 4: `failregex: ['(unclosed <HOST>']` passed `validate` and `plan`; `apply` took a
/// snapshot, wrote the filter, then `fail2ban-regex` failed and it rolled back (exit 1, no
/// file:line:col, `/var/lib/harden` created).
#[test]
fn expressions_fail2ban_cannot_compile_are_refused_at_plan_time_at_their_lines() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("touch /var/log/streaming-app.log").assert_ok();
    let bad = APP.replace(
        "    streaming-app: { failregex: ['Failed login from <HOST>'] }\n",
        "    streaming-app:\n      failregex:\n        - 'Failed login from <HOST>'\n        - '(unclosed <HOST>'\n      ignoreregex: ['[x']\n      datepattern: '%Y-%m-%d )'\n",
    );
    sb.write("/tmp/bad.yaml", &bad);
    // `validate` reads no system, so it cannot ask fail2ban; plan and apply do.
    sb.harden(&["validate", "/tmp/bad.yaml"]).assert_ok();
    for command in ["plan", "apply"] {
        let run = sb.harden(&[command, "/tmp/bad.yaml"]).assert_status(1);
        for expected in [
            "/tmp/bad.yaml:10:11: fail2ban refuses failregex \"(unclosed <HOST>\" of filter streaming-app: Unable to compile regular expression: missing ), unterminated subpattern at position 0",
            "/tmp/bad.yaml:11:21: fail2ban refuses ignoreregex \"[x\" of filter streaming-app: Unable to compile regular expression: unterminated character set at position 0",
            "/tmp/bad.yaml:12:20: fail2ban refuses datepattern \"%Y-%m-%d )\" of filter streaming-app: unbalanced parenthesis",
        ] {
            assert!(run.stderr.contains(expected), "{command}: {expected}\n{run}");
        }
        assert!(
            !run.stderr.contains("Failed login from"),
            "{command}: {run}"
        );
    }
    let json = sb
        .harden(&["--format", "json", "apply", "/tmp/bad.yaml"])
        .assert_status(1)
        .json();
    assert_eq!(json["status"], "invalid");
    assert_eq!(json["errors"][0]["file"], "/tmp/bad.yaml");
    assert_eq!(json["errors"][0]["line"], 10);
    assert_eq!(json["errors"][0]["column"], 11);
    // Refused before anything was written: no snapshot, no lock, no filter.
    assert!(!sb.exists("/var/lib/harden"));
    let touched: Vec<String> = sb
        .upper_entries()
        .into_iter()
        .filter(|e| e.starts_with("etc") || e.starts_with("var/lib"))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}

#[test]
fn a_filter_fail2ban_refuses_leaves_the_running_jails_alone() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("touch /var/log/streaming-app.log").assert_ok();
    sb.write("/tmp/pb.yaml", APP);
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    start_fail2ban(&sb);
    let filter_before = sb.read("/etc/fail2ban/filter.d/streaming-app.local");
    let jail_before = sb.read("/etc/fail2ban/jail.d/zz-harden.local");

    // An unbalanced parenthesis: Python's re refuses it, and so does the plan, at its line,
    // before the new maxretry is written.
    let bad = APP
        .replace(
            "'Failed login from <HOST>'",
            "'Failed login from <HOST> (unclosed'",
        )
        .replace("maxretry: 3", "maxretry: 9");
    sb.write("/tmp/bad.yaml", &bad);
    let run = sb.harden(&["apply", "/tmp/bad.yaml"]).assert_status(1);
    assert!(
        run.stderr
            .contains("/tmp/bad.yaml:7:34: fail2ban refuses failregex"),
        "{run}"
    );
    assert!(
        !run.output().contains("rolled back"),
        "nothing to roll back: {run}"
    );
    let list = sb
        .harden(&["--format", "json", "snapshots"])
        .assert_ok()
        .json();
    assert_eq!(list["snapshots"].as_array().map(Vec::len), Some(1));

    assert_eq!(
        sb.read("/etc/fail2ban/filter.d/streaming-app.local"),
        filter_before
    );
    assert_eq!(sb.read("/etc/fail2ban/jail.d/zz-harden.local"), jail_before);
    let status = sb.sh("fail2ban-client status").assert_ok().stdout;
    assert!(status.contains("sshd, streaming-app"), "{status}");
    assert_eq!(get(&sb, "streaming-app", "maxretry"), "3");
    // The jail still bans.
    app_failures(&sb, "192.0.2.10", 4);
    wait_banned(&sb, "streaming-app", "192.0.2.10");
    sb.sh("fail2ban-client stop").assert_ok();
}

#[test]
fn the_sshd_jail_follows_sshd_to_port_2222_and_a_ban_blocks_it() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    // A real sshd on 2222 (drop-in), logging with syslog time stamps to /var/log/auth.log,
    // so the distribution's sshd jail (backend auto, logpath auth.log) reads it.
    sb.write("/etc/ssh/sshd_config.d/10-port.conf", "Port 2222\n");
    sb.sh("sshd -T | grep -qx 'port 2222'").assert_ok();
    sb.sh(
        "touch /var/log/auth.log; \
         (/usr/sbin/sshd -D -e 2>&1 | while IFS= read -r line; do \
            printf '%s %s sshd[%s]: %s\\n' \"$(date '+%b %e %H:%M:%S')\" \"$(hostname)\" 1234 \"$line\" >> /var/log/auth.log; \
          done) >/dev/null 2>&1 &
         for i in $(seq 50); do nc -z 127.0.0.1 2222 && exit 0; sleep 0.1; done; exit 1",
    )
    .assert_ok();
    let addr = peer.sandbox_addr().to_owned();
    peer.sh(&format!("nc -z -w 3 {addr} 2222")).assert_ok();

    sb.write(
        "/tmp/pb.yaml",
        "fail2ban:\n  jails:\n    sshd: { maxretry: 2, findtime: 10m, bantime: 1h }\n",
    );
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let jail = &plan["changes"][0];
    let port = jail["details"]
        .as_array()
        .expect("details")
        .iter()
        .find(|d| d["name"] == "[sshd] port")
        .cloned()
        .expect("port detail");
    assert_eq!(port["desired"], "2222");
    assert!(jail["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("follows sshd's Port"));
    assert!(
        !sb.harden(&["plan", "/tmp/pb.yaml"])
            .stdout
            .contains("backend = systemd"),
        "auth.log exists: the distribution's backend stays"
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    start_fail2ban(&sb);
    assert_eq!(get(&sb, "sshd", "maxretry"), "2");

    // Wrong passwords from the peer, over the veth pair, to the real sshd. The ban may land
    // while a connection is still open, whose packets are then rejected and which would
    // hang: each attempt is bounded.
    peer.sh(&format!(
        "for i in 1 2; do timeout 10 sshpass -p wrong ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o ConnectTimeout=5 -p 2222 nosuchuser@{addr} true; done; true"
    ));
    let status = wait_banned(&sb, "sshd", peer.addr());
    assert!(status.contains(peer.addr()), "{status}");
    let rules = sb.sh("nft list table inet f2b-table").assert_ok().stdout;
    assert!(
        rules.contains("tcp dport 2222"),
        "the ban rule names sshd's port: {rules}"
    );
    assert!(rules.contains(peer.addr()), "{rules}");
    // And it blocks: the peer can no longer reach sshd.
    peer.sh(&format!("nc -z -w 3 {addr} 2222")).assert_fails();

    // Idempotent.
    assert!(sb
        .harden(&["apply", "/tmp/pb.yaml"])
        .assert_ok()
        .stdout
        .contains("No changes."));
    sb.sh("fail2ban-client stop").assert_ok();
}

#[test]
fn jail_local_is_beaten_and_a_later_sorting_file_is_flagged() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("touch /var/log/streaming-app.log").assert_ok();
    // jail.local is read before jail.d/*.local: harden's jail section wins over it.
    sb.write(
        "/etc/fail2ban/jail.local",
        "[streaming-app]\nmaxretry = 10\nbantime = 5m\n",
    );
    sb.write("/tmp/pb.yaml", APP);
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    start_fail2ban(&sb);
    assert_eq!(get(&sb, "streaming-app", "maxretry"), "3");
    assert_eq!(get(&sb, "streaming-app", "bantime"), "3600");

    // A jail.d file sorting after harden's does override it: the plan says so, and where.
    sb.write(
        "/etc/fail2ban/jail.d/zzz-local.local",
        "[streaming-app]\nmaxretry = 10\n",
    );
    sb.sh("fail2ban-client reload").assert_ok();
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.output().contains("fail2ban runs jail streaming-app with `maxretry = 10` (set in /etc/fail2ban/jail.d/zzz-local.local:2); the playbook says 3"),
        "{plan}"
    );
    assert!(
        plan.stdout.contains("No changes."),
        "a warning, not a change that could never converge: {plan}"
    );
    sb.sh("fail2ban-client stop").assert_ok();
}

#[test]
fn a_missing_fail2ban_is_installed_by_a_visible_step() {
    let Some(sb) = crate::sandbox!() else { return };
    // Hide the package's client inside the sandbox only; plan, never apply (no network).
    sb.sh("rm /usr/bin/fail2ban-client").assert_ok();
    sb.write("/tmp/pb.yaml", "fail2ban:\n  jails:\n    sshd: {}\n");
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let first = &plan["changes"][0];
    assert_eq!(first["target"], "package fail2ban");
    let argv: Vec<&str> = first["steps"][0]["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(first["steps"][0]["op"], "run");
    for needed in [
        "apt-get",
        "install",
        "-y",
        "DPkg::Lock::Timeout=300",
        "Dpkg::Options::=--force-confold",
        "fail2ban",
    ] {
        assert!(argv.contains(&needed), "{argv:?} lacks {needed}");
    }
    let ops: Vec<&str> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["steps"].as_array().into_iter().flatten())
        .map(|s| s["op"].as_str().unwrap_or_default())
        .collect();
    assert!(
        ops.contains(&"write_file") && ops.contains(&"validate"),
        "{ops:?}"
    );
}

#[test]
fn bad_values_are_plan_time_errors_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    for (text, place, words) in [
        ("fail2ban:\n  defaults:\n    maxretry: -1\n", "/tmp/bad.yaml:3:15", "at least 1"),
        ("fail2ban:\n  jails:\n    sshd:\n      bantime: soon\n", "/tmp/bad.yaml:4:16", "invalid duration \"soon\""),
        ("fail2ban:\n  jails:\n    sshd:\n      bantimes: 1h\n", "/tmp/bad.yaml:4:7", "unknown field `bantimes`"),
        ("fail2ban:\n  filters:\n    app:\n      failregex: ['no host here']\n", "/tmp/bad.yaml:4:19", "does not say where the address is"),
        (
            "fail2ban:\n  jails:\n    app: { filter: sshd, logpath: /var/log/nonexistent-app.log }\n",
            "/tmp/bad.yaml:3:35",
            "does not exist",
        ),
    ] {
        sb.write("/tmp/bad.yaml", text);
        let run = sb.harden(&["plan", "/tmp/bad.yaml"]).assert_status(1);
        assert!(run.stderr.contains(place), "expected {place} for {text:?}: {run}");
        assert!(run.stderr.contains(words), "expected {words:?} for {text:?}: {run}");
    }
    assert!(
        sb.upper_entries()
            .iter()
            .all(|e| !e.starts_with("etc/fail2ban")),
        "plan wrote nothing"
    );
}

/// harden asks the server itself over its socket, at the path fail2ban's own configuration
/// sets: a running server is reloaded; one killed without cleaning up (its socket left) is
/// "not running" with the stale socket named, and a socket moved by `fail2ban.local` is
/// followed.
#[test]
fn the_server_is_asked_over_the_socket_its_configuration_names() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("touch /var/log/auth.log").assert_ok();
    sb.write(
        "/etc/fail2ban/fail2ban.local",
        "[Definition]\nsocket = /run/f2b-test/server.sock\npidfile = /run/f2b-test/server.pid\n",
    );
    sb.sh("mkdir -p /run/f2b-test && fail2ban-client -x start >/dev/null 2>&1 && fail2ban-client ping")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "fail2ban:\n  jails:\n    sshd: { enabled: true, maxretry: 4 }\n",
    );
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok();
    let ops: Vec<String> = plan.json()["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["steps"].as_array().cloned().unwrap_or_default())
        .map(|s| s["op"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        ops.iter().any(|op| op == "reload"),
        "a running server is reloaded: {ops:?}\n{plan}"
    );
    assert!(!plan.stdout.contains("not running"), "{plan}");

    sb.sh(
        "kill -9 $(cat /run/f2b-test/server.pid) && sleep 0.2 && test -S /run/f2b-test/server.sock",
    )
    .assert_ok();
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    let text = plan.stdout.clone() + &plan.stderr;
    assert!(
        text.contains("fail2ban-server does not answer although /run/f2b-test/server.sock exists"),
        "{plan}"
    );
}
