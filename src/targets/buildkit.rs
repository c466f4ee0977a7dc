//! BuildKit's `/etc/buildkit/buildkitd.toml`.

use super::Planned;
use crate::error::PlanError;
use crate::mirror::MirrorSet;

/// Plan buildkitd.toml for `set`.
pub fn plan(
    _current: Option<&str>,
    _set: &MirrorSet,
    _prev: &[String],
) -> Result<Planned, PlanError> {
    Err(PlanError::whole("buildkit target not implemented yet"))
}
