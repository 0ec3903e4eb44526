//! Smoke tests of the end-to-end harness itself (`tests/support/sandbox.rs`):
//! what runs inside a sandbox, and what must not leak out of it.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Sandbox, HARDEN_IN_SANDBOX};

/// Output of a read-only command on the host.
fn host_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} on the host: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed on the host: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP port on which nothing listens on the host's loopback right now.
fn free_host_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on the host");
    listener.local_addr().expect("local address").port()
}

fn host_can_connect(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Host PIDs of the processes in the PID namespace `ns` (`pid:[...]`).
fn processes_in_pid_namespace(ns: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").expect("list /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if fs::read_link(format!("/proc/{pid}/ns/pid"))
            .is_ok_and(|target| target.to_string_lossy() == ns)
        {
            pids.push(pid);
        }
    }
    pids
}

fn assert_torn_down(pid_ns: &str, dir: &Path) {
    let left = processes_in_pid_namespace(pid_ns);
    assert!(
        left.is_empty(),
        "processes left in the sandbox's PID namespace: {left:?}"
    );
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn writes_stay_inside_and_host_files_show_through() {
    let Some(sb) = crate::sandbox!() else { return };
    let unique = format!(
        "harden-sandbox-probe-{}-{:?}",
        std::process::id(),
        Instant::now()
    );
    let unique = unique.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    let etc_path = format!("/etc/{unique}/probe.conf");
    let tmp_path = format!("/tmp/{unique}");

    sb.write(&etc_path, "written inside\n");
    sb.write(&tmp_path, "in the sandbox's /tmp\n");
    assert_eq!(sb.read(&etc_path), "written inside\n");
    assert!(sb.exists(&etc_path));
    sb.sh(&format!("grep -qx 'written inside' {etc_path}"))
        .assert_ok();
    assert!(
        !Path::new(&etc_path).exists(),
        "{etc_path} leaked to the host"
    );
    assert!(!Path::new(&format!("/etc/{unique}")).exists());
    assert!(
        !Path::new(&tmp_path).exists(),
        "{tmp_path} leaked to the host"
    );

    // The overlay's upper layer holds the new file (/tmp is a tmpfs).
    let upper = sb.upper_entries();
    assert!(
        upper.contains(&format!("etc/{unique}/probe.conf")),
        "{upper:?}"
    );
    assert!(!upper.iter().any(|e| e.starts_with("tmp")), "{upper:?}");

    // host_path reaches the sandbox's files from the host (inspection only).
    let through = fs::read_to_string(sb.host_path(&etc_path)).expect("read via host_path");
    assert_eq!(through, "written inside\n");

    // The host's files are visible inside.
    let hostname = fs::read_to_string("/etc/hostname").expect("read the host's /etc/hostname");
    assert_eq!(sb.read("/etc/hostname"), hostname);
    assert!(!sb.exists("/etc/no-such-file-here"));

    // The environment is the documented one, and stdin works.
    let env = sb.sh("env | sort; pwd").assert_ok().stdout.clone();
    assert_eq!(
        env,
        "HOME=/root\nLANG=C.UTF-8\nNO_COLOR=1\n\
         PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         PWD=/\n/\n"
    );
    assert_eq!(sb.sh_with_stdin("tr a-z A-Z", "shout\n").stdout, "SHOUT\n");
    let failed = sb.sh("echo out; echo err >&2; exit 3");
    assert_eq!(
        (
            failed.status,
            failed.stdout.as_str(),
            failed.stderr.as_str()
        ),
        (3, "out\n", "err\n")
    );
    failed.assert_fails().assert_status(3);
}

#[test]
fn read_only_commands_leave_the_upper_layer_empty() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_eq!(
        sb.upper_entries(),
        Vec::<String>::new(),
        "setup wrote to the upper layer"
    );
    sb.sh("cat /etc/passwd >/dev/null").assert_ok();
    sb.sh(&format!("test -x {HARDEN_IN_SANDBOX}")).assert_ok();
    assert_eq!(sb.upper_entries(), Vec::<String>::new());
}

#[test]
fn creating_a_sandbox_is_fast() {
    crate::require_root!();
    let started = Instant::now();
    let sb = Sandbox::new();
    let elapsed = started.elapsed();
    println!(
        "sandbox created in {:.1} ms (Sandbox::new measured {:.1} ms)",
        elapsed.as_secs_f64() * 1e3,
        sb.creation_time().as_secs_f64() * 1e3
    );
    eprintln!("sandbox created in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    assert!(
        elapsed < Duration::from_secs(3),
        "creating the sandbox took {elapsed:?}"
    );
    sb.sh("true").assert_ok();
}

#[test]
fn sshd_runs_inside_and_is_not_reachable_from_the_host() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("sshd -t").assert_ok();

    // Port 22 inside, plus a port known to be free on the host, so "not
    // reachable from the host" means something even if the host ran an sshd.
    let port = free_host_port();
    let host_22_before = host_can_connect(22);
    sb.sh(&format!("/usr/sbin/sshd -p 22 -p {port}"))
        .assert_ok();
    let wait = format!(
        r#"for i in $(seq 100); do
             (exec 3<>/dev/tcp/127.0.0.1/22 && exec 4<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && exit 0
             sleep 0.05
           done
           exit 1"#
    );
    sb.exec(&["bash", "-c", &wait]).assert_ok();
    sb.sh("ssh-keyscan -T 5 -p 22 127.0.0.1 2>&1")
        .assert_ok()
        .assert_stdout_contains("SSH-2.0-OpenSSH");

    assert!(
        !host_can_connect(port),
        "the sandbox's sshd (port {port}) is reachable from the host"
    );
    if !host_22_before {
        assert!(
            !host_can_connect(22),
            "the sandbox's sshd (port 22) is reachable from the host"
        );
    }
}

#[test]
fn firewall_tools_work_inside_without_touching_the_host() {
    let Some(sb) = crate::sandbox!() else { return };
    // A first listing may create the nft tables iptables-nft lists; compare
    // from the second one on.
    host_output("iptables", &["-S"]);
    let iptables_before = host_output("iptables", &["-S"]);
    let nft_before = host_output("nft", &["list", "ruleset"]);

    sb.sh("iptables -L -n").assert_ok();
    sb.sh("ufw status")
        .assert_ok()
        .assert_stdout_contains("Status: inactive");
    sb.sh("ufw --force enable").assert_ok();
    sb.sh("ufw allow 22/tcp").assert_ok();
    sb.sh("ufw status")
        .assert_ok()
        .assert_stdout_contains("Status: active");
    sb.sh("iptables -S")
        .assert_ok()
        .assert_stdout_contains("-P INPUT DROP");

    assert_eq!(
        host_output("iptables", &["-S"]),
        iptables_before,
        "the host's iptables changed"
    );
    assert_eq!(
        host_output("nft", &["list", "ruleset"]),
        nft_before,
        "the host's nft ruleset changed"
    );
}

#[test]
fn fail2ban_works_inside() {
    let Some(sb) = crate::sandbox!() else { return };
    // Debian 12 has no syslog daemon by default, so the stock sshd jail finds
    // no /var/log/auth.log; rsyslog would create it.
    sb.write("/var/log/auth.log", "");
    sb.sh("fail2ban-client -t").assert_ok();
    sb.sh("fail2ban-client start").assert_ok();
    sb.sh("fail2ban-client status sshd")
        .assert_ok()
        .assert_stdout_contains("Currently banned");
}

#[test]
fn kernel_wide_knobs_are_read_only_inside() {
    let Some(sb) = crate::sandbox!() else { return };
    // Writing a kernel-wide sysctl fails (rewriting its current value, so
    // nothing would change even if it did not).
    sb.sh("v=$(cat /proc/sys/vm/swappiness); echo \"$v\" > /proc/sys/vm/swappiness")
        .assert_fails()
        .assert_stderr_contains("Read-only file system");
    // Per-network-namespace ones can be written, without reaching the host.
    let host_forward =
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read ip_forward");
    let flipped = if host_forward.trim() == "1" { "0" } else { "1" };
    sb.sh(&format!("sysctl -w net.ipv4.ip_forward={flipped}"))
        .assert_ok();
    assert_eq!(sb.read("/proc/sys/net/ipv4/ip_forward").trim(), flipped);
    let host_after = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read ip_forward");
    assert_eq!(host_after, host_forward);
    // No module loading, clock setting or raw I/O; namespace-local admin is kept.
    let bounding = sb
        .sh("grep CapBnd /proc/self/status")
        .assert_ok()
        .stdout
        .clone();
    let mask = u64::from_str_radix(bounding.trim().trim_start_matches("CapBnd:").trim(), 16)
        .unwrap_or_else(|e| panic!("cannot parse {bounding:?}: {e}"));
    for (cap, bit) in [("sys_module", 16), ("sys_rawio", 17), ("sys_time", 25)] {
        assert_eq!(mask & (1 << bit), 0, "{cap} is still in the bounding set");
    }
    for (cap, bit) in [("net_admin", 12), ("sys_chroot", 18), ("sys_admin", 21)] {
        assert_ne!(mask & (1 << bit), 0, "{cap} was dropped");
    }
}

#[test]
fn a_peer_reaches_a_listener_inside() {
    let Some(sb) = crate::sandbox!() else { return };
    let peer = sb.spawn_peer();
    assert_eq!(
        (peer.sandbox_addr(), peer.addr(), peer.sandbox_iface()),
        ("192.0.2.1", "192.0.2.2", "eth0")
    );
    sb.sh("ip -4 addr show dev eth0")
        .assert_ok()
        .assert_stdout_contains("192.0.2.1/24");
    peer.sh("ip -4 addr show dev eth0")
        .assert_ok()
        .assert_stdout_contains("192.0.2.2/24");
    // The peer only knows its own link: no route anywhere else.
    peer.sh("ip route show")
        .assert_ok()
        .assert_stdout_contains("192.0.2.0/24");
    assert!(!peer.sh("ip route show").stdout.contains("default"));

    let server = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.1", 443))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
c.sendall(b"hello from the sandbox\n")
c.close()
"#;
    sb.write("/root/server.py", server);
    sb.sh("python3 /root/server.py >/dev/null 2>&1 &")
        .assert_ok();
    sb.sh(
        "for i in $(seq 200); do ss -ltn | grep -q '192.0.2.1:443 ' && exit 0; sleep 0.05; done; exit 1",
    )
    .assert_ok();
    peer.sh("timeout 10 bash -c 'exec 3<>/dev/tcp/192.0.2.1/443; cat <&3'")
        .assert_ok()
        .assert_stdout_contains("hello from the sandbox");

    // The peer sees the host's files read-only.
    peer.sh("touch /harden-peer-probe").assert_fails();
    assert!(!Path::new("/harden-peer-probe").exists());
}

#[test]
fn teardown_kills_everything_inside_and_removes_the_directory() {
    crate::require_root!();
    let sb = Sandbox::new();
    let pid_ns = fs::read_link(format!("/proc/{}/ns/pid", sb.holder_pid()))
        .expect("read the holder's PID namespace")
        .to_string_lossy()
        .into_owned();
    let dir = sb.dir().to_owned();
    assert!(dir.exists());
    assert_eq!(
        fs::read_dir(&dir).expect("list the sandbox dir").count(),
        0,
        "mounts leaked to the host"
    );
    sb.sh("/usr/sbin/sshd -p 2222 && sleep 1000 >/dev/null 2>&1 &")
        .assert_ok();
    sb.sh("for i in $(seq 100); do pgrep -x sshd && exit 0; sleep 0.05; done; exit 1")
        .assert_ok();
    assert!(processes_in_pid_namespace(&pid_ns).len() >= 2);
    drop(sb);
    assert_torn_down(&pid_ns, &dir);

    // Also when the test panics.
    let seen: Arc<Mutex<Option<(String, PathBuf)>>> = Arc::default();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let sb = Sandbox::new();
        let ns = fs::read_link(format!("/proc/{}/ns/pid", sb.holder_pid())).expect("ns");
        *seen.lock().expect("lock") =
            Some((ns.to_string_lossy().into_owned(), sb.dir().to_owned()));
        sb.sh("sleep 1000 >/dev/null 2>&1 &").assert_ok();
        sb.sh("exit 1").assert_ok();
    }));
    assert!(result.is_err());
    let (pid_ns, dir) = seen
        .lock()
        .expect("lock")
        .clone()
        .expect("the sandbox was built");
    assert_torn_down(&pid_ns, &dir);
}

#[test]
fn commands_are_refused_once_the_overlay_is_gone() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("true").assert_ok();
    // Detach the overlay, in the sandbox's mount namespace only.
    let merged = format!("{}/merged", sb.dir().display());
    let status = Command::new("nsenter")
        .args([
            "--target",
            &sb.holder_pid().to_string(),
            "--mount",
            "--",
            "umount",
            "-l",
            &merged,
        ])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .status()
        .expect("run nsenter");
    assert!(
        status.success(),
        "could not unmount the overlay inside the sandbox"
    );
    let refused = panic::catch_unwind(AssertUnwindSafe(|| sb.sh("true")));
    let message = refused.expect_err("a command ran without the overlay");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("refusing to run"), "{message}");
}
