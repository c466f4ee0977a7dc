//! Seeds: every config file under `fixtures/<target>/<case>/{before,after}/` (real-world and
//! hand-made files, and what `arm` made of them), sorted by the planner that reads them, plus
//! the mirror sets the fixtures' `args` name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Default)]
pub struct Seeds {
    pub docker: Vec<String>,
    pub buildkit: Vec<String>,
    /// `(registry, hosts.toml text)`, the registry from the `certs.d/<registry>/` directory.
    pub hosts: Vec<(String, String)>,
    pub containerd_config: Vec<String>,
    /// `registries.conf` and drop-ins (as the current drop-in and as context).
    pub registries: Vec<String>,
    pub k3s: Vec<String>,
    /// Earthly's `config.yml` (fixtures under `<home>/.earthly/`).
    pub earthly: Vec<String>,
    /// `(--mirror values, --insecure)` of every fixture.
    pub mirror_args: Vec<(Vec<String>, bool)>,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

pub fn get() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(load)
}

fn load() -> Seeds {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut s = Seeds::default();
    for p in all {
        let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        if rel.ends_with("/args") {
            let text = std::fs::read_to_string(&p).unwrap();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            let mut mirrors = Vec::new();
            let mut insecure = false;
            let mut i = 0;
            while i < lines.len() {
                match lines[i] {
                    "--mirror" if i + 1 < lines.len() => {
                        mirrors.push(lines[i + 1].to_string());
                        i += 1;
                    }
                    "--insecure" => insecure = true,
                    _ => {}
                }
                i += 1;
            }
            if !mirrors.is_empty() {
                s.mirror_args.push((mirrors, insecure));
            }
            continue;
        }
        // <target>/<case>/{before,after}/<system path>
        let parts: Vec<&str> = rel.splitn(4, '/').collect();
        if parts.len() < 4 || !matches!(parts[2], "before" | "after") {
            continue;
        }
        let sys = format!("/{}", parts[3]);
        let Ok(text) = String::from_utf8(std::fs::read(&p).unwrap()) else {
            continue;
        };
        if sys.contains("/.earthly/") {
            s.earthly.push(text);
        } else if sys.ends_with("/daemon.json") {
            s.docker.push(text);
        } else if sys.ends_with("/buildkitd.toml") || sys.ends_with("/buildkitd.default.toml") {
            s.buildkit.push(text);
        } else if sys.ends_with("/hosts.toml") {
            let reg = sys.rsplit('/').nth(1).unwrap_or("docker.io").to_string();
            s.hosts.push((reg, text));
        } else if sys.ends_with("/containerd/config.toml") {
            s.containerd_config.push(text);
        } else if sys.starts_with("/etc/containers/registries.conf") {
            s.registries.push(text);
        } else if sys.ends_with(".yaml") {
            s.k3s.push(text);
        }
    }
    for v in [
        &mut s.docker,
        &mut s.buildkit,
        &mut s.containerd_config,
        &mut s.registries,
        &mut s.k3s,
        &mut s.earthly,
    ] {
        v.sort();
        v.dedup();
    }
    s.hosts.sort();
    s.hosts.dedup();
    assert!(
        !s.docker.is_empty() && !s.buildkit.is_empty() && !s.k3s.is_empty(),
        "fixtures not found under {}",
        root.display()
    );
    s
}
