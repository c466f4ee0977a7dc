//! Home directories, as the per-user clients find them: from the environment (`HOME`,
//! `SUDO_USER`) and the root's `/etc/passwd`, always as system paths that resolve under
//! `--root`, so nothing outside the root is read or written.

use crate::fsutil::Root;
use std::path::Path;

/// A system path and how it was found (for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: String,
    pub how: String,
    /// Named by a flag or an environment variable (not a default location).
    pub explicit: bool,
}

/// The home directory of `user` (by name) or `uid` in `<root>/etc/passwd`.
pub fn passwd_home(root: &Root, user: Option<&str>, uid: Option<u32>) -> Option<String> {
    let text = std::fs::read_to_string(root.resolve("/etc/passwd").ok()?).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let name = f.first()?;
        let id: u32 = f.get(2)?.parse().ok()?;
        let home = f.get(5)?;
        let hit = user.is_some_and(|u| u == *name) || uid.is_some_and(|u| u == id);
        (hit && !home.is_empty()).then(|| home.to_string())
    })
}

/// `HOME`, when set and not empty.
pub fn env_home() -> Option<String> {
    std::env::var("HOME").ok().filter(|h| !h.trim().is_empty())
}

/// The current user's home in the root's passwd file.
pub fn own_home(root: &Root) -> Option<String> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    passwd_home(root, None, Some(uid))
}

/// Whether a system path is a directory this process may write, under the root.
pub fn writable_dir(root: &Root, sys_path: &str) -> bool {
    let Ok(p) = root.resolve(sys_path) else {
        return false;
    };
    if !p.is_dir() {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// A path given by the user, as a system path: absolute, or made so from the current directory.
pub fn absolute(p: &Path) -> String {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    abs.display().to_string()
}

/// An environment variable naming a path, when set and not empty.
pub fn env_path(var: &str) -> Option<String> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(|v| absolute(Path::new(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup_under_the_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nci:x:1001:1001::/home/ci:/bin/sh\nbad\n",
        )
        .unwrap();
        let root = Root::new(t.path());
        assert_eq!(
            passwd_home(&root, Some("ci"), None).as_deref(),
            Some("/home/ci")
        );
        assert_eq!(passwd_home(&root, None, Some(0)).as_deref(), Some("/root"));
        assert_eq!(passwd_home(&root, Some("nobody"), None), None);
        assert!(!writable_dir(&root, "/home/ci"));
        std::fs::create_dir_all(t.path().join("home/ci")).unwrap();
        assert!(writable_dir(&root, "/home/ci"));
    }
}
