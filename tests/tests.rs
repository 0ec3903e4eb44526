//! End-to-end tests of the `harden` binary, each in a disposable copy of the machine.

mod support;

mod cli;
mod fail2ban;
mod files;
mod sandbox;
mod sshd;
mod ufw;
mod unattended_upgrades;
