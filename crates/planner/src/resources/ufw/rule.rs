//! ufw rules in the three forms harden meets them: as the playbook writes them ([`Rule`]),
//! as ufw persists them (`### tuple ###` lines of `user.rules` / `user6.rules`, [`Tuple`]),
//! and as the semantic [`Key`] both reduce to, which is what is compared. Comments, the
//! v4/v6 twins of one rule and spelling (`192.0.2.2/32` or `192.0.2.2`, `443,80` or `80,443`)
//! never make a difference; the address family, direction, interface, protocol, ports or
//! application, and source and destination do.
//!
//! [`Spec`] turns either form back into the arguments of a `ufw` command.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use serde::{Deserialize, Deserializer};

use crate::located::{At, Located};

/// An address family: ufw keeps one rule list for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`user.rules`).
    V4,
    /// IPv6 (`user6.rules`).
    V6,
}

impl Family {
    /// ufw's spelling of "anywhere" in this family.
    pub fn anywhere(self) -> &'static str {
        match self {
            Family::V4 => "0.0.0.0/0",
            Family::V6 => "::/0",
        }
    }
}

/// What a rule does with a matching packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Accept.
    Allow,
    /// Drop silently.
    Deny,
    /// Refuse (ICMP unreachable or TCP reset).
    Reject,
    /// Accept, but deny an address opening 6 or more connections in 30 s.
    Limit,
}

impl Action {
    /// ufw's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Reject => "reject",
            Action::Limit => "limit",
        }
    }

    /// True for actions that let traffic in.
    pub fn admits(self) -> bool {
        matches!(self, Action::Allow | Action::Limit)
    }
}

/// Per-rule logging (`ufw allow log ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogType {
    /// No per-rule logging.
    #[default]
    Off,
    /// `log`: new connections.
    Log,
    /// `log-all`: every packet.
    All,
}

impl LogType {
    fn word(self) -> Option<&'static str> {
        match self {
            LogType::Off => None,
            LogType::Log => Some("log"),
            LogType::All => Some("log-all"),
        }
    }
}

/// An action with its logging: what distinguishes two rules that match the same traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Effect {
    /// The action.
    pub action: Action,
    /// Its logging.
    pub log: LogType,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.action.as_str())?;
        if let Some(word) = self.log.word() {
            write!(f, " {word}")?;
        }
        Ok(())
    }
}

/// Traffic direction of a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Incoming (the default).
    #[default]
    In,
    /// Outgoing.
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A protocol ufw accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// Any protocol.
    Any,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Another protocol without ports (`esp`, `ah`, `gre`, `igmp`, `ipv6`, `vrrp`).
    Portless(&'static str),
}

const PORTLESS: [&str; 6] = ["ipv6", "esp", "ah", "igmp", "gre", "vrrp"];

impl Proto {
    /// Parses ufw's protocol names.
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "any" => Some(Proto::Any),
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            other => PORTLESS
                .iter()
                .find(|p| **p == other)
                .map(|p| Proto::Portless(p)),
        }
    }

    /// ufw's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Any => "any",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Portless(p) => p,
        }
    }

    /// True when both may match the same packet.
    pub fn overlaps(self, other: Proto) -> bool {
        self == Proto::Any || other == Proto::Any || self == other
    }

    /// Protocols ufw only knows for IPv4.
    pub fn v4_only(self) -> bool {
        matches!(self, Proto::Portless("ipv6" | "igmp"))
    }
}

/// Ports: any, or a sorted list of single ports and ranges.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    /// Every port (or a protocol without ports).
    Any,
    /// Inclusive ranges, sorted; a single port is a range of one.
    List(Vec<(u16, u16)>),
}

impl Ports {
    /// Parses `22`, `80,443`, `6000:6007`, `any`.
    pub fn parse(s: &str) -> Result<Ports, String> {
        if s == "any" {
            return Ok(Ports::Any);
        }
        if s.matches([',', ':']).count() > 14 {
            return Err(format!(
                "too many ports in `{s}`: ufw takes at most 15 ports or range ends in one rule"
            ));
        }
        let mut list = Vec::new();
        for item in s.split(',') {
            let port = |p: &str| -> Result<u16, String> {
                match p.parse::<u32>() {
                    Ok(n @ 1..=65535) => Ok(n as u16),
                    Ok(n) => Err(format!("port {n} is out of range: ports are 1 to 65535")),
                    Err(_) => Err(format!("`{p}` is not a port number")),
                }
            };
            match item.split_once(':') {
                Some((a, b)) => {
                    let (a, b) = (port(a)?, port(b)?);
                    if a >= b {
                        return Err(format!(
                            "port range `{item}` must go from a lower to a higher port"
                        ));
                    }
                    list.push((a, b));
                }
                None => {
                    let p = port(item)?;
                    list.push((p, p));
                }
            }
        }
        list.sort_unstable();
        list.dedup();
        Ok(Ports::List(list))
    }

    /// True for a list or a range (ufw's "multiport", which needs tcp or udp).
    pub fn is_multi(&self) -> bool {
        matches!(self, Ports::List(l) if l.len() > 1 || l.iter().any(|(a, b)| a != b))
    }

    /// True when `port` is among these.
    pub fn contains(&self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::List(l) => l.iter().any(|(a, b)| (*a..=*b).contains(&port)),
        }
    }

    /// True when some port is in both.
    pub fn overlaps(&self, other: &Ports) -> bool {
        match (self, other) {
            (Ports::Any, _) | (_, Ports::Any) => true,
            (Ports::List(x), Ports::List(y)) => x
                .iter()
                .any(|(a, b)| y.iter().any(|(c, d)| a <= d && c <= b)),
        }
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::Any => f.write_str("any"),
            Ports::List(list) => {
                for (i, (a, b)) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if a == b {
                        write!(f, "{a}")?;
                    } else {
                        write!(f, "{a}:{b}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// An address or network, host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net(IpNet);

impl Net {
    /// Everything in `family`.
    pub fn anywhere(family: Family) -> Net {
        // The default networks are 0.0.0.0/0 and ::/0.
        Net(match family {
            Family::V4 => IpNet::V4(Ipv4Net::default()),
            Family::V6 => IpNet::V6(Ipv6Net::default()),
        })
    }

    /// Parses `192.0.2.1`, `192.0.2.0/24`, `2001:db8::/32`; a v4 netmask in dotted form is
    /// accepted too, as ufw accepts it.
    pub fn parse(s: &str) -> Result<Net, String> {
        let bad = || {
            format!("`{s}` is not an IPv4 or IPv6 address or network (such as 203.0.113.0/24 or 2001:db8::/32)")
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let net = match prefix {
            None => IpNet::from(addr),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                let max = if addr.is_ipv4() { 32 } else { 128 };
                p.parse::<u8>()
                    .ok()
                    .and_then(|n| IpNet::new(addr, n).ok())
                    .ok_or_else(|| format!("prefix /{p} of `{s}` is out of range (0 to {max})"))?
            }
            Some(p) => {
                let mask: Ipv4Addr = p.parse().map_err(|_| bad())?;
                IpNet::with_netmask(addr, IpAddr::V4(mask)).map_err(|_| bad())?
            }
        };
        Ok(Net(net.trunc()))
    }

    /// Its family.
    pub fn family(&self) -> Family {
        match self.0 {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_anywhere(&self) -> bool {
        self.0.prefix_len() == 0
    }

    /// True when `other` lies within this network.
    pub fn contains(&self, other: &Net) -> bool {
        self.0.contains(&other.0)
    }

    /// True when some address is in both.
    pub fn overlaps(&self, other: &Net) -> bool {
        self.contains(other) || other.contains(self)
    }
}

impl fmt::Display for Net {
    /// A single host without its prefix, as ufw writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// `from:` / `to:` in a playbook: `any` or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr(pub Option<Net>);

#[cfg(feature = "schema")]
crate::schema::literal!(Addr, {
    "description": "`any`, an IP address or a network (203.0.113.0/24, 2001:db8::/32).",
    "type": "string",
    "minLength": 1
});

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s.eq_ignore_ascii_case("any") {
            return Ok(Addr(None));
        }
        Net::parse(&s)
            .map(|n| Addr(Some(n)))
            .map_err(serde::de::Error::custom)
    }
}

/// What a playbook rule opens or closes: ports (with a protocol), or a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Numeric ports, or `any`.
    Ports {
        /// The ports.
        ports: Ports,
        /// Their protocol.
        proto: Proto,
    },
    /// An application profile (`OpenSSH`) or a service name from /etc/services (`ssh/tcp`),
    /// resolved when planning, as ufw resolves it.
    Name {
        /// As written.
        name: String,
        /// Protocol given after `/`.
        proto: Option<Proto>,
    },
}

impl Target {
    /// Parses `443/tcp`, `80,443/tcp`, `6000:6007/udp`, `53`, `any`, `any/esp`, `OpenSSH`, `ssh/tcp`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        let (head, proto) = match s.rsplit_once('/') {
            Some((head, p)) => {
                let proto = Proto::parse(p).ok_or_else(|| {
                    format!("unknown protocol `{p}` in `{s}`: expected tcp, udp, or one of {} (`any/esp`)", PORTLESS.join(", "))
                })?;
                (head, Some(proto))
            }
            None => (s, None),
        };
        if head.is_empty() {
            return Err(format!("`{s}`: expected a port (443/tcp), a range (6000:6007/tcp), a list (80,443/tcp), `any` or an application profile name"));
        }
        if head == "any" {
            return Ok(Target::Ports {
                ports: Ports::Any,
                proto: proto.unwrap_or(Proto::Any),
            });
        }
        if head.starts_with(|c: char| c.is_ascii_digit())
            && head
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b',' || b == b':')
        {
            let ports = Ports::parse(head)?;
            let proto = proto.unwrap_or(Proto::Any);
            if let Proto::Portless(p) = proto {
                return Err(format!("protocol {p} has no ports: write `any/{p}`"));
            }
            if ports.is_multi() && proto == Proto::Any {
                return Err(format!(
                    "a port list or range needs a protocol: write `{head}/tcp` or `{head}/udp`"
                ));
            }
            return Ok(Target::Ports { ports, proto });
        }
        if head.starts_with(|c: char| c.is_ascii_digit())
            && head.parse::<i64>().is_err()
            && head.contains([',', ':', '-'])
        {
            return Err(format!(
                "`{head}` is not a port, a range or a list of ports"
            ));
        }
        if !valid_name(head) {
            return Err(format!(
                "`{head}` is neither a port nor a valid application profile or service name (letters, digits, space, `_-.+`)"
            ));
        }
        Ok(Target::Name {
            name: head.to_owned(),
            proto,
        })
    }
}

/// ufw's `valid_profile_name`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name != "all"
        && name.parse::<i64>().is_err()
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || " _-.+".contains(c))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ports {
                ports,
                proto: Proto::Any,
            } => write!(f, "{ports}"),
            Target::Ports { ports, proto } => write!(f, "{ports}/{}", proto.as_str()),
            Target::Name { name, proto: None } => f.write_str(name),
            Target::Name {
                name,
                proto: Some(p),
            } => write!(f, "{name}/{}", p.as_str()),
        }
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(Target, {
    "description": "A port (443/tcp, 53), a range (6000:6007/tcp), a list (80,443/tcp), `any` (any/esp), an application profile (OpenSSH) or a service name (ssh/tcp).",
    "anyOf": [
        { "type": "string", "minLength": 1 },
        { "type": "integer", "minimum": 0, "maximum": 65535 }
    ]
});

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Target;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port (443/tcp), range (6000:6007/tcp), list (80,443/tcp), `any` or an application profile name")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Target, E> {
                Target::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Target, E> {
                Target::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Target, E> {
                Target::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An interface name as ufw accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Interface(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Interface, {
    "description": "An interface name: 1 to 15 of letters, digits and `_-.+,=%@` (no aliases such as eth0:1).",
    "type": "string",
    "pattern": "^[A-Za-z0-9_.+,=%@-]{1,15}$",
    "not": { "enum": [".", ".."] }
});

impl<'de> Deserialize<'de> for Interface {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        let ok = !s.is_empty()
            && s.len() <= 15
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.+,=%@".contains(c));
        if ok {
            Ok(Interface(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid interface name {s:?}: 1 to 15 characters among letters, digits and `_-.+,=%@` (no aliases such as eth0:1)"
            )))
        }
    }
}

/// A rule comment; ufw refuses `'` in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment(pub String);

#[cfg(feature = "schema")]
crate::schema::literal!(Comment, {
    "description": "A comment stored with the rule; ufw refuses `'` and line breaks in it.",
    "type": "string",
    "pattern": "^[^'\\n\\r]*$"
});

impl<'de> Deserialize<'de> for Comment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s.contains('\'') || s.contains(['\n', '\r']) {
            return Err(serde::de::Error::custom(
                "a ufw comment cannot contain `'` or a line break",
            ));
        }
        Ok(Comment(s))
    }
}

/// `log:` of a rule: `true`, `false` or `all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Log(pub LogType);

#[cfg(feature = "schema")]
crate::schema::literal!(Log, {
    "description": "true (log new connections), false, or `all` (log every packet).",
    "anyOf": [{ "type": "boolean" }, { "const": "all" }]
});

impl<'de> Deserialize<'de> for Log {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Log;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or `all`")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Log, E> {
                Ok(Log(if v { LogType::Log } else { LogType::Off }))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Log, E> {
                match v {
                    "all" => Ok(Log(LogType::All)),
                    _ => Err(E::custom(format!(
                        "invalid log value `{v}`: expected true, false or `all`"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One rule of the playbook: `{ allow: 443/tcp, from: 203.0.113.0/24, comment: web }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Action and logging.
    pub effect: Effect,
    /// Ports or name, where written.
    pub target: Located<Target>,
    /// `in` (default) or `out`.
    pub direction: Direction,
    /// Source; `None` is anywhere.
    pub from: Option<Net>,
    /// Destination; `None` is anywhere.
    pub to: Option<Net>,
    /// Interface (`in on eth0`, or `out on eth0` for outgoing rules).
    pub interface: Option<String>,
    /// Comment stored with the rule in ufw (never compared).
    pub comment: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RawRule {
    allow: Option<Located<Target>>,
    deny: Option<Located<Target>>,
    reject: Option<Located<Target>>,
    limit: Option<Located<Target>>,
    direction: Option<Direction>,
    from: Option<Addr>,
    to: Option<Addr>,
    interface: Option<Interface>,
    comment: Option<Comment>,
    log: Option<Log>,
}

/// A rule is a [`RawRule`] with exactly one action key.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Rule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rule".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = <RawRule as schemars::JsonSchema>::json_schema(generator);
        schema.insert(
            "oneOf".into(),
            serde_json::json!([
                { "required": ["allow"] },
                { "required": ["deny"] },
                { "required": ["reject"] },
                { "required": ["limit"] }
            ]),
        );
        schema
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawRule::deserialize(deserializer)?;
        Rule::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl Rule {
    fn from_raw(raw: RawRule) -> Result<Rule, String> {
        let actions = [
            (Action::Allow, raw.allow),
            (Action::Deny, raw.deny),
            (Action::Reject, raw.reject),
            (Action::Limit, raw.limit),
        ];
        let mut found = actions.into_iter().filter_map(|(a, t)| t.map(|t| (a, t)));
        let (action, target) = found
            .next()
            .ok_or("a rule needs an action key: allow, deny, reject or limit (such as `{ allow: 443/tcp }`)")?;
        if let Some((other, _)) = found.next() {
            return Err(format!(
                "a rule has one action; this one has both {} and {}",
                action.as_str(),
                other.as_str()
            ));
        }
        let (from, to) = (raw.from.and_then(|a| a.0), raw.to.and_then(|a| a.0));
        if let (Some(f), Some(t)) = (from, to) {
            if f.family() != t.family() {
                return Err(format!("`from: {f}` and `to: {t}` mix IPv4 and IPv6"));
            }
        }
        if let Target::Ports { proto, .. } = &target.value {
            let family = from.or(to).map(|n| n.family());
            if proto.v4_only() && family == Some(Family::V6) {
                return Err(format!("protocol {} is IPv4 only", proto.as_str()));
            }
        }
        Ok(Rule {
            effect: Effect {
                action,
                log: raw.log.unwrap_or_default().0,
            },
            target,
            direction: raw.direction.unwrap_or_default(),
            from,
            to,
            interface: raw.interface.map(|i| i.0),
            comment: raw.comment.map(|c| c.0),
        })
    }

    /// Where the rule was written.
    pub fn at(&self) -> At {
        self.target.at
    }

    /// The family its addresses tie it to, if any.
    pub fn family(&self) -> Option<Family> {
        self.from.or(self.to).map(|n| n.family())
    }

    /// True when `other` matches the same traffic (the action may differ).
    pub fn same_match(&self, other: &Rule) -> bool {
        self.target.value == other.target.value
            && self.direction == other.direction
            && self.from == other.from
            && self.to == other.to
            && self.interface == other.interface
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.effect)?;
        if self.direction == Direction::Out {
            f.write_str(" out")?;
        }
        if let Some(i) = &self.interface {
            write!(f, " on {i}")?;
        }
        write!(f, " {}", self.target.value)?;
        if let Some(n) = &self.from {
            write!(f, " from {n}")?;
        }
        if let Some(n) = &self.to {
            write!(f, " to {n}")?;
        }
        Ok(())
    }
}

/// What a rule matches on, beyond addresses: ports of a protocol, or an application profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Destination ports of a protocol.
    Ports(Proto, Ports),
    /// An application profile, by its canonical name.
    App(String),
}

/// The semantic identity of a rule in one family: two rules with equal keys match the same
/// traffic, and ufw holds at most one of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Address family.
    pub family: Family,
    /// A `route` (forwarding) rule.
    pub forward: bool,
    /// Direction.
    pub direction: Direction,
    /// Input interface.
    pub iface_in: Option<String>,
    /// Output interface.
    pub iface_out: Option<String>,
    /// Source network.
    pub src: Net,
    /// Source ports (`Any` unless ufw holds a source-port rule).
    pub sport: Ports,
    /// Source application profile.
    pub sapp: Option<String>,
    /// Destination network.
    pub dst: Net,
    /// Destination ports or application.
    pub service: Service,
}

/// One `### tuple ###` line: a rule as ufw persists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// Line number in its file (1-based).
    pub line: usize,
    /// A `route:` rule.
    pub forward: bool,
    /// Action and logging.
    pub effect: Effect,
    /// Protocol.
    pub proto: Proto,
    /// Destination ports as written (`any`, `443`, `80,443`).
    pub dport: String,
    /// Destination as written.
    pub dst: String,
    /// Source ports as written.
    pub sport: String,
    /// Source as written.
    pub src: String,
    /// Destination application profile (`-` or empty when none).
    pub dapp: Option<String>,
    /// Source application profile.
    pub sapp: Option<String>,
    /// Direction.
    pub direction: Direction,
    /// Input interface.
    pub iface_in: Option<String>,
    /// Output interface.
    pub iface_out: Option<String>,
    /// Comment, decoded.
    pub comment: String,
}

impl Tuple {
    /// Parses the part of a `### tuple ###` line after the marker. Mirrors ufw's
    /// `_read_rules`: 6 to 9 fields, `comment=` hex at the end.
    pub fn parse(line: usize, text: &str) -> Result<Tuple, String> {
        let (text, comment) = match text.split_once(" comment=") {
            Some((t, hex)) => (
                t,
                decode_hex(hex.trim())
                    .ok_or_else(|| format!("malformed comment in tuple `{text}`"))?,
            ),
            None => (text, String::new()),
        };
        let f: Vec<&str> = text.split_whitespace().collect();
        if !(6..=9).contains(&f.len()) {
            return Err(format!("malformed tuple (bad length): `{text}`"));
        }
        let (mut direction, mut iface_in, mut iface_out) = (Direction::In, None, None);
        if f.len() == 7 || f.len() == 9 {
            let last = f[f.len() - 1];
            let (dir, rest) = last
                .split_once('_')
                .map_or((last, None), |(d, r)| (d, Some(r)));
            if let Some(rest) = rest {
                if let Some((a, b)) = last.split_once('!') {
                    iface_in = a.strip_prefix("in_").map(str::to_owned);
                    iface_out = b.strip_prefix("out_").map(str::to_owned);
                    if iface_in.is_none() || iface_out.is_none() {
                        return Err(format!("malformed tuple (interface): `{text}`"));
                    }
                } else if dir == "in" {
                    iface_in = Some(rest.to_owned());
                } else if dir == "out" {
                    iface_out = Some(rest.to_owned());
                } else {
                    return Err(format!("malformed tuple (interface): `{text}`"));
                }
            }
            direction = match dir {
                "out" => Direction::Out,
                _ => Direction::In,
            };
        }
        let (forward, action) = match f[0].split_once(':') {
            Some((_, a)) => (true, a),
            None => (false, f[0]),
        };
        let (action, log) = match action.split_once('_') {
            Some((a, "log")) => (a, LogType::Log),
            Some((a, "log-all")) => (a, LogType::All),
            Some(_) => return Err(format!("malformed tuple (log type): `{text}`")),
            None => (action, LogType::Off),
        };
        let action = match action {
            "allow" => Action::Allow,
            "reject" => Action::Reject,
            "limit" => Action::Limit,
            _ => Action::Deny,
        };
        let proto =
            Proto::parse(f[1]).ok_or_else(|| format!("malformed tuple (protocol): `{text}`"))?;
        let app = |s: &str| (s != "-" && !s.is_empty()).then(|| s.replace("%20", " "));
        let (dapp, sapp) = if f.len() >= 8 {
            (app(f[6]), app(f[7]))
        } else {
            (None, None)
        };
        Ok(Tuple {
            line,
            forward,
            effect: Effect { action, log },
            proto,
            dport: f[2].to_owned(),
            dst: f[3].to_owned(),
            sport: f[4].to_owned(),
            src: f[5].to_owned(),
            dapp,
            sapp,
            direction,
            iface_in,
            iface_out,
            comment,
        })
    }

    /// The semantic key of this tuple in `family`.
    pub fn key(&self, family: Family) -> Result<Key, String> {
        let net = |s: &str| -> Result<Net, String> {
            let n = Net::parse(s)?;
            if n.family() != family {
                return Err(format!("address {s} in the {family:?} rules file"));
            }
            Ok(n)
        };
        let service = match &self.dapp {
            Some(app) => Service::App(app.clone()),
            None => Service::Ports(self.proto, Ports::parse(&self.dport)?),
        };
        let sport = if self.sapp.is_some() {
            Ports::Any
        } else {
            Ports::parse(&self.sport)?
        };
        Ok(Key {
            family,
            forward: self.forward,
            direction: self.direction,
            iface_in: self.iface_in.clone(),
            iface_out: self.iface_out.clone(),
            src: net(&self.src)?,
            sport,
            sapp: self.sapp.clone(),
            dst: net(&self.dst)?,
            service,
        })
    }

    /// The arguments that name this rule to ufw, spelled for its family only (so that a
    /// delete removes exactly this tuple's rule, not its twin).
    pub fn spec(&self) -> Spec {
        Spec {
            forward: self.forward,
            effect: self.effect,
            direction: self.direction,
            iface_in: self.iface_in.clone(),
            iface_out: self.iface_out.clone(),
            src: self.src.clone(),
            sport: (self.sapp.is_none() && self.sport != "any").then(|| self.sport.clone()),
            sapp: self.sapp.clone(),
            dst: self.dst.clone(),
            dport: (self.dapp.is_none() && self.dport != "any").then(|| self.dport.clone()),
            dapp: self.dapp.clone(),
            proto: if self.dapp.is_some() || self.sapp.is_some() {
                Proto::Any
            } else {
                self.proto
            },
            comment: None,
        }
    }
}

fn decode_hex(hex: &str) -> Option<String> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

/// The tuples of a `user.rules` / `user6.rules` text, with messages for malformed ones
/// (ufw skips those too).
pub fn parse_rules_file(text: &str) -> (Vec<Tuple>, Vec<String>) {
    let mut tuples = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("### tuple ###") {
            match Tuple::parse(i + 1, rest.trim()) {
                Ok(t) => tuples.push(t),
                Err(e) => bad.push(format!("line {}: {e}", i + 1)),
            }
        }
    }
    (tuples, bad)
}

/// A rule as the arguments of a ufw command (`ufw allow ...`, `ufw delete allow ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// A `route` rule.
    pub forward: bool,
    /// Action and logging.
    pub effect: Effect,
    /// Direction.
    pub direction: Direction,
    /// Input interface.
    pub iface_in: Option<String>,
    /// Output interface.
    pub iface_out: Option<String>,
    /// Source: `any` (both families) or an address or network (`0.0.0.0/0` is v4 only).
    pub src: String,
    /// Source ports.
    pub sport: Option<String>,
    /// Source application.
    pub sapp: Option<String>,
    /// Destination, as `src`.
    pub dst: String,
    /// Destination ports.
    pub dport: Option<String>,
    /// Destination application.
    pub dapp: Option<String>,
    /// Protocol.
    pub proto: Proto,
    /// Comment to store (never for deletes).
    pub comment: Option<String>,
}

impl Spec {
    /// ufw's arguments for the rule, after the command word (`allow ...`).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let short = !self.forward
            && self.src == "any"
            && self.dst == "any"
            && self.iface_in.is_none()
            && self.iface_out.is_none()
            && self.sport.is_none()
            && self.sapp.is_none()
            && (self.dport.is_some() || self.dapp.is_some());
        if self.forward {
            a.push("route".into());
        }
        a.push(self.effect.action.as_str().into());
        if short {
            if self.direction == Direction::Out {
                a.push("out".into());
            }
            a.extend(self.effect.log.word().map(String::from));
            match (&self.dapp, &self.dport) {
                (Some(app), _) => a.push(app.clone()),
                (None, Some(port)) if self.proto == Proto::Any => a.push(port.clone()),
                (None, Some(port)) => a.push(format!("{port}/{}", self.proto.as_str())),
                (None, None) => {}
            }
        } else {
            if self.forward {
                if let Some(i) = &self.iface_in {
                    a.extend(["in".into(), "on".into(), i.clone()]);
                }
                if let Some(i) = &self.iface_out {
                    a.extend(["out".into(), "on".into(), i.clone()]);
                }
            } else {
                a.push(self.direction.as_str().into());
                if let Some(i) = self.iface_in.as_ref().or(self.iface_out.as_ref()) {
                    a.extend(["on".into(), i.clone()]);
                }
            }
            a.extend(self.effect.log.word().map(String::from));
            a.extend(["from".into(), self.src.clone()]);
            if let Some(app) = &self.sapp {
                a.extend(["app".into(), app.clone()]);
            } else if let Some(port) = &self.sport {
                a.extend(["port".into(), port.clone()]);
            }
            a.extend(["to".into(), self.dst.clone()]);
            if let Some(app) = &self.dapp {
                a.extend(["app".into(), app.clone()]);
            } else if let Some(port) = &self.dport {
                a.extend(["port".into(), port.clone()]);
            }
            if self.proto != Proto::Any && self.dapp.is_none() && self.sapp.is_none() {
                a.extend(["proto".into(), self.proto.as_str().into()]);
            }
        }
        if let Some(c) = &self.comment {
            a.extend(["comment".into(), c.clone()]);
        }
        a
    }

    /// The same rule spelled for both families (`any` for anywhere), when it is anywhere
    /// to anywhere in `family`.
    pub fn for_both(&self, family: Family) -> Option<Spec> {
        (self.src == family.anywhere() && self.dst == family.anywhere()).then(|| Spec {
            src: "any".into(),
            dst: "any".into(),
            ..self.clone()
        })
    }

    /// Without the comment (deletes match regardless of it).
    pub fn without_comment(&self) -> Spec {
        Spec {
            comment: None,
            ..self.clone()
        }
    }
}

/// A readable one-line form of a tuple, as `ufw status` would roughly show it.
pub fn describe(t: &Tuple, family: Family) -> String {
    let mut s = String::new();
    if t.forward {
        s.push_str("route ");
    }
    s.push_str(&t.effect.to_string());
    if t.direction == Direction::Out {
        s.push_str(" out");
    }
    if let Some(i) = t.iface_in.as_ref().or(t.iface_out.as_ref()) {
        s.push_str(&format!(" on {i}"));
    }
    match &t.dapp {
        Some(app) => s.push_str(&format!(" {app}")),
        None if t.dport == "any" && t.proto == Proto::Any => s.push_str(" any"),
        None if t.dport == "any" => s.push_str(&format!(" any/{}", t.proto.as_str())),
        None if t.proto == Proto::Any => s.push_str(&format!(" {}", t.dport)),
        None => s.push_str(&format!(" {}/{}", t.dport, t.proto.as_str())),
    }
    if t.src != family.anywhere() {
        s.push_str(&format!(" from {}", t.src));
    }
    if t.sport != "any" || t.sapp.is_some() {
        s.push_str(&format!(" port {}", t.sapp.as_deref().unwrap_or(&t.sport)));
    }
    if t.dst != family.anywhere() {
        s.push_str(&format!(" to {}", t.dst));
    }
    if family == Family::V6 {
        s.push_str(" (v6)");
    }
    if !t.comment.is_empty() {
        s.push_str(&format!(" # {}", t.comment));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_reject_bad_input() {
        assert_eq!(
            Target::parse("443/tcp"),
            Ok(Target::Ports {
                ports: Ports::List(vec![(443, 443)]),
                proto: Proto::Tcp
            })
        );
        assert_eq!(
            Target::parse("443,80/tcp"),
            Ok(Target::Ports {
                ports: Ports::List(vec![(80, 80), (443, 443)]),
                proto: Proto::Tcp
            })
        );
        assert_eq!(
            Target::parse("6000:6007/udp"),
            Ok(Target::Ports {
                ports: Ports::List(vec![(6000, 6007)]),
                proto: Proto::Udp
            })
        );
        assert_eq!(
            Target::parse("53"),
            Ok(Target::Ports {
                ports: Ports::List(vec![(53, 53)]),
                proto: Proto::Any
            })
        );
        assert_eq!(
            Target::parse("any/esp"),
            Ok(Target::Ports {
                ports: Ports::Any,
                proto: Proto::Portless("esp")
            })
        );
        assert_eq!(
            Target::parse("OpenSSH"),
            Ok(Target::Name {
                name: "OpenSSH".into(),
                proto: None
            })
        );
        assert_eq!(
            Target::parse("Nginx Full"),
            Ok(Target::Name {
                name: "Nginx Full".into(),
                proto: None
            })
        );
        assert_eq!(
            Target::parse("ssh/tcp"),
            Ok(Target::Name {
                name: "ssh".into(),
                proto: Some(Proto::Tcp)
            })
        );
        let err = |s: &str| Target::parse(s).expect_err(s);
        assert!(err("70000/tcp").contains("port 70000 is out of range"));
        assert!(err("0").contains("out of range"));
        assert!(err("ssh/xyz").contains("unknown protocol `xyz`"));
        assert!(err("6000:6007").contains("needs a protocol"));
        assert!(err("80,443").contains("needs a protocol"));
        assert!(err("7000:6000/tcp").contains("lower to a higher"));
        assert!(err("22/esp").contains("no ports"));
        assert!(err("all").contains("neither"));
        assert!(err("a'b").contains("neither"));
    }

    #[test]
    fn networks_normalise_and_compare() {
        let n = |s: &str| Net::parse(s).expect(s);
        assert_eq!(n("192.0.2.2/32"), n("192.0.2.2"));
        assert_eq!(n("192.0.2.5/24").to_string(), "192.0.2.0/24");
        assert_eq!(n("10.0.0.0/255.0.0.0").to_string(), "10.0.0.0/8");
        assert_eq!(n("2001:DB8:0::1/64").to_string(), "2001:db8::/64");
        assert_eq!(n("2001:db8::1/128").to_string(), "2001:db8::1");
        assert!(n("192.0.2.0/24").contains(&n("192.0.2.2")));
        assert!(!n("198.51.100.0/24").overlaps(&n("192.0.2.2")));
        assert!(Net::anywhere(Family::V4).contains(&n("192.0.2.2")));
        assert!(!Net::anywhere(Family::V6).contains(&n("192.0.2.2")));
        assert!(Net::parse("300.1.1.1").is_err());
        assert!(Net::parse("192.0.2.0/33").is_err());
        assert!(Net::parse("192.0.2.0/255.0.255.0").is_err());
        assert!(Net::parse("example.com").is_err());
    }

    #[test]
    fn ports_overlap() {
        let p = |s: &str| Ports::parse(s).expect(s);
        assert!(p("80,443").overlaps(&p("443")));
        assert!(p("6000:6007").overlaps(&p("6005")));
        assert!(!p("6000:6007").overlaps(&p("6008,22")));
        assert!(Ports::Any.overlaps(&p("1")));
        assert_eq!(p("443,80,80").to_string(), "80,443");
    }

    #[test]
    fn tuples_parse_like_ufw() {
        let t = Tuple::parse(
            12,
            "allow tcp 1935 0.0.0.0/0 any 192.0.2.0/24 in comment=6869207468657265",
        )
        .expect("tuple");
        assert_eq!(
            t.effect,
            Effect {
                action: Action::Allow,
                log: LogType::Off
            }
        );
        assert_eq!(t.comment, "hi there");
        assert_eq!(t.src, "192.0.2.0/24");
        let key = t.key(Family::V4).expect("key");
        assert_eq!(
            key.service,
            Service::Ports(Proto::Tcp, Ports::List(vec![(1935, 1935)]))
        );
        assert_eq!(key.src, Net::parse("192.0.2.0/24").expect("net"));

        let app = Tuple::parse(3, "allow tcp 22 ::/0 any ::/0 OpenSSH - in").expect("app");
        assert_eq!(app.dapp.as_deref(), Some("OpenSSH"));
        assert_eq!(
            app.key(Family::V6).expect("key").service,
            Service::App("OpenSSH".into())
        );

        let iface =
            Tuple::parse(4, "deny_log udp 53 0.0.0.0/0 any 0.0.0.0/0 out_eth0").expect("iface");
        assert_eq!(iface.direction, Direction::Out);
        assert_eq!(iface.iface_out.as_deref(), Some("eth0"));
        assert_eq!(iface.effect.log, LogType::Log);

        let route = Tuple::parse(
            5,
            "route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_eth1",
        )
        .expect("route");
        assert!(route.forward);
        assert_eq!(
            (route.iface_in.as_deref(), route.iface_out.as_deref()),
            (Some("eth0"), Some("eth1"))
        );

        let old =
            Tuple::parse(6, "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0").expect("old 6-field form");
        assert_eq!(old.direction, Direction::In);
        assert!(Tuple::parse(7, "allow tcp 22").is_err());
    }

    #[test]
    fn a_rules_file_yields_its_tuples_in_order() {
        let text = "*filter\n:ufw-user-input - [0:0]\n### RULES ###\n\n### tuple ### deny tcp 80 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 80 -j DROP\n\n### tuple ### allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 443 -j ACCEPT\n\n### tuple ### bogus\n### END RULES ###\n";
        let (tuples, bad) = parse_rules_file(text);
        assert_eq!(
            tuples.iter().map(|t| t.dport.as_str()).collect::<Vec<_>>(),
            vec!["80", "443"]
        );
        assert_eq!(tuples[0].line, 5);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn specs_spell_commands_ufw_parses() {
        let t = Tuple::parse(1, "allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in").expect("tuple");
        assert_eq!(
            t.spec().args(),
            [
                "allow",
                "in",
                "from",
                "0.0.0.0/0",
                "to",
                "0.0.0.0/0",
                "port",
                "443",
                "proto",
                "tcp"
            ]
        );
        let both = t.spec().for_both(Family::V4).expect("anywhere");
        assert_eq!(both.args(), ["allow", "443/tcp"]);
        let t = Tuple::parse(
            1,
            "limit_log tcp 22 0.0.0.0/0 any 192.0.2.0/24 in_eth0 comment=6869",
        )
        .expect("tuple");
        assert_eq!(
            t.spec().args(),
            [
                "limit",
                "in",
                "on",
                "eth0",
                "log",
                "from",
                "192.0.2.0/24",
                "to",
                "0.0.0.0/0",
                "port",
                "22",
                "proto",
                "tcp"
            ]
        );
        let t = Tuple::parse(1, "allow tcp 22 ::/0 any ::/0 OpenSSH - in").expect("tuple");
        assert_eq!(
            t.spec().for_both(Family::V6).expect("anywhere").args(),
            ["allow", "OpenSSH"]
        );
        assert_eq!(
            t.spec().args(),
            ["allow", "in", "from", "::/0", "to", "::/0", "app", "OpenSSH"]
        );
        let t = Tuple::parse(
            1,
            "route:allow any any 0.0.0.0/0 any 10.0.0.0/8 in_eth0!out_eth1",
        )
        .expect("tuple");
        assert_eq!(
            t.spec().args(),
            [
                "route",
                "allow",
                "in",
                "on",
                "eth0",
                "out",
                "on",
                "eth1",
                "from",
                "10.0.0.0/8",
                "to",
                "0.0.0.0/0"
            ]
        );
    }
}
