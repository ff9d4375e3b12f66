//! Fetching one branch of a repository into a fresh checkout (git2; call from a blocking task).

use crate::output::{Event, SharedReporter};
use crate::secret::Secret;
use crate::{env, Error, Result};
use git2::{
    build::CheckoutBuilder, AutotagOption, Cred, CredentialType, FetchOptions, RemoteCallbacks,
    Repository,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Where the branch comes from: a remote URL or a local repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// What libgit2 is given (URL or absolute path).
    pub location: String,
    pub is_local: bool,
}

impl std::fmt::Display for RepoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location)
    }
}

fn looks_like_url(s: &str) -> bool {
    if s.contains("://") {
        return true;
    }
    // scp-like syntax `user@host:path` or `host:path` (a colon before any slash)
    match (s.find(':'), s.find('/')) {
        (Some(c), Some(sl)) => c < sl && c > 0,
        (Some(c), None) => c > 0,
        _ => false,
    }
}

/// Resolves `--repo`: a URL stays as it is, a path must be a git repository, and no value means
/// the repository around the current directory.
pub fn resolve_repo(repo: Option<&str>) -> Result<RepoSpec> {
    match repo {
        Some(r) if r.starts_with("file://") => Ok(RepoSpec {
            location: r.to_string(),
            is_local: true,
        }),
        Some(r) if looks_like_url(r) && !Path::new(r).exists() => Ok(RepoSpec {
            location: r.to_string(),
            is_local: false,
        }),
        Some(r) => {
            let path = Path::new(r)
                .canonicalize()
                .map_err(|e| Error::usage(format!("repository path `{r}` cannot be used: {e}")))?;
            Repository::open(&path).map_err(|e| {
                Error::usage(format!(
                    "`{}` is not a git repository: {}",
                    path.display(),
                    e.message()
                ))
            })?;
            Ok(RepoSpec {
                location: path.to_string_lossy().into_owned(),
                is_local: true,
            })
        }
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Error::usage(format!("cannot read the current directory: {e}")))?;
            let found = Repository::discover(&cwd).map_err(|_| {
                Error::usage(format!(
                    "`{}` is not inside a git repository; pass --repo <URL or path>",
                    cwd.display()
                ))
            })?;
            let path = found
                .workdir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| found.path().to_path_buf());
            Ok(RepoSpec {
                location: path.to_string_lossy().into_owned(),
                is_local: true,
            })
        }
    }
}

fn set_network_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these set process-global libgit2 options once, before any fetch starts.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(120_000);
            // Pack files are read through mmap windows, which count as resident memory: keep
            // them small so memory stays bounded however large the repository.
            let _ = git2::opts::set_mwindow_size(32 << 20);
            let _ = git2::opts::set_mwindow_mapped_limit(64 << 20);
        }
    });
}

/// Credentials tried in order, each at most once: ssh-agent, then `~/.ssh` keys (ssh), then
/// `BENCHCTL_GIT_TOKEN` (https). When all are used up the callback fails, so libgit2 stops
/// asking instead of looping forever.
struct CredentialState {
    tried_agent: bool,
    keys: Vec<PathBuf>,
    tried_token: bool,
    tried_username: bool,
}

impl CredentialState {
    fn new() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let keys = home
            .map(|h| {
                ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|k| h.join(".ssh").join(k))
                    .filter(|p| p.exists())
                    .collect()
            })
            .unwrap_or_default();
        CredentialState {
            tried_agent: false,
            keys,
            tried_token: false,
            tried_username: false,
        }
    }

    fn next(
        &mut self,
        username: Option<&str>,
        allowed: CredentialType,
    ) -> std::result::Result<Cred, git2::Error> {
        let user = username.unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) && !self.tried_username {
            self.tried_username = true;
            return Cred::username(user);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if !self.tried_agent {
                self.tried_agent = true;
                if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                    return Cred::ssh_key_from_agent(user);
                }
            }
            if let Some(key) = (!self.keys.is_empty()).then(|| self.keys.remove(0)) {
                return Cred::ssh_key(user, None, &key, None);
            }
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && !self.tried_token {
            self.tried_token = true;
            if let Some(token) = env::var(env::GIT_TOKEN) {
                let token = Secret::new(token);
                let git_user =
                    env::var(env::GIT_USER).unwrap_or_else(|| "x-access-token".to_string());
                return Cred::userpass_plaintext(&git_user, token.expose());
            }
        }
        Err(git2::Error::from_str(
            "authentication failed: no more credentials to try (ssh-agent, ~/.ssh/id_* keys, \
             BENCHCTL_GIT_TOKEN for https)",
        ))
    }
}

/// The commit a fetch checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub commit: String,
    /// Committer time, unix seconds.
    pub time: i64,
}

fn callbacks<'a>(reporter: Option<SharedReporter>) -> RemoteCallbacks<'a> {
    let mut creds = CredentialState::new();
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |_url, username, allowed| creds.next(username, allowed));
    if let Some(rep) = reporter {
        cb.transfer_progress(move |p| {
            rep.report(Event::FetchProgress {
                received_objects: p.received_objects(),
                total_objects: p.total_objects(),
                received_bytes: p.received_bytes(),
            });
            true
        });
    }
    cb
}

/// The commit `branch` points at in the remote (`git ls-remote`), without fetching anything;
/// `None` when the branch does not exist.
pub fn remote_head(repo: &RepoSpec, branch: &str) -> Result<Option<String>> {
    set_network_timeouts();
    let git_err = git_error(repo, branch);
    let mut remote = git2::Remote::create_detached(repo.location.as_str()).map_err(git_err)?;
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(None)), None)
        .map_err(git_err)?;
    let wanted = format!("refs/heads/{branch}");
    let head = conn
        .list()
        .map_err(git_err)?
        .iter()
        .find(|h| h.name() == wanted)
        .map(|h| h.oid().to_string());
    Ok(head)
}

/// The cache directory: `BENCHCTL_CACHE_DIR`, else `$XDG_CACHE_HOME/benchctl`, else
/// `~/.cache/benchctl`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = env::var(env::CACHE_DIR) {
        return PathBuf::from(d);
    }
    if let Some(d) = env::var("XDG_CACHE_HOME") {
        return Path::new(&d).join("benchctl");
    }
    match env::var("HOME") {
        Some(h) => Path::new(&h).join(".cache").join("benchctl"),
        None => std::env::temp_dir().join("benchctl-cache"),
    }
}

/// Where the cached clone of `repo` lives: one bare repository per remote.
pub fn cache_path(cache: &Path, repo: &RepoSpec) -> PathBuf {
    let hash = hex::encode(&Sha256::digest(repo.location.as_bytes())[..8]);
    let tail = repo
        .location
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .find(|s| !s.is_empty())
        .unwrap_or("repo")
        .trim_end_matches(".git");
    cache
        .join("repos")
        .join(format!("{}-{hash}.git", crate::naming::slug(tail, 40)))
}

/// File touched on every use of a cached clone (gc removes clones unused for long).
pub const LAST_USED: &str = "benchctl-last-used";

/// An exclusive `flock` on a file; the kernel releases it when the process ends, however.
pub struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    fn open(path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    }

    /// Waits for the lock.
    pub fn exclusive(path: &Path) -> std::io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        let f = Self::open(path)?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(FileLock(f))
    }

    /// Takes the lock only if nobody holds it.
    pub fn try_exclusive(path: &Path) -> std::io::Result<Option<FileLock>> {
        use std::os::fd::AsRawFd;
        let f = Self::open(path)?;
        // SAFETY: as above.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(FileLock(f)))
    }
}

/// Lock files git leaves when a fetch is killed. Called only while holding the clone's flock,
/// so none of them belongs to a live fetch.
fn remove_stale_git_locks(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => remove_stale_git_locks(&path),
            Ok(_) if path.extension().is_some_and(|e| e == "lock") => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// The `.dockerignore` rules of `commit` (as the context walk applies them), or `None` when
/// they cannot be read (a full checkout is made then).
fn context_matcher(
    git: &Repository,
    commit: &git2::Commit,
    dockerfile: &str,
) -> Option<crate::dockerignore::Matcher> {
    let tree = commit.tree().ok()?;
    let ignore = match tree.get_path(Path::new(".dockerignore")) {
        Ok(entry) => {
            let blob = entry.to_object(git).ok()?.peel_to_blob().ok()?;
            crate::dockerignore::parse(std::str::from_utf8(blob.content()).ok()?)
        }
        Err(_) => Vec::new(),
    };
    let patterns = crate::dockerignore::keep_build_files(ignore, dockerfile);
    crate::dockerignore::Matcher::new(&patterns).ok()
}

/// Writes the blobs of `tree` that the build context holds (the context walk's rules: an
/// excluded directory is entered only when an exception may re-include something inside).
fn write_tree(
    git: &Repository,
    tree: &git2::Tree,
    dir: &Path,
    rel_dir: &str,
    matcher: &crate::dockerignore::Matcher,
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
                std::fs::create_dir_all(&path).map_err(io)?;
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
                        std::fs::write(&path, blob.content()).map_err(io)?;
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
fn git_error<'a>(repo: &'a RepoSpec, branch: &'a str) -> impl Fn(git2::Error) -> Error + Copy + 'a {
    move |e| Error::Git {
        branch: branch.to_string(),
        repo: repo.location.clone(),
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
        repo: repo.location.clone(),
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
            repo: repo.location.clone(),
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
                repo: repo.location.clone(),
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
    pub text: Option<String>,
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
    let git_err = git_error(repo, branch);
    let not_found = || Error::BranchNotFound {
        branch: branch.to_string(),
        repo: repo.location.clone(),
    };
    let peek = |git: &Repository, commit: &git2::Commit| -> BranchPeek {
        let tree = commit.tree().ok();
        let text = tree.as_ref().and_then(|t| {
            let entry = t.get_path(Path::new(path)).ok()?;
            let blob = entry.to_object(git).ok()?.peel_to_blob().ok()?;
            String::from_utf8(blob.content().to_vec()).ok()
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(looks_like_url("git@bitbucket.example:team/app.git"));
        assert!(looks_like_url("https://example.com/a.git"));
        assert!(looks_like_url("git://127.0.0.1:9418/app"));
        assert!(!looks_like_url("/tmp/repo"));
        assert!(!looks_like_url("./repo"));
        assert!(!looks_like_url("repo"));
    }

    #[test]
    fn credentials_run_out() {
        let mut s = CredentialState::new();
        s.keys.clear();
        // ssh without agent or keys, then nothing left
        let mut n = 0;
        while s.next(Some("git"), CredentialType::SSH_KEY).is_ok() {
            n += 1;
            assert!(n < 5, "credential callback never gives up");
        }
    }
}
