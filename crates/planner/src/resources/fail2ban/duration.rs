//! Time spans as fail2ban reads them: `3600`, `10m`, `1h30m`, `1d`, `1w`.
//!
//! fail2ban accepts more (`1.5h`, `2mo`, arithmetic); the playbook accepts the unambiguous
//! subset, checked while deserialising so a typo points at its line. The value is written
//! back in the compact form (`1h 30m` becomes `1h30m`) and compared in seconds, so the `10m`
//! fail2ban dumps and the `600` a playbook says are the same.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A non-negative time span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duration {
    seconds: u64,
    text: String,
}

impl Duration {
    /// The span in seconds.
    pub fn seconds(&self) -> u64 {
        self.seconds
    }

    /// A span of `seconds`, written as a bare number.
    pub fn from_seconds(seconds: u64) -> Self {
        Duration {
            seconds,
            text: seconds.to_string(),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const UNITS: &[(&[&str], &str, u64)] = &[
    (&["s", "sec", "secs", "second", "seconds"], "s", 1),
    (&["m", "min", "mins", "minute", "minutes"], "m", 60),
    (&["h", "hour", "hours"], "h", 3600),
    (&["d", "day", "days"], "d", 86_400),
    (&["w", "week", "weeks"], "w", 604_800),
];

/// Parses `3600`, `10m`, `1h30m`, `1h 30m`, `2 days`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: expected seconds (3600) or numbers with units s, m, h, d, w (10m, 1h30m)")
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if trimmed.starts_with('-') {
        return Err(format!(
            "invalid duration {text:?}: a duration cannot be negative"
        ));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = trimmed.parse::<u64>().map_err(|_| bad())?;
        return Ok(Duration::from_seconds(seconds));
    }
    let lower = trimmed.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut seconds = 0u64;
    let mut canonical = String::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let word = &rest[..letters];
        let (short, factor) = if word.is_empty() {
            // A bare number after others ("1h 30") is ambiguous.
            return Err(bad());
        } else {
            UNITS
                .iter()
                .find(|(names, _, _)| names.contains(&word))
                .map(|(_, short, factor)| (*short, *factor))
                .ok_or_else(bad)?
        };
        seconds = number
            .checked_mul(factor)
            .and_then(|s| s.checked_add(seconds))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        canonical.push_str(&format!("{number}{short}"));
        rest = rest[letters..].trim_start();
    }
    Ok(Duration {
        seconds,
        text: canonical,
    })
}

#[cfg(feature = "schema")]
crate::schema::literal!(Duration, {
    "description": "Seconds (3600) or a number with units s, m, h, d, w (10m, 1h30m).",
    "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "minLength": 1 }]
});

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (3600) or with units (10m, 1h, 1d)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_seconds(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v).map(Duration::from_seconds).map_err(|_| {
                    E::custom(format!(
                        "invalid duration {v}: a duration cannot be negative"
                    ))
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `bantime`: a duration, or `-1` (also `permanent`) for bans that never expire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanTime {
    /// Bans last this long.
    For(Duration),
    /// Bans never expire.
    Permanent,
}

impl BanTime {
    /// Seconds, with -1 for permanent, as fail2ban counts.
    pub fn seconds(&self) -> i64 {
        match self {
            BanTime::For(d) => i64::try_from(d.seconds()).unwrap_or(i64::MAX),
            BanTime::Permanent => -1,
        }
    }
}

impl fmt::Display for BanTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanTime::For(d) => d.fmt(f),
            BanTime::Permanent => f.write_str("-1"),
        }
    }
}

/// Parses a bantime: `-1`, `permanent`, or a duration.
pub fn parse_bantime(text: &str) -> Result<BanTime, String> {
    match text.trim() {
        "-1" | "permanent" => Ok(BanTime::Permanent),
        other => parse(other)
            .map(BanTime::For)
            .map_err(|e| format!("{e}, or -1 for a permanent ban")),
    }
}

#[cfg(feature = "schema")]
crate::schema::literal!(BanTime, {
    "description": "Seconds (3600), a number with units (10m, 1h, 1d), or -1 (also `permanent`) for bans that never expire.",
    "anyOf": [{ "type": "integer", "minimum": -1 }, { "type": "string", "minLength": 1 }]
});

impl<'de> Deserialize<'de> for BanTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = BanTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a ban time: seconds (3600), with units (10m, 1h, 1d), or -1 for permanent",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<BanTime, E> {
                Ok(BanTime::For(Duration::from_seconds(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<BanTime, E> {
                match v {
                    -1 => Ok(BanTime::Permanent),
                    v if v >= 0 => Ok(BanTime::For(Duration::from_seconds(v.unsigned_abs()))),
                    v => Err(E::custom(format!(
                        "invalid ban time {v}: use -1 for a permanent ban, or a positive duration"
                    ))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BanTime, E> {
                parse_bantime(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_units() {
        assert_eq!(parse("3600").map(|d| d.seconds()), Ok(3600));
        assert_eq!(parse("10m").map(|d| d.seconds()), Ok(600));
        assert_eq!(parse("1h").map(|d| d.seconds()), Ok(3600));
        assert_eq!(parse("1h30m").map(|d| d.seconds()), Ok(5400));
        assert_eq!(parse("1h 30m").map(|d| d.seconds()), Ok(5400));
        assert_eq!(parse("2 days").map(|d| d.seconds()), Ok(172_800));
        assert_eq!(parse("1W").map(|d| d.seconds()), Ok(604_800));
    }

    #[test]
    fn written_back_compactly() {
        assert_eq!(
            parse("1h 30m").map(|d| d.to_string()),
            Ok("1h30m".to_owned())
        );
        assert_eq!(parse("2 days").map(|d| d.to_string()), Ok("2d".to_owned()));
        assert_eq!(parse("600").map(|d| d.to_string()), Ok("600".to_owned()));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["soon", "", "-5", "10x", "1h 30", "h", "1.5h", "10m soon"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn bantime_allows_permanent() {
        assert_eq!(parse_bantime("-1"), Ok(BanTime::Permanent));
        assert_eq!(
            parse_bantime("permanent").map(|b| b.to_string()),
            Ok("-1".to_owned())
        );
        assert_eq!(parse_bantime("1h").map(|b| b.seconds()), Ok(3600));
        assert!(parse_bantime("-2").is_err());
    }
}
