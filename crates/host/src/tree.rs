//! The walk of a recursive `files` entry's tree, shared by the planner's probe, a saved
//! plan's check and the executor's apply, so that all three see the same entries in the
//! same order and hash them the same way.
//!
//! It descends through directory file descriptors (`openat` with `O_NOFOLLOW`), never
//! follows a symlink, never enters another filesystem, and holds one descriptor and one
//! sorted name list per level of depth: nothing per entry outlives its directory.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use harden_plan::{Attrs, TreeFound, TreeKind, TreeSkip};
use nix::sys::stat::fstat;
use sha2::{Digest, Sha256};

use crate::path::Links;
use crate::stat::{stat_at, Kind, Stat};
use crate::walk::{open_dir, sorted_names};
use crate::Host;

/// What [`Host::walk_tree`] reports.
#[derive(Debug)]
pub enum Visit<'a> {
    /// An entry below the root that no skip names.
    Entry(TreeEntry<'a>),
    /// Every entry of a directory was visited; its subdirectories come next, and `dir`
    /// closes when they are done.
    Done {
        /// The directory.
        dir: BorrowedFd<'a>,
        /// Its status when it was opened.
        stat: Stat,
    },
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

pub(crate) fn walk_tree(
    host: &Host,
    root: &Path,
    links: Links,
    skip: &[TreeSkip],
    visit: &mut dyn FnMut(Visit<'_>) -> io::Result<()>,
) -> io::Result<TreeSummary> {
    let (parent, name) = host.open_parent(root, links)?;
    let Some(fd) = open_dir(&parent, &name)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: not a directory, or gone", root.display()),
        ));
    };
    let stat = Stat::from_raw(&fstat(&fd)?);
    let dev = stat.dev;
    let mut walker = Walker {
        dev,
        skip,
        path: root.to_path_buf(),
        root_len: root.as_os_str().len(),
        digest: Sha256::new(),
        entries: 0,
    };
    walker.dir(fd, stat, visit)?;
    Ok(TreeSummary {
        entries: walker.entries,
        digest: hex(&walker.digest.finalize()),
    })
}

struct Walker<'s> {
    dev: u64,
    skip: &'s [TreeSkip],
    /// The path of the entry being visited.
    path: PathBuf,
    root_len: usize,
    digest: Sha256,
    entries: u64,
}

impl Walker<'_> {
    /// Visits the entries of the directory `fd` (at `self.path`), then its subdirectories.
    fn dir(
        &mut self,
        fd: OwnedFd,
        stat: Stat,
        visit: &mut dyn FnMut(Visit<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let names = sorted_names(&mut dir)?;
        let dir_fd = dir.as_fd();
        let mut subdirs: Vec<(&OsString, u64)> = Vec::new();
        for name in &names {
            self.path.push(name);
            let result = self.entry(dir_fd, &stat, name, visit);
            self.path.pop();
            if let Some(ino) = result? {
                subdirs.push((name, ino));
            }
        }
        visit(Visit::Done { dir: dir_fd, stat })?;
        for (name, ino) in subdirs {
            let Some(sub) = open_dir(dir_fd, name)? else {
                continue;
            };
            let now = Stat::from_raw(&fstat(&sub)?);
            // Swapped for another directory since it was listed: not the one we saw.
            if now.ino != ino || now.dev != self.dev {
                continue;
            }
            self.path.push(name);
            let result = self.dir(sub, now, visit);
            self.path.pop();
            result?;
        }
        Ok(())
    }

    /// Visits one entry; the inode of a directory to descend into, if it is one.
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        dir_stat: &Stat,
        name: &OsStr,
        visit: &mut dyn FnMut(Visit<'_>) -> io::Result<()>,
    ) -> io::Result<Option<u64>> {
        let Some(stat) = stat_at(dir, name)? else {
            return Ok(None); // removed while we walked
        };
        let (itself, below) = self.skipped();
        if !itself {
            let found = classify(&stat, self.dev);
            self.hash(&found);
            self.entries += 1;
            visit(Visit::Entry(TreeEntry {
                dir,
                dir_stat: *dir_stat,
                name,
                path: &self.path,
                stat,
                found,
            }))?;
        }
        let descend = stat.kind == Kind::Dir && stat.dev == self.dev && !below;
        Ok(descend.then_some(stat.ino))
    }

    /// Whether a skip names the current path, and whether it names everything below it.
    fn skipped(&self) -> (bool, bool) {
        let mut itself = false;
        let mut below = false;
        for s in self.skip {
            let under = self.path.starts_with(&s.path);
            itself |= self.path == s.path || s.below && under;
            below |= s.below && under;
        }
        (itself, below)
    }

    /// Adds an entry to the digest: its path relative to the root, its kind and attributes.
    fn hash(&mut self, found: &TreeFound) {
        let rel = &self.path.as_os_str().as_bytes()[self.root_len..];
        self.digest.update(rel);
        self.digest
            .update([0, found.kind as u8, u8::from(found.hardlinked)]);
        for n in [found.attrs.mode, found.attrs.uid, found.attrs.gid] {
            self.digest.update(n.to_le_bytes());
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their fixtures directly
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn walk(host: &Host, skip: &[TreeSkip]) -> (Vec<(String, TreeKind)>, TreeSummary) {
        let mut seen = Vec::new();
        let summary = host
            .walk_tree(Path::new("/srv"), Links::Any, skip, &mut |v| {
                if let Visit::Entry(e) = v {
                    seen.push((e.path.display().to_string(), e.found.kind));
                }
                Ok(())
            })
            .expect("walk");
        (seen, summary)
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
