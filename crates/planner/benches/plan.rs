//! `harden plan` should take tens of milliseconds.
//!
//! `cargo bench -p harden-planner --bench plan` plans the built-in baseline against this
//! machine (read-only: planning never writes) and reports the median and worst of 20 runs,
//! probes included.

#![allow(missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant};

use harden_host::Host;
use harden_planner::{load_files, plan, Options};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let host = Host::new("/");
    let mut times: Vec<Duration> = Vec::new();
    let mut changes = 0;
    for _ in 0..20 {
        let start = Instant::now();
        let loaded = load_files(&[] as &[&str]).expect("baseline");
        match runtime.block_on(plan(&host, &loaded, &Options::default())) {
            Ok(p) => changes = p.changes.len(),
            Err(e) => println!("plan refused or failed (still timed): {e}"),
        }
        times.push(start.elapsed());
    }
    times.sort();
    println!("baseline plan, {changes} changes");
    println!(
        "median: {:>7.1} ms",
        times[times.len() / 2].as_secs_f64() * 1e3
    );
    println!(
        "worst:  {:>7.1} ms",
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}
