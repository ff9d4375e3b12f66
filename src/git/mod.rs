//! Git, through git2 (call from a blocking task): which repository a `--repo` names, the head
//! of a branch, credentials, the clone cache and its locks; fetching a branch into a checkout
//! is `fetch.rs`.

pub mod ca;
pub mod checkout;
mod fetch;

pub use fetch::{commit_has_file, fetch_branch, peek_branch, read_at, BranchPeek};

use crate::output::{Event, SharedReporter};
use crate::secret::Secret;
use crate::{env, Error, Result};
use fetch::git_error;
use git2::{Cred, CredentialType, RemoteCallbacks, Repository};
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
        f.write_str(&self.public())
    }
}

impl RepoSpec {
    /// The location without the credentials a URL may carry: what benchctl stores (labels,
    /// cache directory names) and prints.
    pub fn public(&self) -> String {
        without_credentials(&self.location)
    }
}

/// `location` without a URL's credentials: an http(s) URL loses its whole user part (a token
/// is often the user name), another scheme keeps the user name and loses the password
/// (`ssh://git:pw@host/r` -> `ssh://git@host/r`); scp-like locations and paths are kept.
pub fn without_credentials(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return location.to_string();
    };
    let user = match rest[..at].split_once(':') {
        Some((u, _)) => u,
        None => &rest[..at],
    };
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let kept = if web || user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("{scheme}://{kept}{}", &rest[at + 1..])
}

/// The secrets in a URL's user part: its password, and an http(s) user name (often a token).
fn url_credentials(location: &str) -> Vec<String> {
    let Some((scheme, rest)) = location.split_once("://") else {
        return Vec::new();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return Vec::new();
    };
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    match rest[..at].split_once(':') {
        Some((user, password)) if web => vec![user.to_string(), password.to_string()],
        Some((_, password)) => vec![password.to_string()],
        None if web => vec![rest[..at].to_string()],
        None => Vec::new(),
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
        Some(r) if looks_like_url(r) && !Path::new(r).exists() => {
            // a token in the URL is redacted from everything benchctl prints
            for c in url_credentials(r) {
                crate::secret::Secret::new(c);
            }
            Ok(RepoSpec {
                location: r.to_string(),
                is_local: false,
            })
        }
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

pub(crate) fn set_network_timeouts() {
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

pub(crate) fn callbacks<'a>(reporter: Option<SharedReporter>) -> RemoteCallbacks<'a> {
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
    ca::load_for(&repo.location);
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
/// `~/.cache/benchctl`; never a shared temporary directory (another user could plant clones
/// there), so without any of them it is an error.
pub fn default_cache_dir() -> Result<PathBuf> {
    if let Some(d) = env::var(env::CACHE_DIR) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = env::var("XDG_CACHE_HOME") {
        return Ok(Path::new(&d).join("benchctl"));
    }
    match env::var("HOME") {
        Some(h) => Ok(Path::new(&h).join(".cache").join("benchctl")),
        None => Err(Error::usage(format!(
            "no cache directory: HOME is not set; pass --cache-dir <DIR> or set {} (benchctl \
             does not fall back to a shared temporary directory)",
            env::CACHE_DIR
        ))),
    }
}

/// Creates `dir` (and its parents) and makes it private to this user (0700): clones, checkouts
/// and queued jobs are not for other users of the machine to read or plant.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| {
            Error::usage(format!(
                "cannot create the directory `{}`: {e}",
                dir.display()
            ))
        })
}

/// Where the cached clone of `repo` lives: one bare repository per remote.
pub fn cache_path(cache: &Path, repo: &RepoSpec) -> PathBuf {
    let public = repo.public();
    let hash = hex::encode(&Sha256::digest(public.as_bytes())[..8]);
    let tail = public
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

    /// `flock(operation)` on `f`; `None` when it would block (with `LOCK_NB`).
    fn lock(f: std::fs::File, operation: i32) -> std::io::Result<Option<FileLock>> {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), operation) } != 0 {
            let e = std::io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(FileLock(f)))
    }

    /// Waits for the lock.
    pub fn exclusive(path: &Path) -> std::io::Result<FileLock> {
        Self::lock(Self::open(path)?, libc::LOCK_EX).map(|l| l.expect("a blocking lock"))
    }

    /// Waits for a shared hold (many may hold it; an exclusive holder waits for all).
    pub fn shared(path: &Path) -> std::io::Result<FileLock> {
        Self::lock(Self::open(path)?, libc::LOCK_SH).map(|l| l.expect("a blocking lock"))
    }

    /// Takes the lock only if nobody holds it.
    pub fn try_exclusive(path: &Path) -> std::io::Result<Option<FileLock>> {
        Self::lock(Self::open(path)?, libc::LOCK_EX | libc::LOCK_NB)
    }

    /// Locks a directory itself, only if nobody holds it.
    pub fn try_directory(dir: &Path) -> std::io::Result<Option<FileLock>> {
        Self::lock(std::fs::File::open(dir)?, libc::LOCK_EX | libc::LOCK_NB)
    }
}

/// Lock files git leaves when a fetch is killed. Called only while holding the clone's flock,
/// so none of them belongs to a live fetch.
pub(crate) fn remove_stale_git_locks(dir: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_stay_in_a_public_location() {
        for (url, public) in [
            (
                "https://user:tok3n-canary@git.example.com/a/b.git",
                "https://git.example.com/a/b.git",
            ),
            (
                "https://ghp_tok3ncanary@github.com/a/b.git",
                "https://github.com/a/b.git",
            ),
            ("HTTP://u:p@h:8080/r", "HTTP://h:8080/r"),
            (
                "ssh://git:pw-canary@host:22/r.git",
                "ssh://git@host:22/r.git",
            ),
            ("ssh://git@host/r.git", "ssh://git@host/r.git"),
            ("git@github.com:a/b.git", "git@github.com:a/b.git"),
            ("https://h/r@v1", "https://h/r@v1"),
            ("https://a:b@c@h/r", "https://h/r"),
            ("/srv/repos/app", "/srv/repos/app"),
        ] {
            assert_eq!(without_credentials(url), public, "{url}");
        }
        assert_eq!(
            url_credentials("https://user:tok3n-canary@h/r"),
            vec!["user".to_string(), "tok3n-canary".to_string()]
        );
        assert_eq!(url_credentials("ssh://git:pw@h/r"), vec!["pw".to_string()]);
        assert!(url_credentials("git@h:r").is_empty());
        let spec = resolve_repo(Some("https://u:resolve-canary-77@h.invalid/r.git")).unwrap();
        assert_eq!(spec.to_string(), "https://h.invalid/r.git");
        assert_eq!(
            crate::secret::redact("fetch of https://u:resolve-canary-77@h.invalid failed"),
            "fetch of https://u:***@h.invalid failed"
        );
    }

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
