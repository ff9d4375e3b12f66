//! Fetching one branch of a repository into a fresh checkout (git2; call from a blocking task).

use crate::output::{Event, SharedReporter};
use crate::secret::Secret;
use crate::{env, Error, Result};
use git2::{
    build::CheckoutBuilder, AutotagOption, Cred, CredentialType, FetchOptions, RemoteCallbacks,
    Repository, RepositoryInitOptions,
};
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
    let git_err = |e: git2::Error| Error::Git {
        branch: branch.to_string(),
        repo: repo.location.clone(),
        message: crate::secret::redact(e.message()),
    };
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

/// Fetches only `branch` (shallow where the transport allows) into `dest/git`, checks its tip
/// out into `dest/src` (no `.git` inside, so the build context is just the branch's files) and
/// returns the commit.
pub fn fetch_branch(
    repo: &RepoSpec,
    branch: &str,
    dest: &Path,
    reporter: &SharedReporter,
) -> Result<Fetched> {
    set_network_timeouts();
    let git_err = |e: git2::Error| Error::Git {
        branch: branch.to_string(),
        repo: repo.location.clone(),
        message: crate::secret::redact(e.message()),
    };
    let workdir = dest.join("src");
    std::fs::create_dir_all(&workdir).map_err(|e| Error::Git {
        branch: branch.to_string(),
        repo: repo.location.clone(),
        message: format!("cannot create {}: {e}", workdir.display()),
    })?;
    let mut init = RepositoryInitOptions::new();
    init.workdir_path(&workdir).no_reinit(false);
    let git = Repository::init_opts(dest.join("git"), &init).map_err(git_err)?;

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
    let commit = reference.peel_to_commit().map_err(git_err)?;
    git.checkout_tree(commit.as_object(), Some(CheckoutBuilder::new().force()))
        .map_err(git_err)?;
    git.set_head_detached(commit.id()).map_err(git_err)?;
    // libgit2 leaves a `.git` link file in a separate work tree: keep it out of the context.
    let link = workdir.join(".git");
    if link.is_file() {
        std::fs::remove_file(&link).map_err(|e| Error::Git {
            branch: branch.to_string(),
            repo: repo.location.clone(),
            message: format!("cannot remove {}: {e}", link.display()),
        })?;
    }
    Ok(Fetched {
        commit: commit.id().to_string(),
        time: commit.time().seconds(),
    })
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
