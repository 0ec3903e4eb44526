//! The loader against what operators really write: long comment blocks, empty and truncated
//! files, files that are not UTF-8, hostile YAML, and the usual slips (tabs, CRLF, a BOM,
//! duplicate keys, a key at the wrong level).

use std::io::Write as _;
use std::time::{Duration, Instant};

use super::*;

fn source(name: &str, text: &str) -> Source {
    Source {
        name: name.into(),
        text: text.into(),
    }
}

/// The whole error report for one playbook called `pb.yaml`.
fn errors_of(text: &str) -> String {
    load(vec![source("pb.yaml", text)])
        .expect_err("the playbook is invalid")
        .to_string()
}

/// The playbooks loaded; a failure shows the report, not the texts.
fn loads(sources: Vec<Source>) -> Loaded {
    load(sources).unwrap_or_else(|e| panic!("invalid:\n{e}"))
}

fn first_error(text: &str) -> String {
    errors_of(text)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The playbook's `Debug` form with every line and column number removed, so that the same
/// values written at other places compare equal.
fn without_places(playbook: &Playbook) -> String {
    let text = format!("{playbook:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("line: ") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(" }").unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A temporary playbook file holding `bytes`.
fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(bytes).expect("write temp file");
    f
}

/// Fails unless `run` finishes within `limit`: a bound against blow-ups (an alias bomb
/// expanded would take hours), generous enough for a loaded machine, not a speed target.
fn quickly<T>(limit: Duration, run: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = run();
    let took = start.elapsed();
    assert!(took < limit, "took {took:?}, more than {limit:?}");
    result
}

#[test]
fn the_baseline_is_valid() {
    let loaded = load_files(&[] as &[&str]).expect("baseline loads");
    assert_eq!(loaded.names(), vec![BASELINE_NAME]);
}

#[test]
fn unknown_top_level_key_names_file_line_and_column() {
    let msg = first_error("files: []\nfirewall: {}\n");
    assert!(
        msg.starts_with("pb.yaml:2:1: unknown field `firewall`"),
        "{msg}"
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    let msg = first_error("files: [\n");
    assert!(msg.starts_with("pb.yaml:1:"), "{msg}");
}

#[test]
fn errors_name_the_playbook_they_are_in() {
    let err = load(vec![
        source("a.yaml", "files: []\n"),
        source("b.yaml", "files:\n  - path: relative\n"),
    ])
    .expect_err("invalid");
    let msg = err.to_string();
    assert!(msg.starts_with("b.yaml:2:11: "), "{msg}");
}

// Finding 3: 33 consecutive comment lines inside a block were refused ("too many buffered
// comments while looking ahead"); 32 passed.

#[test]
fn thirty_three_comment_lines_inside_a_block_are_accepted() {
    let comments: String = (0..33).map(|i| format!("  # note {i}\n")).collect();
    let text = format!("files:\n{comments}  - {{ path: /etc/passwd, mode: \"0644\" }}\n{comments}");
    let loaded = loads(vec![source("pb.yaml", &text)]);
    assert_eq!(loaded.playbook.files.map(|f| f.0.len()), Some(1));
}

/// A playbook touching every section, as lines; `comment(i)` is put between every two lines,
/// at the indentation of the line that follows (inside mappings, lists and flow lists).
fn every_section(comment: impl Fn(usize, &str) -> String) -> String {
    const LINES: &[&str] = &[
        "groups:",
        "  docker: { system: true }",
        "  web:",
        "users:",
        "  mist:",
        "    system: true",
        "    groups: [docker]",
        "files:",
        "  - path: /etc/cron.d",
        "    mode: \"0700\"",
        "  - { path: /etc/ssh/sshd_config, mode: \"0600\", owner: root }",
        "env_files:",
        "  - path: /opt/app/.env",
        "    keys:",
        "      JWT_SECRET: { min_length: 32, generate: { hex: 32 } }",
        "      DEBUG: { equals: \"false\" }",
        "sshd:",
        "  config:",
        "    PermitRootLogin: prohibit-password",
        "    MaxAuthTries: 3",
        "    KexAlgorithms:",
        "      - curve25519-sha256",
        "      - sntrup761x25519-sha512@openssh.com",
        "ufw:",
        "  enabled: true",
        "  default: { incoming: deny, outgoing: allow }",
        "  rules:",
        "    - { allow: 22/tcp, comment: ssh }",
        "    - limit: 2222/tcp",
        "      from: 203.0.113.0/24",
        "fail2ban:",
        "  defaults: { bantime: 1h, findtime: 10m, maxretry: 5 }",
        "  jails:",
        "    sshd:",
        "      maxretry: 3",
        "      ignoreip: [",
        "        127.0.0.1/8,",
        "        '::1' ]",
        "  filters:",
        "    app: { failregex: ['Failed login from <HOST>'] }",
        "unattended_upgrades:",
        "  enabled: true",
        "  automatic_reboot: false",
        "sysctl:",
        "  net.ipv4.tcp_syncookies: 1",
        "kernel_modules:",
        "  dccp: blocked",
        "login_defs:",
        "  PASS_MAX_DAYS: 365",
        "limits:",
        "  core_dumps: false",
        "packages:",
        "  present: [debsums, apt-show-versions]",
        "  absent:",
        "    - telnet",
        "services:",
        "  cups: { enablement: masked, running: false }",
        "pam:",
        "  pwquality:",
        "    minlen: 14",
        "    enforce_for_root: true",
        "audit:",
        "  rules:",
        "    - -w /etc/passwd -p wa -k identity",
    ];
    let mut out = String::new();
    for (i, line) in LINES.iter().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        out.push_str(&comment(i, indent));
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&comment(LINES.len(), ""));
    out
}

#[test]
fn a_ten_thousand_line_commented_playbook_loads_as_the_same_playbook_without_comments() {
    let plain = every_section(|_, _| String::new());
    // 31 gaps of 330 comment lines: about 10,000 lines of comments, plus a comment at the end
    // of some value lines is not possible in flow lists, so only whole comment lines.
    let commented = every_section(|gap, indent| {
        (0..330)
            .map(|n| format!("{indent}# gap {gap}, note {n}: why the next value is what it is\n"))
            .collect()
    });
    assert!(commented.lines().count() > 10_000, "a long playbook");
    let plain = loads(vec![source("pb.yaml", &plain)]);
    let commented = quickly(Duration::from_secs(20), || {
        loads(vec![source("pb.yaml", &commented)])
    });
    assert_eq!(
        without_places(&commented.playbook),
        without_places(&plain.playbook)
    );
    assert_eq!(commented.playbook.sections(), Playbook::SECTIONS);
}

/// Nine levels of nine aliases each: 9^9 (387 million) strings once expanded.
fn laughs(level: usize) -> String {
    if level == 0 {
        return format!("&a0 [{}]", ["'origin=Debian,label=lol'"; 9].join(", "));
    }
    format!(
        "&a{level} [{}]",
        vec![format!("*a{}", level - 1); 9].join(", ")
    )
}

#[test]
fn a_billion_laughs_alias_bomb_is_refused_quickly_with_a_place() {
    // The classic form, each level under its own key.
    let classic: String = (0..10)
        .map(|l| {
            format!(
                "l{l}: {}
",
                laughs(l)
            )
        })
        .collect();
    // Level 0 where a list of strings is valid, the others nested where the bomb goes off.
    let nested = format!(
        "unattended_upgrades:\n  origins: {}\nsshd:\n  config:\n    AllowUsers: [{}, *a9]\n",
        laughs(0),
        (1..10).map(laughs).collect::<Vec<_>>().join(", ")
    );
    for target in [
        "files: *a9",
        "ufw:\n  rules: *a9",
        "fail2ban:\n  jails:\n    sshd: { ignoreip: *a9 }",
    ] {
        let defined = format!("unattended_upgrades:\n  origins: {}\n", laughs(0));
        for text in [
            format!("{classic}{target}\n"),
            nested.clone(),
            format!("{defined}{target}\n"),
        ] {
            let msg = quickly(Duration::from_secs(10), || first_error(&text));
            let place: Vec<&str> = msg.splitn(4, ':').collect();
            assert!(
                place[0] == "pb.yaml"
                    && place.len() == 4
                    && place[1].parse::<u32>().is_ok_and(|l| l >= 1)
                    && place[2].parse::<u32>().is_ok_and(|c| c >= 1),
                "{msg}"
            );
        }
    }
    // Wide rather than deep, and well typed: one list of 5,000 addresses named by 1,000
    // jails would be five million values; the replay limit refuses it at the alias.
    let addresses: Vec<String> = (0..5000)
        .map(|i| format!("10.{}.{}.1", i / 250, i % 250))
        .collect();
    let mut wide = format!(
        "fail2ban:\n  defaults: {{ ignoreip: &ips [{}] }}\n  jails:\n",
        addresses.join(", ")
    );
    for j in 0..1000 {
        wide.push_str(&format!("    j{j}: {{ filter: sshd, ignoreip: *ips }}\n"));
    }
    let msg = quickly(Duration::from_secs(20), || first_error(&wide));
    assert!(msg.starts_with("pb.yaml:"), "{msg}");
    assert!(
        msg.contains("aliases that expand to too many values"),
        "{msg}"
    );

    // Anchors and aliases as such are fine: a list shared by two sections.
    let shared = "fail2ban:\n  defaults: { ignoreip: &trusted [127.0.0.1/8, 10.0.0.0/8] }\n  jails:\n    sshd: { ignoreip: *trusted }\n";
    let loaded = loads(vec![source("pb.yaml", shared)]);
    let jails = loaded.playbook.fail2ban.map(|f| f.jails.len());
    assert_eq!(jails, Some(1));
    // One owner named in a thousand entries.
    let mut many =
        String::from("files:\n  - { path: /srv/f0, owner: &app www-data, missing: ignore }\n");
    for i in 1..1000 {
        many.push_str(&format!(
            "  - {{ path: /srv/f{i}, owner: *app, missing: ignore }}\n"
        ));
    }
    let loaded = loads(vec![source("pb.yaml", &many)]);
    assert_eq!(loaded.playbook.files.map(|f| f.0.len()), Some(1000));
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused_quickly_with_a_place() {
    let flow = format!("files: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let mut block = String::from("fail2ban:\n");
    for depth in 1..10_000 {
        block.push_str(&format!("{}k{depth}:\n", " ".repeat(depth)));
    }
    let mut list = String::from("files:\n");
    for depth in 1..10_000 {
        list.push_str(&format!("{}-\n", " ".repeat(depth)));
    }
    for text in [flow, block, list] {
        let msg = quickly(Duration::from_secs(10), || first_error(&text));
        assert!(msg.starts_with("pb.yaml:"), "{msg}");
        assert!(
            !msg.starts_with("pb.yaml:1:1: the playbook is empty"),
            "{msg}"
        );
    }
    // The quoted line is cut around the column, not printed 20,000 characters wide.
    let report = errors_of(&format!(
        "files: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    ));
    assert!(report.lines().all(|l| l.chars().count() < 200), "{report}");
    assert!(
        report.contains("nests more than 32 levels deep; harden refuses such input"),
        "{report}"
    );
}

// Finding 5: errors name their file; control characters in paths are located and shown.

#[test]
fn each_unreadable_playbook_is_named_and_a_bad_byte_is_located() {
    let latin1 = file(b"files:\n  - { path: /etc/caf\xe9, mode: \"0644\" }\n");
    let good = file(b"files:\n  - { path: /etc/motd, colour: red }\n");
    let missing = "/nonexistent/harden-playbook.yaml";
    let latin1_name = latin1.path().display().to_string();
    let good_name = good.path().display().to_string();
    let err =
        load_files(&[Path::new(missing), latin1.path(), good.path()]).expect_err("unreadable");
    let report = err.to_string();
    assert!(
        report.starts_with(&format!(
            "{missing}:1:1: cannot read playbook: No such file or directory"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "{latin1_name}:2:21: not UTF-8 text: byte 0xE9 is not valid UTF-8"
        )),
        "{report}"
    );
    assert!(report.contains("iconv"), "{report}");
    // The readable playbook's own error is reported in the same run.
    assert!(
        report.contains(&format!("{good_name}:2:24: unknown field `colour`")),
        "{report}"
    );
    assert!(!report.contains("<playbook>"), "{report}");
    assert_eq!(err.errors.len(), 3);

    let utf16 = file(b"\xff\xfef\0i\0l\0e\0s\0:\0 \0[\0]\0\n\0");
    let report = load_files(&[utf16.path()]).expect_err("UTF-16").to_string();
    assert!(
        report.contains(":1:1: not UTF-8 text: byte 0xFF"),
        "{report}"
    );
    assert!(report.contains("the file is UTF-16"), "{report}");
}

#[test]
fn a_control_character_in_a_path_is_a_located_error_shown_escaped() {
    for (text, place, shown) in [
        (
            "files:\n  - { path: \"/srv/a\\0b\", mode: \"0644\" }\n",
            "pb.yaml:2:13:",
            r#"path "/srv/a\0b" contains the control character '\0'"#,
        ),
        (
            "files:\n  - { path: \"/srv/a\\eb\", mode: \"0644\" }\n",
            "pb.yaml:2:13:",
            r#"path "/srv/a\u{1b}b" contains the control character '\u{1b}'"#,
        ),
        (
            "fail2ban:\n  jails:\n    app:\n      logpath: \"/var/log/a\\0b\"\n",
            "pb.yaml:4:16:",
            r#""/var/log/a\0b" contains the control character '\0'"#,
        ),
        (
            "fail2ban:\n  filters:\n    app: { failregex: [\"<HOST>\\x01\"] }\n",
            "pb.yaml:3:",
            r#""<HOST>\u{1}" contains the control character '\u{1}'"#,
        ),
    ] {
        let msg = first_error(text);
        assert!(msg.starts_with(place), "{place} for {text:?}: {msg}");
        assert!(msg.contains(shown), "{shown} for {text:?}: {msg}");
    }
    // A control character written into the file itself is quoted visibly, not sent to the
    // terminal.
    let report = errors_of("files:\n  - { path: /srv/\u{1b}[31mred, mode: \"0644\" }\n");
    assert!(!report.contains('\u{1b}'), "{report:?}");
    assert!(report.contains("/srv/\u{241b}[31mred"), "{report}");
}

// Finding 6: an empty playbook is an error naming the file.

#[test]
fn empty_playbooks_are_errors_that_name_the_file() {
    for text in [
        "",
        "   \n\n\t\n",
        "# nothing yet\n",
        "\u{feff}# a BOM and a comment\n",
        "---\n",
        "---\n...\n",
        "~\n",
        "null\n",
        "{}\n",
        "files:\n",
        "files: ~\nsshd:\n",
    ] {
        let err = load(vec![
            source("a.yaml", "files: []\n"),
            source("site.yaml", text),
        ])
        .expect_err("an empty playbook is invalid");
        let report = err.to_string();
        assert!(
            report.starts_with("site.yaml:1:1: the playbook is empty"),
            "{text:?}: {report}"
        );
        assert!(report.contains("files, sshd, ufw"), "{text:?}: {report}");
        assert_eq!(err.errors.len(), 1, "{text:?}: {report}");
    }
    // Empty sections are not empty playbooks: `files: []` says "manage no file".
    loads(vec![source("a.yaml", "files: []\n")]);
}

// Beyond the list: what careless editing produces.

#[test]
fn tabs_bom_and_crlf() {
    let msg = errors_of("files:\n\t- { path: /etc/passwd, mode: \"0644\" }\n");
    assert!(msg.starts_with("pb.yaml:2:"), "{msg}");
    assert!(msg.contains("tabs"), "{msg}");
    assert!(msg.contains("help: indent YAML with spaces"), "{msg}");

    let plain = "files:\n  - path: /etc/motd\n    content: |\n      one\n      two\n";
    let plain = loads(vec![source("pb.yaml", plain)]);
    for variant in [
        "\u{feff}files:\n  - path: /etc/motd\n    content: |\n      one\n      two\n",
        "files:\r\n  - path: /etc/motd\r\n    content: |\r\n      one\r\n      two\r\n",
    ] {
        let loaded = loads(vec![source("pb.yaml", variant)]);
        assert_eq!(
            without_places(&loaded.playbook),
            without_places(&plain.playbook),
            "{variant:?}"
        );
    }
    let content = plain
        .playbook
        .files
        .and_then(|f| f.0.into_iter().next())
        .and_then(|e| e.content);
    assert_eq!(content.as_deref(), Some("one\ntwo\n"));
}

#[test]
fn duplicate_keys_wrong_levels_and_wrong_shapes_are_located() {
    for (text, place, words) in [
        (
            "files:\n  - { path: /etc/passwd, mode: \"0644\" }\nfiles:\n  - { path: /etc/shadow, mode: \"0640\" }\n",
            "pb.yaml:3:1:",
            "duplicate key `files`",
        ),
        (
            "files:\n  - { path: /etc/passwd, mode: \"0644\", mode: \"0600\" }\n",
            "pb.yaml:2:40:",
            "duplicate key `mode`",
        ),
        (
            "sshd:\n  PermitRootLogin: \"no\"\n",
            "pb.yaml:2:3:",
            "unknown field `PermitRootLogin`, expected one of config",
        ),
        (
            "files:\n  path: /etc/passwd\n  mode: \"0644\"\n",
            "pb.yaml:2:3:",
            "expected a list",
        ),
        ("sshd:\n  - config: {}\n", "pb.yaml:2:3:", "expected a mapping"),
        (
            "files:\n  - { path: /etc/passwd, mode: \"0644\" }\n  - { path: /etc/passwd, mode: \"0600\" }\n",
            "pb.yaml:3:13:",
            "path \"/etc/passwd\" is listed twice in this playbook (first at line 2)",
        ),
        ("- files: []\n", "pb.yaml:1:1:", "expected a mapping"),
        ("files\n", "pb.yaml:1:1:", "expected a mapping"),
        (
            "files: []\n---\nsshd: {}\n",
            "pb.yaml:",
            "a second YAML document",
        ),
    ] {
        let msg = first_error(text);
        assert!(msg.starts_with(place), "{place} for {text:?}: {msg}");
        assert!(msg.contains(words), "{words:?} for {text:?}: {msg}");
        assert!(!msg.contains("Options"), "advice for programmers: {msg}");
    }
    // A document start marker is fine.
    loads(vec![source("pb.yaml", "---\nfiles: []\n")]);
}

#[test]
fn a_huge_file_is_refused_before_it_is_read_whole_and_a_long_one_is_accepted() {
    let huge = file(&vec![
        b'#';
        usize::try_from(MAX_PLAYBOOK_BYTES).expect("fits") + 1
    ]);
    let err = load_files(&[huge.path()]).expect_err("too large");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:1:1: playbook is larger than 16 MiB",
            huge.path().display()
        )),
        "{msg}"
    );

    // 40,000 entries, about 2.5 MB, more values than the parser counts by default
    // (250,000): a large generated site playbook, accepted.
    let mut long = String::from("files:\n");
    for i in 0..40_000 {
        long.push_str(&format!(
            "  - {{ path: /srv/app/f{i}, mode: \"0640\", missing: ignore }}\n"
        ));
    }
    let loaded = quickly(Duration::from_secs(60), || {
        loads(vec![source("pb.yaml", &long)])
    });
    assert_eq!(loaded.playbook.files.map(|f| f.0.len()), Some(40_000));

    let dir = tempfile::tempdir().expect("temp dir");
    let msg = load_files(&[dir.path()])
        .expect_err("a directory")
        .to_string();
    assert!(
        msg.contains("cannot read playbook: it is a directory"),
        "{msg}"
    );
}

#[test]
fn errors_after_lone_carriage_returns_quote_the_line_yaml_counts() {
    // Found by fuzzing (fuzz/regressions/playbook/): YAML ends a line at a lone `\r`, so the
    // error is on line 3, which `str::lines` does not find.
    let err = load(vec![source("pb.yaml", "# one\r# two\rfiles: 7\n")]).expect_err("invalid");
    let shown = err.to_string();
    assert!(shown.starts_with("pb.yaml:3:"), "{shown}");
    assert!(shown.contains("3 | files: 7"), "{shown}");
}
