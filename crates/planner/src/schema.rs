//! JSON Schema of the playbook format (the `schema` feature, for `harden schema`).
//!
//! The section types derive their schema beside their `Deserialize` derive; a type whose
//! deserializer is written by hand states what that deserializer accepts with [`literal!`],
//! next to it. A scalar that YAML may read as a number or a boolean (`0640`, `no`) is
//! accepted as the loader accepts it, so the schema never rejects what the loader takes.

/// Implements `schemars::JsonSchema` for `$ty` as the JSON Schema literal `$json`.
macro_rules! literal {
    ($ty:ty, $json:tt) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($json)
            }
        }
    };
}
pub(crate) use literal;

/// A pattern matching exactly one of `words`, in any case, without the `(?i)` flag that
/// ECMA-262 regular expressions (those of editors' JSON Schema validators) lack.
pub(crate) fn any_case(words: &[&str]) -> String {
    let words: Vec<String> = words
        .iter()
        .map(|word| {
            word.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else if c.is_ascii_alphanumeric() {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?:{})$", words.join("|"))
}
