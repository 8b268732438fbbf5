//! Complexity counted from this source tree at run time: what the shared-memory path
//! (`shm-frames`) needs that the message path (`control-msg`) does not. Test code (from a
//! file's first `#[cfg(test)]`/`#[cfg(all(test` on) and the `testing` fixtures are left out;
//! comment-only lines count only for `// SYNC POINT`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::error::{Result, sys};

/// Lines that reject untrusted input with a typed error, or do checked arithmetic on it.
pub const VALIDATION_NEEDLES: [&str; 11] = [
    "checked_",
    "Corrupt::",
    "TakeCorrupt::",
    "DecodeError::",
    "OpenError::Truncated",
    "OpenError::BadMagic",
    "OpenError::VersionMismatch",
    "OpenError::ForeignLayout",
    "OpenError::HeaderSize",
    "OpenError::SizeMismatch",
    "OpenError::BadLayout",
];

/// What one crate's source holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Non-blank, non-comment lines of code.
    pub lines: usize,
    /// `// SYNC POINT` comments: Release/Acquire pairs the code names.
    pub sync_points: usize,
    /// Atomic operations with an explicit ordering (`Ordering::`) and fences.
    pub atomic_ops: usize,
    /// Lines holding a validation site (see [`VALIDATION_NEEDLES`]).
    pub validation_sites: usize,
    /// `unsafe {` blocks.
    pub unsafe_blocks: usize,
    /// `unsafe fn` and `unsafe impl`.
    pub unsafe_items: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.lines += o.lines;
        self.sync_points += o.sync_points;
        self.atomic_ops += o.atomic_ops;
        self.validation_sites += o.validation_sites;
        self.unsafe_blocks += o.unsafe_blocks;
        self.unsafe_items += o.unsafe_items;
    }
}

/// Counts one file's text (tests cut off).
pub fn count_source(text: &str) -> Counts {
    let mut c = Counts::default();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test") {
            break;
        }
        if t.contains("// SYNC POINT") {
            c.sync_points += 1;
        }
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        // Code only: drop a trailing comment.
        let code = t.split("//").next().unwrap_or("");
        c.lines += 1;
        c.atomic_ops += code.matches("Ordering::").count() + code.matches("fence(").count();
        if VALIDATION_NEEDLES.iter().any(|n| code.contains(n)) {
            c.validation_sites += 1;
        }
        c.unsafe_blocks += code.matches("unsafe {").count();
        c.unsafe_items += code.matches("unsafe fn").count() + code.matches("unsafe impl").count();
    }
    c
}

/// The workspace root this binary was built from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Counts every `.rs` file under `<root>/<krate>/src` but `testing.rs`.
pub fn count_crate(root: &Path, krate: &str) -> Result<Counts> {
    let mut total = Counts::default();
    let mut dirs = vec![root.join(krate).join("src")];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(sys(format!("read {}", dir.display())))?;
        for entry in entries {
            let path = entry.map_err(sys("read a directory entry"))?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "testing.rs")
            {
                let text = std::fs::read_to_string(&path)
                    .map_err(sys(format!("read {}", path.display())))?;
                total += count_source(&text);
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_code_and_skips_tests_and_comments() {
        let text = r#"
// SYNC POINT: latest. Release pairs with take's Acquire.
latest.store(v, Ordering::Release); // not a validation: checked_ in a comment
fence(Ordering::SeqCst);
// unsafe { in a comment }
let n = a.checked_add(b).ok_or(Corrupt::Latest)?;
// SAFETY: fine
unsafe { libc::sem_post(p) };
unsafe impl Send for X {}

#[cfg(test)]
mod tests { unsafe { nothing counted } }
"#;
        let c = count_source(text);
        assert_eq!(c.sync_points, 1);
        assert_eq!(c.atomic_ops, 3);
        assert_eq!(c.validation_sites, 1);
        assert_eq!(c.unsafe_blocks, 1);
        assert_eq!(c.unsafe_items, 1);
        assert_eq!(c.lines, 5);
    }

    #[test]
    fn the_real_tree_is_found_and_counted() {
        let root = workspace_root();
        let shm = count_crate(&root, "shm-frames").unwrap();
        let mq = count_crate(&root, "control-msg").unwrap();
        assert!(shm.unsafe_blocks > 0 && shm.sync_points > 0, "{shm:?}");
        assert!(mq.lines > 0 && mq.validation_sites > 0, "{mq:?}");
        assert!(count_crate(&root, "no-such-crate").is_err());
    }
}
