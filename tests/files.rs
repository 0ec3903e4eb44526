//! End-to-end tests of the `files` resource and of the engine under it: plan, apply,
//! idempotence, rollback, symlink safety, `--root` (crash recovery: `reliability.rs`).

use crate::support::Sandbox;

/// A state fingerprint: mode, owner, group, ctime, mtime, size and path of every file below
/// `dir`, plus checksums of regular files. ctime moves on any chmod/chown, so equal
/// fingerprints mean nothing was touched.
fn fingerprint(sb: &Sandbox, dir: &str) -> String {
    sb.sh(&format!("cd {dir} && find . -printf '%m %U %G %C@ %T@ %s %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum"))
        .assert_ok()
        .stdout
        .clone()
}

/// Modes, owners and content only (not times): what a rollback must restore.
fn content_and_attrs(sb: &Sandbox, dir: &str) -> String {
    sb.sh(&format!("cd {dir} && find . -printf '%m %U %G %s %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum"))
        .assert_ok()
        .stdout
        .clone()
}

fn make_tree(sb: &Sandbox, files: usize) {
    sb.sh(&format!(
        "set -e; mkdir -p /srv/www; cd /srv/www; mkdir -p a b c/d; \
         python3 -c 'import os\nfor i in range({files}):\n  d=\"abc\"[i%3] + (\"/d\" if i%3==2 else \"\")\n  p=f\"{{d}}/f{{i}}.html\"\n  open(p,\"w\").write(str(i))\n  os.chmod(p, 0o755 if i%10==0 else 0o644)'; \
         chmod 755 a b c c/d; useradd --system --no-create-home webadmin; groupadd --system webdata; \
         mkdir -p /opt/app; printf 'SECRET=old\\n' > /opt/app/.env; chmod 644 /opt/app/.env"
    ))
    .assert_ok();
}

const TREE_PLAYBOOK: &str = "files:
  - { path: /srv/www, mode: \"u=rwX,g=rX,o=\", owner: webadmin, group: webdata, recurse: true }
  - { path: /opt/app/.env, mode: \"0600\" }
  - { path: /opt/app/config.yaml, content: \"debug: false\\n\", mode: \"0640\", group: webdata }
";

#[test]
fn a_tree_is_planned_exactly_applied_idempotently_and_rolled_back_byte_for_byte() {
    let Some(sb) = crate::sandbox!() else { return };
    make_tree(&sb, 10_000);
    sb.write("/tmp/pb.yaml", TREE_PLAYBOOK);
    let before = content_and_attrs(&sb, "/srv/www") + &content_and_attrs(&sb, "/opt/app");

    // Every path in the tree differs in owner; .env in mode; config.yaml is missing. The
    // tree is two changes: its root, and one step for everything below it.
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 4, "root, tree, .env, config.yaml");
    let tree = &changes[1]["steps"][0];
    assert_eq!(tree["op"], "set_tree_attrs");
    // files, a, b, c and c/d
    assert_eq!(
        (tree["changes"].as_u64(), tree["entries"].as_u64()),
        (Some(10_004), Some(10_004))
    );
    assert_eq!(plan["unchanged"], 0);
    let env = changes
        .iter()
        .find(|c| c["target"] == "/opt/app/.env")
        .expect(".env planned");
    assert_eq!(env["steps"][0]["to"]["mode"], 0o600);

    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        apply.stderr.contains("Applied 4 changes"),
        "{}",
        apply.stderr
    );
    sb.sh("test \"$(stat -c '%a %U %G' /srv/www/a/f0.html)\" = '750 webadmin webdata'")
        .assert_ok();
    sb.sh("test \"$(stat -c '%a %U %G' /srv/www/b/f1.html)\" = '640 webadmin webdata'")
        .assert_ok();
    sb.sh("test \"$(stat -c '%a %U %G' /srv/www/c/d)\" = '750 webadmin webdata'")
        .assert_ok();
    sb.sh("test \"$(stat -c '%a' /opt/app/.env)\" = 600 && test \"$(cat /opt/app/config.yaml)\" = 'debug: false'").assert_ok();
    sb.sh("test \"$(stat -c '%a %U %G' /opt/app/config.yaml)\" = '640 root webdata'")
        .assert_ok();

    // A second apply changes nothing and touches nothing.
    let settled = fingerprint(&sb, "/srv/www") + &fingerprint(&sb, "/opt/app");
    let again = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        again.stdout.contains("No changes. 10007 unchanged."),
        "{}",
        again.stdout
    );
    assert_eq!(
        fingerprint(&sb, "/srv/www") + &fingerprint(&sb, "/opt/app"),
        settled,
        "second apply touched files"
    );
    let detailed = sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"]);
    assert_eq!(detailed.status, 0, "{}", detailed.stdout);

    // Rollback restores every mode, owner and byte, and removes the file apply created.
    sb.harden(&["rollback"]).assert_ok();
    let after = content_and_attrs(&sb, "/srv/www") + &content_and_attrs(&sb, "/opt/app");
    assert_eq!(after, before, "rollback did not restore the tree exactly");
    sb.sh("test ! -e /opt/app/config.yaml").assert_ok();
}

#[test]
fn plan_writes_nothing() {
    let Some(sb) = crate::sandbox!() else { return };
    assert_eq!(
        sb.upper_entries(),
        Vec::<String>::new(),
        "the sandbox starts clean"
    );
    // No account has a key here, so the baseline's sshd section is refused: the plan of
    // the rest is still shown, with exit 1. Nothing is written either way.
    let refused = sb.harden(&["plan"]);
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(refused.stdout.contains("Plan:"), "{refused:?}");
    assert!(
        refused.stderr.contains("--allow sshd-no-keyed-login"),
        "{refused:?}"
    );
    assert_eq!(
        sb.harden(&["plan", "--format", "json"]).json()["status"],
        "refused"
    );
    assert_eq!(sb.harden(&["apply", "--dry-run"]).status, 1);
    sb.harden(&["validate"]).assert_ok();
    sb.harden(&["snapshots"]).assert_ok();
    assert_eq!(
        sb.upper_entries(),
        Vec::<String>::new(),
        "plan, dry-run, validate or snapshots wrote to the system"
    );
}

#[test]
fn the_baseline_plan_writes_nothing_on_a_server_with_a_keyed_admin() {
    let Some(sb) = crate::sandbox!() else { return };
    crate::support::keyed_admin(&sb);
    let upper = sb.upper_entries();
    let plan = sb.harden(&["plan"]).assert_ok();
    assert!(plan.stdout.contains("~ sshd"), "{plan:?}");
    sb.harden(&["plan", "--format", "json"]).assert_ok();
    sb.harden(&["apply", "--dry-run"]).assert_ok();
    assert_eq!(sb.upper_entries(), upper, "plan wrote to the system");
}

#[test]
fn links_to_shadow_inside_a_recursed_tree_are_not_followed() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("set -e; mkdir -p /srv/up/sub; echo x > /srv/up/sub/page; ln -s /etc/shadow /srv/up/sub/soft; ln /etc/shadow /srv/up/sub/hard; ln -s /etc /srv/up/etc-link")
        .assert_ok();
    let shadow = sb
        .sh("stat -c '%a %U %G %i' /etc/shadow")
        .assert_ok()
        .stdout
        .clone();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/up, mode: \"0777\", owner: nobody, recurse: true }\n",
    );
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.stdout.contains("hard link"),
        "the skipped hard link is reported: {}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("/etc/shadow"), "{}", plan.stdout);
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_eq!(
        sb.sh("stat -c '%a %U %G %i' /etc/shadow")
            .assert_ok()
            .stdout,
        shadow
    );
    sb.sh("test \"$(stat -c '%a %U' /srv/up/sub/page)\" = '777 nobody'")
        .assert_ok();
    sb.sh("test \"$(stat -c '%a' /etc)\" = 755").assert_ok();
}

#[test]
fn a_symlink_in_a_parent_owned_by_a_user_is_not_followed_for_writes() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("set -e; useradd -m mallory; mkdir -p /srv/m; chown mallory /srv/m; ln -s /etc /srv/m/dir; chown -h mallory /srv/m/dir").assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/m/dir/passwd, mode: \"0666\" }\n",
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("refusing to follow a symlink owned by uid"),
        "{}",
        run.stderr
    );
    sb.sh("test \"$(stat -c '%a' /etc/passwd)\" = 644")
        .assert_ok();
}

#[test]
fn an_unknown_owner_is_refused_before_any_change() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/x && echo 1 > /opt/x/a && chmod 644 /opt/x/a")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /opt/x/a, mode: \"0600\" }\n  - { path: /opt/x, owner: ghost }\n",
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains("/tmp/pb.yaml:3:28: unknown user \"ghost\""),
        "{}",
        run.stderr
    );
    sb.sh("test \"$(stat -c '%a' /opt/x/a)\" = 644 && test ! -e /var/lib/harden/snapshots")
        .assert_ok();
}

#[test]
fn malformed_playbooks_are_refused_with_file_line_and_column() {
    let Some(sb) = crate::sandbox!() else { return };
    let cases: &[(&str, &str, &str)] = &[
        ("files: [\n", "1:", "unclosed"),
        (
            "files:\n  - path: /etc/passwd\n    mode: \"0644\"\n    colour: red\n",
            "4:5",
            "unknown field `colour`",
        ),
        ("firewall: {}\n", "1:1", "unknown field `firewall`"),
        (
            "files:\n  - path: /etc/passwd\n    mode: \"0999\"\n",
            "3:11",
            "digit 9",
        ),
        (
            "files:\n  - path: /etc/passwd\n    mode: \"u=rwz\"\n",
            "3:11",
            "unknown permission 'z'",
        ),
        (
            "files:\n  - path: /etc/passwd\n    mode: \"012345\"\n",
            "3:11",
            "at most 4",
        ),
        (
            "files:\n  - path: etc/passwd\n    mode: \"0644\"\n",
            "2:11",
            "relative",
        ),
        (
            "files:\n  - path: /etc/../passwd\n    mode: \"0644\"\n",
            "2:11",
            "not normalised",
        ),
        (
            "files:\n  - path: /etc/passwd/\n    mode: \"0644\"\n",
            "2:11",
            "ends with",
        ),
        (
            "files:\n  - path: /etc/passwd\n    owner: nosuchuser\n",
            "3:12",
            "unknown user",
        ),
        (
            "files:\n  - path: /etc/passwd\n    group: nosuchgroup\n",
            "3:12",
            "unknown group",
        ),
        (
            "files:\n  - path: /etc/passwd\n    owner: 99999999999\n",
            "3:12",
            "out of range",
        ),
        (
            "files:\n  - path: /etc/passwd\n    recurse: maybe\n",
            "3:14",
            "bool",
        ),
        (
            "files:\n  - path: /etc/passwd\n    missing: sometimes\n",
            "3:14",
            "unknown variant",
        ),
        (
            "files:\n  - path: /etc/passwd\n",
            "2:11",
            "nothing to manage",
        ),
        ("files:\n  path: /etc/passwd\n", "2:", "sequence"),
        (
            "files:\n  - path: /nope/none\n    mode: \"0600\"\n",
            "2:11",
            "does not exist",
        ),
        (
            "files:\n  - path: /etc/x\n    content: 12\n    recurse: true\n",
            "2:11",
            "cannot be combined",
        ),
        (
            "files:\n  - path: /etc/passwd\n    mode: 0644\n    mode: \"0600\"\n",
            "4:",
            "duplicate",
        ),
        ("- just a list\n", "1:1", "mapping"),
    ];
    assert_eq!(cases.len(), 20);
    for (i, (yaml, place, needle)) in cases.iter().enumerate() {
        let path = format!("/tmp/bad{i}.yaml");
        sb.write(&path, yaml);
        let run = sb.harden(&["apply", &path]);
        assert_eq!(
            run.status, 1,
            "case {i} should fail:\n{yaml}\n{}{}",
            run.stdout, run.stderr
        );
        let expected = format!("{path}:{place}");
        assert!(
            run.stderr.contains(&expected),
            "case {i}: no {expected} in:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(needle),
            "case {i}: no {needle:?} in:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        sb.upper_entries(),
        Vec::<String>::new(),
        "a malformed playbook changed something"
    );
}

#[test]
fn json_plan_matches_the_documented_schema() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /opt/s && echo a > /opt/s/f && chmod 644 /opt/s/f")
        .assert_ok();
    sb.write("/tmp/pb.yaml", "files:\n  - { path: /opt/s/f, mode: \"0600\" }\n  - { path: /opt/s/new, content: \"hi\\n\" }\n");
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    crate::support::assert_plan_schema(&plan);
    assert_eq!(plan["changes"].as_array().map(Vec::len), Some(2));
}

#[test]
fn root_resolves_paths_and_users_inside_the_image() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh(
        "set -e; mkdir -p /tmp/img/etc /tmp/img/srv; \
         printf 'root:x:0:0::/root:/bin/sh\\nimguser:x:4242:4242::/home/imguser:/bin/sh\\n' > /tmp/img/etc/passwd; \
         printf 'root:x:0:\\nimggroup:x:4343:\\n' > /tmp/img/etc/group; echo data > /tmp/img/srv/file; chmod 644 /tmp/img/srv/file; \
         ln -s /srv /tmp/img/link",
    )
    .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /link/file, mode: \"0600\", owner: imguser, group: imggroup }\n",
    );
    // The host's database does not know imguser; the image's does.
    assert_ne!(sb.harden(&["plan", "/tmp/pb.yaml"]).status, 0);
    sb.harden(&["--root", "/tmp/img", "apply", "/tmp/pb.yaml"])
        .assert_ok();
    sb.sh("test \"$(stat -c '%a %u %g' /tmp/img/srv/file)\" = '600 4242 4343'")
        .assert_ok();
    sb.sh("test -d /tmp/img/var/lib/harden/snapshots && test ! -e /var/lib/harden")
        .assert_ok();
    let again = sb.harden(&[
        "--root",
        "/tmp/img",
        "plan",
        "--detailed-exitcode",
        "/tmp/pb.yaml",
    ]);
    assert_eq!(again.status, 0, "{}", again.stdout);
}

#[test]
fn a_second_run_waits_for_the_lock_and_gives_up_with_a_clear_message() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /etc/issue, mode: \"0600\" }\n",
    );
    sb.sh("mkdir -p /var/lib/harden && chmod 700 /var/lib/harden")
        .assert_ok();
    let run = sb.sh("flock /var/lib/harden/lock sleep 3 & sleep 0.5; /run/harden-test/bin/harden --lock-timeout 1 apply /tmp/pb.yaml; echo rc=$?");
    assert!(run.stdout.contains("rc=1"), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("another harden run holds the lock"),
        "{}",
        run.stderr
    );
    sb.sh("test \"$(stat -c '%a' /etc/issue)\" = 644")
        .assert_ok();
}

#[test]
fn a_signal_mid_apply_stops_between_steps_and_rolls_back_at_once() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /srv/sig && cd /srv/sig && seq 1 30000 | xargs touch && chmod 644 *")
        .assert_ok();
    let pristine = content_and_attrs(&sb, "/srv/sig");
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/sig, mode: \"0700\", recurse: true }\n",
    );
    // Signal as soon as the journal exists: the snapshot is taken and steps are running.
    let run = sb.sh(
        "/run/harden-test/bin/harden apply /tmp/pb.yaml >/tmp/out 2>&1 & pid=$!; \
         while [ ! -e /var/lib/harden/journal.json ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done; \
         kill -TERM $pid; wait $pid; echo rc=$?; cat /tmp/out",
    );
    assert!(run.stdout.contains("rc=1"), "{run:?}");
    assert!(run.stdout.contains("interrupted by a signal"), "{run:?}");
    assert!(
        run.stdout.contains("rolled back: restored snapshot"),
        "{run:?}"
    );
    sb.sh("test ! -e /var/lib/harden/journal.json").assert_ok();
    assert_eq!(content_and_attrs(&sb, "/srv/sig"), pristine);
}

/// A log a fail2ban jail reads must exist before the application first writes it: `ensure:
/// file` creates it empty with its mode and owner, `parents` creates the directories above
/// it, an existing log is never truncated, and a rollback removes what was created.
#[test]
fn ensure_file_creates_a_missing_log_with_its_parents_and_never_truncates_one() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("groupadd --system applog && mkdir -p /var/log/app && echo 'kept line' > /var/log/app/old.log && chmod 600 /var/log/app/old.log")
        .assert_ok();
    let before = content_and_attrs(&sb, "/var/log/app");
    sb.write(
        "/tmp/pb.yaml",
        "files:
  - { path: /opt/svc/logs/api.log, ensure: file, parents: true, mode: \"0640\", group: applog }
  - { path: /var/log/app/old.log, ensure: file, mode: \"0640\" }
  - { path: /srv/data/cache, ensure: directory, parents: true, mode: \"0750\" }
",
    );
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    plan.assert_stdout_contains("create empty file /opt/svc/logs/api.log (mode 0640");
    plan.assert_stdout_contains("parent directory is missing");
    sb.sh("test ! -e /opt/svc").assert_ok();

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    let created = sb
        .sh("stat -c '%a %U %G %F %n' /opt/svc /opt/svc/logs /opt/svc/logs/api.log /srv/data /srv/data/cache /var/log/app/old.log; cat /var/log/app/old.log")
        .assert_ok()
        .stdout
        .clone();
    assert_eq!(
        created,
        "755 root root directory /opt/svc
755 root root directory /opt/svc/logs
640 root applog regular empty file /opt/svc/logs/api.log
755 root root directory /srv/data
750 root root directory /srv/data/cache
640 root root regular file /var/log/app/old.log
kept line
"
    );
    sb.harden(&["plan", "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes.");

    // The application writes its log; the next run leaves the content alone.
    sb.sh("echo 'GET /health' >> /opt/svc/logs/api.log")
        .assert_ok();
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    sb.sh("grep -qx 'GET /health' /opt/svc/logs/api.log")
        .assert_ok();

    // Rolling back the first apply removes what it created and restores the old log.
    let snapshots = sb.harden(&["snapshots", "--format", "json"]).assert_ok();
    let list: serde_json::Value =
        serde_json::from_str(&snapshots.stdout).expect("snapshots as JSON");
    let first = list["snapshots"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(|s| s["id"].as_str())
        .expect("the first apply's snapshot")
        .to_owned();
    sb.harden(&["rollback", &first]).assert_ok();
    sb.sh("test ! -e /opt/svc && test ! -e /srv/data")
        .assert_ok();
    assert_eq!(content_and_attrs(&sb, "/var/log/app"), before);
}

#[test]
fn ensure_file_over_a_directory_and_contradictory_keys_are_located_errors() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("mkdir -p /srv/app.log").assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/app.log, ensure: file }\n",
    );
    sb.harden(&["plan", "/tmp/pb.yaml"])
        .assert_status(1)
        .assert_stderr_contains("pb.yaml:2:")
        .assert_stderr_contains("/srv/app.log exists and is a directory, not a regular file");
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/x.log, ensure: file, content: \"x\" }\n  - { path: /srv/y, parents: true, mode: \"0600\" }\n",
    );
    sb.harden(&["plan", "/tmp/pb.yaml"])
        .assert_status(1)
        .assert_stderr_contains("pb.yaml:2:")
        .assert_stderr_contains("`content` already creates the file")
        .assert_stderr_contains("pb.yaml:3:")
        .assert_stderr_contains("`parents: true` creates the parents of a path the entry creates");
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/z, ensure: fifo }\n",
    );
    sb.harden(&["plan", "/tmp/pb.yaml"])
        .assert_status(1)
        .assert_stderr_contains("pb.yaml:2:")
        .assert_stderr_contains("fifo");
    sb.sh("test ! -e /var/lib/harden").assert_ok();
}

/// A tree with an exception inside it, in either order: the deeper entry decides for its
/// path, the plan converges, and neither undoes the other on the next run.
#[test]
fn an_entry_inside_a_recursive_tree_decides_for_its_path_and_the_plan_converges() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("set -e; mkdir -p /srv/site/private; echo k > /srv/site/private/key; echo i > /srv/site/index.html; chmod -R 777 /srv/site")
        .assert_ok();
    for playbook in [
        "files:\n  - { path: /srv/site, mode: \"u=rwX,g=rX,o=rX\", recurse: true }\n  - { path: /srv/site/private, mode: \"0700\", recurse: true }\n  - { path: /srv/site/private/key, mode: \"0400\" }\n",
        "files:\n  - { path: /srv/site/private/key, mode: \"0400\" }\n  - { path: /srv/site/private, mode: \"0700\", recurse: true }\n  - { path: /srv/site, mode: \"u=rwX,g=rX,o=rX\", recurse: true }\n",
    ] {
        sb.sh("chmod -R 777 /srv/site").assert_ok();
        sb.write("/tmp/pb.yaml", playbook);
        sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .assert_status(0);
        let modes = sb
            .sh("stat -c '%a %n' /srv/site /srv/site/index.html /srv/site/private /srv/site/private/key")
            .assert_ok();
        assert_eq!(
            modes.stdout,
            "755 /srv/site\n755 /srv/site/index.html\n700 /srv/site/private\n400 /srv/site/private/key\n",
            "{playbook}"
        );
    }
}
