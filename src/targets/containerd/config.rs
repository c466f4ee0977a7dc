//! The containerd `config.toml` planner: the CRI registry's `config_path`, in the table the
//! file's schema puts it (`plugins.cri.registry` in version 1, `plugins."io.containerd.grpc.v1.cri".registry`
//! in version 2, `plugins."io.containerd.cri.v1.images".registry` in version 3), and with
//! `--migrate` the deprecated settings taken out (they move into hosts.toml, see
//! [`super::setup`]) and `version = 2` added where the file's CRI tables need it.
//!
//! Owned tokens: `table:registry` (mirrorctl made the registry table), `table:registry-implicit`
//! (it gave an implicit one a header), `config_path:set` / `config_path:emptied` (it set the
//! key, or replaced an empty one), `config_path:prepended=<dir>` (journals of earlier
//! versions), `version` (it wrote the whole file), `version:added` (`--migrate` added
//! `version = 2`), `moved:<TOML>` (what `--migrate` took out, to put back on disarm).

use super::super::text::{reframe, unframe};
use super::super::toml_util;
use super::super::Planned;
use super::legacy::{Facts, Schema};
use crate::error::PlanError;
use toml_edit::{DocumentMut, Item, Table, TableLike};

const SET: &str = "config_path:set";
const EMPTIED: &str = "config_path:emptied";
const TABLE: &str = "table:registry";
const IMPLICIT: &str = "table:registry-implicit";
const WHOLE: &str = "version";
const VERSION_ADDED: &str = "version:added";
const MOVED: &str = "moved:";

fn prepended(certs_dir: &str) -> String {
    format!("config_path:prepended={certs_dir}")
}

type File<'a> = toml_util::Edit<'a>;

/// Plan `config.toml` so the CRI registry's `config_path` includes `certs_dir`; with
/// `want == false`, take back what mirrorctl changed. `migrate`: take the deprecated settings
/// out (they are in hosts.toml now) and add `version = 2` where the CRI tables need it.
pub fn plan_config(
    current: Option<&str>,
    certs_dir: &str,
    want: bool,
    migrate: bool,
    prev: &[String],
) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    if original.trim().is_empty() {
        return Ok(fresh(original, certs_dir, want));
    }
    let mut file = File::open(original)?;
    if !want {
        disarm(&mut file, certs_dir, prev)?;
        return Ok(Planned {
            text: file.render(false),
            owned: Vec::new(),
        });
    }
    let mut owned = Vec::new();
    let facts = Facts::read(original, migrate)?;
    if facts.version_added {
        add_version(&mut file.doc);
        owned.push(VERSION_ADDED.to_string());
    } else if prev.iter().any(|t| t == VERSION_ADDED) {
        owned.push(VERSION_ADDED.to_string());
    }
    if facts.has_legacy() {
        if !migrate {
            return Err(legacy_refusal(facts.schema, certs_dir, &facts));
        }
        owned.push(format!(
            "{MOVED}{}",
            take_legacy(&mut file.doc, facts.schema.plugin())
        ));
    }
    owned.extend(prev.iter().filter(|t| t.starts_with(MOVED)).cloned());
    set_config_path(
        &mut file,
        facts.schema.plugin(),
        certs_dir,
        prev,
        &mut owned,
    )?;
    if prev.iter().any(|t| t == WHOLE) {
        owned.push(WHOLE.to_string());
    }
    Ok(Planned {
        text: file.render(false),
        owned,
    })
}

/// A file mirrorctl writes whole (absent or blank).
fn fresh(original: &str, certs_dir: &str, want: bool) -> Planned {
    if !want {
        return Planned {
            text: original.to_string(),
            owned: Vec::new(),
        };
    }
    let (framing, _) = unframe(original);
    let text = format!(
        "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs_dir}\"\n"
    );
    Planned {
        text: reframe(framing, &text),
        owned: vec![TABLE.into(), SET.into(), WHOLE.into()],
    }
}

/// The refusal of deprecated settings without `--migrate` (the caller normally stops earlier,
/// with the same advice).
fn legacy_refusal(schema: Schema, certs_dir: &str, facts: &Facts) -> PlanError {
    let what = match facts.mirrors.is_empty() {
        false => "mirrors",
        true => "configs",
    };
    let (line, column) = facts.legacy_at.unwrap_or((0, 0));
    PlanError::new(
        line,
        column,
        format!(
            "the deprecated `plugins.\"{}\".registry.{what}` is set, and containerd's CRI plugin fails to start when it is set together with `config_path` (\"`{what}` cannot be set when `config_path` is provided\"). Rerun with --migrate to move those settings into hosts.toml files under {certs_dir}/<registry>/ (disarm puts them back)",
            schema.plugin()
        ),
    )
}

/// Put `version = 2` first in the file.
fn add_version(doc: &mut DocumentMut) {
    let keys: Vec<String> = doc.iter().map(|(k, _)| k.to_string()).collect();
    let mut entries = Vec::new();
    for k in keys {
        if let Some(e) = doc.remove_entry(&k) {
            entries.push(e);
        }
    }
    doc.insert("version", toml_edit::value(2));
    for (k, v) in entries {
        doc.insert_formatted(&k, v);
    }
}

/// Take `registry.mirrors` and every `registry.configs."<host>".tls` out of the plugin's table;
/// returns them as a TOML document (with their full paths) to put back on disarm.
fn take_legacy(doc: &mut DocumentMut, plugin: &str) -> String {
    let Some(reg) = registry_mut(doc, plugin) else {
        return String::new();
    };
    let mut registry = implicit_table();
    if let Some(m) = reg.remove("mirrors") {
        registry.insert("mirrors", m);
    }
    let mut configs = implicit_table();
    if let Some(cur) = reg.get_mut("configs").and_then(Item::as_table_like_mut) {
        let hosts: Vec<String> = cur.iter().map(|(k, _)| k.to_string()).collect();
        for h in hosts {
            if let Some(t) = cur
                .get_mut(&h)
                .and_then(Item::as_table_like_mut)
                .and_then(|c| c.remove("tls"))
            {
                let mut host = implicit_table();
                host.insert("tls", t);
                configs.insert(&h, Item::Table(host));
            }
        }
    }
    if !configs.is_empty() {
        registry.insert("configs", Item::Table(configs));
    }
    let mut cri = implicit_table();
    cri.insert("registry", Item::Table(registry));
    let mut plugins = implicit_table();
    plugins.insert(plugin, Item::Table(cri));
    let mut moved = DocumentMut::new();
    moved.insert("plugins", Item::Table(plugins));
    moved.to_string()
}

fn implicit_table() -> Table {
    let mut t = Table::new();
    t.set_implicit(true);
    t
}

/// Make the registry table's `config_path` include `certs_dir`.
fn set_config_path(
    file: &mut File,
    plugin: &str,
    certs_dir: &str,
    prev: &[String],
    owned: &mut Vec<String>,
) -> Result<(), PlanError> {
    let not_table = file
        .doc
        .get("plugins")
        .and_then(|p| p.get(plugin))
        .and_then(|c| c.get("registry"))
        .is_some_and(|r| !r.is_table_like());
    if not_table {
        return Err(file.err(
            "registry",
            format!("`plugins.\"{plugin}\".registry` must be a table"),
        ));
    }
    let created = ensure_registry(file, plugin, prev, owned)?;
    let Some(reg) = registry_mut(&mut file.doc, plugin) else {
        return Err(PlanError::whole(format!(
            "`plugins.\"{plugin}\"` must be a table"
        )));
    };
    let carried = |t: &str, owned: &mut Vec<String>| {
        if prev.iter().any(|p| p == t) {
            owned.push(t.to_string());
        }
    };
    match reg
        .get("config_path")
        .map(|v| v.as_str().map(str::to_string))
    {
        None => {
            reg.insert("config_path", toml_edit::value(certs_dir));
            owned.push(SET.into());
        }
        Some(None) => return Err(file.err("config_path", "`config_path` must be a string")),
        Some(Some(v)) if v.is_empty() => {
            if let Some(item) = reg.get_mut("config_path") {
                toml_util::set_string(item, certs_dir);
            }
            owned.push(EMPTIED.into());
        }
        Some(Some(v)) => {
            let dirs: Vec<&str> = v.split(':').map(|d| d.trim_end_matches('/')).collect();
            if !dirs.contains(&certs_dir) {
                if let Some(item) = reg.get_mut("config_path") {
                    toml_util::prepend_string(item, &format!("{certs_dir}:"));
                }
                owned.push(prepended(certs_dir));
            } else {
                carried(SET, owned);
                carried(EMPTIED, owned);
                carried(&prepended(certs_dir), owned);
            }
        }
    }
    if created {
        let indent = toml_util::key_indent(&file.body);
        if let Some(t) = file
            .doc
            .get_mut("plugins")
            .and_then(|p| p.get_mut(plugin))
            .and_then(|c| c.get_mut("registry"))
            .and_then(Item::as_table_mut)
        {
            toml_util::indent_keys(t, &indent);
            t.decor_mut().set_prefix("\n");
        }
    }
    Ok(())
}

/// Make sure `plugins.<plugin>.registry` exists; `true` when mirrorctl made it now.
fn ensure_registry(
    file: &mut File,
    plugin: &str,
    prev: &[String],
    owned: &mut Vec<String>,
) -> Result<bool, PlanError> {
    let created = registry_mut(&mut file.doc, plugin).is_none();
    if created {
        let plugins = file
            .doc
            .entry("plugins")
            .or_insert_with(|| Item::Table(implicit_table()))
            .as_table_like_mut()
            .ok_or_else(|| file_err_plain("`plugins` must be a table"))?;
        let cri = plugins
            .entry(plugin)
            .or_insert_with(|| Item::Table(implicit_table()))
            .as_table_like_mut()
            .ok_or_else(|| file_err_plain(format!("`plugins.\"{plugin}\"` must be a table")))?;
        cri.insert("registry", Item::Table(Table::new()));
        owned.push(TABLE.to_string());
    } else if prev.iter().any(|t| t == TABLE) {
        owned.push(TABLE.to_string());
    }
    // The registry table there only as the parent of others (`[….registry.configs."h".auth]`)
    // gets a header of its own once config_path is in it: remembered, so disarm makes it
    // implicit again rather than leave an empty `[….registry]`.
    let implicit = registry_table(&file.doc, plugin).is_some_and(Table::is_implicit);
    if implicit || prev.iter().any(|t| t == IMPLICIT) {
        owned.push(IMPLICIT.to_string());
    }
    Ok(created)
}

fn file_err_plain(msg: impl Into<String>) -> PlanError {
    PlanError::whole(msg)
}

/// Take back what mirrorctl changed (`prev`), leaving everything else.
fn disarm(file: &mut File, certs_dir: &str, prev: &[String]) -> Result<(), PlanError> {
    let has = |t: &str| prev.iter().any(|p| p == t);
    let plugin = schema_plugin(&file.doc);
    if let Some(reg) = registry_mut(&mut file.doc, plugin) {
        if has(SET) {
            reg.remove("config_path");
        } else if has(EMPTIED) {
            if let Some(item) = reg.get_mut("config_path") {
                toml_util::set_string(item, "");
            }
        } else if has(&prepended(certs_dir)) {
            if let Some(item) = reg.get_mut("config_path") {
                toml_util::strip_string_prefix(item, &format!("{certs_dir}:"));
            }
        }
    }
    if has(TABLE) {
        prune_empty_registry(&mut file.doc, plugin);
    }
    if has(IMPLICIT) {
        if let Some(t) = registry_table_mut(&mut file.doc, plugin) {
            if t.get_values().is_empty() {
                t.set_implicit(true);
            }
        }
    }
    for t in prev.iter().filter_map(|t| t.strip_prefix(MOVED)) {
        put_back(&mut file.doc, t);
    }
    if has(VERSION_ADDED) && file.doc.get("version").and_then(Item::as_integer) == Some(2) {
        file.doc.remove("version");
    }
    if has(WHOLE) && only_version(&file.doc) {
        file.doc.remove("version");
    }
    Ok(())
}

/// mirrorctl wrote the whole file and nothing else is left in it but `version`.
fn only_version(doc: &DocumentMut) -> bool {
    fn empty(v: &Item) -> bool {
        v.as_table_like()
            .is_some_and(|t| t.iter().all(|(_, v)| empty(v)))
    }
    doc.iter().all(|(k, v)| k == "version" || empty(v))
}

/// Put back what `--migrate` took out, where nothing of the same name is there now.
fn put_back(doc: &mut DocumentMut, moved: &str) {
    let Ok(m) = moved.parse::<DocumentMut>() else {
        return;
    };
    merge_missing(doc.as_table_mut(), m.as_table());
}

/// Insert every entry of `from` that `into` lacks, recursing into tables both have.
fn merge_missing(into: &mut Table, from: &Table) {
    for (k, v) in from.iter() {
        match (into.get_mut(k), v) {
            (None, v) => {
                into.insert(k, v.clone());
            }
            (Some(Item::Table(t)), Item::Table(f)) => merge_missing(t, f),
            (Some(_), _) => {}
        }
    }
}

/// The CRI plugin id this file's `version` puts the registry under.
fn schema_plugin(doc: &DocumentMut) -> &'static str {
    let schema = match doc.get("version").and_then(Item::as_integer) {
        Some(2) => Schema::V2,
        Some(3) => Schema::V3,
        _ => Schema::V1 { versionless: false },
    };
    schema.plugin()
}

/// The CRI plugin's `registry` when it is a (header or implicit) table.
fn registry_table<'a>(doc: &'a DocumentMut, plugin: &str) -> Option<&'a Table> {
    doc.get("plugins")?.get(plugin)?.get("registry")?.as_table()
}

fn registry_table_mut<'a>(doc: &'a mut DocumentMut, plugin: &str) -> Option<&'a mut Table> {
    doc.get_mut("plugins")?
        .get_mut(plugin)?
        .get_mut("registry")?
        .as_table_mut()
}

fn registry_mut<'a>(doc: &'a mut DocumentMut, plugin: &str) -> Option<&'a mut dyn TableLike> {
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

    const DIR: &str = "/etc/containerd/certs.d";

    const KIND_2022: &str = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.7\"\n\n# the mirrors\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"k8s.gcr.io\"]\n  endpoint = [\"https://registry.k8s.io\", \"https://k8s.gcr.io\",]\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"registry.k8s.io\".tls]\n  ca_file = \"/ca.pem\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"registry.k8s.io\".auth]\n  username = \"u\"\n";

    #[test]
    fn migrate_takes_the_deprecated_settings_out_and_disarm_puts_them_back() {
        let p = plan_config(Some(KIND_2022), DIR, true, true, &[]).unwrap();
        assert!(!p.text.contains("mirrors"), "{}", p.text);
        assert!(!p.text.contains("ca_file"), "{}", p.text);
        assert!(
            p.text.contains("username = \"u\""),
            "auth stays: {}",
            p.text
        );
        assert!(
            p.text.contains("config_path = \"/etc/containerd/certs.d\""),
            "{}",
            p.text
        );
        assert!(p.text.contains("sandbox_image"), "{}", p.text);
        // Idempotent, and the file is as containerd wants it.
        assert_eq!(
            plan_config(Some(&p.text), DIR, true, true, &p.owned).unwrap(),
            p
        );
        assert_eq!(
            plan_config(Some(&p.text), DIR, true, false, &p.owned).unwrap(),
            p
        );
        let f = Facts::read(&p.text, false).unwrap();
        assert!(
            !f.has_legacy() && f.config_path.as_deref() == Some(DIR),
            "{f:?}"
        );
        // After a user edit, disarm removes config_path and puts the moved tables back.
        let edited = p.text.replace("pause:3.7", "pause:3.9");
        let back = plan_config(Some(&edited), DIR, false, false, &p.owned).unwrap();
        let f = Facts::read(&back.text, false).unwrap();
        assert_eq!(f.config_path, None, "{}", back.text);
        assert_eq!(f.mirrors.len(), 1, "{}", back.text);
        assert_eq!(f.mirrors[0].endpoints.len(), 2, "{}", back.text);
        assert_eq!(f.tls.len(), 1, "{}", back.text);
        assert!(
            back.text.contains("pause:3.9") && back.text.contains("username"),
            "{}",
            back.text
        );
    }

    #[test]
    fn without_migrate_the_deprecated_settings_are_refused() {
        let e = plan_config(Some(KIND_2022), DIR, true, false, &[]).unwrap_err();
        assert!(e.message.contains("--migrate"), "{e}");
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn migrate_adds_version_2_for_long_ids_and_disarm_removes_it() {
        let t = "# no version\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n";
        let p = plan_config(Some(t), DIR, true, true, &[]).unwrap();
        assert!(p.text.starts_with("version = 2\n"), "{}", p.text);
        assert!(
            p.text
                .contains("[plugins.\"io.containerd.grpc.v1.cri\".registry]"),
            "{}",
            p.text
        );
        assert_eq!(
            plan_config(Some(&p.text), DIR, true, true, &p.owned).unwrap(),
            p
        );
        let edited = p.text.replace("overlayfs", "native");
        let back = plan_config(Some(&edited), DIR, false, false, &p.owned).unwrap();
        assert_eq!(back.text, t.replace("overlayfs", "native"));
        // Without --migrate: version 1, where containerd 1.x reads it.
        let p = plan_config(Some(t), DIR, true, false, &[]).unwrap();
        assert!(p.text.contains("[plugins.cri.registry]"), "{}", p.text);
    }

    #[test]
    fn an_empty_config_path_is_replaced_not_prepended() {
        // containerd's own default dump writes `config_path = ""`; prepending made it
        // "/etc/containerd/certs.d:" (found with the real-world corpus).
        let t = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n";
        let p = plan_config(Some(t), DIR, true, false, &[]).unwrap();
        assert!(
            p.text
                .contains("config_path = \"/etc/containerd/certs.d\"\n"),
            "{}",
            p.text
        );
        assert_eq!(
            plan_config(Some(&p.text), DIR, true, false, &p.owned).unwrap(),
            p
        );
        let edited = format!("# edited\n{}", p.text);
        let back = plan_config(Some(&edited), DIR, false, false, &p.owned).unwrap();
        assert_eq!(back.text, format!("# edited\n{t}"));
    }
}
