//! End-to-end tests: sshd.
