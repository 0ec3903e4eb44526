//! Reading `sysctl.d` as systemd-sysctl does: which files, in which order, and which line
//! wins for a key.
//!
//! systemd-sysctl reads `*.conf` from `/etc/sysctl.d`, `/run/sysctl.d`,
//! `/usr/local/lib/sysctl.d`, `/usr/lib/sysctl.d` and `/lib/sysctl.d`; a file shadows every
//! file of the same name in a directory listed after its own, and the files left are read in
//! the lexical order of their names, whatever their directory. A later line for the same key
//! wins; an explicit key wins over a glob that matches it, wherever the glob is.

use crate::facts::SysctlEntry;

/// The directories systemd-sysctl reads, the first shadowing the later ones.
pub const DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// `/etc/sysctl.conf`: read last by `sysctl --system`; systemd-sysctl reads it only where a
/// `sysctl.d` file links to it (Debian 12's `99-sysctl.conf`).
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// The files to read, in order, from the `.conf` names found in each of [`DIRS`] (given in
/// the same order).
pub fn read_order(listings: &[(&str, Vec<String>)]) -> Vec<String> {
    let mut chosen: Vec<(String, String)> = Vec::new();
    for (dir, names) in listings {
        for name in names.iter().filter(|n| n.ends_with(".conf")) {
            if !chosen.iter().any(|(n, _)| n == name) {
                chosen.push((name.clone(), format!("{dir}/{name}")));
            }
        }
    }
    chosen.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    chosen.into_iter().map(|(_, path)| path).collect()
}

/// A key in dotted form. A `/` as the first separator means the key is written with slashes:
/// its dots are then literal (an interface named `eth0.200`), and are kept as `/` here, which
/// is how `sysctl` itself shows them.
pub fn normalize(key: &str) -> String {
    let key = key.trim();
    let first = key.find(['.', '/']);
    match first.map(|i| &key[i..=i]) {
        Some("/") => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => key.to_owned(),
    }
}

/// The file under `/proc/sys` of a dotted key.
pub fn proc_path(key: &str) -> String {
    let relative: String = key
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    format!("/proc/sys/{relative}")
}

/// The `key = value` lines of one file (comments, blank lines and lines without `=` skipped;
/// a leading `-`, which only makes a failure to set the key quiet, dropped).
pub fn parse(file: &str, text: &str) -> Vec<SysctlEntry> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_start_matches('-');
        if key.is_empty() {
            continue;
        }
        entries.push(SysctlEntry {
            key: normalize(key),
            value: value.trim().to_owned(),
            file: file.to_owned(),
            line: u32::try_from(index + 1).unwrap_or(u32::MAX),
        });
    }
    entries
}

/// The line that sets `key` at boot: the last explicit one, else the last glob matching it.
pub fn winner<'a>(entries: &'a [SysctlEntry], key: &str) -> Option<&'a SysctlEntry> {
    entries.iter().rev().find(|e| e.key == key).or_else(|| {
        entries
            .iter()
            .rev()
            .find(|e| is_glob(&e.key) && matches(&e.key, key))
    })
}

fn is_glob(key: &str) -> bool {
    key.contains(['*', '?', '['])
}

/// Whether glob `pattern` matches `key`, component by component (a `*` never crosses a `.`,
/// as glob(3) never crosses a `/` of the `/proc/sys` path).
pub fn matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    pattern.len() == key.len()
        && pattern
            .iter()
            .zip(&key)
            .all(|(p, k)| component_matches(p.as_bytes(), k.as_bytes()))
}

/// fnmatch(3) on one component: `*`, `?` and `[...]` (with `!` or `^` to negate).
fn component_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => (0..=text.len()).any(|i| component_matches(&pattern[1..], &text[i..])),
        Some(b'?') => !text.is_empty() && component_matches(&pattern[1..], &text[1..]),
        Some(b'[') => match (pattern.iter().position(|&c| c == b']'), text.first()) {
            (Some(end), Some(&c)) if end > 1 => {
                let set = &pattern[1..end];
                let (negate, set) = match set.first() {
                    Some(b'!' | b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                in_set(set, c) != negate && component_matches(&pattern[end + 1..], &text[1..])
            }
            _ => text.first() == Some(&b'[') && component_matches(&pattern[1..], &text[1..]),
        },
        Some(&p) => text.first() == Some(&p) && component_matches(&pattern[1..], &text[1..]),
    }
}

fn in_set(set: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == b'-' {
            if (set[i]..=set[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Two values the kernel reads the same: `sysctl` shows lists separated by tabs, files write
/// them with spaces.
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_named_files_shadow_and_the_rest_sort_by_name_across_directories() {
        let order = read_order(&[
            (
                "/etc/sysctl.d",
                vec!["50-default.conf".into(), "README".into()],
            ),
            ("/run/sysctl.d", vec![]),
            (
                "/usr/lib/sysctl.d",
                vec![
                    "50-default.conf".into(),
                    "10-a.conf".into(),
                    "99-z.conf".into(),
                ],
            ),
        ]);
        assert_eq!(
            order,
            vec![
                "/usr/lib/sysctl.d/10-a.conf",
                "/etc/sysctl.d/50-default.conf",
                "/usr/lib/sysctl.d/99-z.conf"
            ]
        );
    }

    #[test]
    fn slashes_as_first_separator_keep_dots_literal() {
        assert_eq!(normalize("kernel/domainname"), "kernel.domainname");
        assert_eq!(
            normalize("net/ipv4/conf/enp3s0.200/forwarding"),
            "net.ipv4.conf.enp3s0/200.forwarding"
        );
        assert_eq!(
            normalize("net.ipv4.conf.enp3s0/200.forwarding"),
            "net.ipv4.conf.enp3s0/200.forwarding"
        );
        assert_eq!(
            proc_path("net.ipv4.conf.enp3s0/200.forwarding"),
            "/proc/sys/net/ipv4/conf/enp3s0.200/forwarding"
        );
    }

    #[test]
    fn lines_are_read_as_systemd_sysctl_reads_them() {
        let entries = parse(
            "/etc/sysctl.d/x.conf",
            "# c\n; c\n\n-net.ipv4.conf.all.rp_filter = 1\nkernel/sysrq=0\nnoequals\n  fs.x =  4096\t8192 \n",
        );
        let got: Vec<(&str, &str, u32)> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("net.ipv4.conf.all.rp_filter", "1", 4),
                ("kernel.sysrq", "0", 5),
                ("fs.x", "4096\t8192", 7)
            ]
        );
    }

    #[test]
    fn the_last_explicit_line_wins_and_beats_any_glob() {
        let mut entries = parse("/a.conf", "net.ipv4.conf.all.rp_filter = 1\n");
        entries.extend(parse("/b.conf", "net.ipv4.conf.*.rp_filter = 2\n"));
        let win = winner(&entries, "net.ipv4.conf.all.rp_filter").expect("set");
        assert_eq!((win.file.as_str(), win.value.as_str()), ("/a.conf", "1"));
        let win = winner(&entries, "net.ipv4.conf.eth0.rp_filter").expect("glob");
        assert_eq!(win.file, "/b.conf");
        assert!(winner(&entries, "net.ipv4.conf.all.log_martians").is_none());
        entries.extend(parse("/c.conf", "net.ipv4.conf.all.rp_filter = 0\n"));
        let win = winner(&entries, "net.ipv4.conf.all.rp_filter").expect("set");
        assert_eq!(win.file, "/c.conf");
    }

    #[test]
    fn globs_match_within_one_component() {
        assert!(matches(
            "net.ipv4.conf.*.rp_filter",
            "net.ipv4.conf.eth0.rp_filter"
        ));
        assert!(!matches("net.*", "net.ipv4.tcp_syncookies"));
        assert!(matches("net.ipv4.conf.e?h[0-9].x", "net.ipv4.conf.eth1.x"));
        assert!(!matches("net.ipv4.conf.[!e]*.x", "net.ipv4.conf.eth1.x"));
    }

    #[test]
    fn values_compare_by_their_words() {
        assert!(same_value("32768\t60999", "32768 60999"));
        assert!(!same_value("1", "2"));
    }
}
