//! The `certs.d/<registry>/hosts.toml` planner.
//!
//! ```toml
//! server = "https://registry-1.docker.io"
//!
//! [host."http://mirror.example:5000"]
//!   capabilities = ["pull", "resolve"]
//! ```
//!
//! containerd tries the `[host."…"]` entries in file order, then `server`, so mirrorctl's hosts
//! are placed first, in the given order, then the hosts `--migrate` moved there from
//! config.toml; the user's hosts stay after them. hosts.toml is read on every pull (no restart).
//!
//! Owned tokens: `host:<normalised url>` per host mirrorctl wrote, `server` (it wrote `server`),
//! `top:<key>` (it wrote a top-level TLS key for `server`: `ca`, `client`, `skip_verify`).

use super::super::toml_util;
use super::super::Planned;
use super::legacy::Tls;
use super::setup::Moved;
use crate::error::PlanError;
use crate::mirror::Mirror;
use toml_edit::{DocumentMut, Item, Table};

/// What one hosts.toml should hold.
#[derive(Debug, Clone, Copy)]
pub struct HostsWant<'a> {
    /// The hosts directory name (`docker.io`, `quay.io`, `_default`).
    pub registry: &'a str,
    pub mirrors: &'a [Mirror],
    /// HTTPS mirrors skip TLS verification.
    pub insecure: bool,
    /// `dial_timeout` for mirrorctl's mirrors (a Go duration), for containerd versions that
    /// read it.
    pub dial_timeout: Option<&'a str>,
    pub moved: &'a Moved,
}

impl HostsWant<'_> {
    /// Nothing wanted: disarm.
    pub fn nothing(registry: &str) -> HostsWant<'_> {
        HostsWant {
            registry,
            mirrors: &[],
            insecure: false,
            dial_timeout: None,
            moved: &EMPTY,
        }
    }

    fn is_empty(&self) -> bool {
        self.mirrors.is_empty() && self.moved.is_empty()
    }
}

static EMPTY: Moved = Moved {
    hosts: Vec::new(),
    server_tls: None,
};

/// The keys of a host entry mirrorctl manages (replaced on re-arm, removed with the host).
const MANAGED: [&str; 6] = [
    "capabilities",
    "skip_verify",
    "dial_timeout",
    "override_path",
    "ca",
    "client",
];

/// One `[host."<url>"]` entry to write.
struct Wanted {
    url: String,
    norm: String,
    keys: Vec<(&'static str, toml_edit::Value)>,
}

/// A host key normalised: a key without scheme means https; scheme and host lower-case, the
/// default port dropped; the path kept, without a trailing slash.
pub fn norm_host(key: &str) -> String {
    let k = key.trim().trim_end_matches('/');
    let with_scheme = match k.contains("://") {
        true => k.to_string(),
        false => format!("https://{k}"),
    };
    let (origin, path) = match with_scheme.split_once("://") {
        Some((s, rest)) => match rest.find('/') {
            Some(i) => (
                format!("{s}://{}", rest.get(..i).unwrap_or(rest)),
                rest.get(i..).unwrap_or(""),
            ),
            None => (with_scheme.clone(), ""),
        },
        None => (with_scheme.clone(), ""),
    };
    let origin = Mirror::parse_lenient(&origin)
        .map(|m| m.url())
        .unwrap_or_else(|| origin.to_ascii_lowercase());
    format!("{origin}{path}")
}

fn tok(norm: &str) -> String {
    format!("host:{norm}")
}

/// The hosts to write, in order: mirrorctl's mirrors, then the moved hosts that are not one
/// of them.
fn wanted(w: &HostsWant) -> Vec<Wanted> {
    let caps = || {
        let mut a = toml_edit::Array::new();
        a.push("pull");
        a.push("resolve");
        toml_edit::Value::Array(a)
    };
    let mut out: Vec<Wanted> = Vec::new();
    for m in w.mirrors {
        let mut keys = vec![("capabilities", caps())];
        // A project is served under `/v2/<project>/…`: the key holds the `/v2` and
        // containerd must not add its own.
        if m.path.is_some() {
            keys.push(("override_path", true.into()));
        }
        if !m.is_http() && w.insecure {
            keys.push(("skip_verify", true.into()));
        }
        if let Some(d) = w.dial_timeout {
            keys.push(("dial_timeout", d.into()));
        }
        let url = m.v2_url();
        out.push(Wanted {
            norm: norm_host(&url),
            url,
            keys,
        });
    }
    for h in &w.moved.hosts {
        let norm = norm_host(&h.url);
        if out.iter().any(|o| o.norm == norm) {
            continue;
        }
        let mut keys = vec![("capabilities", caps())];
        if h.override_path {
            keys.push(("override_path", true.into()));
        }
        keys.extend(tls_keys(h.tls.as_ref()));
        out.push(Wanted {
            url: h.url.clone(),
            norm,
            keys,
        });
    }
    out
}

/// hosts.toml's TLS keys for deprecated `configs.<host>.tls` settings.
fn tls_keys(tls: Option<&Tls>) -> Vec<(&'static str, toml_edit::Value)> {
    let Some(t) = tls else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    if let Some(ca) = &t.ca {
        keys.push(("ca", ca.as_str().into()));
    }
    if let Some((cert, key)) = &t.client {
        let mut pair = toml_edit::Array::new();
        pair.push(cert.as_str());
        pair.push(key.as_str());
        let mut list = toml_edit::Array::new();
        list.push(toml_edit::Value::Array(pair));
        keys.push(("client", toml_edit::Value::Array(list)));
    }
    if let Some(s) = t.skip_verify {
        keys.push(("skip_verify", s.into()));
    }
    keys
}

type File<'a> = toml_util::Edit<'a>;

/// Plan one hosts.toml; with nothing wanted, remove what mirrorctl owns.
pub fn plan_hosts(
    current: Option<&str>,
    w: &HostsWant,
    prev: &[String],
) -> Result<Planned, PlanError> {
    let original = current.unwrap_or("");
    let mut file = File::open(original)?;
    validate(&file)?;
    let want = wanted(w);
    let mut owned = Vec::new();
    drop_stale(&mut file.doc, &want, w, prev);
    if w.is_empty() {
        return Ok(Planned {
            text: file.render(false),
            owned,
        });
    }
    refuse_mixed_with_user_hosts(&file, w, prev)?;
    ensure_server(&mut file.doc, w.registry, prev, &mut owned);
    server_tls(&mut file.doc, w.moved.server_tls.as_ref(), prev, &mut owned);
    insert_hosts(&mut file, &want, prev, &mut owned)?;
    let order: Vec<String> = want.iter().map(|h| h.norm.clone()).collect();
    order_hosts(&mut file.doc, &order);
    let fresh = current.is_none_or(|c| c.trim().is_empty());
    Ok(Planned {
        text: file.render(fresh),
        owned,
    })
}

/// Refuse what containerd would refuse (`host` entries that are not tables, a `server` that is
/// not a string), rather than arm around it.
fn validate(file: &File) -> Result<(), PlanError> {
    if let Some(item) = file.doc.get("host") {
        let Some(h) = item.as_table_like() else {
            return Err(file.err(
                "host",
                "`host` must be a table of `[host.\"<url>\"]` entries",
            ));
        };
        // containerd decodes every entry under `host` as a host's table (and fails on, say,
        // `[host]\nlocation = 1`).
        if let Some((k, _)) = h.iter().find(|(_, v)| !v.is_table_like()) {
            return Err(file.err(
                k,
                format!("`host.{k}` must be a `[host.\"<url>\"]` table: containerd reads every entry under `host` as a host"),
            ));
        }
    }
    if file.doc.get("server").is_some_and(|s| s.as_str().is_none()) {
        return Err(file.err("server", "`server` must be a string URL"));
    }
    Ok(())
}

/// Drop mirrorctl's hosts that are no longer wanted, and its `server` and top-level keys when
/// nothing is.
fn drop_stale(doc: &mut DocumentMut, want: &[Wanted], w: &HostsWant, prev: &[String]) {
    if let Some(hosts) = doc.get_mut("host").and_then(Item::as_table_like_mut) {
        let stale: Vec<String> = hosts
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| {
                let n = norm_host(k);
                !want.iter().any(|h| h.norm == n) && prev.contains(&tok(&n))
            })
            .collect();
        for k in stale {
            hosts.remove(&k);
        }
    }
    if w.is_empty() && prev.iter().any(|t| t == "server") {
        doc.remove("server");
    }
    let want_top: Vec<&str> = tls_keys(w.moved.server_tls.as_ref())
        .iter()
        .map(|(k, _)| *k)
        .collect();
    for key in ["ca", "client", "skip_verify"] {
        if !want_top.contains(&key) && prev.iter().any(|t| *t == format!("top:{key}")) {
            doc.remove(key);
        }
    }
    // Only the implicit `host` table that `[host."…"]` headers make: an empty `[host]` the user
    // wrote stays.
    let implicit_empty = doc
        .get("host")
        .and_then(Item::as_table)
        .is_some_and(|h| h.is_empty() && h.is_implicit());
    if implicit_empty && w.is_empty() {
        doc.remove("host");
    }
}

/// Moving deprecated mirrors into a hosts.toml that already lists the user's own hosts would
/// need a guess at which should come first: refused.
fn refuse_mixed_with_user_hosts(
    file: &File,
    w: &HostsWant,
    prev: &[String],
) -> Result<(), PlanError> {
    if w.moved.hosts.is_empty() {
        return Ok(());
    }
    let user: Vec<String> = file
        .doc
        .get("host")
        .and_then(Item::as_table_like)
        .map(|h| {
            h.iter()
                .map(|(k, _)| norm_host(k))
                .filter(|n| !prev.contains(&tok(n)))
                .collect()
        })
        .unwrap_or_default();
    match user.first() {
        None => Ok(()),
        Some(u) => Err(file.err(
            "host",
            format!("this hosts.toml already lists `{u}`, and config.toml's deprecated `registry.mirrors.\"{}\"` lists other endpoints: containerd read only the config.toml ones (config_path was not set), and which should come first is not something to guess. Merge them into this file by hand and remove the config.toml entry, then rerun", w.registry),
        )),
    }
}

/// The `server` a new hosts.toml gets: the registry's default host, except where containerd's
/// own default differs (`_default`: each registry itself; localhost: plain HTTP).
fn server_for(registry: &str) -> Option<String> {
    if registry == "_default" || super::legacy::is_localhost(registry) {
        return None;
    }
    Some(crate::oci::upstream_endpoint(registry))
}

/// `server` first in the file, when it is missing.
fn ensure_server(doc: &mut DocumentMut, registry: &str, prev: &[String], owned: &mut Vec<String>) {
    if doc.get("server").is_some() {
        if prev.iter().any(|t| t == "server") {
            owned.push("server".to_string());
        }
        return;
    }
    let Some(server) = server_for(registry) else {
        return;
    };
    // The keys go back with their decor (an indented `  capabilities = …` stays indented).
    let keys: Vec<String> = doc.iter().map(|(k, _)| k.to_string()).collect();
    let mut entries = Vec::new();
    for k in keys {
        if let Some(e) = doc.remove_entry(&k) {
            entries.push(e);
        }
    }
    doc.insert("server", toml_edit::value(server));
    for (k, v) in entries {
        doc.insert_formatted(&k, v);
    }
    owned.push("server".to_string());
}

/// The registry's own TLS settings at the top level (they apply to `server`), where the user
/// has not set that key.
fn server_tls(doc: &mut DocumentMut, tls: Option<&Tls>, prev: &[String], owned: &mut Vec<String>) {
    for (key, value) in tls_keys(tls) {
        let token = format!("top:{key}");
        let mine = prev.contains(&token);
        if doc.get(key).is_none() || mine {
            doc.insert(key, Item::Value(value));
            owned.push(token);
        }
    }
}

/// Insert the wanted hosts (and refresh mirrorctl's own entries' keys).
fn insert_hosts(
    file: &mut File,
    want: &[Wanted],
    prev: &[String],
    owned: &mut Vec<String>,
) -> Result<(), PlanError> {
    if file.doc.get("host").is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        file.doc.insert("host", Item::Table(t));
    }
    let indent = toml_util::key_indent(&file.body);
    let Some(hosts) = file.doc.get_mut("host").and_then(Item::as_table_mut) else {
        return Err(PlanError::whole(
            "`host` must be written as `[host.\"<url>\"]` tables",
        ));
    };
    let existing: Vec<String> = hosts.iter().map(|(k, _)| k.to_string()).collect();
    for h in want {
        let present = existing.iter().find(|k| norm_host(k) == h.norm);
        match present {
            None => {
                let mut t = Table::new();
                for (k, v) in &h.keys {
                    t.insert(k, toml_edit::value(v.clone()));
                }
                toml_util::indent_keys(&mut t, &indent);
                hosts.insert(&h.url, Item::Table(t));
                owned.push(tok(&h.norm));
            }
            Some(k) if prev.contains(&tok(&h.norm)) => {
                if let Some(t) = hosts.get_mut(k).and_then(Item::as_table_like_mut) {
                    refresh(t, &h.keys);
                }
                owned.push(tok(&h.norm));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Make a host entry mirrorctl owns hold exactly the wanted managed keys (the value of a key
/// that stays is replaced in place, keeping its spacing).
fn refresh(t: &mut dyn toml_edit::TableLike, keys: &[(&'static str, toml_edit::Value)]) {
    for k in MANAGED {
        if !keys.iter().any(|(w, _)| *w == k) {
            t.remove(k);
        }
    }
    for (k, v) in keys {
        match t.get_mut(k).and_then(Item::as_value_mut) {
            Some(old) if old.to_string().trim() == v.to_string().trim() => {}
            Some(old) => {
                let decor = old.decor().clone();
                *old = v.clone();
                *old.decor_mut() = decor;
            }
            None => {
                t.insert(k, toml_edit::value(v.clone()));
            }
        }
    }
}

/// Room between two tables of the original file for the ones moved in between.
const GAP: isize = 1 << 20;
/// Room for one moved host's sub-tables.
const HOST: isize = 1 << 10;

/// Multiply every table position by [`GAP`], to make room between them.
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

/// Number a host's tables from `next` on.
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

/// A host entry: its key, its rank among the wanted hosts, the positions of its tables (new
/// tables have none).
type Entry = (String, Option<usize>, Vec<isize>);

/// Already in place: every table of the wanted hosts positioned, in order, before any other
/// host's.
fn in_place(mine: &[&Entry], first_other: Option<isize>) -> bool {
    let mut last = isize::MIN;
    mine.iter().all(|(_, _, ps)| {
        let ok = !ps.is_empty()
            && ps
                .iter()
                .all(|p| *p > last && first_other.is_none_or(|f| *p < f));
        last = ps.iter().copied().max().unwrap_or(last);
        ok
    })
}

/// Give header tables document positions so the wanted hosts come first (in `want` order,
/// each with its sub-tables), before the first table of any other host. Only those tables
/// move: every other table keeps its place, so the user's layout (a host's sub-table written
/// after another host, say) is not regrouped, and removing mirrorctl's hosts again gives it
/// back.
fn order_hosts(doc: &mut DocumentMut, want: &[String]) {
    let rank = |k: &str| want.iter().position(|w| *w == norm_host(k));
    let Some(hosts) = doc.get_mut("host").and_then(Item::as_table_mut) else {
        return;
    };
    let entries: Vec<Entry> = hosts
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
    let mut mine: Vec<&Entry> = entries.iter().filter(|(_, r, _)| r.is_some()).collect();
    mine.sort_by_key(|(_, r, _)| *r);
    if in_place(&mine, first_other) {
        return;
    }
    let order: Vec<String> = mine.iter().map(|(k, _, _)| k.clone()).collect();
    scale(doc.as_table_mut());
    let mut all = Vec::new();
    positions(doc.as_table(), &mut all);
    let max = all.into_iter().fold(isize::MIN, isize::max);
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

#[cfg(test)]
mod tests {
    use super::super::setup::MovedHost;
    use super::*;

    fn m(s: &str) -> Mirror {
        Mirror::parse(s).unwrap()
    }

    #[test]
    fn moved_hosts_follow_the_mirrors_with_their_settings() {
        let moved = Moved {
            hosts: vec![
                MovedHost {
                    url: "https://old.example".into(),
                    override_path: false,
                    tls: Some(Tls {
                        ca: Some("/ca.pem".into()),
                        client: Some(("/c.pem".into(), "/k.pem".into())),
                        skip_verify: None,
                    }),
                },
                MovedHost {
                    url: "https://harbor.example/cache".into(),
                    override_path: true,
                    tls: None,
                },
                MovedHost {
                    url: "http://127.0.0.1:5001".into(),
                    override_path: false,
                    tls: None,
                },
            ],
            server_tls: Some(Tls {
                skip_verify: Some(true),
                ..Tls::default()
            }),
        };
        let mirrors = [m("http://127.0.0.1:5001")];
        let w = HostsWant {
            registry: "docker.io",
            mirrors: &mirrors,
            insecure: false,
            dial_timeout: Some("2s"),
            moved: &moved,
        };
        let p = plan_hosts(None, &w, &[]).unwrap();
        assert_eq!(
            p.text,
            "server = \"https://registry-1.docker.io\"\nskip_verify = true\n\n[host.\"http://127.0.0.1:5001\"]\n  capabilities = [\"pull\", \"resolve\"]\n  dial_timeout = \"2s\"\n\n[host.\"https://old.example\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/ca.pem\"\n  client = [[\"/c.pem\", \"/k.pem\"]]\n\n[host.\"https://harbor.example/cache\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n"
        );
        assert_eq!(plan_hosts(Some(&p.text), &w, &p.owned).unwrap(), p);
        let back = plan_hosts(Some(&p.text), &HostsWant::nothing("docker.io"), &p.owned).unwrap();
        assert_eq!(back.text.trim(), "");
    }

    #[test]
    fn a_project_mirror_gets_the_v2_key_and_override_path() {
        let mirrors = [m("http://harbor.lan:8080/dh")];
        let w = HostsWant {
            registry: "docker.io",
            mirrors: &mirrors,
            insecure: false,
            dial_timeout: None,
            moved: &EMPTY,
        };
        let p = plan_hosts(None, &w, &[]).unwrap();
        assert_eq!(
            p.text,
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://harbor.lan:8080/v2/dh\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n"
        );
        assert!(p
            .owned
            .contains(&"host:http://harbor.lan:8080/v2/dh".to_string()));
        // Re-arm is a no-op; the same mirror spelled `/v2/dh` is the same host.
        assert_eq!(plan_hosts(Some(&p.text), &w, &p.owned).unwrap(), p);
        let same = [m("http://harbor.lan:8080/v2/dh")];
        let w2 = HostsWant {
            mirrors: &same,
            ..w
        };
        assert_eq!(plan_hosts(Some(&p.text), &w2, &p.owned).unwrap(), p);
        // A user's `[host."http://harbor.lan:8080/dh"]` (containerd: `/dh/v2/…`) is another host.
        let user = "[host.\"http://harbor.lan:8080/dh\"]\n  capabilities = [\"pull\"]\n";
        let q = plan_hosts(Some(user), &w, &[]).unwrap();
        assert!(
            q.text.contains("[host.\"http://harbor.lan:8080/v2/dh\"]"),
            "{}",
            q.text
        );
        assert!(q.text.contains(user), "{}", q.text);
        let back = plan_hosts(Some(&q.text), &HostsWant::nothing("docker.io"), &q.owned).unwrap();
        assert_eq!(back.text, user);
    }

    #[test]
    fn re_arming_refreshes_mirrorctls_own_entries() {
        let mirrors = [m("https://a.example")];
        let mut w = HostsWant {
            registry: "docker.io",
            mirrors: &mirrors,
            insecure: true,
            dial_timeout: Some("2s"),
            moved: &EMPTY,
        };
        let p = plan_hosts(None, &w, &[]).unwrap();
        assert!(p.text.contains("skip_verify = true") && p.text.contains("\"2s\""));
        w.insecure = false;
        w.dial_timeout = Some("500ms");
        let again = plan_hosts(Some(&p.text), &w, &p.owned).unwrap();
        assert!(!again.text.contains("skip_verify"), "{}", again.text);
        assert!(
            again.text.contains("dial_timeout = \"500ms\""),
            "{}",
            again.text
        );
    }

    #[test]
    fn moved_hosts_next_to_the_users_own_are_refused() {
        let moved = Moved {
            hosts: vec![MovedHost {
                url: "https://old.example".into(),
                override_path: false,
                tls: None,
            }],
            server_tls: None,
        };
        let w = HostsWant {
            registry: "docker.io",
            mirrors: &[],
            insecure: false,
            dial_timeout: None,
            moved: &moved,
        };
        let cur = "[host.\"https://mine.example\"]\n  capabilities = [\"pull\"]\n";
        let e = plan_hosts(Some(cur), &w, &[]).unwrap_err();
        assert!(e.message.contains("mine.example"), "{e}");
    }

    #[test]
    fn local_and_default_directories_get_no_server() {
        let mirrors = [m("http://127.0.0.1:5001")];
        for reg in ["localhost:5000", "_default"] {
            let w = HostsWant {
                registry: reg,
                mirrors: &mirrors,
                insecure: false,
                dial_timeout: None,
                moved: &EMPTY,
            };
            let p = plan_hosts(None, &w, &[]).unwrap();
            assert!(!p.text.contains("server"), "{reg}: {}", p.text);
        }
    }

    #[test]
    fn host_keys_keep_their_paths() {
        assert_eq!(
            norm_host("https://H.example/v2/Proj/"),
            "https://h.example/v2/Proj"
        );
        assert_eq!(norm_host("h.example:443"), norm_host("https://h.example"));
    }
}
