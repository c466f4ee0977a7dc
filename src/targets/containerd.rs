//! containerd: `certs.d/<registry>/hosts.toml` and `config.toml` `config_path`.

use super::Planned;
use crate::error::PlanError;
use crate::mirror::Mirror;

/// The certs.d directory name for a registry (`host:port` kept as is).
pub fn host_dir_name(registry: &str) -> String {
    registry.to_string()
}

/// Plan `certs.d/<registry>/hosts.toml`.
pub fn plan_hosts(
    _current: Option<&str>,
    _registry: &str,
    _mirrors: &[Mirror],
    _insecure: bool,
    _prev: &[String],
) -> Result<Planned, PlanError> {
    Err(PlanError::whole("containerd target not implemented yet"))
}

/// Plan `config.toml` so the CRI registry's `config_path` covers `certs_dir`.
pub fn plan_config(
    _current: Option<&str>,
    _certs_dir: &str,
    _want: bool,
    _prev: &[String],
) -> Result<Planned, PlanError> {
    Err(PlanError::whole("containerd target not implemented yet"))
}
