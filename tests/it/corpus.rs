//! Every file of the real-world corpus (`fixtures/real/`, each with its repository, path and
//! commit in `SOURCES.tsv`) through the real binary, placed where its client reads it:
//!
//! - `arm` never panics. A refusal is exit 2, names the file, and leaves every byte as it was;
//!   one that says `--migrate` is retried with it. Whatever is still refused must be listed in
//!   `fixtures/real/REFUSED.tsv` with a needle its message contains and why a user would accept
//!   the refusal (and every listed file must still be refused: no stale entries).
//! - An accepted file: every file `arm` wrote parses in its format, the user's settings are all
//!   still there (what `--migrate` moves out of config.toml aside), a second `arm` changes
//!   nothing, and `disarm` gives back every byte (no file left behind, none missing).
//!
//! A table of outcomes goes to `<target dir>/corpus.txt`.

use crate::common::{mirrorctl, run, snapshot, Out, Workspace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MIRROR: &str = "http://127.0.0.1:5001";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real")
}

/// `(target, path under the root)` for a corpus kind; `None`: no target reads it.
fn place(kind: &str, name: &str, notes: &str) -> Option<(&'static str, String)> {
    let base = name.split_once('-').map(|(_, b)| b).unwrap_or(name);
    Some(match kind {
        "containerd-config" => ("containerd", "etc/containerd/config.toml".into()),
        "containerd-hosts" => (
            "containerd",
            "etc/containerd/certs.d/docker.io/hosts.toml".into(),
        ),
        "daemon-json" => ("docker", "etc/docker/daemon.json".into()),
        "buildkitd" => ("buildkit", "etc/buildkit/buildkitd.toml".into()),
        "registries-conf" if notes.contains("registries.conf.d") => (
            "registries",
            format!("etc/containers/registries.conf.d/{base}"),
        ),
        "registries-conf" => ("registries", "etc/containers/registries.conf".into()),
        "k3s-registries" => ("k3s", "etc/rancher/k3s/registries.yaml".into()),
        // HOME is /home/runner in `mc`, so Earthly's file is this one.
        "earthly" => ("earthly", "home/runner/.earthly/config.yml".into()),
        _ => return None,
    })
}

/// `mirrorctl` on the workspace with dockerd planned as 20.10 (the docker target's files do not
/// depend on the machine) and HOME pinned (Earthly's file is under it).
fn mc(ws: &Workspace, args: &[&str]) -> Out {
    let mut c = mirrorctl(ws);
    c.env("MIRRORCTL_DOCKERD_VERSION", "20.10")
        .env("HOME", "/home/runner")
        .args(args);
    run(&mut c)
}

fn panicked(o: &Out) -> bool {
    o.code() == Some(101) || o.stderr.contains("panicked at")
}

/// One `(path, value)` per leaf, array elements under `path[]`: what "the user's settings are
/// still there" compares (a multiset, so arm may add and reorder list entries).
fn leaves(path_name: &str, text: &str) -> Option<Vec<(String, String)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    if path_name.ends_with(".json") {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        json_leaves("", &v, &mut out);
    } else if path_name.ends_with(".yaml") || path_name.ends_with(".yml") {
        let docs = yaml_rust2::YamlLoader::load_from_str(text).ok()?;
        if let Some(d) = docs.first() {
            yaml_leaves("", d, &mut out);
        }
    } else {
        let doc: toml_edit::DocumentMut = text.parse().ok()?;
        toml_leaves("", doc.as_item(), &mut out);
    }
    Some(out)
}

fn json_leaves(p: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| json_leaves(&format!("{p}.{k}"), v, out)),
        serde_json::Value::Array(a) => a
            .iter()
            .for_each(|v| json_leaves(&format!("{p}[]"), v, out)),
        v => out.push((p.to_string(), v.to_string())),
    }
}

fn yaml_leaves(p: &str, v: &yaml_rust2::Yaml, out: &mut Vec<(String, String)>) {
    use yaml_rust2::Yaml;
    match v {
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            let k = k
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{k:?}"));
            yaml_leaves(&format!("{p}.{k}"), v, out)
        }),
        Yaml::Array(a) => a
            .iter()
            .for_each(|v| yaml_leaves(&format!("{p}[]"), v, out)),
        Yaml::Null => {}
        // Earthly's BuildKit config is a TOML document in a string: arm edits inside it, so
        // the user's settings are its leaves.
        Yaml::String(s) if p.ends_with(".buildkit_additional_config") => {
            match s.parse::<toml_edit::DocumentMut>() {
                Ok(doc) => toml_leaves(p, doc.as_item(), out),
                Err(_) => out.push((p.to_string(), s.clone())),
            }
        }
        v => out.push((p.to_string(), format!("{v:?}"))),
    }
}

fn toml_leaves(p: &str, item: &toml_edit::Item, out: &mut Vec<(String, String)>) {
    use toml_edit::{Item, Value};
    fn value(p: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Array(a) => a.iter().for_each(|v| value(&format!("{p}[]"), v, out)),
            Value::InlineTable(t) => t
                .iter()
                .for_each(|(k, v)| value(&format!("{p}.{k}"), v, out)),
            v => out.push((p.to_string(), v.clone().decorated("", "").to_string())),
        }
    }
    match item {
        Item::Table(t) => t
            .iter()
            .for_each(|(k, v)| toml_leaves(&format!("{p}.{k}"), v, out)),
        Item::ArrayOfTables(a) => a.iter().for_each(|t| {
            t.iter()
                .for_each(|(k, v)| toml_leaves(&format!("{p}[].{k}"), v, out))
        }),
        Item::Value(v) => value(p, v, out),
        Item::None => {}
    }
}

/// The user's leaves that the armed text lost (what `--migrate` moves aside).
fn lost(path_name: &str, before: &str, after: &str, migrated: bool) -> Vec<String> {
    let (Some(b), Some(a)) = (leaves(path_name, before), leaves(path_name, after)) else {
        return Vec::new();
    };
    let mut have: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for l in &a {
        *have.entry(l).or_default() += 1;
    }
    let moved = |p: &str| migrated && (p.contains(".registry.mirrors.") || p.contains(".tls."));
    let mut out = Vec::new();
    for l in &b {
        match have.get_mut(l) {
            Some(n) if *n > 0 => *n -= 1,
            _ if moved(&l.0) => {}
            // `config_path = ""` is containerd's "unset": arm replaces it with the hosts dir.
            _ if l.0.ends_with(".registry.config_path") && l.1 == "\"\"" => {}
            _ => out.push(format!("{} = {}", l.0, l.1)),
        }
    }
    out
}

/// `file → (needle, why)` from REFUSED.tsv.
fn accepted_refusals() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(corpus().join("REFUSED.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let file = f.next().unwrap_or_default().to_string();
            let needle = f.next().unwrap_or_default().to_string();
            let why = f.next().unwrap_or_default().to_string();
            (file, (needle, why))
        })
        .collect()
}

/// Arm (with `--migrate` when the refusal asks for it); `Err` is a refusal's message.
fn arm(ws: &Workspace, target: &str) -> Result<(Out, bool), Out> {
    let args = ["arm", "--target", target, "--mirror", MIRROR];
    let o = mc(ws, &args);
    assert!(!panicked(&o), "{o}");
    if o.ok() {
        return Ok((o, false));
    }
    if o.code() == Some(2) && o.stderr.contains("--migrate") {
        let m = mc(ws, &[&args[..], &["--migrate"]].concat());
        assert!(!panicked(&m), "{m}");
        return if m.ok() { Ok((m, true)) } else { Err(m) };
    }
    Err(o)
}

/// Check one corpus file; returns its outcome for the table, or a failure.
fn check(
    file: &str,
    notes: &str,
    refusals: &BTreeMap<String, (String, String)>,
) -> Result<String, String> {
    let (kind, name) = file.split_once('/').ok_or("bad row")?;
    let Some((target, rel)) = place(kind, name, notes) else {
        return Ok("not-a-target".into());
    };
    let bytes = std::fs::read(corpus().join(file)).map_err(|e| e.to_string())?;
    let ws = Workspace::new("corpus");
    let dest = ws.under_root(&rel);
    std::fs::create_dir_all(dest.parent().ok_or("no parent")?).map_err(|e| e.to_string())?;
    std::fs::write(&dest, &bytes).map_err(|e| e.to_string())?;
    // The whole root: Earthly's file is under home/, the rest under etc/.
    let etc = ws.root().to_path_buf();
    let before = snapshot(&etc);
    let (out, migrated) = match arm(&ws, target) {
        Err(o) => {
            if o.code() != Some(2) {
                return Err(format!("refused with exit {:?}, not 2:\n{o}", o.code()));
            }
            if snapshot(&etc) != before {
                return Err(format!("a refused arm changed files:\n{o}"));
            }
            if !o.stderr.contains(&rel) {
                return Err(format!("the refusal names no file:\n{o}"));
            }
            return match refusals.get(file) {
                Some((needle, _)) if o.stderr.contains(needle.as_str()) => {
                    Ok("refused (listed)".into())
                }
                Some((needle, _)) => Err(format!("refused, but not with `{needle}`:\n{o}")),
                None => Err(format!("refused and not in REFUSED.tsv:\n{o}")),
            };
        }
        Ok(x) => x,
    };
    if refusals.contains_key(file) {
        return Err(format!("listed in REFUSED.tsv but armed:\n{out}"));
    }
    let armed = snapshot(&etc);
    for (p, desc) in &armed {
        if before.get(p) == Some(desc) || !desc.starts_with("file") {
            continue;
        }
        let text =
            std::fs::read_to_string(etc.join(p)).map_err(|e| format!("{}: {e}", p.display()))?;
        let name = p.to_string_lossy();
        if leaves(&name, &text).is_none() {
            return Err(format!("arm wrote {name}, which does not parse:\n{text}"));
        }
    }
    if let (Ok(b), Ok(a)) = (
        String::from_utf8(bytes.clone()),
        std::fs::read_to_string(&dest),
    ) {
        let gone = lost(&rel, &b, &a, migrated);
        if !gone.is_empty() {
            return Err(format!("arm lost the user's settings: {gone:?}"));
        }
    }
    let mut again = vec!["arm", "--target", target, "--mirror", MIRROR, "--json"];
    if migrated {
        again.push("--migrate");
    }
    let o = mc(&ws, &again);
    if !o.ok() || snapshot(&etc) != armed || !o.stdout.contains("\"status\": \"unchanged\"") {
        return Err(format!("a second arm was not a no-op:\n{o}"));
    }
    let o = mc(&ws, &["disarm", "--target", target]);
    if !o.ok() || snapshot(&etc) != before {
        return Err(format!("disarm did not give every byte back:\n{o}"));
    }
    Ok(if migrated {
        "armed with --migrate"
    } else {
        "armed"
    }
    .into())
}

#[test]
fn every_real_world_file_is_armed_migrated_or_refused_for_a_reason() {
    let sources = std::fs::read_to_string(corpus().join("SOURCES.tsv")).unwrap();
    let refusals = accepted_refusals();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for row in sources.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (file, notes) = (cols[0], cols.get(4).copied().unwrap_or_default());
        seen.push(file.to_string());
        match check(file, notes, &refusals) {
            Ok(outcome) => table.push(format!("{file}\t{outcome}")),
            Err(why) => {
                table.push(format!("{file}\tFAILED"));
                failures.push(format!("{file}: {why}"));
            }
        }
    }
    for f in refusals.keys().filter(|f| !seen.contains(f)) {
        failures.push(format!(
            "REFUSED.tsv lists {f}, which is not in SOURCES.tsv"
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("corpus.txt"), table.join("\n") + "\n");
    assert!(
        seen.len() >= 100,
        "the corpus has only {} files",
        seen.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        seen.len(),
        failures.join("\n\n")
    );
}
