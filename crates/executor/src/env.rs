//! Carries out [`Step::EditEnv`](harden_plan::Step::EditEnv): edits keys of a dotenv file,
//! drawing generated secrets from the operating system's random source.
//!
//! This is the only place a new secret exists before it is in the file: it is drawn here,
//! written through [`fs::write_atomic`] with the file's final mode and owner, and never
//! returned, logged or put into an error. Errors name the file and the line, not the text.

use std::io;
use std::path::Path;

use harden_host::{Host, Kind};
use harden_plan::{Alphabet, Attrs, EnvEdit, EnvValue, Generate};

use crate::fs;

/// The largest dotenv file edited: a real one is a few kilobytes.
const MAX_ENV_BYTES: usize = 1024 * 1024;

/// Reads the dotenv file at `path` (empty when missing and `create`), sets `edits` and writes
/// it back atomically with `attrs`.
pub(crate) fn edit(
    host: &Host,
    path: &Path,
    attrs: Attrs,
    create: bool,
    edits: &[EnvEdit],
) -> io::Result<()> {
    let text = read(host, path, create)?;
    let mut doc = harden_dotenv::parse(&text)
        .map_err(|e| io::Error::other(format!("{}:{}: {}", path.display(), e.line, e.message)))?;
    for edit in edits {
        let value = match &edit.value {
            EnvValue::Literal(value) => value.clone(),
            EnvValue::Generate(how) => generate(*how)?,
        };
        doc.set(&edit.key, &value);
    }
    fs::write_atomic(host, path, doc.render().as_bytes(), attrs)
}

/// The file's text: empty when it is missing and may be created.
fn read(host: &Host, path: &Path, create: bool) -> io::Result<String> {
    let exists = match host.stat(path)? {
        None => false,
        Some(st) if st.kind == Kind::File => true,
        Some(_) => {
            return Err(io::Error::other(format!(
                "{}: is not a regular file",
                path.display()
            )))
        }
    };
    if !exists {
        if create {
            return Ok(String::new());
        }
        return Err(io::Error::other(format!(
            "{}: does not exist (the plan does not create it)",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut fs::open_read(host, path)?, &mut bytes)?;
    if bytes.len() > MAX_ENV_BYTES {
        return Err(io::Error::other(format!(
            "{}: larger than {MAX_ENV_BYTES} bytes; not a dotenv file",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::other(format!("{}: is not UTF-8 text", path.display())))
}

/// A new secret: `how.bytes` bytes from the OS's cryptographic random source, written in
/// `how.alphabet`.
pub(crate) fn generate(how: Generate) -> io::Result<String> {
    let mut bytes = vec![0u8; how.bytes as usize];
    getrandom::fill(&mut bytes)
        .map_err(|e| io::Error::other(format!("the system's random source failed: {e}")))?;
    Ok(match how.alphabet {
        Alphabet::Hex => hex(&bytes),
        Alphabet::Urlsafe => urlsafe(&bytes),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Unpadded URL-safe base64 (RFC 4648 §5), as `secrets.token_urlsafe` writes it.
fn urlsafe(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their fixtures directly
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn encodings_match_the_rfc_test_vectors() {
        assert_eq!(hex(&[0x00, 0xff, 0x1a]), "00ff1a");
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(urlsafe(input.as_bytes()), want);
        }
        assert_eq!(urlsafe(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn generated_values_have_the_planned_length_and_differ() {
        for (alphabet, bytes) in [
            (Alphabet::Hex, 32),
            (Alphabet::Urlsafe, 32),
            (Alphabet::Urlsafe, 31),
        ] {
            let how = Generate { alphabet, bytes };
            let a = generate(how).expect("random");
            let b = generate(how).expect("random");
            assert_eq!(a.len(), how.characters());
            assert_ne!(a, b);
            assert!(a
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }

    #[test]
    fn an_edit_keeps_the_other_lines_and_sets_the_final_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path());
        let text = "# app\nexport DEBUG=true # dev\nJWT_SECRET='changeme'\nOTHER=1\n";
        std::fs::write(dir.path().join(".env"), text).expect("write");
        std::fs::set_permissions(
            dir.path().join(".env"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let meta = std::fs::metadata(dir.path()).expect("meta");
        let attrs = Attrs {
            mode: 0o600,
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let edits = [
            EnvEdit {
                key: "DEBUG".into(),
                value: EnvValue::Literal("false".into()),
            },
            EnvEdit {
                key: "JWT_SECRET".into(),
                value: EnvValue::Generate(Generate {
                    alphabet: Alphabet::Hex,
                    bytes: 32,
                }),
            },
        ];
        edit(&host, Path::new("/.env"), attrs, false, &edits).expect("edit");
        let after = std::fs::read_to_string(dir.path().join(".env")).expect("read");
        let doc = harden_dotenv::parse(&after).expect("parse");
        let secret = doc.get("JWT_SECRET").expect("set");
        assert_eq!(secret.len(), 64);
        assert_eq!(
            after,
            format!("# app\nexport DEBUG=false # dev\nJWT_SECRET='{secret}'\nOTHER=1\n")
        );
        let mode = std::fs::metadata(dir.path().join(".env"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o600);
    }

    #[test]
    fn a_missing_file_is_created_only_when_the_plan_says_so_and_errors_hide_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path());
        let meta = std::fs::metadata(dir.path()).expect("meta");
        let attrs = Attrs {
            mode: 0o600,
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let edits = [EnvEdit {
            key: "K".into(),
            value: EnvValue::Literal("v".into()),
        }];
        let err = edit(&host, Path::new("/new.env"), attrs, false, &edits).expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
        edit(&host, Path::new("/new.env"), attrs, true, &edits).expect("create");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new.env")).expect("read"),
            "K=v\n"
        );
        std::fs::write(dir.path().join("bad.env"), "A=1\nB='hunter2\n").expect("write");
        let err = edit(&host, Path::new("/bad.env"), attrs, false, &edits).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "/bad.env:2: the value's opening ' is never closed"
        );
    }
}
