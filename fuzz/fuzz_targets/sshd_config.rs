//! Fuzz target: the sshd_config reader (main file and drop-ins).
//! The input and the properties checked are described at
//! `harden_planner::fuzzing::sshd_config`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harden_planner::fuzzing::sshd_config(data));
