//! Values that remember where in which playbook they were written.

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Deserializer};

thread_local! {
    /// Index of the playbook being parsed on this thread; read by [`Located`]'s deserializer.
    static SOURCE: Cell<u32> = const { Cell::new(0) };
}

/// Runs `parse` with `source` recorded as the playbook every [`Located`] comes from.
pub(crate) fn with_source<T>(source: u32, parse: impl FnOnce() -> T) -> T {
    let previous = SOURCE.with(|s| s.replace(source));
    let result = parse();
    SOURCE.with(|s| s.set(previous));
    result
}

/// A place in a playbook: which one (index into the loaded sources), line and column (1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct At {
    /// Index of the playbook among the loaded ones.
    pub source: u32,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

/// A playbook value with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub at: At,
}

impl<T> Located<T> {
    /// A value with no real place (built-in defaults).
    pub fn unplaced(value: T) -> Self {
        Located {
            value,
            at: At::default(),
        }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Located<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let place = spanned.referenced;
        Ok(Located {
            value: spanned.value,
            at: At {
                source: SOURCE.with(Cell::get),
                line: u32::try_from(place.line()).unwrap_or(u32::MAX),
                column: u32::try_from(place.column()).unwrap_or(u32::MAX),
            },
        })
    }
}

/// A located value is written as the value itself: its schema is `T`'s.
#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
