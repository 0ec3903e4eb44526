//! End-to-end tests of the command line contract: exit codes, JSON documents, snapshots.

#[test]
fn exit_codes_follow_the_contract() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/c && echo 1 > /opt/c/f && chmod 644 /opt/c/f")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /opt/c/f, mode: \"0600\" }\n",
    );
    assert_eq!(sb.harden(&["plan", "/tmp/pb.yaml"]).status, 0);
    assert_eq!(
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        2
    );
    assert_eq!(
        sb.harden(&["apply", "--dry-run", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        2
    );
    assert_eq!(sb.harden(&["validate", "/tmp/pb.yaml"]).status, 0);
    assert_eq!(sb.harden(&["apply", "/tmp/pb.yaml"]).status, 0);
    assert_eq!(
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        0
    );
    assert_eq!(sb.harden(&["plan", "/tmp/missing.yaml"]).status, 1);
    assert_eq!(sb.harden(&["--root", "relative", "plan"]).status, 1);
    assert_eq!(sb.harden(&["rollback", "no-such-snapshot"]).status, 1);
}

#[test]
fn apply_and_snapshots_speak_json_for_programs() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/j && echo 1 > /opt/j/f && chmod 644 /opt/j/f")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /opt/j/f, mode: \"0640\" }\n",
    );
    let first = sb
        .harden(&["--format", "json", "apply", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    assert_eq!(first["status"], "changed");
    assert_eq!(first["changed"], true);
    let id = first["snapshot"].as_str().expect("snapshot id").to_owned();
    let second = sb
        .harden(&["--format", "json", "apply", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    assert_eq!(second["status"], "unchanged");
    assert_eq!(second["changed"], false);
    let list = sb
        .harden(&["--format", "json", "snapshots"])
        .assert_ok()
        .json();
    let snapshots = list["snapshots"].as_array().expect("list");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["id"], id.as_str());
    assert_eq!(snapshots[0]["changes"], 1);
    assert_eq!(snapshots[0]["playbooks"][0], "/tmp/pb.yaml");
    let invalid = sb.harden(&["--format", "json", "plan", "/tmp/nope.yaml"]);
    assert_eq!(invalid.status, 1);
    assert_eq!(invalid.json()["status"], "invalid");
}

#[test]
fn later_playbooks_override_earlier_ones() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/m && echo 1 > /opt/m/f && chmod 644 /opt/m/f")
        .assert_ok();
    sb.write(
        "/tmp/a.yaml",
        "files:\n  - { path: /opt/m/f, mode: \"0600\" }\n",
    );
    sb.write(
        "/tmp/b.yaml",
        "files:\n  - { path: /opt/m/f, mode: \"0640\" }\n",
    );
    sb.harden(&["apply", "/tmp/a.yaml", "/tmp/b.yaml"])
        .assert_ok();
    sb.sh("test \"$(stat -c '%a' /opt/m/f)\" = 640").assert_ok();
}

#[test]
fn text_output_is_plain_without_a_terminal() {
    let Some(sb) = crate::sandbox!() else { return };
    crate::support::keyed_admin(&sb);
    let plan = sb.harden(&["plan"]).assert_ok();
    assert!(
        !plan.stdout.contains('\u{1b}'),
        "colour codes in piped output: {:?}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Plan:") || plan.stdout.contains("No changes."),
        "{}",
        plan.stdout
    );
}

// Playbook input: what operators and truncated files really hand to harden.

/// A playbook touching every section, as lines, with `comment(gap, indent)` between every two
/// lines at the indentation of the line after it: between keys, inside mappings, inside block
/// lists and inside a flow list.
fn every_section(comment: impl Fn(usize, &str) -> String) -> String {
    const LINES: &[&str] = &[
        "files:",
        "  - path: /opt/pb/config",
        "    mode: \"0600\"",
        "  - { path: /opt/pb/data, mode: \"0750\" }",
        "sshd:",
        "  config:",
        "    MaxAuthTries: 3",
        "    X11Forwarding: false",
        "    KexAlgorithms:",
        "      - curve25519-sha256",
        "      - sntrup761x25519-sha512@openssh.com",
        "ufw:",
        "  default: { incoming: deny, outgoing: allow }",
        "  rules:",
        "    - { allow: 22/tcp, comment: ssh }",
        "    - allow: 443/tcp",
        "      from: 203.0.113.0/24",
        "fail2ban:",
        "  defaults: { bantime: 1h, findtime: 10m }",
        "  jails:",
        "    sshd:",
        "      maxretry: 3",
        "      ignoreip: [",
        "        127.0.0.1/8,",
        "        '::1' ]",
        "  filters:",
        "    pb-app: { failregex: ['Failed login from <HOST>'] }",
        "unattended_upgrades:",
        "  enabled: true",
        "  automatic_reboot: false",
    ];
    let mut out = String::new();
    for (gap, line) in LINES.iter().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        out.push_str(&comment(gap, indent));
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&comment(LINES.len(), ""));
    out
}

/// The JSON plan of `playbook`, without the playbook's name.
fn plan_json(sb: &crate::support::Sandbox, playbook: &str) -> serde_json::Value {
    let mut plan = sb
        .harden(&["plan", "--format", "json", playbook])
        .assert_ok()
        .json();
    plan["playbooks"] = serde_json::Value::Null;
    plan
}

/// Finding 3: 33 or more consecutive comment lines inside a block were refused ("too many
/// buffered comments while looking ahead").
#[test]
fn a_ten_thousand_line_commented_playbook_applies_as_the_same_playbook_without_comments() {
    let Some(sb) = crate::sandbox!() else { return };
    crate::support::keyed_admin(&sb);
    sb.sh("mkdir -p /opt/pb/data && echo x > /opt/pb/config && chmod 644 /opt/pb/config")
        .assert_ok();
    sb.write("/tmp/plain.yaml", &every_section(|_, _| String::new()));
    let commented = every_section(|gap, indent| {
        (0..340)
            .map(|n| format!("{indent}# {gap}.{n}: the reason for the next value, at length\n"))
            .collect()
    });
    assert!(commented.lines().count() > 10_000);
    sb.write("/tmp/commented.yaml", &commented);

    let plain = plan_json(&sb, "/tmp/plain.yaml");
    assert!(
        plain["changes"].as_array().is_some_and(|c| c.len() > 3),
        "{plain}"
    );
    assert_eq!(plan_json(&sb, "/tmp/commented.yaml"), plain);
    sb.harden(&["validate", "/tmp/commented.yaml"]).assert_ok();
    sb.harden(&["apply", "/tmp/commented.yaml"]).assert_ok();
    // What the commented playbook applied is all the plain one asks for.
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/plain.yaml"])
        .assert_status(0);
}

/// Finding 3, the other side: the parser's limits still hold for hostile input.
#[test]
fn an_alias_bomb_and_ten_thousand_levels_of_nesting_are_refused_quickly_at_a_place() {
    let Some(sb) = crate::sandbox!() else { return };
    let laughs = |level: usize| {
        if level == 0 {
            // Valid origins: the bomb gets past the first level.
            format!("&a0 [{}]", ["'origin=Debian,label=lol'"; 9].join(", "))
        } else {
            format!(
                "&a{level} [{}]",
                vec![format!("*a{}", level - 1); 9].join(", ")
            )
        }
    };
    let bomb = format!(
        "unattended_upgrades:\n  origins: {}\nsshd:\n  config:\n    AllowUsers: [{}, *a9]\n",
        laughs(0),
        (1..10).map(laughs).collect::<Vec<_>>().join(", ")
    );
    let flow = format!("files: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let block: String = std::iter::once("fail2ban:\n".to_owned())
        .chain((1..10_000).map(|d| format!("{}k{d}:\n", " ".repeat(d))))
        .collect();
    for (name, text) in [("bomb", bomb), ("flow", flow), ("block", block)] {
        let path = format!("/tmp/{name}.yaml");
        sb.write(&path, &text);
        for command in ["validate", "plan", "apply"] {
            let start = std::time::Instant::now();
            let run = sb.harden(&[command, &path]).assert_status(1);
            let took = start.elapsed();
            assert!(took.as_secs() < 5, "{name}: {command} took {took:?}");
            let first = run.stderr.lines().next().unwrap_or_default().to_owned();
            let place: Vec<&str> = first.splitn(5, ':').collect();
            assert!(
                place.len() == 5
                    && place[1].trim() == path
                    && place[2].parse::<u32>().is_ok()
                    && place[3].parse::<u32>().is_ok(),
                "{name}: {run}"
            );
            // The quoted line is cut around the column, not 20,000 characters wide.
            assert!(
                run.stderr
                    .lines()
                    .filter(|l| l.contains(" | "))
                    .all(|l| l.chars().count() < 200),
                "{name}: {run}"
            );
        }
    }
    assert!(!sb.exists("/var/lib/harden"), "nothing was applied");
}

/// Finding 5: `harden apply /nonexistent.yaml latin1.yaml` blamed `<playbook>:1:1` for the
/// second file's encoding; a NUL in a path was a probe failure without a place, the NUL
/// dropped from the message.
#[test]
fn every_playbook_error_names_its_file_and_control_characters_in_paths_are_shown() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write_bytes(
        "/tmp/latin1.yaml",
        b"files:\n  - { path: /etc/motd, mode: \"0644\" }\n# caf\xe9 au lait\n",
    );
    let run = sb
        .harden(&["apply", "/nonexistent.yaml", "/tmp/latin1.yaml"])
        .assert_status(1);
    assert!(
        run.stderr
            .contains("/nonexistent.yaml:1:1: cannot read playbook: No such file or directory"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("/tmp/latin1.yaml:3:6: not UTF-8 text: byte 0xE9 is not valid UTF-8"),
        "{run}"
    );
    assert!(!run.output().contains("<playbook>"), "{run}");
    let json = sb
        .harden(&["--format", "json", "validate", "/tmp/latin1.yaml"])
        .assert_status(1)
        .json();
    assert_eq!(json["status"], "invalid");
    assert_eq!(json["errors"][0]["file"], "/tmp/latin1.yaml");
    assert_eq!(json["errors"][0]["line"], 3);

    sb.sh("mkdir -p /srv/ab").assert_ok();
    sb.write(
        "/tmp/nul.yaml",
        "files:\n  - { path: \"/srv/a\\0b\", mode: \"0700\" }\n  - { path: \"/srv/a\\tb\", mode: \"0700\" }\n",
    );
    for command in ["validate", "plan", "apply"] {
        let run = sb.harden(&[command, "/tmp/nul.yaml"]).assert_status(1);
        assert!(
            run.stderr.contains(
                r#"/tmp/nul.yaml:2:13: path "/srv/a\0b" contains the control character '\0'"#
            ),
            "{command}: {run}"
        );
        assert!(
            run.stderr.contains(
                r#"/tmp/nul.yaml:3:13: path "/srv/a\tb" contains the control character '\t'"#
            ),
            "{command}: {run}"
        );
        assert!(!run.stderr.contains("live state"), "{command}: {run}");
    }
    assert!(!sb.exists("/var/lib/harden"), "nothing was applied");
}

/// Finding 6: an empty playbook succeeded silently ("No changes. 0 unchanged.", exit 0), so
/// a truncated site playbook reported success on every host.
#[test]
fn an_empty_playbook_is_an_error_that_names_the_file() {
    let Some(sb) = crate::sandbox!() else { return };
    for text in [
        "",
        "  \n\n",
        "# to do\n# later\n",
        "---\n",
        "~\n",
        "null\n",
        "{}\n",
    ] {
        sb.write("/etc/harden/site.yaml", text);
        for command in ["validate", "plan", "apply"] {
            let run = sb
                .harden(&[command, "/etc/harden/site.yaml"])
                .assert_status(1);
            assert!(
                run.stderr
                    .contains("/etc/harden/site.yaml:1:1: the playbook is empty"),
                "{text:?}, {command}: {run}"
            );
            assert!(!run.stdout.contains("No changes"), "{text:?}: {run}");
            let json = sb
                .harden(&["--format", "json", command, "/etc/harden/site.yaml"])
                .assert_status(1)
                .json();
            assert_eq!(json["status"], "invalid", "{text:?}: {json}");
            assert_eq!(json["errors"][0]["file"], "/etc/harden/site.yaml");
            let message = json["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("the playbook is empty"),
                "{text:?}: {json}"
            );
        }
    }
    // Every headline is marked as an error, even a file name that starts with a digit.
    sb.write("/tmp/2024.yaml", "");
    let run = sb
        .sh(&format!(
            "cd /tmp && {} validate 2024.yaml",
            crate::support::HARDEN_IN_SANDBOX
        ))
        .assert_status(1);
    assert!(
        run.stderr
            .starts_with("error: 2024.yaml:1:1: the playbook is empty"),
        "{run}"
    );
    assert!(!sb.exists("/var/lib/harden"), "nothing was applied");
}

/// Beyond the findings: the usual slips are accepted as meant or refused at their place.
#[test]
fn malformed_playbooks_are_accepted_as_meant_or_refused_at_their_place() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/mf && echo 1 > /opt/mf/f && chmod 644 /opt/mf/f")
        .assert_ok();
    let plain = "files:\n  - path: /opt/mf/f\n    mode: \"0600\"\n";
    sb.write("/tmp/plain.yaml", plain);
    let want = plan_json(&sb, "/tmp/plain.yaml");
    // A byte-order mark and CRLF line endings (a file saved on Windows) mean the same.
    sb.write("/tmp/bom.yaml", &format!("\u{feff}{plain}"));
    sb.write("/tmp/crlf.yaml", &plain.replace('\n', "\r\n"));
    for path in ["/tmp/bom.yaml", "/tmp/crlf.yaml"] {
        assert_eq!(plan_json(&sb, path), want, "{path}");
    }
    for (text, place, words) in [
        (
            "files:\n\t- { path: /opt/mf/f, mode: \"0600\" }\n",
            "/tmp/bad.yaml:2:",
            "tabs",
        ),
        (
            "files:\n  - { path: /opt/mf/f, mode: \"0600\" }\nfiles:\n  - { path: /opt/mf/f, mode: \"0640\" }\n",
            "/tmp/bad.yaml:3:1:",
            "duplicate key `files`",
        ),
        (
            "files:\n  - { path: /opt/mf/f, mode: \"0600\", mode: \"0640\" }\n",
            "/tmp/bad.yaml:2:38:",
            "duplicate key `mode`",
        ),
        (
            "sshd:\n  MaxAuthTries: 3\n",
            "/tmp/bad.yaml:2:3:",
            "unknown field `MaxAuthTries`, expected one of config",
        ),
        (
            "files:\n  path: /opt/mf/f\n  mode: \"0600\"\n",
            "/tmp/bad.yaml:2:3:",
            "expected a list",
        ),
        ("ufw:\n  - enabled: true\n", "/tmp/bad.yaml:2:3:", "expected a mapping"),
        (
            "files:\n  - { path: /opt/mf/f, mode: \"0600\" }\n  - { path: /opt/mf/f, mode: \"0640\" }\n",
            "/tmp/bad.yaml:3:13:",
            "path \"/opt/mf/f\" is listed twice in this playbook",
        ),
        (
            "files: []\n---\nufw: { enabled: true }\n",
            "/tmp/bad.yaml:",
            "a second YAML document",
        ),
    ] {
        sb.write("/tmp/bad.yaml", text);
        let run = sb.harden(&["plan", "/tmp/bad.yaml"]).assert_status(1);
        assert!(run.stderr.contains(place), "{place} for {text:?}: {run}");
        assert!(run.stderr.contains(words), "{words:?} for {text:?}: {run}");
    }
    // A huge file (a log named by mistake) is refused without being read whole.
    sb.sh("head -c 17000000 /dev/zero | tr '\\0' '#' > /tmp/huge.yaml")
        .assert_ok();
    let run = sb.harden(&["plan", "/tmp/huge.yaml"]).assert_status(1);
    assert!(
        run.stderr
            .contains("/tmp/huge.yaml:1:1: playbook is larger than 16 MiB"),
        "{run}"
    );
    let run = sb.harden(&["plan", "/tmp"]).assert_status(1);
    assert!(
        run.stderr.contains("/tmp:1:1: cannot read playbook"),
        "{run}"
    );
}
