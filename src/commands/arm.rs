//! `mirrorctl arm`: plan every target, then write them, then reload.

use super::{Plan, Written};
use crate::apply::{self, Change, Session};
use crate::cli::{ArmArgs, Global};
use crate::ctx::Ctx;
use crate::error::UserError;
use crate::host::dockerd::{self, VersionSource};
use crate::journal::Journal;
use crate::mirror::MirrorSet;
use crate::oci;
use crate::targets::{self, dockerd_version::DockerdVersion, FileKind, TargetName};
use anyhow::Result;

pub fn run(g: &Global, a: &ArmArgs) -> Result<i32> {
    let ctx = super::context(g)?;
    let set = a.mirror.set()?;
    let users = super::Users::find(&ctx, a.earthly_config.as_deref());
    let targets = chosen_targets(&ctx, &a.targets, &users)?;
    let dockerd = planned_dockerd(&ctx, a, &targets)?;
    // Every mirror must answer like a registry before anything is written.
    let found = match a.no_preflight {
        true => None,
        false => Some(super::preflight::run(
            &ctx,
            &set,
            &targets,
            a.preflight_timeout,
            a.allow_auth_mirror,
        )?),
    };
    let mut opts = a.common.clone();
    opts.reload |= a.verify;
    let probes = match a.verify && !opts.dry_run {
        true => Some(probe_options(g, a, &ctx)?),
        false => None,
    };
    let mut session = Session::open(&ctx, opts.dry_run, opts.lock_timeout)?;
    // Plan every target before writing anything: one bad file stops the whole run.
    let (containerd, planned) =
        plan_targets(&ctx, &session.journal, a, &set, &targets, &dockerd, &users)?;
    if probes.is_some() {
        mark_verifying(&ctx, &mut session.journal, &planned)?;
    }
    let sources = NoteSources {
        ctx: &ctx,
        set: &set,
        dockerd: &dockerd,
        containerd: &containerd,
        found: found.as_ref(),
        users: &users,
    };
    let notes = |t: TargetName, changes: &[Change]| sources.notes(t, changes);
    let mut report = super::write_all(
        &ctx,
        &mut session,
        planned,
        &opts,
        Written {
            command: "arm",
            mirrors: Some(set.clone()),
            preflight: found
                .as_ref()
                .map(|f| f.reports.clone())
                .unwrap_or_default(),
            notes: &notes,
        },
    )?;
    if let Some(po) = &probes {
        prove_or_roll_back(&ctx, &mut session, &set, po, &mut report)?;
    }
    super::report::finish(report, opts.json, opts.reload)
}

/// What a target's notes are made of: the mirror set, the planned dockerd and containerd,
/// preflight's findings and the configs on the root that defeat the mirror.
struct NoteSources<'a> {
    ctx: &'a Ctx,
    set: &'a MirrorSet,
    dockerd: &'a DockerdVersion,
    containerd: &'a super::containerd::Planning,
    found: Option<&'a super::preflight::Found>,
    users: &'a super::Users,
}

impl NoteSources<'_> {
    fn notes(&self, t: TargetName, changes: &[Change]) -> Vec<String> {
        let wrote_daemon_json = changes
            .iter()
            .any(|c| matches!(c.kind, FileKind::DaemonJson) && c.writes());
        let needs_credentials = self
            .found
            .map(|f| f.needs_credentials.clone())
            .unwrap_or_default();
        let mut n: Vec<String> = targets::partial_note(t, self.set, self.dockerd)
            .into_iter()
            .chain(targets::insecure_scheme_note(
                t,
                self.set,
                wrote_daemon_json,
            ))
            .chain(targets::project_path_note(t, self.set))
            .chain(super::preflight::credential_note(t, &needs_credentials))
            .collect();
        if t == TargetName::Docker {
            n.extend(self.found.iter().flat_map(|f| f.notes.iter().cloned()));
        }
        if t == TargetName::Containerd {
            n.extend(self.containerd.notes.iter().cloned());
        }
        for f in super::findings::for_target(self.ctx, t, &self.containerd.version) {
            if !n.contains(&f) {
                n.push(f);
            }
        }
        n.extend(self.users.note(t));
        n.extend(super::runner_notes(t, changes));
        n
    }
}

/// containerd's planning (its version, setup and notes; nothing when it is not a target), then
/// every target's plan.
fn plan_targets(
    ctx: &Ctx,
    journal: &Journal,
    a: &ArmArgs,
    set: &MirrorSet,
    targets: &[TargetName],
    dockerd: &DockerdVersion,
    users: &super::Users,
) -> Result<(super::containerd::Planning, Vec<(TargetName, Plan)>)> {
    let containerd = match targets.contains(&TargetName::Containerd) {
        true => super::containerd::plan(ctx, journal, a, set)?,
        false => super::containerd::Planning::none(),
    };
    let planned = plan_all(ctx, journal, targets, set, dockerd, &containerd, users)?;
    Ok((containerd, planned))
}

/// The dockerd version the docker target plans for (only asked when docker is a target).
fn planned_dockerd(ctx: &Ctx, a: &ArmArgs, targets: &[TargetName]) -> Result<DockerdVersion> {
    if !targets.contains(&TargetName::Docker) {
        return Ok(DockerdVersion {
            version: None,
            describe: String::new(),
        });
    }
    let given = match &a.dockerd_version {
        Some(v) => Some((v.clone(), VersionSource::Flag)),
        None => std::env::var("MIRRORCTL_DOCKERD_VERSION")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v, VersionSource::Env)),
    };
    Ok(dockerd::planned_version(
        &ctx.root,
        given.as_ref().map(|(v, s)| (v.as_str(), *s)),
    )?)
}

/// What `--verify`'s probes pull and how.
fn probe_options(g: &Global, a: &ArmArgs, ctx: &Ctx) -> Result<super::verify_arm::Options> {
    Ok(super::verify_arm::Options {
        image: a
            .image
            .parse()
            .map_err(|e| UserError(format!("--image `{}`: {e}", a.image)))?,
        block_upstream: a
            .block_upstream
            .then(|| crate::verify::hosts::default_path(ctx.root.path())),
        timeout: a.probe_timeout,
        cli: crate::output::cli_prefix(g),
    })
}

/// `--verify`: each armed target's client pulls through the mirror; any failure (or a reload
/// that failed) rolls this run back. The verdicts and the rollback go into the report.
fn prove_or_roll_back(
    ctx: &Ctx,
    session: &mut Session,
    set: &MirrorSet,
    po: &super::verify_arm::Options,
    report: &mut super::report::RunReport,
) -> Result<()> {
    let armed: Vec<TargetName> = report
        .targets
        .iter()
        .filter(|t| t.status != super::report::TargetStatus::Skipped)
        .map(|t| t.target)
        .collect();
    report.probes = super::verify_arm::run(ctx, set, &armed, po)?;
    let failed = report.probes.iter().any(|p| p.failed()) || !report.reload_failed().is_empty();
    if failed {
        report.rollback = Some(super::roll_back(ctx, &mut session.journal)?);
    } else {
        session.journal.verifying = None;
        session.journal.save(&ctx.state_dir)?;
    }
    Ok(())
}

/// `arm --verify`: journal what every file this run changes was before (its record, or none),
/// so a failed probe — or the next run, after a crash — can put it back.
fn mark_verifying(ctx: &Ctx, journal: &mut Journal, planned: &[(TargetName, Plan)]) -> Result<()> {
    let mut before = std::collections::BTreeMap::new();
    for (_, plan) in planned {
        if let Plan::Changes(changes) = plan {
            for c in changes.iter().filter(|c| c.writes()) {
                before.insert(c.sys_path.clone(), journal.files.get(&c.sys_path).cloned());
            }
        }
    }
    journal.verifying = Some(crate::journal::Verifying {
        pid: std::process::id(),
        before,
    });
    journal.save(&ctx.state_dir)
}

/// The targets named with `--target`, else every target installed under the root.
fn chosen_targets(
    ctx: &Ctx,
    named: &[TargetName],
    users: &super::Users,
) -> Result<Vec<TargetName>> {
    if !named.is_empty() {
        return Ok(super::dedup(named.to_vec()));
    }
    let found = super::detect(ctx, users);
    if found.is_empty() {
        return Err(UserError(format!(
            "no container client found under `{}` (looked for dockerd, buildkitd, containerd, podman/skopeo/CRI-O, k3s/rke2 and their /etc dirs, ~/.earthly, buildx); name targets with --target",
            ctx.root.path().display()
        ))
        .into());
    }
    Ok(found)
}

fn plan_all(
    ctx: &Ctx,
    journal: &Journal,
    targets: &[TargetName],
    set: &MirrorSet,
    dockerd: &DockerdVersion,
    containerd: &super::containerd::Planning,
    users: &super::Users,
) -> Result<Vec<(TargetName, Plan)>> {
    let mut planned = Vec::new();
    let exists = |p: &str| ctx.root.exists(p);
    let user_paths = users.paths();
    let info = targets::HostInfo {
        exists: &exists,
        dockerd,
        containerd: &containerd.setup,
        dial_timeout: containerd.dial_timeout.clone(),
        user: &user_paths,
    };
    for t in targets {
        match targets::files_for(*t, set, &info) {
            Ok(jobs) => {
                if *t == TargetName::Docker {
                    refuse_dockerd_flags(ctx, set)?;
                }
                let changes = apply::plan_arm(ctx, journal, *t, &jobs, set)?;
                planned.push((*t, Plan::Changes(changes)));
            }
            Err(why) => {
                // Still take back what this target armed before.
                let mut changes = Vec::new();
                for (path, rec) in journal.for_target(*t) {
                    changes.push(apply::plan_disarm_file(ctx, path, rec)?);
                }
                planned.push((
                    *t,
                    if changes.is_empty() {
                        Plan::Nothing(super::report::TargetStatus::Skipped, why)
                    } else {
                        Plan::Changes(changes)
                    },
                ));
            }
        }
    }
    refuse_shared_files(&planned)?;
    Ok(planned)
}

/// Two targets must not both own one file (containerd's `config_path` naming
/// `/etc/docker/certs.d`, which the docker target also writes for dockerd ≥ 28): the journal
/// keeps one record per file, so the second would take the first one's entries for its own.
fn refuse_shared_files(planned: &[(TargetName, Plan)]) -> Result<()> {
    let mut seen: std::collections::BTreeMap<&str, TargetName> = Default::default();
    for (t, plan) in planned {
        let Plan::Changes(changes) = plan else {
            continue;
        };
        for c in changes {
            match seen.insert(c.sys_path.as_str(), *t) {
                Some(other) if other != *t => {
                    return Err(UserError(format!(
                        "the {} and {} targets would both edit {}: leave one of them out with --target, or point containerd's config_path at a directory of its own",
                        other.as_str(),
                        t.as_str(),
                        c.sys_path
                    ))
                    .into())
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// dockerd refuses to start (or reload) when a setting is both a flag and in daemon.json.
fn refuse_dockerd_flags(ctx: &Ctx, set: &MirrorSet) -> Result<()> {
    let Some(pid) = dockerd::pid(&ctx.root) else {
        return Ok(());
    };
    let writes_insecure = set
        .for_registry(oci::DOCKER_HUB)
        .is_some_and(|r| r.mirrors.iter().any(|m| set.needs_insecure(m)));
    let flags = dockerd::conflicting_flags(pid, writes_insecure);
    if flags.is_empty() {
        return Ok(());
    }
    Err(UserError(format!(
        "dockerd (pid {pid}) runs with {}: dockerd refuses to start when a setting is both a flag and in daemon.json. Remove the flag from dockerd's command line (systemd unit or drop-in), or skip docker with --target",
        flags.join(" ")
    ))
    .into())
}
