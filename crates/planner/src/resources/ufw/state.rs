//! ufw's settings files, application profiles and `/etc/services`, parsed without running ufw.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::rule::{Ports, Proto};

/// A default policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// ACCEPT.
    Allow,
    /// DROP.
    Deny,
    /// REJECT.
    Reject,
}

impl Policy {
    /// ufw's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Allow => "allow",
            Policy::Deny => "deny",
            Policy::Reject => "reject",
        }
    }

    fn from_iptables(s: &str) -> Option<Policy> {
        match s {
            "ACCEPT" => Some(Policy::Allow),
            "DROP" => Some(Policy::Deny),
            "REJECT" => Some(Policy::Reject),
            _ => None,
        }
    }
}

/// `LOGLEVEL` of ufw.conf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// No logging.
    Off,
    /// Blocked packets not matching the default policy, and rule logging.
    Low,
    /// Also invalid packets, new connections not matching policy and allowed ones.
    Medium,
    /// Also everything, rate limited.
    High,
    /// Everything, not rate limited.
    Full,
}

impl LogLevel {
    /// ufw's word.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Low => "low",
            LogLevel::Medium => "medium",
            LogLevel::High => "high",
            LogLevel::Full => "full",
        }
    }

    fn parse(s: &str) -> Option<LogLevel> {
        match s {
            "off" => Some(LogLevel::Off),
            "low" | "on" => Some(LogLevel::Low),
            "medium" => Some(LogLevel::Medium),
            "high" => Some(LogLevel::High),
            "full" => Some(LogLevel::Full),
            _ => None,
        }
    }
}

/// What ufw's two settings files say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `ENABLED` of /etc/ufw/ufw.conf: started at boot.
    pub enabled: bool,
    /// `LOGLEVEL` of /etc/ufw/ufw.conf.
    pub logging: LogLevel,
    /// `IPV6` of /etc/default/ufw: whether ufw manages IPv6 (user6.rules) at all.
    pub ipv6: bool,
    /// `DEFAULT_INPUT_POLICY`.
    pub incoming: Policy,
    /// `DEFAULT_OUTPUT_POLICY`.
    pub outgoing: Policy,
    /// `DEFAULT_FORWARD_POLICY`.
    pub routed: Policy,
}

impl Settings {
    /// What a freshly installed ufw package holds.
    pub fn package_defaults() -> Settings {
        Settings {
            enabled: false,
            logging: LogLevel::Low,
            ipv6: true,
            incoming: Policy::Deny,
            outgoing: Policy::Allow,
            routed: Policy::Deny,
        }
    }

    /// Reads `ufw.conf` and `/etc/default/ufw` texts; values missing or unreadable keep the
    /// package default, as ufw itself falls back.
    pub fn parse(conf: &str, defaults: &str) -> Settings {
        let mut s = Settings::package_defaults();
        for (key, value) in assignments(conf) {
            match key {
                "ENABLED" => s.enabled = value.eq_ignore_ascii_case("yes"),
                "LOGLEVEL" => s.logging = LogLevel::parse(value).unwrap_or(s.logging),
                _ => {}
            }
        }
        for (key, value) in assignments(defaults) {
            match key {
                "IPV6" => s.ipv6 = value.eq_ignore_ascii_case("yes"),
                "DEFAULT_INPUT_POLICY" => {
                    s.incoming = Policy::from_iptables(value).unwrap_or(s.incoming)
                }
                "DEFAULT_OUTPUT_POLICY" => {
                    s.outgoing = Policy::from_iptables(value).unwrap_or(s.outgoing)
                }
                "DEFAULT_FORWARD_POLICY" => {
                    s.routed = Policy::from_iptables(value).unwrap_or(s.routed)
                }
                _ => {}
            }
        }
        s
    }
}

/// `KEY=value` lines (shell style, quotes removed), later ones winning as in a shell.
fn assignments(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        Some((
            key.trim(),
            value.trim().trim_matches('"').trim_matches('\''),
        ))
    })
}

/// Sets `key=value` in a settings file text the way ufw does (replacing the line, or
/// appending one), keeping every other line.
pub fn set_assignment(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for line in text.lines() {
        let is_key = line.split_once('=').is_some_and(|(k, _)| k.trim() == key)
            && !line.trim_start().starts_with('#');
        if is_key && !done {
            out.push_str(&format!("{key}={value}\n"));
            done = true;
        } else if !is_key {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// One application profile of /etc/ufw/applications.d.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Its name, as ufw spells it in rules.
    pub name: String,
    /// Its `ports=` entries: each becomes one tuple in ufw.
    pub entries: Vec<(Proto, Ports)>,
}

/// Parses the INI-style texts of application profile files into profiles by lowercased
/// name (ufw matches names case-insensitively and stores the profile's own spelling).
pub fn parse_profiles<'a>(files: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Profile> {
    let mut profiles = BTreeMap::new();
    for text in files {
        let mut current: Option<Profile> = None;
        let mut finish = |p: Option<Profile>| {
            if let Some(p) = p.filter(|p| !p.entries.is_empty()) {
                profiles.insert(p.name.to_lowercase(), p);
            }
        };
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                finish(current.take());
                current = Some(Profile {
                    name: name.to_owned(),
                    entries: Vec::new(),
                });
            } else if let (Some(p), Some((key, value))) = (current.as_mut(), line.split_once('=')) {
                if key.trim() == "ports" {
                    p.entries = value.trim().split('|').filter_map(profile_entry).collect();
                }
            }
        }
        finish(current);
    }
    profiles
}

fn profile_entry(entry: &str) -> Option<(Proto, Ports)> {
    let (ports, proto) = match entry.trim().rsplit_once('/') {
        Some((ports, proto)) => (ports, Proto::parse(proto)?),
        None => (entry.trim(), Proto::Any),
    };
    Some((proto, Ports::parse(ports).ok()?))
}

/// A service of /etc/services: its port and protocols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The port.
    pub port: u16,
    /// Protocol ufw picks for the name: `tcp`, `udp`, or `any` when both are listed.
    pub proto: Proto,
}

/// Parses /etc/services into entries by name and alias (the first line of a name gives
/// the port, as getservbyname does).
pub fn parse_services(text: &str) -> BTreeMap<String, ServiceEntry> {
    let mut out: BTreeMap<String, ServiceEntry> = BTreeMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let (Ok(port), Some(proto @ (Proto::Tcp | Proto::Udp))) =
            (port.parse::<u16>(), Proto::parse(proto))
        else {
            continue;
        };
        for n in std::iter::once(name).chain(fields) {
            out.entry(n.to_owned())
                .and_modify(|e| {
                    if e.port == port && e.proto != proto {
                        e.proto = Proto::Any;
                    }
                })
                .or_insert(ServiceEntry { port, proto });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_both_files() {
        let s = Settings::parse(
            "# comment\nENABLED=yes\nLOGLEVEL=medium\n",
            "IPV6=no\nDEFAULT_INPUT_POLICY=\"REJECT\"\nDEFAULT_OUTPUT_POLICY=\"DROP\"\nDEFAULT_FORWARD_POLICY=\"ACCEPT\"\n",
        );
        assert_eq!(
            s,
            Settings {
                enabled: true,
                logging: LogLevel::Medium,
                ipv6: false,
                incoming: Policy::Reject,
                outgoing: Policy::Deny,
                routed: Policy::Allow
            }
        );
        assert_eq!(Settings::parse("", ""), Settings::package_defaults());
    }

    #[test]
    fn set_assignment_keeps_other_lines() {
        let text = "# /etc/ufw/ufw.conf\n\n# say yes\nENABLED=no\nLOGLEVEL=low\n";
        assert_eq!(
            set_assignment(text, "ENABLED", "yes"),
            "# /etc/ufw/ufw.conf\n\n# say yes\nENABLED=yes\nLOGLEVEL=low\n"
        );
        assert_eq!(
            set_assignment("A=1\n", "ENABLED", "yes"),
            "A=1\nENABLED=yes\n"
        );
    }

    #[test]
    fn profiles_and_services_parse() {
        let profiles = parse_profiles([
            "[OpenSSH]\ntitle=Secure shell server\ndescription=x\nports=22/tcp\n",
            "[Bind9]\ntitle=dns\ndescription=y\nports=53\n\n[Mixed]\ntitle=t\ndescription=d\nports=80,443/tcp|5000:5010/udp\n",
        ]);
        assert_eq!(
            profiles["openssh"].entries,
            vec![(Proto::Tcp, Ports::List(vec![(22, 22)]))]
        );
        assert_eq!(
            profiles["bind9"].entries,
            vec![(Proto::Any, Ports::List(vec![(53, 53)]))]
        );
        assert_eq!(profiles["mixed"].entries.len(), 2);
        let services = parse_services("ssh\t\t22/tcp\t\t\t\t# SSH\ndomain\t\t53/tcp\ndomain\t\t53/udp\nhttp 80/tcp www # web\n");
        assert_eq!(
            services["ssh"],
            ServiceEntry {
                port: 22,
                proto: Proto::Tcp
            }
        );
        assert_eq!(
            services["domain"],
            ServiceEntry {
                port: 53,
                proto: Proto::Any
            }
        );
        assert_eq!(services["www"].port, 80);
    }
}
