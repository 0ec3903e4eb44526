//! The pure diff: from the playbook's directives and the live state to the edits, checks,
//! guards and steps of one change.
//!
//! The configuration harden would write is built as a [`Snapshot`] and parsed again with
//! the same parser that read the live one; every desired value must come out effective, or
//! the plan fails instead of writing something that does not do what it says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use harden_plan::{Attrs, Change, Command, Detail, Step, Warning};

use super::config::{self, Config, Edit, Snapshot};
use super::guards::{self, World};
use super::keywords::{self, Keyword, Kind, Repeat};
use super::probe::{self, Activation, Live, SocketActivation};
use super::{Directive, Sshd, DROP_IN_HEADER, DROP_IN_NAME};
use crate::diagnostic::Invalid;
use crate::resource::{Diff, DiffContext, Failure, Refusal, Resource};

/// Where harden's values go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Harden's own drop-in in the directory the main file includes.
    DropIn(PathBuf),
    /// The main file, edited in place.
    InPlace,
}

/// One directive, resolved: its table entry (or a generic one), name, and desired lines.
struct Wanted<'a> {
    directive: &'a Directive,
    name: String,
    key: String,
    keyword: Keyword,
    lines: Vec<Vec<String>>,
    rendered: Vec<String>,
}

/// The entry used for a directive the table does not know but the installed sshd accepts.
const UNKNOWN: Keyword = Keyword {
    name: "",
    kind: Kind::Text,
    repeat: Repeat::First,
    default: None,
    alias_of: None,
};

impl Wanted<'_> {
    fn normal(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| keywords::normal(&self.keyword, l))
            .collect()
    }

    fn display(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// For `Subsystem`: the subsystem's name.
    fn named(&self) -> Option<&str> {
        (self.keyword.repeat == Repeat::Named)
            .then(|| {
                self.lines
                    .first()
                    .and_then(|l| l.first())
                    .map(String::as_str)
            })
            .flatten()
    }

    /// The lines that give this directive its value in `config`, for everyone.
    fn effective<'c>(&self, config: &'c Config) -> Vec<&'c config::Line> {
        let mut lines = config
            .effective_key(&self.key, self.keyword.repeat, None)
            .lines;
        if let Some(name) = self.named() {
            lines.retain(|l| l.args.first().map(String::as_str) == Some(name));
        }
        lines
    }
}

fn resolve(section: &Sshd) -> Result<Vec<Wanted<'_>>, Vec<Invalid>> {
    let mut wanted = Vec::new();
    let mut errors = Vec::new();
    for d in &section.config.0 {
        let keyword = d.keyword().copied().unwrap_or(UNKNOWN);
        match (d.lines(), d.rendered()) {
            (Ok(lines), Ok(rendered)) => wanted.push(Wanted {
                directive: d,
                name: d.display_name().to_owned(),
                key: d.key(),
                keyword,
                lines,
                rendered,
            }),
            (Err(e), _) | (_, Err(e)) => errors.push(Invalid::new(d.value.at, e)),
        }
    }
    if errors.is_empty() {
        Ok(wanted)
    } else {
        Err(errors)
    }
}

/// Checks every value against what the installed sshd and OpenSSH support.
fn check_live(wanted: &[Wanted<'_>], live: &Live, current: &Config) -> Vec<Invalid> {
    let mut errors = Vec::new();
    let version = live
        .version
        .clone()
        .unwrap_or_else(|| "the installed OpenSSH".into());
    for (i, w) in wanted.iter().enumerate() {
        let d = w.directive;
        // Algorithm names first: `ssh -Q` says which name is wrong and what would do.
        let unsupported = unsupported_algorithms(w, live, &version);
        if !unsupported.is_empty() {
            errors.extend(unsupported);
            continue;
        }
        if let Some(why) = live.rejected.get(&i) {
            errors.push(rejected(w, why, &version));
            continue;
        }
        if d.keyword().is_none() && (live.sshd.is_none() || live.dump.is_none()) {
            let mut e = Invalid::new(d.name.at, format!("unknown sshd directive {}", w.name));
            if let Some(s) = keywords::suggest(&w.name) {
                e = e.help(format!("did you mean {s}?"));
            }
            errors.push(e);
            continue;
        }
        if w.key == "port" {
            errors.extend(ports_in_use(w, live, current));
        }
    }
    errors
}

/// Names in an algorithm list that the installed OpenSSH does not know (`ssh -Q`).
fn unsupported_algorithms(w: &Wanted<'_>, live: &Live, version: &str) -> Vec<Invalid> {
    let Kind::Algorithms(query) = w.keyword.kind else {
        return Vec::new();
    };
    let Some(supported) = live.algorithms.get(&query) else {
        return Vec::new();
    };
    let mut list: Vec<&str> = supported.iter().map(String::as_str).collect();
    list.sort_unstable();
    let mut errors = Vec::new();
    for value in w.lines.iter().filter_map(|args| args.first()) {
        let Ok((_, names)) = keywords::algorithm_names(value) else {
            continue;
        };
        for n in names.iter().filter(|n| !n.contains(['*', '?'])) {
            if !supported.contains(*n) {
                errors.push(
                    Invalid::new(
                        w.directive.value.at,
                        format!("{}: {n} is not supported by {version}", w.name),
                    )
                    .help(format!(
                        "`ssh -Q {}` lists: {}",
                        query.arg(),
                        list.join(", ")
                    )),
                );
            }
        }
    }
    errors
}

/// sshd's own verdict on a directive it rejected alone: an unknown directive, or a value.
fn rejected(w: &Wanted<'_>, why: &str, version: &str) -> Invalid {
    let d = w.directive;
    let name = &w.name;
    let unknown = why.contains("Bad configuration option")
        || why.contains("Unsupported option")
        || why.contains("unsupported option");
    if unknown
        && why
            .to_ascii_lowercase()
            .contains(&name.to_ascii_lowercase())
    {
        let known = "sshd_config(5) on this system lists the directives it knows";
        let help = match keywords::suggest(name).filter(|s| !s.eq_ignore_ascii_case(name)) {
            Some(s) => format!("did you mean {s}? {known}"),
            None => known.to_owned(),
        };
        return Invalid::new(
            d.name.at,
            format!("{version} does not know the directive {name}"),
        )
        .help(help);
    }
    Invalid::new(
        d.value.at,
        format!("{version} rejects {name} {}: {why}", w.display()),
    )
    .help("sshd_config(5) on this system lists the values it accepts")
}

/// Ports the playbook gives sshd that another program listens on now.
fn ports_in_use(w: &Wanted<'_>, live: &Live, current: &Config) -> Vec<Invalid> {
    let Some(listening) = &live.listening else {
        return Vec::new();
    };
    let now = current_ports(live, current);
    w.lines
        .iter()
        .filter_map(|args| args.first().and_then(|p| p.parse::<u16>().ok()))
        .filter(|port| listening.contains(port) && !now.contains(port))
        .map(|port| {
            Invalid::new(w.directive.value.at, format!("port {port} is already in use on this host by another program; sshd could not listen on it"))
                .help("choose a free port, or stop the program that listens there")
        })
        .collect()
}

/// The ports sshd listens on now.
fn current_ports(live: &Live, current: &Config) -> BTreeSet<u16> {
    let from_dump: BTreeSet<u16> = live
        .dump
        .as_ref()
        .and_then(|d| d.get("port"))
        .map(|v| v.iter().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default();
    if !from_dump.is_empty() {
        return from_dump;
    }
    ports_of(current)
}

/// The ports a configuration makes sshd listen on (`Port`, and ports in `ListenAddress`).
fn ports_of(config: &Config) -> BTreeSet<u16> {
    let mut ports: BTreeSet<u16> = config
        .global("port")
        .iter()
        .filter_map(|l| l.args.first()?.parse().ok())
        .collect();
    if ports.is_empty() {
        ports.insert(22);
    }
    let mut explicit = BTreeSet::new();
    for l in config.global("listenaddress") {
        if let Some(p) = l.args.first().and_then(|a| listen_port(a)) {
            explicit.insert(p);
        }
    }
    ports.extend(explicit);
    ports
}

/// The port of a `ListenAddress host:port` or `[v6]:port` value.
pub(crate) fn listen_port(addr: &str) -> Option<u16> {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once("]:").and_then(|(_, p)| p.parse().ok());
    }
    if addr.matches(':').count() == 1 {
        return addr.split_once(':').and_then(|(_, p)| p.parse().ok());
    }
    None
}

/// Where harden's values go in this configuration.
pub(crate) fn mode_of(current: &Config) -> Mode {
    for include in &current.includes {
        if include.file != Path::new(config::MAIN) || include.scope != config::Scope::Global {
            continue;
        }
        let (Some(dir), Some(pattern)) = (include.pattern.parent(), include.pattern.file_name())
        else {
            continue;
        };
        if dir.to_string_lossy().contains(['*', '?', '[']) {
            continue;
        }
        if config::fnmatch(&pattern.to_string_lossy(), DROP_IN_NAME) {
            return Mode::DropIn(dir.to_path_buf());
        }
    }
    Mode::InPlace
}

/// The configuration harden would leave, and what it did to get there.
#[derive(Debug)]
pub(crate) struct Built {
    /// All configuration files after the edits.
    pub snapshot: Snapshot,
    /// Where the values went.
    pub mode: Mode,
    /// The file that holds harden's values.
    pub target: PathBuf,
    /// Lines commented out because they would still win: (file:line, text).
    pub disabled: Vec<(String, String)>,
}

fn drop_in_text(wanted: &[Wanted<'_>]) -> String {
    let mut lines: Vec<(&str, &Vec<String>)> = wanted
        .iter()
        .map(|w| (w.name.as_str(), &w.rendered))
        .collect();
    lines.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    let mut text = String::from(DROP_IN_HEADER);
    for (_, rendered) in lines {
        for l in rendered {
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}

/// Where new lines go in the main file: before the first `Match` (and the comments just
/// above it), or at the end.
fn insertion_point(text: &str, current: &Config) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let first_match = current
        .matches
        .iter()
        .filter(|m| m.file == Path::new(config::MAIN))
        .map(|m| m.number)
        .min();
    let Some(mut at) = first_match else {
        return lines.len() + 1;
    };
    while at > 1 {
        let above = lines.get(at - 2).map_or("", |l| l.trim());
        if above.starts_with('#') {
            at -= 1;
        } else {
            break;
        }
    }
    at
}

/// Builds the desired configuration.
/// Why the desired configuration could not be built.
#[derive(Debug)]
enum Unbuildable {
    /// A `Match` block that applies to every connection keeps another value for directive
    /// number `.0`: harden does not edit Match blocks.
    Blocked(usize, String),
    /// Harden's own edit logic failed to make a value effective.
    Internal(String),
}

fn build(
    wanted: &[Wanted<'_>],
    live_snapshot: &Snapshot,
    current: &Config,
) -> Result<Built, Unbuildable> {
    let mode = mode_of(current);
    let mut snapshot = live_snapshot.clone();
    // Lines that hold the playbook's values: (file, line number) after the edit.
    let mut ours: BTreeSet<(PathBuf, usize)> = BTreeSet::new();
    let target = match &mode {
        Mode::DropIn(dir) => {
            let path = dir.join(DROP_IN_NAME);
            let text = drop_in_text(wanted);
            let count = text.lines().count();
            snapshot.put(&path, text);
            ours.extend((1..=count).map(|n| (path.clone(), n)));
            path
        }
        Mode::InPlace => edit_main(wanted, current, &mut snapshot, &mut ours),
    };
    let disabled = disable_winners(wanted, &target, &ours, &mut snapshot)?;
    verify(wanted, &snapshot)?;
    Ok(Built {
        snapshot,
        mode,
        target,
        disabled,
    })
}

/// The main file edited in place: each value replaces its line there or goes into one block
/// of harden's, and values already in effect stay where they are.
fn edit_main(
    wanted: &[Wanted<'_>],
    current: &Config,
    snapshot: &mut Snapshot,
    ours: &mut BTreeSet<(PathBuf, usize)>,
) -> PathBuf {
    let main = PathBuf::from(config::MAIN);
    let text = snapshot.text(&main).unwrap_or("").to_owned();
    let mut edits = Vec::new();
    let mut insert: Vec<String> = Vec::new();
    let mut kept: Vec<(PathBuf, usize)> = Vec::new();
    for w in wanted {
        let global = named_global(w, current);
        if let Some(keep) = in_effect(w, &global) {
            kept.extend(global.iter().take(keep).map(|l| (l.file.clone(), l.number)));
            continue;
        }
        match global.iter().find(|l| l.file == main) {
            Some(line) => edits.push(Edit::Replace {
                number: line.number,
                with: w.rendered.clone(),
            }),
            None => insert.extend(w.rendered.iter().cloned()),
        }
    }
    if !insert.is_empty() {
        let mut block = vec!["# Set by harden (playbook section `sshd`):".to_owned()];
        block.extend(insert);
        edits.push(Edit::Insert {
            before: insertion_point(&text, current),
            lines: block,
        });
    }
    let (new_text, placed) = config::apply_edits(&text, &edits);
    for numbers in placed {
        ours.extend(numbers.into_iter().map(|n| (main.clone(), n)));
    }
    // Lines kept in the main file move down by what was inserted or added above them.
    let shift = |n: usize| -> usize {
        edits
            .iter()
            .map(|e| match e {
                Edit::Insert { before, lines } if *before <= n => lines.len(),
                Edit::Replace { number, with } if *number < n => with.len().saturating_sub(1),
                _ => 0,
            })
            .sum::<usize>()
            + n
    };
    ours.extend(kept.into_iter().map(|(file, n)| {
        let n = if file == main { shift(n) } else { n };
        (file, n)
    }));
    snapshot.put(&main, new_text);
    main
}

/// The global lines of `w`'s keyword (for a named keyword such as `Subsystem`, those of its
/// name), in the order sshd reads them.
fn named_global<'c>(w: &Wanted<'_>, config: &'c Config) -> Vec<&'c config::Line> {
    let mut global = config.global(&w.key);
    if let Some(name) = w.named() {
        global.retain(|l| l.args.first().map(String::as_str) == Some(name));
    }
    global
}

/// When the lines already give `w`'s value: how many of them hold it.
fn in_effect(w: &Wanted<'_>, global: &[&config::Line]) -> Option<usize> {
    let normal = |l: &&config::Line| keywords::normal(&w.keyword, &l.args);
    match w.keyword.repeat {
        Repeat::First | Repeat::Named => global
            .first()
            .is_some_and(|l| normal(l) == w.normal()[0])
            .then_some(1),
        Repeat::Accumulate => {
            (global.iter().map(normal).collect::<Vec<_>>() == w.normal()).then_some(global.len())
        }
    }
}

/// Comments out the lines elsewhere that would still win over harden's; returns them as
/// (file:line, text) for the plan.
fn disable_winners(
    wanted: &[Wanted<'_>],
    target: &Path,
    ours: &BTreeSet<(PathBuf, usize)>,
    snapshot: &mut Snapshot,
) -> Result<Vec<(String, String)>, Unbuildable> {
    let world = config::parse(snapshot);
    let mut edits: BTreeMap<PathBuf, Vec<Edit>> = BTreeMap::new();
    let mut disabled = Vec::new();
    let is_ours = |l: &config::Line| ours.contains(&(l.file.clone(), l.number));
    for w in wanted {
        let global = named_global(w, &world);
        let Some(first_ours) = global.iter().filter(|l| is_ours(l)).map(|l| l.seq).min() else {
            return Err(Unbuildable::Internal(format!(
                "{} was not written where harden expected it",
                w.name
            )));
        };
        let desired = w.normal();
        for line in global.into_iter().filter(|l| !is_ours(l)) {
            let conflicts = match w.keyword.repeat {
                Repeat::First => {
                    line.seq < first_ours && keywords::normal(&w.keyword, &line.args) != desired[0]
                }
                Repeat::Accumulate | Repeat::Named => true,
            };
            if !conflicts {
                continue;
            }
            let where_set = if line.file == target {
                "below".to_owned()
            } else {
                format!("in {}", target.display())
            };
            let why = format!("disabled by harden, {} is set {where_set}", w.name);
            edits
                .entry(line.file.clone())
                .or_default()
                .push(Edit::CommentOut {
                    number: line.number,
                    why,
                });
            let text = snapshot
                .text(&line.file)
                .and_then(|t| t.lines().nth(line.number - 1))
                .unwrap_or_default()
                .trim()
                .to_owned();
            disabled.push((line.place(), text));
        }
    }
    for (file, file_edits) in edits {
        let text = snapshot.text(&file).unwrap_or("").to_owned();
        let (new_text, _) = config::apply_edits(&text, &file_edits);
        snapshot.put(&file, new_text);
    }
    Ok(disabled)
}

/// The edited files must say what the playbook says, for every connection.
fn verify(wanted: &[Wanted<'_>], snapshot: &Snapshot) -> Result<(), Unbuildable> {
    let result = config::parse(snapshot);
    for (i, w) in wanted.iter().enumerate() {
        let lines = w.effective(&result);
        let got: Vec<String> = lines
            .iter()
            .map(|l| keywords::normal(&w.keyword, &l.args))
            .collect();
        if got == w.normal() {
            continue;
        }
        let in_match = lines.iter().find_map(|l| match l.scope {
            config::Scope::Match(m) => Some((l, m)),
            config::Scope::Global => None,
        });
        if let Some((line, m)) = in_match {
            let block = &result.matches[m];
            return Err(Unbuildable::Blocked(
                i,
                format!(
                    "{}: the `{}` block at {}:{} sets {} {} ({}) for every connection, and harden does not edit Match blocks",
                    w.name,
                    block.describe(),
                    block.file.display(),
                    block.number,
                    w.name,
                    line.args.join(" "),
                    line.place()
                ),
            ));
        }
        return Err(Unbuildable::Internal(format!(
            "after the planned edits sshd would still use {} {} instead of {}",
            w.name,
            lines
                .iter()
                .map(|l| format!("{} ({})", l.args.join(" "), l.place()))
                .collect::<Vec<_>>()
                .join(", "),
            w.display()
        )));
    }
    Ok(())
}

/// True when the configuration files already hold exactly what harden would write: then a
/// passing `sshd -T` has already accepted every value, and the probe can skip asking again.
pub(crate) fn already_written(section: &Sshd, snapshot: &Snapshot) -> bool {
    let Ok(wanted) = resolve(section) else {
        return false;
    };
    let current = config::parse(snapshot);
    match build(&wanted, snapshot, &current) {
        Ok(built) => built.snapshot.files == snapshot.files,
        Err(_) => false,
    }
}

/// The default value of a directive, as the current sshd reports it when no line sets it.
fn defaults_for<'a>(live: &'a Live, current: &'a Config) -> impl Fn(&Keyword) -> Vec<String> + 'a {
    move |k: &Keyword| {
        let key = k.key();
        let set_anywhere = current.lines.iter().any(|l| l.key == key);
        if !set_anywhere {
            if let Some(values) = live.dump.as_ref().and_then(|d| d.get(&key)) {
                if matches!(k.repeat, Repeat::First) {
                    return values
                        .first()
                        .map(|v| config::split_args(v).unwrap_or_default())
                        .unwrap_or_default();
                }
            }
        }
        k.default
            .map(|d| d.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// The current value of one directive for the plan's details: (value, source, normal form).
fn current_value(
    w: &Wanted<'_>,
    live: &Live,
    current: &Config,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<String>, Vec<String>) {
    let lines = w.effective(current);
    let model: Vec<String> = lines
        .iter()
        .map(|l| keywords::normal(&w.keyword, &l.args))
        .collect();
    let shown = |ls: &[&config::Line]| {
        ls.iter()
            .map(|l| l.args.join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let source = (!lines.is_empty()).then(|| {
        lines
            .iter()
            .map(|l| l.place())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let dump = live.dump.as_ref().and_then(|d| d.get(&w.key));
    let comparable = matches!(
        w.keyword.kind,
        Kind::Flag
            | Kind::Choice(_)
            | Kind::Count
            | Kind::Duration
            | Kind::DurationOrNone
            | Kind::Port
    ) && w.keyword.repeat != Repeat::Named;
    if let (Some(dump), true) = (dump, comparable) {
        let reported: Vec<String> = dump
            .iter()
            .map(|v| keywords::normal(&w.keyword, &config::split_args(v).unwrap_or_default()))
            .collect();
        if !lines.is_empty() && reported != model {
            warnings.push(format!(
                "harden reads {} as {} ({}) but `sshd -T` reports {}; the plan uses sshd's value",
                w.name,
                shown(&lines),
                source.clone().unwrap_or_default(),
                dump.join(", ")
            ));
            return (Some(dump.join(", ")), Some("sshd -T".into()), reported);
        }
        if lines.is_empty() {
            return (Some(dump.join(", ")), Some("default".into()), reported);
        }
    }
    if let (Some(dump), true) = (dump, lines.is_empty()) {
        // Not set anywhere: sshd's built-in default, as it reports it.
        let reported: Vec<String> = dump
            .iter()
            .map(|v| keywords::normal(&w.keyword, &config::split_args(v).unwrap_or_default()))
            .collect();
        return (Some(dump.join(", ")), Some("default".into()), reported);
    }
    if lines.is_empty() {
        let default = w
            .keyword
            .default
            .map(|d| vec![d.to_owned()])
            .unwrap_or_default();
        let normal = default
            .iter()
            .map(|d| keywords::normal(&w.keyword, &config::split_args(d).unwrap_or_default()))
            .collect();
        return (
            w.keyword.default.map(str::to_owned),
            w.keyword.default.map(|_| "default".to_owned()),
            normal,
        );
    }
    (Some(shown(&lines)), source, model)
}

/// Attributes for writing `path`: its current ones, or `default` for a new file; a `files`
/// entry of the same playbook for the same path wins, so the two resources agree.
fn attrs_for(path: &Path, live: &Live, cx: &DiffContext<'_>, default: Attrs) -> Attrs {
    let mut attrs = live.stats.get(path).map_or(default, |s| Attrs {
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
    });
    if let Some(planned) = cx.facts.file_attrs.get(path) {
        if let Some(mode) = &planned.mode {
            attrs.mode = mode(attrs.mode);
        }
        attrs.uid = planned.uid.unwrap_or(attrs.uid);
        attrs.gid = planned.gid.unwrap_or(attrs.gid);
    }
    attrs
}

/// The `file:line` places an sshd error names: sshd says `FILE: line N: ...` for an unknown
/// keyword and `FILE line N: ...` for a bad value.
pub(crate) fn config_error_places(error: &str) -> Vec<String> {
    let mut places = Vec::new();
    for part in error.split("; ") {
        let Some((file, rest)) = part.split_once(" line ") else {
            continue;
        };
        let file = file.trim().trim_end_matches(':');
        let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if file.starts_with('/') && !number.is_empty() {
            let place = format!("{file}:{number}");
            if !places.contains(&place) {
                places.push(place);
            }
        }
    }
    places
}

/// Plans the `sshd` section.
pub(crate) fn diff(section: &Sshd, live: &Live, cx: &DiffContext<'_>) -> Result<Diff, Failure> {
    let mut diff = Diff::default();
    if section.config.0.is_empty() {
        return Ok(diff);
    }
    let wanted = resolve(section).map_err(Failure::Invalid)?;
    let current = config::parse(&live.snapshot);
    let errors = check_live(&wanted, live, &current);
    if !errors.is_empty() {
        return Err(Failure::Invalid(errors));
    }
    let mut notes: Vec<String> = Vec::new();
    if !current.main_exists && live.sshd.is_some() {
        notes.push(format!(
            "{} does not exist (sshd cannot start without it); harden creates it with the playbook's directives",
            config::MAIN
        ));
    }
    for p in &current.problems {
        notes.push(format!("sshd_config: {p}"));
    }
    let built = build_edit(&wanted, live, &current)?;
    let rejected = rejected_config(live, &built, &mut notes);
    let desired = config::parse(&built.snapshot);
    let details = directive_details(&wanted, live, &current, &built, &mut notes, &mut diff);
    match_notes(&wanted, &desired, &mut notes);
    per_user_notes(&wanted, live, &current, cx, &mut notes);
    let writes = file_writes(&built, live)?;
    if let Some((error, places)) = rejected {
        if !writes.is_empty() {
            return Err(Failure::Unusable(format!(
                "sshd rejects the current configuration ({error}): `harden apply` will not change sshd until {places} is fixed, because its `sshd -t` check would fail and reloading sshd onto such a configuration stops the daemon. Fix or remove the line, check with `sshd -t`, then plan again"
            )));
        }
        notes.push(format!("sshd rejects the current configuration ({error}): sshd cannot start or reload until {places} is fixed; the playbook's values are already written"));
    }
    diff.warnings.extend(notes.into_iter().map(warning));
    if writes.is_empty() {
        return Ok(diff);
    }
    guard(live, &current, &desired, cx, &mut diff)?;
    let planned = Planned {
        directives: wanted.len(),
        built: &built,
        desired: &desired,
        current: &current,
        writes,
        details,
    };
    diff.changes.push(change(planned, live, cx));
    Ok(diff)
}

fn warning(message: String) -> Warning {
    Warning {
        resource: Sshd::NAME.into(),
        message,
    }
}

/// The edit of the configuration files that makes the playbook's values win.
fn build_edit(wanted: &[Wanted<'_>], live: &Live, current: &Config) -> Result<Built, Failure> {
    match build(wanted, &live.snapshot, current) {
        Ok(built) => Ok(built),
        Err(Unbuildable::Blocked(i, message)) => Err(Failure::Invalid(vec![Invalid::new(wanted[i].directive.value.at, message)
            .help("change or remove that line of the Match block (an exception for everyone is not an exception), then apply again")])),
        Err(Unbuildable::Internal(e)) => {
            Err(Failure::Probe(format!("cannot plan sshd_config safely: {e}")))
        }
    }
}

/// A current configuration sshd rejects at a line harden's edit leaves in place: the
/// error and the places, file:line. A failure the edit fixes, or one without a place, is
/// a note.
fn rejected_config(
    live: &Live,
    built: &Built,
    notes: &mut Vec<String>,
) -> Option<(String, String)> {
    let e = live.dump_error.as_ref()?;
    let places = config_error_places(e);
    let fixed = !places.is_empty()
        && places
            .iter()
            .all(|p| built.disabled.iter().any(|(place, _)| place == p));
    if !places.is_empty() && !fixed {
        return Some((e.clone(), places.join(", ")));
    }
    notes.push(format!("`sshd -T` fails on the current configuration ({e}); the plan rests on harden's own reading of the files, and `sshd -t` will check the result before it is used"));
    None
}

/// Each directive's effective value now, where it comes from, and what it becomes; then the
/// lines the edit comments out.
fn directive_details(
    wanted: &[Wanted<'_>],
    live: &Live,
    current: &Config,
    built: &Built,
    notes: &mut Vec<String>,
    diff: &mut Diff,
) -> Vec<Detail> {
    let mut details = Vec::new();
    for w in wanted {
        let (value, source, normal) = current_value(w, live, current, notes);
        if normal == w.normal() {
            diff.unchanged += 1;
        } else {
            details.push(Detail {
                name: w.name.clone(),
                current: value,
                source,
                desired: Some(w.display()),
            });
        }
    }
    for (place, text) in &built.disabled {
        details.push(Detail {
            name: format!("line {place}"),
            current: Some(text.clone()),
            source: Some(place.clone()),
            desired: None,
        });
    }
    details
}

/// Match blocks that keep another value for some connections: reported, never edited.
fn match_notes(wanted: &[Wanted<'_>], desired: &Config, notes: &mut Vec<String>) {
    for w in wanted {
        for line in desired.in_matches(&w.key) {
            if keywords::normal(&w.keyword, &line.args)
                == w.normal().first().cloned().unwrap_or_default()
            {
                continue;
            }
            let config::Scope::Match(m) = line.scope else {
                continue;
            };
            let block = &desired.matches[m];
            let network = if desired.depends_on_network(m) {
                ", depending on where they come from"
            } else {
                ""
            };
            notes.push(format!(
                "{} at {}:{} sets {} {} ({}); for connections it matches{network} sshd uses that instead of {}. harden does not edit Match blocks: change or remove the block if the exception is not intended",
                block.describe(),
                block.file.display(),
                block.number,
                w.name,
                line.args.join(" "),
                line.place(),
                w.display()
            ));
        }
    }
}

/// Where harden's reading of the files for a `Match User` account disagrees with what
/// `sshd -T -C` reports for it.
fn per_user_notes(
    wanted: &[Wanted<'_>],
    live: &Live,
    current: &Config,
    cx: &DiffContext<'_>,
    notes: &mut Vec<String>,
) {
    for (user, dump) in &live.per_user {
        let Some(account) = cx.users.account(user) else {
            continue;
        };
        let groups = cx.users.groups_of(&account);
        let conn = config::Conn {
            user,
            groups: &groups,
        };
        for w in wanted
            .iter()
            .filter(|w| matches!(w.keyword.kind, Kind::Flag | Kind::Choice(_)))
        {
            let model = current.effective_key(&w.key, w.keyword.repeat, Some(&conn));
            let Some(reported) = dump.get(&w.key).and_then(|v| v.first()) else {
                continue;
            };
            let Some(line) = model.lines.first() else {
                continue;
            };
            if keywords::normal(&w.keyword, &line.args)
                != keywords::normal(&w.keyword, std::slice::from_ref(reported))
            {
                notes.push(format!(
                    "for {user}, harden reads {} as {} ({}) but `sshd -T -C user={user}` reports {reported}",
                    w.name,
                    line.args.join(" "),
                    line.place()
                ));
            }
        }
    }
}

/// The files the edit changes: (path, content before, content after). When sshd is not
/// installed, the main file is the package's to write: an edit that needs it is refused.
fn file_writes(
    built: &Built,
    live: &Live,
) -> Result<Vec<(PathBuf, Option<String>, String)>, Failure> {
    let main = Path::new(config::MAIN);
    if live.synthesized && built.snapshot.text(main) != Some(probe::DEBIAN_DEFAULT) {
        return Err(Failure::Probe(format!(
            "openssh-server is not installed, and the playbook needs {} edited (a directive there would still win); install openssh-server first, then plan again",
            config::MAIN
        )));
    }
    Ok(built
        .snapshot
        .files
        .iter()
        .filter(|(path, _)| !(live.synthesized && path.as_path() == main))
        .filter_map(|(path, text)| {
            let text = text.as_ref()?;
            let before = live.snapshot.files.get(path).cloned().flatten();
            (before.as_deref() != Some(text.as_str())).then(|| (path.clone(), before, text.clone()))
        })
        .collect())
}

/// The lockout guards on the configuration before and after: refused unless overridden.
fn guard(
    live: &Live,
    current: &Config,
    desired: &Config,
    cx: &DiffContext<'_>,
    diff: &mut Diff,
) -> Result<(), Failure> {
    let defaults = defaults_for(live, current);
    let before = World {
        config: current,
        defaults: &defaults,
    };
    let after = World {
        config: desired,
        defaults: &defaults,
    };
    let evidence = guards::Evidence {
        files: &live.key_files,
        answers: &live.answers,
        exists: &live.exists,
    };
    let mut verdict = guards::check_logins(&before, &after, &live.accounts, &evidence);
    let new_ports: BTreeSet<u16> = ports_of(desired)
        .difference(&current_ports(live, current))
        .copied()
        .collect();
    for port in &new_ports {
        if live.firewall.get(port) == Some(&Some(false)) {
            verdict.fired.push(guards::Fired {
                guard: guards::PORT_FIREWALL,
                message: format!(
                    "sshd would listen on port {port}, but ufw is active and does not allow {port}/tcp: new SSH connections would be dropped. Allow it first (`ufw allow {port}/tcp`, or a rule in the playbook's ufw section), then move sshd"
                ),
            });
        }
    }
    diff.warnings
        .extend(verdict.warnings.into_iter().map(warning));
    let (overridden, refused): (Vec<_>, Vec<_>) = verdict
        .fired
        .into_iter()
        .partition(|f| cx.overridden(f.guard));
    for f in &overridden {
        diff.warnings.push(warning(format!(
            "lockout guard {} overridden by --allow {}: {}",
            f.guard, f.guard, f.message
        )));
    }
    let Some(first) = refused.first() else {
        return Ok(());
    };
    let mut message = first.message.clone();
    for other in &refused[1..] {
        message.push_str(&format!(
            "\nalso refused by {}: {} (override with --allow {})",
            other.guard, other.message, other.guard
        ));
    }
    Err(Failure::Refused(Refusal {
        resource: Sshd::NAME.into(),
        guard: first.guard.into(),
        message,
    }))
}

/// What the diff decided, for the one change it makes.
struct Planned<'a> {
    /// How many directives the playbook sets.
    directives: usize,
    built: &'a Built,
    /// The configuration after the edits, and before them.
    desired: &'a Config,
    current: &'a Config,
    /// Files to write: path, content before (`None`: new), content after.
    writes: Vec<(PathBuf, Option<String>, String)>,
    details: Vec<Detail>,
}

/// A change's steps and what its rollback runs once the files are restored.
#[derive(Default)]
struct Steps {
    steps: Vec<Step>,
    on_rollback: Vec<Command>,
}

impl Steps {
    /// A command that runs now and again on rollback (onto the restored files).
    fn both(&mut self, command: Command) {
        self.steps.push(Step::Run(command.clone()));
        self.on_rollback.push(command);
    }

    /// A reload that runs now and again on rollback.
    fn reload(&mut self, service: &str, command: Command) {
        self.steps.push(Step::Reload {
            service: service.into(),
            command: command.clone(),
        });
        self.on_rollback.push(command);
    }
}

const ROOT_DIR: Attrs = Attrs::root(0o755);

fn change(planned: Planned<'_>, live: &Live, cx: &DiffContext<'_>) -> Change {
    let sshd = live
        .sshd
        .clone()
        .unwrap_or_else(|| PathBuf::from(probe::SSHD_PATH))
        .display()
        .to_string();
    let mut out = Steps::default();
    let check = Command::new([sshd.as_str(), "-t"]).timeout(probe::SSHD_TIMEOUT);
    write_steps(&mut out, &planned, live, cx, check.clone());
    let activate = Activate {
        live,
        sshd: &sshd,
        desired: planned.desired,
        current: planned.current,
    };
    match live.activation.clone().unwrap_or(Activation::Offline) {
        Activation::Offline => {}
        Activation::Systemd {
            unit,
            socket,
            active,
        } => activate.systemd(&mut out, &unit, socket.as_ref(), active),
        Activation::Daemon { pidfile, running } => activate.daemon(&mut out, &pidfile, running),
    }
    Change {
        resource: Sshd::NAME.into(),
        target: planned.built.target.display().to_string(),
        reason: reason(&planned, live),
        details: planned.details,
        steps: out.steps,
        on_rollback: out.on_rollback,
        // A rollback reloads sshd only onto a configuration sshd itself accepts: a SIGHUP
        // onto one it rejects makes the daemon exit.
        rollback_checks: vec![check],
    }
}

/// The package when sshd is missing, the files, sshd's runtime directory, and `sshd -t`.
fn write_steps(
    out: &mut Steps,
    planned: &Planned<'_>,
    live: &Live,
    cx: &DiffContext<'_>,
    check: Command,
) {
    let installed = live.sshd.is_some();
    if !installed {
        out.steps
            .push(Step::Run(crate::steps::apt_install(&["openssh-server"])));
    }
    if let Mode::DropIn(dir) = &planned.built.mode {
        if installed && !live.stats.contains_key(dir) {
            out.steps.push(Step::CreateDir {
                path: dir.clone(),
                attrs: ROOT_DIR,
            });
        }
    }
    let mut writes = planned.writes.clone();
    // Harden's own file last: edits elsewhere first, as they only ever comment lines out.
    writes.sort_by_key(|(path, _, _)| *path == planned.built.target);
    let private = Attrs::root(0o600);
    for (path, before, content) in writes {
        let attrs = attrs_for(&path, live, cx, private);
        out.steps.push(Step::WriteFile {
            path,
            content,
            attrs,
            before,
        });
    }
    if !installed || live.privsep_missing {
        // sshd's own runtime directory, which `sshd -t` needs: made by the executor, never
        // by the planner, and not taken away by a rollback (a running sshd needs it for
        // every new connection, and creates it itself when it starts).
        out.steps.push(Step::Run(
            Command::new(["mkdir", "-p", "-m", "0755", probe::PRIVSEP_DIR]).timeout(10),
        ));
    }
    out.steps.push(Step::Validate(check));
}

/// How the running sshd takes up the new configuration.
struct Activate<'a> {
    live: &'a Live,
    /// The sshd binary.
    sshd: &'a str,
    desired: &'a Config,
    current: &'a Config,
}

impl Activate<'_> {
    /// Ports sshd listens on after the change, and before it.
    fn ports(&self) -> (Vec<u16>, Vec<u16>) {
        let new = ports_of(self.desired).into_iter().collect();
        let old = current_ports(self.live, self.current).into_iter().collect();
        (new, old)
    }

    fn listen_changed(&self) -> bool {
        let addresses = |c: &Config| {
            c.global("listenaddress")
                .iter()
                .map(|l| l.args.clone())
                .collect::<Vec<_>>()
        };
        ports_of(self.desired) != ports_of(self.current)
            || addresses(self.desired) != addresses(self.current)
    }

    /// Under systemd: a socket-activated sshd gets its new ports through the socket, a
    /// running service a reload that is then checked.
    fn systemd(
        &self,
        out: &mut Steps,
        unit: &str,
        socket: Option<&SocketActivation>,
        active: bool,
    ) {
        let (ports, old_ports) = self.ports();
        if let (Some(socket), true) = (socket, self.listen_changed()) {
            self.socket_ports(out, unit, socket, &ports);
        }
        let service = format!("{unit}.service");
        let reload = Command::new(["systemctl", "try-reload-or-restart", &service]).timeout(60);
        if socket.is_some() {
            // Started on demand: reload it only if it runs; the socket owns the ports.
            out.reload(unit, reload);
        } else if active {
            out.steps.push(Step::Reload {
                service: unit.into(),
                command: reload,
            });
            let alive = format!("systemctl is-active --quiet {service}");
            out.steps
                .push(Step::Validate(running_check(&alive, &ports, self.live)));
            // A rollback brings sshd back even if the new configuration made it exit.
            out.on_rollback
                .push(Command::new(["systemctl", "reload-or-restart", &service]).timeout(60));
            out.on_rollback
                .push(running_check(&alive, &old_ports, self.live));
        }
    }

    /// New listening ports for a socket-activated sshd: the socket drop-in (unless
    /// openssh's generator derives it from sshd_config), then the socket restarted.
    fn socket_ports(&self, out: &mut Steps, unit: &str, socket: &SocketActivation, ports: &[u16]) {
        if !socket.generator {
            let path = probe::socket_drop_in(unit);
            if let (Some(dir), false) = (path.parent(), socket.drop_in_dir) {
                out.steps.push(Step::CreateDir {
                    path: dir.to_path_buf(),
                    attrs: ROOT_DIR,
                });
            }
            let text = socket_drop_in_text(self.desired, ports);
            if socket.drop_in.as_deref() != Some(text.as_str()) {
                out.steps.push(Step::WriteFile {
                    path,
                    content: text,
                    attrs: Attrs {
                        mode: 0o644,
                        ..ROOT_DIR
                    },
                    before: socket.drop_in.clone(),
                });
            }
        }
        // systemd refuses to restart a socket whose service runs ("Socket service
        // ssh.service already active, refusing"): the listener goes first (sessions
        // survive: the unit kills only its main process), and the socket starts it again
        // on the next connection, on the new port.
        let systemctl = |args: &[&str]| {
            let mut argv = vec!["systemctl"];
            argv.extend(args);
            Command::new(argv).timeout(probe::SSHD_TIMEOUT)
        };
        out.both(systemctl(&["daemon-reload"]));
        out.both(systemctl(&["stop", &format!("{unit}.service")]));
        out.both(systemctl(&["restart", &format!("{unit}.socket")]));
    }

    /// Without systemd: SIGHUP through the pidfile (or a start when it is not running),
    /// then a check that it runs and listens.
    fn daemon(&self, out: &mut Steps, pidfile: &Path, running: bool) {
        let pid = pidfile.display().to_string();
        let sshd = self.sshd;
        if running {
            let (ports, old_ports) = self.ports();
            let hup = format!("pkill -HUP -F {pid} -x sshd || exec {sshd}");
            out.reload("sshd", Command::new(["sh", "-c", hup.as_str()]).timeout(60));
            // The new configuration may name another pidfile.
            let pid_after = self
                .desired
                .global("pidfile")
                .first()
                .and_then(|l| l.args.first().cloned())
                .unwrap_or_else(|| pid.clone());
            let alive_after = format!("pkill -0 -F {pid_after} -x sshd");
            out.steps.push(Step::Validate(running_check(
                &alive_after,
                &ports,
                self.live,
            )));
            let alive = format!("pkill -0 -F {pid} -x sshd");
            // After a rollback, wait until sshd serves the restored configuration.
            out.on_rollback
                .push(running_check(&alive, &old_ports, self.live));
        } else if self.live.sshd.is_none() {
            let hup = format!(
                "if pkill -0 -F {pid} -x sshd 2>/dev/null; then pkill -HUP -F {pid} -x sshd; fi"
            );
            out.reload("sshd", Command::new(["sh", "-c", hup.as_str()]).timeout(60));
        }
    }
}

/// The socket drop-in for `ports`: one `ListenStream` per address (and port).
fn socket_drop_in_text(desired: &Config, ports: &[u16]) -> String {
    let mut text = String::from("# Managed by harden: sshd's listening ports, from the playbook's sshd section.\n[Socket]\nListenStream=\n");
    let addresses = desired.global("listenaddress");
    for addr in addresses.iter().filter_map(|l| l.args.first()) {
        if listen_port(addr).is_some() {
            text.push_str(&format!("ListenStream={addr}\n"));
        } else {
            for p in ports {
                text.push_str(&format!("ListenStream={addr}:{p}\n"));
            }
        }
    }
    if addresses.is_empty() {
        for p in ports {
            text.push_str(&format!("ListenStream={p}\n"));
        }
    }
    text
}

fn reason(planned: &Planned<'_>, live: &Live) -> String {
    let target = planned.built.target.display();
    let changed = planned
        .details
        .iter()
        .filter(|d| d.desired.is_some())
        .count();
    if live.sshd.is_none() {
        "openssh-server is not installed".to_owned()
    } else if changed > 0 {
        format!(
            "{changed} of {} directive(s) differ in the effective configuration",
            planned.directives
        )
    } else if live.snapshot.text(&planned.built.target).is_none() {
        format!("{target} does not exist yet (the values are already in effect)")
    } else {
        format!("{target} differs from the playbook (the values are already in effect)")
    }
}

/// A check that sshd runs and listens on every port, retried for up to five seconds (every
/// 20 ms: sshd usually listens again within milliseconds of its SIGHUP, and the apply waits).
fn running_check(alive: &str, ports: &[u16], live: &Live) -> Command {
    let mut test = alive.to_owned();
    if live.has_ss {
        for p in ports {
            test.push_str(&format!(" && ss -Hltn 'sport = :{p}' | grep -q ."));
        }
    }
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "i=0; while [ $i -lt 250 ]; do if {test}; then exit 0; fi; i=$((i+1)); sleep 0.02; done; echo 'sshd is not running, or not listening on port(s) {list}' >&2; exit 1"
    );
    Command::new(["sh".to_owned(), "-c".to_owned(), script]).timeout(30)
}

#[cfg(test)]
mod tests;
