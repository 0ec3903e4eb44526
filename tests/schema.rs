//! The playbook JSON Schema (`harden schema`, `crates/planner/playbook.schema.json`): that it
//! is current, valid JSON Schema, covers every section, accepts every playbook harden ships,
//! and agrees with the loader on what is a valid playbook.

use std::path::{Path, PathBuf};

use harden_planner::{Playbook, Source};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The committed schema, which the package installs as /usr/share/harden/playbook.schema.json.
const COMMITTED: &str = "crates/planner/playbook.schema.json";

/// What `harden schema` prints.
fn printed_schema() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harden"))
        .arg("schema")
        .output()
        .expect("run harden schema");
    assert!(out.status.success(), "harden schema failed: {out:?}");
    String::from_utf8(out.stdout).expect("the schema is UTF-8")
}

fn schema() -> Value {
    serde_json::from_str(&printed_schema()).expect("harden schema prints JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema compiles")
}

/// A playbook's text as the JSON value an editor's validator checks.
fn as_json(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).expect("the playbook is YAML")
}

/// The loader's verdict: `Ok` or its errors.
fn load(name: &str, text: &str) -> Result<(), String> {
    harden_planner::load(vec![Source {
        name: name.into(),
        text: text.into(),
    }])
    .map(drop)
    .map_err(|d| format!("{:?}", d.errors))
}

/// The schema's verdict: `Ok` or its errors.
fn check(validator: &jsonschema::Validator, text: &str) -> Result<(), String> {
    let instance = as_json(text);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[test]
fn the_committed_schema_is_what_harden_schema_prints() {
    let printed = printed_schema();
    let path = Path::new(ROOT).join(COMMITTED);
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &printed).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).expect("read the committed schema");
    assert!(
        committed == printed,
        "{COMMITTED} is stale: run UPDATE_SCHEMA=1 cargo test --test integration schema"
    );
}

#[test]
fn the_schema_is_valid_json_schema() {
    let schema = schema();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not valid JSON Schema: {e}");
    }
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "the draft editors are told"
    );
}

/// A section added to the registry without a schema (its derive forgotten) fails here, not
/// silently in an editor.
#[test]
fn every_section_has_a_schema_and_nothing_else_is_allowed() {
    let schema = schema();
    let properties = schema["properties"]
        .as_object()
        .expect("the schema lists the sections");
    let mut listed: Vec<&str> = properties.keys().map(String::as_str).collect();
    let mut sections = Playbook::SECTIONS.to_vec();
    listed.sort_unstable();
    sections.sort_unstable();
    assert_eq!(
        listed, sections,
        "the schema's sections are not the registry's"
    );
    for name in Playbook::SECTIONS {
        let section = &properties[*name];
        assert!(
            section.get("$ref").is_some() || section.get("anyOf").is_some(),
            "section {name} has no schema of its own: {section}"
        );
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown sections pass"
    );
}

/// The shipped playbooks: `playbooks/`, the package's /etc/harden/site.yaml, the site
/// playbook of the cloud-init example.
fn shipped() -> Vec<(String, String)> {
    let mut all = Vec::new();
    let dir = Path::new(ROOT).join("playbooks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read playbooks/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("read a playbook");
        all.push((path.display().to_string(), text));
    }
    let site = std::fs::read_to_string(Path::new(ROOT).join("debian/site.yaml"))
        .expect("read debian/site.yaml");
    all.push(("debian/site.yaml, uncommented".into(), uncommented(&site)));
    all.push(("debian/site.yaml".into(), site));
    all.push((
        "examples/cloud-init/user-data.yaml (site.yaml)".into(),
        cloud_init_site(),
    ));
    assert!(all.len() >= 9, "the shipped playbooks were not found");
    all
}

/// The site playbook with its commented-out example sections (`#sshd:` and the `#  `
/// lines below it) turned on.
fn uncommented(text: &str) -> String {
    let mut out = String::new();
    let mut in_section = false;
    for line in text.lines() {
        let head = line.strip_prefix('#').unwrap_or("");
        let opens = head.ends_with(':')
            && !head.is_empty()
            && head[..head.len() - 1]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        in_section = opens || (in_section && head.starts_with("  "));
        out.push_str(if in_section { head } else { line });
        out.push('\n');
    }
    out
}

/// The `content` of the user data's `/etc/harden/site.yaml` entry, unindented.
fn cloud_init_site() -> String {
    let user_data =
        std::fs::read_to_string(Path::new(ROOT).join("examples/cloud-init/user-data.yaml"))
            .expect("read the user data");
    let mut lines = user_data
        .lines()
        .skip_while(|l| l.trim() != "- path: /etc/harden/site.yaml");
    lines
        .by_ref()
        .find(|l| l.trim() == "content: |")
        .expect("the site playbook's content");
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("      "))
        .map(|l| l.get(6..).unwrap_or(""))
        .collect();
    body.join("\n") + "\n"
}

#[test]
fn every_shipped_playbook_passes_the_schema_and_the_loader() {
    let validator = validator();
    for (name, text) in shipped() {
        assert!(
            text.starts_with("# yaml-language-server: $schema="),
            "{name} does not name the schema on its first line"
        );
        if let Err(e) = load(&name, &text) {
            panic!("the loader refuses {name}: {e}");
        }
        if let Err(e) = check(&validator, &text) {
            panic!("the schema refuses {name}: {e}");
        }
    }
}

#[test]
fn the_uncommented_site_playbook_has_every_section() {
    let site = std::fs::read_to_string(Path::new(ROOT).join("debian/site.yaml"))
        .expect("read debian/site.yaml");
    let loaded = harden_planner::load(vec![Source {
        name: "site.yaml".into(),
        text: uncommented(&site),
    }])
    .expect("the uncommented site playbook loads");
    assert_eq!(loaded.playbook.sections(), Playbook::SECTIONS);
}

/// Playbooks that the loader takes (`true`) or refuses (`false`): the schema must say the
/// same of each. The refused ones are each refused by the types (the part the schema states),
/// not by a check that needs the system.
const CASES: &[(&str, bool)] = &[
    ("files: [{ path: /etc/shadow, mode: \"0640\" }]", true),
    ("files: [{ path: /etc/shadow, mode: \"u=rw,g=r,o=\" }]", true),
    ("files: [{ path: /etc/shadow, mode: \"rw-r-----\" }]", false),
    ("files: [{ path: /etc/shadow, owner: 0, group: shadow }]", true),
    ("files: [{ path: /etc/shadow, owner: -1 }]", false),
    ("files: [{ path: /etc/shadow, missing: skip }]", false),
    ("files: [{ path: /var/log/app.log, ensure: file, parents: true }]", true),
    ("files: [{ path: /var/log/app.log, ensure: fifo }]", false),
    ("groups: { docker: , web: { gid: 4100, system: false } }", true),
    ("groups: { docker: { gid: -1 } }", false),
    ("groups: { docker: { members: [mist] } }", false),
    ("users: { mist: { system: true, home: /var/lib/mist, groups: [docker] } }", true),
    ("users: { mist: { uid: 998, locked: true, exclusive: true } }", true),
    ("users: { mist: { password: secret } }", false),
    ("users: { \"bad name\": {} }", false),
    ("env_files: [{ path: /opt/app/.env, keys: { JWT_SECRET: { min_length: 32, generate: { hex: 32 } } } }]", true),
    ("env_files: [{ path: /opt/app/.env, on_weak: error, keys: { DEBUG: { equals: \"false\" } } }]", true),
    ("env_files: [{ path: /opt/app/.env, on_weak: rotate, keys: {} }]", false),
    ("env_files: [{ path: /opt/app/.env, keys: { K: { generate: { base32: 16 } } } }]", false),
    ("env_files: [{ path: /opt/app/.env }]", false),
    ("files: [{ path: /etc/shadow, mode: \"0640\", colour: red }]", false),
    ("files: { path: /etc/shadow }", false),
    ("sshd: { config: { PermitRootLogin: \"no\", MaxAuthTries: 3 } }", true),
    ("sshd: { config: { Ciphers: [aes256-gcm@openssh.com, chacha20-poly1305@openssh.com] } }", true),
    ("sshd: { config: { MaxAuthTries: { three: 3 } } }", false),
    ("sshd: { settings: {} }", false),
    ("ufw: { enabled: true, default: { incoming: deny }, rules: [{ allow: 22/tcp }] }", true),
    ("ufw: { rules: [{ allow: 443, from: 203.0.113.0/24, comment: web, log: all }] }", true),
    ("ufw: { rules: [{ allow: 22/tcp, deny: 23/tcp }] }", false),
    ("ufw: { rules: [{ from: any }] }", false),
    ("ufw: { default: { incoming: permit } }", false),
    ("ufw: { logging: loud }", false),
    ("ufw: { rules: [{ allow: 22/tcp, comment: \"it's ssh\" }] }", false),
    ("ufw: { rules: [{ allow: 22/tcp, interface: a-very-long-interface-name }] }", false),
    ("ufw: { rules: [{ allow: 22/tcp, log: sometimes }] }", false),
    ("ufw: { enabled: maybe }", false),
    ("fail2ban: { defaults: { bantime: 1h, findtime: 600, maxretry: 5 }, jails: { sshd: { enabled: true } } }", true),
    ("fail2ban: { jails: { sshd: { usedns: no, backend: systemd, port: [22, 2222] } } }", true),
    ("fail2ban: { jails: { sshd: { backend: inotify } } }", false),
    ("fail2ban: { jails: { default: { enabled: true } } }", false),
    ("fail2ban: { jails: { -sshd: { enabled: true } } }", false),
    ("fail2ban: { jails: { sshd: { bantime: -2 } } }", false),
    ("fail2ban: { jails: { sshd: { maxretry: 0 } } }", false),
    ("fail2ban: { jails: { sshd: { logpath: var/log/auth.log } } }", false),
    ("fail2ban: { jails: { sshd: { banaction: \"two words\" } } }", false),
    ("fail2ban: { jails: { sshd: { retries: 3 } } }", false),
    ("fail2ban: { filters: { app: { failregex: \"^fail from <HOST>$\" } } }", true),
    ("fail2ban: { filters: { app: { regex: \"^fail from <HOST>$\" } } }", false),
    ("unattended_upgrades: { enabled: true, automatic_reboot_time: \"02:00\", mail: root, mail_report: on-change }", true),
    ("unattended_upgrades: { origins: [\"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\"] }", true),
    ("unattended_upgrades: { origins: [\"${distro_id}:${distro_codename}-security\"] }", true),
    ("unattended_upgrades: { origins: [debian-security] }", false),
    ("unattended_upgrades: { automatic_reboot_time: \"25:00\" }", false),
    ("unattended_upgrades: { mail: \"root@@example.org\" }", false),
    ("unattended_upgrades: { mail_report: sometimes }", false),
    ("unattended_upgrades: { bandwidth_limit: 0 }", false),
    ("firewall: { enabled: true }", false),
    // Scalars YAML reads as numbers or booleans where the loader takes text.
    ("files: [{ path: /etc/shadow, mode: 0640 }]", true),
    ("sshd: { config: { PermitRootLogin: no } }", true),
    ("unattended_upgrades: { automatic_reboot_time: 02:00 }", true),
    ("fail2ban: { jails: { sshd: { maxretry: \"5\" } } }", true),
];

#[test]
fn the_schema_and_the_loader_agree_on_valid_and_invalid_playbooks() {
    let validator = validator();
    let mut disagreements = Vec::new();
    for (text, valid) in CASES {
        let loader = load("case.yaml", text);
        let schema = check(&validator, text);
        if loader.is_ok() != *valid {
            disagreements.push(format!(
                "loader: {text}: expected valid={valid}, got {loader:?}"
            ));
        }
        if schema.is_ok() != *valid {
            disagreements.push(format!(
                "schema: {text}: expected valid={valid}, got {schema:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "schema and loader drift apart:\n{}",
        disagreements.join("\n")
    );
}
