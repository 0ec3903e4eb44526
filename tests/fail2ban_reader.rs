//! harden's own reading of fail2ban's configuration against fail2ban's (`fail2ban-client -d`),
//! on the distribution's files and on the overrides operators write: includes with `.local`
//! siblings, `[DEFAULT]` references, globbed log paths, jails without logs, several actions.
//! `HARDEN_FAIL2BAN_READER=compare` makes the plan read both ways and fail on any
//! difference; a shim in front of `fail2ban-client` records whether the dump was asked for.

use crate::support::{Sandbox, HARDEN_IN_SANDBOX};

/// sshd tuned, the defaults the seeds ask for.
const PLAYBOOK: &str = "fail2ban:
  defaults: { bantime: 1h, findtime: 10m, maxretry: 5, ignoreip: [127.0.0.1/8, '::1'] }
  jails:
    sshd: { maxretry: 3, backend: systemd }
";

/// Records every `fail2ban-client` call in /tmp/f2b-calls, then runs the real one.
fn install_shim(sb: &Sandbox) {
    sb.sh(
        "mv /usr/bin/fail2ban-client /usr/bin/fail2ban-client.real && \
         printf '#!/bin/sh\\necho \"$*\" >> /tmp/f2b-calls\\nexec /usr/bin/fail2ban-client.real \"$@\"\\n' > /usr/bin/fail2ban-client && \
         chmod 755 /usr/bin/fail2ban-client",
    )
    .assert_ok();
}

/// The `fail2ban-client` calls since the last look, one per line.
fn calls(sb: &Sandbox) -> String {
    sb.sh("cat /tmp/f2b-calls 2>/dev/null; rm -f /tmp/f2b-calls")
        .assert_ok()
        .stdout
}

/// `harden plan --format json` with `HARDEN_FAIL2BAN_READER` set to `reader` ("" for unset).
fn plan(sb: &Sandbox, reader: &str) -> crate::support::Run {
    let setting = format!("HARDEN_FAIL2BAN_READER={reader}");
    sb.exec(&[
        "env",
        setting.as_str(),
        HARDEN_IN_SANDBOX,
        "plan",
        "--format",
        "json",
        "/tmp/pb.yaml",
    ])
}

/// The same plan both ways, and harden's reading agrees with fail2ban's; harden's own is
/// the default and asks fail2ban nothing.
#[track_caller]
fn assert_read_alike(sb: &Sandbox) {
    let compared = plan(sb, "compare");
    compared.assert_ok();
    assert!(calls(sb).contains("-d"), "compare mode asks fail2ban too");
    let own = plan(sb, "").assert_ok().stdout;
    assert!(
        !calls(sb)
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == "-d")),
        "harden's reading ran fail2ban-client -d"
    );
    let theirs = plan(sb, "fail2ban").assert_ok().stdout;
    assert_eq!(own, theirs, "the plan differs with fail2ban's reading");
}

#[test]
fn harden_reads_the_jails_as_fail2ban_does() {
    let Some(sb) = crate::sandbox!() else { return };
    install_shim(&sb);
    sb.write("/tmp/pb.yaml", PLAYBOOK);

    // The distribution's files: sshd enabled by defaults-debian.conf, no auth.log.
    assert_read_alike(&sb);

    // harden's own file in place.
    sb.harden(&["apply", "/tmp/pb.yaml"]).assert_ok();
    assert_read_alike(&sb);

    // An operator's overrides, in the forms fail2ban's documentation shows.
    sb.write(
        "/etc/fail2ban/jail.local",
        "[DEFAULT]\n\
         bantime = 2h ; longer\n\
         ignoreip = 127.0.0.1/8, ::1\n    10.0.0.0/8 192.0.2.7\n\
         bantime.increment = yes\n\
         maxmatches = %(maxretry)s\n\
         \n\
         [sshd]\n\
         # a comment between options\n\
         findtime = 20m\n\
         mode = aggressive\n\
         \n\
         [sshd?x=1]\n\
         unused = 1\n\
         \n\
         [apache-auth]\n\
         enabled = true\n\
         \n\
         [recidive]\n\
         enabled = true\n\
         action = %(action_mw)s\n\
         bantime = 1w\n",
    );
    sb.write(
        "/etc/fail2ban/jail.d/web.conf",
        "[INCLUDES]\nbefore = web-paths.inc\n\n\
         [nginx-http-auth]\nenabled = true\nlogpath = %(web_logs)s\nport = http,https\nmaxretry = 4\n",
    );
    sb.write(
        "/etc/fail2ban/jail.d/web-paths.inc",
        "[DEFAULT]\nweb_logs = /var/log/web/*error.log\n",
    );
    sb.write(
        "/etc/fail2ban/jail.d/web-paths.local",
        "[DEFAULT]\nweb_logs = /var/log/web/*error.log\n           /var/log/web/extra.log tail\n",
    );
    sb.sh(
        "mkdir -p /var/log/web && touch /var/log/web/a-error.log /var/log/web/b-error.log \
         /var/log/web/.hidden-error.log /var/log/web/c.log /var/log/fail2ban.log",
    )
    .assert_ok();
    assert_read_alike(&sb);

    // The web logs gone: fail2ban finds no log for that jail, and harden says so too.
    sb.sh("rm -r /var/log/web").assert_ok();
    assert_read_alike(&sb);
    let warnings = plan(&sb, "").assert_ok().stdout;
    assert!(
        warnings.contains("jail nginx-http-auth") && warnings.contains("has no log file"),
        "{warnings}"
    );
}

#[test]
fn what_harden_does_not_follow_is_asked_of_fail2ban() {
    let Some(sb) = crate::sandbox!() else { return };
    install_shim(&sb);
    sb.write("/tmp/pb.yaml", PLAYBOOK);
    // `known/` references also see the filter's options, which harden does not evaluate.
    sb.write(
        "/etc/fail2ban/jail.d/a.conf",
        "[sshd]\nignoreip = 10.0.0.1\n",
    );
    sb.write(
        "/etc/fail2ban/jail.local",
        "[sshd]\nignoreip = %(known/ignoreip)s 192.0.2.1\n",
    );
    let own = plan(&sb, "").assert_ok().stdout;
    assert!(calls(&sb).contains("-d"), "the dump was not asked for");
    assert_eq!(own, plan(&sb, "fail2ban").assert_ok().stdout);
    let compared = plan(&sb, "compare");
    assert!(!compared.success(), "{}", compared.stdout);
    let said = format!("{}{}", compared.stdout, compared.stderr);
    assert!(
        said.contains("harden cannot read fail2ban's configuration")
            && said.contains("known/ignoreip"),
        "{said}"
    );

    // A playbook filter is compared with the expressions fail2ban runs: the dump again.
    sb.sh("rm /etc/fail2ban/jail.local /etc/fail2ban/jail.d/a.conf")
        .assert_ok();
    sb.write(
        "/tmp/pb.yaml",
        "fail2ban:\n  jails:\n    app: { filter: app, logpath: /var/log/app.log, port: 8000 }\n  filters:\n    app: { failregex: ['Failed login from <HOST>'] }\n",
    );
    sb.sh("touch /var/log/app.log").assert_ok();
    plan(&sb, "").assert_ok();
    assert!(calls(&sb).contains("-d"), "the dump was not asked for");
}
