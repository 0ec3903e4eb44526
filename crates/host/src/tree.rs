//! The walk of a recursive `files` entry's tree, shared by the planner's probe, a saved
//! plan's check and the executor's apply, so that all three see the same entries and hash
//! them the same way.
//!
//! It descends through directory file descriptors (`openat` with `O_NOFOLLOW`), never
//! follows a symlink and never enters another filesystem. The subdirectories of a directory
//! are walked side by side on a few threads (a walk is system calls, and they scale with
//! the cores), each with a visitor of its own that is merged back in walk order, so what a
//! walk gathers does not depend on how the threads ran. A walk holds, per level of depth
//! and thread, one descriptor and one sorted name list: nothing per entry outlives its
//! directory.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use harden_plan::{Attrs, TreeFound, TreeKind, TreeSkip};
use nix::sys::stat::fstat;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::path::Links;
use crate::stat::{stat_at, Kind, Stat};
use crate::walk::{open_dir, sorted_names};
use crate::Host;

/// What a tree walk does with what it meets. The walk gives each subdirectory it walks
/// beside another a visitor [`fork`](TreeVisitor::fork)ed from its parent's, and
/// [`merge`](TreeVisitor::merge)s them back in walk order.
pub trait TreeVisitor: Send + Sized {
    /// An empty visitor for a subtree walked beside this visitor's.
    fn fork(&self) -> Self;

    /// Takes in what `later`, forked from this visitor, gathered in the subtree it walked,
    /// which comes after everything this visitor has seen so far.
    fn merge(&mut self, later: Self);

    /// An entry below the root that no skip names.
    fn entry(&mut self, entry: &TreeEntry<'_>) -> io::Result<()>;

    /// Every entry of the directory `dir` (with status `stat` when it was opened) was
    /// visited; its subdirectories come next, and `dir` closes after them.
    fn done(&mut self, dir: BorrowedFd<'_>, stat: &Stat) -> io::Result<()> {
        let _ = (dir, stat);
        Ok(())
    }
}

/// A visitor that only counts and hashes, as the walk itself does: a check that a tree is
/// still what a plan saw.
#[derive(Debug, Default)]
pub struct Unvisited;

impl TreeVisitor for Unvisited {
    fn fork(&self) -> Self {
        Unvisited
    }

    fn merge(&mut self, _: Self) {}

    fn entry(&mut self, _: &TreeEntry<'_>) -> io::Result<()> {
        Ok(())
    }
}

/// One entry below a tree's root.
#[derive(Debug)]
pub struct TreeEntry<'a> {
    /// The directory it is in.
    pub dir: BorrowedFd<'a>,
    /// That directory's status when it was opened.
    pub dir_stat: Stat,
    /// Its name there.
    pub name: &'a OsStr,
    /// Its absolute path on the managed system.
    pub path: &'a Path,
    /// Its status, not following it.
    pub stat: Stat,
    /// What the tree's rule needs of it.
    pub found: TreeFound,
}

/// What a walk found in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSummary {
    /// Entries visited (skipped ones not counted).
    pub entries: u64,
    /// Hex sha256 of every entry visited (see [`Host::walk_tree`]).
    pub digest: String,
}

/// Subdirectories handed to the threads at a time: what their visitors gather is merged
/// after each group, so a directory with a great many subdirectories holds a group's
/// visitors, not one per subdirectory.
const GROUP: usize = 64;

/// The walks' threads: one per core, up to a few (more would only wait on the same
/// filesystem locks), with the stack a deep tree's recursion needs. `None` on one core, or
/// when the system would not start them: the walk then runs on the caller's thread alone.
fn threads() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores.min(4))
            .thread_name(|i| format!("harden-walk-{i}"))
            .stack_size(16 << 20)
            .build()
            .ok()
    })
    .as_ref()
}

pub(crate) fn walk_tree<V: TreeVisitor>(
    host: &Host,
    root: &Path,
    links: Links,
    skip: &[TreeSkip],
    visitor: &mut V,
) -> io::Result<TreeSummary> {
    let (parent, name) = host.open_parent(root, links)?;
    let Some(fd) = open_dir(&parent, &name)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: not a directory, or gone", root.display()),
        ));
    };
    let stat = Stat::from_raw(&fstat(&fd)?);
    let pool = threads();
    let walker = Walker {
        parallel: pool.is_some(),
        dev: stat.dev,
        skip,
        root_len: root.as_os_str().len(),
        stopped: AtomicBool::new(false),
        failure: Mutex::new(None),
    };
    let found = match pool {
        Some(pool) => pool.install(|| walker.dir(fd, stat, root, visitor)),
        None => walker.dir(fd, stat, root, visitor),
    };
    match found {
        Ok(found) => Ok(TreeSummary {
            entries: found.entries,
            digest: hex(&found.digest),
        }),
        Err(e) => Err(walker.first_failure().unwrap_or(e)),
    }
}

/// The walk's settings, and how its threads tell each other to stop.
struct Walker<'s> {
    /// Whether subdirectories are walked side by side, on [`threads`].
    parallel: bool,
    dev: u64,
    skip: &'s [TreeSkip],
    root_len: usize,
    /// Set by the first thread that fails: the others stop at their next directory.
    stopped: AtomicBool,
    /// That thread's error, reported rather than the others' "stopped".
    failure: Mutex<Option<io::Error>>,
}

/// What the walk of one directory found: the entries below it, and their digest.
struct Found {
    entries: u64,
    digest: [u8; 32],
}

impl Walker<'_> {
    /// Walks the directory `fd` (at `path`): its entries, then its subdirectories. Its
    /// digest hashes its entries in byte order, then the digest of each subdirectory.
    fn dir<V: TreeVisitor>(
        &self,
        fd: OwnedFd,
        stat: Stat,
        path: &Path,
        visitor: &mut V,
    ) -> io::Result<Found> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let mut dir = self.fail(nix::dir::Dir::from_fd(fd).map_err(io::Error::from))?;
        let names = self.fail(sorted_names(&mut dir))?;
        let dir_fd = dir.as_fd();
        let mut digest = Sha256::new();
        let mut entries = 0;
        let mut subdirs: Vec<(&OsString, u64)> = Vec::new();
        let mut child = path.to_path_buf();
        for name in &names {
            child.push(name);
            let result = self.entry(dir_fd, &stat, name, &child, visitor);
            child.pop();
            let (found, descend) = self.fail(result)?;
            if let Some(found) = found {
                self.hash(&mut digest, path, name, &found);
                entries += 1;
            }
            if let Some(ino) = descend {
                subdirs.push((name, ino));
            }
        }
        self.fail(visitor.done(dir_fd, &stat))?;
        for group in subdirs.chunks(GROUP) {
            for below in self.subdirs(dir_fd, path, group, visitor)? {
                digest.update(below.digest);
                entries += below.entries;
            }
        }
        Ok(Found {
            entries,
            digest: digest.finalize().into(),
        })
    }

    /// Walks `group`, subdirectories of `dir` (at `path`), side by side when there are
    /// several; what each found, in order.
    fn subdirs<V: TreeVisitor>(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        group: &[(&OsString, u64)],
        visitor: &mut V,
    ) -> io::Result<Vec<Found>> {
        if group.len() == 1 || !self.parallel {
            let mut found = Vec::with_capacity(group.len());
            for (name, ino) in group {
                found.extend(self.subdir(dir, path, name, *ino, visitor)?);
            }
            return Ok(found);
        }
        let forks: Vec<V> = group.iter().map(|_| visitor.fork()).collect();
        let walked: Vec<(V, io::Result<Option<Found>>)> = group
            .par_iter()
            .zip(forks)
            .map(|((name, ino), mut fork)| {
                let found = self.subdir(dir, path, name, *ino, &mut fork);
                (fork, found)
            })
            .collect();
        let mut found = Vec::with_capacity(walked.len());
        for (fork, below) in walked {
            visitor.merge(fork);
            found.extend(below?);
        }
        Ok(found)
    }

    /// Opens the subdirectory `name` of `dir` and walks it, unless it is no longer the
    /// directory `ino` the listing saw.
    fn subdir<V: TreeVisitor>(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        name: &OsStr,
        ino: u64,
        visitor: &mut V,
    ) -> io::Result<Option<Found>> {
        let Some(sub) = self.fail(open_dir(dir, name))? else {
            return Ok(None);
        };
        let now = Stat::from_raw(&self.fail(fstat(&sub).map_err(io::Error::from))?);
        // Swapped for another directory since it was listed: not the one we saw.
        if now.ino != ino || now.dev != self.dev {
            return Ok(None);
        }
        self.dir(sub, now, &path.join(name), visitor).map(Some)
    }

    /// Visits one entry at `path`: what it found (`None` when skipped or gone), and the
    /// inode of a directory to descend into.
    fn entry<V: TreeVisitor>(
        &self,
        dir: BorrowedFd<'_>,
        dir_stat: &Stat,
        name: &OsStr,
        path: &Path,
        visitor: &mut V,
    ) -> io::Result<(Option<TreeFound>, Option<u64>)> {
        let Some(stat) = stat_at(dir, name)? else {
            return Ok((None, None)); // removed while we walked
        };
        let (itself, below) = self.skipped(path);
        let mut visited = None;
        if !itself {
            let found = classify(&stat, self.dev);
            visitor.entry(&TreeEntry {
                dir,
                dir_stat: *dir_stat,
                name,
                path,
                stat,
                found,
            })?;
            visited = Some(found);
        }
        let descend = stat.kind == Kind::Dir && stat.dev == self.dev && !below;
        Ok((visited, descend.then_some(stat.ino)))
    }

    /// Keeps the first failure of the walk, for the walk to return, and stops the other
    /// threads.
    fn fail<T>(&self, result: io::Result<T>) -> io::Result<T> {
        result.map_err(|e| {
            if self.stopped.swap(true, Ordering::Relaxed) {
                return e;
            }
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            *failure = Some(e);
            stopped()
        })
    }

    fn first_failure(&self) -> Option<io::Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Whether a skip names `path`, and whether it names everything below it.
    fn skipped(&self, path: &Path) -> (bool, bool) {
        let mut itself = false;
        let mut below = false;
        for s in self.skip {
            let under = path.starts_with(&s.path);
            itself |= path == s.path || s.below && under;
            below |= s.below && under;
        }
        (itself, below)
    }

    /// Adds an entry to its directory's digest: its path relative to the root, its kind
    /// and attributes.
    fn hash(&self, digest: &mut Sha256, dir: &Path, name: &OsStr, found: &TreeFound) {
        let rel = &dir.as_os_str().as_bytes()[self.root_len..];
        digest.update(rel);
        digest.update(b"/");
        digest.update(name.as_bytes());
        digest.update([0, found.kind as u8, u8::from(found.hardlinked)]);
        for n in [found.attrs.mode, found.attrs.uid, found.attrs.gid] {
            digest.update(n.to_le_bytes());
        }
    }
}

/// What the tree's rule needs of an entry with `stat`, in a tree on device `dev`. Only a
/// directory on another device is a mount point: overlayfs reports its files with the
/// device of the layer they come from.
pub fn classify(stat: &Stat, dev: u64) -> TreeFound {
    let kind = match stat.kind {
        Kind::Symlink => TreeKind::Symlink,
        Kind::Dir if stat.dev != dev => TreeKind::Mount,
        Kind::File => TreeKind::File,
        Kind::Dir => TreeKind::Dir,
        Kind::Socket | Kind::Other => TreeKind::Special,
    };
    TreeFound {
        kind,
        attrs: Attrs {
            mode: stat.mode,
            uid: stat.uid,
            gid: stat.gid,
        },
        hardlinked: stat.kind == Kind::File && stat.nlink > 1,
    }
}

/// What a part of the walk returns when another part failed: the walk returns that
/// failure instead.
fn stopped() -> io::Error {
    io::Error::other("stopped: another part of the walk failed")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their fixtures directly
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A visitor that lists what it sees, failing at `fail_at` if given.
    #[derive(Default)]
    struct Seen {
        seen: Vec<(String, TreeKind)>,
        done: Vec<String>,
        fail_at: Option<String>,
    }

    impl TreeVisitor for Seen {
        fn fork(&self) -> Self {
            Seen {
                fail_at: self.fail_at.clone(),
                ..Seen::default()
            }
        }

        fn merge(&mut self, later: Self) {
            self.seen.extend(later.seen);
            self.done.extend(later.done);
        }

        fn entry(&mut self, e: &TreeEntry<'_>) -> io::Result<()> {
            let path = e.path.display().to_string();
            if self.fail_at.as_ref() == Some(&path) {
                return Err(io::Error::other(format!("{path}: refused by the test")));
            }
            self.seen.push((path, e.found.kind));
            Ok(())
        }

        fn done(&mut self, dir: BorrowedFd<'_>, stat: &Stat) -> io::Result<()> {
            assert_eq!(Stat::from_raw(&fstat(dir).expect("fstat")).ino, stat.ino);
            self.done.push(format!("{}", stat.ino));
            Ok(())
        }
    }

    fn walk(host: &Host, skip: &[TreeSkip]) -> (Vec<(String, TreeKind)>, TreeSummary) {
        let mut seen = Seen::default();
        let summary = host
            .walk_tree(Path::new("/srv"), Links::Any, skip, &mut seen)
            .expect("walk");
        (seen.seen, summary)
    }

    /// The order a walk must visit `dir`'s tree in: each directory's entries in byte order,
    /// then its subdirectories, one after the other.
    fn expected(dir: &Path, shown: &str, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        for name in &names {
            out.push(format!("{shown}/{}", name.to_string_lossy()));
        }
        for name in &names {
            let path = dir.join(name);
            if std::fs::symlink_metadata(&path).expect("lstat").is_dir() {
                expected(&path, &format!("{shown}/{}", name.to_string_lossy()), out);
            }
        }
    }

    #[test]
    fn a_wide_tree_walked_on_threads_is_seen_in_walk_order_and_hashed_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in 0..150 {
            let sub = root.join(format!("srv/d{d}/e{}", d % 7));
            std::fs::create_dir_all(&sub).expect("mkdir");
            for f in 0..(d % 5) {
                std::fs::write(sub.join(format!("f{f}")), "x").expect("write");
                std::fs::write(root.join(format!("srv/d{d}/g{f}")), "x").expect("write");
            }
        }
        let host = Host::new(root);
        let mut order = Vec::new();
        expected(&root.join("srv"), "/srv", &mut order);
        let (seen, first) = walk(&host, &[]);
        let paths: Vec<&String> = seen.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, order.iter().collect::<Vec<_>>());
        assert_eq!(first.entries, order.len() as u64);
        for _ in 0..5 {
            assert_eq!(walk(&host, &[]).1, first, "the same tree, the same digest");
        }
        std::fs::write(root.join("srv/d149/g3"), "changed content, same attributes")
            .expect("write");
        assert_eq!(walk(&host, &[]).1, first, "contents are not hashed");
        std::fs::remove_file(root.join("srv/d149/g3")).expect("rm");
        std::fs::write(root.join("srv/d149/g4"), "x").expect("write");
        assert_ne!(
            walk(&host, &[]).1.digest,
            first.digest,
            "a renamed entry is"
        );
    }

    #[test]
    fn a_failure_deep_in_one_subtree_is_the_error_the_walk_reports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in 0..100 {
            let sub = root.join(format!("srv/d{d}/inner"));
            std::fs::create_dir_all(&sub).expect("mkdir");
            std::fs::write(sub.join("f"), "x").expect("write");
        }
        let host = Host::new(root);
        let mut seen = Seen {
            fail_at: Some("/srv/d57/inner/f".into()),
            ..Seen::default()
        };
        let e = host
            .walk_tree(Path::new("/srv"), Links::Any, &[], &mut seen)
            .expect_err("the visitor fails");
        assert_eq!(e.to_string(), "/srv/d57/inner/f: refused by the test");
    }

    #[test]
    fn entries_come_once_in_order_links_are_not_followed_and_skips_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("srv/a/b")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("srv/a/b/f"), "x").expect("write");
        std::fs::write(root.join("srv/g"), "x").expect("write");
        std::fs::hard_link(root.join("srv/g"), root.join("etc/g")).expect("link");
        symlink("/etc", root.join("srv/a/etc")).expect("symlink");
        let host = Host::new(root);
        let (seen, all) = walk(&host, &[]);
        let names: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            ["/srv/a", "/srv/g", "/srv/a/b", "/srv/a/etc", "/srv/a/b/f"]
        );
        assert_eq!(seen[3].1, TreeKind::Symlink);
        assert_eq!(all.entries, 5);
        let only_b = [TreeSkip {
            path: "/srv/a/b".into(),
            below: false,
        }];
        let (seen, some) = walk(&host, &only_b);
        assert_eq!(seen.len(), 4, "b itself is skipped, its file is not");
        assert_ne!(some.digest, all.digest);
        let below_a = [TreeSkip {
            path: "/srv/a".into(),
            below: true,
        }];
        assert_eq!(walk(&host, &below_a).0.len(), 1);
        std::fs::set_permissions(
            root.join("srv/a/b/f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        assert_ne!(walk(&host, &[]).1.digest, all.digest, "a mode is hashed");
    }
}
