//! The containerd target's host-specific decisions for `arm`: which containerd version it plans
//! for, how the user's config.toml is armed ([`setup`]), and the dry-run preview a refusal shows
//! when `--migrate` would arm the file.

use crate::apply;
use crate::cli::ArmArgs;
use crate::ctx::Ctx;
use crate::error::HintExt;
use crate::host;
use crate::journal::Journal;
use crate::mirror::MirrorSet;
use crate::targets::containerd::setup::{self, Setup, SetupError};
use crate::targets::containerd::version::ContainerdVersion;
use crate::targets::{self, TargetName, CONTAINERD_CONFIG};
use anyhow::Result;
use std::time::Duration;

/// What the containerd target plans with on this host.
pub struct Planning {
    pub version: ContainerdVersion,
    pub setup: Setup,
    /// `dial_timeout` to write (a Go duration), when this containerd reads it.
    pub dial_timeout: Option<String>,
    /// What to tell the user about it.
    pub notes: Vec<String>,
}

impl Planning {
    /// For runs that do not arm containerd.
    pub fn none() -> Planning {
        Planning {
            version: ContainerdVersion::default(),
            setup: Setup::default(),
            dial_timeout: None,
            notes: Vec::new(),
        }
    }
}

/// The containerd version `arm` plans for: `--containerd-version`, else
/// `MIRRORCTL_CONTAINERD_VERSION`, else the root's `containerd --version`.
pub fn planned_version(ctx: &Ctx, flag: Option<&str>) -> Result<ContainerdVersion> {
    let env = std::env::var("MIRRORCTL_CONTAINERD_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let given = match (flag, env.as_deref()) {
        (Some(v), _) => Some((v, "--containerd-version")),
        (None, Some(v)) => Some((v, "MIRRORCTL_CONTAINERD_VERSION")),
        (None, None) => None,
    };
    Ok(host::containerd::planned_version(&ctx.root, given)?)
}

/// Work out how containerd is armed. A config.toml that `--migrate` would arm is refused with
/// what `--migrate` would write as the hint.
pub fn plan(ctx: &Ctx, journal: &Journal, a: &ArmArgs, set: &MirrorSet) -> Result<Planning> {
    let version = planned_version(ctx, a.containerd_version.as_deref())?;
    let user = apply::user_text(ctx, journal, CONTAINERD_CONFIG)?;
    let file = ctx.resolve(CONTAINERD_CONFIG)?;
    let (dial_timeout, mut notes) = dial_timeout(&version, a.dial_timeout);
    let setup = match setup::setup(user.as_deref(), &version, a.migrate) {
        Ok(s) => s,
        Err(SetupError::NeedsMigrate(e)) => {
            let preview = preview(ctx, journal, set, user.as_deref(), &version, &dial_timeout);
            return Err(e.in_file(&file)).hint(preview);
        }
        Err(SetupError::Refused(e)) => return Err(e.in_file(&file).into()),
    };
    notes.extend(setup.notes.iter().cloned());
    Ok(Planning {
        version,
        setup,
        dial_timeout,
        notes,
    })
}

/// The `dial_timeout` to write, or why none is.
fn dial_timeout(version: &ContainerdVersion, d: Duration) -> (Option<String>, Vec<String>) {
    if d.is_zero() {
        return (None, Vec::new());
    }
    if !version.reads_dial_timeout() {
        let why = format!("dial_timeout not written: {} does not read it (containerd 2.1+ and 2.0.7+ do; a dead mirror then costs containerd's 30 s connect timeout before it tries the next host). Use --containerd-version if that is wrong", version.describe);
        return (None, vec![why]);
    }
    (Some(go_duration(d)), Vec::new())
}

/// A duration the way Go's `time.ParseDuration` reads it (`2s`, `1500ms`).
pub fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// What `arm --migrate` would write, as a unified diff per file (or why it would not).
fn preview(
    ctx: &Ctx,
    journal: &Journal,
    set: &MirrorSet,
    user: Option<&str>,
    version: &ContainerdVersion,
    dial_timeout: &Option<String>,
) -> String {
    let setup = match setup::setup(user, version, true) {
        Ok(s) => s,
        Err(e) => return format!("--migrate would not arm it either: {}", e.into_plan_error()),
    };
    let exists = |p: &str| ctx.root.exists(p);
    let dockerd = targets::dockerd_version::DockerdVersion {
        version: None,
        describe: String::new(),
    };
    let info = targets::HostInfo {
        exists: &exists,
        dockerd: &dockerd,
        containerd: &setup,
        dial_timeout: dial_timeout.clone(),
        user: &targets::UserPaths::default(),
    };
    let jobs = match targets::files_for(TargetName::Containerd, set, &info) {
        Ok(j) => j,
        Err(why) => return why,
    };
    match apply::plan_arm(ctx, journal, TargetName::Containerd, &jobs, set) {
        Ok(changes) => {
            let diffs: Vec<String> = changes
                .iter()
                .filter(|c| c.writes())
                .map(|c| c.diff())
                .collect();
            format!(
                "rerun with --migrate; it would write (nothing was written now):\n{}",
                diffs.join("\n")
            )
        }
        Err(e) => format!("--migrate would not arm it either: {e:#}"),
    }
}
