//! `ufw`: skeleton, replaced by the resource's implementation.

use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::resource::{Context, Diff, Failure, Resource};

/// The `ufw:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ufw {}

impl Resource for Ufw {
    type Live = ();
    const NAME: &'static str = "ufw";

    fn merge(&mut self, _later: Self) {}

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
