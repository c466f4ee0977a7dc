//! Run a child process to completion under a deadline, reading its output while it runs (so a
//! chatty child never blocks on a full pipe), killing it when the deadline passes.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A finished child.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// stdout then stderr, trimmed: what a user would have seen.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr).trim().to_string()
    }

    /// The last non-empty line of [`Finished::output`], for one-line messages.
    pub fn last_line(&self) -> String {
        self.output()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    }
}

/// Why a child did not run to completion. Each names the program.
#[derive(Debug)]
pub enum ProcessError {
    /// It could not be started (not installed, not executable).
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// It outlived its deadline and was killed.
    Timeout { program: String, after: Duration },
    /// Waiting for it failed.
    Wait {
        program: String,
        source: std::io::Error,
    },
}

impl ProcessError {
    /// The program is not installed (or not on PATH).
    pub fn not_found(&self) -> bool {
        matches!(self, ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessError::Spawn { program, source } => {
                write!(f, "cannot run `{program}`: {source}")
            }
            ProcessError::Timeout { program, after } => {
                write!(
                    f,
                    "`{program}` did not finish in {}s",
                    after.as_secs_f64().ceil()
                )
            }
            ProcessError::Wait { program, source } => {
                write!(f, "waiting for `{program}`: {source}")
            }
        }
    }
}

impl std::error::Error for ProcessError {}

/// Run `c` with `input` on its stdin (closed after it; none: stdin is /dev/null). Errors name
/// the program: it could not start, it outlived `timeout` (and was killed), or waiting failed.
pub fn run(
    mut c: Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Finished, ProcessError> {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let prog = c.get_program().to_string_lossy().into_owned();
    let mut child = c.spawn().map_err(|source| ProcessError::Spawn {
        program: prog.clone(),
        source,
    })?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(data);
    }
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let t_out = child.stdout.take().map(|o| drain(Box::new(o)));
    let t_err = child.stderr.take().map(|e| drain(Box::new(e)));
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(366 * 24 * 3600));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProcessError::Timeout {
                    program: prog,
                    after: timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(source) => {
                return Err(ProcessError::Wait {
                    program: prog,
                    source,
                })
            }
        }
    };
    Ok(Finished {
        status,
        stdout: t_out.and_then(|t| t.join().ok()).unwrap_or_default(),
        stderr: t_err.and_then(|t| t.join().ok()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_output_and_deadline() {
        let mut c = Command::new("sh");
        c.args(["-c", "read x; echo \"got $x\"; echo oops >&2; exit 3"]);
        let f = run(c, Some(b"hi\n"), Duration::from_secs(10)).unwrap();
        assert_eq!(f.status.code(), Some(3));
        assert_eq!(
            (f.stdout.as_str(), f.stderr.as_str()),
            ("got hi\n", "oops\n")
        );
        let mut c = Command::new("sleep");
        c.arg("30");
        let e = run(c, None, Duration::from_millis(200))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`sleep` did not finish"), "{e}");
        let e = run(
            Command::new("/nonexistent/mirrorctl-x"),
            None,
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(e.not_found());
        let e = e.to_string();
        assert!(e.contains("cannot run `/nonexistent/mirrorctl-x`"), "{e}");
    }
}
