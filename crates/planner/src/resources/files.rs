//! `files`: modes, owners and (optionally) content of files, directories and sockets.
//!
//! A recursive entry walks its tree without following symlinks or leaving the filesystem,
//! and skips regular files with more than one hard link: such a file may be the same inode
//! as one outside the tree (`/etc/shadow`), and changing it would change that one too.

mod mode;

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use harden_host::{Host, Kind, Links, Stat, UserDb};
use harden_plan::{Attrs, Change, Detail, Step, Warning};
use serde::{Deserialize, Deserializer};

pub use mode::Mode;

use crate::diagnostic::Invalid;
use crate::facts::{Facts, ModeChange, PlannedAttrs};
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

/// The `files:` section: a list of entries; a later entry for the same path wins.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Files(pub Vec<Entry>);

/// One managed path.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Absolute path.
    pub path: Located<String>,
    /// Mode to set.
    pub mode: Option<Located<Mode>>,
    /// Owner, by name or uid.
    pub owner: Option<Located<Principal>>,
    /// Group, by name or gid.
    pub group: Option<Located<Principal>>,
    /// Apply mode and ownership to everything below a directory too.
    #[serde(default)]
    pub recurse: bool,
    /// What to do when the path does not exist.
    #[serde(default)]
    pub missing: Missing,
    /// Full content of a managed file; the file is created when missing.
    pub content: Option<String>,
    /// Create the path as a directory when it is missing.
    #[serde(default)]
    pub directory: bool,
}

/// What a missing path means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// It is an error (the default): the playbook expects the path to exist.
    #[default]
    Error,
    /// Skip the entry.
    Ignore,
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
                if v.is_empty() || v.contains([':', '/', ' ', '\n']) {
                    return Err(E::custom(format!("invalid user or group name {v:?}")));
                }
                Ok(Principal::Name(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What the probe found at one entry's path.
#[derive(Clone, Debug, Default)]
pub struct EntryLive {
    /// The path itself; `None` when missing.
    pub stat: Option<Stat>,
    /// Current content, read only for entries that manage it.
    pub content: Option<Vec<u8>>,
    /// Everything below it, for recursive entries.
    pub below: Vec<(PathBuf, Stat)>,
    /// Whether its parent is a directory (checked only when the path is missing).
    pub parent_is_dir: bool,
    /// Why writes to this path would be refused, when they would be.
    pub unsafe_path: Option<String>,
}

impl Resource for Files {
    type Live = Vec<EntryLive>;
    const NAME: &'static str = "files";

    fn merge(&mut self, later: Self) {
        for entry in later.0 {
            // A later playbook replaces an earlier one's entry; two in one playbook are an
            // error for `validate` to report.
            self.0.retain(|e| {
                e.path.value != entry.path.value || e.path.at.source == entry.path.at.source
            });
            self.0.push(entry);
        }
    }

    /// The attributes each entry sets, for resources that write the same files.
    async fn publish(section: Option<&Self>, _: &Host, users: &UserDb, facts: &mut Facts) {
        let resolve = |p: &Principal, lookup: &dyn Fn(&str) -> Option<u32>| match p {
            Principal::Id(id) => Some(*id),
            Principal::Name(n) => lookup(n),
        };
        for entry in section.iter().flat_map(|s| &s.0) {
            let mode = entry.mode.clone().map(|m| {
                let change: ModeChange = Arc::new(move |current| m.value.apply(current, false));
                change
            });
            let planned = PlannedAttrs {
                mode,
                uid: entry
                    .owner
                    .as_ref()
                    .and_then(|o| resolve(&o.value, &|n| users.uid(n))),
                gid: entry
                    .group
                    .as_ref()
                    .and_then(|g| resolve(&g.value, &|n| users.gid(n))),
            };
            facts
                .file_attrs
                .insert(PathBuf::from(&entry.path.value), planned);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for entry in &self.0 {
            if let Some(first) = seen.insert(entry.path.value.as_str(), entry.path.at) {
                errors.push(
                    Invalid::new(entry.path.at, format!("path {:?} is listed twice in this playbook (first at line {}); the two entries would undo each other", entry.path.value, first.line))
                        .help("merge the two entries into one"),
                );
            }
            if let Err(why) = check_path(&entry.path) {
                errors.push(
                    Invalid::new(entry.path.at, why)
                        .help("write an absolute, normalised path such as /etc/ssh/sshd_config"),
                );
            }
            if entry.content.is_some() && (entry.recurse || entry.directory) {
                errors.push(Invalid::new(entry.path.at, "`content` manages a regular file; it cannot be combined with `recurse` or `directory`"));
            }
            if entry.content.is_some() && entry.missing == Missing::Ignore {
                errors.push(Invalid::new(entry.path.at, "`missing: ignore` cannot be combined with `content` (a managed file is created when missing)"));
            }
            if entry.mode.is_none()
                && entry.owner.is_none()
                && entry.group.is_none()
                && entry.content.is_none()
                && !entry.directory
            {
                errors.push(Invalid::new(entry.path.at, "nothing to manage: give at least one of mode, owner, group, content, directory"));
            }
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Self::Live, Failure> {
        let mut live = Vec::with_capacity(self.0.len());
        for entry in &self.0 {
            let path = Path::new(&entry.path.value);
            let failed = |e: std::io::Error| Failure::Probe(format!("{}: {e}", path.display()));
            let stat = cx.host.stat(path).map_err(failed)?;
            let mut found = EntryLive {
                stat,
                ..EntryLive::default()
            };
            // Writes never pass through a symlink a user could have planted: say so now,
            // not half-way through an apply.
            if let Err(e) = cx.host.open_parent(path, Links::RootOwned) {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    found.unsafe_path = Some(e.to_string());
                }
            }
            if stat.is_none() {
                let parent = path.parent().unwrap_or(Path::new("/"));
                found.parent_is_dir = matches!(
                    cx.host.stat(parent).map_err(failed)?,
                    Some(s) if s.kind == Kind::Dir
                );
            }
            if entry.content.is_some() && matches!(stat, Some(s) if s.kind == Kind::File) {
                found.content = cx.host.read(path).map_err(failed)?;
            }
            if entry.recurse && matches!(stat, Some(s) if s.kind == Kind::Dir) {
                cx.host
                    .walk(path, |e| {
                        if e.depth > 0 {
                            found.below.push((e.path, e.stat));
                        }
                        Ok(())
                    })
                    .map_err(failed)?;
            }
            live.push(found);
        }
        Ok(live)
    }

    fn diff(&self, live: &Self::Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let mut errors = Vec::new();
        for (entry, found) in self.0.iter().zip(live) {
            match diff_entry(entry, found, cx.users, &mut diff) {
                Ok(()) => {}
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(diff)
        } else {
            Err(Failure::Invalid(errors))
        }
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!(
            "path {path:?} contains the control character {c:?}"
        ));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!(
            "path {path:?} is relative; an absolute path is expected"
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || path.contains("//")
    {
        return Err(format!(
            "path {path:?} is not normalised (no `.`, `..` or `//`)"
        ));
    }
    if p == Path::new("/") {
        return Err("refusing to manage / itself".into());
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(format!("path {path:?} ends with `/`"));
    }
    Ok(())
}

fn resolve(
    who: &Option<Located<Principal>>,
    lookup: impl Fn(&str) -> Option<u32>,
    what: &str,
) -> Result<Option<u32>, Invalid> {
    match who {
        None => Ok(None),
        Some(Located {
            value: Principal::Id(id),
            ..
        }) => Ok(Some(*id)),
        Some(Located {
            value: Principal::Name(name),
            at,
        }) => lookup(name).map(Some).ok_or_else(|| {
            Invalid::new(
                *at,
                format!("unknown {what} {name:?} on the managed system"),
            )
            .help(format!("create the {what} first, or give a numeric id"))
        }),
    }
}

fn diff_entry(
    entry: &Entry,
    found: &EntryLive,
    users: &UserDb,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    let uid = resolve(&entry.owner, |n| users.uid(n), "user");
    let gid = resolve(&entry.group, |n| users.gid(n), "group");
    let (uid, gid) = match (uid, gid) {
        (Ok(u), Ok(g)) => (u, g),
        (u, g) => return Err(u.err().into_iter().chain(g.err()).collect()),
    };
    let path = PathBuf::from(&entry.path.value);
    if let Some(why) = &found.unsafe_path {
        return Err(vec![Invalid::new(entry.path.at, why.clone()).help(
            "a symlink owned by another user could redirect the change; name the real path",
        )]);
    }
    let Some(stat) = found.stat else {
        if (entry.content.is_some() || entry.directory) && !found.parent_is_dir {
            let parent = path
                .parent()
                .unwrap_or(Path::new("/"))
                .display()
                .to_string();
            return Err(vec![Invalid::new(
                entry.path.at,
                format!(
                    "cannot create {}: its parent {parent} is not a directory",
                    path.display()
                ),
            )
            .help(format!(
                "add an entry `{{ path: {parent}, directory: true }}` before this one"
            ))]);
        }
        return create(entry, &path, uid, gid, diff);
    };
    if stat.kind == Kind::Symlink {
        return Err(vec![Invalid::new(
            entry.path.at,
            format!(
                "{} is a symlink; harden never follows symlinks",
                path.display()
            ),
        )
        .help("name the file it points to instead")]);
    }
    let desired = |s: &Stat| Attrs {
        mode: entry
            .mode
            .as_ref()
            .map_or(s.mode, |m| m.apply(s.mode, s.kind == Kind::Dir)),
        uid: uid.unwrap_or(s.uid),
        gid: gid.unwrap_or(s.gid),
    };
    if let Some(content) = &entry.content {
        if stat.kind != Kind::File {
            return Err(vec![Invalid::new(
                entry.path.at,
                format!(
                    "{} exists and is not a regular file; `content` needs one",
                    path.display()
                ),
            )]);
        }
        let attrs = desired(&stat);
        if found.content.as_deref() != Some(content.as_bytes()) {
            let before = found
                .content
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            diff.changes.push(Change {
                resource: Files::NAME.into(),
                target: path.display().to_string(),
                reason: "content differs".into(),
                details: attr_details(&attrs_of(&stat), &attrs, users),
                steps: vec![Step::WriteFile {
                    path,
                    content: content.clone(),
                    attrs,
                    before,
                }],
                on_rollback: Vec::new(),
                rollback_checks: Vec::new(),
            });
            return Ok(());
        }
    }
    set_attrs(&path, &stat, desired(&stat), users, diff);
    let mut hardlinked = 0u64;
    for (child, stat) in &found.below {
        match stat.kind {
            Kind::Symlink => continue,
            Kind::File if stat.nlink > 1 => {
                if desired(stat) != attrs_of(stat) {
                    hardlinked += 1;
                }
                continue;
            }
            _ => set_attrs(child, stat, desired(stat), users, diff),
        }
    }
    if hardlinked > 0 {
        diff.warnings.push(Warning {
            resource: Files::NAME.into(),
            message: format!(
                "skipped {hardlinked} file(s) under {} with more than one hard link: a hard link may be a file outside the tree; list such files by their own path",
                path.display()
            ),
        });
    }
    Ok(())
}

fn create(
    entry: &Entry,
    path: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    let is_dir = entry.directory;
    let default = if is_dir { 0o755 } else { 0o644 };
    let attrs = Attrs {
        mode: entry
            .mode
            .as_ref()
            .map_or(default, |m| m.apply(default, is_dir)),
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
    };
    let step = if let Some(content) = &entry.content {
        Step::WriteFile {
            path: path.to_path_buf(),
            content: content.clone(),
            attrs,
            before: None,
        }
    } else if is_dir {
        Step::CreateDir {
            path: path.to_path_buf(),
            attrs,
        }
    } else if entry.missing == Missing::Ignore {
        return Ok(());
    } else {
        return Err(vec![Invalid::new(entry.path.at, format!("{} does not exist", path.display()))
            .help("add `missing: ignore` to skip it when absent, `content:` to create a file, or `directory: true` to create a directory")]);
    };
    diff.changes.push(Change {
        resource: Files::NAME.into(),
        target: path.display().to_string(),
        reason: if is_dir {
            "directory is missing".into()
        } else {
            "file is missing".into()
        },
        details: vec![Detail {
            name: "mode".into(),
            current: None,
            source: None,
            desired: Some(format!("{:04o}", attrs.mode)),
        }],
        steps: vec![step],
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    });
    Ok(())
}

fn attrs_of(stat: &Stat) -> Attrs {
    Attrs {
        mode: stat.mode,
        uid: stat.uid,
        gid: stat.gid,
    }
}

fn set_attrs(path: &Path, stat: &Stat, to: Attrs, users: &UserDb, diff: &mut Diff) {
    let from = attrs_of(stat);
    if from == to {
        diff.unchanged += 1;
        return;
    }
    let details = attr_details(&from, &to, users);
    let names: Vec<&str> = details.iter().map(|d| d.name.as_str()).collect();
    let reason = match names.as_slice() {
        [one] => format!("{one} differs"),
        many => format!("{} differ", many.join(" and ")),
    };
    diff.changes.push(Change {
        resource: Files::NAME.into(),
        target: path.display().to_string(),
        reason,
        details,
        steps: vec![Step::SetAttrs {
            path: path.to_path_buf(),
            from,
            to,
        }],
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    });
}

fn attr_details(from: &Attrs, to: &Attrs, users: &UserDb) -> Vec<Detail> {
    let mut details = Vec::new();
    let mut detail = |name: &str, current: String, desired: String| {
        if current != desired {
            details.push(Detail {
                name: name.into(),
                current: Some(current),
                source: None,
                desired: Some(desired),
            });
        }
    };
    detail(
        "mode",
        format!("{:04o}", from.mode),
        format!("{:04o}", to.mode),
    );
    let user = |uid: u32| users.user_name(uid).unwrap_or_else(|| uid.to_string());
    let group = |gid: u32| users.group_name(gid).unwrap_or_else(|| gid.to_string());
    detail("owner", user(from.uid), user(to.uid));
    detail("group", group(from.gid), group(to.gid));
    details
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::located::At;

    fn stat(kind: Kind, mode: u32, uid: u32, gid: u32, nlink: u64) -> Stat {
        Stat {
            kind,
            mode,
            uid,
            gid,
            nlink,
            dev: 1,
            ino: 1,
            size: 0,
        }
    }

    fn entry(path: &str) -> Entry {
        Entry {
            path: Located::unplaced(path.into()),
            mode: None,
            owner: None,
            group: None,
            recurse: false,
            missing: Missing::Error,
            content: None,
            directory: false,
        }
    }

    fn users() -> UserDb {
        UserDb::parse(
            false,
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
            "root:x:0:\ndocker:x:998:\n",
        )
    }

    fn run(entry: &Entry, found: &EntryLive) -> Result<Diff, Vec<Invalid>> {
        let mut diff = Diff::default();
        diff_entry(entry, found, &users(), &mut diff).map(|()| diff)
    }

    #[test]
    fn mode_and_group_change_in_one_step() {
        let mut e = entry("/var/run/docker.sock");
        e.mode = Some(Located::unplaced(Mode::Octal(0o660)));
        e.group = Some(Located::unplaced(Principal::Name("docker".into())));
        let found = EntryLive {
            stat: Some(stat(Kind::Socket, 0o666, 0, 0, 1)),
            ..EntryLive::default()
        };
        let diff = run(&e, &found).expect("diff");
        assert_eq!(diff.changes.len(), 1);
        assert_eq!(
            diff.changes[0].steps,
            vec![Step::SetAttrs {
                path: "/var/run/docker.sock".into(),
                from: Attrs {
                    mode: 0o666,
                    uid: 0,
                    gid: 0
                },
                to: Attrs {
                    mode: 0o660,
                    uid: 0,
                    gid: 998
                },
            }]
        );
    }

    #[test]
    fn already_right_is_unchanged() {
        let mut e = entry("/etc/shadow");
        e.mode = Some(Located::unplaced(Mode::Octal(0o640)));
        let found = EntryLive {
            stat: Some(stat(Kind::File, 0o640, 0, 42, 1)),
            ..EntryLive::default()
        };
        let diff = run(&e, &found).expect("diff");
        assert!(diff.changes.is_empty());
        assert_eq!(diff.unchanged, 1);
    }

    #[test]
    fn recursion_skips_symlinks_and_hard_links() {
        let mut e = entry("/srv/www");
        e.recurse = true;
        e.mode = Some(Located::unplaced(
            mode::parse("u=rwX,g=rX,o=").expect("mode"),
        ));
        let found = EntryLive {
            stat: Some(stat(Kind::Dir, 0o755, 0, 0, 2)),
            content: None,
            parent_is_dir: true,
            unsafe_path: None,
            below: vec![
                (
                    "/srv/www/index.html".into(),
                    stat(Kind::File, 0o644, 0, 0, 1),
                ),
                (
                    "/srv/www/shadow-link".into(),
                    stat(Kind::Symlink, 0o777, 0, 0, 1),
                ),
                (
                    "/srv/www/shadow-hard".into(),
                    stat(Kind::File, 0o640, 0, 42, 2),
                ),
            ],
        };
        let diff = run(&e, &found).expect("diff");
        let targets: Vec<&str> = diff.changes.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, vec!["/srv/www", "/srv/www/index.html"]);
        assert_eq!(
            diff.warnings.len(),
            0,
            "the hard link already has the desired mode"
        );
        let found = EntryLive {
            below: vec![(
                "/srv/www/shadow-hard".into(),
                stat(Kind::File, 0o644, 0, 42, 2),
            )],
            ..found
        };
        let diff = run(&e, &found).expect("diff");
        assert_eq!(diff.warnings.len(), 1);
    }

    #[test]
    fn unknown_owner_is_located() {
        let mut e = entry("/opt/app/.env");
        let at = At {
            source: 0,
            line: 3,
            column: 12,
        };
        e.owner = Some(Located {
            value: Principal::Name("nobody-such".into()),
            at,
        });
        let found = EntryLive {
            stat: Some(stat(Kind::File, 0o600, 0, 0, 1)),
            ..EntryLive::default()
        };
        let errors = run(&e, &found).expect_err("unknown user");
        assert_eq!(errors[0].at, at);
        assert!(errors[0].message.contains("unknown user \"nobody-such\""));
    }

    #[test]
    fn missing_paths_follow_the_missing_policy() {
        let e = entry("/opt/app/.env");
        assert!(run(&e, &EntryLive::default()).is_err());
        let mut e = entry("/opt/app/.env");
        e.missing = Missing::Ignore;
        assert!(run(&e, &EntryLive::default())
            .expect("ignored")
            .changes
            .is_empty());
        let mut e = entry("/etc/cron.d/backup");
        e.content = Some("0 3 * * * root /usr/local/bin/backup\n".into());
        e.mode = Some(Located::unplaced(Mode::Octal(0o644)));
        let diff = run(
            &e,
            &EntryLive {
                parent_is_dir: true,
                ..EntryLive::default()
            },
        )
        .expect("created");
        assert!(
            run(&e, &EntryLive::default()).is_err(),
            "no parent directory"
        );
        assert!(matches!(
            diff.changes[0].steps[0],
            Step::WriteFile { before: None, .. }
        ));
    }

    #[test]
    fn a_symlink_at_an_explicit_path_is_refused() {
        let mut e = entry("/etc/link");
        e.mode = Some(Located::unplaced(Mode::Octal(0o600)));
        let found = EntryLive {
            stat: Some(stat(Kind::Symlink, 0o777, 0, 0, 1)),
            ..EntryLive::default()
        };
        assert!(run(&e, &found).is_err());
    }

    #[test]
    fn paths_must_be_absolute_and_normal() {
        assert!(check_path("/etc/shadow").is_ok());
        assert!(check_path("etc/shadow").is_err());
        assert!(check_path("/etc/../shadow").is_err());
        assert!(check_path("/etc//shadow").is_err());
        assert!(check_path("/").is_err());
    }
}
