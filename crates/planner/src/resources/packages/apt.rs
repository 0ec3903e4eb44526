//! What dpkg and apt say about packages: the installed ones (`dpkg-query`), and what an
//! install or a removal would do (`apt-get -s`), parsed from their C-locale output.

use std::collections::BTreeMap;

use harden_host::Host;
use harden_plan::Command;

use crate::resource::Failure;
use crate::steps;

/// Bound on one dpkg or apt query (apt reads its lists, which takes a few seconds).
const QUERY_TIMEOUT: u64 = 120;

/// A plan writes nothing: apt's solver otherwise logs even a simulation to
/// `/var/log/apt/eipp.log.xz`.
pub(crate) const NO_PLANNER_LOG: &str = "Dir::Log::Planner=/dev/null";

/// An installed package, as dpkg has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Its version.
    pub version: String,
}

/// What removing some packages would remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Every package apt removes, the listed ones and those that depend on them.
    pub packages: Vec<Removed>,
}

impl Removal {
    /// True when `package` (a name, optionally `:arch`) goes.
    pub fn removes(&self, package: &str) -> bool {
        let bare = package.split(':').next().unwrap_or(package);
        self.packages
            .iter()
            .any(|p| p.name == package || p.name.split(':').next() == Some(bare))
    }
}

/// One package a removal takes away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// Its name, as apt prints it.
    pub name: String,
    /// The version installed now, the one a rollback reinstalls.
    pub version: String,
    /// apt can reinstall that version without the network: its `.deb` is in apt's cache or
    /// in a `file:` repository.
    pub offline: bool,
}

/// A command in the C locale, so its output parses the same everywhere.
fn c_locale(argv: &[&str]) -> Command {
    Command::new(["env", "LC_ALL=C"].iter().chain(argv).copied()).timeout(QUERY_TIMEOUT)
}

/// `dpkg-query` of `names`: name, architecture, status and version, one line each.
pub(crate) fn query_command(names: &[&str]) -> Command {
    let mut argv = vec![
        "dpkg-query",
        "-W",
        "-f",
        "${Package}\\t${Architecture}\\t${db:Status-Status}\\t${Version}\\n",
        "--",
    ];
    argv.extend(names);
    c_locale(&argv)
}

/// The installed packages among `names`, by the name the playbook gives.
pub(crate) async fn query(
    host: &Host,
    names: &[&str],
) -> Result<BTreeMap<String, Installed>, Failure> {
    let out = run(host, &query_command(names)).await?;
    // Exit 1 only says that some name is unknown to dpkg (never installed).
    if !matches!(out.code, Some(0 | 1)) {
        return Err(Failure::Probe(format!(
            "`dpkg-query -W` failed: {}",
            out.stderr.trim()
        )));
    }
    Ok(parse_query(&out.stdout, names))
}

/// Reads `dpkg-query` lines: a package is installed when dpkg's status says `installed`
/// (not `config-files`, `half-installed`...).
pub(crate) fn parse_query(stdout: &str, names: &[&str]) -> BTreeMap<String, Installed> {
    let mut installed = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [package, arch, status, version] = fields[..] else {
            continue;
        };
        if status != "installed" {
            continue;
        }
        let qualified = format!("{package}:{arch}");
        for name in names.iter().filter(|n| **n == package || **n == qualified) {
            installed.insert(
                (*name).to_owned(),
                Installed {
                    version: version.to_owned(),
                },
            );
        }
    }
    installed
}

/// apt's simulation of installing `packages`: every package it would install, or its error.
pub(crate) async fn simulate_install(
    host: &Host,
    packages: &[&str],
) -> Result<Result<Vec<String>, String>, Failure> {
    let out = run(host, &steps::apt_simulate_install(packages)).await?;
    if !out.success() {
        return Ok(Err(apt_errors(&out.stdout, &out.stderr)));
    }
    Ok(Ok(parse_simulation(&out.stdout, "Inst")
        .into_iter()
        .map(|(name, _)| name)
        .collect()))
}

/// apt's simulation of removing `packages`, and whether each package that goes could be
/// reinstalled without the network.
pub(crate) async fn simulate_removal(
    host: &Host,
    packages: &[&str],
) -> Result<Result<Removal, String>, Failure> {
    let mut argv = vec!["apt-get", "-s", "-q", "-o", NO_PLANNER_LOG, "remove", "--"];
    argv.extend(packages);
    let out = run(host, &c_locale(&argv)).await?;
    if !out.success() {
        return Ok(Err(apt_errors(&out.stdout, &out.stderr)));
    }
    let going = parse_simulation(&out.stdout, "Remv");
    let pinned: Vec<String> = going.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let mut argv = vec![
        "apt-get",
        "-q",
        "-o",
        NO_PLANNER_LOG,
        "--print-uris",
        "install",
        "--reinstall",
        "--",
    ];
    argv.extend(pinned.iter().map(String::as_str));
    let uris = run(host, &c_locale(&argv)).await?;
    let downloads = uris.success().then(|| parse_uris(&uris.stdout));
    let impossible = not_reinstallable(&uris.stdout);
    let packages = going
        .into_iter()
        .map(|(name, version)| {
            let bare = name.split(':').next().unwrap_or(&name);
            let offline = !impossible.iter().any(|p| p == bare || *p == name)
                && downloads
                    .as_ref()
                    .is_some_and(|d| d.get(bare).is_none_or(|uri| uri.starts_with("file:")));
            Removed {
                name,
                version,
                offline,
            }
        })
        .collect();
    Ok(Ok(Removal { packages }))
}

/// `Inst name (version ...)` or `Remv name [version]` lines of a simulation: name, version.
pub(crate) fn parse_simulation(stdout: &str, verb: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(verb)?.strip_prefix(' '))
        .map(|rest| {
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            // `Inst x [old] (new ...)` for an upgrade: the version in parentheses is new.
            let version = match verb {
                "Inst" => rest.split_once('(').map(|(_, v)| v),
                _ => rest.strip_prefix('['),
            }
            .and_then(|v| v.split([' ', ']', ')']).next())
            .unwrap_or_default();
            (name.to_owned(), version.to_owned())
        })
        .collect()
}

/// `'URI' file size hash` lines of `--print-uris`: the URI of each package's `.deb`, by the
/// package name its file name starts with.
pub(crate) fn parse_uris(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('\'')?;
            let (uri, rest) = rest.split_once('\'')?;
            let file = rest.split_whitespace().next()?;
            let package = file.split('_').next()?;
            Some((package.to_owned(), uri.to_owned()))
        })
        .collect()
}

/// Packages apt says it cannot reinstall (no source has their version, none is cached):
/// `Reinstallation of sl is not possible, it cannot be downloaded.`
pub(crate) fn not_reinstallable(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Reinstallation of ")?
                .split_once(" is not possible")
        })
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// apt's `E:` lines, or all it said when it printed none.
fn apt_errors(stdout: &str, stderr: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter_map(|l| l.strip_prefix("E: "))
        .collect();
    if errors.is_empty() {
        format!("{}{}", stdout.trim(), stderr.trim())
    } else {
        errors.join("; ")
    }
}

/// True when apt's `message` names `package` as a word of its own.
pub(crate) fn names_package(message: &str, package: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+-.:".contains(c)))
        .any(|word| word.trim_end_matches(['.', ':']) == package)
}

async fn run(host: &Host, cmd: &Command) -> Result<harden_host::Output, Failure> {
    host.run(cmd)
        .await
        .map_err(|e| Failure::Probe(format!("`{}`: {e}", cmd.display())))
}
