//! End-to-end tests of `env_files`: weak secrets replaced by generated ones that meet their
//! rules, no secret (old or new) in any output or state file, rollback byte for byte,
//! `on_weak: error`, unreadable files, and `--root` on an image.

use crate::support::{Run, Sandbox};

/// A server-monitor style backend/.env as an operator leaves it after copying the example:
/// known defaults, a short key, one missing, debug on, and lines harden must not touch.
const WEAK_ENV: &str = "# server-monitor backend settings\n\
\n\
export DATABASE_URL=sqlite:////opt/app/data/servers.db\n\
DEBUG=true   # development only\n\
JWT_SECRET='changeme'\n\
ENCRYPTION_KEY=\"sm-key-2024\"\n\
CORS_ORIGINS=https://monitor.example.org\n\
JWT_EXPIRATION_HOURS=24\n";

/// The secrets of [`WEAK_ENV`], which must never be shown.
const OLD_SECRETS: [&str; 2] = ["changeme", "sm-key-2024"];

const PLAYBOOK: &str = "env_files:
  - path: /opt/app/backend/.env
    owner: app
    group: app
    keys:
      DEBUG: { equals: \"false\" }
      JWT_SECRET: { min_length: 32, generate: { urlsafe: 32 } }
      ENCRYPTION_KEY: { min_length: 24, generate: { urlsafe: 32 } }
      KEY_VAULT_MASTER_KEY: { required: true, min_length: 32, generate: { hex: 32 } }
";

/// The keys and values of a dotenv file, read by python's `shlex` (a reader independent of
/// harden's): `KEY value` lines, sorted.
fn read_with_shlex(sb: &Sandbox, path: &str) -> String {
    let script = r"
import shlex, sys
for tok in shlex.split(open(sys.argv[1]).read(), comments=True):
    if tok != 'export':
        k, _, v = tok.partition('=')
        print(k, v)
";
    sb.exec(&["/usr/bin/python3", "-c", script, path])
        .assert_ok()
        .stdout
}

fn value_of(pairs: &str, key: &str) -> String {
    pairs
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("{key} missing from {pairs}"))
        .to_owned()
}

fn setup(sb: &Sandbox) {
    sb.sh("useradd --system --no-create-home app").assert_ok();
    sb.write("/opt/app/backend/.env", WEAK_ENV);
    sb.sh("chmod 644 /opt/app/backend/.env").assert_ok();
    sb.write("/tmp/pb.yaml", PLAYBOOK);
}

/// Every file harden keeps in its state directory, except the snapshot copies of the env
/// file (which must hold it), as one text to search.
fn state_files(sb: &Sandbox) -> String {
    sb.sh("find /var/lib/harden -type f ! -name 'blob-*' -print -exec cat {} \\;")
        .assert_ok()
        .stdout
}

#[track_caller]
fn assert_hidden(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} shows a secret: {text}"
        );
    }
}

#[test]
fn weak_secrets_are_generated_never_shown_and_rolled_back_byte_for_byte() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.sh("cp -p /opt/app/backend/.env /tmp/original.env")
        .assert_ok();
    let mut outputs: Vec<(&str, Run)> = Vec::new();

    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    for line in [
        "~ env_files /opt/app/backend/.env (4 keys break their rules; mode or owner differs)",
        "DEBUG: \"true\" -> \"false\"",
        "JWT_SECRET: 8 characters, a known default, shorter than 32 -> generated (43 URL-safe base64 characters)",
        "ENCRYPTION_KEY: 11 characters, shorter than 24 -> generated (43 URL-safe base64 characters)",
        "KEY_VAULT_MASTER_KEY: missing -> generated (64 hex characters)",
        "mode: 0644 -> 0600",
        "JWT_SECRET, ENCRYPTION_KEY are replaced: sessions and tokens",
    ] {
        assert!(plan.stdout.contains(line), "{line:?} not in {plan}");
    }
    outputs.push(("plan", plan));
    let json = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok();
    crate::support::assert_plan_schema(&json.json());
    assert_eq!(json.json()["changes"][0]["steps"][0]["op"], "edit_env");
    outputs.push(("plan --format json", json));
    outputs.push((
        "apply --dry-run",
        sb.harden(&["apply", "--dry-run", "/tmp/pb.yaml"])
            .assert_ok(),
    ));

    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(apply.stderr.contains("Applied 1 changes"), "{apply}");
    outputs.push(("apply", apply));
    let first = read_with_shlex(&sb, "/opt/app/backend/.env");
    let again = sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"]);
    assert_eq!(again.status, 0, "the re-plan is not empty: {again}");
    outputs.push(("second plan", again));
    outputs.push(("snapshots", sb.harden(&["snapshots"]).assert_ok()));
    outputs.push((
        "snapshots --format json",
        sb.harden(&["snapshots", "--format", "json"]).assert_ok(),
    ));

    // The keys meet their rules, read by a parser that is not harden's.
    assert_eq!(value_of(&first, "DEBUG"), "false");
    let jwt = value_of(&first, "JWT_SECRET");
    let encryption = value_of(&first, "ENCRYPTION_KEY");
    let vault = value_of(&first, "KEY_VAULT_MASTER_KEY");
    let urlsafe = |v: &str| {
        v.len() == 43
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    assert!(
        urlsafe(&jwt) && urlsafe(&encryption) && jwt != encryption,
        "{first}"
    );
    assert!(
        vault.len() == 64 && vault.chars().all(|c| c.is_ascii_hexdigit()),
        "{first}"
    );
    assert_eq!(
        value_of(&first, "CORS_ORIGINS"),
        "https://monitor.example.org"
    );
    // Every other line is as it was, byte for byte; the file is the app's, 0600.
    let edited = sb.read("/opt/app/backend/.env");
    let want = WEAK_ENV
        .replace("DEBUG=true   #", "DEBUG=false   #")
        .replace("'changeme'", &format!("'{jwt}'"))
        .replace("\"sm-key-2024\"", &format!("\"{encryption}\""))
        + &format!("KEY_VAULT_MASTER_KEY={vault}\n");
    assert_eq!(edited, want);
    sb.sh("test \"$(stat -c '%a %U %G' /opt/app/backend/.env)\" = '600 app app'")
        .assert_ok();

    // The snapshot holds the old file, root-only, in a root-only directory.
    sb.sh("d=$(ls -d /var/lib/harden/snapshots/*/ | head -1); test \"$(stat -c %a $d)\" = 700 && \
           for b in $d/blob-*; do test \"$(stat -c '%a %U' $b)\" = '600 root'; done && cmp $d/blob-* /tmp/original.env")
        .assert_ok();
    let rollback = sb.harden(&["rollback"]).assert_ok();
    outputs.push(("rollback", rollback));
    sb.sh("cmp /opt/app/backend/.env /tmp/original.env && test \"$(stat -c '%a %U' /opt/app/backend/.env)\" = '644 root'")
        .assert_ok();

    // Once more in JSON: other values are drawn, and none is shown either.
    let apply = sb
        .harden(&["apply", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok();
    assert_eq!(apply.json()["status"], "changed");
    outputs.push(("apply --format json", apply));
    let second = read_with_shlex(&sb, "/opt/app/backend/.env");
    assert_ne!(value_of(&second, "JWT_SECRET"), jwt);
    outputs.push((
        "rollback --format json",
        sb.harden(&["rollback", "--format", "json"]).assert_ok(),
    ));
    let state = state_files(&sb);
    assert!(
        state.contains("manifest.json"),
        "no state files found: {state}"
    );

    let mut secrets: Vec<String> = OLD_SECRETS.iter().map(|s| s.to_string()).collect();
    for pairs in [&first, &second] {
        for key in ["JWT_SECRET", "ENCRYPTION_KEY", "KEY_VAULT_MASTER_KEY"] {
            secrets.push(value_of(pairs, key));
        }
    }
    for (what, run) in &outputs {
        assert_hidden(what, &run.output(), &secrets);
    }
    assert_hidden("/var/lib/harden", &state, &secrets);
}

#[test]
fn on_weak_error_fails_located_and_changes_nothing() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.write(
        "/tmp/pb.yaml",
        &PLAYBOOK.replace("    group: app\n", "    group: app\n    on_weak: error\n"),
    );
    let before = sb
        .sh("stat -c '%a %U %Y' /opt/app/backend/.env && sha256sum /opt/app/backend/.env")
        .assert_ok()
        .stdout;
    for args in [
        &["plan", "/tmp/pb.yaml"][..],
        &["apply", "/tmp/pb.yaml"],
        &["apply", "--format", "json", "/tmp/pb.yaml"],
    ] {
        let run = sb.harden(args).assert_status(1);
        let out = run.output();
        let located = out.contains("/tmp/pb.yaml:8:7")
            || out.contains(r#""file":"/tmp/pb.yaml","line":8,"column":7"#);
        assert!(located, "{run}");
        assert!(out.contains("JWT_SECRET in /opt/app/backend/.env is 8 characters, a known default, shorter than 32, and `on_weak: error` forbids replacing it"), "{run}");
        assert!(
            out.contains(
                "ENCRYPTION_KEY in /opt/app/backend/.env is 11 characters, shorter than 24"
            ),
            "{run}"
        );
        for secret in OLD_SECRETS {
            assert!(!out.contains(secret), "{secret} shown: {run}");
        }
    }
    let after = sb
        .sh("stat -c '%a %U %Y' /opt/app/backend/.env && sha256sum /opt/app/backend/.env")
        .assert_ok()
        .stdout;
    assert_eq!(before, after);
    assert!(
        !sb.exists("/var/lib/harden/snapshots"),
        "a refused plan took a snapshot"
    );
}

#[test]
fn an_unreadable_env_file_is_located_by_line_without_its_text() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.write(
        "/opt/app/backend/.env",
        "DEBUG=true\nJWT_SECRET='hunter2-unterminated\nOTHER=1\n",
    );
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_status(1);
    assert!(
        run.stderr
            .contains("/opt/app/backend/.env:2: the value's opening ' is never closed"),
        "{run}"
    );
    assert!(run.stderr.contains("/tmp/pb.yaml:2:"), "{run}");
    assert!(!run.output().contains("hunter2"), "{run}");
}

#[test]
fn a_missing_env_file_is_created_with_its_final_mode_and_a_default_is_caught() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("useradd --system --no-create-home app && mkdir -p /opt/streaming-app")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "env_files:
  - path: /opt/streaming-app/.env
    owner: app
    keys:
      JWT_SECRET: { min_length: 32, generate: { hex: 32 } }
      ADMIN_PASSWORD: { secret: true, required: true, min_length: 16, generate: { urlsafe: 18 } }
",
    );
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        apply
            .stdout
            .contains("JWT_SECRET: missing -> generated (64 hex characters)"),
        "{apply}"
    );
    let pairs = read_with_shlex(&sb, "/opt/streaming-app/.env");
    assert_eq!(value_of(&pairs, "JWT_SECRET").len(), 64);
    assert_eq!(value_of(&pairs, "ADMIN_PASSWORD").len(), 24);
    sb.sh("test \"$(stat -c '%a %U %G' /opt/streaming-app/.env)\" = '600 app root'")
        .assert_ok();
    assert_eq!(
        sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
            .status,
        0
    );

    // The application's own default comes back (a redeploy copied .env.example): replaced.
    sb.sh("sed -i 's/^ADMIN_PASSWORD=.*/ADMIN_PASSWORD=admin/' /opt/streaming-app/.env")
        .assert_ok();
    let plan = sb
        .harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(2);
    assert!(
        plan.stdout.contains(
            "ADMIN_PASSWORD: 5 characters, a known default, shorter than 16 -> generated"
        ),
        "{plan}"
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    let after = read_with_shlex(&sb, "/opt/streaming-app/.env");
    assert_eq!(
        value_of(&after, "JWT_SECRET"),
        value_of(&pairs, "JWT_SECRET"),
        "a good secret is kept"
    );
    assert_ne!(value_of(&after, "ADMIN_PASSWORD"), "admin");
}

#[test]
fn root_edits_the_env_file_inside_the_image() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh(
        "set -e; mkdir -p /tmp/img/etc /tmp/img/opt/app/backend; \
         printf 'root:x:0:0::/root:/bin/sh\\napp:x:4242:4242::/opt/app:/bin/sh\\n' > /tmp/img/etc/passwd; \
         printf 'root:x:0:\\napp:x:4242:\\n' > /tmp/img/etc/group",
    )
    .assert_ok();
    sb.write("/tmp/img/opt/app/backend/.env", WEAK_ENV);
    sb.sh("cp -p /tmp/img/opt/app/backend/.env /tmp/original.env")
        .assert_ok();
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    // The host has no user `app`; the image has.
    assert_eq!(sb.harden(&["plan", "/tmp/pb.yaml"]).status, 1);
    let apply = sb
        .harden(&["--root", "/tmp/img", "apply", "/tmp/pb.yaml"])
        .assert_ok();
    let pairs = read_with_shlex(&sb, "/tmp/img/opt/app/backend/.env");
    assert_eq!(value_of(&pairs, "DEBUG"), "false");
    assert_eq!(value_of(&pairs, "KEY_VAULT_MASTER_KEY").len(), 64);
    sb.sh("test \"$(stat -c '%a %u %g' /tmp/img/opt/app/backend/.env)\" = '600 4242 4242' && test ! -e /opt/app && test ! -e /var/lib/harden")
        .assert_ok();
    let again = sb.harden(&[
        "--root",
        "/tmp/img",
        "plan",
        "--detailed-exitcode",
        "/tmp/pb.yaml",
    ]);
    assert_eq!(again.status, 0, "{again}");
    let rollback = sb.harden(&["--root", "/tmp/img", "rollback"]).assert_ok();
    sb.sh("cmp /tmp/img/opt/app/backend/.env /tmp/original.env")
        .assert_ok();
    let secrets: Vec<String> = ["JWT_SECRET", "ENCRYPTION_KEY", "KEY_VAULT_MASTER_KEY"]
        .iter()
        .map(|k| value_of(&pairs, k))
        .chain(OLD_SECRETS.iter().map(|s| s.to_string()))
        .collect();
    assert_hidden("apply", &apply.output(), &secrets);
    assert_hidden("rollback", &rollback.output(), &secrets);
}

/// The `env_files` entries the seed playbooks need (issue 11), with the `files` entries that
/// make their directories on a fresh host. Each is applied on a fresh copy below.
const SEED_SERVER_MONITOR: &str = "files:
  - { path: /opt/server-monitor/backend, directory: true }
  - { path: /opt/server-monitor/backend/.env, mode: \"0600\", owner: server-monitor, group: server-monitor, missing: ignore }
env_files:
  # [sm] backend/.env: DEBUG=false; JWT_SECRET, ENCRYPTION_KEY (min 24 chars, 32+
  # recommended) and KEY_VAULT_MASTER_KEY (32+, truly random), as secrets.token_urlsafe(32).
  # The two keys encrypt stored data (the servers' SSH credentials): a weak one is an error
  # to fix by hand, never silently rotated. Missing ones are generated.
  - path: /opt/server-monitor/backend/.env
    owner: server-monitor
    group: server-monitor
    on_weak: error
    keys:
      DEBUG: { equals: \"false\" }
      JWT_SECRET: { required: true, min_length: 32, generate: { urlsafe: 32 } }
      ENCRYPTION_KEY: { required: true, min_length: 24, generate: { urlsafe: 32 } }
      KEY_VAULT_MASTER_KEY: { required: true, min_length: 32, generate: { urlsafe: 32 } }
";

const SEED_STREAMING_APP: &str = "files:
  - { path: /opt/streaming-app, directory: true }
env_files:
  # [stream] the app refuses to start when JWT_SECRET is a default (replace_me, changeme...)
  # or shorter than 32 characters, or ADMIN_PASSWORD is a default; `openssl rand -hex 32`.
  - path: /opt/streaming-app/.env
    keys:
      JWT_SECRET: { required: true, min_length: 32, generate: { hex: 32 } }
      ADMIN_PASSWORD: { secret: true, required: true, min_length: 16, generate: { urlsafe: 24 } }
";

const SEED_NSELF: &str = "files:
  - { path: /opt/nself, directory: true }
env_files:
  # [nself] \"All default passwords changed\", \"JWT secrets are unique\": the secrets nself
  # keeps in .secrets. A database password is also in the database: an error, not a rotation.
  - path: /opt/nself/.secrets
    on_weak: error
    keys:
      POSTGRES_PASSWORD: { required: true, min_length: 16, generate: { urlsafe: 24 } }
      HASURA_GRAPHQL_ADMIN_SECRET: { required: true, min_length: 32, generate: { hex: 32 } }
      HASURA_JWT_KEY: { required: true, min_length: 32, generate: { hex: 32 } }
";

#[test]
fn the_seed_env_files_apply_on_a_fresh_host_and_converge() {
    let Some(sb) = crate::sandbox!() else { return };
    // What the `users` section and `files`' `parents: true` (other branches) will do.
    sb.sh("useradd --system --no-create-home server-monitor && mkdir /opt/server-monitor")
        .assert_ok();
    for (name, yaml, path, keys) in [
        (
            "server-monitor",
            SEED_SERVER_MONITOR,
            "/opt/server-monitor/backend/.env",
            &["JWT_SECRET", "ENCRYPTION_KEY", "KEY_VAULT_MASTER_KEY"][..],
        ),
        (
            "streaming-app",
            SEED_STREAMING_APP,
            "/opt/streaming-app/.env",
            &["JWT_SECRET", "ADMIN_PASSWORD"],
        ),
        (
            "nself",
            SEED_NSELF,
            "/opt/nself/.secrets",
            &[
                "POSTGRES_PASSWORD",
                "HASURA_GRAPHQL_ADMIN_SECRET",
                "HASURA_JWT_KEY",
            ],
        ),
    ] {
        let playbook = format!("/tmp/{name}.yaml");
        sb.write(&playbook, yaml);
        let apply = sb.harden(&["apply", &playbook]);
        assert_eq!(apply.status, 0, "{name}: {apply}");
        let again = sb.harden(&["plan", "--detailed-exitcode", &playbook]);
        assert_eq!(again.status, 0, "{name} does not converge: {again}");
        let pairs = read_with_shlex(&sb, path);
        let values: Vec<String> = keys.iter().map(|k| value_of(&pairs, k)).collect();
        for (key, value) in keys.iter().zip(&values) {
            assert!(value.len() >= 32, "{name}: {key} is short: {pairs}");
        }
        let mut distinct = values.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), values.len(), "{name}: secrets repeat");
        assert_hidden(name, &apply.output(), &values);
        sb.sh(&format!("test \"$(stat -c %a {path})\" = 600"))
            .assert_ok();
    }
    assert_eq!(
        value_of(
            &read_with_shlex(&sb, "/opt/server-monitor/backend/.env"),
            "DEBUG"
        ),
        "false"
    );
    sb.sh("test \"$(stat -c '%U %G' /opt/server-monitor/backend/.env)\" = 'server-monitor server-monitor'")
        .assert_ok();
}
