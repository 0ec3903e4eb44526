//! `pam`: password quality through `pam_pwquality`, checked by a real password change and a
//! real authentication through PAM before the apply is kept.
//!
//! harden never edits `/etc/pam.d/common-*`: Debian's `pam-auth-update` owns them, and the
//! `libpam-pwquality` package's profile puts `pam_pwquality` into `common-password` (harden
//! installs the package when it is missing, or enables the profile through `pam-auth-update`).
//! The settings go into harden's own `/etc/security/pwquality.conf.d/zz-harden.conf`.
//! libpwquality reads the drop-ins in ASCII order and then `pwquality.conf`, the last value of
//! a setting winning: a value set in `pwquality.conf` or a later drop-in would override the
//! playbook's, and is an error at the playbook's key.
//!
//! After any change, a check runs `pamtester` (installed with the module) against a
//! throwaway account it creates and removes: a three-character password must get
//! pwquality's `BAD PASSWORD` verdict, a strong one generated there and then must be set,
//! and that account must then authenticate through each checked PAM service (`sshd` by
//! default). A PAM stack that fails any of it fails the apply, which rolls back.

pub(crate) mod conf;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use harden_plan::{Attrs, Change, Command, Detail, Step, Warning};
use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::located::Located;
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};
use crate::steps;

pub use conf::{ConfFile, Setting};

/// harden's drop-in, read after the other drop-ins (and before `pwquality.conf`).
pub const DROP_IN: &str = "/etc/security/pwquality.conf.d/zz-harden.conf";
/// The drop-in directory.
pub const CONF_D: &str = "/etc/security/pwquality.conf.d";
/// libpwquality's main file, read last.
pub const MAIN: &str = "/etc/security/pwquality.conf";
/// The file pam-auth-update writes the password stack to.
pub const COMMON_PASSWORD: &str = "/etc/pam.d/common-password";
const MARKER: &str = "# Managed by harden";

/// The packages the resource needs: the module, and the tool that checks the stack.
const PACKAGES: [&str; 2] = ["libpam-pwquality", "pamtester"];

/// What `pam-auth-update` rewrites (the stacks and its own state): a snapshot of these puts
/// the PAM configuration back byte for byte.
const PAM_FILES: [&str; 11] = [
    "/etc/pam.d/common-auth",
    "/etc/pam.d/common-account",
    "/etc/pam.d/common-password",
    "/etc/pam.d/common-session",
    "/etc/pam.d/common-session-noninteractive",
    "/var/lib/pam/auth",
    "/var/lib/pam/account",
    "/var/lib/pam/password",
    "/var/lib/pam/session",
    "/var/lib/pam/session-noninteractive",
    "/var/lib/pam/seen",
];

/// The account the check creates, changes the password of, authenticates and removes.
const CHECK_USER: &str = "harden-pamcheck";

/// The `pam:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Pam {
    /// Password quality rules (`pam_pwquality`).
    pub pwquality: Option<Pwquality>,
    /// PAM services the check authenticates through after a change (default: `sshd`).
    pub check_services: Option<Located<Vec<Located<String>>>>,
}

/// `pwquality.conf` settings; each unset one keeps libpwquality's default.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Pwquality {
    /// Minimum length (credits count towards it; at least 6).
    pub minlen: Option<Located<u32>>,
    /// Characters of the new password not in the old one.
    pub difok: Option<Located<u32>>,
    /// Digits: a credit when positive, a minimum number when negative.
    pub dcredit: Option<Located<i32>>,
    /// Upper-case letters: a credit when positive, a minimum number when negative.
    pub ucredit: Option<Located<i32>>,
    /// Lower-case letters: a credit when positive, a minimum number when negative.
    pub lcredit: Option<Located<i32>>,
    /// Other characters: a credit when positive, a minimum number when negative.
    pub ocredit: Option<Located<i32>>,
    /// Classes (digits, upper, lower, other) the password must have, 0 to 4.
    pub minclass: Option<Located<u32>>,
    /// Most consecutive identical characters (0: no limit).
    pub maxrepeat: Option<Located<u32>>,
    /// Most consecutive characters of one class (0: no limit).
    pub maxclassrepeat: Option<Located<u32>>,
    /// Longest monotonic sequence such as `12345` or `abcd` (0: no limit).
    pub maxsequence: Option<Located<u32>>,
    /// Refuse words of the cracklib dictionary.
    pub dictcheck: Option<Located<bool>>,
    /// Refuse passwords that contain the user name.
    pub usercheck: Option<Located<bool>>,
    /// Refuse words of the account's GECOS field.
    pub gecoscheck: Option<Located<bool>>,
    /// Enforce the rules for root too (otherwise root only gets a warning).
    pub enforce_for_root: Option<Located<bool>>,
}

impl Pwquality {
    /// The settings the playbook gives, in the order harden writes them.
    pub fn settings(&self) -> Vec<Setting> {
        let mut out = Vec::new();
        let mut number = |key: &'static str, value: Option<(i64, crate::located::At)>| {
            if let Some((v, at)) = value {
                out.push(Setting::number(key, v, at));
            }
        };
        let unsigned = |v: &Option<Located<u32>>| v.as_ref().map(|v| (i64::from(v.value), v.at));
        let signed = |v: &Option<Located<i32>>| v.as_ref().map(|v| (i64::from(v.value), v.at));
        let flag = |v: &Option<Located<bool>>| v.as_ref().map(|v| (i64::from(v.value), v.at));
        number("minlen", unsigned(&self.minlen));
        number("difok", unsigned(&self.difok));
        number("dcredit", signed(&self.dcredit));
        number("ucredit", signed(&self.ucredit));
        number("lcredit", signed(&self.lcredit));
        number("ocredit", signed(&self.ocredit));
        number("minclass", unsigned(&self.minclass));
        number("maxrepeat", unsigned(&self.maxrepeat));
        number("maxclassrepeat", unsigned(&self.maxclassrepeat));
        number("maxsequence", unsigned(&self.maxsequence));
        number("dictcheck", flag(&self.dictcheck));
        number("usercheck", flag(&self.usercheck));
        number("gecoscheck", flag(&self.gecoscheck));
        if let Some(root) = &self.enforce_for_root {
            out.push(Setting::flag("enforce_for_root", root.value, root.at));
        }
        out
    }

    fn merge(&mut self, later: Pwquality) {
        macro_rules! take {
            ($($field:ident),*) => {
                $(if later.$field.is_some() { self.$field = later.$field; })*
            };
        }
        take!(
            minlen,
            difok,
            dcredit,
            ucredit,
            lcredit,
            ocredit,
            minclass,
            maxrepeat,
            maxclassrepeat,
            maxsequence,
            dictcheck,
            usercheck,
            gecoscheck,
            enforce_for_root
        );
    }
}

/// What the probe learns.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// `PACKAGES` that dpkg does not have installed.
    pub missing: Vec<String>,
    /// apt's simulation of installing them: every package it would install, or its error.
    pub install: Option<Result<Vec<String>, String>>,
    /// `common-password` runs `pam_pwquality`.
    pub in_stack: bool,
    /// The drop-in directory exists.
    pub conf_d: bool,
    /// Every pwquality configuration file in libpwquality's read order, harden's included.
    pub files: Vec<ConfFile>,
    /// The managed system is the running one (not `--root`): the check can run.
    pub live: bool,
}

impl Live {
    /// harden's drop-in as it is now.
    fn drop_in(&self) -> Option<&ConfFile> {
        self.files.iter().find(|f| f.path == DROP_IN)
    }
}

impl Resource for Pam {
    type Live = Live;
    const NAME: &'static str = "pam";

    fn merge(&mut self, later: Self) {
        match (&mut self.pwquality, later.pwquality) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
        if later.check_services.is_some() {
            self.check_services = later.check_services;
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        if let Some(q) = &self.pwquality {
            if let Some(minlen) = q.minlen.as_ref().filter(|m| m.value < 6) {
                errors.push(
                    Invalid::new(
                        minlen.at,
                        format!(
                            "minlen {} is below 6, which libpwquality raises to 6",
                            minlen.value
                        ),
                    )
                    .help("give 6 or more"),
                );
            }
            if let Some(minclass) = q.minclass.as_ref().filter(|m| m.value > 4) {
                errors.push(Invalid::new(
                    minclass.at,
                    format!("minclass {} is more than the 4 classes there are (digits, upper, lower, other)", minclass.value),
                ));
            }
        }
        for service in self.check_services.iter().flat_map(|s| &s.value) {
            let ok = !service.value.is_empty()
                && service
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                errors.push(Invalid::new(
                    service.at,
                    format!("invalid PAM service {:?}: expected a file name of /etc/pam.d such as sshd or login", service.value),
                ));
            }
        }
        if let Some(services) = self.check_services.as_ref().filter(|s| s.value.is_empty()) {
            errors.push(
                Invalid::new(
                    services.at,
                    "an empty `check_services` would check no login",
                )
                .help("list at least one PAM service, such as sshd"),
            );
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Live, Failure> {
        let host = cx.host;
        let read = |path: &Path| {
            host.read_to_string(path)
                .map_err(|e| Failure::Probe(format!("{}: {e}", path.display())))
        };
        let mut live = Live {
            live: host.is_live(),
            ..Live::default()
        };
        live.missing = missing_packages(host).await?;
        if !live.missing.is_empty() {
            live.install = Some(simulate_install(host, &live.missing).await?);
        }
        live.in_stack = read(Path::new(COMMON_PASSWORD))?.is_some_and(|t| conf::runs_pwquality(&t));
        live.conf_d = matches!(host.stat(Path::new(CONF_D)), Ok(Some(_)));
        let mut names: Vec<String> = if live.conf_d {
            host.read_dir(Path::new(CONF_D))
                .map_err(|e| Failure::Probe(format!("{CONF_D}: {e}")))?
                .into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".conf"))
                .collect()
        } else {
            Vec::new()
        };
        names.sort();
        for path in names
            .iter()
            .map(|n| format!("{CONF_D}/{n}"))
            .chain([MAIN.to_owned()])
        {
            if let Some(text) = read(Path::new(&path))? {
                live.files.push(ConfFile::parse(&path, &text));
            }
        }
        Ok(live)
    }

    fn diff(&self, live: &Live, _cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let settings = self
            .pwquality
            .as_ref()
            .map(Pwquality::settings)
            .unwrap_or_default();
        overridden(&settings, live)?;
        if let Some(install) = &live.install {
            diff.changes.push(install_change(&live.missing, install)?);
        } else if !live.in_stack {
            diff.changes.push(enable_profile());
        } else {
            diff.unchanged += 1;
        }
        let content = render(&settings);
        if live.drop_in().map(|f| f.text.as_str()) == Some(content.as_str()) {
            diff.unchanged += 1;
        } else {
            diff.changes.push(drop_in_change(&settings, &content, live));
        }
        if diff.changes.is_empty() {
            return Ok(diff);
        }
        if live.live {
            let services = self.services();
            diff.changes.push(check_change(&services, &settings));
        } else {
            diff.warnings.push(Warning {
                resource: Self::NAME.into(),
                message: "under --root no login is tried through PAM: the image's password stack is not verified before it boots".into(),
            });
        }
        Ok(diff)
    }
}

impl Pam {
    /// The PAM services the check authenticates through.
    fn services(&self) -> Vec<String> {
        match &self.check_services {
            Some(list) => list.value.iter().map(|s| s.value.clone()).collect(),
            None => vec!["sshd".into()],
        }
    }
}

/// An error at each playbook key a file read after harden's drop-in sets otherwise.
fn overridden(settings: &[Setting], live: &Live) -> Result<(), Failure> {
    let errors: Vec<Invalid> = settings
        .iter()
        .filter_map(|s| {
            let (path, line, value) = conf::last_elsewhere(&live.files, s.key, DROP_IN)?;
            (value != s.text()).then(|| {
                Invalid::new(
                    s.at,
                    format!(
                        "{path}:{line} sets {} = {value} and libpwquality reads it after harden's {DROP_IN}, so the playbook's {} would not hold",
                        s.key,
                        s.text()
                    ),
                )
                .help(format!("remove that line from {path}"))
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::Invalid(errors))
    }
}

/// Missing `PACKAGES`, by dpkg.
async fn missing_packages(host: &harden_host::Host) -> Result<Vec<String>, Failure> {
    let mut argv = vec![
        "env",
        "LC_ALL=C",
        "dpkg-query",
        "-W",
        "-f",
        "${Package}\\t${db:Status-Status}\\n",
        "--",
    ];
    argv.extend(PACKAGES);
    let out = host
        .run(&Command::new(argv).timeout(60))
        .await
        .map_err(|e| Failure::Probe(format!("dpkg-query: {e}")))?;
    let installed: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, status)| *status == "installed")
        .map(|(name, _)| name)
        .collect();
    Ok(PACKAGES
        .iter()
        .filter(|p| !installed.contains(p))
        .map(|p| (*p).to_owned())
        .collect())
}

/// apt's simulation of installing `packages`: every package it would install, or its error.
async fn simulate_install(
    host: &harden_host::Host,
    packages: &[String],
) -> Result<Result<Vec<String>, String>, Failure> {
    let names: Vec<&str> = packages.iter().map(String::as_str).collect();
    let out = host
        .run(&steps::apt_simulate_install(&names))
        .await
        .map_err(|e| Failure::Probe(format!("apt-get -s: {e}")))?;
    if !out.success() {
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("E: "))
            .collect();
        return Ok(Err(errors.join("; ")));
    }
    Ok(Ok(steps::simulated_installs(&out.stdout)))
}

/// Installs what is missing (its postinst runs `pam-auth-update`), undone by purging all
/// that apt installed; the PAM files are in the snapshot.
fn install_change(
    missing: &[String],
    install: &Result<Vec<String>, String>,
) -> Result<Change, Failure> {
    let all = install.as_ref().map_err(|e| {
        Failure::Probe(format!(
            "apt cannot install {}: {e} (pam needs them for pam_pwquality and its login check)",
            missing.join(", ")
        ))
    })?;
    let names: Vec<&str> = missing.iter().map(String::as_str).collect();
    let mut change = Change::new(
        Pam::NAME,
        format!("install {}", names.join(", ")),
        format!("not installed; apt installs {}", all.join(", ")),
        vec![Step::Run(
            steps::apt_install(&names).touching(PAM_FILES.iter().map(PathBuf::from)),
        )],
    );
    let undo: Vec<&str> = all.iter().map(String::as_str).collect();
    change.on_rollback = vec![steps::apt_purge(&undo)];
    Ok(change)
}

/// `pam-auth-update --enable pwquality`: the package is there but its profile is off.
fn enable_profile() -> Change {
    Change::new(
        Pam::NAME,
        COMMON_PASSWORD,
        "pam_pwquality is installed but not in the password stack",
        vec![Step::Run(
            Command::new(["pam-auth-update", "--package", "--enable", "pwquality"])
                .timeout(60)
                .touching(PAM_FILES.iter().map(PathBuf::from)),
        )],
    )
}

fn drop_in_change(settings: &[Setting], content: &str, live: &Live) -> Change {
    let before = live.drop_in().map(|f| f.text.clone());
    let mut steps = Vec::new();
    if !live.conf_d {
        steps.push(Step::CreateDir {
            path: CONF_D.into(),
            attrs: Attrs::root(0o755),
        });
    }
    steps.push(Step::WriteFile {
        path: DROP_IN.into(),
        content: content.to_owned(),
        attrs: Attrs::root(0o644),
        before: before.clone(),
    });
    let details = settings
        .iter()
        .filter_map(|s| {
            let current = conf::effective(&live.files, s.key);
            (current.as_ref().map(|(_, _, v)| v.as_str()) != Some(s.text().as_str())).then(|| {
                Detail {
                    name: s.key.into(),
                    current: current.as_ref().map(|(_, _, v)| v.clone()),
                    source: current.map(|(p, l, _)| format!("{p}:{l}")),
                    desired: Some(s.text()),
                }
            })
        })
        .collect();
    Change::new(
        Pam::NAME,
        DROP_IN,
        if before.is_none() {
            "file is missing"
        } else {
            "settings differ"
        },
        steps,
    )
    .with_details(details)
}

/// The drop-in's text.
pub fn render(settings: &[Setting]) -> String {
    let mut out = format!(
        "{MARKER} from the playbook's `pam` section; changes here are overwritten.\n\
         # libpwquality reads pwquality.conf after this file: a value set there wins.\n"
    );
    for s in settings {
        if let Some(line) = s.line() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The check that runs after the changes: see the module docs. The strong password is drawn
/// inside the script and never leaves it.
fn check_change(services: &[String], settings: &[Setting]) -> Change {
    let minlen = settings
        .iter()
        .find(|s| s.key == "minlen")
        .map_or(8, |s| s.value);
    let groups = (minlen / 4 + 4).max(6).to_string();
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        CHECK_SCRIPT.to_owned(),
        "harden-pam-check".to_owned(),
        CHECK_USER.to_owned(),
        groups,
    ];
    argv.extend(services.iter().cloned());
    let command = Command::new(argv)
        .timeout(120)
        .touching(steps::ACCOUNT_DATABASES.iter().map(PathBuf::from))
        .touching([PathBuf::from("/etc/security/opasswd")]);
    Change::new(
        Pam::NAME,
        "login check",
        format!(
            "a weak password must be refused, a strong one set, and a login through PAM ({}) must succeed",
            services.join(", ")
        ),
        vec![Step::Run(command)],
    )
}

/// `$1` the throwaway account, `$2` groups of four characters (one of each class) in the
/// strong password, then the PAM services to authenticate through.
const CHECK_SCRIPT: &str = r#"user=$1; groups=$2; shift 2
export LC_ALL=C
if getent passwd "$user" >/dev/null; then userdel "$user" || exit 1; fi
useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$user" || exit 1
trap 'userdel "$user" >/dev/null 2>&1' EXIT
weak=$(printf 'abc\nabc\nabc\nabc\nabc\nabc\n' | pamtester passwd "$user" chauthtok 2>&1)
case $weak in
  *"BAD PASSWORD"*) ;;
  *) echo "pam_pwquality did not judge a 3-character password (is it in the password stack?): $weak" >&2; exit 1 ;;
esac
# A function, so that its `set --` leaves the script's arguments (the services) alone.
draw() {
  pw=; i=0
  for b in $(od -An -N"$((groups * 4))" -tu1 /dev/urandom); do
    case $((i % 4)) in
      0) set -- A B C D E F G H J K L M N P Q R S T U V W X Y Z ;;
      1) set -- a b c d e f g h i j k m n o p q r s t u v w x y z ;;
      2) set -- 2 3 4 5 6 7 8 9 ;;
      *) set -- - _ . , % + = @ ;;
    esac
    shift $((b % $#)); pw=$pw$1; i=$((i + 1))
  done
}
draw
out=$(printf '%s\n%s\n' "$pw" "$pw" | pamtester passwd "$user" chauthtok 2>&1) || {
  echo "PAM refused to set a strong password: $out" >&2; exit 1; }
case $out in *"BAD PASSWORD"*) echo "pam_pwquality judged a strong password bad: $out" >&2; exit 1 ;; esac
for service in "$@"; do
  out=$(printf '%s\n' "$pw" | pamtester "$service" "$user" authenticate acct_mgmt 2>&1) || {
    echo "a login through PAM service $service failed: $out" >&2; exit 1; }
done
"#;
