//! The one door through which harden changes files.
//!
//! Every operation resolves the parent directory through [`Host::open_parent`] with
//! [`Links::RootOwned`] (a symlink planted by an unprivileged user never redirects a write)
//! and then works on the final name with `*at` calls that do not follow it.

// This module is that door: the mutating calls `.clippy.toml` bans elsewhere live here.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use harden_host::{stat_at, Host, Kind, Links, Stat};
use harden_plan::{Attrs, TreeKind};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fchmodat, fstat, mkdirat, FchmodatFlags, Mode};
use nix::unistd::{fchownat, fsync, unlinkat, Gid, Uid, UnlinkatFlags};

fn at(path: &Path, e: impl Into<io::Error>) -> io::Error {
    let e: io::Error = e.into();
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Name of the temporary file written beside `name`; fixed, so that recovery can find and
/// remove one a crash left behind.
fn temp_name(name: &OsStr) -> Vec<u8> {
    let mut temp = b".".to_vec();
    temp.extend_from_slice(name.as_bytes());
    temp.extend_from_slice(b".harden-tmp");
    temp
}

fn stat_name<Fd: AsFd>(dir: Fd, name: &OsStr) -> io::Result<Option<Stat>> {
    stat_at(dir, name)
}

/// Replaces or creates the regular file at `path` with `content`, atomically: the new
/// content is written to a temporary file beside it, given its final owner and mode, synced,
/// renamed over the old one, and the directory is synced. The file never exists with a
/// wrong mode, and a crash leaves either the old or the new content.
pub fn write_atomic(host: &Host, path: &Path, content: &[u8], attrs: Attrs) -> io::Result<()> {
    let (dir, name) = host
        .open_parent(path, Links::RootOwned)
        .map_err(|e| at(path, e))?;
    if let Some(existing) = stat_name(&dir, &name)? {
        if existing.kind != Kind::File {
            return Err(at(
                path,
                io::Error::other(
                    format!(
                        "exists and is a {:?}, not a regular file; refusing to replace it",
                        existing.kind
                    )
                    .to_lowercase(),
                ),
            ));
        }
    }
    let temp = temp_name(&name);
    let temp = OsStr::from_bytes(&temp);
    let _ = unlinkat(&dir, temp, UnlinkatFlags::NoRemoveDir);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(&dir, temp, flags, Mode::from_bits_truncate(0o600)).map_err(|e| at(path, e))?;
    let result = (|| -> io::Result<()> {
        let mut file = std::fs::File::from(fd);
        file.write_all(content)?;
        give_attrs_and_sync(&file, attrs)?;
        renameat(&dir, temp, &dir, name.as_os_str())?;
        fsync(&dir)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = unlinkat(&dir, temp, UnlinkatFlags::NoRemoveDir);
    }
    result.map_err(|e| at(path, e))
}

/// Removes the temporary file a crashed write may have left beside `path`.
pub fn remove_leftover_temp(host: &Host, path: &Path) -> io::Result<()> {
    let (dir, name) = match host.open_parent(path, Links::RootOwned) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match unlinkat(
        &dir,
        OsStr::from_bytes(&temp_name(&name)),
        UnlinkatFlags::NoRemoveDir,
    ) {
        // Nothing left behind; or a read-only filesystem, where nothing can have been written.
        Ok(()) | Err(Errno::ENOENT) | Err(Errno::EROFS) => Ok(()),
        Err(e) => Err(at(path, e)),
    }
}

/// Sets owner and mode of the file at `path` without following it if it is a symlink.
/// Works for sockets and devices too (through an `O_PATH` descriptor).
pub fn set_attrs(host: &Host, path: &Path, attrs: Attrs) -> io::Result<()> {
    let fd = open_final(host, path, OFlag::O_PATH)?;
    let current = Stat::from_raw(&fstat(&fd).map_err(|e| at(path, e))?);
    if current.kind == Kind::Symlink {
        return Err(at(
            path,
            io::Error::other("is a symlink; refusing to change it"),
        ));
    }
    if current.uid != attrs.uid || current.gid != attrs.gid {
        fchownat(
            &fd,
            "",
            Some(Uid::from_raw(attrs.uid)),
            Some(Gid::from_raw(attrs.gid)),
            AtFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| at(path, e))?;
    }
    // chown may have cleared setuid/setgid, so compare against the file as it is now.
    let now = Stat::from_raw(&fstat(&fd).map_err(|e| at(path, e))?);
    if now.mode != attrs.mode {
        chmod_fd(&fd, attrs.mode).map_err(|e| at(path, e))?;
    }
    Ok(())
}

/// chmod through an `O_PATH` descriptor: `/proc/self/fd/N` names exactly the inode we
/// checked, so a swap between check and change cannot redirect it.
fn chmod_fd(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    fchmodat(
        AT_FDCWD,
        proc_path.as_str(),
        Mode::from_bits_truncate(mode),
        FchmodatFlags::FollowSymlink,
    )?;
    Ok(())
}

/// Opens the entry `name` of a tree's directory `dir` to change it, never following it:
/// files and directories for reading (the descriptor `fchmod` needs), anything else as an
/// `O_PATH` descriptor (a device or FIFO is never really opened). `None` when it is gone or
/// is now a symlink.
pub fn open_tree_entry(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: TreeKind,
) -> io::Result<Option<OwnedFd>> {
    let base = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let flags = match kind {
        TreeKind::File => base | OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        TreeKind::Dir => base | OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        _ => base | OFlag::O_PATH,
    };
    match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) | Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Gives the tree entry open as `fd` (see [`open_tree_entry`]), whose status is `now`, the
/// attributes `to`: owner first (chown may clear setuid bits), then the mode.
pub fn set_tree_attrs(fd: &OwnedFd, kind: TreeKind, now: &Stat, to: Attrs) -> io::Result<()> {
    let mut mode = now.mode;
    if (now.uid, now.gid) != (to.uid, to.gid) {
        fchownat(
            fd,
            "",
            Some(Uid::from_raw(to.uid)),
            Some(Gid::from_raw(to.gid)),
            AtFlags::AT_EMPTY_PATH,
        )?;
        mode = Stat::from_raw(&fstat(fd)?).mode;
    }
    if mode != to.mode {
        match kind {
            TreeKind::File | TreeKind::Dir => fchmod(fd, Mode::from_bits_truncate(to.mode))?,
            _ => chmod_fd(fd, to.mode)?,
        }
    }
    Ok(())
}

/// True when only root can add, remove or rename entries of the directory whose status is
/// `dir`: owned by root, writable by neither group nor others. With an ACL the group bits
/// are its mask, so no named user or group may write either. In such a directory an entry
/// harden just looked at cannot be swapped for a symlink by anyone else, so it may be
/// changed by name.
pub fn only_root_writes(dir: &Stat) -> bool {
    dir.kind == Kind::Dir && dir.uid == 0 && dir.mode & 0o022 == 0
}

/// Gives the entry `name` of the directory `dir`, which [`only_root_writes`], whose status
/// is `now`, the attributes `to`, by name: the owner without following it, then the mode
/// (`fchmodat` has no way not to follow before Linux 6.6; nobody but root can have made it
/// a symlink since `now` was read).
pub fn set_tree_attrs_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    now: &Stat,
    to: Attrs,
) -> io::Result<()> {
    let mut mode = now.mode;
    if (now.uid, now.gid) != (to.uid, to.gid) {
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(to.uid)),
            Some(Gid::from_raw(to.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        match stat_name(dir, name)? {
            Some(s) if s.kind != Kind::Symlink => mode = s.mode,
            _ => return Err(io::Error::other("changed while harden changed it")),
        }
    }
    if mode != to.mode {
        fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(to.mode),
            FchmodatFlags::FollowSymlink,
        )?;
    }
    Ok(())
}

/// Opens one of harden's own files to append to it (a tree's log in a snapshot).
pub fn open_append(host: &Host, path: &Path) -> io::Result<std::fs::File> {
    open_final(host, path, OFlag::O_WRONLY | OFlag::O_APPEND).map(std::fs::File::from)
}

/// Creates the directory `path` with `attrs`; its parent must exist.
pub fn create_dir(host: &Host, path: &Path, attrs: Attrs) -> io::Result<()> {
    let (dir, name) = host
        .open_parent(path, Links::RootOwned)
        .map_err(|e| at(path, e))?;
    match mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let existing = stat_name(&dir, &name)?;
            if existing.map(|s| s.kind) != Some(Kind::Dir) {
                return Err(at(path, io::Error::other("exists and is not a directory")));
            }
        }
        Err(e) => return Err(at(path, e)),
    }
    fsync(&dir).map_err(|e| at(path, e))?;
    set_attrs(host, path, attrs)
}

/// Creates an empty regular file at `path` with `attrs`, exclusively: when anything is
/// already there it is left alone (a log file the application created in the meantime is
/// never truncated), unless it is not a regular file, which is an error.
pub fn create_file(host: &Host, path: &Path, attrs: Attrs) -> io::Result<()> {
    let (dir, name) = host
        .open_parent(path, Links::RootOwned)
        .map_err(|e| at(path, e))?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(&dir, name.as_os_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => {
            return match stat_name(&dir, &name)? {
                Some(s) if s.kind == Kind::File => Ok(()),
                _ => Err(at(
                    path,
                    io::Error::other("exists and is not a regular file"),
                )),
            };
        }
        Err(e) => return Err(at(path, e)),
    };
    let file = std::fs::File::from(fd);
    give_attrs_and_sync(&file, attrs)
        .and_then(|()| Ok(fsync(&dir)?))
        .map_err(|e| at(path, e))
}

/// Gives a new file its final owner, then its mode (chown clears setuid bits), and syncs it.
fn give_attrs_and_sync(file: &std::fs::File, attrs: Attrs) -> io::Result<()> {
    fchownat(
        file,
        "",
        Some(Uid::from_raw(attrs.uid)),
        Some(Gid::from_raw(attrs.gid)),
        AtFlags::AT_EMPTY_PATH,
    )?;
    fchmod(file, Mode::from_bits_truncate(attrs.mode))?;
    file.sync_all()
}

/// Removes the file (or empty directory) at `path`; missing is fine.
pub fn remove(host: &Host, path: &Path) -> io::Result<()> {
    let (dir, name) = match host.open_parent(path, Links::RootOwned) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(at(path, e)),
    };
    let flag = match stat_name(&dir, &name)? {
        None => return Ok(()),
        Some(s) if s.kind == Kind::Dir => UnlinkatFlags::RemoveDir,
        Some(_) => UnlinkatFlags::NoRemoveDir,
    };
    unlinkat(&dir, name.as_os_str(), flag).map_err(|e| at(path, e))?;
    fsync(&dir).map_err(|e| at(path, e))?;
    Ok(())
}

/// Creates `path` and any missing parents as root-only directories (for harden's own state).
pub fn create_private_dirs(host: &Host, path: &Path) -> io::Result<()> {
    let mut current = std::path::PathBuf::from("/");
    for part in path.components().skip(1) {
        current.push(part);
        match host.stat(&current)? {
            Some(s) if s.kind == Kind::Dir => continue,
            Some(_) => {
                return Err(at(
                    &current,
                    io::Error::other("exists and is not a directory"),
                ))
            }
            None => create_dir(
                host,
                &current,
                Attrs {
                    mode: 0o700,
                    uid: 0,
                    gid: 0,
                },
            )?,
        }
    }
    Ok(())
}

/// Writes one of harden's own files (snapshot data, journal) atomically, root-only.
pub fn write_private(host: &Host, path: &Path, content: &[u8]) -> io::Result<()> {
    write_atomic(
        host,
        path,
        content,
        Attrs {
            mode: 0o600,
            uid: 0,
            gid: 0,
        },
    )
}

/// Opens `path` for reading without following a final symlink.
pub fn open_read(host: &Host, path: &Path) -> io::Result<std::fs::File> {
    Ok(std::fs::File::from(open_final(
        host,
        path,
        OFlag::O_RDONLY,
    )?))
}

/// Opens the final component of `path` with `flags`, never following it.
fn open_final(host: &Host, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let (dir, name) = host
        .open_parent(path, Links::RootOwned)
        .map_err(|e| at(path, e))?;
    openat(
        &dir,
        name.as_os_str(),
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| at(path, e))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their fixtures directly
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn me() -> (u32, u32) {
        let meta = std::fs::metadata("/proc/self").expect("proc");
        (meta.uid(), meta.gid())
    }

    #[test]
    fn atomic_write_creates_with_final_mode_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path());
        let (uid, gid) = me();
        std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
        write_atomic(
            &host,
            Path::new("/etc/app.conf"),
            b"one\n",
            Attrs {
                mode: 0o640,
                uid,
                gid,
            },
        )
        .expect("write");
        write_atomic(
            &host,
            Path::new("/etc/app.conf"),
            b"two\n",
            Attrs {
                mode: 0o600,
                uid,
                gid,
            },
        )
        .expect("write");
        let path = dir.path().join("etc/app.conf");
        assert_eq!(std::fs::read(&path).expect("read"), b"two\n");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o7777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("etc"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec!["app.conf"], "no temporary file is left behind");
    }

    #[test]
    fn writes_never_go_through_a_final_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path());
        let (uid, gid) = me();
        std::fs::write(dir.path().join("secret"), "keep").expect("write");
        symlink(dir.path().join("secret"), dir.path().join("link")).expect("symlink");
        assert!(write_atomic(
            &host,
            Path::new("/link"),
            b"x",
            Attrs {
                mode: 0o644,
                uid,
                gid
            }
        )
        .is_err());
        assert!(set_attrs(
            &host,
            Path::new("/link"),
            Attrs {
                mode: 0o777,
                uid,
                gid
            }
        )
        .is_err());
        assert_eq!(
            std::fs::read(dir.path().join("secret")).expect("read"),
            b"keep"
        );
    }

    #[test]
    fn set_attrs_changes_mode_and_create_dir_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path());
        let (uid, gid) = me();
        std::fs::write(dir.path().join("f"), "").expect("write");
        set_attrs(
            &host,
            Path::new("/f"),
            Attrs {
                mode: 0o600,
                uid,
                gid,
            },
        )
        .expect("chmod");
        assert_eq!(
            std::fs::metadata(dir.path().join("f"))
                .expect("meta")
                .mode()
                & 0o7777,
            0o600
        );
        create_dir(
            &host,
            Path::new("/d"),
            Attrs {
                mode: 0o750,
                uid,
                gid,
            },
        )
        .expect("mkdir");
        create_dir(
            &host,
            Path::new("/d"),
            Attrs {
                mode: 0o750,
                uid,
                gid,
            },
        )
        .expect("mkdir again");
        assert_eq!(
            std::fs::metadata(dir.path().join("d"))
                .expect("meta")
                .mode()
                & 0o7777,
            0o750
        );
        remove(&host, Path::new("/d")).expect("rmdir");
        remove(&host, Path::new("/d")).expect("missing is fine");
        assert!(!dir.path().join("d").exists());
    }
}
