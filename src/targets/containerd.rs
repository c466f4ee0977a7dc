//! containerd: `/etc/containerd/certs.d/<registry>/hosts.toml` and the CRI registry's
//! `config_path` in `/etc/containerd/config.toml`.
//!
//! ```toml
//! server = "https://registry-1.docker.io"
//!
//! [host."http://mirror.example:5000"]
//!   capabilities = ["pull", "resolve"]
//! ```
//!
//! containerd tries the `[host."…"]` entries in file order, then `server`, so mirrorctl's hosts
//! are placed first, in the given order; the user's hosts stay after them. hosts.toml is read on
//! every pull (no restart); config.toml only at start.

use super::text::{reframe, unframe};
use super::toml_util;
use super::Planned;
use crate::error::PlanError;
use crate::mirror::Mirror;
use toml_edit::{DocumentMut, Item, Table, TableLike};

/// The certs.d directory for a registry. containerd 1.6 and 2.x look up `host_port_` first and
/// then `host:port` (`hostDirectory` / `hostPaths` in `remotes/docker/config/hosts.go`); the
/// documented spelling `host:port` works for both, so that is what mirrorctl writes.
pub fn host_dir_name(registry: &str) -> String {
    registry.to_string()
}

/// A host key normalised: a key without scheme means https; lower-case; no trailing slash.
fn norm_host(key: &str) -> String {
    let k = key.trim().trim_end_matches('/');
    let with_scheme = if k.contains("://") {
        k.to_string()
    } else {
        format!("https://{k}")
    };
    Mirror::parse_lenient(&with_scheme)
        .map(|m| m.url())
        .unwrap_or_else(|| with_scheme.to_ascii_lowercase())
}

/// Plan `certs.d/<registry>/hosts.toml`; with no mirrors, remove what mirrorctl owns.
pub fn plan_hosts(
    current: Option<&str>,
    registry: &str,
    mirrors: &[Mirror],
    insecure: bool,
    prev: &[String],
) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let (framing, body) = unframe(original);
    let mut doc = toml_util::parse(original, framing, &body)?;
    let mut owned = Vec::new();
    let want: Vec<String> = mirrors.iter().map(Mirror::url).collect();
    let tok = |u: &str| format!("host:{u}");

    if let Some(item) = doc.get("host") {
        if !item.is_table_like() {
            return Err(toml_util::error_at(
                original,
                framing,
                toml_util::key_offset(&body, "host"),
                "`host` must be a table of `[host.\"<url>\"]` entries",
            ));
        }
        // containerd decodes every entry under `host` as a host's table (and fails on, say,
        // `[host]\nlocation = 1`): refuse what it would refuse, rather than arm around it.
        let bad = item.as_table_like().and_then(|h| {
            h.iter()
                .find(|(_, v)| !v.is_table_like())
                .map(|(k, _)| k.to_string())
        });
        if let Some(k) = bad {
            return Err(toml_util::error_at(
                original,
                framing,
                toml_util::key_offset(&body, &k),
                format!("`host.{k}` must be a `[host.\"<url>\"]` table: containerd reads every entry under `host` as a host"),
            ));
        }
    }
    if let Some(item) = doc.get("server") {
        if item.as_str().is_none() {
            return Err(toml_util::error_at(
                original,
                framing,
                toml_util::key_offset(&body, "server"),
                "`server` must be a string URL",
            ));
        }
    }

    // 1. Drop mirrorctl's hosts that are no longer wanted, and `server` if it added it.
    let want_norm: Vec<String> = want.iter().map(|w| norm_host(w)).collect();
    if let Some(hosts) = doc.get_mut("host").and_then(Item::as_table_like_mut) {
        let stale: Vec<String> = hosts
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| {
                let n = norm_host(k);
                !want_norm.contains(&n) && prev.contains(&tok(&n))
            })
            .collect();
        for k in stale {
            hosts.remove(&k);
        }
    }
    if want.is_empty() && prev.iter().any(|t| t == "server") {
        doc.remove("server");
    }
    // Only the implicit `host` table that `[host."…"]` headers make: an empty `[host]` the user
    // wrote stays.
    if doc
        .get("host")
        .and_then(Item::as_table)
        .is_some_and(|h| h.is_empty() && h.is_implicit())
        && want.is_empty()
    {
        doc.remove("host");
    }
    if want.is_empty() {
        return Ok(Planned {
            text: reframe(framing, &toml_util::render_edit(&body, &doc, false)),
            owned,
        });
    }

    // 2. `server` first, then mirrorctl's hosts in order before the user's.
    if doc.get("server").is_none() {
        // The keys go back with their decor (an indented `  capabilities = …` stays indented).
        let mut entries: Vec<(toml_edit::Key, Item)> = Vec::new();
        let keys: Vec<String> = doc.iter().map(|(k, _)| k.to_string()).collect();
        for k in keys {
            if let Some(e) = doc.remove_entry(&k) {
                entries.push(e);
            }
        }
        doc.insert(
            "server",
            toml_edit::value(crate::oci::upstream_endpoint(registry)),
        );
        for (k, v) in entries {
            doc.insert_formatted(&k, v);
        }
        owned.push("server".to_string());
    } else if prev.iter().any(|t| t == "server") {
        owned.push("server".to_string());
    }
    if doc.get("host").is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("host", Item::Table(t));
    }
    let indent = toml_util::key_indent(&body);
    let hosts = doc
        .get_mut("host")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| PlanError::whole("`host` must be written as `[host.\"<url>\"]` tables"))?;
    let existing: Vec<String> = hosts.iter().map(|(k, _)| k.to_string()).collect();
    for (i, m) in mirrors.iter().enumerate() {
        let url = m.url();
        let n = norm_host(&url);
        let present = existing.iter().any(|k| norm_host(k) == n);
        if !present {
            let mut t = Table::new();
            let mut caps = toml_edit::Array::new();
            caps.push("pull");
            caps.push("resolve");
            t.insert("capabilities", toml_edit::value(caps));
            if !m.is_http() && insecure {
                t.insert("skip_verify", toml_edit::value(true));
            }
            toml_util::indent_keys(&mut t, &indent);
            hosts.insert(&want[i], Item::Table(t));
            owned.push(tok(&n));
        } else if prev.contains(&tok(&n)) {
            owned.push(tok(&n));
        }
    }
    order_hosts(&mut doc, &want_norm);
    let text = toml_util::render_edit(&body, &doc, current.is_none_or(|c| c.trim().is_empty()));
    Ok(Planned {
        text: reframe(framing, &text),
        owned,
    })
}

/// Give header tables document positions so mirrorctl's hosts come first (in `want` order,
/// each with its sub-tables), before the first table of any other host. Only those tables
/// move: every other table keeps its place, so the user's layout (a host's sub-table written
/// after another host, say) is not regrouped, and removing mirrorctl's hosts again gives it
/// back.
fn order_hosts(doc: &mut DocumentMut, want: &[String]) {
    /// Room between two tables of the original file for the ones moved in between.
    const GAP: isize = 1 << 20;
    /// Room for one moved host's sub-tables.
    const HOST: isize = 1 << 10;
    fn scale(t: &mut Table) {
        if let Some(p) = t.position() {
            t.set_position(Some(p * GAP));
        }
        for (_, v) in t.iter_mut() {
            match v {
                Item::Table(st) => scale(st),
                Item::ArrayOfTables(a) => a.iter_mut().for_each(scale),
                _ => {}
            }
        }
    }
    /// The positions of a table and its sub-tables.
    fn positions(t: &Table, out: &mut Vec<isize>) {
        out.extend(t.position());
        for (_, v) in t.iter() {
            match v {
                Item::Table(st) => positions(st, out),
                Item::ArrayOfTables(a) => a.iter().for_each(|t| positions(t, out)),
                _ => {}
            }
        }
    }
    fn place(t: &mut Table, next: &mut isize) {
        if t.position().is_some() || !t.is_implicit() {
            t.set_position(Some(*next));
            *next += 1;
        }
        for (_, v) in t.iter_mut() {
            if let Item::Table(st) = v {
                place(st, next);
            }
        }
    }
    let rank = |k: &str| want.iter().position(|w| *w == norm_host(k));
    let Some(hosts) = doc.get_mut("host").and_then(Item::as_table_mut) else {
        return;
    };
    // (key, rank, positions of its tables); new tables have none.
    let mut entries: Vec<(String, Option<usize>, Vec<isize>)> = hosts
        .iter()
        .map(|(k, v)| {
            let mut ps = Vec::new();
            if let Some(t) = v.as_table() {
                positions(t, &mut ps);
            }
            (k.to_string(), rank(k), ps)
        })
        .collect();
    let first_other = entries
        .iter()
        .filter(|(_, r, _)| r.is_none())
        .flat_map(|(_, _, ps)| ps.iter().copied())
        .min();
    let mut mine: Vec<&(String, Option<usize>, Vec<isize>)> =
        entries.iter().filter(|(_, r, _)| r.is_some()).collect();
    mine.sort_by_key(|(_, r, _)| *r);
    // Already in place: every table of mirrorctl's hosts positioned, in `want` order, before
    // any other host's.
    let mut last = isize::MIN;
    let in_place = mine.iter().all(|(_, _, ps)| {
        let ok = !ps.is_empty()
            && ps
                .iter()
                .all(|p| *p > last && first_other.is_none_or(|f| *p < f));
        last = ps.iter().copied().max().unwrap_or(last);
        ok
    });
    if in_place {
        return;
    }
    let order: Vec<String> = mine.iter().map(|(k, _, _)| k.clone()).collect();
    entries.clear();
    scale(doc.as_table_mut());
    let mut max = isize::MIN;
    let mut all = Vec::new();
    positions(doc.as_table(), &mut all);
    max = all.into_iter().fold(max, isize::max);
    // Just before the first other host's first table (its slot scaled by GAP), or after
    // everything.
    let base = match first_other {
        Some(f) => f * GAP - GAP + 1,
        None => max.max(0) + GAP,
    };
    let Some(hosts) = doc.get_mut("host").and_then(Item::as_table_mut) else {
        return;
    };
    for (j, k) in order.iter().enumerate() {
        if let Some(t) = hosts.get_mut(k).and_then(Item::as_table_mut) {
            let mut next = base + j as isize * HOST;
            place(t, &mut next);
        }
    }
}

/// The CRI plugin whose `registry` table holds `config_path`, by config `version`.
fn cri_plugin(version: i64) -> Option<&'static str> {
    match version {
        2 => Some("io.containerd.grpc.v1.cri"),
        3 => Some("io.containerd.cri.v1.images"),
        _ => None,
    }
}

/// Plan `config.toml` so the CRI registry's `config_path` includes `certs_dir`; with
/// `want == false`, take back what mirrorctl changed.
pub fn plan_config(
    current: Option<&str>,
    certs_dir: &str,
    want: bool,
    prev: &[String],
) -> Result<Planned, PlanError> {
    let set_tok = "config_path:set".to_string();
    let pre_tok = format!("config_path:prepended={certs_dir}");
    let original = current.unwrap_or("");
    if current.is_none_or(|c| c.trim().is_empty()) {
        if !want {
            return Ok(Planned {
                text: original.to_string(),
                owned: Vec::new(),
            });
        }
        let (framing, _) = unframe(original);
        let text = format!(
            "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs_dir}\"\n"
        );
        return Ok(Planned {
            text: reframe(framing, &text),
            owned: vec!["table:registry".into(), set_tok, "version".into()],
        });
    }
    let (framing, body) = unframe(original);
    let mut doc = toml_util::parse(original, framing, &body)?;
    let version = match doc.get("version") {
        None => 1,
        Some(v) => v.as_integer().ok_or_else(|| {
            toml_util::error_at(
                original,
                framing,
                toml_util::key_offset(&body, "version"),
                "`version` must be an integer",
            )
        })?,
    };
    let Some(plugin) = cri_plugin(version) else {
        return Err(toml_util::error_at(
            original,
            framing,
            toml_util::key_offset(&body, "version"),
            format!(
                "config version {version} is not supported: containerd 1.x reads a file without `version` as the deprecated version 1 format, where the CRI registry settings live elsewhere. Convert it with `containerd config migrate` (containerd 2.x) or add `version = 2` with `plugins.\"io.containerd.grpc.v1.cri\"` tables, then rerun"
            ),
        ));
    };

    let mut owned = Vec::new();
    // Refuse the deprecated settings containerd rejects next to config_path.
    let registry_exists = doc
        .get("plugins")
        .and_then(Item::as_table_like)
        .and_then(|p| p.get(plugin))
        .and_then(Item::as_table_like)
        .and_then(|c| c.get("registry"))
        .and_then(Item::as_table_like)
        .is_some();
    if registry_exists {
        let reg = doc["plugins"][plugin]["registry"]
            .as_table_like()
            .expect("checked");
        let mirrors_set = reg
            .get("mirrors")
            .and_then(Item::as_table_like)
            .is_some_and(|m| !m.is_empty());
        let tls_set = reg
            .get("configs")
            .and_then(Item::as_table_like)
            .is_some_and(|c| {
                c.iter()
                    .any(|(_, v)| v.as_table_like().is_some_and(|t| t.contains_key("tls")))
            });
        if want && (mirrors_set || tls_set) {
            let what = if mirrors_set {
                "mirrors"
            } else {
                "configs.<host>.tls"
            };
            return Err(toml_util::error_at(
                original,
                framing,
                toml_util::key_offset(&body, what.split('.').next().unwrap()),
                format!(
                    "the deprecated `plugins.\"{plugin}\".registry.{what}` is set, and containerd's CRI plugin fails to start when it is set together with `config_path` (\"`{}` cannot be set when `config_path` is provided\"). Move those settings into hosts.toml files under {certs_dir}/<registry>/ and remove them, then rerun",
                    what.split('.').next().unwrap()
                ),
            ));
        }
    }

    if !want {
        if let Some(reg) = registry_table(&mut doc, plugin) {
            if prev.contains(&set_tok) {
                reg.remove("config_path");
            } else if prev.contains(&pre_tok) {
                if let Some(item) = reg.get_mut("config_path") {
                    toml_util::strip_string_prefix(item, &format!("{certs_dir}:"));
                }
            }
        }
        if prev.iter().any(|t| t == "table:registry") {
            prune_empty_registry(&mut doc, plugin);
        }
        if prev.iter().any(|t| t == IMPLICIT_TOK) {
            if let Some(t) = doc
                .get_mut("plugins")
                .and_then(|p| p.get_mut(plugin))
                .and_then(|c| c.get_mut("registry"))
                .and_then(Item::as_table_mut)
            {
                if t.get_values().is_empty() {
                    t.set_implicit(true);
                }
            }
        }
        // mirrorctl wrote the whole file: with nothing else left in it, drop its `version` too.
        fn empty(v: &Item) -> bool {
            v.as_table_like()
                .is_some_and(|t| t.iter().all(|(_, v)| empty(v)))
        }
        let only_version = doc.iter().all(|(k, v)| k == "version" || empty(v));
        if prev.iter().any(|t| t == "version") && only_version {
            doc.remove("version");
        }
        return Ok(Planned {
            text: reframe(framing, &toml_util::render_edit(&body, &doc, false)),
            owned,
        });
    }

    // A `registry` that is not a table would be overwritten below, and disarm would then
    // remove it (containerd refuses such a file anyway).
    let not_table = doc
        .get("plugins")
        .and_then(Item::as_table_like)
        .and_then(|p| p.get(plugin))
        .and_then(Item::as_table_like)
        .and_then(|c| c.get("registry"))
        .is_some_and(|r| !r.is_table_like());
    if not_table {
        return Err(toml_util::error_at(
            original,
            framing,
            toml_util::key_offset(&body, "registry"),
            format!("`plugins.\"{plugin}\".registry` must be a table"),
        ));
    }
    let created = registry_table(&mut doc, plugin).is_none();
    if created {
        let plugins = doc
            .entry("plugins")
            .or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            })
            .as_table_like_mut()
            .ok_or_else(|| PlanError::whole("`plugins` must be a table"))?;
        let cri = plugins
            .entry(plugin)
            .or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            })
            .as_table_like_mut()
            .ok_or_else(|| PlanError::whole(format!("`plugins.\"{plugin}\"` must be a table")))?;
        cri.insert("registry", Item::Table(Table::new()));
        owned.push("table:registry".to_string());
    } else if prev.iter().any(|t| t == "table:registry") {
        owned.push("table:registry".to_string());
    }
    // The registry table there only as the parent of others (`[….registry.configs."h".tls]`)
    // gets a header of its own once config_path is in it: remembered, so disarm makes it
    // implicit again rather than leave an empty `[….registry]`.
    let implicit = cri_registry(&doc, plugin).is_some_and(Table::is_implicit);
    if implicit || prev.iter().any(|t| t == IMPLICIT_TOK) {
        owned.push(IMPLICIT_TOK.to_string());
    }
    let indent = toml_util::key_indent(&body);
    let reg = registry_table(&mut doc, plugin).expect("just ensured");
    match reg
        .get("config_path")
        .map(|v| v.as_str().map(str::to_string))
    {
        None => {
            reg.insert("config_path", toml_edit::value(certs_dir));
            owned.push(set_tok);
        }
        Some(None) => return Err(PlanError::whole("`config_path` must be a string")),
        Some(Some(v)) => {
            let dirs: Vec<&str> = v.split(':').map(|d| d.trim_end_matches('/')).collect();
            if !dirs.contains(&certs_dir) {
                let item = reg.get_mut("config_path").expect("read above");
                toml_util::prepend_string(item, &format!("{certs_dir}:"));
                owned.push(pre_tok);
            } else if prev.contains(&set_tok) {
                owned.push(set_tok);
            } else if prev.contains(&pre_tok) {
                owned.push(pre_tok);
            }
        }
    }
    if prev.iter().any(|t| t == "version") {
        owned.push("version".to_string());
    }
    if created {
        if let Some(t) = doc["plugins"][plugin]["registry"].as_table_mut() {
            toml_util::indent_keys(t, &indent);
            t.decor_mut().set_prefix("\n");
        }
    }
    Ok(Planned {
        text: reframe(framing, &toml_util::render_edit(&body, &doc, false)),
        owned,
    })
}

const IMPLICIT_TOK: &str = "table:registry-implicit";

/// The CRI plugin's `registry` when it is a (header or implicit) table.
fn cri_registry<'a>(doc: &'a DocumentMut, plugin: &str) -> Option<&'a Table> {
    doc.get("plugins")?.get(plugin)?.get("registry")?.as_table()
}

fn registry_table<'a>(doc: &'a mut DocumentMut, plugin: &str) -> Option<&'a mut dyn TableLike> {
    doc.get_mut("plugins")?
        .as_table_like_mut()?
        .get_mut(plugin)?
        .as_table_like_mut()?
        .get_mut("registry")?
        .as_table_like_mut()
}

fn prune_empty_registry(doc: &mut DocumentMut, plugin: &str) {
    let Some(cri) = doc
        .get_mut("plugins")
        .and_then(Item::as_table_like_mut)
        .and_then(|p| p.get_mut(plugin))
        .and_then(Item::as_table_like_mut)
    else {
        return;
    };
    if cri
        .get("registry")
        .and_then(Item::as_table_like)
        .is_some_and(|r| r.is_empty())
    {
        cri.remove("registry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Mirror {
        Mirror::parse(s).unwrap()
    }

    #[test]
    fn fresh_hosts_file() {
        let p = plan_hosts(None, "docker.io", &[m("http://127.0.0.1:5001")], false, &[]).unwrap();
        assert_eq!(
            p.text,
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://127.0.0.1:5001\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        let again = plan_hosts(
            Some(&p.text),
            "docker.io",
            &[m("http://127.0.0.1:5001")],
            false,
            &p.owned,
        )
        .unwrap();
        assert_eq!(again.text, p.text);
        assert_eq!(again.owned, p.owned);
        let back = plan_hosts(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text.trim(), "");
    }

    #[test]
    fn mirrorctl_hosts_go_first() {
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host.\"https://user.example\"]\n  capabilities = [\"pull\"]\n  [host.\"https://user.example\".header]\n    x-a = \"b\"\n";
        let p = plan_hosts(
            Some(cur),
            "docker.io",
            &[m("http://a:1"), m("https://b:2")],
            true,
            &[],
        )
        .unwrap();
        let a = p.text.find("http://a:1").unwrap();
        let b = p.text.find("https://b:2").unwrap();
        let u = p.text.find("[host.\"https://user.example\"]").unwrap();
        let h = p.text.find(".header]").unwrap();
        assert!(a < b && b < u && u < h, "{}", p.text);
        assert!(p.text.contains("skip_verify = true"));
        let back = plan_hosts(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert!(
            !back.text.contains("a:1")
                && back.text.contains("user.example")
                && back.text.contains("x-a"),
            "{}",
            back.text
        );
    }

    #[test]
    fn mixed_line_ends_and_no_final_newline_survive_arm_and_disarm() {
        // Found by the fuzz harness: toml_edit dropped the `\r`s and added a final newline.
        let cur = "# mine\r\nserver = \"https://registry-1.docker.io\"\n\r\n[host.\"https://user.example\"]\r\n  capabilities = [\"pull\"]";
        let p = plan_hosts(Some(cur), "docker.io", &[m("http://a:1")], false, &[]).unwrap();
        assert!(p.text.starts_with("# mine\r\n"), "{:?}", p.text);
        let back = plan_hosts(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur);
        let cur = "version = 2\r\n# x\n[plugins.\"io.containerd.grpc.v1.cri\"]\r\n  sandbox_image = \"p\"";
        let dir = "/etc/containerd/certs.d";
        let p = plan_config(Some(cur), dir, true, &[]).unwrap();
        assert!(!p.text.ends_with('\n'), "{:?}", p.text);
        assert_eq!(
            plan_config(Some(&p.text), dir, false, &p.owned)
                .unwrap()
                .text,
            cur
        );
    }

    #[test]
    fn an_implicit_registry_table_stays_implicit() {
        // Found by the fuzz harness: with only `[….registry.configs."h".tls]` in the file, the
        // registry table got a header for config_path, and disarm left it, empty.
        let dir = "/etc/containerd/certs.d";
        let cur = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"reg.example\".auth]\n  username = \"u\"\n";
        let p = plan_config(Some(cur), dir, true, &[]).unwrap();
        assert!(p.text.contains("config_path"), "{}", p.text);
        assert_eq!(plan_config(Some(&p.text), dir, true, &p.owned).unwrap(), p);
        assert_eq!(
            plan_config(Some(&p.text), dir, false, &p.owned)
                .unwrap()
                .text,
            cur
        );
    }

    #[test]
    fn refuses_a_cri_registry_that_is_not_a_table() {
        // Found by the fuzz harness: `registry = 3` was replaced by mirrorctl's table, and
        // disarm removed it.
        let cur = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  registry = 3\n";
        let e = plan_config(Some(cur), "/etc/containerd/certs.d", true, &[]).unwrap_err();
        assert_eq!((e.line, e.column), (4, 3), "{e}");
        assert!(e.message.contains("must be a table"), "{e}");
    }

    #[test]
    fn the_users_empty_host_table_stays() {
        // Found by the fuzz harness: disarm removed the user's empty `[host]` with mirrorctl's.
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host]\n";
        let p = plan_hosts(Some(cur), "docker.io", &[m("http://a:1")], false, &[]).unwrap();
        let back = plan_hosts(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn only_mirrorctls_hosts_move() {
        // Found by the fuzz harness: every host table got a new position, each with its
        // sub-tables right after it, so a sub-table the user wrote after another host moved,
        // and disarm could not put it back.
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host.\"https://a.example\"]\n[host.\"https://b.example\".header]\nx = \"y\"\n  [host.\"https://a.example\".header]\n    x-team = \"ci\"\n";
        let p = plan_hosts(
            Some(cur),
            "docker.io",
            &[m("http://m:1"), m("https://b.example")],
            false,
            &[],
        )
        .unwrap();
        let at = |s: &str| p.text.find(s).unwrap();
        assert!(
            at("[host.\"http://m:1\"]") < at("[host.\"https://b.example\".header]")
                && at("[host.\"https://b.example\".header]") < at("[host.\"https://a.example\"]")
                && at("[host.\"https://a.example\"]") < at("[host.\"https://a.example\".header]"),
            "{}",
            p.text
        );
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host.\"https://a.example\"]\n[host.\"https://b.example\".header]\nx = \"y\"\n  [host.\"https://a.example\".header]\n    x-team = \"ci\"\n";
        let p = plan_hosts(Some(cur), "docker.io", &[m("http://m:1")], false, &[]).unwrap();
        let again = plan_hosts(
            Some(&p.text),
            "docker.io",
            &[m("http://m:1")],
            false,
            &p.owned,
        )
        .unwrap();
        assert_eq!(again, p);
        let back = plan_hosts(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn keys_before_the_added_server_keep_their_indentation() {
        // Found by the fuzz harness: re-inserted after `server`, `  capabilities` lost its
        // indentation and disarm could not give it back.
        let cur = "  capabilities = [\"pull\"] # all hosts\n\n[host.\"https://u.example\"]\n";
        let p = plan_hosts(Some(cur), "quay.io", &[m("http://a:1")], false, &[]).unwrap();
        assert!(
            p.text.starts_with(
                "server = \"https://quay.io\"\n  capabilities = [\"pull\"] # all hosts\n"
            ),
            "{}",
            p.text
        );
        let back = plan_hosts(Some(&p.text), "quay.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur);
    }

    #[test]
    fn refuses_a_host_entry_that_is_not_a_table() {
        // Found by the fuzz harness: `capabilities` under `[host]` was taken for a host that
        // comes before mirrorctl's; containerd fails to decode such a file.
        let cur =
            "server = \"https://registry-1.docker.io\"\n\n[host]\ncapabilities = [\"pull\"]\n";
        let e = plan_hosts(Some(cur), "docker.io", &[m("http://a:1")], false, &[]).unwrap_err();
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.message.contains("`host.capabilities`"), "{e}");
        let inline = "[host]\n\"https://u.example\" = { capabilities = [\"pull\"] }\n";
        plan_hosts(Some(inline), "docker.io", &[m("http://a:1")], false, &[]).unwrap();
    }

    #[test]
    fn disarm_of_a_written_config_leaves_nothing() {
        // `plugins` still held the empty CRI table, so `version = 2` stayed (fuzz harness).
        let dir = "/etc/containerd/certs.d";
        for cur in [None, Some("")] {
            let p = plan_config(cur, dir, true, &[]).unwrap();
            let back = plan_config(Some(&p.text), dir, false, &p.owned).unwrap();
            assert_eq!(back.text, "", "{:?}", p.text);
        }
    }

    #[test]
    fn config_path_set_prepended_and_refused() {
        let dir = "/etc/containerd/certs.d";
        let v2 = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/other\"\n";
        let p = plan_config(Some(v2), dir, true, &[]).unwrap();
        assert!(
            p.text
                .contains("config_path = \"/etc/containerd/certs.d:/other\""),
            "{}",
            p.text
        );
        assert_eq!(
            plan_config(Some(&p.text), dir, false, &p.owned)
                .unwrap()
                .text,
            v2
        );
        let v3 = "version = 3\n";
        let p = plan_config(Some(v3), dir, true, &[]).unwrap();
        assert!(
            p.text
                .contains("[plugins.\"io.containerd.cri.v1.images\".registry]"),
            "{}",
            p.text
        );
        assert_eq!(
            plan_config(Some(&p.text), dir, false, &p.owned)
                .unwrap()
                .text,
            v3
        );
        let dep = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n";
        let e = plan_config(Some(dep), dir, true, &[]).unwrap_err();
        assert!(
            e.message
                .contains("cannot be set when `config_path` is provided"),
            "{e}"
        );
        let e = plan_config(Some("[plugins.cri]\n"), dir, true, &[]).unwrap_err();
        assert!(e.message.contains("version 1"), "{e}");
    }
}
