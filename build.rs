//! Puts the commit benchctl is built from into `--version` (`unknown` outside a git checkout;
//! `-dirty` when the sources differ from it).
//!
//! The inputs are the branch's ref and the files that make up the binary, never `.git/index`:
//! git rewrites the index on a mere `git status`, which would rebuild the crate each time.

fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    // only what goes into the binary counts (a changed test or README does not make it dirty)
    let sources = ["src", "templates", "build.rs", "Cargo.toml", "Cargo.lock"];
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(sources);
    let dirty = git(&status).is_some_and(|s| !s.is_empty());
    let commit = if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    };
    println!("cargo:rustc-env=BENCHCTL_COMMIT={commit}");
    for path in sources {
        println!("cargo:rerun-if-changed={path}");
    }
    // the commit moves: HEAD switches branch, the branch's ref (loose or packed) moves; only
    // paths that exist are named (cargo counts a missing one as changed, every build)
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(std::path::PathBuf::from) {
        for path in [
            dir.join("HEAD"),
            dir.join("refs/heads"),
            dir.join("packed-refs"),
        ] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rerun-if-env-changed=BENCHCTL_COMMIT");
}
