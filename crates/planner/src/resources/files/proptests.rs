//! Property tests of the pure diff: for random trees and random entries, carrying out the
//! plan's steps on the tree leaves nothing to plan, and a tree planned against itself needs
//! no change.
//!
//! The live tree is data (path to kind, mode, owner, links, content), probed the way
//! [`Files::probe`] probes a host; SetAttrs, WriteFile and CreateDir are carried out on it
//! as the executor carries them out, each checking the state the plan says it starts from.
//! Entries are generated so that no two of them manage the same path, directly or through
//! `recurse`: the planner does not converge on overlapping entries yet (a recursive entry
//! and a later one for a path below it, with other modes, set that path twice on every
//! run); drop the filter in [`entries`] once it does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// Paths the trees are made of, parents before children, with the kind each usually is.
const PATHS: [(&str, Kind); 10] = [
    ("/srv", Kind::Dir),
    ("/srv/www", Kind::Dir),
    ("/srv/www/index.html", Kind::File),
    ("/srv/www/assets", Kind::Dir),
    ("/srv/www/assets/app.js", Kind::File),
    ("/srv/www/link", Kind::Symlink),
    ("/srv/www/docker.sock", Kind::Socket),
    ("/opt", Kind::Dir),
    ("/opt/app", Kind::Dir),
    ("/opt/app/.env", Kind::File),
];

const SYMBOLIC: [&str; 8] = [
    "u=rwX,g=rX,o=",
    "go-w",
    "a+X",
    "u+s,g-s",
    "g=s,o-rwx",
    "+t",
    "o=,g+r",
    "u-x,g+X",
];

/// One node of the live tree.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    kind: Kind,
    attrs: Attrs,
    nlink: u64,
    content: Option<Vec<u8>>,
}

type Tree = BTreeMap<PathBuf, Node>;

fn users() -> UserDb {
    UserDb::parse(
        false,
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        "root:x:0:\nalice:x:1000:\ndocker:x:998:\n",
    )
}

fn attrs() -> impl Strategy<Value = Attrs> {
    (
        0u32..0o10000,
        prop::sample::select(vec![0u32, 1000]),
        prop::sample::select(vec![0u32, 998, 1000]),
    )
        .prop_map(|(mode, uid, gid)| Attrs { mode, uid, gid })
}

/// A node of the kind a path usually is (sometimes another, sometimes none); children of a
/// missing path or of a non-directory are dropped by [`tree`].
fn node(usual: Kind) -> impl Strategy<Value = Option<Node>> {
    let kind = prop_oneof![
        6 => Just(usual),
        1 => prop::sample::select(vec![Kind::Dir, Kind::File, Kind::Symlink]),
    ];
    let content = prop::sample::select(vec!["", "old\n", "KEY=value\n"]);
    // A file with two links may be the same inode as one outside the tree.
    let nlink = prop::sample::select(vec![1u64, 1, 1, 2]);
    prop::option::weighted(0.85, (kind, attrs(), nlink, content)).prop_map(|found| {
        found.map(|(kind, attrs, nlink, content)| Node {
            kind,
            attrs,
            nlink: if kind == Kind::File { nlink } else { 1 },
            content: (kind == Kind::File).then(|| content.as_bytes().to_vec()),
        })
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    let nodes: Vec<_> = PATHS.iter().map(|(_, kind)| node(*kind)).collect();
    nodes.prop_map(|nodes| {
        let mut tree = Tree::new();
        for ((path, _), node) in PATHS.iter().zip(nodes) {
            let path = PathBuf::from(path);
            if let Some(node) = node {
                if parent_is_dir(&tree, &path) {
                    tree.insert(path, node);
                }
            }
        }
        tree
    })
}

fn parent_is_dir(tree: &Tree, path: &Path) -> bool {
    match path.parent() {
        Some(p) if p == Path::new("/") => true,
        Some(p) => tree.get(p).is_some_and(|n| n.kind == Kind::Dir),
        None => false,
    }
}

fn mode() -> impl Strategy<Value = Option<Mode>> {
    prop_oneof![
        Just(None),
        (0u32..0o10000).prop_map(|m| Some(Mode::Octal(m))),
        prop::sample::select(SYMBOLIC.to_vec()).prop_map(|s| mode::parse(s).ok()),
    ]
}

fn principal() -> impl Strategy<Value = Option<Principal>> {
    prop::sample::select(vec![
        None,
        Some(Principal::Id(0)),
        Some(Principal::Id(1000)),
        Some(Principal::Name("alice".into())),
        Some(Principal::Name("docker".into())),
        Some(Principal::Name("root".into())),
    ])
}

/// What one entry manages; `None` when the combination is one `validate` refuses.
fn entry(
    path: &str,
    mode: Option<Mode>,
    owner: Option<Principal>,
    group: Option<Principal>,
    what: u8,
    ignore_missing: bool,
    parents: bool,
) -> Option<Entry> {
    let (recurse, directory, content) = match what {
        0 => (false, false, None),
        1 => (true, false, None),
        2 => (false, true, None),
        3 => (true, true, None),
        4 => (false, false, Some(format!("managed {path}\n"))),
        _ => (false, false, None),
    };
    let ensure = (what == 5).then_some(Located::unplaced(Ensure::File));
    let missing = if ignore_missing && content.is_none() {
        Missing::Ignore
    } else {
        Missing::Error
    };
    let entry = Entry {
        path: Located::unplaced(path.to_owned()),
        mode: mode.map(Located::unplaced),
        owner: owner.map(Located::unplaced),
        group: group.map(Located::unplaced),
        recurse,
        missing,
        content,
        directory,
        ensure,
        parents,
    };
    Files(vec![entry.clone()])
        .validate()
        .is_empty()
        .then_some(entry)
}

/// Entries on distinct paths, some inside another's recursive tree.
fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let one = (
        prop::sample::select(PATHS.to_vec()),
        mode(),
        principal(),
        principal(),
        0u8..4,
        prop::bool::weighted(0.7),
        prop::bool::ANY,
    )
        .prop_map(|((p, usual), m, o, g, what, ignore, parents)| {
            // Content or an empty file for what is usually a file; recursion and creation
            // for directories.
            let what = match (usual, what) {
                (Kind::File, 0) => 0,
                (Kind::File, 1) => 5,
                (Kind::File, _) => 4,
                (_, w) => w,
            };
            entry(p, m, o, g, what, ignore, parents)
        });
    prop::collection::vec(one, 1..6).prop_map(|found| {
        let mut kept: Vec<Entry> = Vec::new();
        for e in found.into_iter().flatten() {
            // Entries inside another's recursive tree stay: the deeper one decides there.
            let overlaps = kept.iter().any(|k| {
                let inside =
                    |a: &Entry, b: &Entry| a.path.value.starts_with(&format!("{}/", b.path.value));
                // Parents created inside a recursive tree, or where an entry skips its
                // path as missing: errors of their own (see `create_parents`).
                k.path.value == e.path.value
                    || e.parents && inside(&e, k)
                    || k.parents && e.recurse && inside(k, &e)
            });
            if !overlaps {
                kept.push(e);
            }
        }
        kept
    })
}

fn stat_of(node: &Node) -> Stat {
    Stat {
        kind: node.kind,
        mode: node.attrs.mode,
        uid: node.attrs.uid,
        gid: node.attrs.gid,
        nlink: node.nlink,
        dev: 1,
        ino: 1,
        size: 0,
    }
}

/// What [`Files::probe`] would find for `entry` in `tree`.
fn probe(tree: &Tree, entry: &Entry, skip: &[TreeSkip]) -> EntryLive {
    let path = Path::new(&entry.path.value);
    let node = tree.get(path);
    let mut found = EntryLive {
        stat: node.map(stat_of),
        ..EntryLive::default()
    };
    match node {
        None => {
            let mut parent = path.parent().unwrap_or(Path::new("/"));
            while entry.parents && !tree.contains_key(parent) && parent != Path::new("/") {
                found.missing_parents.insert(0, parent.to_path_buf());
                parent = parent.parent().unwrap_or(Path::new("/"));
            }
            found.parent_is_dir =
                parent == Path::new("/") || tree.get(parent).is_some_and(|n| n.kind == Kind::Dir);
        }
        Some(n) if n.kind == Kind::File && entry.content.is_some() => {
            found.content = n.content.clone();
        }
        Some(n) if n.kind == Kind::Dir && entry.recurse => {
            let mut live = TreeLive::default();
            for (p, n) in below(tree, path, skip) {
                live.entries += 1;
                live.add(found_of(n), p);
            }
            found.tree = Some(live);
        }
        Some(_) => {}
    }
    found
}

/// The entries below `root` that a tree's walk visits: everything but what `skip` names.
fn below<'t>(
    tree: &'t Tree,
    root: &Path,
    skip: &[TreeSkip],
) -> impl Iterator<Item = (&'t PathBuf, &'t Node)> {
    let step = TreeStep {
        root: root.to_path_buf(),
        rule: TreeRule {
            mode: None,
            uid: None,
            gid: None,
        },
        skip: skip.to_vec(),
        entries: 0,
        changes: 0,
        digest: String::new(),
        examples: Vec::new(),
    };
    let prefix = format!("{}/", root.display());
    tree.iter()
        .filter(move |(p, _)| p.to_string_lossy().starts_with(&prefix) && !step.skips(p))
}

/// What a tree's walk finds at `node` (the tree is one filesystem).
fn found_of(node: &Node) -> TreeFound {
    let kind = match node.kind {
        Kind::File => TreeKind::File,
        Kind::Dir => TreeKind::Dir,
        Kind::Symlink => TreeKind::Symlink,
        _ => TreeKind::Special,
    };
    TreeFound {
        kind,
        attrs: node.attrs,
        hardlinked: node.kind == Kind::File && node.nlink > 1,
    }
}

/// The plan for `entries` over `tree`, as [`Files::diff`] makes it; `None` when the
/// playbook is invalid for this tree (a missing path, a symlink, content on a directory).
fn plan(tree: &Tree, entries: &[Entry]) -> Option<Diff> {
    let users = users();
    let mut diff = Diff::default();
    let mut others = Others::new(entries);
    for entry in entries {
        diff_entry(
            entry,
            &probe(tree, entry, &others.skips(Path::new(&entry.path.value))),
            &crate::facts::accounts::Accounts::existing(&users),
            &mut others,
            &mut diff,
        )
        .ok()?;
    }
    Some(diff)
}

/// Carries out one step on the tree as the executor does, checking the state the step
/// assumes.
fn apply(tree: &mut Tree, step: &Step) -> Result<(), TestCaseError> {
    match step {
        Step::SetAttrs { path, from, to } => {
            let node = tree
                .get_mut(path)
                .ok_or_else(|| fail(path, "set_attrs on a missing path"))?;
            prop_assert!(
                node.kind != Kind::Symlink,
                "set_attrs on a symlink: {}",
                path.display()
            );
            prop_assert_eq!(node.attrs, *from, "stale `from` for {}", path.display());
            node.attrs = *to;
        }
        Step::WriteFile {
            path,
            content,
            attrs,
            before,
        } => {
            prop_assert!(
                parent_is_dir(tree, path),
                "write into a missing directory: {}",
                path.display()
            );
            let old = tree.get(path);
            prop_assert!(
                old.is_none_or(|n| n.kind == Kind::File),
                "write over a non-file: {}",
                path.display()
            );
            let was = old
                .and_then(|n| n.content.as_ref())
                .map(|c| String::from_utf8_lossy(c).into_owned());
            prop_assert_eq!(&was, before, "stale `before` for {}", path.display());
            let node = Node {
                kind: Kind::File,
                attrs: *attrs,
                nlink: 1,
                content: Some(content.as_bytes().to_vec()),
            };
            tree.insert(path.clone(), node);
        }
        Step::CreateDir { path, attrs } => {
            prop_assert!(
                parent_is_dir(tree, path),
                "mkdir in a missing directory: {}",
                path.display()
            );
            prop_assert!(
                !tree.contains_key(path),
                "mkdir over an existing path: {}",
                path.display()
            );
            tree.insert(
                path.clone(),
                Node {
                    kind: Kind::Dir,
                    attrs: *attrs,
                    nlink: 2,
                    content: None,
                },
            );
        }
        Step::CreateFile { path, attrs } => {
            prop_assert!(
                parent_is_dir(tree, path),
                "create in a missing directory: {}",
                path.display()
            );
            let node = Node {
                kind: Kind::File,
                attrs: *attrs,
                nlink: 1,
                content: Some(Vec::new()),
            };
            // As the executor: a file already there is left alone.
            tree.entry(path.clone()).or_insert(node);
        }
        Step::SetTreeAttrs(step) => {
            let changes: Vec<(PathBuf, Attrs)> = below(tree, &step.root, &step.skip)
                .filter_map(|(p, n)| step.target(&found_of(n)).map(|to| (p.clone(), to)))
                .collect();
            prop_assert_eq!(
                changes.len() as u64,
                step.changes,
                "stale count for {}",
                step.root.display()
            );
            for (path, to) in changes {
                if let Some(node) = tree.get_mut(&path) {
                    node.attrs = to;
                }
            }
        }
        other => prop_assert!(false, "files planned a step it never plans: {other:?}"),
    }
    Ok(())
}

fn fail(path: &Path, why: &str) -> TestCaseError {
    TestCaseError::fail(format!("{why}: {}", path.display()))
}

/// Entries that state exactly what `tree` holds, by number, for every path but symlinks.
fn as_it_is(tree: &Tree) -> Vec<Entry> {
    tree.iter()
        .filter(|(_, n)| n.kind != Kind::Symlink)
        .map(|(path, n)| Entry {
            path: Located::unplaced(path.display().to_string()),
            mode: Some(Located::unplaced(Mode::Octal(n.attrs.mode))),
            owner: Some(Located::unplaced(Principal::Id(n.attrs.uid))),
            group: Some(Located::unplaced(Principal::Id(n.attrs.gid))),
            recurse: false,
            missing: Missing::Error,
            content: None,
            directory: false,
            ensure: None,
            parents: false,
        })
        .collect()
}

/// 512 cases, a second or two for both properties; `PROPTEST_CASES` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn describe(diff: &Diff) -> Vec<String> {
    diff.changes
        .iter()
        .map(|c| format!("{} ({}): {:?}", c.target, c.reason, c.steps))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn applying_the_plan_leaves_nothing_to_plan(mut tree in tree(), entries in entries()) {
        // Entries this tree makes invalid (a missing path, a symlink, content on a
        // directory) would refuse the whole plan; the others make the playbook.
        let entries: Vec<Entry> = entries.into_iter().filter(|e| plan(&tree, std::slice::from_ref(e)).is_some()).collect();
        let Some(first) = plan(&tree, &entries) else {
            return Err(TestCaseError::fail("entries valid one by one are invalid together"));
        };
        for step in first.changes.iter().flat_map(|c| &c.steps) {
            apply(&mut tree, step)?;
        }
        let second = plan(&tree, &entries);
        prop_assert!(second.is_some(), "the playbook became invalid once applied");
        let second = second.unwrap_or_default();
        prop_assert!(second.changes.is_empty(), "left to do: {:?}", describe(&second));
    }

    #[test]
    fn a_tree_planned_against_itself_needs_no_change(tree in tree()) {
        let entries = as_it_is(&tree);
        let diff = plan(&tree, &entries);
        prop_assert!(diff.is_some(), "a tree's own state is invalid for it");
        let diff = diff.unwrap_or_default();
        prop_assert!(diff.changes.is_empty(), "{:?}", describe(&diff));
        prop_assert_eq!(diff.unchanged, entries.len() as u64);
    }
}
