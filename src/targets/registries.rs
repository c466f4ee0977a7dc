//! containers-registries.conf(5), the file podman, CRI-O, skopeo and buildah share: a drop-in
//! `/etc/containers/registries.conf.d/90-mirrorctl.conf` (v2 format) with one `[[registry]]`
//! table per mirrored registry and its `[[registry.mirror]]` entries.
//!
//! Why a drop-in, and why `90-`: drop-ins are read after the main file in byte order of their
//! names, and a `[[registry]]` with the same `prefix` in a later file **replaces** the earlier
//! table as a whole (mirrors included). Distributions ship low numbers (`000-shortnames.conf`,
//! `001-rhel-shortnames.conf`, `01-registries.conf`) and admins typically use 10–50, so `90-`
//! comes after them and wins; a later drop-in (91–99, or a name sorting after ours) with the
//! same prefix would silently undo mirrorctl's table, so the planner refuses that case.
//!
//! Because the drop-in replaces the whole table, the planner copies the settings and mirrors of
//! the table with that prefix from `registries.conf` and the earlier drop-ins (the *context*
//! texts the engine reads for it), mirrorctl's mirrors first. A v1-format main file
//! (`[registries.search]` …) is read the way containers/image converts it (see
//! [`main_tables`]) and stays as it is; v1 drop-ins are refused, as the clients refuse them.

use super::text::{reframe, unframe};
use super::Planned;
use crate::error::PlanError;
use crate::mirror::{Mirror, MirrorSet};
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

pub const MAIN_CONF: &str = "/etc/containers/registries.conf";
pub const DROPIN_DIR: &str = "/etc/containers/registries.conf.d";
pub const DROPIN_NAME: &str = "90-mirrorctl.conf";

pub fn dropin_path() -> String {
    format!("{DROPIN_DIR}/{DROPIN_NAME}")
}

const HEADER: &str = "# Written by mirrorctl (`mirrorctl disarm` removes it). A [[registry]] here replaces the\n# table with the same prefix in registries.conf and earlier drop-ins, so their settings and\n# mirrors are copied below, after mirrorctl's.\n";

fn tok_table(registry: &str) -> String {
    format!("registry:{registry}")
}
fn tok_mirror(registry: &str, location: &str) -> String {
    format!("mirror:{registry}={location}")
}

/// A `[[registry]]` table as read from another file.
struct Source {
    table: Table,
}

/// Parse TOML, mapping toml_edit's error span to line:col of the original text.
fn parse(
    original: &str,
    body: &str,
    framing: super::text::Framing,
) -> Result<DocumentMut, PlanError> {
    super::toml_util::refuse_second_bom(original, framing, body)?;
    body.parse::<DocumentMut>().map_err(|e| {
        let off = e.span().map(|s| s.start).unwrap_or(0);
        let orig = super::text::original_offset(original, framing, off);
        let msg = e.message().trim().to_string();
        PlanError::at_offset(original, orig, format!("invalid TOML: {msg}"))
    })
}

/// Refuse a drop-in in the v1 format (`[registries.search]`, `[registries.insecure]`,
/// `[registries.block]` with entries): containers/image reads drop-ins as v2 only.
fn refuse_v1(doc: &DocumentMut, original: &str, what: &str) -> Result<(), PlanError> {
    if v1_set(doc) {
        let at = original
            .find("[registries")
            .or_else(|| original.find("registries"))
            .unwrap_or(0);
        let (line, col) = crate::error::line_col(original, at);
        let msg = "a drop-in in the v1 registries.conf format (`[registries.search]`, `[registries.insecure]`, `[registries.block]`): containers/image reads drop-ins as v2 only (\"registry must be in v2 format but is in v1\"), so podman, skopeo and buildah fail on it already. Convert it to v2 (`unqualified-search-registries = [...]` and `[[registry]]` tables with `insecure`/`blocked`), then rerun";
        return Err(if what.is_empty() {
            PlanError::new(line, col, msg)
        } else {
            PlanError::whole(format!(
                "`{what}` (read to copy its [[registry]] tables), line {line}, column {col}: {msg}"
            ))
        });
    }
    Ok(())
}

/// Does a document set a v1 list with entries (containers/image's `V1RegistriesConf.Nonempty`)?
fn v1_set(doc: &DocumentMut) -> bool {
    ["search", "insecure", "block"].iter().any(|s| {
        doc.get("registries")
            .and_then(|r| r.get(s))
            .and_then(|t| t.get("registries"))
            .is_some_and(|l| l.as_array().is_none_or(|a| !a.is_empty()))
    })
}

/// The main file's `[[registry]]` tables. containers/image reads the main file in either format
/// (only drop-ins must be v2: `loadConfigFile(path, forceV2)` in `pkg/sysregistriesv2`), so a
/// v1 file (`[registries.search]`, `[registries.insecure]`, `[registries.block]`) is read the
/// way `ConvertToV2` does: one table per blocked, then per insecure registry, `prefix` =
/// `location` = the registry, `blocked` / `insecure` set. A file with both formats set is the
/// client's own error ("mixing sysregistry v1/v2 is not supported"), refused here too.
fn main_tables(doc: &DocumentMut, original: &str, path: &str) -> Result<Vec<Table>, PlanError> {
    let at = |key: &str, msg: String| {
        let off = original.find(key).unwrap_or(0);
        let (line, col) = crate::error::line_col(original, off);
        PlanError::whole(format!(
            "`{path}` (read to copy its [[registry]] tables), line {line}, column {col}: {msg}"
        ))
    };
    let Some(v1) = doc.get("registries") else {
        return Ok(registry_tables(doc));
    };
    let list = |name: &str| -> Result<Vec<String>, PlanError> {
        let Some(section) = v1.get(name) else {
            return Ok(Vec::new());
        };
        section
            .get("registries")
            .map(|l| {
                super::toml_util::string_array(l).ok_or_else(|| {
                    at(
                        "registries",
                        format!("`registries.{name}.registries` must be a list of registry names"),
                    )
                })
            })
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let (search, insecure, block) = (list("search")?, list("insecure")?, list("block")?);
    let v1_set = !(search.is_empty() && insecure.is_empty() && block.is_empty());
    if v1_set && v2_set(doc) {
        return Err(at("[registries", "sets both v1 (`[registries.*]`) and v2 settings, which containers/image refuses (\"mixing sysregistry v1/v2 is not supported\"): podman, skopeo and buildah fail on this file already. Keep one format, then rerun".into()));
    }
    if !v1_set {
        return Ok(registry_tables(doc));
    }
    let mut order: Vec<(String, bool, bool)> = Vec::new();
    for (loc, blocked) in block
        .iter()
        .map(|l| (l, true))
        .chain(insecure.iter().map(|l| (l, false)))
    {
        let loc = loc.trim_end_matches('/');
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return Err(at(loc, format!("`{loc}`: containers/image refuses a URI scheme in a v1 registry list; write the bare host[:port], then rerun")));
        }
        match order.iter_mut().find(|(l, _, _)| l == loc) {
            Some(e) if blocked => e.1 = true,
            Some(e) => e.2 = true,
            None => order.push((loc.to_string(), blocked, !blocked)),
        }
    }
    Ok(order
        .into_iter()
        .map(|(loc, blocked, insecure)| {
            let mut t = Table::new();
            t.insert("prefix", value(loc.as_str()));
            t.insert("location", value(loc.as_str()));
            if blocked {
                t.insert("blocked", value(true));
            }
            if insecure {
                t.insert("insecure", value(true));
            }
            t
        })
        .collect())
}

/// Does a document set any v2 setting (containers/image's `V2RegistriesConf.Nonempty`)?
fn v2_set(doc: &DocumentMut) -> bool {
    let nonempty = |k: &str| match doc.get(k) {
        None => false,
        Some(Item::Value(toml_edit::Value::Array(a))) => !a.is_empty(),
        Some(Item::ArrayOfTables(a)) => !a.is_empty(),
        Some(i) => i.as_table_like().is_none_or(|t| !t.is_empty()),
    };
    [
        "registry",
        "unqualified-search-registries",
        "credential-helpers",
        "short-name-mode",
        "aliases",
    ]
    .iter()
    .any(|k| nonempty(k))
}

/// The `[[registry]]` tables of a document, whether written as tables or as an inline array.
fn registry_tables(doc: &DocumentMut) -> Vec<Table> {
    match doc.get("registry") {
        Some(Item::ArrayOfTables(a)) => a.iter().cloned().collect(),
        Some(Item::Value(toml_edit::Value::Array(a))) => a
            .iter()
            .filter_map(|v| v.as_inline_table())
            .map(|t| t.clone().into_table())
            .collect(),
        _ => Vec::new(),
    }
}

/// The prefix a `[[registry]]` table applies to (`prefix`, else `location`).
fn prefix_of(t: &Table) -> Option<String> {
    t.get("prefix")
        .or_else(|| t.get("location"))
        .and_then(|v| v.as_str())
        .map(|s| s.trim().to_string())
}

/// A table's mirrors as tables, whichever way they are written.
fn mirror_tables(t: &Table) -> Vec<Table> {
    match t.get("mirror") {
        Some(Item::ArrayOfTables(a)) => a.iter().cloned().collect(),
        Some(Item::Value(toml_edit::Value::Array(a))) => a
            .iter()
            .filter_map(|v| v.as_inline_table())
            .map(|t| t.clone().into_table())
            .collect(),
        _ => Vec::new(),
    }
}

fn location_of(t: &Table) -> String {
    t.get("location")
        .and_then(|v| v.as_str())
        .map(norm_location)
        .unwrap_or_default()
}

fn norm_location(s: &str) -> String {
    s.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Plan the drop-in. `context` holds `(system path, text)` of `registries.conf` and every
/// drop-in in `registries.conf.d` (the drop-in itself excluded); `dropin_name` is this file's
/// name, to tell earlier drop-ins from later ones.
pub fn plan(
    current: Option<&str>,
    set: &MirrorSet,
    prev: &[String],
    context: &[(String, String)],
) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let (framing, body) = unframe(original);
    let mut doc = parse(original, &body, framing)?;
    refuse_v1(&doc, original, "")?;
    // Room between the file's tables for mirror tables placed among them (edit_user_table).
    super::toml_util::scale_positions(doc.as_table_mut(), POSITION_GAP);
    let ctx = read_context(context)?;
    refuse_later_tables(set, &ctx.later)?;

    let fresh = original.trim_start_matches('\u{feff}').trim().is_empty();
    if !doc.contains_key("registry") {
        if set.registries.is_empty() {
            return Ok(Planned {
                text: original.to_string(),
                owned: Vec::new(),
            });
        }
        let a = ArrayOfTables::new();
        doc.insert("registry", Item::ArrayOfTables(a));
    }
    let end = super::toml_util::max_position(doc.as_table()) + 1;
    let Some(aot) = doc
        .get_mut("registry")
        .and_then(Item::as_array_of_tables_mut)
    else {
        let at = original.find("registry").unwrap_or(0);
        return Err(PlanError::at_offset(
            original,
            at,
            "`registry` must be written as [[registry]] tables for mirrorctl to edit it",
        ));
    };
    let mut edit = Edit {
        set,
        prev,
        sources: ctx.sources,
        owned: Vec::new(),
    };
    edit.refuse_duplicate_prefixes(aot, original)?;
    edit.edit_tables(aot)?;
    edit.add_missing_tables(aot, end);
    if aot.is_empty() {
        doc.remove("registry");
    }
    let owned = edit.owned;

    let mut text = super::toml_util::render_edit(&body, &doc, false);
    if fresh && !set.registries.is_empty() {
        text = format!("{HEADER}\n{}", text.trim_start());
    }
    if !owned.iter().any(|t| t.starts_with("registry:")) && text.trim() == HEADER.trim() {
        text.clear();
    }
    Ok(Planned {
        text: reframe(framing, &text),
        owned,
    })
}

/// What the other files say about the tables the drop-in holds.
struct Context {
    /// Per prefix, the table in force before the drop-in (the last one read).
    sources: Vec<(String, Source)>,
    /// `(prefix, path)` of every table in a drop-in read after this one.
    later: Vec<(String, String)>,
}

/// Read the other files in the order containers/image reads them: the main file, then
/// drop-ins by name. Tables with the same prefix in a later file replace earlier ones.
fn read_context(context: &[(String, String)]) -> Result<Context, PlanError> {
    let mut ctx: Vec<&(String, String)> = context.iter().collect();
    ctx.sort_by_key(|(p, _)| (p != MAIN_CONF, file_name(p).to_string()));
    let mut sources: Vec<(String, Source)> = Vec::new();
    let mut later: Vec<(String, String)> = Vec::new();
    for (path, text) in ctx {
        let (f, b) = unframe(text);
        let d = parse(text, &b, f).map_err(|e| {
            PlanError::whole(format!(
                "`{path}` (read to copy its [[registry]] tables), line {}, column {}: {}",
                e.line, e.column, e.message
            ))
        })?;
        let tables = match path == MAIN_CONF {
            true => main_tables(&d, text, path)?,
            false => {
                refuse_v1(&d, text, path)?;
                registry_tables(&d)
            }
        };
        let is_later = path != MAIN_CONF && file_name(path) > DROPIN_NAME;
        for t in tables {
            let Some(p) = prefix_of(&t) else { continue };
            if is_later {
                later.push((p, path.clone()));
                continue;
            }
            sources.retain(|(sp, _)| *sp != p);
            sources.push((p, Source { table: t }));
        }
    }
    Ok(Context { sources, later })
}

/// Refuse to mirror a registry a later drop-in has a table for: that table would replace
/// mirrorctl's (mirrors included), and the mirror would never be used.
fn refuse_later_tables(set: &MirrorSet, later: &[(String, String)]) -> Result<(), PlanError> {
    for r in &set.registries {
        if let Some((_, path)) = later.iter().find(|(p, _)| *p == r.registry) {
            return Err(PlanError::whole(format!(
                "`{path}` sorts after `{DROPIN_NAME}` and has a [[registry]] with prefix \"{}\": it would replace mirrorctl's table (mirrors included) and the mirror would never be used. Move its settings into registries.conf or an earlier drop-in, then rerun",
                r.registry
            )));
        }
    }
    Ok(())
}

/// The edit of the drop-in's `[[registry]]` tables: what is wanted, what mirrorctl owned
/// before, the tables copied from the other files, and the tokens owned now.
struct Edit<'a> {
    set: &'a MirrorSet,
    prev: &'a [String],
    sources: Vec<(String, Source)>,
    owned: Vec<String>,
}

impl Edit<'_> {
    /// The table with `prefix` the other files hold, copied into a new table.
    fn source(&self, prefix: &str) -> Option<&Source> {
        self.sources
            .iter()
            .find(|(sp, _)| *sp == prefix)
            .map(|(_, s)| s)
    }

    /// Refuse two [[registry]] tables with the prefix of a table mirrorctl edits:
    /// containers/image keeps the last (it merges tables by prefix), and mirrorctl's entries
    /// are owned per prefix, so an edit of one looked like an edit of the other (as for
    /// daemon.json's duplicated keys). The error points at the second table's header.
    fn refuse_duplicate_prefixes(
        &self,
        aot: &ArrayOfTables,
        original: &str,
    ) -> Result<(), PlanError> {
        let prefixes: Vec<String> = aot
            .iter()
            .map(|t| prefix_of(t).unwrap_or_default())
            .collect();
        let edits = |p: &str| {
            self.set.for_registry(p).is_some()
                || self
                    .prev
                    .iter()
                    .any(|t| *t == tok_table(p) || t.starts_with(&format!("mirror:{p}=")))
        };
        let second = prefixes
            .iter()
            .enumerate()
            .find(|&(i, p)| edits(p) && prefixes.iter().take(i).any(|q| q == p));
        let Some((i, p)) = second else {
            return Ok(());
        };
        let msg = format!(
            "two [[registry]] tables have prefix \"{p}\": containers/image uses the last one, so the file is ambiguous. Merge them into one, then rerun"
        );
        let headers = registry_headers(original);
        let at = match headers.len() == prefixes.len() {
            true => headers.get(i),
            false => None,
        };
        Err(match at {
            Some(&off) => PlanError::at_offset(original, off, msg),
            None => PlanError::whole(msg),
        })
    }

    /// Edit the tables the file has: those mirrorctl owns are rebuilt from scratch (or
    /// dropped when no longer wanted); in the user's own, mirrorctl's mirrors are added or
    /// removed, the rest kept.
    fn edit_tables(&mut self, aot: &mut ArrayOfTables) -> Result<(), PlanError> {
        let (set, prev) = (self.set, self.prev);
        aot.retain(|t| {
            let p = prefix_of(t).unwrap_or_default();
            !prev.contains(&tok_table(&p)) || set.for_registry(&p).is_some()
        });
        for slot in aot.iter_mut() {
            let p = prefix_of(slot).unwrap_or_default();
            if prev.contains(&tok_table(&p)) {
                if let Some(r) = set.for_registry(&p) {
                    let (decor, position) = (slot.decor().clone(), slot.position());
                    *slot = build_table(&p, &r.mirrors, set, self.source(&p));
                    *slot.decor_mut() = decor;
                    slot.set_position(position);
                    self.owned.push(tok_table(&p));
                }
                continue;
            }
            let want: &[Mirror] = set
                .for_registry(&p)
                .map(|r| r.mirrors.as_slice())
                .unwrap_or(&[]);
            self.edit_user_table(slot, &p, want)?;
        }
        Ok(())
    }

    /// A table for every wanted registry the file has none for, after every table of the
    /// file (from position `end` on): without a position it would follow the last one
    /// visited, which need not be the last in the file (a sub-table of the previous
    /// [[registry]] written before its last [[registry.mirror]]), and mirror tables written
    /// after it would become this table's.
    fn add_missing_tables(&mut self, aot: &mut ArrayOfTables, mut end: isize) {
        for r in &self.set.registries {
            let exists = aot
                .iter()
                .any(|t| prefix_of(t).as_deref() == Some(r.registry.as_str()));
            if !exists {
                let src = self.source(&r.registry);
                let mut t = build_table(&r.registry, &r.mirrors, self.set, src);
                t.set_position(Some(end));
                end += 1;
                aot.push(t);
                self.owned.push(tok_table(&r.registry));
            }
        }
    }

    /// A table the user wrote in this file: mirrorctl's mirrors first, stale ones removed.
    fn edit_user_table(
        &mut self,
        t: &mut Table,
        prefix: &str,
        want: &[Mirror],
    ) -> Result<(), PlanError> {
        let prev = self.prev;
        if want.is_empty()
            && !prev
                .iter()
                .any(|p| p.starts_with(&format!("mirror:{prefix}=")))
        {
            return Ok(());
        }
        if !t.contains_key("mirror") {
            if want.is_empty() {
                return Ok(());
            }
            t.insert("mirror", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let Some(aot) = t.get_mut("mirror").and_then(Item::as_array_of_tables_mut) else {
            return Err(PlanError::whole(format!(
                "the [[registry]] for \"{prefix}\" writes `mirror` inline; write [[registry.mirror]] tables for mirrorctl to edit it"
            )));
        };
        let existing: Vec<Table> = aot.iter().cloned().collect();
        let wanted = self.wanted_mirror_tables(prefix, want, &existing);
        let front = wanted.tables.len();
        let mut out = wanted.tables;
        for (e, used) in existing.iter().zip(&wanted.used) {
            if *used || prev.contains(&tok_mirror(prefix, &location_of(e))) {
                continue;
            }
            out.push(e.clone());
        }
        if out.is_empty() {
            t.remove("mirror");
        } else if out
            .iter()
            .map(Table::to_string)
            .ne(existing.iter().map(Table::to_string))
        {
            *aot = placed_first(out, front);
        }
        Ok(())
    }

    /// The mirror tables for `want`, in order: the user's own entry for a wanted location
    /// where there is one (only the first with its location: a duplicate the user wrote
    /// stays, among the rest), else a new one mirrorctl owns. Also says which of the
    /// `existing` entries were used.
    fn wanted_mirror_tables(
        &mut self,
        prefix: &str,
        want: &[Mirror],
        existing: &[Table],
    ) -> WantedMirrors {
        let mut used = vec![false; existing.len()];
        let mut tables: Vec<Table> = Vec::new();
        for l in locations(want, self.set) {
            let hp = l.0.clone();
            let users = match self.prev.contains(&tok_mirror(prefix, &hp)) {
                true => None,
                false => existing
                    .iter()
                    .zip(used.iter_mut())
                    .find(|(e, used)| !**used && location_of(e) == hp),
            };
            match users {
                Some((e, used)) => {
                    *used = true;
                    tables.push(e.clone());
                }
                None => {
                    tables.push(mirror_table(&l));
                    self.owned.push(tok_mirror(prefix, &hp));
                }
            }
        }
        WantedMirrors { tables, used }
    }
}

/// The mirror tables for the wanted mirrors, and which of the user's entries they took.
struct WantedMirrors {
    tables: Vec<Table>,
    used: Vec<bool>,
}

/// The mirror tables `out` as an array whose first `front` (the wanted ones) are written
/// first. Tables are written in the order of their document positions (scaled by
/// POSITION_GAP in `plan`). The user's other mirrors keep theirs, so their layout stays (one
/// written after another [[…]] table, say); the wanted ones go just before the first of them,
/// or, with none, follow their [[registry]] (no position).
fn placed_first(out: Vec<Table>, front: usize) -> ArrayOfTables {
    let first_rest = out.iter().skip(front).filter_map(Table::position).min();
    let mut a = ArrayOfTables::new();
    for (k, mut m) in out.into_iter().enumerate() {
        if k < front {
            m.set_position(first_rest.map(|p| p - POSITION_GAP + 1 + k as isize));
        }
        a.push(m);
    }
    a
}

/// The offsets of the `[[registry]]` headers of a text (at their first non-blank character).
fn registry_headers(text: &str) -> Vec<usize> {
    let mut off = 0;
    let mut headers = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("[[registry]]") {
            headers.push(off + line.len() - line.trim_start().len());
        }
        off += line.len();
    }
    headers
}

/// The factor table positions are scaled by (see [`super::toml_util::scale_positions`]).
const POSITION_GAP: isize = 1 << 16;

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn mirror_table((location, insecure): &(String, bool)) -> Table {
    let mut t = Table::new();
    t.insert("location", value(location.as_str()));
    if *insecure {
        t.insert("insecure", value(true));
    }
    t
}

/// The mirrors as `(location, insecure)`: registries.conf writes no scheme, so `http://h` and
/// `https://h` are one location (insecure if either needs it), listed once, where first seen.
fn locations(mirrors: &[Mirror], set: &MirrorSet) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for m in mirrors {
        let hp = m.location();
        match out.iter_mut().find(|(l, _)| *l == hp) {
            Some((_, insecure)) => *insecure |= set.needs_insecure(m),
            None => out.push((hp, set.needs_insecure(m))),
        }
    }
    out
}

/// A `[[registry]]` for `prefix`: the copied settings (or `location = prefix`), mirrorctl's
/// mirrors, then the copied mirrors not already listed.
fn build_table(prefix: &str, mirrors: &[Mirror], set: &MirrorSet, src: Option<&Source>) -> Table {
    let mut t = Table::new();
    t.insert("prefix", value(prefix));
    match src {
        Some(s) => {
            if !s.table.contains_key("location") {
                t.insert("location", value(prefix));
            }
            for (k, v) in s.table.iter() {
                if k == "prefix" || k == "mirror" {
                    continue;
                }
                if let Some(v) = v.as_value() {
                    let mut v = v.clone();
                    v.decor_mut().clear();
                    t.insert(k, Item::Value(v));
                }
            }
        }
        None => {
            t.insert("location", value(prefix));
        }
    }
    let mut aot = ArrayOfTables::new();
    let mut seen: Vec<String> = Vec::new();
    for l in locations(mirrors, set) {
        seen.push(l.0.clone());
        aot.push(mirror_table(&l));
    }
    if let Some(s) = src {
        for mt in mirror_tables(&s.table) {
            let loc = location_of(&mt);
            if seen.contains(&loc) {
                continue;
            }
            seen.push(loc);
            let mut copy = Table::new();
            for (k, v) in mt.iter() {
                if let Some(v) = v.as_value() {
                    let mut v = v.clone();
                    v.decor_mut().clear();
                    copy.insert(k, Item::Value(v));
                }
            }
            aot.push(copy);
        }
    }
    t.insert("mirror", Item::ArrayOfTables(aot));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn set(urls: &[&str], insecure: bool) -> MirrorSet {
        let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        MirrorSet::from_args(&v, "docker.io", insecure).unwrap()
    }

    #[test]
    fn a_project_mirror_is_located_at_host_slash_project() {
        let s = set(
            &["https://harbor.example/dh", "https://harbor.example"],
            false,
        );
        let p = plan(None, &s, &[], &[]).unwrap();
        assert!(
            p.text.contains(
                "[[registry.mirror]]\nlocation = \"harbor.example/dh\"\n\n[[registry.mirror]]\nlocation = \"harbor.example\"\n"
            ),
            "{}",
            p.text
        );
        assert_eq!(plan(Some(&p.text), &s, &p.owned, &[]).unwrap(), p);
    }

    #[test]
    fn fresh_dropin_round_trips() {
        let s = set(&["http://127.0.0.1:5000"], false);
        let p = plan(None, &s, &[], &[]).unwrap();
        assert!(
            p.text
                .contains("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n"),
            "{}",
            p.text
        );
        assert!(
            p.text
                .contains("[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n"),
            "{}",
            p.text
        );
        let again = plan(Some(&p.text), &s, &p.owned, &[]).unwrap();
        assert_eq!(again, p);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let back = plan(Some(&p.text), &empty, &p.owned, &[]).unwrap();
        assert!(!back.text.contains("[[registry"), "{}", back.text);
    }

    #[test]
    fn copies_main_table_and_mirrors() {
        let main = "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\nblocked = false\n\n[[registry.mirror]]\nlocation = \"corp.example:5000\"\n";
        let ctx = vec![(MAIN_CONF.to_string(), main.to_string())];
        let p = plan(None, &set(&["https://m.example"], false), &[], &ctx).unwrap();
        let a = p.text.find("m.example\"").unwrap();
        let b = p.text.find("corp.example:5000").unwrap();
        assert!(a < b, "{}", p.text);
        assert!(p.text.contains("blocked = false"));
        assert!(!p.text.contains("unqualified-search-registries"));
    }

    #[test]
    fn refuses_v1_and_later_dropins() {
        let e = plan(
            Some("[registries.search]\nregistries = ['quay.io']\n"),
            &set(&["http://a:1"], false),
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("v2 format but is in v1"), "{e}");
        let later = vec![(
            format!("{DROPIN_DIR}/99-x.conf"),
            "[[registry]]\nlocation = \"docker.io\"\n".to_string(),
        )];
        let e = plan(None, &set(&["http://a:1"], false), &[], &later).unwrap_err();
        assert!(e.message.contains("99-x.conf"), "{e}");
    }
}

#[cfg(test)]
mod v1_tests {
    use super::*;

    use super::tests::set;

    #[test]
    fn a_v1_main_file_is_read_as_containers_image_converts_it() {
        // docker.io insecure in the v1 main file: the drop-in's docker.io table replaces the
        // converted one, so it must say insecure too.
        let main = "[registries.search]\nregistries = ['docker.io']\n[registries.insecure]\nregistries = ['docker.io', 'myreg:5000']\n[registries.block]\nregistries = ['bad.example', 'docker.io']\n";
        let ctx = vec![(MAIN_CONF.to_string(), main.to_string())];
        let p = plan(None, &set(&["http://a:1"], false), &[], &ctx).unwrap();
        assert!(
            p.text.contains("blocked = true") && p.text.contains("insecure = true"),
            "{}",
            p.text
        );
        assert!(
            !p.text.contains("myreg"),
            "only docker.io's table is copied: {}",
            p.text
        );
        // Empty v1 lists are no v1 settings at all (containers/image's Nonempty).
        let empty = "[registries.search]\nregistries = []\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"user:5000\"\n";
        let ctx = vec![(MAIN_CONF.to_string(), empty.to_string())];
        let p = plan(None, &set(&["http://a:1"], false), &[], &ctx).unwrap();
        assert!(p.text.contains("user:5000"), "{}", p.text);
    }

    #[test]
    fn both_formats_in_the_main_file_are_refused_as_the_clients_refuse_them() {
        let mixed = "unqualified-search-registries = ['docker.io']\n[registries.insecure]\nregistries = ['myreg:5000']\n";
        let ctx = vec![(MAIN_CONF.to_string(), mixed.to_string())];
        let e = plan(None, &set(&["http://a:1"], false), &[], &ctx).unwrap_err();
        assert!(e.message.contains("mixing sysregistry v1/v2"), "{e}");
        assert!(e.message.contains("line 2"), "{e}");
        let scheme = "[registries.insecure]\nregistries = ['http://myreg:5000']\n";
        let ctx = vec![(MAIN_CONF.to_string(), scheme.to_string())];
        assert!(plan(None, &set(&["http://a:1"], false), &[], &ctx).is_err());
    }
}

#[cfg(test)]
mod rearm_tests {
    use super::*;

    use super::tests::set;

    #[test]
    fn rearm_follows_the_main_file_and_the_new_mirrors() {
        let main1 = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n";
        let ctx1 = vec![(MAIN_CONF.to_string(), main1.to_string())];
        let a = plan(None, &set(&["http://a:1"], false), &[], &ctx1).unwrap();
        let main2 = format!("{main1}\n[[registry.mirror]]\nlocation = \"corp:5000\"\n");
        let ctx2 = vec![(MAIN_CONF.to_string(), main2)];
        let b = plan(Some(&a.text), &set(&["http://b:2"], false), &a.owned, &ctx2).unwrap();
        assert!(!b.text.contains("\"a:1\""), "{}", b.text);
        let (ib, ic) = (
            b.text.find("\"b:2\"").unwrap(),
            b.text.find("corp:5000").unwrap(),
        );
        assert!(ib < ic, "{}", b.text);
        assert!(b.text.starts_with("# Written by mirrorctl"), "{}", b.text);
    }

    #[test]
    fn refuses_a_second_byte_order_mark() {
        // Found by the fuzz harness (in buildkitd.toml): toml_edit dropped the second BOM.
        let e = plan(
            Some("\u{feff}\u{feff}[[registry]]\n"),
            &set(&["http://a:1"], false),
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (1, 2), "{e}");
        assert!(e.message.contains("second byte order mark"), "{e}");
    }

    #[test]
    fn the_users_own_mirror_moves_first_in_the_file() {
        // Found by the fuzz harness: the reordered [[registry.mirror]] copies kept their
        // document positions, so the file still listed the user's other mirror first.
        let cur = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"user:1\"\n\n[[registry.mirror]]\nlocation = \"a:1\"\ninsecure = true\n";
        let p = plan(Some(cur), &set(&["http://a:1"], false), &[], &[]).unwrap();
        assert!(
            p.text.find("\"a:1\"").unwrap() < p.text.find("\"user:1\"").unwrap(),
            "{}",
            p.text
        );
        assert_eq!(
            plan(Some(&p.text), &set(&["http://a:1"], false), &p.owned, &[]).unwrap(),
            p
        );
    }

    #[test]
    fn refuses_two_tables_with_one_prefix() {
        // Found by the fuzz harness: entries are owned per prefix, so a re-arm took the user's
        // mirror in one table for mirrorctl's in the other (arm twice != arm once).
        let cur = "# two\n[[registry]]\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"u:1\"\n\n[[registry]]\nprefix = \"docker.io\"\n";
        let e = plan(Some(cur), &set(&["http://a:1"], false), &[], &[]).unwrap_err();
        assert_eq!((e.line, e.column), (8, 1), "{e}");
        assert!(e.message.contains("uses the last one"), "{e}");
        // Not for prefixes mirrorctl does not touch.
        let other = "[[registry]]\nprefix = \"quay.io\"\n[[registry]]\nprefix = \"quay.io\"\n";
        plan(Some(other), &set(&["http://a:1"], false), &[], &[]).unwrap();
    }

    #[test]
    fn an_http_and_an_https_mirror_of_one_host_are_one_location() {
        // Found by the fuzz harness: both got a [[registry.mirror]] (one taken for the user's,
        // one owned), and a re-arm took the user's for mirrorctl's (arm twice != arm once).
        let s = MirrorSet::from_args(
            &["https://h:1".to_string(), "http://h:1".to_string()],
            "docker.io",
            false,
        )
        .unwrap();
        let p = plan(None, &s, &[], &[]).unwrap();
        assert_eq!(
            p.text.matches("location = \"h:1\"").count(),
            1,
            "{}",
            p.text
        );
        assert!(
            p.text.contains("location = \"h:1\"\ninsecure = true"),
            "{}",
            p.text
        );
        let cur = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"h:1\"\ninsecure = true\n";
        let p = plan(Some(cur), &s, &[], &[]).unwrap();
        assert_eq!(plan(Some(&p.text), &s, &p.owned, &[]).unwrap(), p);
        assert_eq!(p.text, cur);
    }

    #[test]
    fn a_kept_header_keeps_its_line_end_next_to_blank_lines() {
        // Found by the fuzz harness (long run): a blank line paired with a neighbour extended
        // the pairing to the header after it, mirrorctl's, so the user's `[[registry.mirror]]`
        // lost its CR.
        let cur = "[[registry]]\r\nprefix = \"docker.io\"\r\n[registry.\"docker.io\"]\nlocation = \"docker.io\"\r\n\r\n[[registry.mirror]]\r\nlocation = \"crlf.example\"\r\n";
        let a = plan(Some(cur), &set(&["http://127.0.0.1:5000"], false), &[], &[]).unwrap();
        let s = MirrorSet::from_args(
            &["[::1]:5001=http://mirror.lan".to_string()],
            "docker.io",
            false,
        )
        .unwrap();
        let b = plan(Some(&a.text), &s, &a.owned, &[]).unwrap();
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        assert_eq!(
            plan(Some(&b.text), &empty, &b.owned, &[]).unwrap().text,
            cur
        );
    }

    #[test]
    fn a_new_registry_table_goes_after_every_table() {
        // Found by the fuzz harness: the new [[registry]] followed the sub-table written
        // before the previous table's last [[registry.mirror]], which became the new table's
        // (a re-arm then dropped it).
        let cur = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"u:1\"\n[registry.sub]\nx = 1\n\n[[registry.mirror]]\nlocation = \"u:2\"\n";
        let s =
            MirrorSet::from_args(&["quay.io=http://a:1".to_string()], "docker.io", false).unwrap();
        let p = plan(Some(cur), &s, &[], &[]).unwrap();
        assert!(p.text.starts_with(cur), "{}", p.text);
        assert_eq!(plan(Some(&p.text), &s, &p.owned, &[]).unwrap(), p);
    }

    #[test]
    fn the_users_other_mirrors_keep_their_places() {
        // Found by the fuzz harness: without positions, a [[registry.mirror]] written after
        // another table moved up to its [[registry]], and disarm left it there.
        let cur = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"u:1\"\n\n[[rugistry]]\nx = 1\n[[registry.mirror]]\nlocation = \"u:2\"\n";
        let p = plan(Some(cur), &set(&["http://a:1"], false), &[], &[]).unwrap();
        let at = |s: &str| p.text.find(s).unwrap();
        assert!(
            at("\"a:1\"") < at("\"u:1\"") && at("[[rugistry]]") < at("\"u:2\""),
            "{}",
            p.text
        );
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        assert_eq!(
            plan(Some(&p.text), &empty, &p.owned, &[]).unwrap().text,
            cur
        );
    }

    #[test]
    fn a_duplicate_of_a_wanted_mirror_stays() {
        // Found by the fuzz harness: every user entry with a wanted location was dropped but
        // the first, so the user's duplicate did not come back from disarm.
        let cur = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"a:1\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"a:1\"\ninsecure = true\n";
        let p = plan(Some(cur), &set(&["http://a:1"], false), &[], &[]).unwrap();
        assert_eq!(p.text.matches("\"a:1\"").count(), 2, "{}", p.text);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        assert_eq!(
            plan(Some(&p.text), &empty, &p.owned, &[]).unwrap().text,
            cur
        );
    }

    #[test]
    fn mixed_line_ends_and_no_final_newline_survive_arm_and_disarm() {
        // Found by the fuzz harness: toml_edit dropped the `\r`s and added a final newline.
        let cur = "# mine\r\n[[registry]]\nprefix = \"docker.io\"\r\nlocation = \"docker.io\"\r\n\r\n[[registry.mirror]]\r\nlocation = \"user:1\"";
        let p = plan(Some(cur), &set(&["http://a:1"], false), &[], &[]).unwrap();
        assert!(p.text.starts_with("# mine\r\n"), "{:?}", p.text);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let back = plan(Some(&p.text), &empty, &p.owned, &[]).unwrap();
        assert_eq!(back.text, cur);
    }

    #[test]
    fn users_own_table_in_the_dropin_is_edited_in_place() {
        let cur = "# mine\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"user:1\"\n";
        let p = plan(Some(cur), &set(&["http://a:1"], false), &[], &[]).unwrap();
        assert!(p.text.starts_with("# mine\n"), "{}", p.text);
        assert!(p.text.find("\"a:1\"").unwrap() < p.text.find("user:1").unwrap());
        assert_eq!(p.owned, vec![tok_mirror("docker.io", "a:1")]);
        let empty = MirrorSet {
            registries: vec![],
            insecure: false,
        };
        let back = plan(Some(&p.text), &empty, &p.owned, &[]).unwrap();
        assert_eq!(back.text, cur);
    }
}

/// The `[[registry]]` table that decides how containers/image pulls `registry`, as the files
/// under `root` define it: `registries.conf`, then the drop-ins in byte order, a later table
/// with the same prefix replacing an earlier one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effective {
    /// The file whose table wins (`None`: no table for this prefix).
    pub file: Option<std::path::PathBuf>,
    /// Its mirrors in order: (location without scheme, `insecure`).
    pub mirrors: Vec<(String, bool)>,
}

/// See [`Effective`]. `files`: `(path, text)` of `registries.conf` (when it exists) and then
/// every drop-in in byte order of its name, as the engine read them. Fails, naming the file,
/// on malformed TOML.
pub fn effective(files: &[(String, String)], registry: &str) -> Result<Effective, PlanError> {
    let want = norm_location(registry);
    let mut out = Effective::default();
    for (path, text) in files {
        let (framing, body) = unframe(text);
        let doc = parse(text, &body, framing).map_err(|e| {
            PlanError::whole(format!(
                "{path} line {}, column {}: {}",
                e.line, e.column, e.message
            ))
        })?;
        for t in registry_tables(&doc) {
            if prefix_of(&t).map(|p| norm_location(&p)) == Some(want.clone()) {
                out.file = Some(std::path::PathBuf::from(path));
                out.mirrors = mirror_tables(&t)
                    .iter()
                    .map(|m| {
                        let insecure = m
                            .get("insecure")
                            .and_then(|v| v.as_bool())
                            .or_else(|| t.get("insecure").and_then(|v| v.as_bool()))
                            .unwrap_or(false);
                        (location_of(m), insecure)
                    })
                    .collect();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod effective_tests {
    use super::*;

    fn f(p: &str, t: &str) -> (String, String) {
        (p.to_string(), t.to_string())
    }

    #[test]
    fn later_dropin_replaces_and_main_file_counts() {
        let main = f(
            "/r/etc/containers/registries.conf",
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"main:5000\"\n",
        );
        let e = effective(std::slice::from_ref(&main), "docker.io").unwrap();
        assert_eq!(e.mirrors, vec![("main:5000".to_string(), false)]);
        let other = f("/r/d/10-other.conf", "[[registry]]\nprefix = \"quay.io\"\n");
        let ours = f(
            "/r/d/90-mirrorctl.conf",
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"main:5000\"\n",
        );
        let files = vec![main.clone(), other, ours];
        let e = effective(&files, "docker.io").unwrap();
        assert_eq!(
            e.file,
            Some(std::path::PathBuf::from("/r/d/90-mirrorctl.conf"))
        );
        assert_eq!(
            e.mirrors,
            vec![
                ("127.0.0.1:5000".to_string(), true),
                ("main:5000".to_string(), false)
            ]
        );
        assert_eq!(effective(&files, "ghcr.io").unwrap(), Default::default());
        let broken = vec![main, f("/r/d/95-broken.conf", "[[registry]\n")];
        let err = effective(&broken, "docker.io").unwrap_err().to_string();
        assert!(err.contains("95-broken.conf line 1"), "{err}");
    }
}
