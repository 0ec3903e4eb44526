//! End-to-end tests of the `groups` and `users` resources with the real shadow tools: accounts
//! and a file they own in one apply, idempotence, `exclusive`, `locked`, byte-exact rollback,
//! the lockout guards against a keyed admin, located errors, and `--root` on an image.

use crate::support::fixtures::admin_key_login;
use crate::support::{keyed_admin, start_sshd, Sandbox, HARDEN_IN_SANDBOX};

/// The account databases and their backups: checksums, modes and owners.
const DATABASES: &str = "/etc/passwd /etc/passwd- /etc/group /etc/group- /etc/shadow /etc/shadow- /etc/gshadow /etc/gshadow- /etc/subuid /etc/subgid";

fn databases(sb: &Sandbox, root: &str) -> String {
    let paths: Vec<String> = DATABASES.split(' ').map(|p| format!("{root}{p}")).collect();
    let paths = paths.join(" ");
    sb.sh(&format!(
        "for f in {paths}; do if [ -e $f ]; then stat -c '%n %a %U %G %s' $f; sha256sum $f; else echo \"$f absent\"; fi; done"
    ))
    .assert_ok()
    .stdout
}

/// The desired value of detail `name` in the change to `target` of a JSON plan.
fn planned(plan: &serde_json::Value, target: &str, name: &str) -> String {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["target"] == target)
        .flat_map(|c| c["details"].as_array().cloned().unwrap_or_default())
        .find(|d| d["name"] == name)
        .and_then(|d| d["desired"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no {name} planned for {target}: {plan}"))
}

const MIST: &str = "groups:
  docker: { system: true }
users:
  mist: { system: true, home: /var/lib/mist, groups: [docker] }
  admin: { groups: [docker] }
  deploy: { shell: /bin/bash, groups: [docker] }
files:
  - { path: /var/lib/mist, directory: true, mode: \"0750\", owner: mist, group: mist }
";

#[test]
fn groups_users_and_a_file_they_own_in_one_apply_converge_and_roll_back_exactly() {
    let Some(sb) = crate::sandbox!() else { return };
    keyed_admin(&sb);
    let before = databases(&sb, "");
    sb.write("/tmp/pb.yaml", MIST);
    let plan = sb
        .harden(&["plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    crate::support::assert_plan_schema(&plan);
    let uid = planned(&plan, "mist", "uid");
    let text = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok().stdout;
    assert!(
        text.contains(&format!("useradd -u {uid} -g "))
            && text.contains("usermod -a -G docker admin"),
        "{text}"
    );

    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    // Independent probes: the C library's view of the new database.
    let docker = sb.sh("getent group docker").assert_ok().stdout;
    for member in ["mist", "admin", "deploy"] {
        assert!(
            docker.trim_end().split([':', ',']).any(|m| m == member),
            "{docker}"
        );
    }
    assert_eq!(sb.sh("id -u mist").assert_ok().stdout.trim(), uid);
    sb.sh("test \"$(getent passwd mist | cut -d: -f6,7)\" = /var/lib/mist:/usr/sbin/nologin")
        .assert_ok();
    sb.sh("test \"$(stat -c '%a %U %G' /var/lib/mist)\" = '750 mist mist'")
        .assert_ok();
    sb.sh("test \"$(stat -c '%U' /home/deploy /home/deploy/.bashrc | sort -u)\" = deploy")
        .assert_ok();
    let again = sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"]);
    assert_eq!(again.status, 0, "{again:?}");

    sb.harden(&["rollback"]).assert_ok();
    assert_eq!(
        databases(&sb, ""),
        before,
        "rollback did not restore the databases"
    );
    sb.sh("! getent group docker && ! getent passwd mist && test ! -e /home/deploy && test ! -e /var/lib/mist")
        .assert_ok();
}

/// Plans two groups and two users on the system at `root`, then lets the tools choose on
/// the same database: the ids must be the same.
fn ids_match_the_tools(sb: &Sandbox, root: &str) {
    sb.write(
        "/tmp/pb.yaml",
        "groups:\n  g-sys: { system: true }\n  g-reg: {}\nusers:\n  u-sys: { system: true, group: g-sys }\n  u-reg: { group: g-reg }\n",
    );
    let plan = sb
        .harden(&["--root", root, "plan", "--format", "json", "/tmp/pb.yaml"])
        .assert_ok()
        .json();
    let ids: Vec<String> = [
        ("g-sys", "gid"),
        ("g-reg", "gid"),
        ("u-sys", "uid"),
        ("u-reg", "uid"),
    ]
    .iter()
    .map(|(target, name)| planned(&plan, target, name))
    .collect();
    let chosen = sb
        .sh(&format!("chroot {root} sh -c 'set -e; groupadd g-reg; groupadd -r g-sys; useradd -N -g g-reg u-reg; useradd -r -N -g g-sys u-sys; \
             echo $(getent group g-sys | cut -d: -f3) $(getent group g-reg | cut -d: -f3) $(id -u u-sys) $(id -u u-reg)'"))
        .assert_ok()
        .stdout;
    assert_eq!(chosen.trim(), ids.join(" "), "{root}");
}

#[test]
fn a_failed_step_rolls_back_the_databases_and_the_new_home() {
    // A first copy of the machine numbers the apply's commands: the last is the last useradd.
    let Some(counted) = crate::sandbox!() else {
        return;
    };
    keyed_admin(&counted);
    counted.write("/tmp/pb.yaml", MIST);
    counted
        .sh(&format!(
            "HARDEN_FAULT_LOG=/tmp/fault.log {HARDEN_IN_SANDBOX} apply /tmp/pb.yaml"
        ))
        .assert_ok();
    let log = counted.read("/tmp/fault.log");
    let (number, _) = log
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .rfind(|(_, command)| command.starts_with("useradd "))
        .unwrap_or_else(|| panic!("no useradd in {log}"));

    // A second, identical copy: that useradd runs, then is reported failed.
    let Some(sb) = crate::sandbox!() else { return };
    keyed_admin(&sb);
    let before = databases(&sb, "");
    sb.write("/tmp/pb.yaml", MIST);
    let run = sb.sh(&format!(
        "HARDEN_FAULT_COMMAND={number}:after HARDEN_FAULT_LOG=/tmp/fault.log {HARDEN_IN_SANDBOX} apply /tmp/pb.yaml"
    ));
    assert_eq!(run.status, 1, "{run:?}");
    let log = sb.read("/tmp/fault.log");
    assert!(
        log.lines()
            .any(|l| l.contains("useradd") && l.ends_with("[fault:after]")),
        "{log}"
    );
    assert_eq!(
        databases(&sb, ""),
        before,
        "the rollback left account changes"
    );
    sb.sh("! getent passwd mist && ! getent group docker && test ! -e /home/deploy")
        .assert_ok();
}

#[test]
fn the_ids_planned_are_the_ones_useradd_and_groupadd_choose() {
    let Some(sb) = crate::sandbox!() else { return };
    ids_match_the_tools(&sb, "/");
    if sb.exists(&format!("{TRIXIE}/etc/harden-test-image")) {
        ids_match_the_tools(&sb, TRIXIE);
    }
}

#[test]
fn exclusive_removes_other_groups_and_locked_locks_the_password_only() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("set -e; useradd -m -s /bin/bash -G adm,sudo ops; echo 'ops:Tr1cky-pass' | chpasswd")
        .assert_ok();
    let hash = sb
        .sh("getent shadow ops | cut -d: -f2")
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    sb.write(
        "/tmp/pb.yaml",
        "users:\n  ops: { groups: [sudo], exclusive: true, locked: true }\n",
    );
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(plan.stdout.contains("gpasswd -d ops adm"), "{plan:?}");
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    let json = sb.harden(&["plan", "--format", "json", "/tmp/pb.yaml"]);
    for out in [plan.output(), apply.output(), json.output()] {
        assert!(
            !out.contains(&hash[3..]),
            "the password hash was shown: {out}"
        );
    }
    sb.sh("! getent group adm | grep -qw ops && getent group sudo | grep -qw ops")
        .assert_ok();
    assert_eq!(
        sb.sh("getent shadow ops | cut -d: -f2")
            .assert_ok()
            .stdout
            .trim(),
        format!("!{hash}")
    );
    let again = sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"]);
    assert_eq!(again.status, 0, "{again:?}");

    sb.write("/tmp/open.yaml", "users:\n  ops: { locked: false }\n");
    sb.harden(&["apply", "/tmp/open.yaml"]).assert_ok();
    assert_eq!(
        sb.sh("getent shadow ops | cut -d: -f2")
            .assert_ok()
            .stdout
            .trim(),
        hash
    );
}

#[test]
fn the_guards_refuse_what_would_lock_the_keyed_admin_out() {
    let Some(sb) = crate::sandbox!() else { return };
    keyed_admin(&sb);
    sb.sh("echo 'admin:An0ther-pass' | chpasswd && usermod -aG sudo admin")
        .assert_ok();
    let before = databases(&sb, "");
    let cases = [
        ("users:\n  admin: { locked: true }\n", "users-lock-keyed"),
        (
            "users:\n  admin: { shell: /usr/sbin/nologin }\n",
            "users-shell-keyed",
        ),
        ("users:\n  root: { shell: /bin/sh }\n", "users-root-shell"),
    ];
    for (yaml, guard) in cases {
        sb.write("/tmp/pb.yaml", yaml);
        let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
        assert_eq!(run.status, 1, "{yaml}: {run:?}");
        assert!(
            run.stderr.contains(&format!("--allow {guard}")),
            "{yaml}: {run:?}"
        );
        assert_eq!(databases(&sb, ""), before, "{yaml} changed something");
    }
    // AllowGroups sudo: leaving sudo is refused.
    sb.sh("sed -i '1i AllowGroups sudo' /etc/ssh/sshd_config")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "users:\n  admin: { groups: [], exclusive: true }\n",
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert!(run.stderr.contains("--allow users-groups-keyed"), "{run:?}");
    assert!(run.stderr.contains("AllowGroups sudo"), "{run:?}");
    sb.sh("sed -i '1d' /etc/ssh/sshd_config").assert_ok();
    // The same when the plan itself brings in AllowGroups: the lists after the plan count.
    sb.write(
        "/tmp/pb.yaml",
        "sshd:\n  config:\n    AllowGroups: sudo\nusers:\n  admin: { groups: [], exclusive: true }\n",
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert!(run.stderr.contains("--allow users-groups-keyed"), "{run:?}");
    assert_eq!(databases(&sb, ""), before);

    // With --allow, the lock goes through, and the key still logs in (UsePAM yes).
    sb.write("/tmp/pb.yaml", "users:\n  admin: { locked: true }\n");
    let run = sb
        .harden(&["apply", "--allow", "users-lock-keyed", "/tmp/pb.yaml"])
        .assert_ok();
    assert!(
        run.output()
            .contains("overridden by --allow users-lock-keyed"),
        "{run:?}"
    );
    sb.sh("getent shadow admin | cut -d: -f2 | grep -q '^!'")
        .assert_ok();
    start_sshd(&sb);
    admin_key_login(&sb).assert_ok();
}

#[test]
fn bad_input_is_a_located_error_and_changes_nothing() {
    let Some(sb) = crate::sandbox!() else { return };
    sb.sh("useradd -u 4242 taken").assert_ok();
    let upper = sb.upper_entries();
    let cases: &[(&str, &str, &str)] = &[
        (
            "users:\n  app: { colour: red }\n",
            "2:",
            "unknown field `colour`",
        ),
        ("users:\n  \"bad name\": {}\n", "2:3", "invalid name"),
        ("groups:\n  \"-x\": {}\n", "2:3", "invalid name"),
        ("users:\n  app: { uid: -5 }\n", "2:", "negative"),
        ("groups:\n  g: { gid: 4294967296 }\n", "2:", "out of range"),
        (
            "users:\n  app: { uid: 4242 }\n",
            "2:15",
            "uid 4242 is already taken's",
        ),
        (
            "users:\n  app: { groups: [ghosts] }\n",
            "2:19",
            "unknown group ghosts",
        ),
        (
            "users:\n  app: { group: nogroup-here }\n",
            "2:17",
            "unknown group nogroup-here",
        ),
        (
            "users:\n  app: { shell: /bin/nosuch }\n",
            "2:17",
            "does not exist",
        ),
        ("users:\n  root: { uid: 7 }\n", "2:16", "exists with uid 0"),
        ("groups:\n  root: { gid: 9 }\n", "2:16", "exists with gid 0"),
        (
            "files:\n  - { path: /srv, owner: ghost-user }\n",
            "2:26",
            "unknown user \"ghost-user\"",
        ),
    ];
    for (i, (yaml, place, needle)) in cases.iter().enumerate() {
        let path = format!("/tmp/bad{i}.yaml");
        sb.write(&path, yaml);
        let run = sb.harden(&["apply", &path]);
        assert_eq!(run.status, 1, "case {i}:\n{yaml}\n{run:?}");
        let expected = format!("{path}:{place}");
        assert!(
            run.stderr.contains(&expected),
            "case {i}: no {expected} in {run:?}"
        );
        assert!(
            run.stderr.contains(needle),
            "case {i}: no {needle:?} in {run:?}"
        );
    }
    let mut now = sb.upper_entries();
    now.retain(|e| !e.starts_with("tmp/bad"));
    let mut was = upper;
    was.retain(|e| !e.starts_with("tmp/bad"));
    assert_eq!(now, was, "a refused playbook changed something");
}

/// Where `tests/setup-debian.sh` leaves the Debian 13 image (shadow 4.17).
const TRIXIE: &str = "/var/cache/harden-tests/trixie";

/// Applies the Mist playbook to the image at `root` and checks it there: converged, this
/// machine untouched, and a rollback that restores the image's databases.
fn round_trip_on_image(sb: &Sandbox, root: &str) {
    let host_before = databases(sb, "");
    let image_before = databases(sb, root);
    sb.write(
        "/tmp/pb.yaml",
        MIST.replace("  admin: { groups: [docker] }\n", "").as_str(),
    );
    sb.harden(&["--root", root, "apply", "/tmp/pb.yaml"])
        .assert_ok();
    sb.sh(&format!("grep -q '^mist:' {root}/etc/passwd && grep -q '^docker:.*mist' {root}/etc/group && test -f {root}/home/deploy/.bashrc"))
        .assert_ok();
    sb.sh(&format!("test \"$(stat -c '%u' {root}/var/lib/mist)\" = \"$(grep '^mist:' {root}/etc/passwd | cut -d: -f3)\""))
        .assert_ok();
    assert_eq!(
        databases(sb, ""),
        host_before,
        "this machine's accounts changed"
    );
    let again = sb.harden(&[
        "--root",
        root,
        "plan",
        "--detailed-exitcode",
        "/tmp/pb.yaml",
    ]);
    assert_eq!(again.status, 0, "{again:?}");
    sb.harden(&["--root", root, "rollback"]).assert_ok();
    assert_eq!(databases(sb, root), image_before, "{root}");
    sb.sh(&format!("test ! -e {root}/home/deploy")).assert_ok();
}

#[test]
fn under_root_the_image_gets_the_accounts_and_this_machine_does_not() {
    let Some(sb) = crate::sandbox!() else { return };
    // A Debian 12 image: a copy-on-write copy of this system at /mnt/img.
    sb.sh("set -e; mkdir -p /tmp/ovl /mnt/img; mount -t tmpfs tmpfs /tmp/ovl; mkdir /tmp/ovl/u /tmp/ovl/w; \
           mount -t overlay overlay -o lowerdir=/,upperdir=/tmp/ovl/u,workdir=/tmp/ovl/w /mnt/img")
        .assert_ok();
    round_trip_on_image(&sb, "/mnt/img");
    // An image without the shadow tools is refused at plan time, before any change.
    sb.sh("set -e; mkdir -p /tmp/bare/etc; printf 'root:x:0:0::/root:/bin/sh\\n' > /tmp/bare/etc/passwd; printf 'root:x:0:\\n' > /tmp/bare/etc/group")
        .assert_ok();
    sb.write("/tmp/bare.yaml", "users:\n  app: { create_home: false }\n");
    let run = sb.harden(&["--root", "/tmp/bare", "apply", "/tmp/bare.yaml"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("shadow tools"), "{run:?}");
    sb.sh("test \"$(ls -A /tmp/bare)\" = etc && test \"$(ls -A /tmp/bare/etc)\" = \"$(printf 'group\\npasswd')\"").assert_ok();
    // The Debian 13 image, when this machine has it (the sandbox's copy of it is written).
    if sb.exists(&format!("{TRIXIE}/etc/harden-test-image")) {
        round_trip_on_image(&sb, TRIXIE);
    } else {
        eprintln!(
            "no Debian 13 image at {TRIXIE}: run tests/setup-debian.sh to test shadow 4.17 too"
        );
    }
}
