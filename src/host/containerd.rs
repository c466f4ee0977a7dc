//! containerd: where its API socket is. One rule for every caller (`verify --client
//! containerd` passes it to `ctr --address`): `CONTAINERD_ADDRESS` when set (as `ctr` does),
//! else the socket under `--root` (`<root>/run/containerd/containerd.sock`).

use crate::fsutil::Root;
use std::path::PathBuf;

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
