//! Step builders every resource shares, so that one kind of operation is spelled one way.

use std::path::PathBuf;

use harden_plan::Command;

/// Bound on installing or removing packages (the dpkg lock wait is 300 s of it).
pub(crate) const PACKAGE_TIMEOUT: u64 = 900;

/// The options every `apt-get` run gets: no prompt, a bounded wait for the dpkg lock, and
/// configuration files the administrator changed kept (`confdef` takes the package's
/// default where the file is untouched, `confold` keeps a changed one).
const APT_OPTIONS: [&str; 6] = [
    "-o",
    "DPkg::Lock::Timeout=300",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
];

fn apt_get(verb: &str, packages: &[&str]) -> Command {
    // needrestart would otherwise restart services (sshd among them) from the package
    // trigger, outside the plan.
    let argv = [
        "env",
        "NEEDRESTART_SUSPEND=1",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        verb,
        "-y",
    ]
    .into_iter()
    .chain(APT_OPTIONS)
    .chain(packages.iter().copied());
    Command::new(argv).timeout(PACKAGE_TIMEOUT)
}

/// `apt-get install` of `packages` as harden runs it.
pub(crate) fn apt_install(packages: &[&str]) -> Command {
    apt_get("install", packages)
}

/// `apt-get purge` of `packages`, to undo an install this plan made.
pub(crate) fn apt_purge(packages: &[&str]) -> Command {
    apt_get("purge", packages)
}

/// `apt-get remove` of `packages`: they go, their configuration files stay (so that a
/// reinstall finds the administrator's settings again).
pub(crate) fn apt_remove(packages: &[&str]) -> Command {
    apt_get("remove", packages)
}

/// `apt-get install --reinstall` of pinned `name=version` specs: puts back exactly the
/// versions a removal took (a downgrade if the archive moved on), to undo it.
pub(crate) fn apt_reinstall(pinned: &[&str]) -> Command {
    let args: Vec<&str> = ["--reinstall", "--allow-downgrades"]
        .into_iter()
        .chain(pinned.iter().copied())
        .collect();
    apt_get("install", &args)
}

/// `apt-get -s install` of `packages` in the C locale: what apt would install, without
/// installing it or writing its solver log (a plan writes nothing).
pub(crate) fn apt_simulate_install(packages: &[&str]) -> Command {
    let argv = [
        "env",
        "LC_ALL=C",
        "apt-get",
        "-s",
        "-q",
        "-o",
        "Dir::Log::Planner=/dev/null",
        "install",
        "--",
    ]
    .into_iter()
    .chain(packages.iter().copied());
    Command::new(argv).timeout(120)
}

/// The packages the `Inst` lines of an [`apt_simulate_install`] name, in order.
pub(crate) fn simulated_installs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The files the shadow tools (`groupadd`, `useradd`, `usermod`, `gpasswd`) rewrite, with
/// their backups and lock: a snapshot of these restores the user and group databases byte for
/// byte.
pub(crate) const ACCOUNT_DATABASES: [&str; 13] = [
    "/etc/passwd",
    "/etc/passwd-",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/group",
    "/etc/group-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/subuid",
    "/etc/subuid-",
    "/etc/subgid",
    "/etc/subgid-",
    "/etc/.pwd.lock",
];

/// Bound on one shadow tool run.
const SHADOW_TOOL_TIMEOUT: u64 = 60;

/// A shadow tool run, declaring the account databases it may rewrite. Under `--root` it runs
/// chrooted into the image like every command, which is what the tools' own `--root` does.
pub(crate) fn shadow_tool<I, S>(argv: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Command::new(argv)
        .timeout(SHADOW_TOOL_TIMEOUT)
        .touching(ACCOUNT_DATABASES.iter().map(PathBuf::from))
}

/// `groupadd` of `name` with the gid the plan chose.
pub(crate) fn groupadd(name: &str, gid: u32, system: bool) -> Command {
    let gid = gid.to_string();
    let mut argv = vec!["groupadd", "-g", &gid];
    if system {
        argv.push("-r");
    }
    argv.push(name);
    shadow_tool(argv)
}

/// `sysctl -w KEY=VALUE...`: sets kernel values on the running system (never under
/// `--root`: the image does not run this kernel). `-q`: the values are in the plan already.
pub(crate) fn sysctl_write(values: &[(String, String)]) -> Command {
    let argv = ["sysctl".to_owned(), "-q".to_owned(), "-w".to_owned()]
        .into_iter()
        .chain(values.iter().map(|(k, v)| format!("{k}={v}")));
    Command::new(argv).timeout(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_never_prompt_keep_changed_conffiles_and_suspend_needrestart() {
        let line = apt_install(&["fail2ban"]).display();
        assert_eq!(
            line,
            "env NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold fail2ban"
        );
        assert!(apt_purge(&["ufw"]).display().contains("apt-get purge -y"));
        assert!(apt_remove(&["tree"])
            .display()
            .contains("apt-get remove -y"));
        let reinstall = apt_reinstall(&["tree=2.1.0-1"]).display();
        assert!(
            reinstall.ends_with(" --reinstall --allow-downgrades tree=2.1.0-1"),
            "{reinstall}"
        );
    }
}
