//! APT's configuration as APT itself reads it (`apt-config dump`), the order of its files,
//! and the system's identity from `/etc/os-release`.

use std::collections::BTreeMap;

/// `apt-config dump`, parsed: scalars and lists, keys compared without case (as APT does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AptDump {
    pub(crate) scalars: BTreeMap<String, String>,
    pub(crate) lists: BTreeMap<String, Vec<String>>,
}

impl AptDump {
    /// The value of `key`, when set.
    pub fn scalar(&self, key: &str) -> Option<&str> {
        self.scalars
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The items of the list `key` (empty when unset).
    pub fn list(&self, key: &str) -> &[String] {
        self.lists
            .get(&key.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// Parses `apt-config dump` output: `Key "value";` lines, list items as `Key:: "item";`.
pub fn parse_dump(text: &str) -> AptDump {
    let mut dump = AptDump::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(' ') else {
            continue;
        };
        let value = rest.trim().trim_end_matches(';');
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match key.strip_suffix("::") {
            Some(list) => dump
                .lists
                .entry(list.to_ascii_lowercase())
                .or_default()
                .push(value.to_owned()),
            None => {
                dump.scalars
                    .insert(key.to_ascii_lowercase(), value.to_owned());
            }
        }
    }
    dump
}

/// APT's configuration directory.
pub const CONF_D: &str = "/etc/apt/apt.conf.d";

/// True for a name APT reads in apt.conf.d: letters, digits, `_`, `-`, `.`; no extension or
/// `.conf`; none of the backup suffixes it ignores silently.
pub fn read_by_apt(name: &str) -> bool {
    let charset = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    let ignored = [
        ".disabled",
        ".bak",
        ".save",
        ".orig",
        ".distUpgrade",
        ".dpkg-old",
        ".dpkg-new",
        ".dpkg-dist",
        ".dpkg-tmp",
        ".ucf-old",
        ".ucf-new",
        ".ucf-dist",
    ];
    let extension_ok = match name.rsplit_once('.') {
        None => true,
        Some((_, ext)) => ext == "conf",
    };
    charset && extension_ok && !ignored.iter().any(|s| name.ends_with(s)) && !name.starts_with('.')
}

/// The files APT reads, in order, given the names in apt.conf.d: the parts sorted, then
/// `/etc/apt/apt.conf`.
pub fn read_order(names: &[String]) -> Vec<String> {
    let mut parts: Vec<&String> = names.iter().filter(|n| read_by_apt(n)).collect();
    parts.sort();
    let mut paths: Vec<String> = parts.iter().map(|n| format!("{CONF_D}/{n}")).collect();
    paths.push("/etc/apt/apt.conf".to_owned());
    paths
}

/// The last place, among `files` (path, text) in read order, that sets `key` outside a
/// comment, written flat (`APT::Periodic::Unattended-Upgrade "1";`) or as the innermost name
/// of a block (`Periodic { Unattended-Upgrade "1"; };`): where a value most likely comes
/// from. A display hint, not a parser: the value itself always comes from `apt-config dump`.
pub fn locate<'a>(files: &'a [(String, String)], key: &str) -> Option<(&'a str, usize)> {
    let full = key.to_ascii_lowercase();
    let leaf = full.rsplit("::").next().unwrap_or(&full).to_owned();
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':';
    let mut found = None;
    for (path, text) in files {
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//")
                || (trimmed.starts_with('#') && !trimmed.starts_with("#clear"))
            {
                continue;
            }
            let code = trimmed
                .split("//")
                .next()
                .unwrap_or(trimmed)
                .to_ascii_lowercase();
            // Every name token on the line: the full key anywhere (`#clear K;`, `K {`, `K "v";`),
            // the innermost name only when a value follows (`Unattended-Upgrade "1";`).
            let mut hit = false;
            let mut rest = code.as_str();
            while let Some(start) = rest.find(name_char) {
                let tail = &rest[start..];
                let len = tail.find(|c: char| !name_char(c)).unwrap_or(tail.len());
                let token = &tail[..len];
                let after = tail[len..].trim_start();
                hit |= token == full || (token == leaf && after.starts_with('"'));
                rest = &tail[len..];
            }
            if hit {
                found = Some((path.as_str(), index + 1));
            }
        }
    }
    found
}

/// What `/etc/os-release` says about the system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID` (`debian`, `ubuntu`).
    pub id: String,
    /// `ID_LIKE`, split.
    pub id_like: Vec<String>,
    /// `VERSION_ID` (`12`, `24.04`), when set.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`, `noble`), when set.
    pub codename: Option<String>,
}

/// Parses os-release(5): `KEY=value`, values optionally quoted.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .to_owned();
        match key {
            "ID" => os.id = value.to_ascii_lowercase(),
            "ID_LIKE" => {
                os.id_like = value
                    .split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect()
            }
            "VERSION_ID" => os.version_id = Some(value),
            "VERSION_CODENAME" if !value.is_empty() => os.codename = Some(value),
            _ => {}
        }
    }
    os
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_scalars_and_lists() {
        let dump = parse_dump(
            "APT::Periodic \"\";\nAPT::Periodic::Update-Package-Lists \"1\";\nUnattended-Upgrade::Origins-Pattern \"\";\n\
             Unattended-Upgrade::Origins-Pattern:: \"origin=Debian,codename=${distro_codename}-security,label=Debian-Security\";\n\
             Unattended-Upgrade::Origins-Pattern:: \"o=Debian\";\n",
        );
        assert_eq!(
            dump.scalar("apt::periodic::update-package-lists"),
            Some("1")
        );
        assert_eq!(dump.list("Unattended-Upgrade::Origins-Pattern").len(), 2);
        assert_eq!(dump.list("Unattended-Upgrade::Allowed-Origins").len(), 0);
        assert_eq!(dump.scalar("APT::Periodic::Unattended-Upgrade"), None);
    }

    #[test]
    fn apt_reads_parts_sorted_then_apt_conf() {
        let names: Vec<String> = [
            "52harden-unattended-upgrades",
            "20auto-upgrades",
            "50unattended-upgrades",
            "50unattended-upgrades.ucf-dist",
            "99x.conf",
            "foo.txt",
            "bak~",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            read_order(&names),
            vec![
                "/etc/apt/apt.conf.d/20auto-upgrades",
                "/etc/apt/apt.conf.d/50unattended-upgrades",
                "/etc/apt/apt.conf.d/52harden-unattended-upgrades",
                "/etc/apt/apt.conf.d/99x.conf",
                "/etc/apt/apt.conf",
            ]
        );
    }

    #[test]
    fn locate_skips_comments_and_longer_names() {
        let files = vec![
            ("/a".to_owned(), "// Unattended-Upgrade::Automatic-Reboot \"false\";\nUnattended-Upgrade::Automatic-Reboot-Time \"02:00\";\n".to_owned()),
            ("/b".to_owned(), "Unattended-Upgrade {\n  Automatic-Reboot \"true\";\n};\n".to_owned()),
            ("/c".to_owned(), "Unattended-Upgrade::Package-Blacklist {\n};\n".to_owned()),
        ];
        assert_eq!(locate(&files, "APT::Periodic::Unattended-Upgrade"), None);
        assert_eq!(
            locate(&files, "Unattended-Upgrade::Automatic-Reboot"),
            Some(("/b", 2))
        );
        assert_eq!(
            locate(&files, "Unattended-Upgrade::Automatic-Reboot-Time"),
            Some(("/a", 2))
        );
        assert_eq!(locate(&files, "Unattended-Upgrade::Mail"), None);
    }

    #[test]
    fn os_release() {
        let os = parse_os_release("PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\n");
        assert_eq!(os.id, "ubuntu");
        assert_eq!(os.version_id.as_deref(), Some("24.04"));
        assert_eq!(os.codename.as_deref(), Some("noble"));
        assert_eq!(os.id_like, vec!["debian"]);
    }
}
