//! Configs that silently defeat the mirror, found on the root: what `arm` and `status` say in
//! one line each, with the fix. Read-only.
//!
//! - containerd: a version 1 config.toml whose CRI tables use the long plugin id (containerd
//!   1.x ignores them); a `config_path` list on containerd 2.1+ (its transfer service reads one
//!   directory: containerd#12415); a hosts.toml containerd cannot parse (it only logs the error
//!   and pulls without those hosts).
//! - dockerd: `registry-mirrors` entries dockerd's `ValidateMirror` rejects (daemon/config
//!   validation: dockerd refuses to start or reload with them).
//! - containers (podman, skopeo, buildah): a user's `~/.config/containers/registries.conf`,
//!   which containers/image reads *instead of* `/etc/containers/registries.conf` and the system
//!   drop-ins (`newConfigWrapperWithHomeDir` in `pkg/sysregistriesv2`).
//! - containers: a `[[registry]]` whose prefix is longer than a registry mirrorctl mirrors
//!   (`docker.io/library`): containers/image picks the longest matching prefix, so those images
//!   use that table, not the mirror.
//! - k3s: `registries.yaml` endpoints without a scheme; `rewrite` rules on an entry mirrorctl
//!   adds its mirror to (k3s applies them to every endpoint of that entry).

use crate::ctx::Ctx;
use crate::targets::containerd::{legacy::Facts, setup, version::ContainerdVersion};
use crate::targets::{self, TargetName};

/// The findings for one target (empty when its files are absent or fine).
pub fn for_target(ctx: &Ctx, t: TargetName, containerd: &ContainerdVersion) -> Vec<String> {
    match t {
        TargetName::Containerd => containerd_findings(ctx, containerd),
        TargetName::Docker => read(ctx, targets::DAEMON_JSON)
            .map(|text| daemon_json(&text))
            .unwrap_or_default(),
        TargetName::Registries => {
            let mut out = user_registries_conf(ctx);
            out.extend(longer_prefixes(ctx));
            out
        }
        TargetName::K3s => targets::k3s::files(&|p| ctx.root.exists(p))
            .iter()
            .filter_map(|p| read(ctx, p).map(|text| k3s_yaml(p, &text)))
            .flatten()
            .collect(),
        // (Earthly's and buildx's remarks come with their plans: `runner_notes`, `status`.)
        TargetName::Buildkit | TargetName::Earthly | TargetName::Buildx => Vec::new(),
    }
}

fn read(ctx: &Ctx, sys: &str) -> Option<String> {
    std::fs::read_to_string(ctx.resolve(sys).ok()?).ok()
}

fn containerd_findings(ctx: &Ctx, version: &ContainerdVersion) -> Vec<String> {
    let mut out = Vec::new();
    let facts = read(ctx, targets::CONTAINERD_CONFIG).and_then(|t| Facts::read(&t, false).ok());
    if let Some(f) = &facts {
        if f.ignored_long_tables {
            out.push(setup::ignored_long_tables_note());
        }
        let dirs = f.config_dirs();
        if dirs.len() > 1 && version.ignores_config_path_lists() {
            out.push(format!(
                "config.toml's config_path `{}` is a list: {} pulls for kubelet through its transfer service, which reads config_path as one directory, so every hosts.toml there is silently ignored (containerd#12415). Set it to one directory, e.g. `{}`",
                f.config_path.as_deref().unwrap_or_default(),
                version.describe,
                dirs.first().copied().unwrap_or(targets::CONTAINERD_CERTS_D)
            ));
        }
    }
    let dir = facts
        .as_ref()
        .and_then(|f| f.config_dirs().first().map(|d| d.to_string()))
        .unwrap_or_else(|| targets::CONTAINERD_CERTS_D.to_string());
    out.extend(broken_hosts_files(ctx, &dir));
    out
}

/// Every `<dir>/<registry>/hosts.toml` that does not parse.
fn broken_hosts_files(ctx: &Ctx, dir: &str) -> Vec<String> {
    let Ok(real) = ctx.resolve(dir) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&real) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = real.join(&name).join("hosts.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Err(e) = text.parse::<toml_edit::DocumentMut>() {
            let (line, col) = e
                .span()
                .map(|s| crate::error::line_col(&text, s.start))
                .unwrap_or((0, 0));
            out.push(format!(
                "{}:{line}:{col}: containerd cannot parse it ({}): it only logs that and pulls {name} without these hosts, so their mirrors are silently skipped; fix the file",
                path.display(),
                e.message().trim()
            ));
        }
    }
    out
}

/// `registry-mirrors` entries dockerd refuses (it then fails to start or to reload).
pub fn daemon_json(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let Some(list) = v.get("registry-mirrors").and_then(|m| m.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| {
            let s = m.as_str()?;
            let why = rejected_mirror(s)?;
            Some(format!("daemon.json's registry-mirrors entry `{s}`: {why}; dockerd refuses to start (or to reload) with it: write it as `https://host[:port]` or `http://host[:port]`"))
        })
        .collect()
}

/// Why dockerd's `ValidateMirror` rejects a mirror, if it does.
fn rejected_mirror(s: &str) -> Option<&'static str> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Some("it has no scheme");
    };
    if scheme != "http" && scheme != "https" {
        return Some("its scheme is not http or https");
    }
    if rest.contains(['?', '#']) {
        return Some("it has a query or fragment");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains('@') {
        return Some("it holds a user name or password");
    }
    match rest.get(host.len()..).unwrap_or_default() {
        "" | "/" => None,
        _ => Some("it has a path, which dockerd before 25 refuses and later versions put before /v2 (not a Harbor project path)"),
    }
}

/// Users whose own registries.conf makes podman/skopeo/buildah skip the system drop-ins.
fn user_registries_conf(ctx: &Ctx) -> Vec<String> {
    let mut homes = vec!["/root".to_string()];
    if let Ok(rd) = ctx.resolve("/home").and_then(|p| Ok(std::fs::read_dir(p)?)) {
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| format!("/home/{}", e.file_name().to_string_lossy()))
            .collect();
        names.sort();
        homes.extend(names);
    }
    homes
        .iter()
        .map(|h| format!("{h}/.config/containers/registries.conf"))
        .filter(|p| ctx.root.exists(p))
        .map(|p| format!("{p} exists: podman, skopeo and buildah run by that user read it instead of /etc/containers/registries.conf and ignore every system drop-in, mirrorctl's too. Add the mirror there or remove the file"))
        .collect()
}

/// `[[registry]]` tables in registries.conf and the other drop-ins whose prefix is under a
/// registry mirrorctl's drop-in mirrors.
fn longer_prefixes(ctx: &Ctx) -> Vec<String> {
    use targets::registries::{DROPIN_DIR, DROPIN_NAME, MAIN_CONF};
    let prefixes = |text: &str| -> Vec<String> {
        let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
            return Vec::new();
        };
        let Some(regs) = doc
            .get("registry")
            .and_then(toml_edit::Item::as_array_of_tables)
        else {
            return Vec::new();
        };
        regs.iter()
            .filter_map(|t| {
                t.get("prefix")
                    .or(t.get("location"))
                    .and_then(|v| v.as_str())
            })
            .map(str::to_string)
            .collect()
    };
    let Some(mine) = read(ctx, &format!("{DROPIN_DIR}/{DROPIN_NAME}")) else {
        return Vec::new();
    };
    let mirrored = prefixes(&mine);
    let mut files = vec![MAIN_CONF.to_string()];
    if let Ok(rd) = ctx
        .resolve(DROPIN_DIR)
        .and_then(|p| Ok(std::fs::read_dir(p)?))
    {
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".conf") && n != DROPIN_NAME)
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("{DROPIN_DIR}/{n}")));
    }
    let mut out = Vec::new();
    for f in files {
        let Some(text) = read(ctx, &f) else { continue };
        for p in prefixes(&text) {
            if let Some(reg) = mirrored.iter().find(|r| p.starts_with(&format!("{r}/"))) {
                out.push(format!("{f} has a [[registry]] with prefix \"{p}\": containers/image uses the longest matching prefix, so images under it skip the mirror of {reg}; give that table the mirror too, or remove it"));
            }
        }
    }
    out
}

/// k3s `mirrors.<registry>.endpoint` entries without a scheme, and `rewrite` rules next to a
/// mirror mirrorctl added.
pub fn k3s_yaml(path: &str, text: &str) -> Vec<String> {
    let Ok(docs) = yaml_rust2::YamlLoader::load_from_str(text) else {
        return Vec::new();
    };
    let Some(mirrors) = docs.first().and_then(|d| d["mirrors"].as_hash()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (reg, m) in mirrors {
        let rewrites = m["rewrite"].as_hash().is_some_and(|r| !r.is_empty());
        if rewrites && m["endpoint"].as_vec().is_some_and(|e| e.len() > 1) {
            out.push(format!(
                "{path}: `{}` has `rewrite` rules, which k3s applies to every endpoint of that entry, a mirror's too: the mirror gets the rewritten repository names; check that it serves them",
                reg.as_str().unwrap_or("?")
            ));
        }
        for e in m["endpoint"].as_vec().into_iter().flatten() {
            let Some(s) = e.as_str().filter(|s| !s.contains("://")) else {
                continue;
            };
            // k3s's `normalizeEndpointAddress`: `http://` only for localhost on a port
            // other than 443, `https://` for everything else.
            let host = s.split('/').next().unwrap_or_default();
            let odd_port = host.rsplit_once(':').is_some_and(|(_, p)| p != "443");
            if crate::targets::containerd::legacy::is_localhost(host) && odd_port {
                continue;
            }
            out.push(format!(
                "{path}: the endpoint `{s}` of `{}` has no scheme: k3s reads it as `https://{s}`, so a plain-HTTP mirror there is never reached; write `http://{s}` or `https://{s}`",
                reg.as_str().unwrap_or("?")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_dockerd_refuses() {
        let t = r#"{"registry-mirrors": ["https://m.example", "m.example:5000", "ftp://x", "https://u:p@m", "https://m/path", "https://m/"]}"#;
        let f = daemon_json(t);
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f[0].contains("m.example:5000") && f[0].contains("no scheme"));
        assert!(daemon_json("{").is_empty());
    }

    #[test]
    fn k3s_endpoints_without_scheme() {
        let t = "mirrors:\n  docker.io:\n    endpoint:\n      - \"mirror.example:5000\"\n      - \"https://ok.example\"\n";
        let f = k3s_yaml("/etc/rancher/k3s/registries.yaml", t);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("mirror.example:5000"));
        let t = "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5001\"\n      - \"https://harbor.example\"\n    rewrite:\n      \"^(.*)$\": \"proxy/$1\"\n";
        let f = k3s_yaml("/etc/rancher/k3s/registries.yaml", t);
        assert!(f.len() == 1 && f[0].contains("rewrite"), "{f:?}");
    }
}
