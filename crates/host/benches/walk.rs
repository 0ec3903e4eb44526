//! Walking 100,000 files should cost about what `find -xdev` costs.
//!
//! `cargo bench -p harden-host --bench walk` builds a tree of 100,000 files in a temporary
//! directory, then reports the best of five runs of [`Host::walk`] (with a status per entry,
//! as the `files` resource needs) and of `find -xdev -printf` over the same tree.

#![allow(
    missing_docs,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harden_host::Host;

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 1000;

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    for d in 0..DIRS {
        let sub = tree.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..FILES_PER_DIR {
            std::fs::write(sub.join(format!("f{f:04}")), b"x").expect("write");
        }
    }
    let host = Host::new(dir.path());
    let mut entries = 0usize;
    let walk = best_of(5, || {
        entries = 0;
        host.walk(Path::new("/tree"), |_| {
            entries += 1;
            Ok(())
        })
        .expect("walk");
    });
    let find = best_of(5, || {
        let status = Command::new("find")
            .arg(&tree)
            .args(["-xdev", "-printf", "%m %U %G %p\\n"])
            .stdout(Stdio::null())
            .status()
            .expect("find");
        assert!(status.success());
    });
    println!("entries walked:       {entries}");
    println!("harden walk (best/5): {:>8.1} ms", walk.as_secs_f64() * 1e3);
    println!("find -xdev  (best/5): {:>8.1} ms", find.as_secs_f64() * 1e3);
    println!(
        "ratio walk/find:      {:>8.2}",
        walk.as_secs_f64() / find.as_secs_f64()
    );
}
