//! Fuzz target: the fail2ban INI reader and its merge-order model.
//! The input and the properties checked are described at
//! `harden_planner::fuzzing::fail2ban_ini`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harden_planner::fuzzing::fail2ban_ini(data));
