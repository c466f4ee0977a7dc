//! systemd: whether it manages the root, and restarting a unit under a deadline.

use crate::fsutil::Root;
use crate::process;
use std::process::Command;
use std::time::Duration;

/// How long `systemctl restart` may take (a daemon's stop timeout is 90 s by default).
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether systemd runs the machine `root` describes: only the real root, and only when
/// `/run/systemd/system` exists (systemd's own test, `sd_booted`).
pub fn manages(root: &Root) -> bool {
    root.is_real() && std::path::Path::new("/run/systemd/system").exists()
}

/// `systemctl restart <unit>` under [`RESTART_TIMEOUT`]; the error says what went wrong.
pub fn restart(unit: &str) -> anyhow::Result<()> {
    let mut c = Command::new("systemctl");
    c.args(["restart", unit]);
    let f = process::run(c, None, RESTART_TIMEOUT)
        .map_err(|e| anyhow::Error::new(e).context("could not run systemctl"))?;
    if !f.status.success() {
        anyhow::bail!(
            "`systemctl restart {unit}` failed ({}): {}",
            f.status,
            f.last_line()
        );
    }
    Ok(())
}
