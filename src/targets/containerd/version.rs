//! Which containerd the `containerd` target plans for, and what that version reads.
//!
//! Facts from containerd's source (the tags named):
//! - `_default` in a hosts directory (the hosts of every registry without a directory of its
//!   own) is read since v1.7.0 (`remotes/docker/config/hosts.go`, f0bf9e7f8); 1.6 ignores it.
//! - `dial_timeout` per host is read since v2.1.0 and v2.0.7 (c4982bffc, backported as
//!   b50cbbc98). 1.6 and 1.7 decode hosts.toml leniently and ignore it; a bad value makes
//!   newer ones fail every pull of that registry, so it is written only for a version known to
//!   read it.
//! - Since v2.1.0 the CRI plugin pulls through the transfer service, which takes `config_path`
//!   as one directory: a `:`-separated list is looked up as one literal path and its hosts.toml
//!   files are silently ignored (containerd#12415, spegel#1272; not fixed up to v2.3.4).
//!
//! The version comes from `--containerd-version` / `MIRRORCTL_CONTAINERD_VERSION` when given,
//! else from `containerd --version` of the root's binary (`host::containerd`).

/// A containerd version: `(major, minor, patch)`, `None` when it could not be told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerdVersion {
    pub version: Option<(u32, u32, u32)>,
    /// For messages: `containerd 1.6.20 (from `containerd --version`)`, or why it is unknown.
    pub describe: String,
}

impl ContainerdVersion {
    pub fn known(v: (u32, u32, u32), source: &str) -> ContainerdVersion {
        ContainerdVersion {
            version: Some(v),
            describe: format!("containerd {}.{}.{} (from {source})", v.0, v.1, v.2),
        }
    }

    pub fn unknown(why: &str) -> ContainerdVersion {
        ContainerdVersion {
            version: None,
            describe: format!("containerd version unknown ({why})"),
        }
    }

    fn at_least(&self, want: (u32, u32, u32)) -> bool {
        self.version.is_some_and(|v| v >= want)
    }

    /// Does it read `dial_timeout` in hosts.toml? (2.1+, and 2.0.7+ of the 2.0 line.)
    pub fn reads_dial_timeout(&self) -> bool {
        match self.version {
            Some((2, 0, patch)) => patch >= 7,
            Some(_) => self.at_least((2, 1, 0)),
            None => false,
        }
    }

    /// Does it read `<hosts dir>/_default/hosts.toml`? Unknown versions are taken to (every
    /// supported containerd but 1.6 does).
    pub fn reads_default_dir(&self) -> bool {
        self.version.is_none_or(|v| v >= (1, 7, 0))
    }

    /// Does its CRI plugin ignore a `:`-separated `config_path` (the transfer service)?
    pub fn ignores_config_path_lists(&self) -> bool {
        self.at_least((2, 1, 0))
    }
}

/// Parse what `containerd --version` prints (`containerd github.com/containerd/containerd
/// 1.6.20~ds1 1.6.20~ds1-1+deb12u3`, `containerd containerd.io 1.7.27 05044ec…`,
/// `containerd github.com/containerd/containerd/v2 v2.1.0 …`) or a bare `2.1`, `v2.0.7`.
pub fn parse(text: &str) -> Option<(u32, u32, u32)> {
    text.split_whitespace().find_map(parse_word)
}

fn parse_word(word: &str) -> Option<(u32, u32, u32)> {
    let w = word.strip_prefix('v').unwrap_or(word);
    let mut parts = w.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = leading_number(parts.next()?)?;
    let patch = match parts.next() {
        None => 0,
        Some(p) => leading_number(p)?,
    };
    Some((major, minor, patch))
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_containerd_prints() {
        let debian = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3";
        assert_eq!(parse(debian), Some((1, 6, 20)));
        assert_eq!(
            parse("containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da"),
            Some((1, 7, 27))
        );
        assert_eq!(
            parse("containerd github.com/containerd/containerd/v2 v2.1.0 abc"),
            Some((2, 1, 0))
        );
        assert_eq!(parse("2.1"), Some((2, 1, 0)));
        assert_eq!(parse("v2.0.7"), Some((2, 0, 7)));
        assert_eq!(parse("containerd"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn what_each_version_reads() {
        let v = |t| ContainerdVersion::known(t, "test");
        assert!(!v((1, 7, 30)).reads_dial_timeout());
        assert!(!v((2, 0, 6)).reads_dial_timeout());
        assert!(v((2, 0, 7)).reads_dial_timeout());
        assert!(v((2, 1, 0)).reads_dial_timeout());
        assert!(!ContainerdVersion::unknown("x").reads_dial_timeout());
        assert!(!v((1, 6, 20)).reads_default_dir());
        assert!(v((1, 7, 0)).reads_default_dir());
        assert!(ContainerdVersion::unknown("x").reads_default_dir());
        assert!(!v((2, 0, 9)).ignores_config_path_lists());
        assert!(v((2, 1, 0)).ignores_config_path_lists());
    }
}
