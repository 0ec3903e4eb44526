//! Unit tests of the sysctl diff: boot order, overrides, live values, read-only entries.

use super::*;
use crate::resources::Playbook;
use crate::testing;

fn section(yaml: &str) -> Sysctl {
    let source = crate::diagnostic::Source {
        name: "pb.yaml".into(),
        text: yaml.into(),
    };
    crate::playbook::load(vec![source])
        .map(|l| l.playbook)
        .expect("playbook")
        .sysctl
        .expect("a sysctl section")
}

fn parse_err(yaml: &str) -> String {
    let source = crate::diagnostic::Source {
        name: "pb.yaml".into(),
        text: yaml.into(),
    };
    match crate::playbook::load(vec![source]) {
        Ok(_) => panic!("{yaml} loaded"),
        Err(d) => d.to_string(),
    }
}

fn diff(section: &Sysctl, live: &Live) -> Result<Diff, Failure> {
    let playbook = Playbook::default();
    let users = UserDb::parse(false, "", "");
    let (facts, live_facts) = testing::facts(&playbook, &users);
    let overrides = testing::no_overrides();
    let cx = DiffContext {
        users: &users,
        facts: &facts,
        live: &live_facts,
        overrides: &overrides,
    };
    section.diff(live, &cx)
}

fn kernel(pairs: &[(&str, &str, bool)]) -> BTreeMap<String, KernelValue> {
    pairs
        .iter()
        .map(|(k, v, w)| {
            (
                (*k).to_owned(),
                KernelValue {
                    value: Some((*v).to_owned()),
                    writable: *w,
                },
            )
        })
        .collect()
}

fn running(entries: Vec<SysctlEntry>, values: &[(&str, &str, bool)]) -> Live {
    Live {
        running: true,
        sysctl_tool: true,
        drop_in: None,
        entries,
        kernel: kernel(values),
    }
}

const PB: &str = "sysctl:\n  net.ipv4.conf.all.accept_redirects: 0\n  kernel.kptr_restrict: 2\n";

#[test]
fn a_missing_file_is_written_and_live_values_are_set_and_restored_on_rollback() {
    let entries = conf::parse(
        "/usr/lib/sysctl.d/50-default.conf",
        "net.ipv4.conf.*.accept_redirects = 1\n",
    );
    let live = running(
        entries,
        &[
            ("net.ipv4.conf.all.accept_redirects", "1", true),
            ("kernel.kptr_restrict", "0", true),
        ],
    );
    let diff = diff(&section(PB), &live).expect("diff");
    assert_eq!(diff.changes.len(), 2, "{diff:?}");
    let file = &diff.changes[0];
    assert_eq!(file.target, DROP_IN);
    let Step::WriteFile { content, .. } = &file.steps[0] else {
        panic!("a file write")
    };
    assert!(content.ends_with("kernel.kptr_restrict = 2\nnet.ipv4.conf.all.accept_redirects = 0\n"));
    let source: Vec<Option<&str>> = file.details.iter().map(|d| d.source.as_deref()).collect();
    assert_eq!(
        source,
        vec![None, Some("/usr/lib/sysctl.d/50-default.conf:1")]
    );
    let kernel = &diff.changes[1];
    let Step::Run(cmd) = &kernel.steps[0] else {
        panic!("a command")
    };
    assert_eq!(
        cmd.display(),
        "sysctl -q -w kernel.kptr_restrict=2 net.ipv4.conf.all.accept_redirects=0"
    );
    assert_eq!(
        kernel.on_rollback[0].display(),
        "sysctl -q -w kernel.kptr_restrict=0 net.ipv4.conf.all.accept_redirects=1"
    );
    assert!(diff.warnings.is_empty(), "{:?}", diff.warnings);
}

#[test]
fn a_second_plan_is_empty() {
    let sysctl = section(PB);
    let mut live = running(
        conf::parse(DROP_IN, &sysctl.render()),
        &[
            ("net.ipv4.conf.all.accept_redirects", "0", true),
            ("kernel.kptr_restrict", "2", true),
        ],
    );
    live.drop_in = Some(sysctl.render());
    let diff = diff(&sysctl, &live).expect("diff");
    assert!(diff.changes.is_empty(), "{diff:?}");
    assert_eq!(diff.unchanged, 3);
}

#[test]
fn a_later_file_that_overrides_a_key_is_reported_with_its_line() {
    let mut entries = conf::parse(
        "/usr/lib/sysctl.d/50-default.conf",
        "kernel.kptr_restrict = 0\n",
    );
    entries.extend(conf::parse(
        "/etc/sysctl.d/99-zzz-local.conf",
        "# site\nkernel.kptr_restrict = 1\n",
    ));
    let live = running(
        entries,
        &[
            ("net.ipv4.conf.all.accept_redirects", "0", true),
            ("kernel.kptr_restrict", "2", true),
        ],
    );
    let diff = diff(&section(PB), &live).expect("diff");
    let messages: Vec<&str> = diff.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with(
            "/etc/sysctl.d/99-zzz-local.conf:2 sets kernel.kptr_restrict = 1 after harden's"
        ),
        "{messages:?}"
    );
    // An earlier file is simply overridden by harden's: no warning.
    let live = running(
        conf::parse("/etc/sysctl.d/10-early.conf", "kernel.kptr_restrict = 1\n"),
        &[
            ("net.ipv4.conf.all.accept_redirects", "0", true),
            ("kernel.kptr_restrict", "2", true),
        ],
    );
    assert!(diff_warnings(&live).is_empty());
}

fn diff_warnings(live: &Live) -> Vec<String> {
    diff(&section(PB), live)
        .expect("diff")
        .warnings
        .into_iter()
        .map(|w| w.message)
        .collect()
}

#[test]
fn a_read_only_entry_is_applied_at_next_boot_with_a_warning_not_a_command() {
    let live = running(
        Vec::new(),
        &[
            ("net.ipv4.conf.all.accept_redirects", "0", true),
            ("kernel.kptr_restrict", "0", false),
        ],
    );
    let diff = diff(&section(PB), &live).expect("diff");
    assert_eq!(diff.changes.len(), 1, "only the file: {diff:?}");
    assert!(
        diff.warnings[0].message.contains("applied at next boot"),
        "{:?}",
        diff.warnings
    );
}

#[test]
fn unknown_keys_are_located_errors_on_the_running_system_and_warnings_under_root() {
    let sysctl = section("sysctl:\n  kernel.no_such_key: 1\n");
    let mut live = running(Vec::new(), &[]);
    let Err(Failure::Invalid(errors)) = diff(&sysctl, &live) else {
        panic!("an unknown key is an error")
    };
    assert_eq!((errors[0].at.line, errors[0].at.column), (2, 3));
    assert!(errors[0].message.contains("/proc/sys/kernel/no_such_key"));
    live.running = false;
    let diff = diff(&sysctl, &live).expect("under --root");
    assert_eq!(diff.changes.len(), 1, "the file only");
    assert!(diff.warnings[0]
        .message
        .contains("no sysctl kernel.no_such_key"));
}

#[test]
fn an_optional_key_the_kernel_lacks_is_written_with_its_dash_and_skipped() {
    let sysctl = section("sysctl:\n  -kernel.yama.ptrace_scope: 1\n");
    let live = running(Vec::new(), &[]);
    let diff = diff(&sysctl, &live).expect("not an error");
    assert_eq!(diff.changes.len(), 1, "the file only: {diff:?}");
    assert!(sysctl
        .render()
        .ends_with("\n-kernel.yama.ptrace_scope = 1\n"));
    assert!(diff.warnings.is_empty(), "{:?}", diff.warnings);
}

#[test]
fn bad_keys_and_values_are_located_errors() {
    for (yaml, needle) in [
        ("sysctl:\n  kernel: 1\n", "invalid sysctl key"),
        ("sysctl:\n  net.ipv4.conf.*.rp_filter: 1\n", "no globs"),
        ("sysctl:\n  kernel.sysrq: \"\"\n", "not blank"),
        ("sysctl:\n  kernel.sysrq: [1]\n", "a sysctl value"),
    ] {
        let err = parse_err(yaml);
        assert!(err.contains("pb.yaml:2:"), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}

#[test]
fn booleans_are_written_as_numbers_and_slashed_keys_in_dotted_form() {
    let sysctl = section("sysctl:\n  net/ipv4/conf/eth0.1/forwarding: false\n");
    assert!(sysctl
        .render()
        .ends_with("net.ipv4.conf.eth0/1.forwarding = 0\n"));
}
