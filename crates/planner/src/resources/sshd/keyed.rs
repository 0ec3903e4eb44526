//! The accounts that can log in with a key now, published as a fact for the lockout guards
//! of resources that change accounts (`users`), judged by this resource's own guard code.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use harden_host::{Host, UserDb};

use super::guards::{self, AccountFacts, Evidence, Settings};
use super::probe::{self, Dump};
use super::Sshd;
use crate::facts::KeyLogins;

/// What OpenSSH assumes when `sshd -T` cannot say (sshd not runnable here): its compiled-in
/// defaults for the settings a key login depends on.
const OPENSSH_DEFAULTS: &str = "pubkeyauthentication yes\nusepam yes\npermitrootlogin prohibit-password\nstrictmodes yes\nauthorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n";

/// The Allow/Deny lists, which decide whether a change of an account's groups refuses it.
const LISTS: [&str; 4] = ["allowusers", "denyusers", "allowgroups", "denygroups"];

/// The accounts with a login shell and a usable key under the configuration `dump` shows
/// (sshd's global answer: `Match` blocks are not evaluated); empty when sshd is missing. The
/// published list check is that of the configuration after the plan: the lists `section`
/// sets replace the current ones.
pub(crate) fn key_logins(
    host: &Host,
    users: &UserDb,
    dump: Option<&Result<String, String>>,
    section: Option<&Sshd>,
) -> KeyLogins {
    if host.which("sshd").is_none() {
        return KeyLogins::default();
    }
    let dump = match dump {
        Some(Ok(text)) => Dump::parse(text),
        _ => Dump::parse(OPENSSH_DEFAULTS),
    };
    let mut settings = Settings::from_dump(&dump);
    let shadow = host
        .read_to_string(Path::new("/etc/shadow"))
        .ok()
        .flatten()
        .unwrap_or_default();
    let today = probe::days_since_epoch();
    let now = jiff::Timestamp::now().strftime("%Y%m%d%H%M%S").to_string();
    let mut files = BTreeMap::new();
    let (no_answers, no_paths) = (BTreeMap::new(), BTreeMap::new());
    let mut accounts = Vec::new();
    for account in users.accounts() {
        if !probe::login_shell(host, &account.shell) {
            continue;
        }
        let facts = guards::account_facts(account, users.groups_of(account), &shadow, today);
        for token in settings.key_files() {
            let path = guards::expand(token, &facts);
            if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(path) {
                let path = slot.key().clone();
                if let Some(file) = probe::read_key_file(host, users, &path, &facts.home, &now) {
                    slot.insert(file);
                }
            }
        }
        let evidence = Evidence {
            files: &files,
            answers: &no_answers,
            exists: &no_paths,
        };
        if guards::key_login(&facts, &settings, &evidence).is_ok() {
            accounts.push((facts.name.clone(), facts.uid));
        }
    }
    let refuses_locked = !settings.use_pam();
    for d in section.iter().flat_map(|s| &s.config.0) {
        let key = d.key();
        if LISTS.contains(&key.as_str()) {
            let values = d
                .lines()
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
            settings.set_list(&key, values);
        }
    }
    let lists = Arc::new(move |name: &str, groups: &[String]| {
        let who = AccountFacts {
            name: name.to_owned(),
            uid: u32::MAX,
            home: "/".into(),
            shell: "/bin/sh".into(),
            groups: groups.to_vec(),
            locked: false,
            expired: false,
        };
        guards::refused_by_lists(&who, &settings)
    });
    KeyLogins {
        accounts,
        refuses_locked,
        lists: Some(lists),
    }
}
