//! `files`: modes, owners and (optionally) content of files, directories and sockets.
//!
//! A recursive entry walks its tree without following symlinks or leaving the filesystem,
//! and skips regular files with more than one hard link: such a file may be the same inode
//! as one outside the tree (`/etc/shadow`), and changing it would change that one too.

mod mode;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use harden_host::{Host, Kind, Links, Stat, UserDb};
use harden_plan::{
    Attrs, Change, Detail, Step, TreeExample, TreeFound, TreeKind, TreeRule, TreeSkip, TreeStep,
    Warning,
};
use serde::Deserialize;

pub use mode::Mode;

pub use crate::facts::accounts::Principal;

use crate::diagnostic::Invalid;
use crate::facts::accounts::Accounts;
use crate::facts::{Facts, ModeChange, PlannedAttrs};
use crate::located::{At, Located};
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
    /// Make sure the path exists without managing its content: `file` creates an empty
    /// file when it is missing and never truncates one; `directory` is `directory: true`.
    pub ensure: Option<Located<Ensure>>,
    /// Create missing parent directories too (mode 0755, owned by root), for an entry that
    /// creates its path.
    #[serde(default)]
    pub parents: bool,
}

/// What kind of path an entry makes sure exists.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensure {
    /// A regular file (empty when created).
    File,
    /// A directory.
    Directory,
}

impl Entry {
    /// The directory this entry creates when it is missing.
    fn wants_dir(&self) -> bool {
        self.directory
            || self
                .ensure
                .as_ref()
                .is_some_and(|e| e.value == Ensure::Directory)
    }

    /// The empty file this entry creates when it is missing.
    fn wants_empty_file(&self) -> bool {
        self.ensure
            .as_ref()
            .is_some_and(|e| e.value == Ensure::File)
    }

    /// True when a missing path is created rather than reported.
    fn creates(&self) -> bool {
        self.content.is_some() || self.wants_dir() || self.wants_empty_file()
    }
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

/// What the probe found at one entry's path.
#[derive(Clone, Debug, Default)]
pub struct EntryLive {
    /// The path itself; `None` when missing.
    pub stat: Option<Stat>,
    /// Current content, read only for entries that manage it.
    pub content: Option<Vec<u8>>,
    /// What is below it, for recursive entries: counts, never the entries themselves.
    pub tree: Option<TreeLive>,
    /// Whether its nearest existing ancestor is a directory (checked only when the path is
    /// missing; the parent itself unless the entry creates parents).
    pub parent_is_dir: bool,
    /// Ancestors that do not exist, outermost first (only for entries with `parents`).
    pub missing_parents: Vec<PathBuf>,
    /// Why writes to this path would be refused, when they would be.
    pub unsafe_path: Option<String>,
}

/// What a recursive entry's walk found below its path, in memory bounded by the number of
/// distinct kinds and attributes met, not by the number of entries.
#[derive(Clone, Debug, Default)]
pub struct TreeLive {
    /// Entries walked (those deeper entries manage not counted).
    pub entries: u64,
    /// The walk's digest of every entry, for a saved plan to check.
    pub digest: String,
    /// How many entries have each kind and attributes, with the first few paths of each.
    pub found: HashMap<TreeFound, Bucket>,
}

/// The entries of a tree that share a kind and attributes.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// How many.
    pub count: u64,
    /// The first few of them, for the plan's examples.
    pub examples: Vec<PathBuf>,
}

/// Example paths kept per bucket, and buckets that keep any: enough for a plan to show a
/// few of each kind of change, however many entries and attributes the tree has.
const EXAMPLES_PER_BUCKET: usize = 2;
const BUCKETS_WITH_EXAMPLES: usize = 256;

impl TreeLive {
    /// Counts one entry.
    fn add(&mut self, found: TreeFound, path: &Path) {
        let with_examples = self.found.len() < BUCKETS_WITH_EXAMPLES;
        let bucket = self.found.entry(found).or_default();
        bucket.count += 1;
        if with_examples && bucket.examples.len() < EXAMPLES_PER_BUCKET {
            bucket.examples.push(path.to_path_buf());
        }
    }
}

impl harden_host::TreeVisitor for TreeLive {
    fn fork(&self) -> Self {
        TreeLive::default()
    }

    /// Adds the counts of a later part of the walk, keeping the examples met first; its
    /// new buckets are taken in a fixed order, so the plan does not depend on the threads.
    fn merge(&mut self, later: Self) {
        let mut buckets: Vec<(TreeFound, Bucket)> = later.found.into_iter().collect();
        buckets.sort_by_key(|(f, _)| *f);
        for (found, mut more) in buckets {
            let with_examples = self.found.len() < BUCKETS_WITH_EXAMPLES;
            let bucket = self.found.entry(found).or_insert_with(|| {
                if !with_examples {
                    more.examples.clear();
                }
                Bucket::default()
            });
            bucket.count += more.count;
            let room = EXAMPLES_PER_BUCKET.saturating_sub(bucket.examples.len());
            bucket.examples.extend(more.examples.into_iter().take(room));
        }
    }

    fn entry(&mut self, e: &harden_host::TreeEntry<'_>) -> std::io::Result<()> {
        self.add(e.found, e.path);
        Ok(())
    }
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
        let accounts = facts.accounts(users);
        let resolve = |p: &Principal, lookup: &dyn Fn(&str) -> Option<u32>| match p {
            Principal::Id(id) => Some(*id),
            Principal::Name(n) => lookup(n),
        };
        let mut planned = Vec::new();
        let mut created = Vec::new();
        for entry in section.iter().flat_map(|s| &s.0) {
            let mode = entry.mode.clone().map(|m| {
                let change: ModeChange = Arc::new(move |current| m.value.apply(current, false));
                change
            });
            let attrs = PlannedAttrs {
                mode,
                uid: entry
                    .owner
                    .as_ref()
                    .and_then(|o| resolve(&o.value, &|n| accounts.uid(n))),
                gid: entry
                    .group
                    .as_ref()
                    .and_then(|g| resolve(&g.value, &|n| accounts.gid(n))),
            };
            planned.push((PathBuf::from(&entry.path.value), attrs));
            if entry.creates() {
                created.push(PathBuf::from(&entry.path.value));
            }
        }
        facts.file_attrs.extend(planned);
        facts.created_paths.extend(created);
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
            errors.extend(check_creation(entry));
            if entry.mode.is_none()
                && entry.owner.is_none()
                && entry.group.is_none()
                && !entry.creates()
            {
                errors.push(Invalid::new(entry.path.at, "nothing to manage: give at least one of mode, owner, group, content, directory, ensure"));
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
                let mut parent = path.parent().unwrap_or(Path::new("/"));
                let mut parent_stat = cx.host.stat(parent).map_err(failed)?;
                while entry.parents && parent_stat.is_none() {
                    found.missing_parents.insert(0, parent.to_path_buf());
                    parent = parent.parent().unwrap_or(Path::new("/"));
                    parent_stat = cx.host.stat(parent).map_err(failed)?;
                }
                found.parent_is_dir = matches!(parent_stat, Some(s) if s.kind == Kind::Dir);
            }
            if entry.content.is_some() && matches!(stat, Some(s) if s.kind == Kind::File) {
                found.content = cx.host.read(path).map_err(failed)?;
            }
            if entry.recurse && matches!(stat, Some(s) if s.kind == Kind::Dir) {
                let until = until_change(entry, cx);
                let skip = Others::new(&self.0).skips(path);
                found.tree =
                    Some(probe_tree(cx.host, path, &skip, until.as_ref()).map_err(failed)?);
            }
            live.push(found);
        }
        Ok(live)
    }

    fn diff(&self, live: &Self::Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let mut errors = Vec::new();
        let mut others = Others::new(&self.0);
        let accounts = cx.facts.accounts(cx.users);
        for (entry, found) in self.0.iter().zip(live) {
            match diff_entry(entry, found, &accounts, &mut others, &mut diff) {
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

/// What a recursive entry does to the entries below its path, with its owner and group
/// resolved to `ids`.
fn tree_rule(entry: &Entry, ids: (Option<u32>, Option<u32>)) -> TreeRule {
    TreeRule {
        mode: entry.mode.as_ref().map(|m| m.value.rule()),
        uid: ids.0,
        gid: ids.1,
    }
}

/// The rule a tree's walk may stop at, when the plan is only to tell whether anything
/// would change; `None` when the walk goes through (an owner or group the diff reports as
/// unknown, for one).
fn until_change(entry: &Entry, cx: &Context<'_>) -> Option<TreeRule> {
    if cx.probing != crate::Probing::UntilChange {
        return None;
    }
    let accounts = cx.facts.accounts(cx.users);
    let uid = resolve(&entry.owner, |n| accounts.uid(n), "user").ok()?;
    let gid = resolve(&entry.group, |n| accounts.gid(n), "group").ok()?;
    Some(tree_rule(entry, (uid, gid)))
}

/// Walks the tree below `root`, keeping counts of what it finds; with `until`, only until
/// the first entry that rule would change (the counts are then cut short, and the digest
/// empty).
fn probe_tree(
    host: &Host,
    root: &Path,
    skip: &[TreeSkip],
    until: Option<&TreeRule>,
) -> std::io::Result<TreeLive> {
    let Some(rule) = until else {
        let mut tree = TreeLive::default();
        let summary = host.walk_tree(root, Links::Any, skip, &mut tree)?;
        tree.entries = summary.entries;
        tree.digest = summary.digest;
        return Ok(tree);
    };
    let mut until = UntilChange {
        tree: TreeLive::default(),
        rule,
    };
    match host.walk_tree(root, Links::Any, skip, &mut until) {
        Ok(summary) => {
            until.tree.entries = summary.entries;
            until.tree.digest = summary.digest;
        }
        Err(e) if e.get_ref().is_some_and(|e| e.is::<ChangeFound>()) => {}
        Err(e) => return Err(e),
    }
    Ok(until.tree)
}

/// A tree's walk that stops at the first entry `rule` changes.
struct UntilChange<'r> {
    tree: TreeLive,
    rule: &'r TreeRule,
}

/// How [`UntilChange`] stops the walk.
#[derive(Debug, thiserror::Error)]
#[error("an entry that would change was found")]
struct ChangeFound;

impl harden_host::TreeVisitor for UntilChange<'_> {
    fn fork(&self) -> Self {
        UntilChange {
            tree: TreeLive::default(),
            rule: self.rule,
        }
    }

    fn merge(&mut self, later: Self) {
        self.tree.merge(later.tree);
    }

    fn entry(&mut self, e: &harden_host::TreeEntry<'_>) -> std::io::Result<()> {
        self.tree.add(e.found, e.path);
        if self.rule.target(&e.found).is_some() {
            return Err(std::io::Error::other(ChangeFound));
        }
        Ok(())
    }
}

/// The combinations of `ensure`, `parents` and the other keys that contradict each other.
fn check_creation(entry: &Entry) -> Vec<Invalid> {
    let mut errors = Vec::new();
    if let Some(ensure) = &entry.ensure {
        let clash = match ensure.value {
            Ensure::File if entry.content.is_some() => {
                Some("`ensure: file` creates an empty file; `content` already creates the file")
            }
            Ensure::File if entry.directory || entry.recurse => {
                Some("`ensure: file` cannot be combined with `directory` or `recurse`")
            }
            Ensure::Directory if entry.content.is_some() => {
                Some("`ensure: directory` cannot be combined with `content`")
            }
            _ if entry.missing == Missing::Ignore => {
                Some("`missing: ignore` cannot be combined with `ensure` (the path is created when missing)")
            }
            _ => None,
        };
        errors.extend(clash.map(|why| Invalid::new(ensure.at, why)));
    }
    if entry.parents && !entry.creates() {
        errors.push(
            Invalid::new(
                entry.path.at,
                "`parents: true` creates the parents of a path the entry creates",
            )
            .help("add `ensure: file`, `ensure: directory` or `content`"),
        );
    }
    errors
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
            .help(format!("add it under `{what}s:` to create it in the same apply, create it first, or give a numeric id"))
        }),
    }
}

/// What the other entries of a section do to the paths an entry meets.
#[derive(Default)]
struct Others {
    /// Directories earlier entries create: a later entry may create a path inside one.
    created: BTreeSet<PathBuf>,
    /// Missing paths earlier entries skip (`missing: ignore`), and where each is listed.
    skipped: BTreeMap<PathBuf, At>,
    /// Every entry's path, and whether it recurses.
    claims: Vec<(PathBuf, bool)>,
}

impl Others {
    fn new(entries: &[Entry]) -> Self {
        Others {
            claims: entries
                .iter()
                .map(|e| (PathBuf::from(&e.path.value), e.recurse))
                .collect(),
            ..Others::default()
        }
    }

    /// The recursive entry whose tree `path` would be in.
    fn recursive_over(&self, path: &Path) -> Option<&Path> {
        self.claims
            .iter()
            .find(|(claimed, recurse)| *recurse && path.starts_with(claimed))
            .map(|(claimed, _)| claimed.as_path())
    }

    /// What the tree of the entry for `own` leaves to deeper entries: the more specific
    /// entry decides, whatever the order (otherwise the two would undo each other on every
    /// run).
    fn skips(&self, own: &Path) -> Vec<TreeSkip> {
        self.claims
            .iter()
            .filter(|(claimed, _)| claimed.as_path() != own && claimed.starts_with(own))
            .map(|(claimed, recurse)| TreeSkip {
                path: claimed.clone(),
                below: *recurse,
            })
            .collect()
    }
}

fn diff_entry(
    entry: &Entry,
    found: &EntryLive,
    users: &Accounts<'_>,
    others: &mut Others,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    let uid = resolve(&entry.owner, |n| users.uid(n), "user");
    let gid = resolve(&entry.group, |n| users.gid(n), "group");
    let ids = match (uid, gid) {
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
        let parent = path.parent().unwrap_or(Path::new("/"));
        if entry.creates() && !found.parent_is_dir && !others.created.contains(parent) {
            return Err(vec![no_parent(entry, found, &path)]);
        }
        if others.created.contains(&path) {
            return over_parent(entry, &path, ids, users, diff);
        }
        if entry.creates() {
            create_parents(entry, found, others, diff)?;
        }
        return create(entry, &path, ids.0, ids.1, others, diff);
    };
    check_existing(entry, &path, &stat)?;
    if let Some(content) = &entry.content {
        if found.content.as_deref() != Some(content.as_bytes()) {
            let attrs = desired(entry, ids, &stat);
            let before = found
                .content
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            let write = Step::WriteFile {
                path: path.clone(),
                content: content.clone(),
                attrs,
                before,
            };
            let change = Change::new(
                Files::NAME,
                path.display().to_string(),
                "content differs",
                vec![write],
            )
            .with_details(attr_details(&attrs_of(&stat), &attrs, users));
            diff.changes.push(change);
            return Ok(());
        }
    }
    set_attrs(&path, &stat, desired(entry, ids, &stat), users, diff);
    let walk = Walk {
        entry,
        ids,
        users,
        root: &path,
    };
    walk.below(found, others, diff);
    Ok(())
}

/// The attributes `entry` gives a path that is as `stat` says now.
fn desired(entry: &Entry, (uid, gid): (Option<u32>, Option<u32>), stat: &Stat) -> Attrs {
    Attrs {
        mode: entry
            .mode
            .as_ref()
            .map_or(stat.mode, |m| m.apply(stat.mode, stat.kind == Kind::Dir)),
        uid: uid.unwrap_or(stat.uid),
        gid: gid.unwrap_or(stat.gid),
    }
}

/// An existing path must be what the entry expects: the kind it creates or writes, and
/// never a symlink.
fn check_existing(entry: &Entry, path: &Path, stat: &Stat) -> Result<(), Vec<Invalid>> {
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
    let expected = expected_kind(entry).or(entry.content.as_ref().map(|_| Kind::File));
    match expected {
        Some(want) if stat.kind != want => {
            let mut message = format!(
                "{} exists and is a {}, not a {}",
                path.display(),
                kind_name(stat.kind),
                kind_name(want)
            );
            if entry.content.is_some() {
                message.push_str("; `content` needs one");
            }
            Err(vec![Invalid::new(entry.path.at, message)])
        }
        _ => Ok(()),
    }
}

/// A recursive entry's walk below its own path.
struct Walk<'a> {
    entry: &'a Entry,
    ids: (Option<u32>, Option<u32>),
    users: &'a Accounts<'a>,
    root: &'a Path,
}

/// Examples a tree's change shows.
const TREE_EXAMPLES: usize = 5;

impl Walk<'_> {
    /// One change for everything below the root that differs, except what a deeper entry
    /// manages, symlinks, mount points, and files with more than one hard link (counted in
    /// a warning).
    fn below(&self, found: &EntryLive, others: &Others, diff: &mut Diff) {
        let Some(tree) = &found.tree else { return };
        let mut step = TreeStep {
            root: self.root.to_path_buf(),
            rule: tree_rule(self.entry, self.ids),
            skip: others.skips(self.root),
            entries: tree.entries,
            changes: 0,
            digest: tree.digest.clone(),
            examples: Vec::new(),
        };
        let mut hardlinked = 0u64;
        let mut differ = BTreeSet::new();
        let mut buckets: Vec<(&TreeFound, &Bucket)> = tree.found.iter().collect();
        // Examples in a stable order: by kind, then by attributes.
        buckets.sort_by_key(|(f, _)| **f);
        for (found, bucket) in buckets {
            let Some(to) = step.target(found) else {
                let would = step.rule.apply(found.attrs, false) != found.attrs;
                if found.hardlinked {
                    hardlinked += if would { bucket.count } else { 0 };
                } else if !matches!(found.kind, TreeKind::Symlink | TreeKind::Mount) {
                    diff.unchanged += bucket.count;
                }
                continue;
            };
            step.changes += bucket.count;
            for d in attr_details(&found.attrs, &to, self.users) {
                differ.insert(d.name);
            }
            for path in &bucket.examples {
                if step.examples.len() < TREE_EXAMPLES {
                    step.examples.push(TreeExample {
                        path: path.clone(),
                        from: found.attrs,
                        to,
                    });
                }
            }
        }
        if hardlinked > 0 {
            diff.warnings.push(Warning {
                resource: Files::NAME.into(),
                message: format!(
                    "skipped {hardlinked} file(s) under {} with more than one hard link: a hard link may be a file outside the tree; list such files by their own path",
                    self.root.display()
                ),
            });
        }
        if step.changes > 0 {
            diff.changes.push(tree_change(step, &differ));
        }
    }
}

/// The change of a tree: `1,000 of 100,100 entries below /srv/www differ in mode`.
fn tree_change(step: TreeStep, differ: &BTreeSet<String>) -> Change {
    let names: Vec<&str> = differ.iter().map(String::as_str).collect();
    let reason = format!(
        "{} of {} entries below {} differ in {}",
        harden_plan::grouped(step.changes),
        harden_plan::grouped(step.entries),
        step.root.display(),
        names.join(" and ")
    );
    let target = format!("{}/ (below)", step.root.display());
    Change::new(Files::NAME, target, reason, vec![Step::SetTreeAttrs(step)])
}

/// Why an entry cannot create its path: the directory it would go in is missing or is not
/// a directory (with `parents`, the nearest existing ancestor is not a directory).
fn no_parent(entry: &Entry, found: &EntryLive, path: &Path) -> Invalid {
    let parent = match found.missing_parents.first() {
        Some(outermost) => outermost.parent(),
        None => path.parent(),
    };
    let parent = parent.unwrap_or(Path::new("/")).display().to_string();
    let message = format!(
        "cannot create {}: its parent {parent} is missing or not a directory",
        path.display()
    );
    let help = if entry.parents {
        format!("{parent} must be a directory")
    } else {
        format!("add `parents: true`, or an entry `{{ path: {parent}, directory: true }}` before this one")
    };
    Invalid::new(entry.path.at, message).help(help)
}

/// The kind of file an entry that creates its path expects to find there.
fn expected_kind(entry: &Entry) -> Option<Kind> {
    if entry.wants_dir() {
        Some(Kind::Dir)
    } else if entry.wants_empty_file() {
        Some(Kind::File)
    } else {
        None
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "regular file",
        Kind::Dir => "directory",
        Kind::Symlink => "symlink",
        _ => "special file",
    }
}

/// Plans the missing parents of an entry with `parents: true`, outermost first, except
/// those an earlier entry creates. A parent an earlier entry skipped as missing is an error:
/// that entry's attributes would apply only from the next run on.
fn create_parents(
    entry: &Entry,
    found: &EntryLive,
    others: &mut Others,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    for dir in &found.missing_parents {
        if let Some(tree) = others.recursive_over(dir) {
            return Err(vec![Invalid::new(
                entry.path.at,
                format!(
                    "`parents: true` would create {} inside the tree of the recursive entry for {}, with other attributes than that entry gives",
                    dir.display(),
                    tree.display()
                ),
            )
            .help(format!(
                "give {} an entry of its own with `directory: true`",
                dir.display()
            ))]);
        }
        if let Some(at) = others.skipped.get(dir) {
            return Err(vec![Invalid::new(
                entry.path.at,
                format!(
                    "this entry creates {}, which the entry at line {} skips as missing",
                    dir.display(),
                    at.line
                ),
            )
            .help(format!(
                "move the entry for {} after this one, or give it `directory: true`",
                dir.display()
            ))]);
        }
        if others.created.insert(dir.clone()) {
            diff.changes.push(parent_dir(dir));
        }
    }
    Ok(())
}

/// An entry for a directory an earlier entry creates as one of its parents: it will exist,
/// as [`parent_dir`] makes it, by the time this entry's step runs, so its attributes are
/// set on it (and a file cannot be created there).
fn over_parent(
    entry: &Entry,
    path: &Path,
    (uid, gid): (Option<u32>, Option<u32>),
    users: &Accounts<'_>,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    if entry.content.is_some() || entry.wants_empty_file() {
        return Err(vec![Invalid::new(
            entry.path.at,
            format!(
                "{} is created as a parent directory of an earlier entry",
                path.display()
            ),
        )]);
    }
    let parent = Stat {
        kind: Kind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        nlink: 2,
        dev: 0,
        ino: 0,
        size: 0,
    };
    let to = Attrs {
        mode: entry.mode.as_ref().map_or(0o755, |m| m.apply(0o755, true)),
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
    };
    set_attrs(path, &parent, to, users, diff);
    Ok(())
}

/// A missing parent of an entry with `parents: true`: created as `mkdir -p` would, but
/// owned by root and not writable by others whatever the umask.
fn parent_dir(dir: &Path) -> Change {
    let attrs = Attrs::root(0o755);
    Change {
        resource: Files::NAME.into(),
        target: dir.display().to_string(),
        reason: "parent directory is missing".into(),
        details: vec![Detail {
            name: "mode".into(),
            current: None,
            source: None,
            desired: Some(format!("{:04o}", attrs.mode)),
        }],
        steps: vec![Step::CreateDir {
            path: dir.to_path_buf(),
            attrs,
        }],
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    }
}

fn create(
    entry: &Entry,
    path: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    others: &mut Others,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    let is_dir = entry.wants_dir();
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
        others.created.insert(path.to_path_buf());
        Step::CreateDir {
            path: path.to_path_buf(),
            attrs,
        }
    } else if entry.wants_empty_file() {
        Step::CreateFile {
            path: path.to_path_buf(),
            attrs,
        }
    } else if entry.missing == Missing::Ignore {
        others.skipped.insert(path.to_path_buf(), entry.path.at);
        return Ok(());
    } else {
        return Err(vec![Invalid::new(entry.path.at, format!("{} does not exist", path.display()))
            .help("add `missing: ignore` to skip it when absent, `content:` to create a file, or `directory: true` to create a directory")]);
    };
    diff.changes.push(
        Change::new(
            Files::NAME,
            path.display().to_string(),
            if is_dir {
                "directory is missing"
            } else {
                "file is missing"
            },
            vec![step],
        )
        .with_details(vec![Detail {
            name: "mode".into(),
            current: None,
            source: None,
            desired: Some(format!("{:04o}", attrs.mode)),
        }]),
    );
    Ok(())
}

fn attrs_of(stat: &Stat) -> Attrs {
    Attrs {
        mode: stat.mode,
        uid: stat.uid,
        gid: stat.gid,
    }
}

fn set_attrs(path: &Path, stat: &Stat, to: Attrs, users: &Accounts<'_>, diff: &mut Diff) {
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
    diff.changes.push(
        Change::new(
            Files::NAME,
            path.display().to_string(),
            reason,
            vec![Step::SetAttrs {
                path: path.to_path_buf(),
                from,
                to,
            }],
        )
        .with_details(details),
    );
}

fn attr_details(from: &Attrs, to: &Attrs, users: &Accounts<'_>) -> Vec<Detail> {
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
            ensure: None,
            parents: false,
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
        diff_entry(
            entry,
            found,
            &Accounts::existing(&users()),
            &mut Others::default(),
            &mut diff,
        )
        .map(|()| diff)
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
                from: Attrs::root(0o666),
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

    /// A probed tree of `entries`, each a path and what the walk found there.
    fn tree(entries: &[(&str, TreeKind, u32, bool)]) -> TreeLive {
        let mut tree = TreeLive {
            entries: entries.len() as u64,
            digest: "d".into(),
            ..TreeLive::default()
        };
        for (path, kind, mode, hardlinked) in entries {
            let found = TreeFound {
                kind: *kind,
                attrs: Attrs::root(*mode),
                hardlinked: *hardlinked,
            };
            tree.add(found, Path::new(path));
        }
        tree
    }

    #[test]
    fn recursion_is_one_step_that_skips_symlinks_mounts_and_hard_links() {
        let mut e = entry("/srv/www");
        e.recurse = true;
        e.mode = Some(Located::unplaced(
            mode::parse("u=rwX,g=rX,o=").expect("mode"),
        ));
        let found = EntryLive {
            stat: Some(stat(Kind::Dir, 0o755, 0, 0, 2)),
            parent_is_dir: true,
            tree: Some(tree(&[
                ("/srv/www/index.html", TreeKind::File, 0o644, false),
                ("/srv/www/about.html", TreeKind::File, 0o644, false),
                ("/srv/www/ok.html", TreeKind::File, 0o640, false),
                ("/srv/www/shadow-link", TreeKind::Symlink, 0o777, false),
                ("/srv/www/mnt", TreeKind::Mount, 0o755, false),
                ("/srv/www/shadow-hard", TreeKind::File, 0o640, true),
            ])),
            ..EntryLive::default()
        };
        let diff = run(&e, &found).expect("diff");
        let targets: Vec<&str> = diff.changes.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, vec!["/srv/www", "/srv/www/ (below)"]);
        let Step::SetTreeAttrs(step) = &diff.changes[1].steps[0] else {
            panic!("not a tree step: {:?}", diff.changes[1]);
        };
        assert_eq!((step.changes, step.entries), (2, 6));
        assert_eq!(step.examples.len(), 2);
        assert_eq!(step.examples[0].to, Attrs::root(0o640));
        assert_eq!(
            diff.changes[1].reason,
            "2 of 6 entries below /srv/www differ in mode"
        );
        assert_eq!(
            diff.unchanged, 1,
            "ok.html: links, mounts and hard links are not managed"
        );
        assert_eq!(
            diff.warnings.len(),
            0,
            "the hard link already has the desired mode"
        );
        let found = EntryLive {
            tree: Some(tree(&[(
                "/srv/www/shadow-hard",
                TreeKind::File,
                0o644,
                true,
            )])),
            ..found
        };
        let diff = run(&e, &found).expect("diff");
        assert_eq!(diff.warnings.len(), 1);
        assert_eq!(diff.changes.len(), 1, "only the root changes");
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

    fn ensure(e: &mut Entry, what: Ensure) {
        e.ensure = Some(Located::unplaced(what));
    }

    fn missing_in_dir() -> EntryLive {
        EntryLive {
            parent_is_dir: true,
            ..EntryLive::default()
        }
    }

    #[test]
    fn ensure_file_creates_an_empty_file_and_leaves_an_existing_one() {
        let mut e = entry("/var/log/app.log");
        ensure(&mut e, Ensure::File);
        e.mode = Some(Located::unplaced(Mode::Octal(0o640)));
        e.group = Some(Located::unplaced(Principal::Name("docker".into())));
        let diff = run(&e, &missing_in_dir()).expect("created");
        assert_eq!(
            diff.changes[0].steps,
            [Step::CreateFile {
                path: "/var/log/app.log".into(),
                attrs: Attrs {
                    mode: 0o640,
                    uid: 0,
                    gid: 998
                }
            }]
        );
        let found = EntryLive {
            stat: Some(stat(Kind::File, 0o640, 0, 998, 1)),
            ..EntryLive::default()
        };
        let diff = run(&e, &found).expect("there");
        assert!(diff.changes.is_empty(), "its content is never touched");
        let found = EntryLive {
            stat: Some(stat(Kind::Dir, 0o755, 0, 0, 1)),
            ..EntryLive::default()
        };
        let err = run(&e, &found).expect_err("a directory is not a file");
        assert!(err[0]
            .message
            .contains("is a directory, not a regular file"));
    }

    #[test]
    fn parents_are_created_outermost_first_and_owned_by_root() {
        let mut e = entry("/opt/app/logs/api.log");
        ensure(&mut e, Ensure::File);
        e.parents = true;
        let found = EntryLive {
            parent_is_dir: true,
            missing_parents: vec!["/opt/app".into(), "/opt/app/logs".into()],
            ..EntryLive::default()
        };
        let diff = run(&e, &found).expect("created");
        let steps: Vec<&Step> = diff.changes.iter().flat_map(|c| &c.steps).collect();
        let root_dir = |path: &str| Step::CreateDir {
            path: path.into(),
            attrs: Attrs::root(0o755),
        };
        assert_eq!(steps[0], &root_dir("/opt/app"));
        assert_eq!(steps[1], &root_dir("/opt/app/logs"));
        assert!(matches!(steps[2], Step::CreateFile { .. }));
        let blocked = EntryLive {
            parent_is_dir: false,
            missing_parents: vec!["/opt/app/logs".into()],
            ..EntryLive::default()
        };
        let err = run(&e, &blocked).expect_err("/opt/app is a file");
        assert!(
            err[0].message.contains("its parent /opt/app is"),
            "{}",
            err[0].message
        );
    }

    #[test]
    fn a_directory_an_earlier_entry_creates_is_a_parent() {
        let mut dir = entry("/srv/app");
        dir.directory = true;
        let mut log = entry("/srv/app/app.log");
        ensure(&mut log, Ensure::File);
        let section = Files(vec![dir, log]);
        let live = vec![missing_in_dir(), EntryLive::default()];
        let users = users();
        let (facts, live_facts) =
            crate::testing::facts(&crate::resources::Playbook::default(), &users);
        let overrides = crate::testing::no_overrides();
        let cx = DiffContext {
            users: &users,
            facts: &facts,
            live: &live_facts,
            overrides: &overrides,
        };
        let diff = section.diff(&live, &cx).expect("both created");
        assert_eq!(diff.changes.len(), 2);
    }

    #[test]
    fn contradictory_creation_keys_are_located_errors() {
        let mut e = entry("/var/log/app.log");
        ensure(&mut e, Ensure::File);
        e.content = Some("x".into());
        assert_eq!(check_creation(&e).len(), 1);
        let mut e = entry("/var/log/app.log");
        e.parents = true;
        e.mode = Some(Located::unplaced(Mode::Octal(0o600)));
        assert_eq!(check_creation(&e).len(), 1, "parents without creating");
        let mut e = entry("/var/log/app.log");
        ensure(&mut e, Ensure::Directory);
        e.missing = Missing::Ignore;
        assert_eq!(check_creation(&e).len(), 1);
    }

    #[test]
    fn paths_must_be_absolute_and_normal() {
        assert!(check_path("/etc/shadow").is_ok());
        assert!(check_path("etc/shadow").is_err());
        assert!(check_path("/etc/../shadow").is_err());
        assert!(check_path("/etc//shadow").is_err());
        assert!(check_path("/").is_err());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test builds its tree directly
    fn a_walk_until_a_change_stops_there_and_one_with_nothing_to_change_goes_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in 0..40 {
            let sub = dir.path().join(format!("srv/d{d}"));
            std::fs::create_dir_all(&sub).expect("mkdir");
            for f in 0..25 {
                std::fs::write(sub.join(format!("f{f}")), "x").expect("write");
            }
        }
        let host = Host::new(dir.path());
        let root = Path::new("/srv");
        let whole = probe_tree(&host, root, &[], None).expect("walk");
        assert_eq!(whole.entries, 40 * 26);
        let counted = |t: &TreeLive| t.found.values().map(|b| b.count).sum::<u64>();
        assert_eq!(counted(&whole), whole.entries);

        let change = TreeRule {
            mode: Some(harden_plan::ModeRule::Exact(0o700)),
            uid: None,
            gid: None,
        };
        let cut = probe_tree(&host, root, &[], Some(&change)).expect("walk");
        assert!(counted(&cut) < whole.entries / 2, "{}", counted(&cut));
        assert!(cut.found.keys().any(|f| change.target(f).is_some()));
        assert!(cut.digest.is_empty(), "a walk cut short has no digest");

        let keep = TreeRule {
            mode: None,
            uid: None,
            gid: None,
        };
        let through = probe_tree(&host, root, &[], Some(&keep)).expect("walk");
        assert_eq!(
            (through.entries, &through.digest),
            (whole.entries, &whole.digest)
        );
        assert_eq!(counted(&through), whole.entries);
    }
}
