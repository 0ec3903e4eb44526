//! Fuzz target: the playbook loader, YAML to a validated Playbook as `harden validate` runs it.
//! The input and the properties checked are described at
//! `harden_planner::fuzzing::playbook`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| harden_planner::fuzzing::playbook(data));
