//! End-to-end tests: files.
