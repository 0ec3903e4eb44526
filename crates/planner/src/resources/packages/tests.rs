//! Unit tests of the `packages` diff and of the parsers of dpkg's and apt's output.

use std::collections::BTreeMap;

use harden_plan::Step;

use super::apt::{names_package, not_reinstallable, parse_query, parse_simulation, parse_uris};
use super::*;
use crate::testing;

fn diff_with(yaml: &str, live: &Live, overrides: &[&str]) -> Result<Diff, Failure> {
    testing::diff(yaml, |p| p.packages, live, &testing::root_only(), overrides)
}

fn installed(names: &[(&str, &str)]) -> BTreeMap<String, Installed> {
    names
        .iter()
        .map(|(n, v)| {
            (
                (*n).to_owned(),
                Installed {
                    version: (*v).to_owned(),
                },
            )
        })
        .collect()
}

fn removed(name: &str, version: &str, offline: bool) -> Removed {
    Removed {
        name: name.into(),
        version: version.into(),
        offline,
    }
}

fn commands(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Run(c) => Some(c.display()),
            _ => None,
        })
        .collect()
}

#[test]
fn dpkg_query_lines_count_only_installed_packages() {
    let out = "tree\tamd64\tinstalled\t2.1.0-1\nsl\tamd64\tconfig-files\t5.02-1+b1\nlibc6\tamd64\tinstalled\t2.36-9\n";
    let found = parse_query(out, &["tree", "sl", "libc6:amd64", "absent"]);
    assert_eq!(
        found.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["libc6:amd64", "tree"]
    );
    assert_eq!(found["tree"].version, "2.1.0-1");
}

#[test]
fn simulations_give_names_and_versions() {
    let install = "NOTE: This is only a simulation!\nInst libcrack2 (2.9.6-5+b1 Debian:12.15/oldstable [amd64])\nInst libpam-pwquality (1.4.5-1+b1 Debian:12.15/oldstable [amd64])\nConf libcrack2 (2.9.6-5+b1 Debian:12.15/oldstable [amd64])\n";
    assert_eq!(
        parse_simulation(install, "Inst"),
        vec![
            ("libcrack2".into(), "2.9.6-5+b1".into()),
            ("libpam-pwquality".into(), "1.4.5-1+b1".into())
        ]
    );
    let upgrade = "Inst libc6 [2.36-9] (2.36-9+deb12u1 Debian [amd64])\n";
    assert_eq!(
        parse_simulation(upgrade, "Inst"),
        vec![("libc6".into(), "2.36-9+deb12u1".into())]
    );
    let remove = "Remv sl [5.02-1+b1]\nRemv tree [2.1.0-1]\n";
    assert_eq!(
        parse_simulation(remove, "Remv"),
        vec![
            ("sl".into(), "5.02-1+b1".into()),
            ("tree".into(), "2.1.0-1".into())
        ]
    );
}

#[test]
fn print_uris_lines_map_packages_to_where_apt_gets_them() {
    let out = "'file:/srv/repo/./tree_2.1.0-1_amd64.deb' tree_2.1.0-1_amd64.deb 47336 SHA256:ab\n'http://deb.example/pool/s/sl/sl_5.02-1%2bb1_amd64.deb' sl_5.02-1+b1_amd64.deb 13000 SHA256:cd\n";
    let uris = parse_uris(out);
    assert!(uris["tree"].starts_with("file:"));
    assert!(uris["sl"].starts_with("http:"));
    let notice = "Reading package lists...\nReinstallation of sl is not possible, it cannot be downloaded.\n";
    assert_eq!(not_reinstallable(notice), vec!["sl"]);
}

#[test]
fn apt_messages_name_packages_as_words() {
    let message = "Unable to locate package no-such-pkg";
    assert!(names_package(message, "no-such-pkg"));
    assert!(!names_package(message, "such"));
    assert!(names_package(
        "Package 'sl' has no installation candidate",
        "sl"
    ));
}

#[test]
fn a_missing_package_is_installed_and_the_rollback_purges_what_apt_adds() {
    let live = Live {
        apt: true,
        installed: installed(&[("tree", "2.1.0-1")]),
        install: Some(Ok(vec!["libcrack2".into(), "libpam-pwquality".into()])),
        ..Live::default()
    };
    let diff = diff_with(
        "packages:\n  present: [tree, libpam-pwquality]\n",
        &live,
        &[],
    )
    .expect("diff");
    assert_eq!(diff.unchanged, 1);
    assert_eq!(diff.changes.len(), 1);
    let change = &diff.changes[0];
    assert_eq!(change.target, "install libpam-pwquality");
    assert!(
        change.reason.contains("also installs libcrack2"),
        "{change:?}"
    );
    assert!(commands(&change.steps)[0].ends_with("apt-get install -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold libpam-pwquality"));
    let undo: Vec<String> = change.on_rollback.iter().map(|c| c.display()).collect();
    assert_eq!(undo.len(), 1);
    assert!(
        undo[0].ends_with("apt-get purge -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold libcrack2 libpam-pwquality"),
        "{undo:?}"
    );
}

#[test]
fn everything_as_listed_is_an_empty_plan() {
    let live = Live {
        apt: true,
        installed: installed(&[("tree", "2.1.0-1")]),
        ..Live::default()
    };
    let diff =
        diff_with("packages:\n  present: [tree]\n  absent: [sl]\n", &live, &[]).expect("diff");
    assert!(diff.changes.is_empty(), "{:?}", diff.changes);
    assert_eq!(diff.unchanged, 2);
}

#[test]
fn a_removal_reinstalls_every_package_it_took_and_warns_when_it_needs_the_network() {
    let live = Live {
        apt: true,
        installed: installed(&[("sl", "5.02-1+b1")]),
        removal: Some(Ok(Removal {
            packages: vec![
                removed("sl", "5.02-1+b1", true),
                removed("sl-extras", "1.0", false),
            ],
        })),
        ..Live::default()
    };
    let diff = diff_with("packages:\n  absent: [sl]\n", &live, &[]).expect("diff");
    let change = &diff.changes[0];
    assert_eq!(change.target, "remove sl");
    assert!(
        change.reason.contains("also removes sl-extras"),
        "{change:?}"
    );
    assert!(commands(&change.steps)[0].contains("apt-get remove -y"));
    assert!(change.on_rollback[0]
        .display()
        .ends_with("--reinstall --allow-downgrades sl=5.02-1+b1 sl-extras=1.0"));
    assert_eq!(diff.warnings.len(), 1, "{:?}", diff.warnings);
    assert!(diff.warnings[0]
        .message
        .contains("cannot reinstall sl-extras 1.0 without the network"));
}

#[test]
fn a_removal_that_takes_ssh_away_is_refused_unless_allowed() {
    let live = Live {
        apt: true,
        installed: installed(&[("libwrap0", "7.6")]),
        removal: Some(Ok(Removal {
            packages: vec![
                removed("libwrap0", "7.6", true),
                removed("openssh-server", "1:9.2p1-2", true),
            ],
        })),
        ..Live::default()
    };
    let Err(Failure::Refused(refusal)) = diff_with("packages:\n  absent: [libwrap0]\n", &live, &[])
    else {
        panic!("refused")
    };
    assert_eq!(refusal.guard, REMOTE_ACCESS);
    assert!(
        refusal.message.contains("also remove openssh-server"),
        "{refusal:?}"
    );
    diff_with("packages:\n  absent: [libwrap0]\n", &live, &[REMOTE_ACCESS]).expect("allowed");
}

#[test]
fn a_removal_that_takes_a_present_package_is_a_located_error() {
    let live = Live {
        apt: true,
        installed: installed(&[("a-lib", "1"), ("tree", "2")]),
        removal: Some(Ok(Removal {
            packages: vec![removed("a-lib", "1", true), removed("tree", "2", true)],
        })),
        ..Live::default()
    };
    let Err(Failure::Invalid(errors)) = diff_with(
        "packages:\n  present: [tree]\n  absent: [a-lib]\n",
        &live,
        &[],
    ) else {
        panic!("invalid")
    };
    assert!(
        errors[0].message.contains("tree must be present"),
        "{errors:?}"
    );
    assert_eq!((errors[0].at.line, errors[0].at.column), (2, 13));
}

#[test]
fn a_package_apt_does_not_know_is_an_error_at_its_name() {
    let live = Live {
        apt: true,
        install: Some(Err("Unable to locate package no-such-pkg".into())),
        ..Live::default()
    };
    let Err(Failure::Invalid(errors)) = diff_with(
        "packages:\n  present:\n    - tree\n    - no-such-pkg\n",
        &live,
        &[],
    ) else {
        panic!("invalid")
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].at.line, errors[0].at.column), (4, 7));
}

#[test]
fn bad_input_is_located() {
    for (yaml, needle, line) in [
        ("packages:\n  present: [Tree]\n", "invalid package name", 2),
        ("packages:\n  present: [x]\n", "invalid package name", 2),
        (
            "packages:\n  absent: [\"a b\"]\n",
            "invalid package name",
            2,
        ),
        ("packages:\n  missing: [tree]\n", "unknown field", 2),
        (
            "packages:\n  present: [tree]\n  absent:\n    - tree\n",
            "both as present and as absent",
            4,
        ),
    ] {
        let err = testing::parse(yaml).expect_err(yaml);
        assert!(err.contains(&format!("pb.yaml:{line}:")), "{yaml}: {err}");
        assert!(err.contains(needle), "{yaml}: {err}");
    }
}

#[test]
fn a_later_playbook_moves_a_package_between_the_lists() {
    let mut first = Packages::default();
    let later: Packages =
        serde_saphyr::from_str("present: [tree]\nabsent: [sl]\n").expect("section");
    first.merge(serde_saphyr::from_str("present: [sl]\nabsent: [tree]\n").expect("section"));
    first.merge(later);
    let names =
        |list: &[Located<Package>]| list.iter().map(|p| p.value.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&first.present), vec!["tree"]);
    assert_eq!(names(&first.absent), vec!["sl"]);
    assert!(first.validate().is_empty());
}
