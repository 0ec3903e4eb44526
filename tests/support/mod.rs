//! Shared helpers for the end-to-end tests.
//!
//! The heart of it is [`Sandbox`]: a disposable, copy-on-write copy of this
//! machine (overlay on `/`, private mount, network, PID, UTS and IPC
//! namespaces) in which a test runs real commands as root. See
//! `support/sandbox.rs` for how it is built and what it protects.
//!
//! A test body is simply:
//!
//! ```ignore
//! #[test]
//! fn something() {
//!     let Some(sb) = crate::sandbox!() else { return };
//!     sb.sh("sshd -t").assert_ok();
//! }
//! ```
// Not every test module uses every helper.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod apt_cache;
pub mod booted;
pub mod fixtures;
pub mod sandbox;

pub use fixtures::{
    assert_located_errors, assert_plan_schema, keyed_admin, sshd_t, start_sshd, wait_listening,
};

pub use sandbox::{
    is_root, root_available, Peer, Run, Sandbox, COMMAND_TIMEOUT, HARDEN_IN_SANDBOX, SANDBOX_PATH,
};
// The macros `sandbox!` and `require_root!` are `#[macro_export]`ed: call
// them as `crate::sandbox!()` / `crate::require_root!()`, or `use
// crate::sandbox;` first for a bare `sandbox!()`.
