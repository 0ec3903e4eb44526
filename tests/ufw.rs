//! End-to-end tests: ufw.
