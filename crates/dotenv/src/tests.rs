//! The reader and the editor: what they read, and that every byte they do not edit stays.

use super::*;

const SAMPLE: &str = "# server-monitor backend\n\
\n\
export NODE_ENV=production\n\
DEBUG = true   # set false in production\n\
JWT_SECRET='changeme'\n\
ENCRYPTION_KEY=\"short\\\"key\" # quoted\r\n\
EMPTY=\n\
COMMENTED=   # nothing yet\n\
MULTI=\"line one\n\
line two\"\n\
URL=postgres://u:p@db:5432/app?sslmode=require#frag\n\
   INDENTED=yes";

#[test]
fn values_are_read_as_applications_read_them() {
    let doc = parse(SAMPLE).expect("parse");
    assert_eq!(doc.get("NODE_ENV"), Some("production"));
    assert_eq!(doc.get("DEBUG"), Some("true"));
    assert_eq!(doc.get("JWT_SECRET"), Some("changeme"));
    assert_eq!(doc.get("ENCRYPTION_KEY"), Some("short\"key"));
    assert_eq!(doc.get("EMPTY"), Some(""));
    assert_eq!(doc.get("COMMENTED"), Some(""));
    assert_eq!(doc.get("MULTI"), Some("line one\nline two"));
    assert_eq!(
        doc.get("URL"),
        Some("postgres://u:p@db:5432/app?sslmode=require#frag")
    );
    assert_eq!(doc.get("INDENTED"), Some("yes"));
    assert_eq!(doc.get("MISSING"), None);
    assert_eq!(doc.keys().len(), 9);
}

#[test]
fn an_unedited_document_renders_byte_for_byte() {
    for text in [
        SAMPLE,
        "",
        "\n",
        "A=1",
        "A=1\r\nB=2\r\n",
        "# only\n#comments",
    ] {
        assert_eq!(parse(text).expect("parse").render(), text);
    }
}

#[test]
fn set_rewrites_only_the_value_keeping_export_quotes_and_comments() {
    let mut doc = parse(SAMPLE).expect("parse");
    doc.set("DEBUG", "false");
    doc.set("JWT_SECRET", "0123abcd");
    doc.set("ENCRYPTION_KEY", "new-key");
    doc.set("NODE_ENV", "staging");
    doc.set("COMMENTED", "filled");
    doc.set("MULTI", "one line");
    let text = doc.render();
    let want = SAMPLE
        .replace("DEBUG = true   #", "DEBUG = false   #")
        .replace("JWT_SECRET='changeme'", "JWT_SECRET='0123abcd'")
        .replace("\"short\\\"key\" # quoted\r\n", "\"new-key\" # quoted\r\n")
        .replace("NODE_ENV=production", "NODE_ENV=staging")
        .replace("COMMENTED=   #", "COMMENTED=filled   #")
        .replace("\"line one\nline two\"", "\"one line\"");
    assert_eq!(text, want);
    let again = parse(&text).expect("reparse");
    assert_eq!(again.get("COMMENTED"), Some("filled"));
    assert_eq!(again.get("URL"), doc.get("URL"));
}

#[test]
fn a_missing_key_is_appended_in_the_file_s_style() {
    let mut doc = parse("A=1").expect("parse");
    doc.set("B", "two words");
    assert_eq!(doc.render(), "A=1\nB='two words'\n");
    let mut doc = parse("export A=1\r\n").expect("parse");
    doc.set("B", "x");
    assert_eq!(doc.render(), "export A=1\r\nexport B=x\r\n");
    let mut doc = parse("").expect("parse");
    doc.set("KEY", "v");
    assert_eq!(doc.render(), "KEY=v\n");
}

#[test]
fn every_assignment_of_a_repeated_key_is_set() {
    let mut doc = parse("K=a\nX=1\nK=b\n").expect("parse");
    assert_eq!(doc.values("K"), vec!["a", "b"]);
    doc.set("K", "c");
    assert_eq!(doc.render(), "K=c\nX=1\nK=c\n");
}

#[test]
fn values_that_need_quotes_get_the_simplest_that_reads_back() {
    for (value, style, written) in [
        ("abc123", Quote::None, "abc123"),
        ("", Quote::None, ""),
        ("a b", Quote::None, "'a b'"),
        ("$HOME", Quote::None, "'$HOME'"),
        ("it's", Quote::None, "\"it's\""),
        ("it's", Quote::Single, "\"it's\""),
        ("plain", Quote::Double, "\"plain\""),
        ("a\\b\"c\nd", Quote::Double, "\"a\\\\b\\\"c\\nd\""),
    ] {
        assert_eq!(render_value(value, style), written, "{value:?}");
        let doc = parse(&format!("K={written}\n")).expect("parse");
        assert_eq!(doc.get("K"), Some(value), "{written}");
    }
}

#[test]
fn errors_name_the_line_and_never_its_text() {
    for (text, line) in [
        ("A=1\nthis is not an assignment hunter2\n", 2),
        ("A=1\nB='hunter2\n", 2),
        ("A=\"hunter2\" trailing\n", 1),
        ("A=1\n\nB \"hunter2\"\n", 3),
        ("1ABC=hunter2\n", 1),
        ("A=1\nhunter2\n", 2),
        ("A=1\nB='x' hunter2\n", 2),
    ] {
        let err = parse(text).expect_err(text);
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn debug_output_shows_keys_not_values() {
    let doc = parse("JWT_SECRET=hunter2\n").expect("parse");
    let shown = format!("{doc:?}");
    assert!(
        shown.contains("JWT_SECRET") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn portable_keys() {
    assert!(is_portable_key("JWT_SECRET"));
    assert!(is_portable_key("_A1"));
    assert!(!is_portable_key("1A"));
    assert!(!is_portable_key("A-B"));
    assert!(!is_portable_key(""));
}

mod proptests {
    use super::super::*;
    use proptest::prelude::*;

    /// Lines of the kinds real files have, values drawn from a wide alphabet.
    fn line() -> impl Strategy<Value = String> {
        let value = "[ -~]{0,12}";
        prop_oneof![
            Just(String::new()),
            "# [ -~]{0,20}".prop_map(|c| c),
            ("[A-Z_]{1,6}", "[a-zA-Z0-9_./:@-]{0,12}").prop_map(|(k, v)| format!("{k}={v}")),
            ("[A-Z_]{1,6}", "[a-zA-Z0-9 ]{0,12}").prop_map(|(k, v)| format!("export {k}='{v}'")),
            ("[A-Z_]{1,6}", value)
                .prop_map(|(k, v)| format!("{k} = {}  # note", render_value(&v, Quote::Double))),
        ]
    }

    proptest! {
        #[test]
        fn parse_render_is_the_identity_and_set_changes_only_its_key(
            lines in proptest::collection::vec(line(), 0..12),
            crlf in any::<bool>(),
            key in "[A-Z_]{1,6}",
            value in "[ -~]{0,16}",
        ) {
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            let doc = parse(&text).expect("generated lines parse");
            prop_assert_eq!(doc.render(), text.clone());
            let mut edited = doc.clone();
            edited.set(&key, &value);
            let back = parse(&edited.render()).expect("an edited document parses");
            prop_assert_eq!(back.values(&key).into_iter().collect::<std::collections::BTreeSet<_>>(),
                std::iter::once(value.as_str()).collect());
            for other in doc.keys().into_iter().filter(|k| *k != key) {
                prop_assert_eq!(back.values(other), doc.values(other));
            }
        }
    }
}
