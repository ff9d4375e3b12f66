//! What a service is made from, by content: the digest of a build context or of the branch's
//! files copied into a container, read from the checkout. Two commits whose files under a path
//! are the same give the same digest, so a service built or copied from there is kept as it
//! runs. A symlink that leads out of the checkout is refused (it would copy a host file).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The most bytes read for one digest: a context past this is a mistake worth stopping at.
pub const MAX_BYTES: u64 = 2 << 30;

/// Why a path cannot be read as the branch's own.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not in the branch.
    Missing(String),
    /// A symlink out of the checkout (the path as written in the branch).
    OutOfBranch(String),
    TooLarge(String),
    Io(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Refused::Missing(p) => write!(f, "`{p}` is not in the branch"),
            Refused::OutOfBranch(p) => write!(
                f,
                "`{p}` is a symlink leading out of the branch (it would copy a host file)"
            ),
            Refused::TooLarge(p) => write!(f, "`{p}` holds more than {} GiB", MAX_BYTES >> 30),
            Refused::Io(e) => f.write_str(e),
        }
    }
}

/// The digest (hex) of `rel` under the checkout `root`: a file's mode and bytes, or a
/// directory's paths, modes, bytes and links, in name order.
pub fn digest(root: &Path, rel: &str) -> Result<String, Refused> {
    let path = resolve(root, rel)?;
    let canon_root = std::fs::canonicalize(root).map_err(|e| Refused::Io(e.to_string()))?;
    let mut w = Walk {
        root: &canon_root,
        rel,
        h: Sha256::new(),
        total: 0,
    };
    w.walk(&path, Path::new(""))?;
    Ok(hex::encode(w.h.finalize()))
}

/// `rel` in the checkout, refused when it (or a link on the way) leads out.
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, Refused> {
    let path = root.join(rel);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(Refused::Missing(rel.to_string()));
    }
    let canon_root = std::fs::canonicalize(root).map_err(|e| Refused::Io(e.to_string()))?;
    match std::fs::canonicalize(&path) {
        Ok(c) if c.starts_with(&canon_root) => Ok(c),
        Ok(_) | Err(_) => Err(Refused::OutOfBranch(rel.to_string())),
    }
}

/// One digest's walk: the checkout's root (canonical), the path as written, the hash so far
/// and the bytes read.
struct Walk<'a> {
    root: &'a Path,
    rel: &'a str,
    h: Sha256,
    total: u64,
}

impl Walk<'_> {
    fn walk(&mut self, path: &Path, name: &Path) -> Result<(), Refused> {
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| Refused::Io(format!("{}: {e}", path.display()));
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        self.h.update(name.to_string_lossy().as_bytes());
        self.h.update([0]);
        if meta.file_type().is_symlink() {
            let ok = std::fs::canonicalize(path).is_ok_and(|c| c.starts_with(self.root));
            if !ok {
                let at = format!("{}/{}", self.rel, name.display());
                return Err(Refused::OutOfBranch(at));
            }
            self.h.update(b"l");
            let to = std::fs::read_link(path).map_err(io)?;
            self.h.update(to.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            self.h.update(b"d");
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            entries.sort();
            for e in entries {
                if name.as_os_str().is_empty() && e == ".git" {
                    continue;
                }
                self.walk(&path.join(&e), &name.join(&e))?;
            }
        } else {
            self.total += meta.len();
            if self.total > MAX_BYTES {
                return Err(Refused::TooLarge(self.rel.to_string()));
            }
            let x = meta.permissions().mode() & 0o111;
            self.h.update(format!("f{x:o}").as_bytes());
            let mut f = std::fs::File::open(path).map_err(io)?;
            std::io::copy(&mut f, &mut self.h).map_err(io)?;
        }
        self.h.update([0]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_same_digest_and_links_out_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("db/init")).unwrap();
            std::fs::write(d.join("db/Dockerfile"), "FROM x\n").unwrap();
            std::fs::write(d.join("db/init/1.sql"), "create table t();\n").unwrap();
            std::fs::write(d.join("www.txt"), "v1").unwrap();
        }
        std::fs::write(b.path().join("www.txt"), "v2").unwrap();
        assert_eq!(digest(a.path(), "db"), digest(b.path(), "db"));
        assert_ne!(digest(a.path(), "."), digest(b.path(), "."));
        std::fs::write(b.path().join("db/init/1.sql"), "create table u();\n").unwrap();
        assert_ne!(digest(a.path(), "db"), digest(b.path(), "db"));
        std::os::unix::fs::symlink("/etc", a.path().join("db/etc")).unwrap();
        assert_eq!(
            digest(a.path(), "db"),
            Err(Refused::OutOfBranch("db/etc".into()))
        );
        std::os::unix::fs::symlink("/etc/hostname", a.path().join("conf")).unwrap();
        assert_eq!(
            resolve(a.path(), "conf"),
            Err(Refused::OutOfBranch("conf".into()))
        );
        assert_eq!(
            digest(a.path(), "nope"),
            Err(Refused::Missing("nope".into()))
        );
    }
}
