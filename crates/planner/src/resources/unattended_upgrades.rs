//! `unattended_upgrades`: skeleton, replaced by the resource's implementation.

use serde::Deserialize;

use crate::diagnostic::Invalid;
use crate::resource::{Context, Diff, Failure, Resource};

/// The `unattended_upgrades:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnattendedUpgrades {}

impl Resource for UnattendedUpgrades {
    type Live = ();
    const NAME: &'static str = "unattended_upgrades";

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
