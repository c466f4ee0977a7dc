//! BuildKit's `/etc/buildkit/buildkitd.toml`:
//!
//! ```toml
//! [registry."docker.io"]
//!   mirrors = ["mirror.example:5000"]
//! [registry."mirror.example:5000"]
//!   http = true        # plain HTTP; `insecure = true` skips TLS verification
//! ```
//!
//! BuildKit wants `host:port` mirror entries (a scheme is parsed and dropped) and reads plain
//! HTTP / insecure only from the mirror's *own* `[registry."host:port"]` table. Edited with
//! toml_edit, so comments, ordering and unrelated tables survive; the same data spelled as an
//! inline table or with dotted keys is edited where it is, never duplicated.

use super::text::{reframe, unframe};
use super::toml_util::{self, string_array};
use super::Planned;
use crate::error::PlanError;
use crate::mirror::{Mirror, MirrorSet};
use toml_edit::{Item, Table, TableLike, Value};

/// Normalise a `mirrors` entry: no scheme, no trailing slash, lower-case.
fn norm_mirror(s: &str) -> String {
    let s = s.trim();
    let s = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    s.trim_end_matches('/').to_ascii_lowercase()
}

/// Where errors point: the original text, its framing and the unframed body.
struct Src<'a> {
    original: &'a str,
    framing: super::text::Framing,
    body: String,
}

impl Src<'_> {
    fn err(&self, key: &str, msg: impl Into<String>) -> PlanError {
        toml_util::error_at(
            self.original,
            self.framing,
            toml_util::key_offset(&self.body, key),
            msg,
        )
    }
}

/// Plan buildkitd.toml for `set`; with no registries, remove everything mirrorctl owns.
pub fn plan(current: Option<&str>, set: &MirrorSet, prev: &[String]) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let (framing, body) = unframe(original);
    let mut doc = toml_util::parse(original, framing, &body)?;
    let src = Src {
        original,
        framing,
        body,
    };
    let mut owned: Vec<String> = Vec::new();
    if doc.get("registry").is_none() && set.registries.is_empty() {
        return Ok(Planned {
            text: original.to_string(),
            owned,
        });
    }
    if doc.get("registry").is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("registry", Item::Table(t));
    }
    let registry = doc
        .get_mut("registry")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| src.err("registry", "`registry` must be a table"))?;
    let want = want_tokens(set);
    let stale: Vec<&String> = prev.iter().filter(|t| !want.contains(t)).collect();
    remove_stale(registry, &stale);
    let dotted = registry.is_dotted();
    for r in &set.registries {
        ensure_mirrors(&src, registry, r, dotted, prev, &mut owned)?;
    }
    for r in &set.registries {
        for m in &r.mirrors {
            if let Some(flag) = flag_for(set, m) {
                for table in flag_tables(m) {
                    ensure_flag(&src, registry, m, &table, flag, dotted, prev, &mut owned)?;
                }
            }
        }
    }
    restore_implicit(registry, prev, &owned);
    // A token can come twice (a mirror whose host:port is also a registry of the set names
    // one table twice): keep the first of each.
    let mut seen = std::collections::HashSet::new();
    owned.retain(|t| seen.insert(t.clone()));
    indent_created(&mut doc, &owned, &src.body);
    let text = toml_util::render_edit(&src.body, &doc, current.is_none());
    Ok(Planned {
        text: reframe(framing, &text),
        owned,
    })
}

/// What is wanted now, as tokens: mirror entries, flags, tables.
fn want_tokens(set: &MirrorSet) -> Vec<String> {
    let mut want = Vec::new();
    for r in &set.registries {
        want.push(format!("table:{}", r.registry));
        want.push(format!("key:{}.mirrors", r.registry));
        for m in &r.mirrors {
            want.push(format!(
                "mirror:{}={}",
                r.registry,
                norm_mirror(&m.location())
            ));
            if let Some(flag) = flag_for(set, m) {
                for hp in flag_tables(m) {
                    want.push(format!("table:{hp}"));
                    want.push(format!("{flag}:{hp}"));
                }
            }
        }
    }
    want
}

/// Take out what mirrorctl owned and no longer wants: mirror entries and flags first, then
/// `mirrors` keys left empty, then tables left empty.
fn remove_stale(registry: &mut dyn TableLike, stale: &[&String]) {
    for t in stale {
        if let Some(rest) = t.strip_prefix("mirror:") {
            let (reg, hp) = rest.split_once('=').unwrap_or((rest, ""));
            remove_mirror(registry, reg, hp);
        } else if let Some((key, hp)) = t
            .split_once(':')
            .filter(|(k, _)| *k == "http" || *k == "insecure")
        {
            if let Some(ht) = registry.get_mut(hp).and_then(Item::as_table_like_mut) {
                ht.remove(key);
            }
        }
    }
    for t in stale {
        if let Some(path) = t.strip_prefix("key:") {
            let reg = path.trim_end_matches(".mirrors");
            if let Some(rt) = registry.get_mut(reg).and_then(Item::as_table_like_mut) {
                let empty = rt
                    .get("mirrors")
                    .and_then(Item::as_array)
                    .is_some_and(|a| a.is_empty());
                if empty {
                    rt.remove("mirrors");
                }
            }
        }
    }
    for t in stale {
        if let Some(name) = t.strip_prefix("table:") {
            let empty = registry
                .get(name)
                .and_then(Item::as_table_like)
                .is_some_and(|x| x.is_empty());
            if empty {
                registry.remove(name);
            }
        }
    }
}

/// Drop one mirror entry (normalised `hp`) from `registry."<reg>".mirrors`.
fn remove_mirror(registry: &mut dyn TableLike, reg: &str, hp: &str) {
    let Some(item) = registry
        .get_mut(reg)
        .and_then(Item::as_table_like_mut)
        .and_then(|rt| rt.get_mut("mirrors"))
    else {
        return;
    };
    if let Some(list) = string_array(item) {
        let kept: Vec<String> = list
            .iter()
            .filter(|v| norm_mirror(v) != hp)
            .cloned()
            .collect();
        if kept != list {
            toml_util::set_array(item, &kept);
        }
    }
}

/// `registry."<reg>".mirrors` holds the wanted mirrors first (the user's entries after them).
fn ensure_mirrors(
    src: &Src,
    registry: &mut dyn TableLike,
    r: &crate::mirror::RegistryMirrors,
    dotted: bool,
    prev: &[String],
    owned: &mut Vec<String>,
) -> Result<(), PlanError> {
    let created = ensure_table(registry, &r.registry, dotted);
    if created || prev.contains(&format!("table:{}", r.registry)) {
        owned.push(format!("table:{}", r.registry));
    }
    note_implicit(registry, &r.registry, prev, owned);
    let rt = registry
        .get_mut(&r.registry)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| {
            src.err(
                &r.registry,
                format!("`registry.\"{}\"` must be a table", r.registry),
            )
        })?;
    let current: Vec<String> = match rt.get("mirrors") {
        None => Vec::new(),
        Some(item) => string_array(item).ok_or_else(|| {
            src.err(
                "mirrors",
                format!(
                    "`registry.\"{}\".mirrors` must be a list of strings",
                    r.registry
                ),
            )
        })?,
    };
    let want: Vec<String> = r.mirrors.iter().map(Mirror::location).collect();
    let tok = |n: &str| format!("mirror:{}={n}", r.registry);
    let merged = super::list::merge(
        &current,
        &want,
        norm_mirror,
        |n| prev.contains(&tok(n)),
        true,
    );
    owned.extend(merged.owned.iter().map(|n| tok(n)));
    let key_tok = format!("key:{}.mirrors", r.registry);
    match rt.get_mut("mirrors") {
        None => {
            owned.push(key_tok);
            rt.insert(
                "mirrors",
                Item::Value(Value::Array(toml_util::array(&merged.list))),
            );
        }
        Some(item) => {
            if prev.contains(&key_tok) {
                owned.push(key_tok);
            }
            if merged.list != current {
                toml_util::set_array(item, &merged.list);
            }
        }
    }
    Ok(())
}

/// The tables a mirror's `http` / `insecure` flag goes in: `registry."<host:port>"`, and for a
/// mirror with a project also `registry."<host:port>/<project>"` (BuildKit ≥ 0.13 looks the
/// flags up by the mirror's host, 0.12 by the whole `mirrors` entry).
fn flag_tables(m: &Mirror) -> Vec<String> {
    let mut out = vec![m.host_port()];
    if m.path.is_some() {
        out.push(m.location());
    }
    out
}

/// The mirror's own `registry."<hp>"` table says `flag = true` (`http` or `insecure`).
#[allow(clippy::too_many_arguments)]
fn ensure_flag(
    src: &Src,
    registry: &mut dyn TableLike,
    m: &Mirror,
    hp: &str,
    flag: &'static str,
    dotted: bool,
    prev: &[String],
    owned: &mut Vec<String>,
) -> Result<(), PlanError> {
    let hp = hp.to_string();
    let created = ensure_table(registry, &hp, dotted);
    if created || prev.contains(&format!("table:{hp}")) {
        owned.push(format!("table:{hp}"));
    }
    note_implicit(registry, &hp, prev, owned);
    let ht = registry
        .get_mut(&hp)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| src.err(&hp, format!("`registry.\"{hp}\"` must be a table")))?;
    let tok = format!("{flag}:{hp}");
    let already = match ht.get(flag) {
        None => false,
        Some(v) if v.as_bool() == Some(true) => true,
        // The user's own `http = false` (or a non-boolean): overwriting it, disarm would then
        // remove the line, the user's setting with it.
        Some(v) => {
            let why = match flag {
                "http" => "the mirror speaks plain HTTP",
                _ => "--insecure skips TLS verification",
            };
            return Err(src.err(
                &hp,
                format!(
                    "`registry.\"{hp}\".{flag}` is `{}`, but {} needs `{flag} = true` ({why}). Set it to true or remove it, then rerun",
                    v.to_string().trim(),
                    m.url()
                ),
            ));
        }
    };
    if !already {
        ht.insert(flag, toml_edit::value(true));
        owned.push(tok);
    } else if prev.contains(&tok) {
        owned.push(tok);
    }
    Ok(())
}

/// Tables that were only implicit and are no longer wanted: implicit again once their values
/// are gone (else an empty header would stay behind).
fn restore_implicit(registry: &mut dyn TableLike, prev: &[String], owned: &[String]) {
    for t in prev {
        let Some(name) = t.strip_prefix(IMPLICIT_TOK) else {
            continue;
        };
        if owned.contains(t) {
            continue;
        }
        if let Some(Item::Table(tab)) = registry.get_mut(name) {
            if tab.get_values().is_empty() {
                tab.set_implicit(true);
            }
        }
    }
}

/// Keys of the tables mirrorctl created get the file's own indentation.
fn indent_created(doc: &mut toml_edit::DocumentMut, owned: &[String], body: &str) {
    let indent = toml_util::key_indent(body);
    if let Some(registry) = doc.get_mut("registry").and_then(Item::as_table_like_mut) {
        for t in owned.iter().filter_map(|t| t.strip_prefix("table:")) {
            if let Some(Item::Table(tab)) = registry.get_mut(t) {
                toml_util::indent_keys(tab, &indent);
            }
        }
    }
}

const IMPLICIT_TOK: &str = "implicit:";

/// A table that exists only as the parent of others (`[[registry."docker.io".keypair]]`) gets a
/// header of its own once mirrorctl puts a value in it: remember that it was implicit (or keep
/// remembering), so that it is made implicit again when the values are gone.
fn note_implicit(registry: &dyn TableLike, name: &str, prev: &[String], owned: &mut Vec<String>) {
    let tok = format!("{IMPLICIT_TOK}{name}");
    // (Dotted tables have no header either way, and count as implicit when parsed.)
    let implicit =
        matches!(registry.get(name), Some(Item::Table(t)) if t.is_implicit() && !t.is_dotted());
    if (implicit || prev.contains(&tok)) && !owned.contains(&tok) {
        owned.push(tok);
    }
}

/// `http` for a plain-HTTP mirror, `insecure` for https with `--insecure`.
fn flag_for(set: &MirrorSet, m: &Mirror) -> Option<&'static str> {
    if m.is_http() {
        Some("http")
    } else if set.insecure {
        Some("insecure")
    } else {
        None
    }
}

/// Make `parent[name]` a table (a `[registry."name"]` header table, or a dotted / inline one
/// matching the parent's spelling); returns whether it was created.
fn ensure_table(parent: &mut dyn TableLike, name: &str, dotted: bool) -> bool {
    if parent.get(name).is_some() {
        return false;
    }
    if parent.is_dotted() || dotted {
        let mut t = Table::new();
        t.set_dotted(true);
        parent.insert(name, Item::Table(t));
    } else if parent.get_values().is_empty() && parent.iter().all(|(_, v)| v.is_table())
        || parent.iter().next().is_none()
    {
        parent.insert(name, Item::Table(Table::new()));
    } else {
        // An inline `registry = { … }` or `[registry]` with inline entries: stay inline.
        let inline = parent.iter().any(|(_, v)| v.is_inline_table());
        if inline {
            parent.insert(
                name,
                Item::Value(Value::InlineTable(toml_edit::InlineTable::new())),
            );
        } else {
            parent.insert(name, Item::Table(Table::new()));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str], insecure: bool) -> MirrorSet {
        let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        if v.is_empty() {
            return MirrorSet {
                registries: vec![],
                insecure,
            };
        }
        MirrorSet::from_args(&v, "docker.io", insecure).unwrap()
    }

    #[test]
    fn a_project_mirror_is_host_slash_project_with_both_flag_tables() {
        let s = set(&["http://harbor.lan:8080/dh"], false);
        let p = plan(None, &s, &[]).unwrap();
        assert_eq!(
            p.text,
            "[registry.\"docker.io\"]\n  mirrors = [\"harbor.lan:8080/dh\"]\n\n[registry.\"harbor.lan:8080\"]\n  http = true\n\n[registry.\"harbor.lan:8080/dh\"]\n  http = true\n"
        );
        assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
        let same = set(&["http://harbor.lan:8080/v2/dh/"], false);
        assert_eq!(plan(Some(&p.text), &same, &p.owned).unwrap(), p);
        assert_eq!(
            plan(Some(&p.text), &set(&[], false), &p.owned)
                .unwrap()
                .text,
            ""
        );
        // https, not insecure: the entry alone.
        let p = plan(None, &set(&["https://harbor.example/dh"], false), &[]).unwrap();
        assert_eq!(
            p.text,
            "[registry.\"docker.io\"]\n  mirrors = [\"harbor.example/dh\"]\n"
        );
    }

    #[test]
    fn fresh_file_round_trip() {
        let p = plan(None, &set(&["http://127.0.0.1:5001"], false), &[]).unwrap();
        assert_eq!(
            p.text,
            "[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.1:5001\"]\n\n[registry.\"127.0.0.1:5001\"]\n  http = true\n"
        );
        let again = plan(
            Some(&p.text),
            &set(&["http://127.0.0.1:5001"], false),
            &p.owned,
        )
        .unwrap();
        assert_eq!(again.text, p.text);
        let back = plan(Some(&p.text), &set(&[], false), &p.owned).unwrap();
        assert_eq!(back.text, "");
    }

    #[test]
    fn keeps_comments_and_user_mirrors_and_edits_inline_in_place() {
        let cur = "# buildkitd\ndebug = true\n\n[registry]\n  \"docker.io\" = { mirrors = [\"user.example\"] } # mine\n";
        let p = plan(Some(cur), &set(&["https://m.example"], false), &[]).unwrap();
        assert!(
            p.text.starts_with("# buildkitd\ndebug = true\n"),
            "{}",
            p.text
        );
        assert!(
            p.text
                .contains("\"docker.io\" = { mirrors = [\"m.example\", \"user.example\"] } # mine"),
            "{}",
            p.text
        );
        assert_eq!(p.text.matches("docker.io").count(), 1, "{}", p.text);
        let back = plan(Some(&p.text), &set(&[], false), &p.owned).unwrap();
        assert_eq!(back.text, cur);
    }

    #[test]
    fn dotted_keys_stay_dotted() {
        let cur = "registry.\"docker.io\".mirrors = [\"user.example\"]\n";
        let p = plan(Some(cur), &set(&["http://127.0.0.1:5001"], false), &[]).unwrap();
        assert_eq!(p.text.matches("\"docker.io\"").count(), 1, "{}", p.text);
        assert!(
            p.text.contains("registry.\"127.0.0.1:5001\".http = true"),
            "{}",
            p.text
        );
        let back = plan(Some(&p.text), &set(&[], false), &p.owned).unwrap();
        assert_eq!(back.text, cur);
    }

    #[test]
    fn mixed_line_ends_and_no_final_newline_survive_arm_and_disarm() {
        // toml_edit writes `\n` everywhere and ends with one; found by the fuzz harness.
        let cur = "debug = true\r\n[registry.\"docker.io\"]\n  mirrors = [\"user.example\"]\r\n\r\n[registry.\"ghcr.io\"]";
        let p = plan(Some(cur), &set(&["http://127.0.0.1:5001"], false), &[]).unwrap();
        assert!(
            p.text.starts_with("debug = true\r\n") && !p.text.ends_with('\n'),
            "{:?}",
            p.text
        );
        assert!(
            p.text
                .contains("mirrors = [\"127.0.0.1:5001\", \"user.example\"]\r\n"),
            "{:?}",
            p.text
        );
        let back = plan(Some(&p.text), &set(&[], false), &p.owned).unwrap();
        assert_eq!(back.text, cur);
    }

    #[test]
    fn an_implicit_registry_table_stays_implicit() {
        // As in containerd's config.toml, where the fuzz harness found it: the table that
        // existed only as the keypairs' parent got a header for `mirrors`, and disarm left it.
        let cur = "[[registry.\"docker.io\".keypair]]\n  key = \"/k.pem\"\n  cert = \"/c.pem\"\n";
        let s = set(&["http://127.0.0.1:5001"], false);
        let p = plan(Some(cur), &s, &[]).unwrap();
        assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
        let back = plan(Some(&p.text), &set(&[], false), &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn dotted_tables_are_not_remembered_as_implicit() {
        // A parsed dotted table counts as implicit, but has no header to lose: not remembered
        // (else a re-arm remembers the dotted table the first arm created, and owned changes).
        let cur = "registry.\"docker.io\".mirrors = [\"user.example\"]\n";
        let s = set(&["http://127.0.0.1:5001"], false);
        let p = plan(Some(cur), &s, &[]).unwrap();
        assert_eq!(plan(Some(&p.text), &s, &p.owned).unwrap(), p);
    }

    #[test]
    fn refuses_a_second_byte_order_mark() {
        // Found by the fuzz harness: toml_edit dropped the second BOM, disarm could not give
        // it back (and the clients' TOML parsers refuse it).
        let e = plan(
            Some("\u{feff}\u{feff}debug = true\n"),
            &set(&["http://127.0.0.1:5001"], false),
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("second byte order mark"), "{e}");
        plan(
            Some("\u{feff}debug = true\n"),
            &set(&["http://127.0.0.1:5001"], false),
            &[],
        )
        .unwrap();
    }

    #[test]
    fn refuses_to_overwrite_the_users_flag() {
        // Found by the fuzz harness: `http = false` (or `http = 2`) was replaced by
        // `http = true`, owned, and disarm then removed the user's line.
        for v in ["false", "2", "\"yes\""] {
            let cur = format!("[registry.\"127.0.0.1:5001\"]\n  http = {v}\n");
            let e = plan(Some(&cur), &set(&["http://127.0.0.1:5001"], false), &[]).unwrap_err();
            assert_eq!(e.line, 1, "{e}");
            assert!(
                e.message
                    .contains(&format!("`registry.\"127.0.0.1:5001\".http` is `{v}`")),
                "{e}"
            );
        }
        let cur = "[registry.\"m.example\"]\n  insecure = false\n";
        let e = plan(Some(cur), &set(&["https://m.example"], true), &[]).unwrap_err();
        assert!(e.message.contains("--insecure"), "{e}");
    }

    #[test]
    fn a_mirror_named_like_its_registry_is_owned_once() {
        // `docker.io=http://docker.io`: one table is both the registry's and the mirror's; a
        // re-arm listed it twice in `owned` (found by the fuzz harness).
        let s = set(&["docker.io=http://docker.io"], false);
        let p = plan(Some("debug = true\n"), &s, &[]).unwrap();
        let again = plan(Some(&p.text), &s, &p.owned).unwrap();
        assert_eq!(again, p);
        let back = plan(Some(&p.text), &set(&[], false), &p.owned).unwrap();
        assert_eq!(back.text, "debug = true\n");
    }

    #[test]
    fn errors_have_positions() {
        let e = plan(
            Some("a = 1\n[registry\n"),
            &set(&["http://x:1"], false),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = plan(Some("registry = 3\n"), &set(&["http://x:1"], false), &[]).unwrap_err();
        assert!(e.message.contains("must be a table"), "{e}");
        let e = plan(
            Some("[registry.\"docker.io\"]\nmirrors = \"x\"\n"),
            &set(&["http://x:1"], false),
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("list of strings"), "{e}");
        assert_eq!(e.line, 2);
    }
}
