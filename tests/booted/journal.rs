//! The audit trail in the journal (issue 13): `journalctl -t harden -o json` shows one
//! record per apply and per rollback with the snapshot id and the changed targets, one per
//! change with its resource and target, and never a secret (an env file's old value or the
//! one harden generated).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::booted::{Booted, Os};

const PLAYBOOK: &str = "files:
  - { path: /srv/app.conf, content: \"new\\n\", mode: \"0640\" }
env_files:
  - path: /opt/app/.env
    keys:
      JWT_SECRET: { min_length: 32, generate: { hex: 32 } }
";

/// The weak secret the env file starts with.
const OLD_SECRET: &str = "changeme-old-secret";

/// Every record of this boot from identifier `harden`, as JSON objects.
fn records(m: &Booted) -> Vec<Value> {
    m.sh("journalctl -b --no-pager -t harden -o json")
        .assert_ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("journalctl -o json prints JSON lines"))
        .collect()
}

/// The values of `field` in `record` (journald gives an array when a field repeats).
fn values(record: &Value, field: &str) -> Vec<String> {
    match &record[field] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn is(record: &Value, field: &str, value: &str) -> bool {
    values(record, field).iter().any(|v| v == value)
}

/// The records with `RESULT=result` for snapshot `id`, once journald has them.
fn wait_for(m: &Booted, id: &str, result: &str) -> Vec<Value> {
    let by = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = records(m)
            .into_iter()
            .filter(|r| is(r, "SNAPSHOT", id) && is(r, "RESULT", result))
            .collect();
        if !found.is_empty() || Instant::now() > by {
            return found;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn one_record_per_apply_and_rollback(os: Os) {
    let Some(mut m) = crate::booted!(os) else {
        return;
    };
    m.boot();
    m.write("/srv/app.conf", "old\n");
    m.write("/opt/app/.env", &format!("JWT_SECRET='{OLD_SECRET}'\n"));
    m.write("/root/pb.yaml", PLAYBOOK);
    let apply = m
        .harden(&["apply", "--format", "json", "/root/pb.yaml"])
        .assert_ok();
    let id = apply.json()["snapshot"]
        .as_str()
        .expect("a snapshot")
        .to_owned();
    let env = m.read("/opt/app/.env");
    let secret = env
        .trim()
        .strip_prefix("JWT_SECRET=")
        .expect("the key")
        .trim_matches('\'')
        .to_owned();
    assert_eq!(secret.len(), 64, "{env}");

    let applied = wait_for(&m, &id, "applied");
    assert_eq!(applied.len(), 1, "{applied:?}");
    let record = &applied[0];
    assert!(is(record, "SYSLOG_IDENTIFIER", "harden"), "{record}");
    assert!(is(record, "PLAYBOOKS", "/root/pb.yaml"), "{record}");
    let changed = values(record, "CHANGED").join("");
    assert!(
        changed.contains("files /srv/app.conf") && changed.contains("env_files /opt/app/.env"),
        "{record}"
    );
    let changes: Vec<Value> = records(&m)
        .into_iter()
        .filter(|r| is(r, "SNAPSHOT", &id) && is(r, "RESOURCE", "files"))
        .collect();
    assert!(
        changes.iter().any(|r| is(r, "TARGET", "/srv/app.conf")),
        "no record of the files change: {changes:?}"
    );

    m.harden(&["rollback", &id]).assert_ok();
    assert_eq!(m.read("/srv/app.conf"), "old\n");
    let rolled_back = wait_for(&m, &id, "rolled_back");
    assert_eq!(rolled_back.len(), 1, "{rolled_back:?}");
    let restored = values(&rolled_back[0], "CHANGED").join("");
    assert!(
        restored.contains("/srv/app.conf") && restored.contains("/opt/app/.env"),
        "{}",
        rolled_back[0]
    );

    // No secret anywhere in the journal, whoever logged it.
    let journal = m.sh("journalctl -b --no-pager -o json").assert_ok().stdout;
    assert!(
        !journal.contains(&secret),
        "the generated secret is in the journal"
    );
    assert!(
        !journal.contains(OLD_SECRET),
        "the old secret is in the journal"
    );
}

#[test]
fn debian12_the_journal_has_one_record_per_apply_and_rollback() {
    one_record_per_apply_and_rollback(Os::Debian12);
}

#[test]
fn debian13_the_journal_has_one_record_per_apply_and_rollback() {
    one_record_per_apply_and_rollback(Os::Debian13);
}
