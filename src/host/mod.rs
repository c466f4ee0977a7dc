//! Facts about the daemons running on the machine that `--root` describes, gathered in one
//! place each: where their pid files and sockets are, whether the pid is really theirs (checked
//! against `/proc/<pid>/comm` before any signal), what their API says, their command line,
//! their version. Every child process runs under a deadline ([`CHILD_TIMEOUT`]).
//!
//! One module per daemon family; the engine (`reload`), `arm`'s preflight checks and `verify`'s
//! client probes all ask here, so they never disagree about which daemon they talk to.

pub mod buildx;
pub mod containerd;
pub mod containers;
pub mod dockerd;
pub mod earthly;
pub mod systemd;
pub mod users;

use crate::fsutil::Root;
use std::time::Duration;

/// The deadline for a child process that only reports something (`dockerd --version`,
/// `docker info`); a hung binary must not hang mirrorctl.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

/// A process's short name as the kernel has it (`/proc/<pid>/comm`).
fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_string())
}

/// The pid in the first of `pid_files` (system paths under `root`) that names a live process
/// called `name`. A stale pid file (the pid reused by another program) gives `None`, so a
/// signal never reaches a stranger.
pub fn daemon_pid(root: &Root, pid_files: &[&str], name: &str) -> Option<i32> {
    pid_files.iter().find_map(|p| {
        let pid = root
            .resolve(p)
            .ok()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse::<i32>().ok())
            .filter(|pid| *pid > 1)?;
        (comm(pid).as_deref() == Some(name)).then_some(pid)
    })
}

/// The arguments of process `pid` when it is still called `name` (else empty).
pub fn cmdline(pid: i32, name: &str) -> Vec<String> {
    if comm(pid).as_deref() != Some(name) {
        return Vec::new();
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The values of `--flag VALUE` and `--flag=VALUE` in an argument list.
pub fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let eq = format!("{flag}=");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix(&eq) {
            out.push(v.to_string());
        } else if a == flag {
            out.extend(it.next().cloned());
        }
    }
    out
}

/// A program on `PATH`, if there is one.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `<binary> --version` under the deadline, its stdout read by `parse`; why not, in one
/// sentence naming the command.
pub fn binary_version<T>(
    binary: &std::path::Path,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, String> {
    let mut c = std::process::Command::new(binary);
    c.arg("--version");
    let shown = binary.display();
    match crate::process::run(c, None, CHILD_TIMEOUT) {
        Ok(o) if o.status.success() => parse(&o.stdout)
            .ok_or_else(|| format!("`{shown} --version` printed `{}`", o.stdout.trim())),
        Ok(o) => Err(format!("`{shown} --version` exited {}", o.status)),
        Err(e) => Err(e.to_string()),
    }
}
/// Send SIGHUP to `pid` (a pid [`daemon_pid`] vouched for).
pub fn sighup(pid: i32, name: &str) -> anyhow::Result<()> {
    // SAFETY: kill(2) on a pid whose comm was just checked.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(anyhow::Error::new(std::io::Error::last_os_error())
            .context(format!("failed to send SIGHUP to {name} (pid {pid})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_both_spellings() {
        let args: Vec<String> = [
            "/usr/bin/dockerd",
            "--insecure-registry=http://10.0.0.5:5000",
            "-H",
            "fd://",
            "--insecure-registry",
            "m.lan:5000",
            "--insecure-registry",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            flag_values(&args, "--insecure-registry"),
            vec!["http://10.0.0.5:5000".to_string(), "m.lan:5000".to_string()]
        );
        assert!(flag_values(&[], "--x").is_empty());
    }

    #[test]
    fn pid_files_are_checked_against_comm() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        std::fs::create_dir_all(t.path().join("run")).unwrap();
        let me = std::process::id().to_string();
        std::fs::write(t.path().join("run/x.pid"), &me).unwrap();
        let my_name = comm(std::process::id() as i32).unwrap();
        assert_eq!(
            daemon_pid(&root, &["/var/run/x.pid", "/run/x.pid"], &my_name),
            Some(std::process::id() as i32)
        );
        assert_eq!(daemon_pid(&root, &["/run/x.pid"], "dockerd"), None);
        assert!(cmdline(std::process::id() as i32, "dockerd").is_empty());
        assert!(!cmdline(std::process::id() as i32, &my_name).is_empty());
    }
}
