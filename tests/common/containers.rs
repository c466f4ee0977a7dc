//! podman and skopeo as registries.conf clients, seeing `<root>/etc/containers` as their
//! `/etc/containers` (so `registries.conf` and `registries.conf.d/` drop-ins written by
//! `mirrorctl --root <root>` are read exactly as on a real host).
//!
//! Each command runs in a private mount namespace: `<root>/etc/containers` bound on
//! `/etc/containers`, tmpfs on `/run` and `/var/lib` (as root, podman and skopeo always write
//! `/var/lib/containers/cache` and podman `/run/containers`, `/run/netns`, `/run/runc`). Storage,
//! run root, temp dir, HOME, containers.conf, storage.conf and the signature policy are private
//! files in `aux`. The proxy guard is set; DOCKER_CONFIG is removed (podman fails when it points
//! at a dir without config.json).

use super::{guard, run_timeout, Out};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A registries.conf `[[registry]]` table by hand (not mirrorctl): docker.io through the
/// plain-HTTP mirror at `mirror_host` (`host:port`).
pub fn mirror_table(mirror_host: &str) -> String {
    format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n\
         [[registry.mirror]]\nlocation = \"{mirror_host}\"\ninsecure = true\n"
    )
}

pub struct ContainersEnv {
    /// `<root>/etc/containers` (created if missing; the host's `/etc/containers` must exist, as
    /// it does once skopeo/podman are installed).
    pub etc: PathBuf,
    pub aux: PathBuf,
}

impl ContainersEnv {
    pub fn new(root: &Path, aux: &Path) -> ContainersEnv {
        let etc = root.join("etc/containers");
        std::fs::create_dir_all(&etc).unwrap();
        for d in ["storage", "runroot", "tmp", "home"] {
            std::fs::create_dir_all(aux.join(d)).unwrap();
        }
        std::fs::write(
            aux.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        std::fs::write(
            aux.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\n\
             [engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        std::fs::write(
            aux.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                aux.join("runroot").display(),
                aux.join("storage").display()
            ),
        )
        .unwrap();
        ContainersEnv {
            etc,
            aux: aux.to_path_buf(),
        }
    }

    /// Write `<root>/etc/containers/registries.conf` by hand: short names resolve on docker.io,
    /// which goes through the mirror at `mirror_host` ([`mirror_table`]).
    pub fn use_mirror(&self, mirror_host: &str) {
        std::fs::write(
            self.etc.join("registries.conf"),
            format!(
                "unqualified-search-registries = [\"docker.io\"]\n{}",
                mirror_table(mirror_host)
            ),
        )
        .unwrap();
    }

    /// `program` (podman or skopeo) inside the private namespace; add its args.
    fn ns(&self, program: &str) -> Command {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "set -e; mount -n --bind \"$1\" /etc/containers; mount -n -t tmpfs tmpfs /run; \
                 mount -n -t tmpfs tmpfs /var/lib; shift; exec \"$@\"",
            )
            .arg("sh")
            .arg(&self.etc)
            .arg(program);
        c.env("TMPDIR", self.aux.join("tmp"))
            .env("HOME", self.aux.join("home"))
            .env("CONTAINERS_CONF", self.aux.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.aux.join("storage.conf"))
            .env_remove("DOCKER_CONFIG")
            .env_remove("CONTAINERS_REGISTRIES_CONF")
            .env_remove("REGISTRY_AUTH_FILE");
        guard(&mut c);
        c
    }

    /// `podman --root … --runroot … --storage-driver vfs …`; add podman's args.
    pub fn podman(&self) -> Command {
        let mut c = self.ns("podman");
        c.arg("--root")
            .arg(self.aux.join("storage"))
            .arg("--runroot")
            .arg(self.aux.join("runroot"))
            .arg("--tmpdir")
            .arg(self.aux.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"]);
        c
    }

    /// `podman pull [extra…] <reference>`.
    pub fn podman_pull(&self, reference: &str, extra: &[&str]) -> Out {
        let mut c = self.podman();
        c.arg("pull")
            .arg("--signature-policy")
            .arg(self.aux.join("policy.json"))
            .args(extra)
            .arg(reference);
        run_timeout(&mut c, Duration::from_secs(120))
    }

    /// `skopeo --policy <private>`; add skopeo's args.
    pub fn skopeo(&self) -> Command {
        let mut c = self.ns("skopeo");
        c.arg("--policy").arg(self.aux.join("policy.json"));
        c
    }

    /// `skopeo copy [extra…] docker://<reference> dir:<aux>/copy-<n>` (a real pull through
    /// registries.conf: manifest and every blob).
    pub fn skopeo_pull(&self, reference: &str, extra: &[&str]) -> Out {
        let dest = self.aux.join("tmp").join(format!(
            "copy-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut c = self.skopeo();
        c.args(["copy", "--quiet"])
            .args(extra)
            .arg(format!("docker://{reference}"))
            .arg(format!("dir:{}", dest.display()));
        run_timeout(&mut c, Duration::from_secs(120))
    }

    /// `buildah --root … --runroot … --storage-driver vfs`; add buildah's args.
    pub fn buildah(&self) -> Command {
        let mut c = self.ns("buildah");
        c.arg("--root")
            .arg(self.aux.join("storage"))
            .arg("--runroot")
            .arg(self.aux.join("runroot"))
            .args(["--storage-driver", "vfs"]);
        c
    }

    /// `buildah pull [extra…] <reference>`.
    pub fn buildah_pull(&self, reference: &str, extra: &[&str]) -> Out {
        let mut c = self.buildah();
        c.arg("pull")
            .arg("--signature-policy")
            .arg(self.aux.join("policy.json"))
            .args(extra)
            .arg(reference);
        run_timeout(&mut c, Duration::from_secs(120))
    }
}
