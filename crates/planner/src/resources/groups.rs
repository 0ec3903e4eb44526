//! `groups`: groups that must exist, created with `groupadd` and an id chosen at plan time.
//!
//! A group the system has is left as it is (its gid is never changed: files carry it); one it
//! lacks gets the gid the playbook gives, or the one `groupadd` would choose, and that gid is
//! published so that `users` and `files` can use the group in the same apply.

use std::collections::BTreeMap;
use std::path::Path;

use harden_host::{Host, UserDb};
use harden_plan::{Change, Detail, Step};
use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::facts::accounts::{self, Id, IdRanges, Name, PlannedGroup};
use crate::facts::Facts;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps::groupadd;

/// The `groups:` section: groups by name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Groups(
    #[serde(deserialize_with = "accounts::nullable_values")] pub BTreeMap<Name, Group>,
);

/// One group.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Its gid; chosen as `groupadd` would when absent.
    pub gid: Option<Located<Id>>,
    /// A system group: its gid comes from the system range.
    #[serde(default)]
    pub system: bool,
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Groups {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Groups".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        accounts::map_schema::<Group>(generator, "Groups that must exist, by name.")
    }
}

/// Where the id ranges are.
const LOGIN_DEFS: &str = "/etc/login.defs";

/// Whether the managed system has `groupadd`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Live {
    /// `groupadd` is installed.
    pub groupadd: bool,
}

impl Resource for Groups {
    type Live = Live;
    const NAME: &'static str = "groups";

    fn merge(&mut self, later: Self) {
        for (name, group) in later.0 {
            self.0.remove(name.value.as_str());
            self.0.insert(name, group);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }

    /// The id ranges of the system (for `users` too), and the gid each missing group gets.
    async fn publish(section: Option<&Self>, host: &Host, users: &UserDb, facts: &mut Facts) {
        let defs = host
            .read_to_string(Path::new(LOGIN_DEFS))
            .ok()
            .flatten()
            .unwrap_or_default();
        facts.accounts.ranges = IdRanges::parse(&defs);
        for (name, group) in section.iter().flat_map(|s| &s.0) {
            if users.gid(&name.value).is_some() {
                continue;
            }
            let planned = &facts.accounts;
            let taken = planned.gids_taken(users);
            let gid = match &group.gid {
                Some(gid) => Some(gid.value.0),
                None => accounts::next_free(
                    planned.ranges.groups(group.system),
                    group.system,
                    &taken,
                    |id| users.group_name(id).is_none(),
                ),
            };
            if let Some(gid) = gid {
                facts.accounts.groups.insert(
                    name.value.clone(),
                    PlannedGroup {
                        gid,
                        system: group.system,
                        private_of: None,
                    },
                );
            }
        }
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        Ok(Live {
            groupadd: cx.host.which("groupadd").is_some(),
        })
    }

    fn diff(&self, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let mut errors = Vec::new();
        for (name, group) in &self.0 {
            match diff_group(name, group, cx) {
                Ok(Some(change)) => diff.changes.push(change),
                Ok(None) => diff.unchanged += 1,
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(Failure::Invalid(errors));
        }
        if !diff.changes.is_empty() && !live.groupadd {
            return Err(Failure::Unusable(
                "groupadd is not installed on the managed system (Debian's `passwd` package): install it first".into(),
            ));
        }
        Ok(diff)
    }
}

/// The change that creates `name`, `None` when it exists as asked, or why it cannot be.
fn diff_group(name: &Name, group: &Group, cx: &DiffContext<'_>) -> Result<Option<Change>, Invalid> {
    if let Some(gid) = cx.users.gid(&name.value) {
        return match &group.gid {
            Some(want) if want.value.0 != gid => Err(Invalid::new(
                want.at,
                format!("group {name} exists with gid {gid}, not {}", want.value.0),
            )
            .help("harden never renumbers a group (files carry its gid); drop `gid:` or renumber it by hand")),
            _ => Ok(None),
        };
    }
    let Some(planned) = cx.facts.accounts.groups.get(&name.value) else {
        return Err(Invalid::new(
            name.at,
            format!("no free gid left for group {name} in the range of /etc/login.defs"),
        )
        .help("give it a `gid:`"));
    };
    if let Some(want) = &group.gid {
        if let Some(other) = cx.users.group_name(want.value.0) {
            return Err(Invalid::new(
                want.at,
                format!("gid {} is already group {other}'s", want.value.0),
            )
            .help("choose a free gid, or leave `gid:` out for one to be chosen"));
        }
    }
    Ok(Some(Change {
        resource: Groups::NAME.into(),
        target: name.value.clone(),
        reason: "group is missing".into(),
        details: vec![Detail {
            name: "gid".into(),
            current: None,
            source: None,
            desired: Some(planned.gid.to_string()),
        }],
        steps: vec![Step::Run(groupadd(
            &name.value,
            planned.gid,
            planned.system,
        ))],
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::testing;

    fn db() -> UserDb {
        UserDb::parse(
            false,
            "root:x:0:0::/root:/bin/sh\n",
            "root:x:0:\nsystemd-journal:x:999:\nstaff:x:50:\nalice:x:1000:\n",
        )
    }

    fn plan(yaml: &str) -> Result<Diff, Failure> {
        testing::diff(yaml, |p| p.groups, &Live { groupadd: true }, &db(), &[])
    }

    fn commands(diff: &Diff) -> Vec<String> {
        diff.changes
            .iter()
            .flat_map(|c| &c.steps)
            .filter_map(|s| match s {
                Step::Run(c) => Some(c.display()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn missing_groups_get_the_id_groupadd_would_choose() {
        let diff = plan("groups:\n  docker: { system: true }\n  app:\n  web: { gid: 4000 }\n")
            .expect("diff");
        assert_eq!(
            commands(&diff),
            vec![
                "groupadd -g 1001 app",
                "groupadd -g 998 -r docker",
                "groupadd -g 4000 web"
            ]
        );
        let Step::Run(cmd) = &diff.changes[0].steps[0] else {
            panic!("a command")
        };
        assert!(cmd.touches.contains(&PathBuf::from("/etc/gshadow")));
        assert!(cmd.touches.contains(&PathBuf::from("/etc/group-")));
    }

    #[test]
    fn an_existing_group_is_unchanged_and_never_renumbered() {
        let diff = plan("groups:\n  staff: {}\n").expect("diff");
        assert!(diff.changes.is_empty());
        assert_eq!(diff.unchanged, 1);
        let Err(Failure::Invalid(errors)) = plan("groups:\n  staff: { gid: 51 }\n") else {
            panic!("a renumbering is refused")
        };
        assert!(
            errors[0].message.contains("exists with gid 50"),
            "{errors:?}"
        );
        assert_eq!((errors[0].at.line, errors[0].at.column), (2, 17));
    }

    #[test]
    fn a_gid_another_group_has_is_refused() {
        let Err(Failure::Invalid(errors)) = plan("groups:\n  web: { gid: 1000 }\n") else {
            panic!("refused")
        };
        assert!(
            errors[0].message.contains("already group alice's"),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_names_and_ids_are_located_errors() {
        for (yaml, needle) in [
            ("groups:\n  \"a:b\": {}\n", "invalid name"),
            ("groups:\n  \"123\": {}\n", "all-digit"),
            ("groups:\n  web: { gid: -1 }\n", "negative"),
            ("groups:\n  web: { gid: 4294967295 }\n", "out of range"),
            ("groups:\n  web: { colour: red }\n", "unknown field"),
        ] {
            let err = testing::parse(yaml).expect_err(yaml);
            assert!(err.contains("pb.yaml:2:"), "{yaml}: {err}");
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }
}
