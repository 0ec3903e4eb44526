//! One run at a time.

// The lock file is harden's own, opened for writing here only (`.clippy.toml`).
#![allow(clippy::disallowed_types)]

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use harden_host::Host;
use nix::fcntl::{Flock, FlockArg};

use crate::fs;
use crate::Error;

/// Held while a run may change the system; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: Flock<File>,
}

/// Takes the lock at `<state>/lock`, waiting up to `wait` for another run to finish.
pub(crate) fn acquire(host: &Host, state: &Path, wait: Duration) -> Result<Lock, Error> {
    fs::create_private_dirs(host, state).map_err(Error::Io)?;
    let path = host.outside_path(&state.join("lock"));
    let started = Instant::now();
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(Error::Io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Lock { _file: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(Error::Busy(wait)),
            Err((_, e)) => return Err(Error::Io(e.into())),
        }
    }
}
