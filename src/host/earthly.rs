//! Earthly on the machine `--root` describes: where its config is (Earthly's own rule), and
//! whether its `earthly-buildkitd` container was started with the config's current
//! `buildkit_additional_config` (asked through the docker CLI, under a deadline).

use super::users::{self, Located};
use super::CHILD_TIMEOUT;
use crate::fsutil::Root;
use crate::process;
use crate::targets::earthly::{self, Facts};
use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// Earthly's home: the `SUDO_USER`'s (when that user's home is a directory this process can
/// write), else `HOME`, else the current user's, else `/etc` — `util/fileutil/homedir.go`.
pub fn home(root: &Root) -> (String, String) {
    if let Ok(u) = std::env::var("SUDO_USER") {
        if let Some(h) = users::passwd_home(root, Some(&u), None) {
            if users::writable_dir(root, &h) {
                return (h, format!("the home of SUDO_USER `{u}`"));
            }
        }
    }
    if let Some(h) = users::env_home() {
        return (h, "$HOME".into());
    }
    if let Some(h) = users::own_home(root) {
        return (h, "the current user's home".into());
    }
    (
        "/etc".into(),
        "no home found: Earthly falls back to /etc".into(),
    )
}

/// The config Earthly reads: `--earthly-config`, else `EARTHLY_CONFIG`, else
/// `<home>/.earthly/config.yml` (`config.yaml` when only that one exists).
pub fn config_path(root: &Root, flag: Option<&Path>) -> Located {
    if let Some(p) = flag {
        return Located {
            path: users::absolute(p),
            how: "--earthly-config".into(),
            explicit: true,
        };
    }
    if let Some(p) = users::env_path("EARTHLY_CONFIG") {
        return Located {
            path: p,
            how: "EARTHLY_CONFIG".into(),
            explicit: true,
        };
    }
    let (h, how) = home(root);
    let dir = format!("{}/{}", h.trim_end_matches('/'), earthly::DIR);
    let new = format!("{dir}/{}", earthly::CONFIG);
    let old = format!("{dir}/{}", earthly::LEGACY_CONFIG);
    let path = if !root.exists(&new) && root.exists(&old) {
        old
    } else {
        new
    };
    Located {
        path,
        how,
        explicit: false,
    }
}

/// Earthly is there when its config or its `~/.earthly` directory exists (or the config was
/// named explicitly).
pub fn detected(root: &Root, loc: &Located) -> bool {
    loc.explicit
        || root.exists(&loc.path)
        || Path::new(&loc.path)
            .parent()
            .is_some_and(|d| root.exists(&d.display().to_string()))
}

/// Whether the running `earthly-buildkitd` has the config's current settings.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerCheck {
    pub name: &'static str,
    /// docker could be asked.
    pub checked: bool,
    /// The container runs with the file's current `buildkit_additional_config`; `null`: not
    /// known (not checked, not running, or Earthly does not manage a container).
    pub current: Option<bool>,
    pub detail: String,
}

/// Ask docker about `earthly-buildkitd` and compare its `EARTHLY_ADDITIONAL_BUILDKIT_CONFIG`
/// with the config's string. docker missing or unreachable is "not checked", not an error.
pub fn container(root: &Root, facts: &Facts) -> ContainerCheck {
    let mut out = ContainerCheck {
        name: earthly::CONTAINER,
        checked: false,
        current: None,
        detail: String::new(),
    };
    if let Some(h) = facts.remote_buildkit() {
        out.detail = format!(
            "buildkit_host is `{h}`: Earthly starts no buildkitd for a remote host, so buildkit_additional_config has no effect there (configure that buildkitd where it runs)"
        );
        return out;
    }
    let endpoint = super::dockerd::endpoint(root);
    if !endpoint.present() {
        out.detail = format!(
            "could not check {}: dockerd's socket `{endpoint}` is not there",
            earthly::CONTAINER
        );
        return out;
    }
    let mut c = Command::new("docker");
    c.args(["-H", &endpoint.host_arg(), "inspect", earthly::CONTAINER]);
    let done = match process::run(c, None, CHILD_TIMEOUT) {
        Ok(d) => d,
        Err(e) => {
            out.detail = format!("could not check {}: {e}", earthly::CONTAINER);
            return out;
        }
    };
    if !done.status.success() {
        let why = done.last_line();
        if why.contains("No such") {
            out.checked = true;
            out.detail = format!(
                "{} does not exist: Earthly starts it with the current settings on its next run",
                earthly::CONTAINER
            );
        } else {
            out.detail = format!("could not check {}: {why}", earthly::CONTAINER);
        }
        return out;
    }
    out.checked = true;
    compare(&done.stdout, facts, &mut out);
    out
}

/// Compare `docker inspect`'s output with the config's string.
fn compare(inspect: &str, facts: &Facts, out: &mut ContainerCheck) {
    let v: serde_json::Value = serde_json::from_str(inspect).unwrap_or_default();
    let c = v.get(0).unwrap_or(&serde_json::Value::Null);
    let env_prefix = format!("{}=", earthly::CONFIG_ENV);
    let running: Option<String> = c
        .pointer("/Config/Env")
        .and_then(|e| e.as_array())
        .and_then(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .find_map(|x| x.strip_prefix(&env_prefix).map(str::to_string))
        });
    let hash = c
        .pointer(&format!(
            "/Config/Labels/{}",
            earthly::HASH_LABEL.replace('/', "~1")
        ))
        .and_then(|h| h.as_str())
        .unwrap_or("none");
    let want = facts.additional_config.clone().filter(|s| !s.is_empty());
    let same = running == want;
    out.current = Some(same);
    out.detail = if same {
        format!(
            "{} runs with the current buildkit_additional_config (its {} label: {hash})",
            earthly::CONTAINER,
            earthly::HASH_LABEL
        )
    } else {
        format!(
            "{} was started with other settings: Earthly restarts it on its next run, when its {} label ({hash}) no longer matches (unless run with --no-buildkit-update / EARTHLY_NO_BUILDKIT_UPDATE)",
            earthly::CONTAINER,
            earthly::HASH_LABEL
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_string_is_compared_exactly() {
        let inspect = r#"[{"Config":{"Env":["PATH=/bin","EARTHLY_ADDITIONAL_BUILDKIT_CONFIG=[registry.\"docker.io\"]\n  mirrors = [\"m:5000\"]\n"],"Labels":{"dev.earthly.settingshash":"abc"}}}]"#;
        let mut facts = Facts {
            additional_config: Some("[registry.\"docker.io\"]\n  mirrors = [\"m:5000\"]\n".into()),
            buildkit_host: None,
        };
        let mut out = ContainerCheck {
            name: earthly::CONTAINER,
            checked: true,
            current: None,
            detail: String::new(),
        };
        compare(inspect, &facts, &mut out);
        assert_eq!(out.current, Some(true), "{}", out.detail);
        assert!(out.detail.contains("abc"));
        facts.additional_config = Some("[registry.\"docker.io\"]\n".into());
        compare(inspect, &facts, &mut out);
        assert_eq!(out.current, Some(false));
        assert!(out.detail.contains("restarts it on its next run"));
    }

    #[test]
    fn a_remote_buildkit_is_not_checked() {
        let t = tempfile::tempdir().unwrap();
        let facts = Facts {
            additional_config: None,
            buildkit_host: Some("tcp://buildkit.lan:8372".into()),
        };
        let c = container(&Root::new(t.path()), &facts);
        assert!(!c.checked);
        assert!(c.detail.contains("remote host"), "{}", c.detail);
    }
}
