//! Unit tests of the pure diff: hand-made live states against playbook sections.

use super::*;
use crate::diagnostic::Source;
use crate::playbook::load;

fn section(yaml: &str) -> Ufw {
    let loaded = load(vec![Source {
        name: "pb.yaml".into(),
        text: yaml.into(),
    }])
    .expect("valid playbook");
    loaded.playbook.ufw.expect("ufw section")
}

fn error(yaml: &str) -> String {
    let err = load(vec![Source {
        name: "pb.yaml".into(),
        text: yaml.into(),
    }])
    .expect_err("invalid playbook");
    err.to_string()
}

const V4_HEAD: &str = "*filter\n:ufw-user-input - [0:0]\n### RULES ###\n";

fn rules_file(tuples: &[&str]) -> String {
    let mut s = V4_HEAD.to_owned();
    for t in tuples {
        s.push_str(&format!(
            "\n### tuple ### {t}\n-A ufw-user-input -j ACCEPT\n"
        ));
    }
    s.push_str("\n### END RULES ###\n");
    s
}

struct Machine {
    enabled: bool,
    running: Option<bool>,
    v4: Vec<&'static str>,
    v6: Vec<&'static str>,
    incoming: Policy,
}

impl Machine {
    fn fresh() -> Machine {
        Machine {
            enabled: false,
            running: Some(false),
            v4: vec![],
            v6: vec![],
            incoming: Policy::Deny,
        }
    }

    fn active(v4: Vec<&'static str>, v6: Vec<&'static str>) -> Machine {
        Machine {
            enabled: true,
            running: Some(true),
            v4,
            v6,
            incoming: Policy::Deny,
        }
    }

    fn live(&self) -> Live {
        let (t4, b4) = rule::parse_rules_file(&rules_file(&self.v4));
        let (t6, b6) = rule::parse_rules_file(&rules_file(&self.v6));
        assert!(b4.is_empty() && b6.is_empty(), "{b4:?} {b6:?}");
        let settings = Settings {
            enabled: self.enabled,
            incoming: self.incoming,
            ..Settings::package_defaults()
        };
        Live {
            installed: true,
            settings,
            running: self.running,
            tuples: vec![(Family::V4, t4), (Family::V6, t6)],
            malformed: vec![],
            profiles: state::parse_profiles([
                "[OpenSSH]\ntitle=ssh\ndescription=ssh\nports=22/tcp\n",
            ]),
            services: state::parse_services(
                "ssh 22/tcp\nhttp 80/tcp www\ndomain 53/tcp\ndomain 53/udp\n",
            ),
            ssh_listening: vec![22],
            ssh_desired: None,
            docker: false,
            conf: Some((
                "ENABLED=yes\nLOGLEVEL=low\n"
                    .replace("yes", if self.enabled { "yes" } else { "no" }),
                Attrs {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                },
            )),
            init: "/lib/ufw/ufw-init".into(),
            script: Some(Script {
                python: "/usr/bin/python3".into(),
                path: "/usr/sbin/ufw".into(),
            }),
        }
    }
}

fn diff(yaml: &str, machine: &Machine) -> Diff {
    plan(&section(yaml), &machine.live(), false).unwrap_or_else(|e| panic!("plan failed: {e:?}"))
}

fn commands(diff: &Diff) -> Vec<String> {
    diff.changes
        .iter()
        .flat_map(|c| &c.steps)
        .filter_map(|s| match s {
            Step::Run(c) => Some(c.display()),
            Step::WriteFile { path, content, .. } => Some(format!(
                "write {} {}",
                path.display(),
                content.replace('\n', " ").trim()
            )),
            _ => None,
        })
        .collect()
}

const SSH4: &str = "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in";
const SSH6: &str = "allow tcp 22 ::/0 any ::/0 in";
const WEB4: &str = "allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in";
const WEB6: &str = "allow tcp 443 ::/0 any ::/0 in";

const BASIC: &str = "ufw:\n  enabled: true\n  default: { incoming: deny }\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp, comment: web }\n";

#[test]
fn a_fresh_firewall_gets_rules_then_is_enabled() {
    let d = diff(BASIC, &Machine::fresh());
    assert_eq!(
        commands(&d),
        [
            "ufw allow 22/tcp",
            "ufw allow 443/tcp comment web",
            "ufw --force enable"
        ]
    );
    assert_eq!(
        d.unchanged, 1,
        "the default incoming policy is already deny"
    );
    let enable = d.changes.last().expect("enable");
    assert_eq!(enable.on_rollback.len(), 1);
    assert_eq!(
        enable.on_rollback[0].display(),
        "sh -c 'for t in iptables ip6tables; do if command -v $t >/dev/null 2>&1 && $t -w 5 -S 2>/dev/null | grep -v -e -caps-test | grep -q '\\''^-N ufw6\\{0,1\\}-'\\''; then exec /lib/ufw/ufw-init force-stop; fi; done'",
        "the stop runs only when the enable loaded the firewall"
    );
    let Step::Run(cmd) = &d.changes[0].steps[0] else {
        panic!("run")
    };
    assert!(cmd.touches.contains(&PathBuf::from("/etc/ufw/user6.rules")));
    assert!(cmd.touches.contains(&PathBuf::from("/etc/default/ufw")));
}

/// Each run step's batch: `(runner without the script, args)`, `None` for unbatched ones.
fn batches(diff: &Diff) -> Vec<Option<(Vec<String>, Vec<String>)>> {
    diff.changes
        .iter()
        .flat_map(|c| &c.steps)
        .filter_map(|s| match s {
            Step::Run(c) => Some(c.batch.as_ref().map(|b| {
                let (script, runner) = b.runner.split_last().expect("a runner");
                assert_eq!(script, "/usr/sbin/ufw");
                let (batch, runner) = runner.split_last().expect("the batch script");
                assert_eq!(batch, BATCH);
                let runner = runner.to_vec();
                (runner, b.args.clone())
            })),
            _ => None,
        })
        .collect()
}

#[test]
fn rule_commands_and_the_enable_run_in_one_batch_through_ufws_python_and_the_rest_alone() {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let python = owned(&["/usr/bin/python3", "-c"]);
    let d = diff(BASIC, &Machine::fresh());
    assert_eq!(
        batches(&d),
        [
            Some((python.clone(), owned(&["allow", "22/tcp"]))),
            Some((
                python.clone(),
                owned(&["allow", "443/tcp", "comment", "web"])
            )),
            Some((python.clone(), owned(&["--force", "enable"]))),
        ]
    );
    let mut image = Machine::fresh();
    image.running = None;
    let d = diff(BASIC, &image);
    let (runner, _) = batches(&d)[0].clone().expect("batched under --root");
    assert_eq!(
        runner,
        owned(&[
            "unshare",
            "--net",
            "--mount-proc",
            "--",
            "/usr/bin/python3",
            "-c"
        ])
    );
    let mut live = Machine::fresh().live();
    live.script = None;
    let d = plan(&section(BASIC), &live, false).expect("plan");
    assert!(batches(&d).iter().all(Option::is_none));
}

#[test]
fn what_ufw_already_holds_is_unchanged_whatever_the_spelling() {
    let m = Machine::active(
        vec![
            SSH4,
            "allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in comment=6f6c64",
            "allow tcp 1935 0.0.0.0/0 any 192.0.2.2 in",
        ],
        vec![SSH6, WEB6],
    );
    let yaml = "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp, comment: new }\n    - { allow: 1935/tcp, from: 192.0.2.2/32 }\n";
    let d = diff(yaml, &m);
    assert!(d.changes.is_empty(), "{:?}", commands(&d));
    assert_eq!(d.unchanged, 4);
}

#[test]
fn a_missing_twin_is_added_by_the_same_command() {
    let m = Machine::active(vec![SSH4, WEB4], vec![SSH6]);
    let d = diff(BASIC, &m);
    assert_eq!(commands(&d), ["ufw allow 443/tcp comment web"]);
    assert_eq!(d.changes[0].reason, "missing (v6)");
    assert_eq!(
        d.changes[0].on_rollback[0].display(),
        "ufw reload",
        "a running firewall is reloaded on rollback"
    );
}

#[test]
fn unlisted_rules_stay_without_purge_and_go_with_it() {
    let m = Machine::active(
        vec![
            SSH4,
            "allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in",
            "reject tcp any 0.0.0.0/0 any 203.0.113.7 in comment=6279204661696c3242616e",
        ],
        vec![SSH6, "allow tcp 8080 ::/0 any ::/0 in"],
    );
    let keep = diff("ufw:\n  rules:\n    - { allow: 22/tcp }\n", &m);
    assert!(keep.changes.is_empty());
    let warning = keep
        .warnings
        .iter()
        .find(|w| w.message.contains("not in the playbook"))
        .expect("warning");
    assert!(
        warning.message.contains("allow 8080/tcp"),
        "{}",
        warning.message
    );
    assert!(
        warning.message.contains("allow 8080/tcp (v6)"),
        "{}",
        warning.message
    );
    assert!(
        !warning.message.contains("203.0.113.7"),
        "fail2ban's rule is not listed as unlisted: {}",
        warning.message
    );

    let purge = diff(
        "ufw:\n  purge: true\n  rules:\n    - { allow: 22/tcp }\n",
        &m,
    );
    assert_eq!(
        commands(&purge),
        ["ufw delete allow 8080/tcp"],
        "twins go with one command; fail2ban's ban stays"
    );
    assert!(purge.changes[0].reason.contains("purge"));
    assert!(purge
        .warnings
        .iter()
        .any(|w| w.message.contains("by Fail2Ban") || w.message.contains("another tool")));
}

#[test]
fn a_deny_listed_before_an_overlapping_allow_is_inserted_before_it() {
    let m = Machine::active(
        vec![SSH4, "allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in"],
        vec![SSH6, "allow tcp 80 ::/0 any ::/0 in"],
    );
    let yaml = "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { deny: 80/tcp, from: 10.0.0.0/8 }\n    - { allow: 80/tcp }\n";
    let d = diff(yaml, &m);
    assert_eq!(
        commands(&d),
        ["ufw insert 2 deny in from 10.0.0.0/8 to 0.0.0.0/0 port 80 proto tcp"]
    );

    // Anywhere in both families: one position per family, IPv6 numbered after IPv4.
    let yaml = "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { deny: 80/tcp, interface: eth1 }\n    - { allow: 80/tcp }\n";
    let d = diff(yaml, &m);
    assert_eq!(
        commands(&d),
        [
            "ufw insert 2 deny in on eth1 from 0.0.0.0/0 to 0.0.0.0/0 port 80 proto tcp",
            "ufw insert 5 deny in on eth1 from ::/0 to ::/0 port 80 proto tcp"
        ]
    );
    // At the top of both lists, one prepend does both.
    let yaml = "ufw:\n  rules:\n    - { deny: 80/tcp, interface: eth1 }\n    - { allow: 80/tcp }\n    - { allow: 22/tcp }\n";
    let m = Machine::active(
        vec!["allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in", SSH4],
        vec!["allow tcp 80 ::/0 any ::/0 in", SSH6],
    );
    assert_eq!(
        commands(&diff(yaml, &m)),
        ["ufw prepend deny in on eth1 from any to any port 80 proto tcp"]
    );
}

#[test]
fn rules_in_the_wrong_order_move_only_where_it_matters() {
    let m = Machine::active(
        vec![
            "allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in",
            SSH4,
            "deny tcp 80 0.0.0.0/0 any 10.0.0.0/8 in",
        ],
        vec!["allow tcp 80 ::/0 any ::/0 in", SSH6],
    );
    let yaml = "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { deny: 80/tcp, from: 10.0.0.0/8 }\n    - { allow: 80/tcp }\n";
    let d = diff(yaml, &m);
    assert_eq!(
        commands(&d),
        [
            "ufw delete deny in from 10.0.0.0/8 to 0.0.0.0/0 port 80 proto tcp",
            "ufw prepend deny in from 10.0.0.0/8 to 0.0.0.0/0 port 80 proto tcp"
        ],
        "the deny moves before the allow; the ssh rule's place does not matter"
    );
    assert!(d.changes[0].reason.contains("out of order"));
    // Non-overlapping rules in another order are left alone.
    let yaml = "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 80/tcp }\n";
    assert!(diff(yaml, &m).changes.is_empty());
}

#[test]
fn an_action_change_is_made_in_place() {
    let m = Machine::active(vec![SSH4], vec![SSH6]);
    let d = diff("ufw:\n  rules:\n    - { limit: 22/tcp }\n", &m);
    assert_eq!(commands(&d), ["ufw limit 22/tcp"]);
    assert!(d.changes[0].reason.starts_with("action differs"));
    assert!(d
        .warnings
        .iter()
        .any(|w| w.message.contains("`limit` on the SSH port")));
}

#[test]
fn application_profiles_and_services_resolve_like_ufw() {
    let m = Machine::active(
        vec![
            "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
            "allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in",
        ],
        vec![
            "allow tcp 22 ::/0 any ::/0 OpenSSH - in",
            "allow tcp 80 ::/0 any ::/0 in",
        ],
    );
    let d = diff(
        "ufw:\n  rules:\n    - { allow: openssh }\n    - { allow: www }\n    - { allow: domain }\n",
        &m,
    );
    assert_eq!(commands(&d), ["ufw allow 53"]);
    let err = plan(
        &section("ufw:\n  rules:\n    - { allow: NoSuchApp }\n"),
        &m.live(),
        false,
    );
    let Err(Failure::Invalid(errors)) = err else {
        panic!("unknown profile must be invalid")
    };
    assert_eq!((errors[0].at.line, errors[0].at.column), (3, 16));
    assert!(errors[0]
        .message
        .contains("unknown application profile or service `NoSuchApp`"));
}

fn refused(yaml: &str, m: &Machine) -> Refusal {
    match plan(&section(yaml), &m.live(), false) {
        Err(Failure::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn enabling_deny_incoming_without_the_ssh_port_is_refused() {
    let yaml = "ufw:\n  enabled: true\n  default: { incoming: deny }\n  rules:\n    - { allow: 443/tcp }\n";
    let r = refused(yaml, &Machine::fresh());
    assert_eq!(r.guard, "ufw-ssh-port");
    assert!(r.message.contains("22/tcp"), "{}", r.message);
    // Overridden: planned, with a warning.
    let d = plan(&section(yaml), &Machine::fresh().live(), true).expect("overridden");
    assert!(d.warnings.iter().any(|w| w.message.contains("overridden")));
    // The ssh port by number, by profile, or limited: accepted.
    for rule in [
        "{ allow: 22/tcp }",
        "{ allow: OpenSSH }",
        "{ limit: 22/tcp }",
        "{ allow: 22 }",
        "{ allow: 20:30/tcp }",
        "{ allow: 22/tcp, from: 192.0.2.0/24 }",
    ] {
        let yaml = format!("ufw:\n  enabled: true\n  rules:\n    - {rule}\n");
        assert!(
            plan(&section(&yaml), &Machine::fresh().live(), false).is_ok(),
            "{rule}"
        );
    }
    // A deny for everyone before the allow does block it.
    let yaml = "ufw:\n  enabled: true\n  rules:\n    - { deny: 22/tcp }\n    - { allow: 22/tcp, from: 192.0.2.0/24 }\n";
    refused(yaml, &Machine::fresh());
    // Incoming allow never blocks.
    assert!(plan(
        &section("ufw:\n  enabled: true\n  default: { incoming: allow }\n"),
        &Machine::fresh().live(),
        false
    )
    .is_ok());
}

#[test]
fn the_guard_follows_sshd_s_port() {
    let yaml = "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n";
    let mut live = Machine::fresh().live();
    live.ssh_listening = vec![2222];
    assert!(
        matches!(plan(&section(yaml), &live, false), Err(Failure::Refused(_))),
        "sshd listens on 2222"
    );
    live.ssh_listening = vec![22];
    live.ssh_desired = Some(vec![2222]);
    let Err(Failure::Refused(r)) = plan(&section(yaml), &live, false) else {
        panic!("the playbook moves sshd to 2222")
    };
    assert!(
        r.message.contains("2222/tcp") && r.message.contains("playbook"),
        "{}",
        r.message
    );
}

#[test]
fn purging_the_ssh_rule_of_an_active_firewall_is_refused() {
    let m = Machine::active(vec![SSH4, WEB4], vec![SSH6, WEB6]);
    refused(
        "ufw:\n  purge: true\n  rules:\n    - { allow: 443/tcp }\n",
        &m,
    );
    // Already blocked before: not this plan's doing, a warning.
    let m = Machine::active(vec![WEB4], vec![WEB6]);
    let d = diff(
        "ufw:\n  rules:\n    - { allow: 443/tcp }\n    - { allow: 80/tcp }\n",
        &m,
    );
    assert!(d
        .warnings
        .iter()
        .any(|w| w.message.contains("already blocks SSH")));
}

#[test]
fn defaults_logging_and_disable() {
    let m = Machine::active(vec![SSH4], vec![SSH6]);
    let d = diff("ufw:\n  default: { incoming: reject, outgoing: allow, routed: allow }\n  logging: medium\n", &m);
    assert_eq!(
        commands(&d),
        [
            "ufw default reject incoming",
            "ufw default allow routed",
            "ufw logging medium"
        ]
    );
    assert_eq!(d.unchanged, 1);
    let d = diff(
        "ufw:\n  enabled: false\n  rules:\n    - { allow: 443/tcp }\n",
        &m,
    );
    assert_eq!(
        commands(&d),
        ["ufw disable", "ufw allow 443/tcp"],
        "disabled first, so rule edits do not touch the kernel"
    );
    assert_eq!(d.changes[0].on_rollback[0].display(), "ufw reload");
}

#[test]
fn under_root_nothing_reaches_the_kernel() {
    let mut m = Machine::active(vec![SSH4], vec![SSH6]);
    m.running = None;
    let d = diff(
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n",
        &m,
    );
    assert_eq!(
        commands(&d),
        [
            "write /etc/ufw/ufw.conf ENABLED=no LOGLEVEL=low",
            "unshare --net --mount-proc -- ufw allow 443/tcp",
            "write /etc/ufw/ufw.conf ENABLED=yes LOGLEVEL=low"
        ]
    );
    assert!(d.changes.iter().all(|c| c.on_rollback.is_empty()));
    let mut m = Machine::fresh();
    m.running = None;
    let d = diff(
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n",
        &m,
    );
    assert_eq!(
        commands(&d),
        [
            "unshare --net --mount-proc -- ufw allow 22/tcp",
            "write /etc/ufw/ufw.conf ENABLED=yes LOGLEVEL=low"
        ]
    );
    let mut m = Machine::active(vec![SSH4], vec![SSH6]);
    m.running = None;
    assert!(diff(
        "ufw:\n  enabled: true\n  rules:\n    - { allow: 22/tcp }\n",
        &m
    )
    .changes
    .is_empty());
}

#[test]
fn a_missing_ufw_is_installed_first() {
    let mut live = Machine::fresh().live();
    live.installed = false;
    live.tuples = vec![(Family::V4, vec![]), (Family::V6, vec![])];
    let d = plan(&section(BASIC), &live, false).expect("plan");
    let cmds = commands(&d);
    assert_eq!(
        cmds[0],
        "env NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ufw"
    );
    assert_eq!(
        &cmds[1..],
        [
            "ufw allow 22/tcp",
            "ufw allow 443/tcp comment web",
            "ufw --force enable"
        ]
    );
    let undo: Vec<String> = d.changes[0]
        .on_rollback
        .iter()
        .map(|c| c.display())
        .collect();
    assert_eq!(undo.len(), 3, "{undo:?}");
    assert!(
        undo[0].contains("-S 2>/dev/null | grep -v -e -caps-test")
            && undo[0].contains("force-stop"),
        "{undo:?}"
    );
    assert!(undo[1].contains("apt-get purge -y"), "{undo:?}");
    assert!(undo[2].contains("caps-test"), "{undo:?}");
    assert!(d.changes.iter().skip(1).all(|c| c.on_rollback.is_empty()));
}

#[test]
fn docker_is_warned_about() {
    let mut live = Machine::active(vec![SSH4], vec![SSH6]).live();
    live.docker = true;
    let d = plan(&section("ufw:\n  enabled: true\n"), &live, false).expect("plan");
    assert!(d.warnings.iter().any(|w| w.message.contains("Docker")));
}

#[test]
fn ipv6_off_means_one_list() {
    let mut live = Machine::fresh().live();
    live.settings.ipv6 = false;
    live.tuples.truncate(1);
    let d = plan(&section("ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { deny: 22/tcp, from: 2001:db8::/32 }\n"), &live, false);
    let Err(Failure::Invalid(errors)) = d else {
        panic!("v6 rule with IPv6 off")
    };
    assert!(errors[0].message.contains("IPV6=no"));
}

#[test]
fn bad_input_is_located() {
    let first = |yaml: &str| error(yaml).lines().next().unwrap_or_default().to_owned();
    let msg = first("ufw:\n  rules:\n    - { allow: 70000/tcp }\n");
    assert!(
        msg.starts_with("pb.yaml:3:") && msg.contains("port 70000 is out of range"),
        "{msg}"
    );
    let msg = first("ufw:\n  rules:\n    - { allow: ssh/xyz }\n");
    assert!(
        msg.starts_with("pb.yaml:3:") && msg.contains("unknown protocol `xyz`"),
        "{msg}"
    );
    let msg = first("ufw:\n  rules:\n    - { allow: 443/tcp, from: 10.0.0.300/8 }\n");
    assert!(
        msg.starts_with("pb.yaml:3:") && msg.contains("10.0.0.300/8"),
        "{msg}"
    );
    let msg = first("ufw:\n  rules:\n    - { permit: 443/tcp }\n");
    assert!(
        msg.starts_with("pb.yaml:3:") && msg.contains("unknown field `permit`"),
        "{msg}"
    );
    let msg = first("ufw:\n  rules:\n    - { allow: 443/tcp, deny: 80/tcp }\n");
    assert!(
        msg.starts_with("pb.yaml:3:") && msg.contains("one action"),
        "{msg}"
    );
    let msg = first("ufw:\n  rules:\n    - { comment: x }\n");
    assert!(
        msg.starts_with("pb.yaml:3:") && msg.contains("needs an action"),
        "{msg}"
    );
    let msg = first("ufw:\n  default: { incoming: drop }\n");
    assert!(msg.starts_with("pb.yaml:2:"), "{msg}");
    let msg = first("ufw:\n  logging: loud\n");
    assert!(msg.starts_with("pb.yaml:2:"), "{msg}");
    let msg = first("ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { deny: 22/tcp }\n");
    assert!(
        msg.starts_with("pb.yaml:4:") && msg.contains("same traffic"),
        "{msg}"
    );
    let msg = first("ufw:\n  rules:\n    - { allow: 22/tcp, from: 10.0.0.0/8, to: 2001:db8::1 }\n");
    assert!(msg.contains("mix IPv4 and IPv6"), "{msg}");
}

#[test]
fn later_playbooks_add_rules_and_replace_same_traffic_ones() {
    let mut a = section(
        "ufw:\n  enabled: true\n  rules:\n    - { limit: 22/tcp }\n    - { allow: 80/tcp }\n",
    );
    let b = section(
        "ufw:\n  purge: true\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n",
    );
    a.merge(b);
    let texts: Vec<String> = a.rules.iter().map(ToString::to_string).collect();
    assert_eq!(texts, ["allow 22/tcp", "allow 80/tcp", "allow 443/tcp"]);
    assert_eq!((a.enabled, a.purge), (Some(true), Some(true)));
}

#[test]
fn the_sshd_target_follows_sshd_s_port() {
    let yaml = "ufw:\n  enabled: true\n  rules:\n    - { allow: sshd, comment: ssh }\n";
    let mut live = Machine::fresh().live();
    live.ssh_listening = vec![2222];
    let d = plan(&section(yaml), &live, false).expect("the sshd target satisfies the guard");
    assert_eq!(
        commands(&d),
        ["ufw allow 2222/tcp comment ssh", "ufw --force enable"]
    );
    live.ssh_desired = Some(vec![22, 2200]);
    let d = plan(&section(yaml), &live, false).expect("plan");
    assert_eq!(commands(&d)[0], "ufw allow 22,2200/tcp comment ssh");
    let bad = plan(
        &section("ufw:\n  rules:\n    - { allow: sshd/udp }\n"),
        &live,
        false,
    );
    assert!(matches!(bad, Err(Failure::Invalid(_))));
}

#[test]
fn an_unlisted_rule_that_decides_first_is_warned_about() {
    let m = Machine::active(
        vec![SSH4, "deny tcp 443 0.0.0.0/0 any 10.0.0.0/8 in"],
        vec![SSH6],
    );
    let d = diff(
        "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { allow: 443/tcp }\n",
        &m,
    );
    assert!(
        d.warnings.iter().any(|w| w
            .message
            .contains("`allow 443/tcp` comes after `deny 443/tcp from 10.0.0.0/8`")),
        "{:?}",
        d.warnings
    );
    // fail2ban's bans come first by design: no warning for them.
    let m = Machine::active(
        vec![
            "reject any any 0.0.0.0/0 any 203.0.113.7 in comment=6279204661696c3242616e",
            SSH4,
        ],
        vec![SSH6],
    );
    let d = diff("ufw:\n  rules:\n    - { allow: 22/tcp }\n", &m);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn an_action_change_keeps_ufw_s_own_spelling() {
    let m = Machine::active(
        vec![SSH4],
        vec![SSH6, "allow tcp 22 ::/0 any 2001:db8::1/64 in"],
    );
    let d = diff(
        "ufw:\n  rules:\n    - { allow: 22/tcp }\n    - { deny: 22/tcp, from: 2001:db8::/64 }\n",
        &m,
    );
    assert_eq!(
        commands(&d),
        ["ufw deny in from 2001:db8::1/64 to ::/0 port 22 proto tcp"]
    );
}

#[test]
fn a_playbook_rule_open_to_anyone_admits_a_new_ssh_port() {
    let ufw = section("ufw:\n  rules:\n    - { allow: 2222/tcp }\n    - { allow: \"80,443/tcp\" }\n    - { limit: sshd }\n");
    assert!(playbook_admits(&ufw, 2222));
    assert!(playbook_admits(&ufw, 443));
    assert!(
        playbook_admits(&ufw, 1234),
        "the sshd target follows sshd's port"
    );
    let narrow = section("ufw:\n  rules:\n    - { allow: 2222/tcp, from: 203.0.113.0/24 }\n    - { deny: 2200/tcp }\n    - { allow: 2201/udp }\n");
    assert!(
        !playbook_admits(&narrow, 2222),
        "one network only is not the operator's side for sure"
    );
    assert!(!playbook_admits(&narrow, 2200));
    assert!(!playbook_admits(&narrow, 2201));
}

#[test]
#[allow(clippy::disallowed_methods)] // builds a fixture tree
fn the_live_verdict_reads_ufw_s_own_files_as_the_guard_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for d in ["etc/ufw", "etc/default", "usr/sbin"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("usr/sbin/ufw"), "").expect("write");
    std::fs::write(
        root.join("etc/default/ufw"),
        "IPV6=no\nDEFAULT_INPUT_POLICY=\"DROP\"\n",
    )
    .expect("write");
    std::fs::write(
        root.join("etc/ufw/user.rules"),
        "*filter\n### RULES ###\n\
         ### tuple ### deny tcp 2222 0.0.0.0/0 any 203.0.113.0/24 in\n\
         ### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n\
         ### tuple ### limit tcp 2200:2300 0.0.0.0/0 any 0.0.0.0/0 in comment=7373680a\n\
         ### tuple ### deny tcp 9090 0.0.0.0/0 any 0.0.0.0/0 in\n\
         ### tuple ### allow tcp 9090 0.0.0.0/0 any 0.0.0.0/0 in\n\
         ### END RULES ###\n",
    )
    .expect("write");
    let host = Host::new(root);
    let conf = |enabled: &str| {
        std::fs::write(
            root.join("etc/ufw/ufw.conf"),
            format!("ENABLED={enabled}\nLOGLEVEL=low\n"),
        )
        .expect("write")
    };
    conf("no");
    assert_eq!(
        live_admits(&host, 22),
        None,
        "an inactive firewall decides nothing"
    );
    conf("yes");
    assert_eq!(live_admits(&host, 22), Some(true));
    assert_eq!(
        live_admits(&host, 2222),
        Some(true),
        "a deny from one network does not close the port"
    );
    assert_eq!(
        live_admits(&host, 9090),
        Some(false),
        "the first rule for everyone wins"
    );
    assert_eq!(
        live_admits(&host, 443),
        Some(false),
        "the default policy drops it"
    );
    std::fs::write(
        root.join("etc/default/ufw"),
        "IPV6=no\nDEFAULT_INPUT_POLICY=\"ACCEPT\"\n",
    )
    .expect("write");
    assert_eq!(live_admits(&host, 443), Some(true));
}
