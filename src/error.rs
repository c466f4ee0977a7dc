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

/// The exit code an error chain maps to.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<UserError>() || cause.is::<PlanError>() || cause.is::<FileError>() {
            return 2;
        }
    }
    1
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
    fn exit_codes() {
        let e = anyhow::Error::new(UserError("x".into())).context("while arming");
        assert_eq!(exit_code(&e), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("io")), 1);
    }
}
