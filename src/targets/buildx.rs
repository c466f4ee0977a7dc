//! docker buildx: the default BuildKit config new builders get, and the builders that already
//! exist.
//!
//! `docker buildx create` (≥ 0.9) without `--buildkitd-config` uses
//! `<buildx dir>/buildkitd.default.toml`, where the buildx dir is `$BUILDX_CONFIG`, else
//! `${DOCKER_CONFIG:-~/.docker}/buildx`. The file is a buildkitd.toml: it is armed by the same
//! planner as the `buildkit` target. A builder copies the config into its record (its node's
//! `Files`, under `<buildx dir>/instances/<name>`) when it is **created**, and the
//! `docker-container` and `kubernetes` drivers hand that copy to their buildkitd; editing the
//! file changes nothing for a builder that exists. So each record is read here, and a
//! builder whose stored config does not route the wanted registries to the mirrors must be
//! re-created (`docker buildx rm --keep-state NAME`, then `docker buildx create` with the same
//! name, driver, nodes, endpoints, platforms, driver options and buildkitd flags). The `docker`
//! driver uses dockerd's own configuration (the `docker` target).

use super::buildkit;
use crate::mirror::MirrorSet;
use base64::Engine;
use serde_json::Value;

/// The file `create` uses when no config is given.
pub const DEFAULT_TOML: &str = "buildkitd.default.toml";
/// The directory of builder records under the buildx dir.
pub const INSTANCES: &str = "instances";
/// The buildx version whose `create` reads [`DEFAULT_TOML`]; and the one that renamed
/// `--config` to `--buildkitd-config` (keeping `--config` as a hidden alias).
pub const DEFAULT_TOML_SINCE: (u32, u32) = (0, 9);
pub const BUILDKITD_CONFIG_FLAG_SINCE: (u32, u32) = (0, 13);

/// One node of a builder, as its record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub endpoint: String,
    /// `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// Sorted by key (Go writes a map so).
    pub driver_opts: Vec<(String, String)>,
    /// buildkitd's flags (the record's `Flags`).
    pub flags: Vec<String>,
    /// The stored `buildkitd.toml`, if the builder was created with a config.
    pub config: Option<String>,
    /// Other stored files (certificates the config names).
    pub other_files: Vec<String>,
}

/// A builder record (`store.NodeGroup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    pub name: String,
    pub driver: String,
    pub nodes: Vec<Node>,
    pub dynamic: bool,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Parse a record (`instances/<name>`): JSON as buildx's store writes it.
pub fn parse_record(text: &str) -> Result<Builder, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("not a buildx builder record: {e}"))?;
    if !v.is_object() {
        return Err("not a buildx builder record: not a JSON object".into());
    }
    let mut nodes = Vec::new();
    for n in v
        .get("Nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        nodes.push(parse_node(n)?);
    }
    let name = field(&v, "Name").to_string();
    if name.is_empty() {
        return Err("not a buildx builder record: no `Name`".into());
    }
    Ok(Builder {
        name,
        driver: field(&v, "Driver").to_string(),
        nodes,
        dynamic: v.get("Dynamic").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn parse_node(n: &Value) -> Result<Node, String> {
    let platforms = n
        .get("Platforms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let mut s = format!("{}/{}", field(p, "os"), field(p, "architecture"));
            if !field(p, "variant").is_empty() {
                s = format!("{s}/{}", field(p, "variant"));
            }
            s
        })
        .collect();
    let mut driver_opts: Vec<(String, String)> = n
        .get("DriverOpts")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    driver_opts.sort();
    let mut config = None;
    let mut other_files = Vec::new();
    for (k, v) in n
        .get("Files")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .map_err(|e| format!("node file `{k}` is not base64: {e}"))?;
        if k == "buildkitd.toml" {
            config = Some(
                String::from_utf8(bytes).map_err(|_| "the stored buildkitd.toml is not UTF-8")?,
            );
        } else {
            other_files.push(k.clone());
        }
    }
    other_files.sort();
    Ok(Node {
        name: field(n, "Name").to_string(),
        endpoint: field(n, "Endpoint").to_string(),
        platforms,
        driver_opts,
        flags: strings(n.get("Flags")),
        config,
        other_files,
    })
}

/// What arming means for one builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Every node's stored config already routes the registries to the mirrors (or, disarmed,
    /// holds none of mirrorctl's entries).
    Current,
    /// It must be re-created for the change to reach it.
    Stale {
        /// The nodes' configs to create them with (armed or disarmed), in node order.
        configs: Vec<String>,
    },
    /// Its buildkitd is not configured by this file: why.
    NotCovered(String),
    /// It must be re-created, but mirrorctl will not do it: why.
    Manual(String),
}

/// Whether `b` must be re-created for `set` (empty: disarmed, with `owned` the entries
/// mirrorctl wrote in the default file), and with which configs.
pub fn state(b: &Builder, set: &MirrorSet, owned: &[String]) -> State {
    match b.driver.as_str() {
        "docker-container" | "kubernetes" => {}
        "docker" => {
            return State::NotCovered(
                "the docker driver uses dockerd's own configuration (the `docker` target)".into(),
            )
        }
        "remote" => {
            return State::NotCovered(
                "the remote driver's buildkitd reads its own buildkitd.toml where it runs (the `buildkit` target there)".into(),
            )
        }
        other => return State::NotCovered(format!("driver `{other}` is not one buildx hands a config to")),
    }
    if b.dynamic {
        return State::Manual("a dynamic node group cannot be re-created".into());
    }
    let mut configs = Vec::new();
    let mut stale = false;
    for n in &b.nodes {
        let cur = n.config.as_deref();
        let planned = match buildkit::plan(cur, set, owned) {
            Ok(p) => p.text,
            Err(e) => {
                return State::Manual(format!(
                    "node `{}`'s stored buildkitd.toml cannot be planned ({e})",
                    n.name
                ))
            }
        };
        // (buildx stores the config re-marshalled: compared as data, not bytes.)
        let same = match cur {
            Some(c) => c == planned || same_data(c, &planned),
            None => planned.trim().is_empty(),
        };
        if !same {
            stale = true;
            if !n.other_files.is_empty() {
                return State::Manual(format!(
                    "node `{}` was created with a config naming certificate files ({}); re-create it with `docker buildx create --buildkitd-config <your file>`",
                    n.name,
                    n.other_files.join(", ")
                ));
            }
        }
        configs.push(planned);
    }
    if stale {
        State::Stale { configs }
    } else {
        State::Current
    }
}

/// After a disarm of the default file (`armed`: its text before, `restored`: after, `None`:
/// deleted): a builder is stale when a node's stored config is the armed file (the same data),
/// and is re-created with the restored one; its other nodes keep their stored configs.
pub fn state_disarmed(b: &Builder, armed: &str, restored: Option<&str>) -> State {
    if !matches!(b.driver.as_str(), "docker-container" | "kubernetes") || b.dynamic {
        return State::Current;
    }
    let mut stale = false;
    let mut configs = Vec::new();
    for n in &b.nodes {
        let from_ours = n.config.as_deref().is_some_and(|c| same_data(c, armed));
        stale |= from_ours;
        configs.push(match (from_ours, &n.config) {
            (true, _) => restored.unwrap_or("").to_string(),
            (false, c) => c.clone().unwrap_or_default(),
        });
        if from_ours && !n.other_files.is_empty() {
            return State::Manual(format!(
                "node `{}` keeps certificate files of its config ({})",
                n.name,
                n.other_files.join(", ")
            ));
        }
    }
    if stale {
        State::Stale { configs }
    } else {
        State::Current
    }
}

/// Whether two TOML texts hold the same data (buildx stores the config re-marshalled).
pub fn same_data(a: &str, b: &str) -> bool {
    fn item(i: &toml_edit::Item) -> Value {
        match i {
            toml_edit::Item::Value(v) => value(v),
            toml_edit::Item::Table(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.to_string(), item(v))).collect())
            }
            toml_edit::Item::ArrayOfTables(a) => Value::Array(
                a.iter()
                    .map(|t| item(&toml_edit::Item::Table(t.clone())))
                    .collect(),
            ),
            toml_edit::Item::None => Value::Null,
        }
    }
    fn value(v: &toml_edit::Value) -> Value {
        match v {
            toml_edit::Value::String(s) => Value::String(s.value().clone()),
            toml_edit::Value::Integer(i) => Value::from(*i.value()),
            toml_edit::Value::Float(f) => Value::String(f.value().to_string()),
            toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
            toml_edit::Value::Datetime(d) => Value::String(d.value().to_string()),
            toml_edit::Value::Array(a) => Value::Array(a.iter().map(value).collect()),
            toml_edit::Value::InlineTable(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.to_string(), value(v))).collect())
            }
        }
    }
    let parse = |t: &str| {
        t.trim_start_matches('\u{feff}')
            .parse::<toml_edit::DocumentMut>()
            .ok()
            .map(|d| item(d.as_item()))
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `docker buildx` argument lists that re-create `b` with its nodes' configs in `files` (paths
/// on this machine, in node order): `rm --keep-state`, then one `create` per node (`--append`
/// after the first). `version`: the buildx version, for the config flag's name.
pub fn recreate_commands(
    b: &Builder,
    files: &[String],
    version: Option<(u32, u32)>,
) -> Vec<Vec<String>> {
    let config_flag = match version {
        Some(v) if v < BUILDKITD_CONFIG_FLAG_SINCE => "--config",
        _ => "--buildkitd-config",
    };
    let mut out = vec![vec![
        "rm".to_string(),
        "--keep-state".to_string(),
        b.name.clone(),
    ]];
    for (i, n) in b.nodes.iter().enumerate() {
        let mut c: Vec<String> = vec!["create".into(), "--name".into(), b.name.clone()];
        if i > 0 {
            c.push("--append".into());
        }
        c.extend(["--driver".into(), b.driver.clone()]);
        if !n.name.is_empty() {
            c.extend(["--node".into(), n.name.clone()]);
        }
        if !n.platforms.is_empty() {
            c.extend(["--platform".into(), n.platforms.join(",")]);
        }
        for (k, v) in &n.driver_opts {
            c.extend(["--driver-opt".into(), format!("{k}={v}")]);
        }
        if !n.flags.is_empty() {
            let joined: Vec<String> = n.flags.iter().map(|f| shell_quote(f)).collect();
            c.extend(["--buildkitd-flags".into(), joined.join(" ")]);
        }
        if let Some(f) = files.get(i) {
            c.extend([config_flag.into(), f.clone()]);
        }
        if b.driver != "kubernetes" && !n.endpoint.is_empty() {
            c.push(n.endpoint.clone());
        }
        out.push(c);
    }
    out
}

/// One argument quoted for the shell-like split buildx applies to `--buildkitd-flags`.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@+%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The `KUBECONFIG` a kubernetes node's endpoint was created with (it is part of the
/// endpoint's query), for re-creating it the same way.
pub fn kubeconfig(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let v = url.query_pairs().find(|(k, _)| k == "kubeconfig")?.1;
    (!v.is_empty()).then(|| v.into_owned())
}

/// `major.minor` from `docker buildx version` (`github.com/docker/buildx v0.10.5 86bdced`).
pub fn parse_version(out: &str) -> Option<(u32, u32)> {
    let v = out.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut it = v.split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str]) -> MirrorSet {
        let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        MirrorSet::from_args(&v, "docker.io", false).unwrap()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn record(driver: &str, config: Option<&str>) -> String {
        let files = match config {
            Some(c) => format!("{{\"buildkitd.toml\":\"{}\"}}", b64(c)),
            None => "null".into(),
        };
        format!(
            "{{\"Name\":\"ci\",\"Driver\":\"{driver}\",\"Nodes\":[{{\"Name\":\"ci0\",\"Endpoint\":\"unix:///var/run/docker.sock\",\"Platforms\":[{{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}],\"DriverOpts\":{{\"network\":\"host\",\"image\":\"moby/buildkit:v0.12\"}},\"Flags\":[\"--debug\",\"--allow-insecure-entitlement=network.host\"],\"Files\":{files}}}],\"Dynamic\":false}}"
        )
    }

    #[test]
    fn records_parse_as_buildx_writes_them() {
        let b = parse_record(&record("docker-container", Some("debug = true\n"))).unwrap();
        assert_eq!(b.name, "ci");
        let n = &b.nodes[0];
        assert_eq!(n.platforms, vec!["linux/arm64/v8"]);
        assert_eq!(
            n.driver_opts,
            vec![
                ("image".to_string(), "moby/buildkit:v0.12".to_string()),
                ("network".to_string(), "host".to_string())
            ]
        );
        assert_eq!(n.config.as_deref(), Some("debug = true\n"));
        assert!(parse_record("[]").is_err());
        assert!(parse_record("{\"Name\":\"x\",\"Nodes\":[{\"Files\":{\"a\":\"!\"}}]}").is_err());
    }

    #[test]
    fn a_builder_without_the_mirror_is_stale_and_recreated_the_same_way() {
        let s = set(&["http://127.0.0.1:5001"]);
        let b = parse_record(&record("docker-container", None)).unwrap();
        let State::Stale { configs } = state(&b, &s, &[]) else {
            panic!("{:?}", state(&b, &s, &[]))
        };
        assert!(configs[0].contains("mirrors = [\"127.0.0.1:5001\"]"));
        let cmds = recreate_commands(&b, &["/tmp/c.toml".into()], Some((0, 10)));
        assert_eq!(cmds[0], vec!["rm", "--keep-state", "ci"]);
        assert_eq!(
            cmds[1].join(" "),
            "create --name ci --driver docker-container --node ci0 --platform linux/arm64/v8 --driver-opt image=moby/buildkit:v0.12 --driver-opt network=host --buildkitd-flags --debug --allow-insecure-entitlement=network.host --config /tmp/c.toml unix:///var/run/docker.sock"
        );
        let cmds = recreate_commands(&b, &["/tmp/c.toml".into()], None);
        assert!(cmds[1].contains(&"--buildkitd-config".to_string()));
        // Armed: current.
        let b = parse_record(&record("docker-container", Some(&configs[0]))).unwrap();
        assert_eq!(state(&b, &s, &[]), State::Current);
        let b = parse_record(&record("docker", None)).unwrap();
        assert!(matches!(state(&b, &s, &[]), State::NotCovered(_)));
    }

    #[test]
    fn configs_are_compared_as_data_and_disarm_finds_the_builders_made_from_the_armed_file() {
        // buildx stores the config re-marshalled by go-toml v2 (literal strings, no indent).
        let armed = "debug = true\n\n[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.1:5001\"]\n";
        let stored =
            "debug = true\n\n[registry]\n[registry.'docker.io']\nmirrors = ['127.0.0.1:5001']\n";
        assert!(same_data(armed, stored));
        assert!(!same_data(armed, "debug = true\n"));
        let b = parse_record(&record("docker-container", Some(stored))).unwrap();
        let s = set(&["http://127.0.0.1:5001"]);
        assert!(
            matches!(state(&b, &s, &[]), State::Stale { .. }),
            "http = true is missing"
        );
        let State::Stale { configs } = state_disarmed(&b, armed, Some("debug = true\n")) else {
            panic!()
        };
        assert_eq!(configs, vec!["debug = true\n".to_string()]);
        let other = parse_record(&record("docker-container", Some("x = 1\n"))).unwrap();
        assert_eq!(state_disarmed(&other, armed, None), State::Current);
    }

    #[test]
    fn quoting_and_versions() {
        assert_eq!(shell_quote("--debug"), "--debug");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            parse_version("github.com/docker/buildx v0.10.5 86bdced"),
            Some((0, 10))
        );
        assert_eq!(
            parse_version("github.com/docker/buildx v0.29.1-desktop.1 abc"),
            Some((0, 29))
        );
        assert_eq!(parse_version("nope"), None);
        assert_eq!(
            kubeconfig("kubernetes:///ci?deployment=ci0&kubeconfig=%2Fk%2Fconfig").as_deref(),
            Some("/k/config")
        );
    }
}
