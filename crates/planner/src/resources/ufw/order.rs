//! From (rules ufw holds, rules the playbook lists) to ufw commands, without I/O.
//!
//! Each address family is a list of units (one numbered ufw rule: a tuple, or the tuples of
//! one application rule). Desired rules are matched to units by [`Key`]. Order is kept only
//! where it matters: between two desired rules with different effects whose traffic may
//! overlap (a `deny 80/tcp from 10.0.0.0/8` listed before `allow 80/tcp`). Units in the wrong
//! order are moved (deleted and inserted again), as few as a greedy choice finds; missing
//! rules are appended, or inserted just before the first rule they must precede. The
//! commands are simulated on both lists as they are emitted, so the positions given to
//! `ufw insert` are the ones ufw will see, and the final lists feed the lockout guard.
//!
//! Commands for a rule that is anywhere-to-anywhere in both families are spelled once
//! (`ufw allow 443/tcp`) when one command does both; positional inserts are spelled per
//! family (`from 0.0.0.0/0 to 0.0.0.0/0`, `from ::/0 to ::/0`), which ufw stores as exactly
//! the same tuples, so each list gets its own position.

use std::collections::BTreeSet;

use super::rule::{Effect, Family, Key, Ports, Proto, Spec};

/// One numbered ufw rule in one family.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Semantic key; `None` when ufw's spelling could not be understood (never matched).
    pub key: Option<Key>,
    /// Action and logging.
    pub effect: Effect,
    /// The rule spelled for its family, without comment (for deletes).
    pub spec: Spec,
    /// Protocol and ports of each tuple, for overlap checks.
    pub alts: Vec<(Proto, Ports)>,
    /// Number of tuples (more than one for some application profiles).
    pub tuples: usize,
    /// Owned by another tool (fail2ban...): never purged.
    pub foreign: bool,
    /// For people: the rule, and where it is (`/etc/ufw/user.rules:23`).
    pub text: String,
    /// File and line of its first tuple.
    pub source: String,
}

/// One desired rule in one family.
#[derive(Clone, Debug)]
pub struct Want {
    /// Index of the playbook rule.
    pub rule: usize,
    /// Semantic key.
    pub key: Key,
    /// Action and logging.
    pub effect: Effect,
    /// Spelled for this family, with the comment.
    pub spec: Spec,
    /// Spelled for both families, when the rule is anywhere to anywhere.
    pub both: Option<Spec>,
    /// Protocol and ports of each tuple ufw will create.
    pub alts: Vec<(Proto, Ports)>,
    /// Number of tuples ufw will create.
    pub tuples: usize,
}

/// The live units and the wants of one family.
#[derive(Clone, Debug)]
pub struct FamilyInput {
    /// The family.
    pub family: Family,
    /// Units in ufw's order.
    pub live: Vec<Unit>,
    /// Wants in playbook order (at most one per rule).
    pub wants: Vec<Want>,
}

/// A ufw command (arguments after `ufw`) and what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Arguments after `ufw`.
    pub args: Vec<String>,
}

/// What the playbook rule needs.
#[derive(Clone, Debug, Default)]
pub struct RuleOps {
    /// Commands, in order.
    pub ops: Vec<Op>,
    /// Why, for people.
    pub reasons: Vec<String>,
    /// What ufw holds now for it, per family (text, source).
    pub current: Vec<(String, String)>,
}

/// An unlisted unit to delete (or its twins, deleted by one command).
#[derive(Clone, Debug)]
pub struct Purge {
    /// The command.
    pub op: Op,
    /// What is deleted, for people.
    pub text: String,
    /// Where it is.
    pub source: String,
}

/// A unit as it ends up, for the lockout guard.
#[derive(Clone, Debug)]
pub struct Final {
    /// Its key, when known.
    pub key: Option<Key>,
    /// Action and logging.
    pub effect: Effect,
    /// Protocol and ports of its tuples.
    pub alts: Vec<(Proto, Ports)>,
    /// The playbook rule it is, if any.
    pub rule: Option<usize>,
    /// For a rule the playbook does not list (and no other tool owns): how to show it.
    pub unlisted: Option<String>,
}

/// Pairs (playbook rule, unlisted rule) where an unlisted rule ufw keeps comes first and
/// overlaps the playbook's rule with another effect: there, the unlisted one wins.
pub fn shadowed(list: &[Final]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, unit) in list.iter().enumerate() {
        let (Some(rule), Some(key)) = (unit.rule, &unit.key) else {
            continue;
        };
        for earlier in &list[..i] {
            let (Some(text), Some(ekey)) = (&earlier.unlisted, &earlier.key) else {
                continue;
            };
            if earlier.effect != unit.effect
                && overlap(ekey, &earlier.alts, key, &unit.alts)
                && !out.iter().any(|(r, t)| *r == rule && t == text)
            {
                out.push((rule, text.clone()));
            }
        }
    }
    out
}

/// Everything the rule lists need.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Per playbook rule, in order.
    pub rules: Vec<RuleOps>,
    /// Deletes of unlisted rules (`purge: true`).
    pub purges: Vec<Purge>,
    /// Unlisted rules left in place (`purge: false`).
    pub kept: Vec<String>,
    /// Rules of other tools, never touched.
    pub foreign: Vec<String>,
    /// The lists after every command, per family.
    pub finals: Vec<(Family, Vec<Final>)>,
    /// The lists before any command, per family.
    pub initial: Vec<(Family, Vec<Final>)>,
}

/// True when two rules of one family may match the same packet.
pub fn overlap(a: &Key, a_alts: &[(Proto, Ports)], b: &Key, b_alts: &[(Proto, Ports)]) -> bool {
    let iface = |x: &Option<String>, y: &Option<String>| x.is_none() || y.is_none() || x == y;
    a.family == b.family
        && a.forward == b.forward
        && a.direction == b.direction
        && iface(&a.iface_in, &b.iface_in)
        && iface(&a.iface_out, &b.iface_out)
        && a.src.overlaps(&b.src)
        && a.dst.overlaps(&b.dst)
        && (a.sapp.is_some() || b.sapp.is_some() || a.sport.overlaps(&b.sport))
        && a_alts.iter().any(|(pa, xa)| {
            b_alts
                .iter()
                .any(|(pb, xb)| pa.overlaps(*pb) && xa.overlaps(xb))
        })
}

#[derive(Clone, Debug)]
struct Slot {
    /// The want this slot serves and is placed for; `None` for unlisted units and for
    /// matched units about to move (they constrain nothing).
    want: Option<usize>,
    /// The live unit it is, if any.
    live: Option<usize>,
    tuples: usize,
    key: Option<Key>,
    effect: Effect,
    alts: Vec<(Proto, Ports)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Nothing,
    Update,
    Append,
    Insert(usize),
}

struct Fam<'a> {
    input: &'a FamilyInput,
    /// want index -> live unit index
    matched: Vec<Option<usize>>,
    conflict: Vec<Vec<bool>>,
    moved: BTreeSet<usize>,
    slots: Vec<Slot>,
}

impl<'a> Fam<'a> {
    fn new(input: &'a FamilyInput) -> Fam<'a> {
        let mut used = vec![false; input.live.len()];
        let matched = input
            .wants
            .iter()
            .map(|w| {
                let found = input
                    .live
                    .iter()
                    .enumerate()
                    .position(|(i, u)| !used[i] && u.key.as_ref() == Some(&w.key));
                if let Some(i) = found {
                    used[i] = true;
                }
                found
            })
            .collect();
        let conflict = input
            .wants
            .iter()
            .enumerate()
            .map(|(i, a)| {
                input
                    .wants
                    .iter()
                    .enumerate()
                    .map(|(j, b)| {
                        i != j && a.effect != b.effect && overlap(&a.key, &a.alts, &b.key, &b.alts)
                    })
                    .collect()
            })
            .collect();
        Fam {
            input,
            matched,
            conflict,
            moved: BTreeSet::new(),
            slots: Vec::new(),
        }
    }

    fn want_of_live(&self, live: usize) -> Option<usize> {
        self.matched.iter().position(|m| *m == Some(live))
    }

    /// Picks matched wants to move until no two conflicting ones are in the wrong order.
    fn choose_moves(&mut self) {
        loop {
            let pos = |w: usize| self.matched[w];
            let mut count = vec![0usize; self.matched.len()];
            for i in 0..self.matched.len() {
                for j in i + 1..self.matched.len() {
                    if self.moved.contains(&i) || self.moved.contains(&j) || !self.conflict[i][j] {
                        continue;
                    }
                    if let (Some(pi), Some(pj)) = (pos(i), pos(j)) {
                        if pi > pj {
                            count[i] += 1;
                            count[j] += 1;
                        }
                    }
                }
            }
            let worst = (0..count.len()).filter(|w| count[*w] > 0).max_by_key(|w| {
                (
                    count[*w],
                    !self.input.wants[*w].effect.action.admits(),
                    std::cmp::Reverse(*w),
                )
            });
            match worst {
                Some(w) => {
                    self.moved.insert(w);
                }
                None => return,
            }
        }
    }

    fn reset_slots(&mut self) {
        self.slots = self
            .input
            .live
            .iter()
            .enumerate()
            .map(|(i, u)| Slot {
                want: self.want_of_live(i).filter(|w| !self.moved.contains(w)),
                live: Some(i),
                tuples: u.tuples,
                key: u.key.clone(),
                effect: u.effect,
                alts: u.alts.clone(),
            })
            .collect();
    }

    fn want_index(&self, rule: usize) -> Option<usize> {
        self.input.wants.iter().position(|w| w.rule == rule)
    }

    /// What rule `w` needs now: an old slot to delete first (a move), then its place.
    /// `Err(v)`: `w` cannot be placed unless want `v` moves too.
    fn place(&self, w: usize) -> Result<(Option<usize>, Place), usize> {
        let want = &self.input.wants[w];
        if let Some(live) = self.matched[w] {
            if !self.moved.contains(&w) {
                let slot = self.slots.iter().find(|s| s.live == Some(live));
                let right = slot.is_some_and(|s| s.effect == want.effect);
                return Ok((None, if right { Place::Nothing } else { Place::Update }));
            }
        }
        let old =
            self.matched[w].and_then(|live| self.slots.iter().position(|s| s.live == Some(live)));
        let after_delete = |i: usize| match old {
            Some(o) if i > o => i - 1,
            _ => i,
        };
        let mut lower = None;
        let mut upper: Option<(usize, usize)> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(e) = slot.want else { continue };
            if !self.conflict[e][w] {
                continue;
            }
            let i = after_delete(i);
            if e < w {
                lower = Some(lower.map_or(i, |l: usize| l.max(i)));
            } else if upper.is_none_or(|(u, _)| i < u) {
                upper = Some((i, e));
            }
        }
        match upper {
            None => Ok((old, Place::Append)),
            Some((u, e)) => {
                if lower.is_some_and(|l| l >= u) {
                    Err(e)
                } else {
                    Ok((old, Place::Insert(u)))
                }
            }
        }
    }

    fn tuples_before(&self, index: usize) -> usize {
        self.slots[..index].iter().map(|s| s.tuples).sum()
    }

    fn apply(&mut self, w: usize, old: Option<usize>, place: Place) {
        if let Some(o) = old {
            self.slots.remove(o);
        }
        let want = &self.input.wants[w];
        let slot = Slot {
            want: Some(w),
            live: None,
            tuples: want.tuples,
            key: Some(want.key.clone()),
            effect: want.effect,
            alts: want.alts.clone(),
        };
        match place {
            Place::Nothing => {}
            Place::Update => {
                if let Some(live) = self.matched[w] {
                    if let Some(s) = self.slots.iter_mut().find(|s| s.live == Some(live)) {
                        s.effect = want.effect;
                    }
                }
            }
            Place::Append => self.slots.push(slot),
            Place::Insert(i) => self.slots.insert(i, slot),
        }
    }
}

impl Final {
    /// A rule ufw holds now, taken as it stands.
    pub fn of_live(unit: &Unit) -> Final {
        Final {
            key: unit.key.clone(),
            effect: unit.effect,
            alts: unit.alts.clone(),
            rule: None,
            unlisted: None,
        }
    }
}

fn finals(fam: &Fam<'_>) -> Vec<Final> {
    fam.slots
        .iter()
        .map(|s| {
            let live = s.live.map(|l| &fam.input.live[l]);
            Final {
                key: s.key.clone(),
                effect: s.effect,
                alts: s.alts.clone(),
                rule: s.want.map(|w| fam.input.wants[w].rule),
                unlisted: live
                    .filter(|u| s.want.is_none() && !u.foreign)
                    .map(|u| u.text.clone()),
            }
        })
        .collect()
}

fn args(prefix: &[&str], spec: &Spec) -> Vec<String> {
    prefix
        .iter()
        .map(|s| (*s).to_owned())
        .chain(spec.args())
        .collect()
}

/// Plans the commands for `rules` playbook rules over the families' lists.
pub fn plan(families: &[FamilyInput], rules: usize, purge: bool) -> Outcome {
    let mut fams: Vec<Fam<'_>> = families.iter().map(Fam::new).collect();
    for fam in &mut fams {
        fam.choose_moves();
    }
    let mut outcome = Outcome::default();
    // Simulate; a rule that cannot be placed without moving another restarts with that one
    // moved too. Each restart moves one more rule, so this ends.
    'simulate: loop {
        for fam in &mut fams {
            fam.reset_slots();
        }
        outcome.initial = fams.iter().map(|f| (f.input.family, finals(f))).collect();
        outcome.rules = vec![RuleOps::default(); rules];
        for (rule, rule_ops) in outcome.rules.iter_mut().enumerate() {
            let mut steps = Vec::new();
            let mut blocked = None;
            for (fi, fam) in fams.iter().enumerate() {
                let Some(w) = fam.want_index(rule) else {
                    continue;
                };
                match fam.place(w) {
                    Ok((old, place)) => steps.push((fi, w, old, place)),
                    Err(v) => blocked = Some((fi, v)),
                }
            }
            if let Some((fi, v)) = blocked {
                fams[fi].moved.insert(v);
                continue 'simulate;
            }
            describe_rule(&fams, &steps, rule_ops);
            emit(&mut fams, &steps, rule_ops);
        }
        break;
    }
    for fam in &fams {
        for (i, unit) in fam.input.live.iter().enumerate() {
            if fam.want_of_live(i).is_some() {
                continue;
            }
            if unit.foreign {
                outcome.foreign.push(unit.text.clone());
            } else if !purge {
                outcome.kept.push(unit.text.clone());
            }
        }
    }
    if purge {
        purge_unlisted(&mut fams, &mut outcome);
    }
    outcome.finals = fams.iter().map(|f| (f.input.family, finals(f))).collect();
    outcome
}

fn describe_rule(
    fams: &[Fam<'_>],
    steps: &[(usize, usize, Option<usize>, Place)],
    out: &mut RuleOps,
) {
    let many = fams.len() > 1;
    for &(fi, w, old, place) in steps {
        let fam = &fams[fi];
        let suffix = if many && fam.input.family == Family::V6 {
            " (v6)"
        } else {
            ""
        };
        let live = fam.matched[w].map(|l| &fam.input.live[l]);
        if let Some(unit) = live {
            out.current.push((unit.text.clone(), unit.source.clone()));
        }
        let reason = match (place, old) {
            (Place::Nothing, _) => continue,
            (Place::Update, _) => format!(
                "action differs{suffix}: ufw has {}, the playbook says {}",
                live.map_or_else(String::new, |u| u.effect.to_string()),
                fam.input.wants[w].effect
            ),
            (_, Some(_)) => format!("out of order{suffix}: a conflicting rule listed before it in the playbook comes after it in ufw"),
            (_, None) => match live {
                Some(_) => format!("out of order{suffix}"),
                None => format!("missing{suffix}"),
            },
        };
        out.reasons.push(reason);
    }
    if out.reasons.len() > 1 && out.reasons.iter().all(|r| r.starts_with("missing")) {
        out.reasons = vec!["missing".into()];
    }
}

fn emit(fams: &mut [Fam<'_>], steps: &[(usize, usize, Option<usize>, Place)], out: &mut RuleOps) {
    let active: Vec<_> = steps.iter().filter(|s| s.3 != Place::Nothing).collect();
    if active.is_empty() {
        return;
    }
    let both = steps
        .first()
        .and_then(|&(fi, w, _, _)| fams[fi].input.wants[w].both.clone());
    let present = fams.len();
    let all_covered = steps.len() == present;
    if let (Some(both), true) = (both, all_covered) {
        let no_moves = steps.iter().all(|s| s.2.is_none());
        let simple = steps
            .iter()
            .all(|s| matches!(s.3, Place::Nothing | Place::Update | Place::Append));
        let all_top = steps.iter().all(|s| s.3 == Place::Insert(0));
        let single_insert = present == 1 && matches!(steps[0].3, Place::Insert(_));
        if no_moves && (simple || all_top || single_insert) {
            let prefix: Vec<String> = match steps[0].3 {
                Place::Insert(0) => vec!["prepend".into()],
                Place::Insert(i) => vec![
                    "insert".into(),
                    (fams[steps[0].0].tuples_before(i) + 1).to_string(),
                ],
                _ => Vec::new(),
            };
            out.ops.push(Op {
                args: prefix.into_iter().chain(both.args()).collect(),
            });
            for &(fi, w, old, place) in steps {
                fams[fi].apply(w, old, place);
            }
            return;
        }
    }
    for &(fi, w, old, place) in steps {
        if let Some(o) = old {
            let live = fams[fi].slots[o]
                .live
                .map(|l| fams[fi].input.live[l].spec.clone());
            if let Some(spec) = live {
                out.ops.push(Op {
                    args: args(&["delete"], &spec),
                });
            }
        }
        // Position numbers are counted after the delete above, in tuples: ufw numbers each
        // tuple of an application rule.
        let v4_tuples = fams
            .iter()
            .find(|f| f.input.family == Family::V4)
            .map_or(0, |f| f.slots.iter().map(|s| s.tuples).sum::<usize>());
        let fam = &mut fams[fi];
        let spec = fam.input.wants[w].spec.clone();
        let mut after_delete = fam.slots.clone();
        if let Some(o) = old {
            after_delete.remove(o);
        }
        let before = |i: usize| after_delete[..i].iter().map(|s| s.tuples).sum::<usize>();
        match place {
            Place::Nothing => {}
            Place::Append => out.ops.push(Op { args: spec.args() }),
            // In place: spelled as ufw holds it (ufw replaces the rule that matches its
            // fields), with the playbook's action and comment.
            Place::Update => {
                let live = fam.matched[w].map(|l| &fam.input.live[l].spec);
                let spec = live.map_or(spec.clone(), |l| Spec {
                    effect: spec.effect,
                    comment: spec.comment.clone(),
                    ..l.clone()
                });
                out.ops.push(Op { args: spec.args() })
            }
            Place::Insert(0) => out.ops.push(Op {
                args: args(&["prepend"], &spec),
            }),
            Place::Insert(i) => {
                let number = match fam.input.family {
                    Family::V4 => before(i) + 1,
                    // ufw numbers IPv6 rules after all IPv4 ones.
                    Family::V6 => v4_tuples + before(i) + 1,
                };
                out.ops.push(Op {
                    args: args(&["insert", &number.to_string()], &spec),
                });
            }
        }
        fam.apply(w, old, place);
    }
}

fn purge_unlisted(fams: &mut [Fam<'_>], outcome: &mut Outcome) {
    let mut doomed: Vec<(usize, usize)> = Vec::new();
    for (fi, fam) in fams.iter().enumerate() {
        for (i, unit) in fam.input.live.iter().enumerate() {
            if fam.want_of_live(i).is_none() && !unit.foreign {
                doomed.push((fi, i));
            }
        }
    }
    let mut done = vec![false; doomed.len()];
    for a in 0..doomed.len() {
        if done[a] {
            continue;
        }
        done[a] = true;
        let (fi, i) = doomed[a];
        let unit = &fams[fi].input.live[i];
        let family = fams[fi].input.family;
        // Its twin in the other family, deleted by the same command when spelled `any`.
        let twin = unit.spec.for_both(family).and_then(|both| {
            (a + 1..doomed.len()).find(|&b| {
                let (fj, j) = doomed[b];
                let other = &fams[fj].input.live[j];
                !done[b]
                    && fj != fi
                    && other.spec.for_both(fams[fj].input.family).as_ref() == Some(&both)
            })
        });
        let (op, text, source) = match (twin, unit.spec.for_both(family)) {
            (Some(b), Some(both)) => {
                done[b] = true;
                let (fj, j) = doomed[b];
                let other = &fams[fj].input.live[j];
                (
                    args(&["delete"], &both),
                    format!("{} and its IPv6 twin", unit.text),
                    format!("{}, {}", unit.source, other.source),
                )
            }
            _ => (
                args(&["delete"], &unit.spec),
                unit.text.clone(),
                unit.source.clone(),
            ),
        };
        outcome.purges.push(Purge {
            op: Op { args: op },
            text,
            source,
        });
    }
    for fam in fams.iter_mut() {
        fam.slots.retain(|s| {
            s.want.is_some()
                || s.live.is_some_and(|l| fam.input.live[l].foreign)
                || s.live.is_none()
        });
    }
}

/// True when, in `list`, a new TCP connection to `port` is admitted for at least some
/// source: an allow or limit rule covering the port comes before any deny or reject
/// covering it for every source.
pub fn admits_port(list: &[Final], port: u16) -> bool {
    for unit in list {
        let Some(key) = &unit.key else { continue };
        if key.forward || key.direction != super::rule::Direction::In {
            continue;
        }
        let covers = unit
            .alts
            .iter()
            .any(|(p, ports)| matches!(p, Proto::Tcp | Proto::Any) && ports.contains(port));
        if !covers || key.sport != Ports::Any || key.sapp.is_some() {
            continue;
        }
        if unit.effect.action.admits() {
            return true;
        }
        if key.src.is_anywhere() && key.iface_in.is_none() && key.dst.is_anywhere() {
            return false;
        }
    }
    false
}
