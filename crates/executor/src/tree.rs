//! A tree step ([`harden_plan::Step::SetTreeAttrs`]): one walk that changes every entry the
//! rule says differs, and the log in the snapshot that puts them back.
//!
//! The walk goes through directory descriptors and changes each entry through a
//! descriptor of its own, opened without following it, so an entry swapped for a symlink
//! after the plan cannot redirect a change. Each entry's old attributes are appended to the
//! tree's log, and the log is synced, before the change it records is made (in batches of
//! up to [`BATCH`] entries of one directory): a crash at any point leaves a log naming every entry
//! already changed, and the restore puts back exactly those. Nothing per entry is held in
//! memory beyond one batch (the names of one directory's entries).

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use harden_host::{classify, stat_at, Host, Links, Stat, TreeEntry, TreeVisitor};
use harden_plan::{Attrs, TreeFound, TreeKind, TreeStep};
use nix::sys::stat::fstat;
use nix::unistd::fdatasync;

use crate::fs;
use crate::snapshot::PathsRestored;

/// Entries of one directory changed per synced write of the log: a sync costs about a
/// millisecond, so a tree of 100,000 entries in directories of 1,000 syncs 100 times.
const BATCH: usize = 4096;

/// How often a tree step reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Failures listed one by one in a restore; the rest are counted.
const LISTED_FAILURES: usize = 20;

/// How far a tree step has come, for progress output.
#[derive(Clone, Copy, Debug)]
pub struct TreeProgress<'a> {
    /// The tree's root.
    pub root: &'a Path,
    /// Entries walked so far.
    pub walked: u64,
    /// Entries the plan found.
    pub entries: u64,
    /// Entries changed so far.
    pub changed: u64,
}

/// One entry to change once its log record is synced.
struct Pending {
    name: OsString,
    /// Whether only root can write its directory (see [`fs::only_root_writes`]).
    trusted: bool,
    found: TreeFound,
    stat: Stat,
    to: Attrs,
}

/// What the walk's threads share: the log, the counts, and the signal to stop.
struct Shared<'a> {
    step: &'a TreeStep,
    log: std::fs::File,
    /// Held while a batch's records are written, so that batches never interleave.
    writing: Mutex<()>,
    walked: AtomicU64,
    changed: AtomicU64,
    stop: &'a AtomicBool,
    fault_after: Option<u64>,
}

/// One thread's part of the walk: the batch waiting for its log write.
struct Applier<'a> {
    shared: &'a Shared<'a>,
    batch: Vec<Pending>,
    record: Vec<u8>,
}

/// Applies `step`, logging to `log` (a file in the snapshot); the number of entries changed.
pub(crate) fn apply(
    host: &Host,
    step: &TreeStep,
    log: &Path,
    stop: &AtomicBool,
    on: &mut dyn FnMut(TreeProgress<'_>),
) -> io::Result<u64> {
    let shared = Shared {
        step,
        log: fs::open_append(host, log)?,
        writing: Mutex::new(()),
        walked: AtomicU64::new(0),
        changed: AtomicU64::new(0),
        stop,
        fault_after: fault_after(),
    };
    // The walk runs on its own threads; this one reports how far it has come.
    let walked = std::thread::scope(|scope| {
        let (finished, wait) = mpsc::channel();
        let shared = &shared;
        let walk = std::thread::Builder::new()
            .name("harden-tree".into())
            .spawn_scoped(scope, move || {
                let mut applier = Applier::new(shared);
                let walked = host.walk_tree(&step.root, Links::RootOwned, &step.skip, &mut applier);
                let _ = finished.send(());
                walked
            })?;
        while let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(PROGRESS_EVERY) {
            on(shared.progress());
        }
        walk.join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    on(shared.progress());
    walked?;
    Ok(shared.changed.load(Ordering::SeqCst))
}

impl Shared<'_> {
    fn progress(&self) -> TreeProgress<'_> {
        TreeProgress {
            root: &self.step.root,
            walked: self.walked.load(Ordering::Relaxed),
            entries: self.step.entries,
            changed: self.changed.load(Ordering::Relaxed),
        }
    }
}

impl<'a> Applier<'a> {
    fn new(shared: &'a Shared<'a>) -> Self {
        Applier {
            shared,
            batch: Vec::new(),
            record: Vec::new(),
        }
    }

    /// Writes and syncs the log records of the batch (entries of the directory `dir`),
    /// then changes its entries.
    fn flush(&mut self, dir: BorrowedFd<'_>) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let shared = self.shared;
        if shared.stop.load(Ordering::SeqCst) {
            return Err(io::Error::other("interrupted by a signal"));
        }
        {
            let _writing = shared.writing.lock().unwrap_or_else(|p| p.into_inner());
            (&shared.log).write_all(&self.record)?;
        }
        fdatasync(&shared.log)?;
        self.record.clear();
        for pending in std::mem::take(&mut self.batch) {
            if shared
                .fault_after
                .is_some_and(|n| shared.changed.load(Ordering::SeqCst) >= n)
            {
                return Err(io::Error::other("injected fault (HARDEN_FAULT_TREE)"));
            }
            if change(dir, &pending)? {
                shared.changed.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

impl TreeVisitor for Applier<'_> {
    fn fork(&self) -> Self {
        Applier::new(self.shared)
    }

    /// Nothing to take in: a fork has flushed its last batch when its last directory was
    /// done, and the counts are shared.
    fn merge(&mut self, _: Self) {}

    /// Queues the entry if the rule changes it.
    fn entry(&mut self, entry: &TreeEntry<'_>) -> io::Result<()> {
        self.shared.walked.fetch_add(1, Ordering::Relaxed);
        let step = self.shared.step;
        let Some(to) = step.target(&entry.found) else {
            return Ok(());
        };
        push_record(&mut self.record, &step.root, entry.path, &entry.found);
        self.batch.push(Pending {
            name: entry.name.to_owned(),
            trusted: fs::only_root_writes(&entry.dir_stat),
            found: entry.found,
            stat: entry.stat,
            to,
        });
        if self.batch.len() >= BATCH {
            self.flush(entry.dir)?;
        }
        Ok(())
    }

    fn done(&mut self, dir: BorrowedFd<'_>, _: &Stat) -> io::Result<()> {
        self.flush(dir)
    }
}

/// Changes one entry: by name in a directory only root can write, else through a
/// descriptor of its own, if it is still the inode the walk saw with the attributes its log
/// record names (else it is left alone: someone else is changing it). False when it was
/// left.
fn change(dir: BorrowedFd<'_>, pending: &Pending) -> io::Result<bool> {
    let kind = pending.found.kind;
    if pending.trusted {
        // Nobody but root can have swapped it since the walk looked at it.
        fs::set_tree_attrs_at(dir, &pending.name, &pending.stat, pending.to)?;
        return Ok(true);
    }
    let Some(fd) = fs::open_tree_entry(dir, &pending.name, kind)? else {
        return Ok(false); // gone, or a symlink now: never followed
    };
    let now = Stat::from_raw(&fstat(&fd)?);
    let was = &pending.stat;
    let same = (now.dev, now.ino) == (was.dev, was.ino) && classify(&now, was.dev) == pending.found;
    if !same {
        return Ok(false);
    }
    fs::set_tree_attrs(&fd, kind, &now, pending.to)?;
    Ok(true)
}

/// The debug-build fault hook: `HARDEN_FAULT_TREE=N` fails a tree step after it changed N
/// entries (its log already names the next ones), for the reliability tests.
fn fault_after() -> Option<u64> {
    #[cfg(debug_assertions)]
    {
        std::env::var("HARDEN_FAULT_TREE")
            .ok()
            .and_then(|v| v.parse().ok())
    }
    #[cfg(not(debug_assertions))]
    {
        None
    }
}

/// One log record: `KIND MODE UID GID PATH\0`, the kind `f`, `d` or `s`, the mode in octal,
/// the path relative to the root.
fn push_record(out: &mut Vec<u8>, root: &Path, path: &Path, found: &TreeFound) {
    let kind = match found.kind {
        TreeKind::File => 'f',
        TreeKind::Dir => 'd',
        _ => 's',
    };
    let a = found.attrs;
    out.extend_from_slice(format!("{kind} {:o} {} {} ", a.mode, a.uid, a.gid).as_bytes());
    let rel = path.strip_prefix(root).unwrap_or(path);
    out.extend_from_slice(rel.as_os_str().as_bytes());
    out.push(0);
}

/// A record read back: the entry's path relative to the root, kind and attributes.
struct Record {
    rel: PathBuf,
    kind: TreeKind,
    attrs: Attrs,
}

/// Parses one record (without its `\0`); `None` when it is not one.
fn parse_record(bytes: &[u8]) -> Option<Record> {
    let mut fields = bytes.splitn(5, |b| *b == b' ');
    let kind = match fields.next()? {
        b"f" => TreeKind::File,
        b"d" => TreeKind::Dir,
        b"s" => TreeKind::Special,
        _ => return None,
    };
    let mut number = |radix| {
        let text = std::str::from_utf8(fields.next()?).ok()?;
        u32::from_str_radix(text, radix).ok()
    };
    let attrs = Attrs {
        mode: number(8)?,
        uid: number(10)?,
        gid: number(10)?,
    };
    let rel = PathBuf::from(OsStr::from_bytes(fields.next()?));
    Some(Record { rel, kind, attrs })
}

/// Calls `each` for every complete record of the log at `log`. A record a crash cut short
/// is the last one and was never acted on (its change comes after the sync): it is ignored.
fn read_log(
    host: &Host,
    log: &Path,
    each: &mut dyn FnMut(Record) -> io::Result<()>,
) -> io::Result<()> {
    let mut reader = BufReader::new(fs::open_read(host, log)?);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(0, &mut buf)? == 0 || buf.last() != Some(&0) {
            return Ok(());
        }
        buf.pop();
        let record = parse_record(&buf).ok_or_else(|| {
            io::Error::other(format!("{}: a record is unreadable", log.display()))
        })?;
        each(record)?;
    }
}

/// The directory of the records being restored, opened once for all its entries.
struct Parent {
    path: PathBuf,
    /// The directory, and whether only root can write it.
    fd: io::Result<(OwnedFd, bool)>,
}

/// Opens the directory holding `path` (the last one opened when it is the same).
fn parent_of<'p>(
    host: &Host,
    cached: &'p mut Option<Parent>,
    path: &Path,
) -> &'p io::Result<(OwnedFd, bool)> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if cached.as_ref().is_some_and(|p| p.path != dir) {
        *cached = None;
    }
    let parent = cached.get_or_insert_with(|| Parent {
        path: dir.to_path_buf(),
        fd: host
            .open_parent(path, Links::RootOwned)
            .and_then(|(fd, _)| {
                let trusted = fs::only_root_writes(&Stat::from_raw(&fstat(&fd)?));
                Ok((fd, trusted))
            }),
    });
    &parent.fd
}

/// Puts back every entry the log at `log` names, as [`crate::snapshot::restore`] does one
/// path: an entry someone else turned into a symlink or another kind is left as found.
pub(crate) fn restore(host: &Host, root: &Path, log: &Path, outcome: &mut PathsRestored) {
    let mut failures = Failures::default();
    let mut cached = None;
    let result = read_log(host, log, &mut |record| {
        let path = root.join(&record.rel);
        match restore_one(host, &mut cached, &path, &record) {
            Ok(None) => {}
            Ok(Some(found)) => outcome.foreign.push(format!("{}: {found}", path.display())),
            Err(e) => failures.add(format!("{}: {e}", path.display())),
        }
        Ok(())
    });
    if let Err(e) = result {
        failures.add(format!("{}: {e}", log.display()));
    }
    outcome.failures.extend(failures.finish(root));
}

/// Restores one entry; `Some` says what someone else made of it instead.
fn restore_one(
    host: &Host,
    cached: &mut Option<Parent>,
    path: &Path,
    record: &Record,
) -> io::Result<Option<String>> {
    let (dir, trusted) = match parent_of(host, cached, path) {
        Ok((fd, trusted)) => (fd.as_fd(), *trusted),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Ok(Some(format!("a directory above it was changed: {e}")));
        }
        Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
    };
    let name = path.file_name().unwrap_or_default();
    let removed = || io::Error::other("was removed; its attributes cannot be restored");
    let Some(stat) = stat_at(dir, name)? else {
        return Err(removed());
    };
    let kind = classify(&stat, stat.dev).kind;
    if kind != record.kind {
        return Ok(Some(format!(
            "it is now a {}; left as found",
            kind_word(kind)
        )));
    }
    if attrs_of(&stat) == record.attrs {
        return Ok(None);
    }
    if trusted {
        fs::set_tree_attrs_at(dir, name, &stat, record.attrs)?;
        return Ok(None);
    }
    let Some(fd) = fs::open_tree_entry(dir, name, kind)? else {
        return Err(removed());
    };
    let now = Stat::from_raw(&fstat(&fd)?);
    if (now.dev, now.ino) != (stat.dev, stat.ino) {
        return Ok(Some(
            "it was replaced during the restore; left as found".into(),
        ));
    }
    fs::set_tree_attrs(&fd, kind, &now, record.attrs)?;
    Ok(None)
}

fn attrs_of(stat: &Stat) -> Attrs {
    Attrs {
        mode: stat.mode,
        uid: stat.uid,
        gid: stat.gid,
    }
}

fn kind_word(kind: TreeKind) -> &'static str {
    match kind {
        TreeKind::File => "file",
        TreeKind::Dir => "directory",
        TreeKind::Special => "special file",
        TreeKind::Symlink => "symlink, which harden never makes",
        TreeKind::Mount => "mount point",
    }
}

/// Restore failures, the first few listed and the rest counted.
#[derive(Default)]
struct Failures {
    listed: Vec<String>,
    more: u64,
}

impl Failures {
    fn add(&mut self, failure: String) {
        if self.listed.len() < LISTED_FAILURES {
            self.listed.push(failure);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self, root: &Path) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!(
                "{} more entries below {} could not be restored",
                self.more,
                root.display()
            ));
        }
        self.listed
    }
}

/// Writes to `into` the current attributes of every entry the log `from` names: what a
/// restore of `from` will change, so that the restore can itself be undone.
pub(crate) fn save_current(host: &Host, root: &Path, from: &Path, into: &Path) -> io::Result<()> {
    let mut out = fs::open_append(host, into)?;
    let mut record = Vec::new();
    let mut cached = None;
    read_log(host, from, &mut |r| {
        let path = root.join(&r.rel);
        let Ok((dir, _)) = parent_of(host, &mut cached, &path) else {
            return Ok(());
        };
        let name = path.file_name().unwrap_or_default();
        if let Some(now) = stat_at(dir, name)? {
            let found = classify(&now, now.dev);
            if found.kind == r.kind {
                push_record(&mut record, root, &path, &found);
            }
        }
        if record.len() >= 1 << 16 {
            out.write_all(&record)?;
            record.clear();
        }
        Ok(())
    })?;
    out.write_all(&record)?;
    out.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_even_with_spaces_in_names() {
        let mut out = Vec::new();
        let found = TreeFound {
            kind: TreeKind::Dir,
            attrs: Attrs {
                mode: 0o2750,
                uid: 1000,
                gid: 33,
            },
            hardlinked: false,
        };
        push_record(
            &mut out,
            Path::new("/srv"),
            Path::new("/srv/a b/c d"),
            &found,
        );
        assert_eq!(out, b"d 2750 1000 33 a b/c d\0");
        let record = parse_record(&out[..out.len() - 1]).expect("parses");
        assert_eq!(record.rel, Path::new("a b/c d"));
        assert_eq!(record.kind, TreeKind::Dir);
        assert_eq!(record.attrs, found.attrs);
        assert!(parse_record(b"x 1 2 3 p").is_none());
    }
}
