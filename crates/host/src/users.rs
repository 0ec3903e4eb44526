//! Users and groups of the managed system.
//!
//! Under `--root` the image's own `/etc/passwd` and `/etc/group` are the database. On the
//! live system those files come first and the C library's NSS lookup (LDAP, sssd...) answers
//! what they do not list.

use std::io;
use std::path::{Path, PathBuf};

use crate::Host;

/// One line of `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell.
    pub shell: String,
}

/// One line of `/etc/group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// The user and group database.
#[derive(Clone, Debug)]
pub struct UserDb {
    live: bool,
    accounts: Vec<Account>,
    groups: Vec<Group>,
}

impl UserDb {
    pub(crate) fn load(host: &Host) -> io::Result<Self> {
        let passwd = host
            .read_to_string(Path::new("/etc/passwd"))?
            .unwrap_or_default();
        let group = host
            .read_to_string(Path::new("/etc/group"))?
            .unwrap_or_default();
        Ok(UserDb::parse(host.is_live(), &passwd, &group))
    }

    /// A database from the text of `passwd` and `group` files.
    pub fn parse(live: bool, passwd: &str, group: &str) -> Self {
        let accounts = passwd
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() >= 7).then(|| -> Option<Account> {
                    Some(Account {
                        name: f[0].to_owned(),
                        uid: f[2].parse().ok()?,
                        gid: f[3].parse().ok()?,
                        home: PathBuf::from(f[5]),
                        shell: f[6].to_owned(),
                    })
                })?
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() >= 4).then(|| -> Option<Group> {
                    Some(Group {
                        name: f[0].to_owned(),
                        gid: f[2].parse().ok()?,
                        members: f[3]
                            .split(',')
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    })
                })?
            })
            .collect();
        UserDb {
            live,
            accounts,
            groups,
        }
    }

    /// Accounts listed in `/etc/passwd`, in file order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Groups listed in `/etc/group`, in file order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<Account> {
        if let Some(a) = self.accounts.iter().find(|a| a.name == name) {
            return Some(a.clone());
        }
        if !self.live {
            return None;
        }
        let user = uzers::get_user_by_name(name)?;
        Some(Account {
            name: name.to_owned(),
            uid: user.uid(),
            gid: user.primary_group_id(),
            home: uzers::os::unix::UserExt::home_dir(&user).to_path_buf(),
            shell: uzers::os::unix::UserExt::shell(&user).display().to_string(),
        })
    }

    /// The uid of a user name.
    pub fn uid(&self, name: &str) -> Option<u32> {
        self.account(name).map(|a| a.uid)
    }

    /// The gid of a group name.
    pub fn gid(&self, name: &str) -> Option<u32> {
        if let Some(g) = self.groups.iter().find(|g| g.name == name) {
            return Some(g.gid);
        }
        if !self.live {
            return None;
        }
        uzers::get_group_by_name(name).map(|g| g.gid())
    }

    /// The name of a uid, for display.
    pub fn user_name(&self, uid: u32) -> Option<String> {
        if let Some(a) = self.accounts.iter().find(|a| a.uid == uid) {
            return Some(a.name.clone());
        }
        if !self.live {
            return None;
        }
        uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
    }

    /// The name of a gid, for display.
    pub fn group_name(&self, gid: u32) -> Option<String> {
        if let Some(g) = self.groups.iter().find(|g| g.gid == gid) {
            return Some(g.name.clone());
        }
        if !self.live {
            return None;
        }
        uzers::get_group_by_gid(gid).map(|g| g.name().to_string_lossy().into_owned())
    }

    /// Names of the groups `account` belongs to (primary and supplementary).
    pub fn groups_of(&self, account: &Account) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.gid == account.gid || g.members.contains(&account.name))
            .map(|g| g.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbroken line\n";
    const GROUP: &str = "root:x:0:\ndocker:x:998:alice\nalice:x:1000:\n";

    #[test]
    fn image_database_resolves_names_both_ways() {
        let db = UserDb::parse(false, PASSWD, GROUP);
        assert_eq!(db.uid("alice"), Some(1000));
        assert_eq!(db.gid("docker"), Some(998));
        assert_eq!(db.user_name(0).as_deref(), Some("root"));
        assert_eq!(db.group_name(998).as_deref(), Some("docker"));
        assert_eq!(db.uid("nobody-here"), None);
        assert_eq!(db.accounts().len(), 2);
    }

    #[test]
    fn groups_of_include_primary_and_supplementary() {
        let db = UserDb::parse(false, PASSWD, GROUP);
        let alice = db.account("alice").expect("alice");
        assert_eq!(db.groups_of(&alice), vec!["docker", "alice"]);
    }
}
