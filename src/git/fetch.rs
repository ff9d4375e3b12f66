//! Fetching one branch into a fresh checkout of only its build context, through a cached bare
//! clone (shallow, updated incrementally, shared under a file lock), and peeking at one file
//! of a branch's head without a checkout.

use super::{cache_path, callbacks, remove_stale_git_locks, set_network_timeouts, FileLock};
use super::{remote_head, Fetched, RepoSpec, LAST_USED};
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use git2::{build::CheckoutBuilder, AutotagOption, FetchOptions, Repository};
use std::path::Path;

/// The `.dockerignore` rules of `commit` (as the context walk applies them), or `None` when
/// they cannot be read (a full checkout is made then).
fn context_matcher(
    git: &Repository,
    commit: &git2::Commit,
    dockerfile: &str,
) -> Option<crate::build::dockerignore::Matcher> {
    // no Dockerfile named (several build contexts, each with its own .dockerignore): all
    if dockerfile.is_empty() {
        return None;
    }
    let tree = commit.tree().ok()?;
    let ignore = match tree.get_path(Path::new(".dockerignore")) {
        Ok(entry) => {
            let blob = entry.to_object(git).ok()?.peel_to_blob().ok()?;
            crate::build::dockerignore::parse(std::str::from_utf8(blob.content()).ok()?)
        }
        Err(_) => Vec::new(),
    };
    let patterns = crate::build::dockerignore::keep_build_files(ignore, dockerfile);
    crate::build::dockerignore::Matcher::new(&patterns).ok()
}

/// Writes the blobs of `tree` that the build context holds (the context walk's rules: an
/// excluded directory is entered only when an exception may re-include something inside).
fn write_tree(
    git: &Repository,
    tree: &git2::Tree,
    dir: &Path,
    rel_dir: &str,
    matcher: &crate::build::dockerignore::Matcher,
    parent: Option<&[bool]>,
) -> std::result::Result<(), git2::Error> {
    use std::os::unix::fs::PermissionsExt;
    let io = |e: std::io::Error| git2::Error::from_str(&e.to_string());
    for entry in tree.iter() {
        let Some(name) = entry.name() else {
            return Err(git2::Error::from_str(
                "a file name in the commit is not UTF-8",
            ));
        };
        let rel = if rel_dir.is_empty() {
            name.to_string()
        } else {
            format!("{rel_dir}/{name}")
        };
        let (skip, info) = if matcher.patterns.is_empty() {
            (false, Vec::new())
        } else {
            matcher.matches_using_parent(&rel, parent)
        };
        let path = dir.join(name);
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                if skip && !matcher.must_enter_excluded_dir(&rel) {
                    continue;
                }
                // a new directory, never an existing entry (a crafted tree naming a symlink
                // and a directory alike must not write through the link)
                std::fs::create_dir(&path).map_err(io)?;
                let sub = entry.to_object(git)?.peel_to_tree()?;
                let info_ref = (!matcher.patterns.is_empty()).then_some(info.as_slice());
                write_tree(git, &sub, &path, &rel, matcher, info_ref)?;
            }
            Some(git2::ObjectType::Blob) if !skip => {
                let blob = entry.to_object(git)?.peel_to_blob()?;
                match entry.filemode() {
                    0o120000 => {
                        let target = std::str::from_utf8(blob.content())
                            .map_err(|_| git2::Error::from_str("a symlink target is not UTF-8"))?;
                        std::os::unix::fs::symlink(target, &path).map_err(io)?;
                    }
                    mode => {
                        use std::io::Write;
                        use std::os::unix::fs::OpenOptionsExt;
                        std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&path)
                            .and_then(|mut f| f.write_all(blob.content()))
                            .map_err(io)?;
                        if mode == 0o100755 {
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                                .map_err(io)?;
                        }
                    }
                }
            }
            // excluded files, and submodules (not part of a checkout's content)
            _ => {}
        }
    }
    Ok(())
}

/// Fetches only `branch` into the cached clone of `repo` under `cache` (incrementally;
/// shallow where the transport allows, and a shallow clone stays shallow), then checks the
/// commit out into `dest/src` (just the branch's files, no `.git`). Safe under concurrent
/// deploys and after a killed one: fetches into one clone take turns on a `flock`. A
/// repository given as a local path is not cloned: its commit is checked out from it directly
/// (its index and HEAD untouched). Only the files the build context holds (by the commit's
/// `.dockerignore`, with `dockerfile` always kept) are written.
pub fn fetch_branch(
    repo: &RepoSpec,
    branch: &str,
    cache: &Path,
    dest: &Path,
    dockerfile: &str,
    reporter: &SharedReporter,
) -> Result<Fetched> {
    set_network_timeouts();
    super::ca::load_for(&repo.location);
    let git_err = git_error(repo, branch);
    let io_err = io_error(repo, branch);
    let workdir = dest.join("src");
    std::fs::create_dir_all(&workdir)
        .map_err(|e| io_err(&format!("cannot create {}", workdir.display()), e))?;
    let checkout = |git: &Repository, commit: &git2::Commit| {
        match context_matcher(git, commit, dockerfile) {
            // only what the build context holds is written
            Some(matcher) => write_tree(git, &commit.tree()?, &workdir, "", &matcher, None),
            None => {
                let mut co = CheckoutBuilder::new();
                co.force().target_dir(&workdir).update_index(false);
                git.checkout_tree(commit.as_object(), Some(&mut co))
            }
        }
    };

    // A repository on this machine is read directly: cloning it would only copy it.
    if repo.is_local && !repo.location.starts_with("file://") {
        let git = Repository::open(&repo.location).map_err(git_err)?;
        let commit = local_branch_commit(&git, repo, branch)?;
        checkout(&git, &commit).map_err(git_err)?;
        return Ok(Fetched {
            commit: commit.id().to_string(),
            time: commit.time().seconds(),
        });
    }

    let (git, commit_id) = update_cache(repo, branch, cache, reporter)?;
    let commit = git.find_commit(commit_id).map_err(git_err)?;

    checkout(&git, &commit).map_err(git_err)?;
    Ok(Fetched {
        commit: commit.id().to_string(),
        time: commit.time().seconds(),
    })
}

/// A failed git operation on `branch` of `repo`, as an error (secrets redacted).
pub(super) fn git_error<'a>(
    repo: &'a RepoSpec,
    branch: &'a str,
) -> impl Fn(git2::Error) -> Error + Copy + 'a {
    move |e| Error::Git {
        branch: branch.to_string(),
        repo: repo.public(),
        message: crate::secret::redact(e.message()),
    }
}

/// A failed file operation while fetching `branch` of `repo`, as an error.
fn io_error<'a>(
    repo: &'a RepoSpec,
    branch: &'a str,
) -> impl Fn(&str, std::io::Error) -> Error + Copy + 'a {
    move |what, e| Error::Git {
        branch: branch.to_string(),
        repo: repo.public(),
        message: format!("{what}: {e}"),
    }
}

/// The commit `refs/heads/<branch>` of a local repository points at.
fn local_branch_commit<'r>(
    git: &'r Repository,
    repo: &RepoSpec,
    branch: &str,
) -> Result<git2::Commit<'r>> {
    match git.find_reference(&format!("refs/heads/{branch}")) {
        Ok(r) => r.peel_to_commit().map_err(git_error(repo, branch)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Err(Error::BranchNotFound {
            branch: branch.to_string(),
            repo: repo.public(),
        }),
        Err(e) => Err(git_error(repo, branch)(e)),
    }
}

/// Fetches `branch` into the cached clone of `repo` (creating it; incrementally and shallow
/// where the transport allows; under the clone's `flock`); returns the clone and the commit.
fn update_cache(
    repo: &RepoSpec,
    branch: &str,
    cache: &Path,
    reporter: &SharedReporter,
) -> Result<(Repository, git2::Oid)> {
    let git_err = git_error(repo, branch);
    let io_err = io_error(repo, branch);
    let dir = cache_path(cache, repo);
    let parent = dir.parent().expect("cache path has a parent");
    std::fs::create_dir_all(parent)
        .map_err(|e| io_err(&format!("cannot create {}", parent.display()), e))?;
    let guard = FileLock::exclusive(&dir.with_extension("lock"))
        .map_err(|e| io_err("cannot lock the cached clone", e))?;
    remove_stale_git_locks(&dir);
    let git = match Repository::open_bare(&dir) {
        Ok(r) => r,
        Err(_) => {
            // absent, or half made by a killed process
            let _ = std::fs::remove_dir_all(&dir);
            Repository::init_bare(&dir).map_err(git_err)?
        }
    };

    let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
    let fetch = |depth: Option<i32>| -> std::result::Result<(), git2::Error> {
        let mut remote = git.remote_anonymous(&repo.location)?;
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(callbacks(Some(reporter.clone())))
            .download_tags(AutotagOption::None);
        if let Some(d) = depth {
            fo.depth(d);
        }
        remote.fetch(&[refspec.as_str()], Some(&mut fo), None)
    };
    if repo.is_local {
        // libgit2's local transport cannot make shallow fetches.
        fetch(None).map_err(git_err)?;
    } else {
        match fetch(Some(1)) {
            Ok(()) => {}
            Err(e) if e.message().to_ascii_lowercase().contains("shallow") => {
                reporter.report(Event::Info(
                    "the transport cannot fetch shallow; fetching the full branch".into(),
                ));
                fetch(None).map_err(git_err)?
            }
            Err(e) => return Err(git_err(e)),
        }
    }

    let reference = match git.find_reference(&format!("refs/remotes/origin/{branch}")) {
        Ok(r) => r,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Err(Error::BranchNotFound {
                branch: branch.to_string(),
                repo: repo.public(),
            })
        }
        Err(e) => return Err(git_err(e)),
    };
    let commit = reference.peel_to_commit().map_err(git_err)?.id();
    drop(reference);
    let _ = std::fs::write(dir.join(LAST_USED), b"");
    drop(guard);
    Ok((git, commit))
}

/// What a deploy reads from the branch before anything else: its head, the text of one file
/// (the repository's config), and the names at its root (to choose a Dockerfile template).
#[derive(Debug, Clone)]
pub struct BranchPeek {
    pub head: String,
    /// The file's text; none when there is no such file; an error when it is past
    /// [`MAX_BRANCH_FILE`].
    pub text: std::result::Result<Option<String>, String>,
    pub root: Vec<String>,
}

/// Opens the repository that holds `commit`: the local one, or the cached clone.
fn open_holding(repo: &RepoSpec, cache: &Path) -> std::result::Result<Repository, git2::Error> {
    if repo.is_local && !repo.location.starts_with("file://") {
        Repository::open(&repo.location)
    } else {
        Repository::open_bare(cache_path(cache, repo))
    }
}

/// Reads `path` and the root's names at the head of `branch`. A local repository is read
/// directly; a remote one from the cached clone, fetched first when it lacks the head (the
/// deploy that follows then has nothing left to fetch).
pub fn peek_branch(
    repo: &RepoSpec,
    branch: &str,
    cache: &Path,
    path: &str,
    reporter: &SharedReporter,
) -> Result<BranchPeek> {
    set_network_timeouts();
    super::ca::load_for(&repo.location);
    let git_err = git_error(repo, branch);
    let not_found = || Error::BranchNotFound {
        branch: branch.to_string(),
        repo: repo.public(),
    };
    let peek = |git: &Repository, commit: &git2::Commit| -> BranchPeek {
        let tree = commit.tree().ok();
        let text = match tree.as_ref().and_then(|t| t.get_path(Path::new(path)).ok()) {
            Some(entry) => blob_text(git, entry.id(), path),
            None => Ok(None),
        };
        let root = tree
            .iter()
            .flat_map(|t| t.iter())
            .filter_map(|e| e.name().map(str::to_string))
            .collect();
        BranchPeek {
            head: commit.id().to_string(),
            text,
            root,
        }
    };
    if repo.is_local && !repo.location.starts_with("file://") {
        let git = Repository::open(&repo.location).map_err(git_err)?;
        let commit = local_branch_commit(&git, repo, branch)?;
        return Ok(peek(&git, &commit));
    }
    let head = remote_head(repo, branch)?.ok_or_else(not_found)?;
    let oid = git2::Oid::from_str(&head).map_err(git_err)?;
    if let Ok(git) = open_holding(repo, cache) {
        if let Ok(commit) = git.find_commit(oid) {
            return Ok(peek(&git, &commit));
        }
    }
    let (git, id) = update_cache(repo, branch, cache, reporter)?;
    let commit = git.find_commit(id).map_err(git_err)?;
    Ok(peek(&git, &commit))
}

/// The largest file benchctl reads from a branch's tree by itself (settings, Compose and env
/// files, secrets): what real ones need, many times over.
pub const MAX_BRANCH_FILE: usize = 1 << 20;

/// The text of blob `id` (the file `path`), its size asked of the object database before it
/// is read: past [`MAX_BRANCH_FILE`] an error; `None` when it is not a blob or not UTF-8.
fn blob_text(
    git: &Repository,
    id: git2::Oid,
    path: &str,
) -> std::result::Result<Option<String>, String> {
    let Ok(odb) = git.odb() else { return Ok(None) };
    let Ok((size, kind)) = odb.read_header(id) else {
        return Ok(None);
    };
    if kind != git2::ObjectType::Blob {
        return Ok(None);
    }
    if size > MAX_BRANCH_FILE {
        return Err(format!(
            "`{path}` is {size} bytes, more than the {} KiB benchctl reads from a branch",
            MAX_BRANCH_FILE >> 10
        ));
    }
    let Ok(blob) = git.find_blob(id) else {
        return Ok(None);
    };
    Ok(String::from_utf8(blob.content().to_vec()).ok())
}

/// The text of the file at `path` in `commit` (already read by [`peek_branch`]); `None` when
/// there is none or it is not UTF-8; an error past [`MAX_BRANCH_FILE`].
pub fn read_at(
    repo: &RepoSpec,
    cache: &Path,
    commit: &str,
    path: &str,
) -> std::result::Result<Option<String>, String> {
    let Ok(git) = open_holding(repo, cache) else {
        return Ok(None);
    };
    let id = git2::Oid::from_str(commit)
        .and_then(|oid| git.find_commit(oid))
        .and_then(|c| c.tree())
        .and_then(|t| t.get_path(Path::new(path)).map(|e| e.id()));
    match id {
        Ok(id) => blob_text(&git, id, path),
        Err(_) => Ok(None),
    }
}

/// Whether `commit` (already read by [`peek_branch`]) holds a file at `path`.
pub fn commit_has_file(repo: &RepoSpec, cache: &Path, commit: &str, path: &str) -> bool {
    let Ok(git) = open_holding(repo, cache) else {
        return false;
    };
    let found = git2::Oid::from_str(commit)
        .and_then(|oid| git.find_commit(oid))
        .and_then(|c| c.tree())
        .and_then(|t| t.get_path(Path::new(path)));
    matches!(found, Ok(e) if e.kind() == Some(git2::ObjectType::Blob))
}
