//! End-to-end tests of the `sshd` resource, with a real sshd running in the sandbox and real
//! SSH logins over loopback: effective-config planning against a cloud-init drop-in, the port
//! change, every lockout guard, value errors, rollback of a configuration `sshd -t` rejects,
//! idempotence, and in-place editing when there is no drop-in directory.

use crate::support::{sshd_t, start_sshd, wait_listening, Run, Sandbox};

const SSH_OPTS: &str = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR";
const PASSWORD: &str = "Correct-Horse-42";
const CLOUD_INIT: &str = "/etc/ssh/sshd_config.d/50-cloud-init.conf";
const DROP_IN: &str = "/etc/ssh/sshd_config.d/00-harden.conf";

/// alice: a login shell, a password, and an ed25519 key in `/root/alice_key`; sshd running.
fn setup(sb: &Sandbox) {
    sb.sh(&format!(
        "set -e
         useradd -m -s /bin/bash alice
         echo 'alice:{PASSWORD}' | chpasswd
         ssh-keygen -q -t ed25519 -N '' -C alice -f /root/alice_key
         install -d -m 700 -o alice -g alice /home/alice/.ssh
         install -m 600 -o alice -g alice /root/alice_key.pub /home/alice/.ssh/authorized_keys"
    ))
    .assert_ok();
}

fn key_login(sb: &Sandbox, port: u16) -> Run {
    sb.sh(&format!(
        "ssh {SSH_OPTS} -o BatchMode=yes -i /root/alice_key -p {port} alice@127.0.0.1 true"
    ))
}

/// A password attempt through `method` (`password` or `keyboard-interactive`).
fn password_login(sb: &Sandbox, method: &str, port: u16) -> Run {
    sb.sh(&format!(
        "sshpass -p '{PASSWORD}' ssh {SSH_OPTS} -o PubkeyAuthentication=no -o PreferredAuthentications={method} -o NumberOfPasswordPrompts=1 -p {port} alice@127.0.0.1 true"
    ))
}

/// Modes, owners, times and checksums of everything under /etc/ssh, plus sshd's effective
/// configuration: equal before and after means nothing was touched.
fn state(sb: &Sandbox) -> String {
    let files = sb
        .sh("cd /etc/ssh && find . -printf '%m %U %G %C@ %T@ %s %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum")
        .assert_ok()
        .stdout;
    files + &sb.sh("/usr/sbin/sshd -T").assert_ok().stdout
}

/// Runs `apply` and checks the lockout guard `guard` refused it: exit 1, the reason and the
/// override named, nothing changed.
fn assert_refused(sb: &Sandbox, playbook: &str, guard: &str, why: &str) {
    sb.write("/tmp/pb.yaml", playbook);
    let before = state(sb);
    let entries = sb.upper_entries();
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{run}");
    assert!(run.stderr.contains("refused (sshd)"), "{run}");
    assert!(run.stderr.contains(why), "no {why:?} in: {run}");
    assert!(
        run.stderr.contains(&format!("--allow {guard}")),
        "the override is not named: {run}"
    );
    assert_eq!(state(sb), before, "a refused plan changed something");
    let mut after = sb.upper_entries();
    after.retain(|e| !e.starts_with("var/lib"));
    let mut entries = entries;
    entries.retain(|e| !e.starts_with("var/lib"));
    assert_eq!(after, entries, "a refused plan wrote files");
    // And the same plan goes through with the override (planning only).
    let run = sb.harden(&["plan", "--allow", guard, "/tmp/pb.yaml"]);
    assert!(run.success(), "{run}");
    assert!(
        run.stdout
            .contains(&format!("overridden by --allow {guard}")),
        "{run}"
    );
}

#[test]
fn a_cloud_init_drop_in_is_overridden_and_password_logins_stop() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.write(
        CLOUD_INIT,
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n",
    );
    start_sshd(&sb);
    assert_eq!(
        sshd_t(&sb, "passwordauthentication"),
        "passwordauthentication yes"
    );
    password_login(&sb, "password", 22).assert_ok();
    password_login(&sb, "keyboard-interactive", 22).assert_ok();
    let main = sb.read("/etc/ssh/sshd_config");
    sb.sh("dpkg --verify openssh-server").assert_ok();

    sb.write("/tmp/pb.yaml", "sshd:\n  config:\n    PasswordAuthentication: false\n    KbdInteractiveAuthentication: false\n");
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        plan.stdout.contains(&format!(
            "PasswordAuthentication: yes -> no [{CLOUD_INIT}:1]"
        )),
        "the plan names the effective value and its source: {plan}"
    );
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(apply.stderr.contains("Applied 1 change"), "{apply}");

    assert_eq!(
        sshd_t(&sb, "passwordauthentication"),
        "passwordauthentication no"
    );
    assert_eq!(
        sshd_t(&sb, "kbdinteractiveauthentication"),
        "kbdinteractiveauthentication no"
    );
    key_login(&sb, 22).assert_ok();
    password_login(&sb, "password", 22).assert_fails();
    password_login(&sb, "keyboard-interactive", 22).assert_fails();

    // Distribution and cloud-init files are untouched; harden's drop-in says what it is.
    assert_eq!(sb.read("/etc/ssh/sshd_config"), main);
    assert_eq!(
        sb.read(CLOUD_INIT),
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n"
    );
    assert!(sb.read(DROP_IN).starts_with("# Managed by harden"));
    sb.sh("dpkg --verify openssh-server").assert_ok();

    // Idempotent: nothing to do, nothing touched.
    let settled = state(&sb);
    sb.harden(&["apply", "/tmp/pb.yaml"])
        .assert_ok()
        .assert_stdout_contains("No changes. 2 unchanged.");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
    assert_eq!(state(&sb), settled, "the second apply touched something");
}

#[test]
fn a_port_change_moves_sshd_and_converges() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    sb.write("/tmp/pb.yaml", "sshd:\n  config:\n    Port: 2222\n");
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    wait_listening(&sb, 2222);
    key_login(&sb, 2222).assert_ok();
    key_login(&sb, 22).assert_fails();
    assert_eq!(sshd_t(&sb, "port"), "port 2222");
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);

    // `harden rollback` brings back the old port, and waits until sshd serves it.
    sb.harden(&["rollback"]).assert_ok();
    key_login(&sb, 22).assert_ok();
    key_login(&sb, 2222).assert_fails();
    assert!(!sb.exists(DROP_IN));
}

#[test]
fn a_port_the_firewall_drops_is_refused_until_it_is_allowed() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    sb.sh("ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null")
        .assert_ok();
    key_login(&sb, 22).assert_ok();
    assert_refused(
        &sb,
        "sshd:\n  config:\n    Port: 2222\n",
        "sshd-port-firewall",
        "ufw is active and does not allow 2222/tcp",
    );
    sb.sh("ufw allow 2222/tcp >/dev/null").assert_ok();
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    wait_listening(&sb, 2222);
    key_login(&sb, 2222).assert_ok();
}

#[test]
fn a_new_port_the_same_playbook_opens_in_ufw_goes_through() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    sb.sh("ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null")
        .assert_ok();
    // The live firewall drops 2222, but the playbook's own ufw rule opens it in this run.
    sb.write(
        "/tmp/pb.yaml",
        "sshd:\n  config:\n    Port: 2222\nufw:\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 2222/tcp }\n",
    );
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    wait_listening(&sb, 2222);
    key_login(&sb, 2222).assert_ok();
    let rules = sb.sh("ufw status").assert_ok().stdout;
    assert!(
        rules
            .lines()
            .any(|l| l.starts_with("2222/tcp") && l.contains("ALLOW")),
        "{rules}"
    );
}

#[test]
fn disabling_passwords_with_no_key_anywhere_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.sh("rm /home/alice/.ssh/authorized_keys").assert_ok();
    start_sshd(&sb);
    assert_refused(
        &sb,
        "sshd:\n  config:\n    PasswordAuthentication: false\n    KbdInteractiveAuthentication: false\n",
        "sshd-no-keyed-login",
        "no login-capable account has a usable authorized key",
    );
    password_login(&sb, "password", 22).assert_ok();
}

#[test]
fn permit_root_login_no_while_only_root_has_a_key_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.sh("rm /home/alice/.ssh/authorized_keys && install -d -m 700 /root/.ssh && install -m 600 /root/alice_key.pub /root/.ssh/authorized_keys")
        .assert_ok();
    start_sshd(&sb);
    assert_refused(
        &sb,
        "sshd:\n  config:\n    PermitRootLogin: \"no\"\n",
        "sshd-root-only-keyed",
        "root is the only account that can log in with a key",
    );
}

#[test]
fn allow_users_excluding_every_keyed_account_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    assert_refused(
        &sb,
        "sshd:\n  config:\n    AllowUsers: [bob, carol]\n",
        "sshd-allowusers",
        "alice: not in AllowUsers bob carol",
    );
    // Including alice is fine, and she still gets in.
    sb.write(
        "/tmp/ok.yaml",
        "sshd:\n  config:\n    AllowUsers: [bob, alice]\n",
    );
    sb.harden(&["apply", "/tmp/ok.yaml"]).assert_ok();
    key_login(&sb, 22).assert_ok();
}

#[test]
fn keys_sshd_would_ignore_under_strict_modes_are_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    // Debian's sshd accepts a group-writable home when the group is the user's private
    // group; a shared group is what makes it ignore the key.
    sb.sh("chgrp users /home/alice && chmod 775 /home/alice")
        .assert_ok();
    start_sshd(&sb);
    key_login(&sb, 22).assert_fails();
    assert_refused(
        &sb,
        "sshd:\n  config:\n    PasswordAuthentication: false\n    KbdInteractiveAuthentication: false\n",
        "sshd-strictmodes",
        "directory /home/alice is group-writable (mode 0775",
    );
}

#[test]
fn use_pam_no_with_a_locked_password_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.sh("usermod -L alice").assert_ok();
    start_sshd(&sb);
    key_login(&sb, 22).assert_ok();
    assert_refused(
        &sb,
        "sshd:\n  config:\n    UsePAM: false\n",
        "sshd-locked-account",
        "alice: its password is locked",
    );
}

#[test]
fn unknown_directives_bad_values_and_unsupported_ciphers_are_located_errors() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    let before = state(&sb);
    let cases: [(&str, &str, &str); 4] = [
        (
            "sshd:\n  config:\n    MaxAuthTries: 3\n    PasswordAuthentification: no\n",
            "/tmp/pb.yaml:4:5:",
            "does not know the directive PasswordAuthentification",
        ),
        (
            "sshd:\n  config:\n    MaxAuthTries: many\n",
            "/tmp/pb.yaml:3:19:",
            "MaxAuthTries is a whole number",
        ),
        (
            "sshd:\n  config:\n    Ciphers: [aes256-gcm@openssh.com, rot13-cbc]\n",
            "/tmp/pb.yaml:3:14:",
            "rot13-cbc is not supported by OpenSSH",
        ),
        (
            "sshd:\n  config:\n    LoginGraceTime: 1x\n",
            "/tmp/pb.yaml:3:21:",
            "LoginGraceTime is a time",
        ),
    ];
    for (playbook, place, message) in cases {
        sb.write("/tmp/pb.yaml", playbook);
        let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
        assert_eq!(run.status, 1, "{run}");
        assert!(run.stderr.contains(place), "no {place} in: {run}");
        assert!(run.stderr.contains(message), "no {message:?} in: {run}");
    }
    // A value only the installed sshd can judge: its own parser is asked at plan time.
    sb.write(
        "/tmp/pb.yaml",
        "sshd:\n  config:\n    HostKey: /etc/ssh/no_such_key\n",
    );
    let run = sb.harden(&["plan", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{run}");
    assert!(
        run.stderr.contains("/tmp/pb.yaml:3:14:") && run.stderr.contains("no hostkeys available"),
        "{run}"
    );
    assert_eq!(state(&sb), before, "an invalid playbook changed something");
}

#[test]
fn a_configuration_sshd_rejects_is_rolled_back_and_the_old_one_keeps_serving() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    // At plan time the host key is fine; the files section, applied first, makes it too
    // open, so `sshd -t` refuses the new configuration that names it as the only key.
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /etc/ssh/ssh_host_ed25519_key, mode: \"0644\" }\nsshd:\n  config:\n    HostKey: /etc/ssh/ssh_host_ed25519_key\n    Port: 2222\n",
    );
    let files = "cd /etc/ssh && find . -type f -printf '%m %U %G %s %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum";
    let before = sb.sh(files).assert_ok().stdout;
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(run.status, 1, "{run}");
    assert!(
        run.stderr.contains("sshd -t") && run.stderr.contains("rolled back"),
        "{run}"
    );
    let after = sb.sh(files).assert_ok().stdout;
    assert_eq!(after, before, "the rollback did not restore /etc/ssh");
    assert!(!sb.exists(DROP_IN));
    wait_listening(&sb, 22);
    key_login(&sb, 22).assert_ok();
    assert_eq!(sshd_t(&sb, "port"), "port 22");
}

#[test]
fn without_a_drop_in_directory_the_main_file_is_edited_in_place() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.sh("sed -i 's|^Include /etc/ssh/sshd_config.d/\\*.conf|# no drop-ins here|' /etc/ssh/sshd_config && printf '\\nMatch User backup\\n\\tForceCommand /usr/bin/true\\n' >> /etc/ssh/sshd_config")
        .assert_ok();
    start_sshd(&sb);
    let comments: Vec<String> = sb
        .read("/etc/ssh/sshd_config")
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    sb.write("/tmp/pb.yaml", "sshd:\n  config:\n    X11Forwarding: false\n    MaxAuthTries: 3\n    PasswordAuthentication: false\n");
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    let main = sb.read("/etc/ssh/sshd_config");
    for c in &comments {
        assert!(
            main.lines().any(|l| l == c),
            "comment {c:?} was lost:\n{main}"
        );
    }
    assert!(
        main.contains("\nX11Forwarding no\n"),
        "the existing line is replaced in place:\n{main}"
    );
    let set = main.find("MaxAuthTries 3").expect("MaxAuthTries added");
    assert!(
        set < main.find("Match User backup").expect("Match kept"),
        "new lines go before the first Match:\n{main}"
    );
    assert!(!sb.exists(DROP_IN));
    assert_eq!(sshd_t(&sb, "maxauthtries"), "maxauthtries 3");
    key_login(&sb, 22).assert_ok();
    password_login(&sb, "password", 22).assert_fails();
    sb.harden(&["plan", "--detailed-exitcode", "/tmp/pb.yaml"])
        .assert_status(0);
}

#[test]
fn a_match_block_re_enabling_passwords_is_reported() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.write(
        "/etc/ssh/sshd_config.d/60-legacy.conf",
        "Match User legacy\n  PasswordAuthentication yes\n",
    );
    start_sshd(&sb);
    sb.write(
        "/tmp/pb.yaml",
        "sshd:\n  config:\n    PasswordAuthentication: false\n",
    );
    let run = sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert!(
        run.stdout.contains("Match User legacy at /etc/ssh/sshd_config.d/60-legacy.conf:1 sets PasswordAuthentication yes"),
        "{run}"
    );
    assert!(
        sb.exists("/etc/ssh/sshd_config.d/60-legacy.conf"),
        "Match blocks are not edited"
    );
}

#[test]
fn plan_writes_nothing_even_before_sshd_ever_ran() {
    let Some(sb) = crate::sandbox!() else { return };
    // No /run/sshd: sshd -T needs it; planning may create it (under /run only).
    sb.sh("rm -rf /run/sshd").assert_ok();
    let entries = sb.upper_entries();
    sb.write("/tmp/pb.yaml", "sshd:\n  config:\n    PasswordAuthentication: false\n    Ciphers: [aes256-gcm@openssh.com]\n");
    let json = sb
        .harden(&[
            "plan",
            "--allow",
            "sshd-no-keyed-login",
            "--format",
            "json",
            "/tmp/pb.yaml",
        ])
        .assert_ok()
        .json();
    crate::support::assert_plan_schema(&json);
    let change = &json["changes"][0];
    assert_eq!(change["resource"], "sshd");
    assert_eq!(change["details"][0]["name"], "PasswordAuthentication");
    let warnings = json["warnings"].to_string();
    assert!(
        !warnings.contains("sshd -T` fails"),
        "sshd -T did not run: {warnings}"
    );
    let mut after = sb.upper_entries();
    after.retain(|e| !e.starts_with("tmp"));
    let mut entries = entries;
    entries.retain(|e| !e.starts_with("tmp"));
    assert_eq!(after, entries, "plan wrote to the system");
}

/// Issue 16, finding 1: a drop-in sshd rejects, written by another tool, makes `plan` say
/// that apply will not touch sshd (naming the file and line), and `apply` changes nothing:
/// the running sshd is never reloaded onto it.
#[test]
fn issue16_a_foreign_drop_in_sshd_rejects_is_named_at_plan_time_and_sshd_keeps_running() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    sb.write("/etc/ssh/sshd_config.d/60-bad.conf", "BogusDirective yes\n");
    sb.write("/tmp/pb.yaml", "sshd:\n  config:\n    MaxAuthTries: 3\n");
    let pid = sb.sh("cat /run/sshd.pid").assert_ok().stdout;
    let plan = sb.harden(&["plan", "/tmp/pb.yaml"]);
    assert_eq!(plan.status, 1, "{plan}");
    assert!(
        plan.stderr
            .contains("/etc/ssh/sshd_config.d/60-bad.conf:1 is fixed"),
        "{plan}"
    );
    let apply = sb.harden(&["apply", "/tmp/pb.yaml"]);
    assert_eq!(apply.status, 1, "{apply}");
    assert!(!sb.exists("/var/lib/harden"), "apply started: {apply}");
    assert!(!sb.exists(DROP_IN));
    assert_eq!(sb.sh("cat /run/sshd.pid").assert_ok().stdout, pid);
    sb.sh("pkill -0 -F /run/sshd.pid -x sshd").assert_ok();
    key_login(&sb, 22).assert_ok();
}

/// Issue 16, finding 1: the same drop-in appearing after the plan, while the apply runs.
/// `sshd -t` fails, the rollback restores the files, and, since sshd was never reloaded,
/// it is not reloaded now either: the old one keeps serving (a SIGHUP onto the foreign
/// file would make it exit).
#[test]
fn issue16_a_bad_drop_in_appearing_mid_apply_rolls_back_without_reloading_sshd() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    // A files section slow enough to widen the window between the journal and `sshd -t`.
    sb.sh("mkdir -p /srv/tree && cd /srv/tree && for d in $(seq 1 40); do mkdir $d && (cd $d && touch $(seq 1 500)); done")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "files:\n  - { path: /srv/tree, mode: \"u=rwX,g=,o=\", recurse: true }\nsshd:\n  config:\n    MaxAuthTries: 3\n",
    );
    sb.harden(&["plan", "/tmp/pb.yaml"]).assert_ok();
    let pid = sb.sh("cat /run/sshd.pid").assert_ok().stdout;
    let run = sb.sh(&format!(
        "(while [ ! -e /var/lib/harden/journal.json ]; do sleep 0.001; done; \
          printf 'BogusDirective yes\\n' > /etc/ssh/sshd_config.d/60-bad.conf) & \
         {} apply /tmp/pb.yaml; echo rc=$?; wait",
        crate::support::HARDEN_IN_SANDBOX
    ));
    assert!(run.stdout.contains("rc=1"), "{run}");
    assert!(run.stderr.contains("sshd -t"), "{run}");
    assert!(!sb.exists(DROP_IN));
    assert_eq!(
        sb.sh("cat /run/sshd.pid").assert_ok().stdout,
        pid,
        "sshd was restarted"
    );
    sb.sh("pkill -0 -F /run/sshd.pid -x sshd").assert_ok();
    key_login(&sb, 22).assert_ok();
}

/// Issue 16, finding 2: a key sshd would refuse for an option on its line (an
/// `expiry-time` in the past) is no key: turning passwords off is refused.
#[test]
fn issue16_an_expired_key_is_no_key_and_passwords_off_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    sb.sh("sed -i 's/^/expiry-time=\"20000101\" /' /home/alice/.ssh/authorized_keys")
        .assert_ok();
    start_sshd(&sb);
    key_login(&sb, 22).assert_fails();
    assert_refused(
        &sb,
        "sshd:\n  config:\n    PasswordAuthentication: false\n    KbdInteractiveAuthentication: false\n",
        "sshd-no-keyed-login",
        "expired",
    );
}

/// Issue 16, finding 2: a ForceCommand that cannot give a shell, or a ChrootDirectory that
/// does not exist, leaves no session for the keyed admin: refused, as sshd itself answers
/// for the account (`sshd -T -C user=alice` with the candidate configuration).
#[test]
fn issue16_a_force_command_or_chroot_that_leaves_no_session_is_refused() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    assert_refused(
        &sb,
        "sshd:\n  config:\n    PasswordAuthentication: false\n    ForceCommand: /bin/false\n",
        "sshd-no-session",
        "ForceCommand /bin/false",
    );
    assert_refused(
        &sb,
        "sshd:\n  config:\n    PasswordAuthentication: false\n    ChrootDirectory: /srv/jail\n",
        "sshd-no-session",
        "ChrootDirectory /srv/jail does not exist",
    );
    // A Match block that limits the command to another account is fine: alice keeps a shell.
    sb.write(
        "/etc/ssh/sshd_config.d/40-backup.conf",
        "Match User backup\n  ForceCommand /usr/bin/true\n",
    );
    sb.write(
        "/tmp/ok.yaml",
        "sshd:\n  config:\n    PasswordAuthentication: false\n",
    );
    sb.harden(&["apply", "/tmp/ok.yaml"]).assert_ok();
    key_login(&sb, 22).assert_ok();
}

/// One `sshd -T` per plan: the facts gathered before the probes hold its answer, and the
/// firewall and fail2ban read sshd's port from them instead of asking sshd again. A plan
/// with sshd changes adds one `sshd -T -C` per keyed account (the lockout guards' question
/// to sshd); a converged one adds nothing. Counted through a wrapper found first on the path.
#[test]
fn a_plan_asks_sshd_for_its_configuration_once() {
    let Some(sb) = crate::sandbox!() else { return };
    setup(&sb);
    start_sshd(&sb);
    sb.write(
        "/usr/local/sbin/sshd",
        "#!/bin/sh\necho \"$*\" >> /tmp/sshd-calls\nexec /usr/sbin/sshd \"$@\"\n",
    );
    sb.sh("chmod 755 /usr/local/sbin/sshd").assert_ok();
    sb.write(
        "/tmp/all.yaml",
        "sshd:\n  config:\n    MaxAuthTries: 3\nufw:\n  enabled: true\n  default: { incoming: deny }\n  rules:\n    - { allow: sshd }\nfail2ban:\n  jails:\n    sshd: { enabled: true }\n",
    );
    let calls = |sb: &Sandbox| -> (usize, usize) {
        let log = sb.sh("cat /tmp/sshd-calls; rm -f /tmp/sshd-calls").stdout;
        let dumps: Vec<&str> = log
            .lines()
            .filter(|l| l.split(' ').any(|w| w == "-T"))
            .collect();
        let per_account = dumps.iter().filter(|l| l.contains("-C")).count();
        (dumps.len() - per_account, per_account)
    };
    sb.harden(&["plan", "/tmp/all.yaml"]).assert_ok();
    assert_eq!(calls(&sb), (1, 1), "a plan with sshd changes");
    sb.write("/tmp/sshd.yaml", "sshd:\n  config:\n    MaxAuthTries: 3\n");
    sb.harden(&["apply", "/tmp/sshd.yaml"]).assert_ok();
    let _ = calls(&sb);
    sb.harden(&["plan", "/tmp/all.yaml"]).assert_ok();
    assert_eq!(calls(&sb), (1, 0), "a plan whose sshd part is converged");
}
