//! `packages`: Debian packages that must be installed (`present`) or must not be (`absent`).
//!
//! The state is dpkg's (`dpkg-query`), and what an install or a removal would really do is
//! apt's own answer, asked at plan time by simulation (`apt-get -s`): the plan names every
//! package that comes or goes with the ones listed, a removal that would take sshd, ufw or
//! harden with it is refused by a lockout guard, and the rollback knows exactly what to undo.
//! A rollback purges every package the apply installed (dependencies included) and reinstalls,
//! at the version that was there, every package the apply removed; apt needs the removed
//! package's `.deb` for that, and the plan warns when apt could not get it without the
//! network (it is not in apt's cache nor in a local repository).

pub(crate) mod apt;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use harden_plan::{Change, Detail, Step, Warning};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::guard::Guard;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Refusal, Resource};
use crate::steps;

pub use apt::{Installed, Removal, Removed};

/// A removal that takes away the SSH server, the firewall or harden itself.
pub(crate) const REMOTE_ACCESS: &str = "packages-remote-access";

/// Packages a removal must not take with it: what serves SSH, the firewall, and harden (whose
/// own dependencies take it with them when they go, so naming it covers them).
pub const PROTECTED: [&str; 3] = ["openssh-server", "ufw", "harden"];

/// The `packages:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// Packages that must be installed (with the dependencies apt chooses).
    #[serde(default)]
    pub present: Vec<Located<Package>>,
    /// Packages that must not be installed (removed with `apt-get remove`: their
    /// configuration files stay, so a reinstall finds them again).
    #[serde(default)]
    pub absent: Vec<Located<Package>>,
}

/// A Debian package name: lower-case letters, digits, `+`, `-` and `.`, at least two
/// characters, starting with a letter or digit (Debian Policy 5.6.1), optionally `:arch`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package(pub String);

impl std::fmt::Display for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Package, {
    "description": "A Debian package name (openssh-server, libpam-pwquality), optionally with :arch.",
    "type": "string",
    "pattern": "^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$"
});

/// Checks a package name as Debian Policy defines it.
fn check_package(text: &str) -> Result<(), String> {
    let (name, arch) = match text.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (text, None),
    };
    let name_ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let arch_ok = arch.is_none_or(|a| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if name_ok && arch_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid package name {text:?}: expected lower-case letters, digits, '+', '-' and '.', at least two characters (openssh-server), optionally :arch"
        ))
    }
}

impl<'de> Deserialize<'de> for Package {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        check_package(&text).map_err(serde::de::Error::custom)?;
        Ok(Package(text))
    }
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// dpkg's view of every listed package that is installed.
    pub installed: BTreeMap<String, Installed>,
    /// apt's simulation of installing the missing `present` packages: every package it
    /// would install, or apt's error. `None` when nothing is missing.
    pub install: Option<Result<Vec<String>, String>>,
    /// apt's simulation of removing the installed `absent` packages. `None` when none is
    /// installed.
    pub removal: Option<Result<Removal, String>>,
    /// `apt-get` exists.
    pub apt: bool,
}

impl Resource for Packages {
    type Live = Live;
    const NAME: &'static str = "packages";
    const GUARDS: &'static [Guard] = &[Guard {
        name: REMOTE_ACCESS,
        resource: "packages",
        help: "removing a package that takes openssh-server, ufw or harden with it",
    }];

    /// A later playbook adds to both lists; a package it names leaves the other list.
    fn merge(&mut self, later: Self) {
        for package in later.present {
            self.absent.retain(|p| p.value != package.value);
            self.present.push(package);
        }
        for package in later.absent {
            self.present.retain(|p| p.value != package.value);
            self.absent.push(package);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        self.absent
            .iter()
            .filter(|a| self.present.iter().any(|p| p.value == a.value))
            .map(|a| {
                Invalid::new(
                    a.at,
                    format!("{} is listed both as present and as absent", a.value),
                )
                .help("keep it in one list")
            })
            .collect()
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let mut live = Live {
            apt: host.which("apt-get").is_some() && host.which("dpkg-query").is_some(),
            ..Live::default()
        };
        if !live.apt {
            return Ok(live);
        }
        let names = self.names();
        live.installed = apt::query(host, &names).await?;
        let missing: Vec<&str> = self.missing(&live.installed);
        if !missing.is_empty() {
            live.install = Some(apt::simulate_install(host, &missing).await?);
        }
        let going: Vec<&str> = self.going(&live.installed);
        if !going.is_empty() {
            live.removal = Some(apt::simulate_removal(host, &going).await?);
        }
        Ok(live)
    }

    fn diff(&self, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        if !live.apt {
            return Err(Failure::Unusable(
                "apt-get or dpkg-query is not installed on the managed system: harden manages Debian packages through apt".into(),
            ));
        }
        let names = self.names();
        let missing = self.missing(&live.installed);
        let going = self.going(&live.installed);
        diff.unchanged = (names.len() - missing.len() - going.len()) as u64;
        if let Some(install) = &live.install {
            diff.changes.push(self.install_change(&missing, install)?);
        }
        if let Some(removal) = &live.removal {
            let removal = removal.as_ref().map_err(|e| {
                Failure::Probe(format!("apt cannot remove {}: {e}", going.join(", ")))
            })?;
            self.check_removal(&going, removal, cx)?;
            diff.changes.push(removal_change(&going, removal));
            diff.warnings.extend(offline_warnings(removal));
        }
        Ok(diff)
    }
}

impl Packages {
    /// Every listed package, present ones first.
    fn names(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.present
            .iter()
            .chain(&self.absent)
            .map(|p| p.value.0.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    }

    /// `present` packages dpkg does not have installed, each once.
    fn missing(&self, installed: &BTreeMap<String, Installed>) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.present
            .iter()
            .map(|p| p.value.0.as_str())
            .filter(|n| !installed.contains_key(*n) && seen.insert(*n))
            .collect()
    }

    /// `absent` packages dpkg has installed, each once.
    fn going(&self, installed: &BTreeMap<String, Installed>) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.absent
            .iter()
            .map(|p| p.value.0.as_str())
            .filter(|n| installed.contains_key(*n) && seen.insert(*n))
            .collect()
    }

    /// The install of `missing`, undone by purging all that apt said it would install; a
    /// package apt does not know is an error at its place in the playbook.
    fn install_change(
        &self,
        missing: &[&str],
        install: &Result<Vec<String>, String>,
    ) -> Result<Change, Failure> {
        let all = match install {
            Ok(all) => all,
            Err(message) => return Err(self.unknown_packages(missing, message)),
        };
        let extra: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|p| !missing.contains(p))
            .collect();
        let mut reason = "not installed".to_owned();
        if !extra.is_empty() {
            reason = format!("{reason}; apt also installs {}", extra.join(", "));
        }
        let mut change = Change::new(
            Self::NAME,
            format!("install {}", missing.join(", ")),
            reason,
            vec![Step::Run(steps::apt_install(missing))],
        )
        .with_details(
            missing
                .iter()
                .map(|p| detail(p, None, Some("installed")))
                .collect(),
        );
        let undo: Vec<&str> = all.iter().map(String::as_str).collect();
        change.on_rollback = vec![steps::apt_purge(&undo)];
        Ok(change)
    }

    /// Located errors for the packages apt's message names; the message itself otherwise.
    fn unknown_packages(&self, missing: &[&str], message: &str) -> Failure {
        let errors: Vec<Invalid> = self
            .present
            .iter()
            .filter(|p| missing.contains(&p.value.0.as_str()))
            .filter(|p| apt::names_package(message, &p.value.0))
            .map(|p| {
                Invalid::new(p.at, format!("apt cannot install {}: {message}", p.value))
                    .help("check the name (`apt-cache policy <name>`) and the apt sources")
            })
            .collect();
        if errors.is_empty() {
            Failure::Probe(format!(
                "apt cannot install {}: {message}",
                missing.join(", ")
            ))
        } else {
            Failure::Invalid(errors)
        }
    }

    /// Refuses a removal that takes a protected package, or one `present` lists.
    fn check_removal(
        &self,
        going: &[&str],
        removal: &Removal,
        cx: &DiffContext<'_>,
    ) -> Result<(), Failure> {
        let wanted: Vec<Invalid> = self
            .present
            .iter()
            .filter(|p| removal.removes(&p.value.0))
            .map(|p| {
                Invalid::new(
                    p.at,
                    format!(
                        "{} must be present, but removing {} takes it away",
                        p.value,
                        going.join(", ")
                    ),
                )
            })
            .collect();
        if !wanted.is_empty() {
            return Err(Failure::Invalid(wanted));
        }
        let protected: Vec<&str> = PROTECTED
            .into_iter()
            .filter(|p| removal.removes(p))
            .collect();
        if protected.is_empty() || cx.overridden(REMOTE_ACCESS) {
            return Ok(());
        }
        Err(Failure::Refused(Refusal {
            resource: Self::NAME.into(),
            guard: REMOTE_ACCESS.into(),
            message: format!(
                "removing {} would also remove {} (apt-get -s remove says so): that ends SSH access, the firewall or harden itself",
                going.join(", "),
                protected.join(", ")
            ),
        }))
    }
}

/// The removal of `going`, undone by reinstalling every package apt removes, at its version.
fn removal_change(going: &[&str], removal: &Removal) -> Change {
    let extra: Vec<&str> = removal
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .filter(|p| !going.contains(p))
        .collect();
    let mut reason = "installed".to_owned();
    if !extra.is_empty() {
        reason = format!("{reason}; apt also removes {}", extra.join(", "));
    }
    let mut change = Change::new(
        Packages::NAME,
        format!("remove {}", going.join(", ")),
        reason,
        vec![Step::Run(steps::apt_remove(going))],
    )
    .with_details(
        removal
            .packages
            .iter()
            .map(|p| detail(&p.name, Some(&p.version), None))
            .collect(),
    );
    let pinned: Vec<String> = removal
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    let pinned: Vec<&str> = pinned.iter().map(String::as_str).collect();
    change.on_rollback = vec![steps::apt_reinstall(&pinned)];
    change
}

/// A warning for each removed package apt could not reinstall without the network.
fn offline_warnings(removal: &Removal) -> Vec<Warning> {
    removal
        .packages
        .iter()
        .filter(|p| !p.offline)
        .map(|p| Warning {
            resource: Packages::NAME.into(),
            message: format!(
                "a rollback cannot reinstall {} {} without the network: its .deb is not in apt's cache nor in a local repository (`apt-get install --download-only --reinstall {}` before the apply keeps it)",
                p.name, p.version, p.name
            ),
        })
        .collect()
}

fn detail(package: &str, current: Option<&str>, desired: Option<&str>) -> Detail {
    Detail {
        name: package.into(),
        current: current.map(|v| format!("installed ({v})")),
        source: None,
        desired: desired.map(str::to_owned),
    }
}
