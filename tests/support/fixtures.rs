//! What several end-to-end tests set up on, and check in, the sandboxed machine.

use super::Sandbox;

/// Starts the sandbox's sshd (logging to /var/log/sshd.log) and waits until it listens on 22.
pub fn start_sshd(sb: &Sandbox) {
    sb.sh("mkdir -p /run/sshd && /usr/sbin/sshd -E /var/log/sshd.log")
        .assert_ok();
    wait_listening(sb, 22);
}

/// Waits up to 5 s until something listens on TCP `port`.
pub fn wait_listening(sb: &Sandbox, port: u16) {
    sb.sh(&format!(
        "for i in $(seq 50); do ss -Hltn 'sport = :{port}' | grep -q . && exit 0; sleep 0.1; done; echo 'nothing listens on {port}' >&2; exit 1"
    ))
    .assert_ok();
}

/// The `key value` lines `sshd -T` prints for `key` (lower case), joined.
pub fn sshd_t(sb: &Sandbox, key: &str) -> String {
    let out = sb.sh("/usr/sbin/sshd -T").assert_ok().stdout;
    out.lines()
        .filter(|l| l.split(' ').next() == Some(key))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An admin account with an authorized ed25519 key (`/root/admin_key`), as a cloud server
/// has one: the sshd guards then let passwords be turned off.
pub fn keyed_admin(sb: &Sandbox) {
    sb.sh(
        "set -e; useradd -m -s /bin/bash admin; mkdir -p /home/admin/.ssh; \
         ssh-keygen -q -t ed25519 -N '' -f /root/admin_key; \
         cp /root/admin_key.pub /home/admin/.ssh/authorized_keys; \
         chown -R admin:admin /home/admin/.ssh; chmod 700 /home/admin/.ssh; chmod 600 /home/admin/.ssh/authorized_keys",
    )
    .assert_ok();
}

/// Panics unless `plan` matches the documented schema of `harden plan --format json`.
pub fn assert_plan_schema(plan: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../crates/plan/plan.schema.json"))
            .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(plan).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Starts fail2ban-server the way the sandbox allows (no systemd) and waits until it answers.
pub fn start_fail2ban(sb: &Sandbox) {
    sb.sh("mkdir -p /run/fail2ban && fail2ban-client -x start >/dev/null 2>&1 && fail2ban-client ping >/dev/null")
        .assert_ok();
}

/// An SSH login over loopback as the [`keyed_admin`], with its key only.
pub fn admin_key_login(sb: &Sandbox) -> super::Run {
    sb.sh("ssh -i /root/admin_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR admin@127.0.0.1 true")
}

/// The kernel's IPv4 and IPv6 rules, without counters and time stamps.
pub fn kernel_rules(sb: &Sandbox) -> String {
    sb.sh("(iptables-save; ip6tables-save) | grep -v '^#' | sed -E 's/\\[[0-9]+:[0-9]+\\]//'")
        .assert_ok()
        .stdout
}

/// Plans each `(playbook text, place, words)` from `/tmp/bad.yaml`: the plan exits 1 and its
/// error names the place (`/tmp/bad.yaml:LINE:COLUMN`, or a prefix of it) and the words.
pub fn assert_located_errors(sb: &Sandbox, cases: &[(&str, &str, &str)]) {
    for (text, place, words) in cases {
        sb.write("/tmp/bad.yaml", text);
        let run = sb.harden(&["plan", "/tmp/bad.yaml"]).assert_status(1);
        assert!(
            run.stderr.contains(place),
            "expected {place} for {text:?}: {run}"
        );
        assert!(
            run.stderr.contains(words),
            "expected {words:?} for {text:?}: {run}"
        );
    }
}
