//! The booted tier: harden on machines that boot with systemd as PID 1 (`systemd-nspawn`),
//! Debian 12 (a copy of this machine) and Debian 13 (the image `tests/setup-debian.sh`
//! builds). See `support/booted.rs` for the harness.

mod harness;
