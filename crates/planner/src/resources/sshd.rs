//! `sshd`: skeleton, replaced by the resource's implementation. The two port functions at the
//! bottom are used by other resources (firewall and fail2ban guards) and keep their signatures.

use harden_plan::Command;
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::diagnostic::Invalid;
use crate::located::Located;
use crate::resource::{Context, Diff, Failure, Resource};
use crate::resources::Playbook;

/// The `sshd:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sshd {
    /// Directives by their sshd names.
    #[serde(default)]
    pub config: BTreeMap<String, Located<Value>>,
}

/// A directive's value as written in YAML.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `yes`/`no`.
    Bool(bool),
    /// A number.
    Int(i64),
    /// Text, written as is.
    Text(String),
    /// A list, joined with commas (algorithms) or repeated (Port, ListenAddress).
    List(Vec<String>),
}

impl Resource for Sshd {
    type Live = ();
    const NAME: &'static str = "sshd";

    fn merge(&mut self, later: Self) {
        self.config.extend(later.config);
    }

    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }

    async fn probe(&self, _cx: &Context<'_>) -> Result<Self::Live, Failure> {
        Ok(())
    }

    fn diff(&self, _live: &Self::Live, _cx: &Context<'_>) -> Result<Diff, Failure> {
        Ok(Diff::default())
    }
}

/// The ports the playbook's `sshd.config.Port` asks for, if it sets one.
pub(crate) fn desired_ports(playbook: &Playbook) -> Option<Vec<u16>> {
    let value = &playbook
        .sshd
        .as_ref()?
        .config
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("port"))?
        .1
        .value;
    let ports: Vec<u16> = match value {
        Value::Int(n) => u16::try_from(*n).ok().into_iter().collect(),
        Value::Text(s) => s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Value::List(items) => items.iter().filter_map(|p| p.parse().ok()).collect(),
        Value::Bool(_) => Vec::new(),
    };
    Some(ports)
}

/// The ports the installed sshd listens on now, as `sshd -T` reports them; `[22]` when sshd
/// is not installed or cannot tell.
pub(crate) async fn listen_ports(cx: &Context<'_>) -> Vec<u16> {
    if cx.host.which("sshd").is_none() {
        return vec![22];
    }
    let Ok(out) = cx.host.run(&Command::new(["sshd", "-T"]).timeout(10)).await else {
        return vec![22];
    };
    let ports: Vec<u16> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("port "))
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    if ports.is_empty() {
        vec![22]
    } else {
        ports
    }
}
