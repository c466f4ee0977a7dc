//! Which dockerd the `docker` target plans for.
//!
//! dockerd's `registry-mirrors` apply to docker.io only. dockerd 28 and later also read
//! containerd-format `hosts.toml` files from `/etc/docker/certs.d/<host>/` (for its containerd
//! image store and its built-in BuildKit; per pull, no restart), for any registry (Docker's
//! "Registry host configuration" docs; the first version is from the team's client research,
//! not checked against a real dockerd 28 here); so with dockerd ≥ 28 the `docker`
//! target mirrors other registries through `/etc/docker/certs.d/<host>/hosts.toml`, written by
//! the same planner as containerd's `certs.d`. Older dockerd skips them with a reason.
//!
//! The version comes from `--dockerd-version` / `MIRRORCTL_DOCKERD_VERSION` when given (tests,
//! or planning for another machine), else from the root's dockerd (`host::dockerd`); this
//! module only holds what the planner needs to know about a version.

/// Where dockerd ≥ 28 looks for `<host>/hosts.toml`.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";
/// The first dockerd major version that reads `DOCKER_CERTS_D/<host>/hosts.toml`.
pub const CERTS_D_SINCE: u32 = 28;

/// The first dockerd major version whose built-in BuildKit asks the daemon for registry hosts
/// on every resolve (moby#45992, in 25.0). Before it, BuildKit keeps the hosts computed when
/// dockerd started, so a SIGHUP reaches `docker pull` but not `docker build` (seen with 20.10
/// here: the `verify --client buildkit` tests). 25 and later are taken from the source, not
/// checked against a real dockerd here. Before 25 it also speaks plain HTTP to a mirror only
/// when `insecure-registries` lists it as `http://host:port`.
pub const BUILDKIT_LIVE_MIRRORS_SINCE: u32 = 25;

/// The dockerd version the docker target plans for, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerdVersion {
    /// `(major, minor)`, `None` when it could not be told.
    pub version: Option<(u32, u32)>,
    /// For messages: `dockerd 20.10 (from `dockerd --version`)`, or why it is unknown.
    pub describe: String,
}

impl DockerdVersion {
    /// A known version (for tests and callers that already know it).
    pub fn known(major: u32, minor: u32, source: &str) -> DockerdVersion {
        DockerdVersion {
            version: Some((major, minor)),
            describe: format!("dockerd {major}.{minor} (from {source})"),
        }
    }

    /// Does this dockerd read `/etc/docker/certs.d/<host>/hosts.toml`?
    pub fn reads_certs_d(&self) -> bool {
        self.version
            .is_some_and(|(major, _)| major >= CERTS_D_SINCE)
    }

    /// Why registries other than docker.io are skipped for dockerd (`others`: their names).
    pub fn skip_reason(&self, others: &[&str]) -> String {
        format!(
            "dockerd mirrors only docker.io (registry-mirrors) before version {CERTS_D_SINCE}, which adds {DOCKER_CERTS_D}/<host>/hosts.toml; {}: {} not configured for dockerd (use --dockerd-version if that is wrong)",
            self.describe,
            others.join(", ")
        )
    }
}

/// Parse `Docker version 20.10.24+dfsg1, build 297e128`, `28.0.1`, `v28.1`, `28` into
/// `(major, minor)` (minor 0 when absent).
pub fn parse(text: &str) -> Option<(u32, u32)> {
    let t = text.trim();
    let t = t.strip_prefix("Docker version").unwrap_or(t).trim_start();
    let word = t.split([',', ' ', '\t', '\n']).next()?;
    let word = word.strip_prefix('v').unwrap_or(word);
    let mut parts = word.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        None => 0,
        Some(m) => {
            let digits: String = m.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()?
        }
    };
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerd_version_lines_and_overrides() {
        for (text, want) in [
            (
                "Docker version 20.10.24+dfsg1, build 297e128\n",
                Some((20, 10)),
            ),
            ("Docker version 28.2.2, build e6534b4", Some((28, 2))),
            ("28.0.1", Some((28, 0))),
            ("v28.1", Some((28, 1))),
            ("28", Some((28, 0))),
            ("27.5.1-rc.1", Some((27, 5))),
            ("", None),
            ("latest", None),
            ("Docker version x.y", None),
        ] {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn only_28_and_later_read_certs_d() {
        assert!(!DockerdVersion::known(20, 10, "t").reads_certs_d());
        assert!(!DockerdVersion::known(27, 5, "t").reads_certs_d());
        assert!(DockerdVersion::known(28, 0, "t").reads_certs_d());
        assert!(DockerdVersion::known(29, 1, "t").reads_certs_d());
        let unknown = DockerdVersion {
            version: None,
            describe: "dockerd version unknown".into(),
        };
        assert!(!unknown.reads_certs_d());
        assert!(unknown.skip_reason(&["ghcr.io"]).contains("ghcr.io"));
    }
}
