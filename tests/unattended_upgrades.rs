//! End-to-end tests: unattended_upgrades.
