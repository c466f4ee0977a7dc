//! Errors that decide the exit code: [`UserError`] (bad input or usage, exit 2) and
//! [`PlanError`] (a config file that cannot be parsed, exit 2). Everything else exits 1.

use std::fmt;

/// Bad input or usage: exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// A planner's refusal: the file cannot be parsed or holds a setting that conflicts with what
/// was asked. Line and column are 1-based; 0 means "the whole file".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl PlanError {
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> PlanError {
        PlanError {
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about the file as a whole.
    pub fn whole(message: impl Into<String>) -> PlanError {
        PlanError::new(0, 0, message)
    }

    /// An error at a byte offset of `text`.
    pub fn at_offset(text: &str, offset: usize, message: impl Into<String>) -> PlanError {
        let (line, column) = line_col(text, offset);
        PlanError::new(line, column, message)
    }

    /// Attach the file name: `path:line:col: message`.
    pub fn in_file(self, path: &std::path::Path) -> FileError {
        FileError {
            path: path.display().to_string(),
            inner: self,
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for PlanError {}

/// A [`PlanError`] with the file it is about. Exit code 2.
#[derive(Debug, Clone)]
pub struct FileError {
    pub path: String,
    pub inner: PlanError,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inner.line > 0 {
            write!(
                f,
                "`{}`:{}:{}: {} (file left untouched)",
                self.path, self.inner.line, self.inner.column, self.inner.message
            )
        } else {
            write!(
                f,
                "`{}`: {} (file left untouched)",
                self.path, self.inner.message
            )
        }
    }
}

impl std::error::Error for FileError {}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An error with what to do about it, attached by the caller that knows its own flags
/// ([`HintExt::hint`]). It shows as the error it wraps (`{:#}` prints no hint); the hint is
/// printed after the error and its causes as `hint: …`, and in the JSON error document.
#[derive(Debug)]
pub struct Hinted {
    pub hint: String,
    pub error: anyhow::Error,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the wrapped error's own message: its causes follow in the chain.
        match self.error.chain().next() {
            Some(top) => write!(f, "{top}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.chain().nth(1)
    }
}

/// Attach a hint to an error result.
pub trait HintExt<T> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| {
            anyhow::Error::new(Hinted {
                hint: hint.into(),
                error: e.into(),
            })
        })
    }
}

/// The error's messages, outermost first (hints are not messages).
pub fn messages(err: &anyhow::Error) -> Vec<String> {
    err.chain().map(|c| c.to_string()).collect()
}

/// The hints attached to an error, outermost first.
pub fn hints(err: &anyhow::Error) -> Vec<String> {
    let mut out = Vec::new();
    for c in err.chain() {
        let mut next = c.downcast_ref::<Hinted>();
        while let Some(h) = next {
            out.push(h.hint.clone());
            next = h.error.downcast_ref::<Hinted>();
        }
    }
    out
}

/// The error kinds a chain holds, looking through [`Hinted`] wrappers: whether `f` holds for
/// one of them.
fn any_cause(err: &anyhow::Error, f: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool) -> bool {
    err.chain().any(|c| {
        f(c) || c
            .downcast_ref::<Hinted>()
            .is_some_and(|h| any_cause(&h.error, f))
    })
}

/// An error that ends the program with a given exit code (a signal: 128 + its number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitWith {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for ExitWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitWith {}

/// Lock a mutex, also when another thread panicked while holding it: the values guarded here
/// (caches, counters, a hosts-file guard) stay usable, and a panic elsewhere must not turn
/// into a second one.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The exit code an error chain maps to.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(e) = find::<ExitWith>(err) {
        return e.code;
    }
    let usage = any_cause(err, &|c| {
        c.is::<UserError>() || c.is::<PlanError>() || c.is::<FileError>()
    });
    if usage {
        2
    } else {
        1
    }
}

/// The first `T` in the chain, looking through [`Hinted`] wrappers.
fn find<T: std::error::Error + 'static>(err: &anyhow::Error) -> Option<&T> {
    err.chain().find_map(|c| {
        c.downcast_ref::<T>()
            .or_else(|| c.downcast_ref::<Hinted>().and_then(|h| find::<T>(&h.error)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }

    #[test]
    fn hints_ride_along_but_are_not_the_message() {
        let r: Result<(), UserError> = Err(UserError("bad".into()));
        let e = r.hint("pass --x").unwrap_err().context("while arming");
        assert_eq!(
            messages(&e),
            vec!["while arming".to_string(), "bad".to_string()]
        );
        assert_eq!(format!("{e:#}"), "while arming: bad");
        assert_eq!(hints(&e), vec!["pass --x".to_string()]);
        assert_eq!(exit_code(&e), 2);
        let inner = anyhow::Error::new(UserError("deep".into())).context("cause");
        let twice: anyhow::Result<()> = Err::<(), _>(inner).hint("one").hint("two");
        let e = twice.unwrap_err();
        assert_eq!(messages(&e), vec!["cause".to_string(), "deep".to_string()]);
        assert_eq!(hints(&e), vec!["two".to_string(), "one".to_string()]);
        assert_eq!(exit_code(&e), 2);
        let sig = anyhow::Error::new(ExitWith {
            code: 143,
            message: "stopped".into(),
        });
        assert_eq!(exit_code(&sig), 143);
    }

    #[test]
    fn exit_codes() {
        let e = anyhow::Error::new(UserError("x".into())).context("while arming");
        assert_eq!(exit_code(&e), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("io")), 1);
    }
}
