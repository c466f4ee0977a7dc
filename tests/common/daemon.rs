//! A guard for a long-running child process: its own process group, stdout/stderr captured to
//! files, killed (whole group: SIGTERM, then SIGKILL) on drop — which also runs on panic — and,
//! via `PR_SET_PDEATHSIG`, when the test thread that started it dies.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub name: String,
    child: Child,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    stopped: bool,
}

impl Daemon {
    /// Spawn `cmd` as `name`, logs in `<log_dir>/<name>.out|.err`. The caller sets env (use
    /// [`super::guard`]) and args; stdin is closed.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Daemon {
        std::fs::create_dir_all(log_dir).unwrap();
        let stdout_path = log_dir.join(format!("{name}.out"));
        let stderr_path = log_dir.join(format!("{name}.err"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; called between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({:?}): {e}", cmd.get_program()));
        Daemon {
            name: name.to_string(),
            child,
            stdout_path,
            stderr_path,
            stopped: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stdout_path).unwrap_or_default()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// The last `n` lines of stdout and stderr, for assertion messages.
    pub fn tail(&self, n: usize) -> String {
        fn last(s: String, n: usize) -> String {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        format!(
            "--- {} stdout ({}) ---\n{}\n--- {} stderr ({}) ---\n{}",
            self.name,
            self.stdout_path.display(),
            last(self.stdout(), n),
            self.name,
            self.stderr_path.display(),
            last(self.stderr(), n)
        )
    }

    /// Poll `ready` every 25 ms until it returns true. Returns `Err(log tail)` if the process
    /// exits first, panics with the logs on timeout.
    pub fn wait_ready(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&Daemon) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.stopped = true;
                return Err(format!(
                    "{} exited ({st}) before {what}\n{}",
                    self.name,
                    self.tail(40)
                ));
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready ({what}) after {timeout:?}\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM the process group, wait up to 15 s, then SIGKILL the group. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.child.id() as i32;
        // SAFETY: signalling the process group we created for our own child.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; ESRCH when the group is already gone is fine.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll `cond` every 25 ms until true or `timeout`; returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
