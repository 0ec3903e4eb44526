//! Fuzz target: ufw's rules files (`### tuple ###` lines), settings, profiles and services.
//! The input and the properties checked are described at
//! `harden_planner::fuzzing::ufw_state`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harden_planner::fuzzing::ufw_state(data));
