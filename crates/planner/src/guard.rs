//! Lockout guards by name: the checks that refuse a plan which could cut off remote
//! administration. Each resource lists its own ([`crate::resource::Resource::GUARDS`]); the
//! registry gathers them, so that `--allow` accepts only names that exist and the README's
//! table can be checked against the code.

use std::collections::BTreeSet;

/// One lockout guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// The name `--allow` takes and refusals print.
    pub name: &'static str,
    /// The resource whose plans it judges.
    pub resource: &'static str,
    /// What it refuses, in one line.
    pub help: &'static str,
}

/// Every guard of every resource, in registry order.
pub fn all() -> Vec<&'static Guard> {
    crate::resources::guards()
}

/// Checks the names given to `--allow`: an unknown one (a misspelling) would otherwise be
/// silently ignored and leave the guard in force, or, worse, make an operator believe an
/// override is in place.
pub fn check_overrides(names: &BTreeSet<String>) -> Result<(), String> {
    let known = all();
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !known.iter().any(|g| g.name == *n))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = known
        .iter()
        .map(|g| format!("  {} ({}): {}", g.name, g.resource, g.help))
        .collect();
    Err(format!(
        "unknown lockout guard{} for --allow: {}; the guards are:\n{}",
        if unknown.len() > 1 { "s" } else { "" },
        unknown.join(", "),
        list.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_known_ones_pass() {
        let names: BTreeSet<&str> = all().iter().map(|g| g.name).collect();
        assert_eq!(names.len(), all().len(), "a guard name is listed twice");
        let given: BTreeSet<String> = ["sshd-no-keyed-login".to_owned()].into();
        assert_eq!(check_overrides(&given), Ok(()));
    }

    #[test]
    fn a_misspelt_guard_is_an_error_listing_the_known_ones() {
        let given: BTreeSet<String> = ["sshd-no-keyed-logins".to_owned()].into();
        let err = check_overrides(&given).expect_err("unknown");
        assert!(err.contains("sshd-no-keyed-logins"), "{err}");
        assert!(err.contains("  sshd-no-keyed-login (sshd): "), "{err}");
        assert!(err.contains("ufw-ssh-port (ufw)"), "{err}");
    }

    /// The README's guard tables (rows that start with a guard name in backticks) list
    /// exactly the guards the code has.
    #[test]
    fn the_readme_lists_every_guard_and_no_other() {
        let readme = include_str!("../../../README.md");
        let documented: BTreeSet<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once("` |").map(|(name, _)| name))
            .filter(|n| {
                crate::resources::Playbook::SECTIONS
                    .iter()
                    .any(|section| n.starts_with(&format!("{section}-")))
            })
            .collect();
        let code: BTreeSet<&str> = all().iter().map(|g| g.name).collect();
        assert_eq!(documented, code, "README guard table and code differ");
    }
}
