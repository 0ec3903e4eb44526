//! End-to-end tests: fail2ban.
