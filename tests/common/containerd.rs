//! A private containerd 1.6 (every root/state/socket/opt path in a temp dir, CRI and the
//! snapshotters that need special filesystems disabled) and `ctr` against it.

use super::{guard, run_timeout, Daemon, Out};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Containerd {
    pub daemon: Daemon,
    /// The gRPC socket (`ctr --address`).
    pub socket: PathBuf,
}

/// Write `<hosts_dir>/docker.io/hosts.toml` by hand (not mirrorctl): pull and resolve through
/// `mirror_url`, Docker Hub as the server.
pub fn write_hosts_toml(hosts_dir: &Path, mirror_url: &str) {
    super::write_file(
        &hosts_dir.join("docker.io/hosts.toml"),
        &format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"{mirror_url}\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n"
        ),
    );
}

/// A node's containerd `config.toml` with its CRI plugin on (kubelet's image service), every
/// path under `dir`, and no registry settings: what `mirrorctl arm --target containerd` edits.
/// No CNI is configured (image pulls need none; the CRI plugin logs that and runs).
pub fn cri_config(dir: &Path) -> String {
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  disable_apparmor = true
  restrict_oom_score_adj = true
  disable_cgroup = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#,
        d = dir.display()
    )
}

impl Containerd {
    /// Start containerd as a node runs it, from `<root>/etc/containerd/config.toml` (e.g.
    /// [`cri_config`] after `mirrorctl arm`), in a private mount namespace where
    /// `<root>/etc/containerd` is `/etc/containerd`: the config's `config_path =
    /// "/etc/containerd/certs.d"` reads the root's certs.d, as on the node. Its socket must be
    /// `<dir>/c.sock`. Needs `/etc/containerd` to exist on this machine (the mount point).
    pub fn start_from_root(root: &Path, dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("c.sock");
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -n --bind \"$1\" /etc/containerd && exec containerd --config /etc/containerd/config.toml")
            .arg("sh")
            .arg(root.join("etc/containerd"));
        guard(&mut cmd);
        let mut daemon = Daemon::spawn("containerd-cri", cmd, dir);
        let s = socket.clone();
        daemon
            .wait_ready("socket accepts", Duration::from_secs(30), |_| {
                UnixStream::connect(&s).is_ok()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Containerd { daemon, socket }
    }

    /// Start it with everything under `dir`; waits until the socket accepts connections.
    pub fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("c.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
            d = dir.display()
        );
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&cfg);
        guard(&mut cmd);
        let mut daemon = Daemon::spawn("containerd", cmd, dir);
        let s = socket.clone();
        daemon
            .wait_ready("socket accepts", Duration::from_secs(30), |_| {
                UnixStream::connect(&s).is_ok()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Containerd { daemon, socket }
    }

    /// `ctr --address <socket>` with the proxy guard; add ctr's args.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(&self.socket);
        guard(&mut c);
        c
    }

    /// `ctr images pull --hosts-dir <hosts_dir> --snapshotter native [extra…] <reference>`.
    pub fn pull(&self, hosts_dir: &Path, reference: &str, extra: &[&str]) -> Out {
        let mut c = self.ctr();
        c.args(["images", "pull", "--hosts-dir"]).arg(hosts_dir);
        c.args(["--snapshotter", "native"])
            .args(extra)
            .arg(reference);
        run_timeout(&mut c, Duration::from_secs(120))
    }

    /// `ctr images rm --sync <reference>` (ignores "not found").
    pub fn remove(&self, reference: &str) -> Out {
        let mut c = self.ctr();
        c.args(["images", "rm", "--sync", reference]);
        run_timeout(&mut c, Duration::from_secs(60))
    }

    /// `ctr images ls name==<reference>`: the image's line names its digest.
    pub fn image_ls(&self, reference: &str) -> Out {
        let mut c = self.ctr();
        c.args(["images", "ls"]).arg(format!("name=={reference}"));
        run_timeout(&mut c, Duration::from_secs(60))
    }
}
