//! Entry points for the fuzz targets in `fuzz/`: each takes raw bytes, runs one parser the
//! way harden runs it, and panics when a property that must hold does not.
//!
//! Built only with the `fuzzing` feature, so the parsers stay private API: the targets call
//! these functions and nothing else. Inputs that hold several files separate them with a
//! NUL byte, which no configuration file harden reads contains. Every property checked here
//! is one harden relies on: text it renders must read back as the value it rendered, a file
//! it edits keeps every byte it does not edit, a setting it writes is the setting it reads.
//!
//! An env-file parser (`env_files` in DESIGN.md) does not exist yet; when it does, it gets a
//! function here and a target beside the others, with the same round-trip property.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use harden_host::UserDb;

use crate::diagnostic::{yaml_lines, Source};
use crate::facts::{Facts, LiveFacts};
use crate::resource::{DiffContext, Resource};
use crate::resources::fail2ban::{configparser, ini, render_value};
use crate::resources::sshd::{config, keywords};
use crate::resources::ufw::rule::{self, Family, Net, Ports};
use crate::resources::ufw::{self, state};
use crate::resources::unattended_upgrades::{self, aptconf, UnattendedUpgrades};

/// At most this many files per input: enough to reach every merge rule.
const MAX_FILES: usize = 8;

/// Lookups of the merge models per input: each scans every file, so all of a 25 kB
/// `jail.conf`'s keys would make an input take milliseconds and the fuzzer crawl.
const QUERIES: usize = 32;

/// Splits an input into the texts of several files; `None` when it is not UTF-8 (harden
/// refuses such files before parsing them).
fn files(data: &[u8]) -> Option<Vec<&str>> {
    let text = std::str::from_utf8(data).ok()?;
    Some(text.split('\0').take(MAX_FILES).collect())
}

/// The playbook loader, as `harden validate` runs it: YAML to one merged, validated
/// [`crate::Playbook`], or errors rendered with their `file:line:col` and quoted line.
///
/// Properties: a valid playbook merged with itself is still valid and has the same
/// sections; every error names the playbook and a line that exists in it (or the line after
/// the last, where a parser reports the end of the text).
pub fn playbook(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = |name: &str| Source {
        name: name.into(),
        text: text.into(),
    };
    match crate::load(vec![source("fuzz.yaml")]) {
        Ok(once) => {
            let twice = crate::load(vec![source("a.yaml"), source("b.yaml")])
                .unwrap_or_else(|e| panic!("valid alone, invalid merged with itself:\n{e}"));
            assert_eq!(once.playbook.sections(), twice.playbook.sections());
        }
        Err(diagnostics) => {
            assert!(!diagnostics.errors.is_empty(), "an error without a message");
            let lines = yaml_lines(text).count() as u64;
            for error in &diagnostics.errors {
                assert_eq!(error.at.source, 0, "{error:?}");
                assert!(u64::from(error.at.line) <= lines + 1, "{error:?}");
            }
            let shown = diagnostics.to_string();
            assert!(shown.starts_with("fuzz.yaml:"), "{shown}");
        }
    }
}

/// The sshd_config reader: the main file, then drop-ins under `sshd_config.d` (the main
/// file reaches them only through its own `Include` lines).
///
/// Properties: every directive line, rendered back with harden's quoting, splits into the
/// same keyword and arguments; applying no edit to a file gives back the file byte for byte;
/// looking up every known keyword, for everyone and for one account, does not panic.
pub fn sshd_config(data: &[u8]) {
    let Some(texts) = files(data) else { return };
    let mut snapshot = config::Snapshot::default();
    let mut paths = vec![PathBuf::from(config::MAIN)];
    paths.extend(
        (1..texts.len()).map(|i| PathBuf::from(format!("/etc/ssh/sshd_config.d/{i:02}-fuzz.conf"))),
    );
    for (path, text) in paths.iter().zip(&texts) {
        snapshot.put(path, (*text).to_owned());
    }
    let parsed = config::parse(&snapshot);
    for line in &parsed.lines {
        let args: Vec<String> = line.args.iter().map(|a| keywords::quote(a)).collect();
        let rendered = format!("{} {}", line.keyword, args.join(" "));
        assert_eq!(
            config::split_line(&rendered),
            Ok(Some((line.keyword.clone(), line.args.clone()))),
            "{rendered:?} does not read back as the line it renders"
        );
    }
    let groups = vec!["users".to_owned(), "admins".to_owned()];
    let conn = config::Conn {
        user: "alice",
        groups: &groups,
    };
    for keyword in keywords::KEYWORDS {
        parsed.effective(keyword, None);
        parsed.effective(keyword, Some(&conn));
    }
    for index in 0..parsed.matches.len() {
        parsed.depends_on_network(index);
        parsed.matches[index].describe();
    }
    for text in &texts {
        assert_eq!(
            config::apply_edits(text, &[]).0,
            *text,
            "an empty edit changed the file"
        );
    }
}

/// ufw's persisted state: `user.rules`, `user6.rules`, `ufw.conf`, `/etc/default/ufw`, one
/// application profile and `/etc/services`, in that order, planned against a playbook
/// section with every kind of rule and `purge: true`.
///
/// Properties: networks and port lists of every tuple print as text that parses back to the
/// same value; `set_assignment` of ENABLED and LOGLEVEL reads back as the value set and
/// leaves the other settings alone.
pub fn ufw_state(data: &[u8]) {
    let Some(texts) = files(data) else { return };
    let part = |i: usize| texts.get(i).copied().unwrap_or("");
    let mut tuples = Vec::new();
    let mut malformed = Vec::new();
    for (family, text) in [(Family::V4, part(0)), (Family::V6, part(1))] {
        let (found, bad) = rule::parse_rules_file(text);
        for tuple in &found {
            check_tuple(tuple, family);
        }
        tuples.push((family, found));
        malformed.extend(bad);
    }
    let settings = state::Settings::parse(part(2), part(3));
    check_settings(part(2), part(3), &settings);
    let live = ufw::Live {
        installed: true,
        settings,
        running: Some(true),
        tuples,
        malformed,
        profiles: state::parse_profiles([part(4)]),
        services: state::parse_services(part(5)),
        ssh_listening: vec![22],
        ssh_desired: None,
        docker: false,
        conf: Some((part(2).to_owned(), harden_plan::Attrs::root(0o644))),
        init: PathBuf::from("/lib/ufw/ufw-init"),
        script: Some(ufw::Script {
            python: "/usr/bin/python3".into(),
            path: "/usr/sbin/ufw".into(),
        }),
    };
    static SECTIONS: OnceLock<[ufw::Ufw; 2]> = OnceLock::new();
    let sections = SECTIONS
        .get_or_init(|| [UFW_NAMES, UFW_PORTS].map(|yaml| section(yaml).ufw.unwrap_or_default()));
    for section in sections {
        with_context(|cx| {
            let _ = section.diff(&live, cx);
        });
    }
}

/// A ufw section whose rules name a profile and a service: it plans only when the fuzzed
/// profile and services files define both, and reaches the name resolution either way.
const UFW_NAMES: &str = "ufw:
  rules:
    - { allow: OpenSSH }
    - { allow: domain }
    - { deny: ssh/tcp, from: 192.0.2.0/24 }
";

/// A ufw section with rules that always resolve, overlapping with different actions, so
/// that planning reaches the ordering of rules against whatever the fuzzed files hold.
const UFW_PORTS: &str = "ufw:
  enabled: true
  default: { incoming: deny, outgoing: allow, routed: deny }
  logging: medium
  purge: true
  rules:
    - { allow: sshd, comment: ssh }
    - { deny: 80/tcp, from: 10.0.0.0/8 }
    - { allow: '80,443/tcp' }
    - { limit: 2222/tcp, interface: eth0 }
    - { reject: any/esp, to: 2001:db8::/32 }
    - { allow: 6000:6007/udp, direction: out, log: all }
    - { deny: any, from: 198.51.100.7 }
";

fn check_tuple(tuple: &rule::Tuple, family: Family) {
    let _ = tuple.spec().args();
    let _ = rule::describe(tuple, family);
    if let Ok(key) = tuple.key(family) {
        for net in [key.src, key.dst] {
            assert_eq!(
                Net::parse(&net.to_string()),
                Ok(net),
                "{net} does not read back"
            );
        }
        if let Ok(ports) = Ports::parse(&tuple.dport) {
            let shown = ports.to_string();
            assert_eq!(
                Ports::parse(&shown),
                Ok(ports),
                "{shown} does not read back"
            );
        }
    }
}

fn check_settings(conf: &str, defaults: &str, before: &state::Settings) {
    for (enabled, word) in [(true, "yes"), (false, "no")] {
        let edited = state::set_assignment(conf, "ENABLED", word);
        let after = state::Settings::parse(&edited, defaults);
        assert_eq!(
            after,
            state::Settings {
                enabled,
                ..before.clone()
            },
            "ENABLED={word} in {conf:?} gives {edited:?}"
        );
    }
    let edited = state::set_assignment(conf, "LOGLEVEL", "full");
    let after = state::Settings::parse(&edited, defaults);
    assert_eq!(
        after,
        state::Settings {
            logging: state::LogLevel::Full,
            ..before.clone()
        },
        "LOGLEVEL=full in {conf:?} gives {edited:?}"
    );
}

/// fail2ban's jail files, in merge order: `jail.conf`, `jail.d/*.conf`, `jail.local`, then
/// `jail.d/*.local`.
///
/// Properties: each file's option sections, rendered back the way harden writes its jail
/// file (continuation lines included), parse to the same sections and values; the merge
/// model answers for every section and key without panicking; so do fail2ban's own parser
/// and interpolation as harden reproduces them.
pub fn fail2ban_ini(data: &[u8]) {
    let Some(texts) = files(data) else { return };
    let names: Vec<String> = (1..texts.len())
        .map(|i| format!("{i:02}-fuzz.local"))
        .collect();
    let order = ini::merge_order(&names, false);
    let parsed: Vec<ini::File> = order
        .iter()
        .zip(&texts)
        .map(|(p, t)| ini::parse(p, t))
        .collect();
    for file in &parsed {
        check_ini_round_trip(file);
    }
    // fail2ban's own reading: the strict parser and the interpolation answer (or give up)
    // without panicking, whatever the references.
    let mut config = configparser::Config::default();
    for parsed in texts
        .iter()
        .filter_map(|t| configparser::parse("/fuzz", t).ok())
    {
        config.defaults.extend(parsed.defaults);
        for (name, options) in parsed.sections {
            config.sections.entry(name).or_default().extend(options);
        }
    }
    for (section, options) in &config.sections {
        for key in options.keys().take(QUERIES) {
            let _ = config.get(section, key);
        }
    }
    let merged = ini::Config { files: parsed };
    let Some(last) = merged.files.last().map(|f| f.path.clone()) else {
        return;
    };
    let keys = merged.files.iter().flat_map(|f| {
        f.sections
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (&s.name, &e.key)))
    });
    for (section, key) in keys.take(QUERIES) {
        let _ = merged.source(section, key);
        for own in [true, false] {
            let _ = merged.overriders(&last, section, key, own);
        }
    }
}

/// True for an option name harden could write: fail2ban's own spelling.
fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn check_ini_round_trip(file: &ini::File) {
    let mut expected = Vec::new();
    let mut rendered = String::new();
    for section in &file.sections {
        rendered.push_str(&format!("[{}]\n", section.name));
        let mut values = Vec::new();
        for entry in section.entries.iter().filter(|e| plain_key(&e.key)) {
            let lines: Vec<String> = entry.value.split('\n').map(str::to_owned).collect();
            render_value(&mut rendered, &entry.key, &lines);
            values.push((entry.key.clone(), entry.value.clone()));
        }
        expected.push((section.name.clone(), values));
    }
    let again = ini::parse(&file.path, &rendered);
    let got: Vec<(String, Vec<(String, String)>)> = again
        .sections
        .iter()
        .map(|s| {
            let values = s
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect();
            (s.name.clone(), values)
        })
        .collect();
    assert_eq!(got, expected, "rendered as {rendered:?}");
}

/// APT's configuration: `apt-config dump` output, `/etc/os-release`, then files of
/// `apt.conf.d` in read order; planned against the baseline's `unattended_upgrades` section.
///
/// Property: a dump printed back the way `apt-config dump` prints it (`Key "value";`, list
/// items as `Key:: "item";`) parses to the same scalars and lists.
pub fn apt_conf(data: &[u8]) {
    let Some(texts) = files(data) else { return };
    let part = |i: usize| texts.get(i).copied().unwrap_or("");
    let dump = aptconf::parse_dump(part(0));
    let printed = print_dump(&dump);
    assert_eq!(
        aptconf::parse_dump(&printed),
        dump,
        "printed as {printed:?}"
    );
    let names: Vec<String> = (2..texts.len()).map(|i| format!("{i:02}fuzz")).collect();
    let order = aptconf::read_order(&names);
    let apt_files: Vec<(String, String)> = order
        .iter()
        .zip(texts.iter().skip(2))
        .map(|(p, t)| (p.clone(), (*t).to_owned()))
        .collect();
    // The diff below locates the keys harden sets; a few of the dump's own keys besides.
    for key in dump.scalars.keys().chain(dump.lists.keys()).take(QUERIES) {
        let _ = aptconf::locate(&apt_files, key);
    }
    let live = unattended_upgrades::Live {
        installed: true,
        os: aptconf::parse_os_release(part(1)),
        auto_upgrades: apt_files.first().map(|(_, t)| t.clone()),
        drop_in: apt_files.get(1).map(|(_, t)| t.clone()),
        dump,
        files: apt_files,
        timers: Vec::new(),
        systemctl: true,
        systemd: true,
        mailer: false,
    };
    static SECTION: OnceLock<UnattendedUpgrades> = OnceLock::new();
    let section = SECTION.get_or_init(|| {
        section(crate::BASELINE)
            .unattended_upgrades
            .unwrap_or_default()
    });
    with_context(|cx| {
        let _ = section.diff(&live, cx);
    });
}

/// A dump as `apt-config dump` prints it.
fn print_dump(dump: &aptconf::AptDump) -> String {
    let mut out = String::new();
    for (key, value) in &dump.scalars {
        out.push_str(&format!("{key} \"{value}\";\n"));
    }
    for (key, items) in &dump.lists {
        for item in items {
            out.push_str(&format!("{key}:: \"{item}\";\n"));
        }
    }
    out
}

/// The sections of a playbook text that must be valid.
fn section(yaml: &str) -> crate::Playbook {
    let source = Source {
        name: "fuzz-section.yaml".into(),
        text: yaml.into(),
    };
    match crate::load(vec![source]) {
        Ok(loaded) => loaded.playbook,
        Err(e) => panic!("the fuzz targets' own playbook is invalid:\n{e}"),
    }
}

/// Runs `f` with a diff context: a diff holds no host, so nothing here reads the system.
fn with_context(f: impl FnOnce(&DiffContext<'_>)) {
    let users = UserDb::parse(
        false,
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        "root:x:0:\nalice:x:1000:\n",
    );
    let (facts, live) = (Facts::default(), LiveFacts::default());
    let overrides = BTreeSet::new();
    f(&DiffContext {
        users: &users,
        facts: &facts,
        live: &live,
        overrides: &overrides,
    });
}
