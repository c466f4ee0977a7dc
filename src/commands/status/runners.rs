//! `status` for the runners' clients: whether Earthly's running buildkitd has the config's
//! current string, and which buildx builders must be re-created to get the mirrors.

use super::super::Users;
use crate::ctx::Ctx;
use crate::diag::outln;
use crate::fsutil;
use crate::host::earthly::ContainerCheck;
use crate::journal::Journal;
use crate::reload::buildx_reload;
use crate::targets::buildx::{self, State};
use crate::targets::{earthly, TargetName};
use serde::Serialize;

/// One builder record.
#[derive(Debug, Serialize)]
pub struct BuilderStatus {
    name: String,
    driver: String,
    /// It was created before the arm (its stored config lacks the mirrors): `docker buildx rm
    /// --keep-state` + `create` (what `arm --reload` does) gives it them.
    needs_recreate: bool,
    detail: String,
}

/// The armed file of `t` (its system path), else the one found from the environment.
fn armed_path(journal: &Journal, t: TargetName) -> Option<String> {
    journal.for_target(t).next().map(|(p, _)| p.clone())
}

pub fn earthly(ctx: &Ctx, journal: &Journal, users: &Users) -> Option<ContainerCheck> {
    let path = armed_path(journal, TargetName::Earthly).unwrap_or(users.earthly.path.clone());
    let text = ctx
        .resolve(&path)
        .ok()
        .and_then(|f| fsutil::read_optional(&f).ok().flatten())
        .unwrap_or_default();
    match earthly::facts(&text) {
        Ok(f) => Some(crate::host::earthly::container(&ctx.root, &f)),
        Err(e) => Some(ContainerCheck {
            name: earthly::CONTAINER,
            checked: false,
            current: None,
            detail: format!("`{path}` cannot be read: {e}"),
        }),
    }
}

pub fn builders(ctx: &Ctx, journal: &Journal, users: &Users) -> Vec<BuilderStatus> {
    let armed = armed_path(journal, TargetName::Buildx);
    let rec = armed.as_ref().and_then(|p| journal.files.get(p));
    let dir = match (&armed, &users.buildx) {
        (Some(p), _) => std::path::Path::new(p)
            .parent()
            .map(|d| d.display().to_string()),
        (None, Some(l)) => Some(l.path.clone()),
        (None, None) => None,
    };
    let Some(dir) = dir else { return Vec::new() };
    let judge = |b: &buildx::Builder| match rec {
        Some(r) => buildx::state(b, &buildx_reload::set_of(r), &r.owned),
        None => State::NotCovered("buildx is not armed".into()),
    };
    let (all, notes) = buildx_reload::states(ctx, &dir, &judge);
    let mut out: Vec<BuilderStatus> = all
        .into_iter()
        .map(|(b, s)| {
            let (needs, detail) = match s {
                State::Current => (false, "has the mirrors".to_string()),
                State::Stale { .. } => (
                    true,
                    "created before the arm: its stored config lacks the mirrors; re-create it (`mirrorctl arm --reload` does)".to_string(),
                ),
                State::NotCovered(why) => (false, why),
                State::Manual(why) => (true, format!("re-create it by hand: {why}")),
            };
            BuilderStatus {
                name: b.name,
                driver: b.driver,
                needs_recreate: needs,
                detail,
            }
        })
        .collect();
    out.extend(notes.into_iter().map(|n| BuilderStatus {
        name: String::new(),
        driver: String::new(),
        needs_recreate: false,
        detail: n,
    }));
    out
}

pub fn print(container: Option<&ContainerCheck>, builders: Option<&[BuilderStatus]>) {
    if let Some(c) = container {
        let mark = match c.current {
            Some(true) => console::style("✓").green(),
            Some(false) => console::style("!").yellow(),
            None => console::style("?").dim(),
        };
        outln!("  {mark} {}", c.detail);
    }
    for b in builders.into_iter().flatten() {
        if b.name.is_empty() {
            outln!("  ? {}", b.detail);
            continue;
        }
        let flag = if b.needs_recreate {
            console::style("needs re-create").yellow().to_string()
        } else {
            "ok".to_string()
        };
        outln!("  builder {} ({}): {flag}: {}", b.name, b.driver, b.detail);
    }
}
