//! End-to-end tests of the `harden` binary, each in a disposable copy of the machine.

// Tests build their fixtures directly; the one-door rule is for the product.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod support;

mod audit;
mod baseline;
mod booted;
mod cli;
mod env_files;
mod examples;
mod fail2ban;
mod fail2ban_reader;
mod files;
mod kernel_modules;
mod limits;
mod login_defs;
mod packages;
mod pam;
mod reliability;
mod rollback;
mod sandbox;
mod saved_plans;
mod schema;
mod seeds;
mod services;
mod sshd;
mod sysctl;
mod tree;
mod ufw;
mod unattended_upgrades;
mod users;
