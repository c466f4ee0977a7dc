//! The one way any layer reports a warning or a progress note on stderr, and writes its
//! output on stdout without panicking when the reader went away.
//!
//! Modules below the CLI never print on their own: they call [`warn`] / [`note`] here, and the
//! CLI (`output::init`) sets the level from `-q` / `-v` once. So `-q` silences every warning and
//! note of every command, and a library user that never calls [`set_level`] gets notes and
//! warnings on stderr (the default level).

use std::sync::atomic::{AtomicU8, Ordering};

/// `0` quiet (errors only), `1` normal, `2+` verbose.
static LEVEL: AtomicU8 = AtomicU8::new(1);
/// Whether the `warning:` prefix may be coloured.
static COLOR: AtomicU8 = AtomicU8::new(0);

/// Set the level: `quiet` wins; otherwise 1 + the number of `-v`.
pub fn set_level(quiet: bool, verbose: u8) {
    let level = if quiet { 0 } else { verbose.saturating_add(1) };
    LEVEL.store(level, Ordering::Relaxed);
}

/// Allow colour on the `warning:` prefix (stderr is a terminal and colour is not disabled).
pub fn set_color(on: bool) {
    COLOR.store(u8::from(on), Ordering::Relaxed);
}

/// `-q` was given: only errors are printed.
pub fn quiet() -> bool {
    LEVEL.load(Ordering::Relaxed) == 0
}

/// `-v` was given at least once.
pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 2
}

/// A progress or informational line on stderr (suppressed by `-q`).
pub fn note(msg: &str) {
    if !quiet() {
        eprintln!("{msg}");
    }
}

/// A line only shown with `-v`.
pub fn detail(msg: &str) {
    if verbose() {
        eprintln!("{msg}");
    }
}

/// `warning: …` on stderr (suppressed by `-q`).
pub fn warn(msg: &str) {
    if quiet() {
        return;
    }
    if COLOR.load(Ordering::Relaxed) == 1 {
        eprintln!("{} {msg}", console::style("warning:").yellow().bold());
    } else {
        eprintln!("warning: {msg}");
    }
}

/// `error: …` on stderr for a failure that does not end the program (a server keeps running):
/// never suppressed.
pub fn error(msg: &str) {
    if COLOR.load(Ordering::Relaxed) == 1 {
        eprintln!("{} {msg}", console::style("error:").red().bold());
    } else {
        eprintln!("error: {msg}");
    }
}

/// Set once a write to stdout failed for a reason other than a closed pipe (a full disk).
static STDOUT_FAILED: AtomicU8 = AtomicU8::new(0);

/// One piece of a command's output on stdout. Never panics: when the reader went away
/// (`mirrorctl status | head`) the rest is dropped and the command still finishes what it is
/// doing (a half-done `arm` is worse than a short listing); any other failure is remembered
/// for [`stdout_failed`].
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(1, Ordering::Relaxed);
        }
    }
}

/// Whether some output could not be written (not counting a reader that closed the pipe).
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed) == 1
}

/// `println!` through [`write_out`]: no panic on a closed stdout.
macro_rules! outln {
    () => {
        $crate::diag::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::diag::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        set_level(false, 0);
        assert!(!quiet() && !verbose());
        set_level(false, 2);
        assert!(verbose());
        set_level(true, 3);
        assert!(quiet() && !verbose());
        set_level(false, u8::MAX);
        assert!(verbose());
        set_level(false, 0);
    }
}
