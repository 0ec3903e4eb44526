//! What harden knows about sshd_config directives without asking sshd: names, value types,
//! how repeated lines combine, defaults, and how values are written and compared.
//!
//! The table is the fallback and the first line of checks. Where sshd is installed, the
//! planner also asks it (`sshd -T -o ...`), so a directive this table lacks but the installed
//! sshd knows is still accepted, and one the table has but the installed sshd lacks is
//! still refused.

/// How the lines of one directive combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// sshd keeps the first value it reads (most directives).
    First,
    /// Every line adds values (`Port`, `ListenAddress`, `HostKey`, `AllowUsers`...).
    Accumulate,
    /// Every line adds a named entry; the same name twice is an error (`Subsystem`).
    Named,
}

/// How a YAML list is written for this directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListStyle {
    /// One argument, items joined by commas (algorithm lists).
    Comma,
    /// Items as arguments of one line.
    Space,
    /// One line per item (`Port`, `ListenAddress`, `HostKey`).
    Lines,
}

/// Which `ssh -Q` query lists the algorithms a directive accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Query {
    /// `ssh -Q cipher`.
    Cipher,
    /// `ssh -Q mac`.
    Mac,
    /// `ssh -Q kex`.
    Kex,
    /// `ssh -Q key-sig`: host key and public key signature algorithms.
    KeySig,
    /// `ssh -Q sig`: signature algorithms for certificate authorities.
    Sig,
}

impl Query {
    /// The argument to `ssh -Q`.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Query::Cipher => "cipher",
            Query::Mac => "mac",
            Query::Kex => "kex",
            Query::KeySig => "key-sig",
            Query::Sig => "sig",
        }
    }
}

/// The type of a directive's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `yes` or `no`.
    Flag,
    /// One word from a fixed set (compared without case).
    Choice(&'static [&'static str]),
    /// Words from a fixed set, separated by commas or spaces (`PubkeyAuthOptions`).
    Options(&'static [&'static str]),
    /// A non-negative integer.
    Count,
    /// A time: seconds, or `1h30m` style (`s m h d w`).
    Duration,
    /// A time, or `none`.
    DurationOrNone,
    /// A TCP port, 1 to 65535.
    Port,
    /// A comma-separated algorithm list, optionally starting with `+`, `-` or `^`.
    Algorithms(Query),
    /// One or more words.
    Words,
    /// Exactly one word (a path, a user, a command name).
    Word,
    /// Three or four octal digits.
    Mask,
    /// `N` or `start:rate:full`.
    MaxStartups,
    /// Any arguments; checked by sshd itself.
    Text,
}

/// One sshd_config directive.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keyword {
    /// The name as the manual spells it.
    pub name: &'static str,
    /// Its value type.
    pub kind: Kind,
    /// How repeated lines combine.
    pub repeat: Repeat,
    /// sshd's built-in default, as `sshd -T` shows it, when harden needs it without sshd.
    pub default: Option<&'static str>,
    /// For an old name: the current one; sshd treats both the same.
    pub alias_of: Option<&'static str>,
}

impl Keyword {
    /// How a YAML list is written.
    pub(crate) fn list_style(&self) -> ListStyle {
        match (self.kind, self.repeat) {
            (Kind::Algorithms(_), _) => ListStyle::Comma,
            (Kind::Port, _) => ListStyle::Lines,
            (_, Repeat::Accumulate)
                if matches!(self.name, "ListenAddress" | "HostKey" | "HostCertificate") =>
            {
                ListStyle::Lines
            }
            (_, Repeat::Named) => ListStyle::Lines,
            _ => ListStyle::Space,
        }
    }

    /// The lower-case name `sshd -T` prints.
    pub(crate) fn key(&self) -> String {
        self.alias_of.unwrap_or(self.name).to_ascii_lowercase()
    }
}

const fn kw(
    name: &'static str,
    kind: Kind,
    repeat: Repeat,
    default: Option<&'static str>,
) -> Keyword {
    Keyword {
        name,
        kind,
        repeat,
        default,
        alias_of: None,
    }
}

const fn flag(name: &'static str, default: &'static str) -> Keyword {
    kw(name, Kind::Flag, Repeat::First, Some(default))
}

const fn alias(name: &'static str, of: &'static str, kind: Kind) -> Keyword {
    Keyword {
        name,
        kind,
        repeat: Repeat::First,
        default: None,
        alias_of: Some(of),
    }
}

const FORWARDING: &[&str] = &["yes", "all", "no", "local", "remote"];
const LOG_LEVELS: &[&str] = &[
    "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3",
];
const FACILITIES: &[&str] = &[
    "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
    "LOCAL5", "LOCAL6", "LOCAL7",
];
const ROOT_LOGIN: &[&str] = &[
    "yes",
    "prohibit-password",
    "without-password",
    "forced-commands-only",
    "no",
];

use Repeat::{Accumulate, First, Named};

/// Every directive of OpenSSH 9.x/10.x sshd, with Debian's additions.
pub(crate) const KEYWORDS: &[Keyword] = &[
    kw("AcceptEnv", Kind::Words, Accumulate, None),
    kw(
        "AddressFamily",
        Kind::Choice(&["any", "inet", "inet6"]),
        First,
        Some("any"),
    ),
    flag("AllowAgentForwarding", "yes"),
    kw("AllowGroups", Kind::Words, Accumulate, None),
    kw(
        "AllowStreamLocalForwarding",
        Kind::Choice(FORWARDING),
        First,
        Some("yes"),
    ),
    kw(
        "AllowTcpForwarding",
        Kind::Choice(FORWARDING),
        First,
        Some("yes"),
    ),
    kw("AllowUsers", Kind::Words, Accumulate, None),
    kw("AuthenticationMethods", Kind::Words, First, Some("any")),
    kw("AuthorizedKeysCommand", Kind::Text, First, Some("none")),
    kw("AuthorizedKeysCommandUser", Kind::Word, First, Some("none")),
    kw(
        "AuthorizedKeysFile",
        Kind::Words,
        First,
        Some(".ssh/authorized_keys .ssh/authorized_keys2"),
    ),
    kw(
        "AuthorizedPrincipalsCommand",
        Kind::Text,
        First,
        Some("none"),
    ),
    kw(
        "AuthorizedPrincipalsCommandUser",
        Kind::Word,
        First,
        Some("none"),
    ),
    kw("AuthorizedPrincipalsFile", Kind::Word, First, Some("none")),
    kw("Banner", Kind::Word, First, Some("none")),
    kw(
        "CASignatureAlgorithms",
        Kind::Algorithms(Query::Sig),
        First,
        None,
    ),
    alias(
        "ChallengeResponseAuthentication",
        "KbdInteractiveAuthentication",
        Kind::Flag,
    ),
    kw("ChannelTimeout", Kind::Words, First, None),
    kw("ChrootDirectory", Kind::Word, First, Some("none")),
    kw("Ciphers", Kind::Algorithms(Query::Cipher), First, None),
    kw("ClientAliveCountMax", Kind::Count, First, Some("3")),
    kw("ClientAliveInterval", Kind::Duration, First, Some("0")),
    kw(
        "Compression",
        Kind::Choice(&["yes", "delayed", "no"]),
        First,
        Some("yes"),
    ),
    flag("DebianBanner", "yes"),
    kw("DenyGroups", Kind::Words, Accumulate, None),
    kw("DenyUsers", Kind::Words, Accumulate, None),
    flag("DisableForwarding", "no"),
    flag("ExposeAuthInfo", "no"),
    kw(
        "FingerprintHash",
        Kind::Choice(&["md5", "sha256"]),
        First,
        Some("SHA256"),
    ),
    kw("ForceCommand", Kind::Text, First, Some("none")),
    kw(
        "GatewayPorts",
        Kind::Choice(&["yes", "no", "clientspecified"]),
        First,
        Some("no"),
    ),
    flag("GSSAPIAuthentication", "no"),
    flag("GSSAPICleanupCredentials", "yes"),
    kw("GSSAPIKexAlgorithms", Kind::Text, First, None),
    flag("GSSAPIKeyExchange", "no"),
    flag("GSSAPIStoreCredentialsOnRekey", "no"),
    flag("GSSAPIStrictAcceptorCheck", "yes"),
    kw(
        "HostbasedAcceptedAlgorithms",
        Kind::Algorithms(Query::KeySig),
        First,
        None,
    ),
    alias(
        "HostbasedAcceptedKeyTypes",
        "HostbasedAcceptedAlgorithms",
        Kind::Algorithms(Query::KeySig),
    ),
    flag("HostbasedAuthentication", "no"),
    flag("HostbasedUsesNameFromPacketOnly", "no"),
    kw("HostCertificate", Kind::Word, Accumulate, None),
    kw("HostKey", Kind::Word, Accumulate, None),
    kw("HostKeyAgent", Kind::Word, First, Some("none")),
    kw(
        "HostKeyAlgorithms",
        Kind::Algorithms(Query::KeySig),
        First,
        None,
    ),
    kw(
        "IgnoreRhosts",
        Kind::Choice(&["yes", "no", "shosts-only"]),
        First,
        Some("yes"),
    ),
    flag("IgnoreUserKnownHosts", "no"),
    kw("IPQoS", Kind::Words, First, Some("lowdelay throughput")),
    flag("KbdInteractiveAuthentication", "yes"),
    flag("KerberosAuthentication", "no"),
    flag("KerberosGetAFSToken", "no"),
    flag("KerberosOrLocalPasswd", "yes"),
    flag("KerberosTicketCleanup", "yes"),
    kw("KexAlgorithms", Kind::Algorithms(Query::Kex), First, None),
    kw("ListenAddress", Kind::Word, Accumulate, None),
    kw("LoginGraceTime", Kind::Duration, First, Some("120")),
    kw("LogLevel", Kind::Choice(LOG_LEVELS), First, Some("INFO")),
    kw("LogVerbose", Kind::Words, First, None),
    kw("MACs", Kind::Algorithms(Query::Mac), First, None),
    kw("MaxAuthTries", Kind::Count, First, Some("6")),
    kw("MaxSessions", Kind::Count, First, Some("10")),
    kw("MaxStartups", Kind::MaxStartups, First, Some("10:30:100")),
    kw("ModuliFile", Kind::Word, First, None),
    flag("PasswordAuthentication", "yes"),
    flag("PermitEmptyPasswords", "no"),
    kw("PermitListen", Kind::Words, First, Some("any")),
    kw("PermitOpen", Kind::Words, First, Some("any")),
    kw(
        "PermitRootLogin",
        Kind::Choice(ROOT_LOGIN),
        First,
        Some("prohibit-password"),
    ),
    flag("PermitTTY", "yes"),
    kw(
        "PermitTunnel",
        Kind::Choice(&["yes", "point-to-point", "ethernet", "no"]),
        First,
        Some("no"),
    ),
    kw("PermitUserEnvironment", Kind::Word, First, Some("no")),
    flag("PermitUserRC", "yes"),
    kw("PerSourceMaxStartups", Kind::Word, First, Some("none")),
    kw("PerSourceNetBlockSize", Kind::Word, First, Some("32:128")),
    kw("PerSourcePenalties", Kind::Words, First, None),
    kw("PerSourcePenaltyExemptList", Kind::Word, First, None),
    kw("PidFile", Kind::Word, First, Some("/run/sshd.pid")),
    kw("Port", Kind::Port, Accumulate, Some("22")),
    flag("PrintLastLog", "yes"),
    flag("PrintMotd", "yes"),
    kw(
        "PubkeyAcceptedAlgorithms",
        Kind::Algorithms(Query::KeySig),
        First,
        None,
    ),
    alias(
        "PubkeyAcceptedKeyTypes",
        "PubkeyAcceptedAlgorithms",
        Kind::Algorithms(Query::KeySig),
    ),
    kw(
        "PubkeyAuthOptions",
        Kind::Options(&["none", "touch-required", "verify-required"]),
        First,
        Some("none"),
    ),
    flag("PubkeyAuthentication", "yes"),
    flag("RefuseConnection", "no"),
    kw("RekeyLimit", Kind::Words, First, Some("0 0")),
    kw("RequiredRSASize", Kind::Count, First, Some("1024")),
    kw("RevokedKeys", Kind::Word, First, Some("none")),
    kw("RDomain", Kind::Word, First, None),
    kw("SecurityKeyProvider", Kind::Word, First, Some("internal")),
    kw("SetEnv", Kind::Words, First, None),
    kw("SshdAuthPath", Kind::Word, First, None),
    kw("SshdSessionPath", Kind::Word, First, None),
    kw("StreamLocalBindMask", Kind::Mask, First, Some("0177")),
    flag("StreamLocalBindUnlink", "no"),
    flag("StrictModes", "yes"),
    kw("Subsystem", Kind::Text, Named, None),
    kw(
        "SyslogFacility",
        Kind::Choice(FACILITIES),
        First,
        Some("AUTH"),
    ),
    flag("TCPKeepAlive", "yes"),
    kw("TrustedUserCAKeys", Kind::Word, First, Some("none")),
    kw(
        "UnusedConnectionTimeout",
        Kind::DurationOrNone,
        First,
        Some("none"),
    ),
    flag("UseDNS", "no"),
    flag("UsePAM", "no"),
    kw("VersionAddendum", Kind::Text, First, Some("none")),
    kw("X11DisplayOffset", Kind::Count, First, Some("10")),
    flag("X11Forwarding", "no"),
    flag("X11UseLocalhost", "yes"),
    kw("XAuthLocation", Kind::Word, First, Some("/usr/bin/xauth")),
];

/// Names sshd still accepts but ignores (or only warns about); a playbook must not use them.
pub(crate) const DEPRECATED: &[&str] = &[
    "AuthorizedKeysFile2",
    "DSAAuthentication",
    "KeepAlive",
    "KerberosTgtPassing",
    "KeyRegenerationInterval",
    "PAMAuthenticationViaKbdInt",
    "Protocol",
    "ReverseMappingCheck",
    "RhostsAuthentication",
    "RhostsRSAAuthentication",
    "RSAAuthentication",
    "ServerKeyBits",
    "ShowPatchLevel",
    "SkeyAuthentication",
    "UseLogin",
    "UsePrivilegeSeparation",
    "UseRoaming",
    "VerifyReverseMapping",
];

/// Directives that change the structure of the file; harden manages global values only.
pub(crate) const STRUCTURAL: &[&str] = &["Include", "Match"];

/// The directive called `name` (any case).
pub(crate) fn lookup(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The directive `name` stands for, following an alias to the current name.
pub(crate) fn canonical(name: &str) -> Option<&'static Keyword> {
    let found = lookup(name)?;
    match found.alias_of {
        Some(target) => lookup(target),
        None => Some(found),
    }
}

/// The closest known directive name, for "did you mean".
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KEYWORDS
        .iter()
        .map(|k| (distance(&lower, &k.name.to_ascii_lowercase()), k.name))
        .filter(|(d, _)| *d <= 3.max(lower.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks the arguments of one line of `keyword` against its type; the message says what
/// was expected.
pub(crate) fn check(keyword: &Keyword, args: &[String]) -> Result<(), String> {
    let name = keyword.name;
    match keyword.kind {
        Kind::Options(choices) => {
            if args.is_empty() {
                return Err(format!("{name} needs a value"));
            }
            for word in args.iter().flat_map(|a| a.split(',')) {
                if !choices.iter().any(|c| c.eq_ignore_ascii_case(word)) {
                    return Err(format!("{name} takes {}, not {word:?}", choices.join(", ")));
                }
            }
            Ok(())
        }
        Kind::Words | Kind::Text if args.is_empty() => Err(format!("{name} needs a value")),
        Kind::Words | Kind::Text => Ok(()),
        kind => match args {
            [one] => check_value(kind, name, one),
            [] => Err(format!("{name} needs a value")),
            _ => Err(format!("{name} takes one value, not {}", args.len())),
        },
    }
}

/// Checks the one value of a single-valued keyword.
fn check_value(kind: Kind, name: &str, v: &str) -> Result<(), String> {
    let ok = match kind {
        Kind::Flag => v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("no"),
        Kind::Choice(choices) => choices.iter().any(|c| c.eq_ignore_ascii_case(v)),
        Kind::Count => v.parse::<u32>().is_ok_and(|n| n <= i32::MAX as u32),
        Kind::Duration => seconds(v).is_some(),
        Kind::DurationOrNone => v.eq_ignore_ascii_case("none") || seconds(v).is_some(),
        Kind::Port => v.parse::<u16>().is_ok_and(|p| p > 0),
        Kind::Algorithms(_) => {
            return algorithm_names(v)
                .map(|_| ())
                .map_err(|why| format!("{name}: {why}"));
        }
        Kind::Mask => (3..=4).contains(&v.len()) && v.chars().all(|c| ('0'..='7').contains(&c)),
        Kind::MaxStartups => {
            let parts: Vec<&str> = v.split(':').collect();
            let numbers = parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            numbers && (parts.len() == 1 || parts.len() == 3)
        }
        Kind::Word | Kind::Words | Kind::Text | Kind::Options(_) => true,
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        Kind::Flag => "yes or no (true or false)".to_owned(),
        Kind::Choice(choices) => format!("one of {}", choices.join(", ")),
        Kind::Count => "a whole number of 0 or more".into(),
        Kind::Duration => "a time such as 30, 30s, 2m or 1h30m".into(),
        Kind::DurationOrNone => "`none` or a time such as 30s, 5m or 1h".into(),
        Kind::Port => "a TCP port from 1 to 65535".into(),
        Kind::Mask => "an octal mask such as \"0177\" (write it in quotes)".into(),
        Kind::MaxStartups => "N or start:rate:full (such as 10:30:100)".into(),
        _ => "valid".into(),
    };
    Err(format!("{name} is {expected}, not {v:?}"))
}

/// The names of an algorithm list and its modifier (`+`, `-`, `^` or none).
pub(crate) fn algorithm_names(value: &str) -> Result<(Option<char>, Vec<&str>), String> {
    let (modifier, rest) = match value.chars().next() {
        Some(c @ ('+' | '-' | '^')) => (Some(c), &value[1..]),
        _ => (None, value),
    };
    if rest.is_empty() {
        return Err("an algorithm list needs at least one name".into());
    }
    let names: Vec<&str> = rest.split(',').collect();
    for name in &names {
        if name.is_empty() {
            return Err(format!("empty name in algorithm list {value:?}"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-*?".contains(c))
        {
            return Err(format!("{name:?} is not an algorithm name"));
        }
    }
    Ok((modifier, names))
}

/// Seconds in an sshd time value (`90`, `1m30s`, `2h`); `None` when it is not one.
pub(crate) fn seconds(value: &str) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        number.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !number.is_empty() {
        total = total.checked_add(number.parse().ok()?)?;
    }
    (total <= i32::MAX as u64).then_some(total)
}

/// A value in the form used to compare two values of `keyword`: what `sshd -T` would print
/// for both is equal exactly when these are equal (for the types harden understands).
pub(crate) fn normal(keyword: &Keyword, args: &[String]) -> String {
    match keyword.kind {
        Kind::Flag | Kind::Choice(_) => {
            let v = args.join(" ").to_ascii_lowercase();
            if v == "without-password" {
                "prohibit-password".into()
            } else {
                v
            }
        }
        Kind::Duration | Kind::DurationOrNone => match args {
            [one] => seconds(one).map_or_else(|| one.to_ascii_lowercase(), |s| s.to_string()),
            _ => args.join(" "),
        },
        Kind::Options(_) => args
            .iter()
            .flat_map(|a| a.split(','))
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(","),
        Kind::Mask => match args {
            [one] => format!("{:0>4}", one),
            _ => args.join(" "),
        },
        Kind::Port => args
            .iter()
            .map(|a| a.trim_start_matches('0').to_string())
            .collect::<Vec<_>>()
            .join(" "),
        _ => args.join(" "),
    }
}

/// Writes one argument so that sshd reads it back as the same single argument.
pub(crate) fn quote(arg: &str) -> String {
    // A leading `=` is quoted too: right after the keyword sshd would skip it as the
    // `Keyword=value` separator (`Banner =x` is `Banner x`).
    let plain = !arg.is_empty()
        && !arg.starts_with(['#', '='])
        && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\');
    if plain {
        return arg.to_owned();
    }
    let mut out = String::from("\"");
    for c in arg.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_found_without_case_and_aliases_resolve() {
        assert_eq!(
            lookup("passwordauthentication").map(|k| k.name),
            Some("PasswordAuthentication")
        );
        assert_eq!(
            canonical("ChallengeResponseAuthentication").map(|k| k.name),
            Some("KbdInteractiveAuthentication")
        );
        assert!(lookup("FooBar").is_none());
        assert_eq!(
            suggest("PasswordAuthentification"),
            Some("PasswordAuthentication")
        );
        assert_eq!(suggest("PermitRootLogn"), Some("PermitRootLogin"));
    }

    #[test]
    fn every_table_entry_is_unique_and_aliases_point_somewhere() {
        for (i, k) in KEYWORDS.iter().enumerate() {
            assert!(
                KEYWORDS[i + 1..]
                    .iter()
                    .all(|o| !o.name.eq_ignore_ascii_case(k.name)),
                "{}",
                k.name
            );
            if let Some(target) = k.alias_of {
                assert!(lookup(target).is_some(), "{}", k.name);
            }
        }
    }

    #[test]
    fn values_are_checked_by_type() {
        let k = |n: &str| lookup(n).expect("known");
        assert!(check(k("PasswordAuthentication"), &args(&["no"])).is_ok());
        assert!(check(k("PasswordAuthentication"), &args(&["maybe"])).is_err());
        assert!(check(k("PermitRootLogin"), &args(&["prohibit-password"])).is_ok());
        assert!(check(k("PermitRootLogin"), &args(&["never"])).is_err());
        assert!(check(k("MaxAuthTries"), &args(&["3"])).is_ok());
        assert!(check(k("MaxAuthTries"), &args(&["-1"])).is_err());
        assert!(check(k("LoginGraceTime"), &args(&["1m30s"])).is_ok());
        assert!(check(k("LoginGraceTime"), &args(&["1x"])).is_err());
        assert!(check(k("Port"), &args(&["0"])).is_err());
        assert!(check(k("Port"), &args(&["2222"])).is_ok());
        assert!(check(
            k("Ciphers"),
            &args(&["aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"])
        )
        .is_ok());
        assert!(check(k("Ciphers"), &args(&["-*cbc"])).is_ok());
        assert!(check(k("Ciphers"), &args(&["aes256-gcm,,x"])).is_err());
        assert!(check(k("MaxStartups"), &args(&["10:30:60"])).is_ok());
        assert!(check(k("MaxStartups"), &args(&["10:30"])).is_err());
        assert!(check(k("StreamLocalBindMask"), &args(&["600"])).is_ok());
        assert!(check(
            k("PubkeyAuthOptions"),
            &args(&["touch-required,verify-required"])
        )
        .is_ok());
        assert!(check(k("Banner"), &args(&["/etc/issue.net", "x"])).is_err());
    }

    #[test]
    fn durations_are_seconds() {
        assert_eq!(seconds("90"), Some(90));
        assert_eq!(seconds("1m30s"), Some(90));
        assert_eq!(seconds("2H"), Some(7200));
        assert_eq!(seconds("1w"), Some(604_800));
        assert_eq!(seconds("m"), None);
        assert_eq!(seconds(""), None);
        assert_eq!(seconds("99999999999"), None);
    }

    #[test]
    fn normal_forms_match_what_sshd_prints() {
        let k = |n: &str| lookup(n).expect("known");
        assert_eq!(
            normal(k("PermitRootLogin"), &args(&["without-password"])),
            "prohibit-password"
        );
        assert_eq!(normal(k("PasswordAuthentication"), &args(&["No"])), "no");
        assert_eq!(normal(k("LoginGraceTime"), &args(&["2m"])), "120");
        assert_eq!(normal(k("LogLevel"), &args(&["verbose"])), "verbose");
    }

    #[test]
    fn quoting_round_trips_through_sshds_splitting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("/etc/my banner"), "\"/etc/my banner\"");
        assert_eq!(quote("#x"), "\"#x\"");
        // The sshd_config fuzz target's round trip fails without it (fuzz/regressions/).
        assert_eq!(quote("=/etc/issue"), "\"=/etc/issue\"");
        assert_eq!(quote("a=b"), "a=b");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
