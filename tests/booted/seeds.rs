//! Every seed playbook on a fresh booted host, as an operator provisions a new server:
//! nothing prepared but a keyed admin, the application not installed yet. The apply
//! succeeds, a second plan finds nothing to do, the admin still logs in with the key (and
//! not with a password), and independent probes confirm the checklist items the playbook
//! owns: `getent`, `stat`, the env files read by a parser of the test's own (Python's
//! `shlex`, not harden's), `sshd -T`, `ufw status`.

use std::sync::Arc;

use super::{assert_key_only_login, keyed_admin, peer_key, sshd_t, PEER_KEY, SSH_OPTIONS};
use crate::support::booted::{Booted, Os};
use crate::support::Peer;

/// A seed playbook's text, as shipped.
fn playbook(seed: &str) -> String {
    let path = format!("{}/playbooks/{seed}.yaml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A fresh machine with a keyed admin, and the peer that holds the admin's key.
fn fresh(os: Os) -> Option<(Booted, Arc<Peer>)> {
    let mut m = crate::booted!(os)?;
    m.boot();
    let peer = m.spawn_peer();
    keyed_admin(&m, &peer_key(&peer));
    Some((m, peer))
}

/// Applies the seed's playbook; a second plan has nothing to do. Returns the apply's
/// output, with harden's JSON plan of the second run.
#[track_caller]
fn apply_and_converge(m: &Booted, seed: &str) -> String {
    let path = format!("/root/{seed}.yaml");
    m.write(&path, &playbook(seed));
    let apply = m.harden(&["apply", &path]);
    assert!(
        apply.success(),
        "{seed}: the first apply failed: {apply}\n{}",
        m.sh("journalctl -b --no-pager -n 60").stdout
    );
    let again = m.harden(&["plan", "--detailed-exitcode", &path]);
    assert_eq!(
        again.status, 0,
        "{seed}: a second plan has changes: {again}"
    );
    apply.output()
}

/// `KEY=value` pairs of an env file, read as a shell would (quotes, `export`, comments).
fn env_file(m: &Booted, path: &str) -> Vec<(String, String)> {
    let script = format!(
        "python3 -c 'import shlex,sys\nfor line in open(sys.argv[1]):\n  words = shlex.split(line, comments=True)\n  if words and words[0] == \"export\": words = words[1:]\n  for w in words:\n    k, _, v = w.partition(\"=\")\n    print(k + \"\\t\" + v)' {path}"
    );
    m.sh(&script)
        .assert_ok()
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The value of `key` in an env file; panics when it is missing.
#[track_caller]
fn env_value(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key} in the env file"))
}

/// A secret the checklists accept: long enough and none of the known defaults.
#[track_caller]
fn assert_strong(env: &[(String, String)], key: &str, min: usize) {
    let value = env_value(env, key);
    assert!(value.len() >= min, "{key} has {} characters", value.len());
    let lower = value.to_ascii_lowercase();
    for default in ["changeme", "replace_me", "secret", "password", "admin"] {
        assert_ne!(lower, default, "{key} is a known default");
    }
}

#[track_caller]
fn assert_stat(m: &Booted, path: &str, want: &str) {
    let got = m.sh(&format!("stat -c '%a %U %G %F' '{path}'")).assert_ok();
    assert_eq!(got.stdout.trim(), want, "mode, owner and kind of {path}");
}

/// What every seed leaves: the firewall on and the admin's key login working (on `port`).
/// With `keyed_only`, the seed's sshd section turned passwords off: `sshd -T` says so and a
/// password is refused.
#[track_caller]
fn assert_common(m: &Booted, peer: &Peer, port: u16, keyed_only: bool) {
    m.sh("ufw status | grep -qx 'Status: active'").assert_ok();
    let t = sshd_t(m);
    assert!(t.iter().any(|l| *l == format!("port {port}")), "{t:?}");
    if keyed_only {
        assert!(t.iter().any(|l| l == "passwordauthentication no"), "{t:?}");
    }
    if port == 22 && keyed_only {
        assert_key_only_login(m, peer, "admin");
        return;
    }
    let who = peer
        .sh(&format!(
            "ssh {SSH_OPTIONS} -o BatchMode=yes -o IdentitiesOnly=yes -i {PEER_KEY} -p {port} admin@{} id -un",
            peer.sandbox_addr()
        ))
        .assert_ok();
    assert_eq!(who.stdout.trim(), "admin", "{who}");
}

fn insightengine(os: Os) {
    let Some((m, peer)) = fresh(os) else { return };
    apply_and_converge(&m, "insightengine");
    assert_common(&m, &peer, 2222, true);
}

fn nself(os: Os) {
    let Some((m, peer)) = fresh(os) else { return };
    let output = apply_and_converge(&m, "nself");
    assert_common(&m, &peer, 22, false);
    let path = "/opt/nself/.secrets";
    assert_stat(&m, path, "600 root root regular file");
    let env = env_file(&m, path);
    assert_strong(&env, "POSTGRES_PASSWORD", 16);
    let mut values = Vec::new();
    for key in ["HASURA_GRAPHQL_ADMIN_SECRET", "HASURA_JWT_KEY"] {
        assert_strong(&env, key, 32);
        values.push(env_value(&env, key));
    }
    assert_ne!(values[0], values[1], "[nself] \"JWT secrets are unique\"");
    assert_secrets_unseen(&m, &output, &env);
}

fn mist(os: Os) {
    let Some((m, peer)) = fresh(os) else { return };
    apply_and_converge(&m, "mist");
    assert_common(&m, &peer, 22, true);
    let group = m.sh("getent group docker").assert_ok().stdout;
    let members = group.trim().rsplit(':').next().unwrap_or_default();
    assert!(
        members.split(',').any(|u| u == "mist"),
        "docker group: {group}"
    );
    let account = m.sh("getent passwd mist").assert_ok().stdout;
    assert!(
        account.trim().ends_with(":/var/lib/mist:/usr/sbin/nologin"),
        "{account}"
    );
    assert_stat(&m, "/var/lib/mist", "750 mist mist directory");
    assert_stat(&m, "/var/lib/mist/backups", "700 mist mist directory");
}

/// No value of `env` is in harden's output, its journal-facing state or its snapshot list.
#[track_caller]
fn assert_secrets_unseen(m: &Booted, output: &str, env: &[(String, String)]) {
    let listing = m.harden(&["snapshots", "--format", "json"]).assert_ok();
    let journal = m.sh("journalctl -b --no-pager").stdout;
    for (key, value) in env.iter().filter(|(_, v)| v.len() >= 16) {
        for (what, text) in [
            ("the apply's output", output),
            ("the snapshot list", listing.stdout.as_str()),
            ("the journal", journal.as_str()),
        ] {
            assert!(!text.contains(value.as_str()), "{key}'s value is in {what}");
        }
    }
}

fn server_monitor(os: Os) {
    let Some((m, peer)) = fresh(os) else { return };
    let output = apply_and_converge(&m, "server-monitor");
    assert_common(&m, &peer, 22, true);
    assert_stat(
        &m,
        "/opt/server-monitor/logs/api.log",
        "640 server-monitor server-monitor regular empty file",
    );
    let env_path = "/opt/server-monitor/backend/.env";
    assert_stat(
        &m,
        env_path,
        "600 server-monitor server-monitor regular file",
    );
    let env = env_file(&m, env_path);
    assert_eq!(env_value(&env, "DEBUG"), "false");
    assert_strong(&env, "JWT_SECRET", 32);
    assert_strong(&env, "ENCRYPTION_KEY", 32);
    assert_strong(&env, "KEY_VAULT_MASTER_KEY", 32);
    for key in ["JWT_SECRET", "ENCRYPTION_KEY", "KEY_VAULT_MASTER_KEY"] {
        let value = env_value(&env, key);
        assert!(
            !output.contains(&value),
            "{key}'s value is in harden's output"
        );
    }
    // fail2ban reads the log the playbook created.
    let jails = m.sh("fail2ban-client status").assert_ok().stdout;
    assert!(jails.contains("server-monitor"), "{jails}");
}

fn streaming_app(os: Os) {
    let Some((m, peer)) = fresh(os) else { return };
    let output = apply_and_converge(&m, "streaming-app");
    assert_common(&m, &peer, 22, false);
    assert_stat(
        &m,
        "/var/log/streaming-app.log",
        "640 root adm regular empty file",
    );
    let env = env_file(&m, "/opt/streaming-app/.env");
    assert_strong(&env, "JWT_SECRET", 32);
    assert_strong(&env, "ADMIN_PASSWORD", 16);
    for key in ["JWT_SECRET", "ADMIN_PASSWORD"] {
        let value = env_value(&env, key);
        assert!(
            !output.contains(&value),
            "{key}'s value is in harden's output"
        );
    }
    let jails = m.sh("fail2ban-client status").assert_ok().stdout;
    assert!(jails.contains("streaming-app"), "{jails}");
}

#[test]
fn debian12_insightengine_on_a_fresh_host() {
    insightengine(Os::Debian12);
}

#[test]
fn debian12_nself_on_a_fresh_host() {
    nself(Os::Debian12);
}

#[test]
fn debian12_mist_on_a_fresh_host() {
    mist(Os::Debian12);
}

#[test]
fn debian12_server_monitor_on_a_fresh_host() {
    server_monitor(Os::Debian12);
}

#[test]
fn debian12_streaming_app_on_a_fresh_host() {
    streaming_app(Os::Debian12);
}

#[test]
fn debian13_server_monitor_on_a_fresh_host() {
    server_monitor(Os::Debian13);
}
