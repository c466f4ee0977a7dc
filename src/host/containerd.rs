//! containerd: where its API socket is. One rule for every caller (`verify --client
//! containerd` passes it to `ctr --address`): `CONTAINERD_ADDRESS` when set (as `ctr` does),
//! else the socket under `--root` (`<root>/run/containerd/containerd.sock`).

use crate::fsutil::Root;
use crate::targets::containerd::version::{self, ContainerdVersion};
use std::path::{Path, PathBuf};

/// containerd's default gRPC socket.
pub const SOCKET: &str = "/run/containerd/containerd.sock";

/// `CONTAINERD_ADDRESS` when set, else `<root>/run/containerd/containerd.sock`.
pub fn address(root: &Root) -> PathBuf {
    address_from(root, std::env::var("CONTAINERD_ADDRESS").ok().as_deref())
}

fn address_from(root: &Root, env: Option<&str>) -> PathBuf {
    match env.map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => PathBuf::from(a.strip_prefix("unix://").unwrap_or(a)),
        None => root.resolve(SOCKET).unwrap_or_else(|_| root.join(SOCKET)),
    }
}

/// Where distributions install the containerd binary.
pub const BINARIES: [&str; 3] = [
    "/usr/bin/containerd",
    "/usr/local/bin/containerd",
    "/usr/sbin/containerd",
];

/// The containerd version the containerd target plans for: the given one (`--containerd-version`
/// or `MIRRORCTL_CONTAINERD_VERSION`; no binary is run), else `--version` of the containerd
/// installed under the root (on the real root also the one on `PATH`). A bad given version is
/// a usage error; a containerd that cannot be asked gives an unknown version.
pub fn planned_version(
    root: &Root,
    given: Option<(&str, &str)>,
) -> Result<ContainerdVersion, crate::error::UserError> {
    if let Some((v, source)) = given {
        let parsed = version::parse(v).ok_or_else(|| {
            crate::error::UserError(format!(
                "{source} `{v}` is not a version like 1.7.27 or 2.1"
            ))
        })?;
        return Ok(ContainerdVersion::known(parsed, source));
    }
    let mut candidates: Vec<PathBuf> = BINARIES
        .iter()
        .filter_map(|b| root.resolve(b).ok())
        .filter(|p| p.is_file())
        .collect();
    if root.is_real() && candidates.is_empty() {
        candidates.push(PathBuf::from("containerd"));
    }
    let Some(binary) = candidates.first() else {
        return Ok(ContainerdVersion::unknown(&format!(
            "no containerd binary under `{}`",
            root.path().display()
        )));
    };
    Ok(match version_of(binary) {
        Ok(v) => ContainerdVersion::known(v, &format!("`{} --version`", binary.display())),
        Err(why) => ContainerdVersion::unknown(&why),
    })
}

/// `<binary> --version` under the deadline, parsed.
fn version_of(binary: &Path) -> Result<(u32, u32, u32), String> {
    super::binary_version(binary, version::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_rule() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        assert_eq!(
            address_from(&root, None),
            t.path().join("run/containerd/containerd.sock")
        );
        assert_eq!(
            address_from(&root, Some("/x/c.sock")),
            PathBuf::from("/x/c.sock")
        );
        assert_eq!(
            address_from(&Root::system(), Some("unix:///x/c.sock")),
            PathBuf::from("/x/c.sock")
        );
        let system = Root::system();
        assert_eq!(address_from(&system, None), system.resolve(SOCKET).unwrap());
    }
}
