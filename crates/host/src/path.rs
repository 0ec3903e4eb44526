//! Symlink-safe path resolution inside a root.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::Mode;

use crate::stat::{stat_at, Kind};

/// The kernel's own limit on symlinks in one lookup.
const MAX_LINKS: usize = 40;

/// Which symlinks a lookup may follow on its way to the final component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Any link, resolved inside the root. Fine for reading.
    Any,
    /// Only links owned by root. Used before writing, so that a link planted by an
    /// unprivileged user can never redirect a write (the `/var/run -> /run` kind is root's).
    RootOwned,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {why}", path.display()),
    )
}

/// The normal components of an absolute path, with `..` applied lexically.
fn components(path: &Path) -> io::Result<Vec<OsString>> {
    if !path.is_absolute() {
        return Err(invalid(path, "not an absolute path"));
    }
    let mut parts: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => parts.push(name.to_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(parts)
}

/// Set once the kernel has refused `openat2` (older than 5.6, or a seccomp filter that does
/// not know it), so that every later lookup walks at once.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens the directory `parts` names inside `root` in one lookup: `openat2` resolves every
/// symlink as if `root` were `/`, as the component walk below does for [`Links::Any`] with
/// one system call per component. (One difference: a `..` inside a link's target is applied
/// to the directory the link led to, as the kernel applies it for the daemon that reads the
/// file, where the walk applies it to the path.) `None` when the walk must answer instead:
/// the kernel refused `openat2`, or any error but a missing component (the walk words them).
fn open_dir_in_root(root: &Path, parts: &[OsString]) -> Option<io::Result<OwnedFd>> {
    if NO_OPENAT2.load(Ordering::Relaxed) {
        return None;
    }
    let how = OpenHow::new().flags(dir_flags() & !OFlag::O_NOFOLLOW);
    let relative: PathBuf = parts.iter().collect();
    let relative = if parts.is_empty() {
        Path::new(".")
    } else {
        relative.as_path()
    };
    let opened = if root == Path::new("/") {
        // The process's own root, whatever its working directory: RESOLVE_IN_ROOT would
        // take the working directory for the root.
        let how = how.resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(AT_FDCWD, &Path::new("/").join(relative), how)
    } else {
        let how = how.resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let dir = match openat(AT_FDCWD, root, dir_flags(), Mode::empty()) {
            Ok(dir) => dir,
            Err(e) => return Some(Err(e.into())),
        };
        openat2(&dir, relative, how)
    };
    match opened {
        Ok(fd) => Some(Ok(fd)),
        Err(Errno::ENOENT) => Some(Err(io::Error::from(io::ErrorKind::NotFound))),
        Err(Errno::ENOSYS | Errno::EPERM | Errno::E2BIG) => {
            NO_OPENAT2.store(true, Ordering::Relaxed);
            None
        }
        Err(_) => None,
    }
}

/// True when `path` has a `..`: the walk applies it lexically, before any symlink, where the
/// kernel would apply it to the directory a symlink led to.
fn has_parent_dir(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

/// Opens the directory that holds `path` and returns it with the final name.
pub(crate) fn open_parent(
    root: &Path,
    path: &Path,
    links: Links,
) -> io::Result<(OwnedFd, OsString)> {
    let mut pending = components(path)?;
    let Some(name) = pending.pop() else {
        return Err(invalid(path, "the root itself has no parent"));
    };
    if links == Links::Any && !has_parent_dir(path) {
        if let Some(opened) = open_dir_in_root(root, &pending) {
            return opened.map(|dir| (dir, name));
        }
    }
    walk_parent(root, path, links, pending, name)
}

/// [`open_parent`] one component at a time, each opened without following it, so that every
/// symlink on the way is seen and judged by `links`.
fn walk_parent(
    root: &Path,
    path: &Path,
    links: Links,
    mut pending: Vec<OsString>,
    mut name: OsString,
) -> io::Result<(OwnedFd, OsString)> {
    let mut followed = 0;
    'restart: loop {
        let mut dir = openat(AT_FDCWD, root, dir_flags(), Mode::empty())?;
        let mut walked = PathBuf::from("/");
        for (i, part) in pending.iter().enumerate() {
            match openat(&dir, part.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(next) => {
                    dir = next;
                    walked.push(part);
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    let Some(st) = stat_at(&dir, part)? else {
                        return Err(io::Error::from(io::ErrorKind::NotFound));
                    };
                    if st.kind != Kind::Symlink {
                        return Err(invalid(&walked.join(part), "not a directory"));
                    }
                    if links == Links::RootOwned && st.uid != 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!(
                                "{}: refusing to follow a symlink owned by uid {} on the way to {}",
                                walked.join(part).display(),
                                st.uid,
                                path.display()
                            ),
                        ));
                    }
                    followed += 1;
                    if followed > MAX_LINKS {
                        return Err(Errno::ELOOP.into());
                    }
                    let target = PathBuf::from(readlinkat(&dir, part.as_os_str())?);
                    let resolved = if target.is_absolute() {
                        target
                    } else {
                        walked.join(target)
                    };
                    let mut rest = components(&resolved)?;
                    rest.extend(pending[i + 1..].iter().cloned());
                    pending = rest;
                    continue 'restart;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if name.is_empty() {
            name = OsString::from(".");
        }
        return Ok((dir, name));
    }
}

/// Reads a regular file, following symlinks (also the final one) inside the root.
pub(crate) fn read(root: &Path, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let (dir, name) = match open_parent(root, &current, Links::Any) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match openat(
            &dir,
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let mut file = File::from(fd);
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                return Ok(Some(bytes));
            }
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                let target = PathBuf::from(readlinkat(&dir, name.as_os_str())?);
                current = if target.is_absolute() {
                    target
                } else {
                    current.parent().unwrap_or(Path::new("/")).join(target)
                };
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("{}: {e}", path.display()),
                ))
            }
        }
    }
    Err(Errno::ELOOP.into())
}

/// Names in a directory, sorted bytewise; empty when it does not exist.
pub(crate) fn read_dir(root: &Path, path: &Path) -> io::Result<Vec<OsString>> {
    let dir = if components(path)?.is_empty() {
        openat(AT_FDCWD, root, dir_flags(), Mode::empty())?
    } else {
        let (parent, name) = match open_parent(root, path, Links::Any) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        match open_dir_following(root, &parent, &name, path)? {
            Some(fd) => fd,
            None => return Ok(Vec::new()),
        }
    };
    let mut names: Vec<OsString> = nix::dir::Dir::from_fd(dir)?
        .iter()
        .filter_map(Result::ok)
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Opens a directory named `name` in `parent`; a symlink there is resolved inside the root.
fn open_dir_following(
    root: &Path,
    parent: &OwnedFd,
    name: &OsStr,
    path: &Path,
) -> io::Result<Option<OwnedFd>> {
    match openat(parent.as_fd(), name, dir_flags(), Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
            // Resolve the final link by asking for a child of it, then take the parent.
            let (fd, _) = match open_parent(root, &path.join("x"), Links::Any) {
                Ok(found) => found,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            Ok(Some(fd))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their fixtures directly
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/ssh")).expect("mkdir");
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::create_dir_all(root.join("var")).expect("mkdir");
        std::fs::write(root.join("etc/ssh/sshd_config"), "Port 22\n").expect("write");
        std::fs::write(root.join("run/docker.sock"), "").expect("write");
        symlink("/run", root.join("var/run")).expect("symlink");
        symlink("../../../../../etc/ssh", root.join("etc/escape")).expect("symlink");
        dir
    }

    #[test]
    fn absolute_links_resolve_inside_the_root() {
        let dir = tree();
        let (fd, name) = open_parent(dir.path(), Path::new("/var/run/docker.sock"), Links::Any)
            .expect("resolve");
        assert_eq!(name, "docker.sock");
        assert!(stat_at(&fd, &name).expect("stat").is_some());
    }

    #[test]
    fn dot_dot_cannot_leave_the_root() {
        let dir = tree();
        let bytes = read(dir.path(), Path::new("/etc/escape/sshd_config")).expect("read");
        assert_eq!(bytes.as_deref(), Some(&b"Port 22\n"[..]));
        let bytes = read(dir.path(), Path::new("/../../etc/ssh/sshd_config")).expect("read");
        assert_eq!(bytes.as_deref(), Some(&b"Port 22\n"[..]));
    }

    #[test]
    fn missing_files_read_as_none() {
        let dir = tree();
        assert_eq!(
            read(dir.path(), Path::new("/etc/nope/x")).expect("read"),
            None
        );
        assert!(read_dir(dir.path(), Path::new("/nope"))
            .expect("read_dir")
            .is_empty());
    }

    #[test]
    fn read_dir_sorts_bytewise_and_follows_links() {
        let dir = tree();
        std::fs::write(dir.path().join("run/b"), "").expect("write");
        std::fs::write(dir.path().join("run/B"), "").expect("write");
        let names = read_dir(dir.path(), Path::new("/var/run")).expect("read_dir");
        assert_eq!(names, vec!["B", "b", "docker.sock"]);
    }

    /// The one-lookup path and the walk open the same directory, or fail alike, for links
    /// absolute, relative, escaping, chained and dangling, and a file on the way.
    #[test]
    fn one_lookup_and_the_walk_agree() {
        let dir = tree();
        let root = dir.path();
        std::fs::create_dir_all(root.join("srv/app/conf")).expect("mkdir");
        std::fs::write(root.join("srv/app/file"), "").expect("write");
        symlink("app/conf", root.join("srv/conf")).expect("symlink");
        symlink("/srv/conf", root.join("srv/chain")).expect("symlink");
        symlink("/nowhere", root.join("srv/dangling")).expect("symlink");
        let paths = [
            "/etc/ssh/sshd_config",
            "/var/run/docker.sock",
            "/etc/escape/sshd_config",
            "/srv/conf/x",
            "/srv/chain/x",
            "/srv/dangling/x",
            "/srv/app/file/x",
            "/srv/missing/x",
            "/x",
        ];
        let identity = |fd: &OwnedFd| {
            let st = nix::sys::stat::fstat(fd).expect("fstat");
            (st.st_dev, st.st_ino)
        };
        for path in paths {
            let path = Path::new(path);
            let mut parts = components(path).expect("components");
            let name = parts.pop().expect("a name");
            let walked = walk_parent(root, path, Links::Any, parts.clone(), name.clone());
            let looked_up = open_dir_in_root(root, &parts);
            match (walked, looked_up) {
                (Ok((a, _)), Some(Ok(b))) => assert_eq!(identity(&a), identity(&b), "{path:?}"),
                (Err(a), Some(Err(b))) => assert_eq!(a.kind(), b.kind(), "{path:?}"),
                (Err(_), None) => {}
                (walked, looked_up) => {
                    panic!("{path:?}: the walk gave {walked:?}, the lookup {looked_up:?}")
                }
            }
        }
    }

    /// On the live root, a path is looked up from `/`, not from the working directory
    /// (the tests run in the crate's directory).
    #[test]
    fn the_live_root_is_slash_whatever_the_working_directory() {
        let dir = tree();
        assert_ne!(std::env::current_dir().expect("cwd"), Path::new("/"));
        let path = dir.path().join("etc/ssh/sshd_config");
        let mut parts = components(&path).expect("components");
        parts.pop();
        let found = open_dir_in_root(Path::new("/"), &parts);
        let fd = match found {
            Some(Ok(fd)) => fd,
            None => return, // a kernel without openat2: the walk answers
            Some(Err(e)) => panic!("{}: {e}", path.display()),
        };
        assert!(stat_at(&fd, OsStr::new("sshd_config"))
            .expect("stat")
            .is_some());
    }

    #[test]
    fn relative_paths_are_refused() {
        let dir = tree();
        let err = open_parent(dir.path(), Path::new("etc/ssh"), Links::Any).expect_err("relative");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
