//! Access to the managed system, rooted at a prefix.
//!
//! Every probe of the live system goes through [`Host`], so the live root (`/`) and an image
//! mounted elsewhere (`--root DIR`) are read by the same code. The crate reads and runs
//! commands; it never writes. Writing belongs to the executor, which reuses
//! [`Host::open_parent`] so that reads and writes resolve paths the same, symlink-safe way.
//!
//! Path resolution is the main design decision: a path is walked one component at a time
//! with `openat(O_NOFOLLOW)`, never handed to the kernel whole. Symlinks met on the way are
//! resolved by us, inside the root, so an image's absolute links (`/var/run -> /run`) stay in
//! the image, and the executor can refuse links it does not trust. Where any link may be
//! followed (reads), one `openat2` (`RESOLVE_IN_ROOT` under `--root`) asks the kernel for the
//! same resolution in one call; the walk answers where the kernel refuses it or the lookup
//! fails otherwise than by a missing name.

mod command;
mod listening;
mod path;
mod socket;
mod stat;
mod tree;
mod users;
mod walk;

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use command::{CommandError, Output};
pub use path::Links;
pub use stat::{stat_at, Kind, Stat};
pub use tree::{classify, TreeEntry, TreeSummary, TreeVisitor, Unvisited};
pub use users::{Account, Group, UserDb};
pub use walk::WalkEntry;

/// Bound on one `systemctl is-enabled` or `is-active` query.
const UNIT_QUERY_TIMEOUT: u64 = 15;

/// The managed system: `/` or an image mounted at `--root`.
#[derive(Clone, Debug)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// The system rooted at `root` (`/` for the live system).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Host { root: root.into() }
    }

    /// The root prefix.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when this is the running system rather than an image under `--root`.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Where an absolute path of the managed system lies on this machine. Only for reads
    /// that cannot be done through the safe helpers (globbing, handing a path to a tool).
    pub fn outside_path(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap_or(path);
        if relative.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(relative)
        }
    }

    /// Opens the directory holding `path` and returns it with the final component, which is
    /// never followed. `links` decides which symlinks on the way may be followed.
    pub fn open_parent(&self, path: &Path, links: Links) -> io::Result<(OwnedFd, OsString)> {
        path::open_parent(&self.root, path, links)
    }

    /// Ports of listening TCP sockets (IPv4 and IPv6) of the live system's network, from the
    /// kernel; an error under `--root`, where the image has no network of its own.
    pub fn listening_tcp_ports(&self) -> io::Result<std::collections::BTreeSet<u16>> {
        if !self.is_live() {
            return Err(io::Error::other("an image under --root has no sockets"));
        }
        listening::tcp_ports()
    }

    /// Status of `path` without following a final symlink; `None` when it does not exist.
    pub fn stat(&self, path: &Path) -> io::Result<Option<Stat>> {
        // The root has no parent to open it from: `/swapfile` is planned against `/`.
        if path.is_absolute() && path.components().count() == 1 {
            return Ok(Some(Stat::from_raw(&nix::sys::stat::stat(&self.root)?)));
        }
        match self.open_parent(path, Links::Any) {
            Ok((dir, name)) => stat::stat_at(&dir, &name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Content of the regular file at `path`, following symlinks inside the root; `None` when
    /// it does not exist.
    pub fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        path::read(&self.root, path)
    }

    /// Content of `path` as text (invalid UTF-8 is replaced); `None` when it does not exist.
    pub fn read_to_string(&self, path: &Path) -> io::Result<Option<String>> {
        Ok(self
            .read(path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Names in the directory at `path`, sorted bytewise (as sshd and run-parts sort);
    /// empty when it does not exist.
    pub fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        path::read_dir(&self.root, path)
    }

    /// Walks the tree at `path` depth-first without following symlinks or leaving its
    /// filesystem, calling `visit` for the root and every entry below it.
    pub fn walk(
        &self,
        path: &Path,
        visit: impl FnMut(WalkEntry) -> io::Result<()>,
    ) -> io::Result<()> {
        walk::walk(self, path, visit)
    }

    /// Walks the tree below the directory `root` (resolved with `links`), showing
    /// `visitor` every entry that no `skip` names, each directory's entries in byte order
    /// and before its subdirectories, and each directory once its entries are done.
    /// Subdirectories are walked side by side, each with a visitor forked from its
    /// parent's and merged back in walk order. Never follows a symlink and never enters
    /// another filesystem; the summary counts and hashes the entries visited.
    pub fn walk_tree<V: TreeVisitor>(
        &self,
        root: &Path,
        links: Links,
        skip: &[harden_plan::TreeSkip],
        visitor: &mut V,
    ) -> io::Result<TreeSummary> {
        tree::walk_tree(self, root, links, skip, visitor)
    }

    /// The user and group database of the managed system.
    pub fn users(&self) -> io::Result<UserDb> {
        UserDb::load(self)
    }

    /// True when the managed system is running under systemd (never under `--root`).
    pub fn has_systemd(&self) -> bool {
        self.is_live() && Path::new("/run/systemd/system").is_dir()
    }

    /// Finds `program` in the managed system's standard binary directories (the `PATH`
    /// every command runs with).
    pub fn which(&self, program: &str) -> Option<PathBuf> {
        command::PATH
            .split(':')
            .map(|dir| Path::new(dir).join(program))
            .find(|p| {
                matches!(self.stat(p), Ok(Some(s)) if s.kind != Kind::Dir)
                    || self.outside_path(p).is_file()
            })
    }

    /// A unit's state in `systemctl`'s words. Enablement is read offline where systemd does
    /// not run (in a chroot and under `--root`, `systemctl` reads the unit files itself);
    /// the run state is `unknown` there. `None` when `systemctl` is not installed.
    pub async fn unit_state(&self, unit: &str) -> Option<harden_plan::UnitState> {
        self.which("systemctl")?;
        let ask = |verb: &str| {
            harden_plan::Command::new(["systemctl", verb, unit]).timeout(UNIT_QUERY_TIMEOUT)
        };
        // Both print their answer on stdout and exit non-zero for "no": the word is what counts.
        let word = |out: Result<Output, CommandError>| {
            out.ok()
                .and_then(|o| o.stdout.lines().next().map(|l| l.trim().to_owned()))
                .filter(|w| !w.is_empty())
        };
        let enablement =
            word(self.run(&ask("is-enabled")).await).unwrap_or_else(|| "not-found".into());
        let active = if self.has_systemd() {
            word(self.run(&ask("is-active")).await).unwrap_or_else(|| "unknown".into())
        } else {
            "unknown".into()
        };
        Some(harden_plan::UnitState { enablement, active })
    }

    /// Sends `request` to the stream socket at `path` of the running system and reads the
    /// answer up to and including `end` (or to the end of the stream), within `timeout`.
    /// A daemon's socket is a question to that daemon, never a write to the system; under
    /// `--root` there is no daemon to ask, so this is an error there.
    pub async fn ask_socket(
        &self,
        path: &Path,
        request: &[u8],
        end: &[u8],
        timeout: std::time::Duration,
    ) -> io::Result<Vec<u8>> {
        if !self.is_live() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the daemons of an image under --root do not run",
            ));
        }
        socket::ask(path, request, end, timeout).await
    }

    /// Runs `cmd` inside the managed system (chrooted under `--root`) with its timeout.
    pub async fn run(&self, cmd: &harden_plan::Command) -> Result<Output, CommandError> {
        command::run(&self.root, cmd).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file directly under the root (`/swapfile`) has `/` as its parent, which has none.
    #[test]
    fn the_root_itself_can_be_stat_ed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path());
        let root = host.stat(Path::new("/")).expect("stat").expect("exists");
        assert_eq!(root.kind, Kind::Dir);
    }
}
