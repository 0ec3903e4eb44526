//! Fuzz target: APT's configuration: `apt-config dump` output, os-release and apt.conf.d files.
//! The input and the properties checked are described at
//! `harden_planner::fuzzing::apt_conf`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harden_planner::fuzzing::apt_conf(data));
