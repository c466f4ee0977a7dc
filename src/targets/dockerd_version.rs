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
//! or planning for another machine), else from `dockerd --version`.

use crate::error::UserError;
use std::process::{Command, Stdio};

/// Where dockerd ≥ 28 looks for `<host>/hosts.toml`.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";
/// The first dockerd major version that reads `DOCKER_CERTS_D/<host>/hosts.toml`.
pub const CERTS_D_SINCE: u32 = 28;

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

/// The version from `override_` (`--dockerd-version` / `MIRRORCTL_DOCKERD_VERSION`), else
/// from `dockerd --version`. A bad override is a usage error; a dockerd that cannot be asked
/// gives an unknown version (treated as older than 28).
pub fn detect(override_: Option<&str>) -> Result<DockerdVersion, UserError> {
    if let Some(v) = override_ {
        let (major, minor) = parse(v).ok_or_else(|| {
            UserError(format!(
                "--dockerd-version / MIRRORCTL_DOCKERD_VERSION `{v}` is not a version like 28.0.1 or 20.10"
            ))
        })?;
        return Ok(DockerdVersion::known(major, minor, "--dockerd-version"));
    }
    let out = Command::new("dockerd")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    Ok(match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            match parse(&text) {
                Some((major, minor)) => DockerdVersion::known(major, minor, "`dockerd --version`"),
                None => DockerdVersion {
                    version: None,
                    describe: format!(
                        "dockerd version unknown (`dockerd --version` printed `{}`)",
                        text.trim()
                    ),
                },
            }
        }
        Ok(o) => DockerdVersion {
            version: None,
            describe: format!(
                "dockerd version unknown (`dockerd --version` exited {})",
                o.status
            ),
        },
        Err(e) => DockerdVersion {
            version: None,
            describe: format!("dockerd version unknown (cannot run `dockerd --version`: {e})"),
        },
    })
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

    #[test]
    fn override_wins_and_bad_override_is_a_usage_error() {
        let v = detect(Some("28.0.1")).unwrap();
        assert_eq!(v.version, Some((28, 0)));
        assert!(v.describe.contains("--dockerd-version"), "{}", v.describe);
        assert!(detect(Some("new")).is_err());
    }
}
