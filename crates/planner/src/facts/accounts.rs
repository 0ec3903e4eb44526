//! Groups and users a plan creates: shadow's rules for their names and ids, the id each gets
//! at plan time, and the one lookup every resource resolves owners through.
//!
//! The plan is exact: an account it creates gets its id when the plan is made (as `useradd`
//! would choose it, from the ranges of `/etc/login.defs`) and the step passes it explicitly
//! (`useradd -u`, `groupadd -g`). So the plan shows the id, and `files` can own a path by the
//! new account in the same apply.

use std::collections::BTreeMap;
use std::fmt;

use harden_host::UserDb;
use serde::{Deserialize, Deserializer};

use crate::located::{At, Located};

/// The highest id an account may have: `(uid_t) -1` means "no change" to chown.
pub(crate) const MAX_ID: u32 = u32::MAX - 1;

/// The longest account name harden accepts (utmp's and most tools' limit).
pub(crate) const MAX_NAME: usize = 32;

/// Checks an account or group name against shadow's rules (`is_valid_user_name`):
/// `[A-Za-z0-9_.][A-Za-z0-9_.-]*` with an optional final `$`, not all digits, not `.` or `..`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let first_ok = body
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "_.".contains(c));
    let rest_ok = body
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok {
        return Err(format!(
            "invalid name {name:?}: use letters, digits, `_`, `.` and `-` (not first), as shadow's tools require"
        ));
    }
    if body.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "invalid name {name:?}: an all-digit name would read as an id"
        ));
    }
    if body == "." || body == ".." {
        return Err(format!("invalid name {name:?}"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "name {name:?} is longer than {MAX_NAME} characters"
        ));
    }
    Ok(())
}

/// A group or user name as a playbook key or value: checked on reading, and located.
#[derive(Clone, Debug)]
pub struct Name {
    /// The name.
    pub value: String,
    /// Where it was written.
    pub at: At,
}

impl Name {
    /// A name with no place (tests).
    pub fn unplaced(value: &str) -> Self {
        Name {
            value: value.to_owned(),
            at: At::default(),
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let located = Located::<String>::deserialize(deserializer)?;
        check_name(&located.value).map_err(serde::de::Error::custom)?;
        Ok(Name {
            value: located.value,
            at: located.at,
        })
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// A uid or gid a playbook gives: 0 to [`MAX_ID`], checked on reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Id(pub u32);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a numeric id from 0 to {MAX_ID}")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|id| *id <= MAX_ID)
                    .map(Id)
                    .ok_or_else(|| E::custom(format!("id {v} is out of range (0 to {MAX_ID})")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Id, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "id {v} is negative; ids run from 0 to {MAX_ID}"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Name, {
    "description": "A user or group name as shadow's tools accept it.",
    "type": "string",
    "pattern": "^[A-Za-z0-9_.][A-Za-z0-9_.-]*\\$?$",
    "maxLength": 32
});

#[cfg(feature = "schema")]
crate::schema::literal!(Id, {
    "description": "A numeric uid or gid.",
    "type": "integer",
    "minimum": 0,
    "maximum": 4294967294u32
});

/// The schema of a map of names to `V`, whose values may be left empty.
#[cfg(feature = "schema")]
pub(crate) fn map_schema<V: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
    description: &str,
) -> schemars::Schema {
    let value = generator.subschema_for::<V>();
    let name = generator.subschema_for::<Name>();
    schemars::json_schema!({
        "description": description,
        "type": "object",
        "propertyNames": name,
        "additionalProperties": { "anyOf": [{ "type": "null" }, value] }
    })
}

/// A map whose values may be left empty (`docker:` reads as `docker: {}`).
pub(crate) fn nullable_values<'de, D, V>(deserializer: D) -> Result<BTreeMap<Name, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de> + Default,
{
    let raw: BTreeMap<Name, Option<V>> = BTreeMap::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// An inclusive id range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// Lowest id.
    pub min: u32,
    /// Highest id.
    pub max: u32,
}

/// The id ranges of `/etc/login.defs`, with shadow's defaults for what it does not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdRanges {
    /// `UID_MIN`..`UID_MAX`.
    pub uid: Range,
    /// `SYS_UID_MIN`..`SYS_UID_MAX`.
    pub sys_uid: Range,
    /// `GID_MIN`..`GID_MAX`.
    pub gid: Range,
    /// `SYS_GID_MIN`..`SYS_GID_MAX`.
    pub sys_gid: Range,
}

impl Default for IdRanges {
    fn default() -> Self {
        IdRanges::parse("")
    }
}

impl IdRanges {
    /// The ranges `login.defs` text sets; shadow's defaults otherwise (1000-60000 for
    /// accounts, 101 up to the start of that range for system ones).
    pub(crate) fn parse(login_defs: &str) -> Self {
        let get = |key: &str| -> Option<u32> {
            login_defs.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(key))
                    .then(|| words.next()?.parse().ok())
                    .flatten()
            })
        };
        let uid = Range {
            min: get("UID_MIN").unwrap_or(1000),
            max: get("UID_MAX").unwrap_or(60000),
        };
        let gid = Range {
            min: get("GID_MIN").unwrap_or(1000),
            max: get("GID_MAX").unwrap_or(60000),
        };
        IdRanges {
            sys_uid: Range {
                min: get("SYS_UID_MIN").unwrap_or(101),
                max: get("SYS_UID_MAX").unwrap_or(uid.min.saturating_sub(1)),
            },
            sys_gid: Range {
                min: get("SYS_GID_MIN").unwrap_or(101),
                max: get("SYS_GID_MAX").unwrap_or(gid.min.saturating_sub(1)),
            },
            uid,
            gid,
        }
    }

    /// The range a new user draws from.
    pub(crate) fn users(&self, system: bool) -> Range {
        if system {
            self.sys_uid
        } else {
            self.uid
        }
    }

    /// The range a new group draws from.
    pub(crate) fn groups(&self, system: bool) -> Range {
        if system {
            self.sys_gid
        } else {
            self.gid
        }
    }
}

/// The id shadow's `find_new_uid`/`find_new_gid` would choose in `range`: for an account,
/// one above the highest in use (else the lowest free); for a system account, one below the
/// lowest in use (else the highest free). `taken` are the ids in use, `free` a last check
/// (the C library's lookup on the live system); `None` when the range is full.
pub(crate) fn next_free(
    range: Range,
    system: bool,
    taken: &[u32],
    free: impl Fn(u32) -> bool,
) -> Option<u32> {
    let in_range: Vec<u32> = taken
        .iter()
        .copied()
        .filter(|id| (range.min..=range.max).contains(id))
        .collect();
    let ok = |id: u32| !taken.contains(&id) && free(id);
    let first = if system {
        match in_range.iter().min() {
            None => Some(range.max),
            Some(&low) => low.checked_sub(1).filter(|id| *id >= range.min),
        }
    } else {
        match in_range.iter().max() {
            None => Some(range.min),
            Some(&high) => high.checked_add(1).filter(|id| *id <= range.max),
        }
    };
    if let Some(id) = first.filter(|id| ok(*id)) {
        return Some(id);
    }
    if system {
        (range.min..=range.max).rev().find(|id| ok(*id))
    } else {
        (range.min..=range.max).find(|id| ok(*id))
    }
}

/// A group the plan creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlannedGroup {
    /// Its gid.
    pub gid: u32,
    /// Created as a system group.
    pub system: bool,
    /// The user whose private primary group it is (created with that user), if any.
    pub private_of: Option<String>,
}

/// A user the plan creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlannedUser {
    /// Its uid.
    pub uid: u32,
    /// Its primary group's gid.
    pub gid: u32,
}

/// What the `groups` and `users` sections tell the others.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlannedAccounts {
    /// The managed system's id ranges.
    pub ranges: IdRanges,
    /// Groups the plan creates, by name.
    pub groups: BTreeMap<String, PlannedGroup>,
    /// Users the plan creates, by name.
    pub users: BTreeMap<String, PlannedUser>,
}

impl PlannedAccounts {
    /// Every gid in use on the system or chosen for this plan.
    pub(crate) fn gids_taken(&self, users: &UserDb) -> Vec<u32> {
        let mut ids: Vec<u32> = users.groups().iter().map(|g| g.gid).collect();
        ids.extend(self.groups.values().map(|g| g.gid));
        ids
    }

    /// Every uid in use on the system or chosen for this plan.
    pub(crate) fn uids_taken(&self, users: &UserDb) -> Vec<u32> {
        let mut ids: Vec<u32> = users.accounts().iter().map(|a| a.uid).collect();
        ids.extend(self.users.values().map(|u| u.uid));
        ids
    }
}

/// Names and ids of the managed system's accounts and of those the plan creates. Every
/// resource that resolves an owner goes through it: the system's database first, then the
/// plan's new accounts.
#[derive(Clone, Copy)]
pub(crate) struct Accounts<'a> {
    users: &'a UserDb,
    planned: Option<&'a PlannedAccounts>,
}

impl<'a> Accounts<'a> {
    /// The system's accounts and the plan's new ones.
    pub(crate) fn new(users: &'a UserDb, planned: &'a PlannedAccounts) -> Self {
        Accounts {
            users,
            planned: Some(planned),
        }
    }

    /// The system's accounts only (the plan creates none).
    #[cfg(test)]
    pub(crate) fn existing(users: &'a UserDb) -> Self {
        Accounts {
            users,
            planned: None,
        }
    }

    /// The uid of a user name.
    pub(crate) fn uid(&self, name: &str) -> Option<u32> {
        self.users
            .uid(name)
            .or_else(|| Some(self.planned?.users.get(name)?.uid))
    }

    /// The gid of a group name.
    pub(crate) fn gid(&self, name: &str) -> Option<u32> {
        self.users
            .gid(name)
            .or_else(|| Some(self.planned?.groups.get(name)?.gid))
    }

    /// The name of a uid, for display.
    pub(crate) fn user_name(&self, uid: u32) -> Option<String> {
        self.users.user_name(uid).or_else(|| {
            let (name, _) = self.planned?.users.iter().find(|(_, u)| u.uid == uid)?;
            Some(name.clone())
        })
    }

    /// The name of a gid, for display.
    pub(crate) fn group_name(&self, gid: u32) -> Option<String> {
        self.users.group_name(gid).or_else(|| {
            let (name, _) = self.planned?.groups.iter().find(|(_, g)| g.gid == gid)?;
            Some(name.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_shadows_rules() {
        for good in ["docker", "mist-user", "_apt", "a.b", "Debian-exim", "host$"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-x", "a b", "a:b", "a/b", "123", ".", "..", "é", "a,b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(33)).is_err());
    }

    #[test]
    fn ranges_come_from_login_defs_with_shadows_defaults() {
        let r = IdRanges::parse("# c\nUID_MIN\t\t 2000\nUID_MAX 3000\nSYS_GID_MIN 200\n");
        assert_eq!(
            r.uid,
            Range {
                min: 2000,
                max: 3000
            }
        );
        assert_eq!(
            r.sys_uid,
            Range {
                min: 101,
                max: 1999
            }
        );
        assert_eq!(
            r.gid,
            Range {
                min: 1000,
                max: 60000
            }
        );
        assert_eq!(r.sys_gid, Range { min: 200, max: 999 });
    }

    #[test]
    fn ids_are_chosen_as_shadow_chooses_them() {
        let users = Range {
            min: 1000,
            max: 60000,
        };
        let system = Range { min: 101, max: 999 };
        let always = |_: u32| true;
        assert_eq!(next_free(users, false, &[0, 65534], always), Some(1000));
        assert_eq!(next_free(users, false, &[1000, 1005], always), Some(1006));
        assert_eq!(next_free(users, false, &[1000, 60000], always), Some(1001));
        assert_eq!(next_free(system, true, &[0, 100], always), Some(999));
        assert_eq!(next_free(system, true, &[998, 997, 102], always), Some(101));
        assert_eq!(next_free(system, true, &[101, 999], always), Some(998));
        assert_eq!(next_free(system, true, &[], |id| id != 999), Some(998));
        let full: Vec<u32> = (101..=999).collect();
        assert_eq!(next_free(system, true, &full, always), None);
    }

    #[test]
    fn owners_resolve_on_the_system_first_then_in_the_plan() {
        let db = UserDb::parse(false, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
        let mut planned = PlannedAccounts::default();
        planned
            .users
            .insert("mist".into(), PlannedUser { uid: 999, gid: 998 });
        planned.groups.insert(
            "docker".into(),
            PlannedGroup {
                gid: 998,
                system: true,
                private_of: None,
            },
        );
        let accounts = Accounts::new(&db, &planned);
        assert_eq!(accounts.uid("root"), Some(0));
        assert_eq!(accounts.uid("mist"), Some(999));
        assert_eq!(accounts.gid("docker"), Some(998));
        assert_eq!(accounts.user_name(999).as_deref(), Some("mist"));
        assert_eq!(accounts.group_name(998).as_deref(), Some("docker"));
        assert_eq!(accounts.uid("ghost"), None);
        assert_eq!(Accounts::existing(&db).uid("mist"), None);
    }
}

/// A user or group, by name or by number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A numeric id.
    Id(u32),
    /// A name to look up in the managed system's database.
    Name(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Id(id) => write!(f, "{id}"),
            Principal::Name(name) => f.write_str(name),
        }
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Principal, {
    "description": "A user or group name, or a numeric id.",
    "anyOf": [
        { "type": "string", "minLength": 1 },
        { "type": "integer", "minimum": 0, "maximum": 4294967295u32 }
    ]
});

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Principal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user or group name, or a numeric id")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Principal, E> {
                u32::try_from(v)
                    .map(Principal::Id)
                    .map_err(|_| E::custom(format!("id {v} is out of range")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Principal, E> {
                u32::try_from(v)
                    .map(Principal::Id)
                    .map_err(|_| E::custom(format!("id {v} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Principal, E> {
                if let Ok(id) = v.parse::<u32>() {
                    return Ok(Principal::Id(id));
                }
                if v.is_empty()
                    || v.contains(|c: char| {
                        c == ':' || c == '/' || c.is_whitespace() || c.is_control()
                    })
                {
                    return Err(E::custom(format!("invalid user or group name {v:?}")));
                }
                Ok(Principal::Name(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
