//! `env_files`: the dotenv files applications read their secrets and settings from.
//!
//! Each key has rules (`required`, `min_length`, `reject`, `equals`, `generate`); a value
//! that breaks them is replaced (a generated secret, or the `equals` value) by editing only
//! that key's lines, or, with `on_weak: error`, stops the plan. The design decision is that
//! no secret ever enters the plan: the diff describes values (`8 characters, a known
//! default`) and the step names keys and how their values are made; the executor reads the
//! file and draws the random values at apply time ([`harden_plan::Step::EditEnv`]). So the
//! text plan, the JSON plan and the journal hold none, and the re-plan after an apply checks
//! the new values against the same rules.

mod rules;

use std::fmt;
use std::path::{Component, Path};

use harden_dotenv::Document;
use harden_host::{Host, Kind, Links, Stat};
use harden_plan::{Alphabet, Attrs, Change, Detail, EnvEdit, Generate, Step, Warning};
use serde::{Deserialize, Deserializer};

use crate::diagnostic::Invalid;
use crate::facts::accounts::{Accounts, Principal};
use crate::facts::PlannedAttrs;
use crate::located::{At, Located};
use crate::resource::{Context, Diff, DiffContext, Failure, Resource};

use rules::{judge, Rules, Verdict};

/// The mode a managed env file gets unless the playbook says otherwise.
const DEFAULT_MODE: u32 = 0o600;

/// The largest env file read: a real one is a few kilobytes.
const MAX_ENV_BYTES: usize = 1024 * 1024;

/// Fewer random bytes than this make no strong secret (128 bits).
const MIN_GENERATED_BYTES: u32 = 16;

/// The most random bytes one value may have.
const MAX_GENERATED_BYTES: u32 = 1024;

/// The `env_files:` section: a list of files; a later playbook's entry for a path wins.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct EnvFiles(pub Vec<EnvFile>);

/// One dotenv file and the rules of its keys.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    /// Absolute path.
    pub path: Located<String>,
    /// Mode, octal (default 0600).
    pub mode: Option<Located<String>>,
    /// Owner, by name or uid.
    pub owner: Option<Located<Principal>>,
    /// Group, by name or gid.
    pub group: Option<Located<Principal>>,
    /// Create the file when it is missing (default true).
    #[serde(default = "yes")]
    pub create: bool,
    /// What a value that breaks its rules leads to.
    #[serde(default)]
    pub on_weak: OnWeak,
    /// The keys, in the order missing ones are appended.
    pub keys: Keys,
}

fn yes() -> bool {
    true
}

/// What a weak value leads to.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnWeak {
    /// Replace it with a generated one (the key must have `generate`).
    #[default]
    Generate,
    /// Fail the plan: the operator replaces it (rotating a live secret breaks sessions).
    Error,
}

/// The rules of one key.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRules {
    /// The value is a secret: known defaults are rejected. Default: true when the key has
    /// `generate`. Whatever it says, a value is shown only for keys with `equals` or
    /// `secret: false`: a key the playbook forgot to declare is not printed either.
    pub secret: Option<bool>,
    /// The key must be present and not empty.
    #[serde(default)]
    pub required: bool,
    /// The shortest acceptable value, in characters.
    pub min_length: Option<Located<u32>>,
    /// Values that must not be used (compared ignoring case).
    #[serde(default)]
    pub reject: Vec<String>,
    /// The value the key must have (for settings such as `DEBUG: "false"`).
    pub equals: Option<Located<String>>,
    /// How a replacement is generated when the key is missing or its value is weak.
    pub generate: Option<Located<GenerateSpec>>,
}

/// `{ hex: 32 }` or `{ urlsafe: 32 }`: that many random bytes, written as Python's
/// `secrets.token_hex` and `token_urlsafe` write them (64 and 43 characters).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum GenerateSpec {
    /// Hexadecimal: two characters per byte.
    Hex(u32),
    /// URL-safe base64 without padding.
    Urlsafe(u32),
}

impl GenerateSpec {
    fn plan(self) -> Generate {
        match self {
            GenerateSpec::Hex(bytes) => Generate {
                alphabet: Alphabet::Hex,
                bytes,
            },
            GenerateSpec::Urlsafe(bytes) => Generate {
                alphabet: Alphabet::Urlsafe,
                bytes,
            },
        }
    }
}

/// The keys of a file with their rules, in the playbook's order.
#[derive(Clone, Debug, Default)]
pub struct Keys(pub Vec<(Located<String>, Located<KeyRules>)>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of key names to their rules")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    keys.push(entry);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Keys {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Keys".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let rules = generator.subschema_for::<KeyRules>();
        schemars::json_schema!({
            "description": "The keys of the file and their rules, in the order missing ones are appended.",
            "type": "object",
            "additionalProperties": rules
        })
    }
}

/// What the probe found at one file's path. Its document holds the live values: it is
/// never printed (its `Debug` shows keys only).
#[derive(Clone, Debug, Default)]
pub struct EnvLive {
    /// The path itself; `None` when missing.
    pub stat: Option<Stat>,
    /// The parsed file, or why it could not be read (a line number, never its text).
    pub document: Option<Result<Document, String>>,
    /// Whether its parent is a directory (checked only when the path is missing).
    pub parent_is_dir: bool,
    /// Why writes to this path would be refused, when they would be.
    pub unsafe_path: Option<String>,
}

impl Resource for EnvFiles {
    type Live = Vec<EnvLive>;
    const NAME: &'static str = "env_files";

    fn merge(&mut self, later: Self) {
        for file in later.0 {
            self.0.retain(|f| {
                f.path.value != file.path.value || f.path.at.source == file.path.at.source
            });
            self.0.push(file);
        }
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut errors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for file in &self.0 {
            if let Some(first) = seen.insert(file.path.value.as_str(), file.path.at) {
                errors.push(
                    Invalid::new(
                        file.path.at,
                        format!(
                            "path {:?} is listed twice in this playbook (first at line {})",
                            file.path.value, first.line
                        ),
                    )
                    .help("merge the two entries into one"),
                );
            }
            if let Err(why) = check_path(&file.path.value) {
                errors.push(
                    Invalid::new(file.path.at, why)
                        .help("write an absolute, normalised path such as /opt/app/.env"),
                );
            }
            if let Some(mode) = &file.mode {
                if let Err(why) = parse_mode(&mode.value) {
                    errors.push(
                        Invalid::new(mode.at, why)
                            .help("write an octal mode in quotes, such as \"0600\""),
                    );
                }
            }
            if file.keys.0.is_empty() {
                errors.push(Invalid::new(
                    file.path.at,
                    "no keys: give at least one under `keys`",
                ));
            }
            for (key, rules) in &file.keys.0 {
                errors.extend(validate_key(key, rules));
            }
        }
        errors
    }

    async fn probe(&self, cx: &Context<'_>) -> Result<Self::Live, Failure> {
        let mut live = Vec::with_capacity(self.0.len());
        for file in &self.0 {
            live.push(probe_file(cx.host, Path::new(&file.path.value))?);
        }
        Ok(live)
    }

    fn diff(&self, live: &Self::Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
        let mut diff = Diff::default();
        let mut errors = Vec::new();
        // Owners by name: the system's accounts and those the plan's `users` creates.
        let accounts = cx.facts.accounts(cx.users);
        for (file, found) in self.0.iter().zip(live) {
            let path = Path::new(&file.path.value);
            let from_files = FromFiles {
                attrs: cx.facts.file_attrs.get(path),
                parent_managed: path
                    .parent()
                    .is_some_and(|p| cx.facts.file_attrs.contains_key(p)),
            };
            if let Err(mut e) = diff_file(file, found, &accounts, from_files, &mut diff) {
                errors.append(&mut e);
            }
        }
        if errors.is_empty() {
            Ok(diff)
        } else {
            Err(Failure::Invalid(errors))
        }
    }
}

/// The errors in one key's rules.
fn validate_key(key: &Located<String>, rules: &Located<KeyRules>) -> Vec<Invalid> {
    let mut errors = Vec::new();
    let mut error = |at: At, message: String, help: &str| {
        errors.push(Invalid::new(at, message).help(help));
    };
    let name = &key.value;
    if !harden_dotenv::is_portable_key(name) {
        error(
            key.at,
            format!("invalid key {name:?}"),
            "a key is letters, digits and `_`, not starting with a digit",
        );
    }
    let r = &rules.value;
    if let Some(equals) = &r.equals {
        if r.secret == Some(true) {
            error(equals.at, format!("{name} is declared secret, so its value cannot be written in the playbook"), "use `generate:` to let harden make it, or `reject:` and `min_length:` to check the one the application has");
        }
        if r.generate.is_some() || r.min_length.is_some() || !r.reject.is_empty() {
            error(equals.at, format!("{name}: `equals` fixes the value; it cannot be combined with `generate`, `min_length` or `reject`"), "keep `equals` alone, or drop it");
        }
        if equals.value.contains(|c: char| c.is_control()) {
            error(
                equals.at,
                format!("the value of {name} contains a control character"),
                "write a value on one line, without control characters",
            );
        }
    }
    if let Some(generate) = &r.generate {
        let how = generate.value.plan();
        if how.bytes < MIN_GENERATED_BYTES || how.bytes > MAX_GENERATED_BYTES {
            error(generate.at, format!("{name}: {} random bytes; between {MIN_GENERATED_BYTES} (128 bits) and {MAX_GENERATED_BYTES} are expected", how.bytes), "`{ hex: 32 }` is 32 random bytes, written as 64 characters");
        }
        if let Some(min) = &r.min_length {
            if how.characters() < min.value as usize {
                error(generate.at, format!("{name}: a generated value has {} characters, fewer than its `min_length: {}`", how.characters(), min.value), "generate more bytes");
            }
        }
        if r.secret == Some(false) {
            error(generate.at, format!("{name}: a generated value is a secret; `secret: false` cannot be combined with `generate`"), "drop `secret: false`");
        }
    }
    if let Some(min) = &r.min_length {
        if min.value == 0 {
            error(
                min.at,
                format!("{name}: `min_length: 0` checks nothing"),
                "give a length of at least 1, or drop it",
            );
        }
    }
    errors
}

fn check_path(path: &str) -> Result<(), String> {
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!(
            "path {path:?} contains the control character {c:?}"
        ));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!(
            "path {path:?} is relative; an absolute path is expected"
        ));
    }
    let odd = p
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    if odd || path.contains("//") || path.ends_with('/') {
        return Err(format!(
            "path {path:?} is not normalised (no `.`, `..`, `//` or trailing `/`)"
        ));
    }
    Ok(())
}

/// An octal mode such as `"0600"`.
fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !text.is_empty())
        .ok_or_else(|| format!("invalid mode {text:?}: an octal mode such as \"0600\" is expected"))
}

fn probe_file(host: &Host, path: &Path) -> Result<EnvLive, Failure> {
    let failed = |e: std::io::Error| Failure::Probe(format!("{}: {e}", path.display()));
    let stat = host.stat(path).map_err(failed)?;
    let mut found = EnvLive {
        stat,
        ..EnvLive::default()
    };
    if let Err(e) = host.open_parent(path, Links::RootOwned) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            found.unsafe_path = Some(e.to_string());
        }
    }
    match stat {
        None => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            found.parent_is_dir =
                matches!(host.stat(parent).map_err(failed)?, Some(s) if s.kind == Kind::Dir);
        }
        Some(s) if s.kind == Kind::File => {
            let bytes = host.read(path).map_err(failed)?.unwrap_or_default();
            found.document = Some(read_document(path, bytes));
        }
        Some(_) => {}
    }
    Ok(found)
}

/// The parsed file, or why it cannot be edited, naming a line but never quoting it.
fn read_document(path: &Path, bytes: Vec<u8>) -> Result<Document, String> {
    if bytes.len() > MAX_ENV_BYTES {
        return Err(format!(
            "{} is larger than {MAX_ENV_BYTES} bytes; not a dotenv file",
            path.display()
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    harden_dotenv::parse(&text).map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
}

/// The attributes the file ends with: the playbook's, else those the `files` section gives
/// the same path, else the file's own owner (root for a new file) and mode 0600.
fn desired_attrs(
    file: &EnvFile,
    stat: Option<&Stat>,
    users: &Accounts<'_>,
    planned: Option<&PlannedAttrs>,
) -> Result<Attrs, Vec<Invalid>> {
    let mut errors = Vec::new();
    let uid = resolve(&file.owner, |n| users.uid(n), "user").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let gid = resolve(&file.group, |n| users.gid(n), "group").unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let mode = file.mode.as_ref().and_then(|m| parse_mode(&m.value).ok());
    let current = stat.map(|s| s.mode).unwrap_or(DEFAULT_MODE);
    let fact_mode = planned
        .and_then(|p| p.mode.as_ref())
        .map(|change| change(current));
    let fact_uid = planned.and_then(|p| p.uid);
    let fact_gid = planned.and_then(|p| p.gid);
    let conflicts = [
        ("mode", file.mode.as_ref().map(|m| m.at), mode, fact_mode),
        ("owner", file.owner.as_ref().map(|o| o.at), uid, fact_uid),
        ("group", file.group.as_ref().map(|g| g.at), gid, fact_gid),
    ];
    for (what, at, mine, theirs) in conflicts {
        if let (Some(at), Some(mine), Some(theirs)) = (at, mine, theirs) {
            if mine != theirs {
                errors.push(
                    Invalid::new(
                        at,
                        format!(
                            "the `files` section gives {} another {what}",
                            file.path.value
                        ),
                    )
                    .help("give the path its mode and owner in one place"),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Attrs {
        mode: mode.or(fact_mode).unwrap_or(DEFAULT_MODE),
        uid: uid.or(fact_uid).or(stat.map(|s| s.uid)).unwrap_or(0),
        gid: gid.or(fact_gid).or(stat.map(|s| s.gid)).unwrap_or(0),
    })
}

fn resolve(
    who: &Option<Located<Principal>>,
    lookup: impl Fn(&str) -> Option<u32>,
    what: &str,
) -> Result<Option<u32>, Invalid> {
    match who {
        None => Ok(None),
        Some(Located {
            value: Principal::Id(id),
            ..
        }) => Ok(Some(*id)),
        Some(Located {
            value: Principal::Name(name),
            at,
        }) => lookup(name).map(Some).ok_or_else(|| {
            Invalid::new(
                *at,
                format!("unknown {what} {name:?} on the managed system"),
            )
            .help(format!("create the {what} first, or give a numeric id"))
        }),
    }
}

/// Why the file cannot be planned at all, when it cannot.
fn unusable(file: &EnvFile, found: &EnvLive, parent_managed: bool) -> Option<Invalid> {
    let at = file.path.at;
    let path = &file.path.value;
    if let Some(why) = &found.unsafe_path {
        return Some(Invalid::new(at, why.clone()).help(
            "a symlink owned by another user could redirect the change; name the real path",
        ));
    }
    match found.stat {
        Some(s) if s.kind != Kind::File => Some(
            Invalid::new(at, format!("{path} exists and is not a regular file"))
                .help("name the dotenv file itself, not a symlink or directory"),
        ),
        Some(_) => match &found.document {
            Some(Err(why)) => Some(
                Invalid::new(at, why.clone())
                    .help("fix that line: harden edits only files it can read back"),
            ),
            _ => None,
        },
        None if !file.create => Some(
            Invalid::new(at, format!("{path} does not exist"))
                .help("set `create: true` to let harden create it"),
        ),
        None => {
            let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
            // A `files` entry for the parent may create it earlier in the same plan.
            (!found.parent_is_dir && !parent_managed).then(|| {
                Invalid::new(
                    at,
                    format!(
                        "cannot create {path}: its parent {} is not a directory",
                        parent.display()
                    ),
                )
                .help(format!(
                    "add `{{ path: {}, directory: true }}` to the `files` section",
                    parent.display()
                ))
            })
        }
    }
}

/// What the `files` section says about one env file: the attributes it gives the file, and
/// whether it manages the file's parent (and so may create it earlier in the same plan).
#[derive(Clone, Copy, Default)]
struct FromFiles<'a> {
    attrs: Option<&'a PlannedAttrs>,
    parent_managed: bool,
}

fn diff_file(
    file: &EnvFile,
    found: &EnvLive,
    users: &Accounts<'_>,
    from_files: FromFiles<'_>,
    diff: &mut Diff,
) -> Result<(), Vec<Invalid>> {
    let FromFiles {
        attrs: planned,
        parent_managed,
    } = from_files;
    if let Some(e) = unusable(file, found, parent_managed) {
        return Err(vec![e]);
    }
    let attrs = desired_attrs(file, found.stat.as_ref(), users, planned)?;
    let path = &file.path.value;
    let empty = Document::default();
    let doc = match &found.document {
        Some(Ok(doc)) => doc,
        _ => &empty,
    };
    let Judged {
        edits,
        mut details,
        rotated,
    } = judge_keys(file, doc, path, diff)?;
    if let Some(stat) = &found.stat {
        details.extend(attr_details(stat, &attrs, users));
    }
    if !rotated.is_empty() {
        diff.warnings.push(rotation_warning(path, &rotated));
    }
    let step = match (&found.stat, edits.is_empty()) {
        (Some(stat), true) => {
            let from = Attrs {
                mode: stat.mode,
                uid: stat.uid,
                gid: stat.gid,
            };
            if from == attrs {
                return Ok(());
            }
            Step::SetAttrs {
                path: path.into(),
                from,
                to: attrs,
            }
        }
        _ => Step::EditEnv {
            path: path.into(),
            attrs,
            create: file.create,
            edits,
        },
    };
    let reason = reason(found.stat.is_none(), &details);
    diff.changes.push(Change {
        resource: EnvFiles::NAME.into(),
        target: path.clone(),
        reason,
        details,
        steps: vec![step],
        on_rollback: Vec::new(),
        rollback_checks: Vec::new(),
    });
    Ok(())
}

/// What judging a file's keys came to.
struct Judged {
    /// The keys to set.
    edits: Vec<EnvEdit>,
    /// A detail per key to set.
    details: Vec<Detail>,
    /// The keys whose live value is replaced.
    rotated: Vec<String>,
}

/// Judges every key; returns the edits, a detail per edited key, and the keys whose live
/// value is replaced. Errors name keys and rules, never values.
fn judge_keys(
    file: &EnvFile,
    doc: &Document,
    path: &str,
    diff: &mut Diff,
) -> Result<Judged, Vec<Invalid>> {
    let mut edits = Vec::new();
    let mut details = Vec::new();
    let mut rotated = Vec::new();
    let mut errors = Vec::new();
    let mut taken: Vec<&str> = Vec::new();
    for (key, located) in &file.keys.0 {
        let rules = rules_of(file, key, located);
        let values = doc.values(&key.value);
        match judge(&rules, &values, &taken, path) {
            Ok(Verdict::Fine) => {
                diff.unchanged += 1;
                if rules.secret {
                    taken.extend(values.iter().filter(|v| !v.is_empty()));
                }
            }
            Ok(Verdict::Set {
                value,
                current,
                desired,
                rotates,
            }) => {
                if rotates {
                    rotated.push(key.value.clone());
                }
                details.push(Detail {
                    name: key.value.clone(),
                    current: Some(current),
                    source: None,
                    desired: Some(desired),
                });
                edits.push(EnvEdit {
                    key: key.value.clone(),
                    value,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Judged {
            edits,
            details,
            rotated,
        })
    } else {
        Err(errors)
    }
}

fn rules_of<'a>(
    file: &'a EnvFile,
    key: &'a Located<String>,
    located: &'a Located<KeyRules>,
) -> Rules<'a> {
    let r = &located.value;
    Rules {
        key: &key.value,
        at: key.at,
        secret: r.secret.unwrap_or(r.generate.is_some()),
        hidden: r.secret.unwrap_or(r.equals.is_none()),
        required: r.required,
        min_length: r.min_length.as_ref().map(|m| m.value),
        reject: &r.reject,
        equals: r.equals.as_ref().map(|e| e.value.as_str()),
        generate: r.generate.as_ref().map(|g| g.value.plan()),
        error_on_weak: file.on_weak == OnWeak::Error,
    }
}

fn rotation_warning(path: &str, keys: &[String]) -> Warning {
    Warning {
        resource: EnvFiles::NAME.into(),
        message: format!(
            "{path}: {} replaced: sessions and tokens signed with the old value stop working, and data encrypted with it can no longer be read; restart the application so that it reads the new value (set `on_weak: error` to replace secrets yourself)",
            match keys {
                [one] => format!("{one} is"),
                many => format!("{} are", many.join(", ")),
            }
        ),
    }
}

fn attr_details(stat: &Stat, to: &Attrs, users: &Accounts<'_>) -> Vec<Detail> {
    let user = |uid: u32| users.user_name(uid).unwrap_or_else(|| uid.to_string());
    let group = |gid: u32| users.group_name(gid).unwrap_or_else(|| gid.to_string());
    [
        (
            "mode",
            format!("{:04o}", stat.mode),
            format!("{:04o}", to.mode),
        ),
        ("owner", user(stat.uid), user(to.uid)),
        ("group", group(stat.gid), group(to.gid)),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(name, current, desired)| Detail {
        name: name.into(),
        current: Some(current),
        source: None,
        desired: Some(desired),
    })
    .collect()
}

fn reason(missing: bool, details: &[Detail]) -> String {
    if missing {
        return "file is missing".into();
    }
    let keys = details
        .iter()
        .filter(|d| !matches!(d.name.as_str(), "mode" | "owner" | "group"))
        .count();
    let attrs = details.len() - keys;
    match (keys, attrs) {
        (0, _) => "mode or owner differs".into(),
        (1, 0) => "1 key breaks its rules".into(),
        (n, 0) => format!("{n} keys break their rules"),
        (1, _) => "1 key breaks its rules; mode or owner differs".into(),
        (n, _) => format!("{n} keys break their rules; mode or owner differs"),
    }
}

#[cfg(test)]
mod tests;
