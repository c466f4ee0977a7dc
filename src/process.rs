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

/// Run `c` with `input` on its stdin (closed after it; none: stdin is /dev/null). Errors name
/// the program: it could not start, it outlived `timeout` (and was killed), or waiting failed.
pub fn run(mut c: Command, input: Option<&[u8]>, timeout: Duration) -> Result<Finished, String> {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let prog = c.get_program().to_string_lossy().into_owned();
    let mut child = c.spawn().map_err(|e| format!("cannot run `{prog}`: {e}"))?;
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
    let t_out = drain(Box::new(child.stdout.take().expect("piped")));
    let t_err = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{prog}` did not finish in {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for `{prog}`: {e}")),
        }
    };
    Ok(Finished {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
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
        let e = run(c, None, Duration::from_millis(200)).err().unwrap();
        assert!(e.contains("`sleep` did not finish"), "{e}");
        let e = run(
            Command::new("/nonexistent/mirrorctl-x"),
            None,
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(e.contains("cannot run `/nonexistent/mirrorctl-x`"), "{e}");
    }
}
