//! Which code host a repository lives on, and its path there, derived from the `--repo` URL
//! (`https://github.com/o/r.git`, `git@gitlab.com:g/sub/p.git`, `ssh://git@bitbucket.org/w/r`),
//! or given by the operator for self-hosted instances and mirrors (`--code-host`,
//! `--code-host-api`, `--code-host-repo`).

use serde::Serialize;

/// A code host's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    GitHub,
    GitLab,
    BitbucketCloud,
    /// Bitbucket Data Center (Server).
    BitbucketDc,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GitHub => "github",
            Kind::GitLab => "gitlab",
            Kind::BitbucketCloud => "bitbucket-cloud",
            Kind::BitbucketDc => "bitbucket-dc",
        }
    }

    /// The variable holding this host's token (also read from `<VAR>_FILE`).
    pub fn token_var(self) -> &'static str {
        match self {
            Kind::GitHub => crate::env::GITHUB_TOKEN,
            Kind::GitLab => crate::env::GITLAB_API_TOKEN,
            Kind::BitbucketCloud | Kind::BitbucketDc => crate::env::BITBUCKET_TOKEN,
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "github" => Ok(Kind::GitHub),
            "gitlab" => Ok(Kind::GitLab),
            "bitbucket-cloud" => Ok(Kind::BitbucketCloud),
            "bitbucket-dc" => Ok(Kind::BitbucketDc),
            other => Err(format!(
                "unknown code host `{other}`: use github, gitlab, bitbucket-cloud or bitbucket-dc"
            )),
        }
    }
}

/// Where a repository's statuses go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// The API's base URL, without a trailing `/` (`https://api.github.com`,
    /// `https://gitlab.com/api/v4`, `https://api.bitbucket.org/2.0`, `https://bitbucket.example.com`).
    pub api: String,
    /// The repository's path: `owner/repo`, `group/sub/project`, `workspace/repo`,
    /// `PROJECT/repo`.
    pub repo: String,
    /// The repository's web page (a status needs some address before the bench has one).
    pub web: String,
}

/// What the operator set (`--code-host*`); all optional.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kind: Option<Kind>,
    pub api: Option<String>,
    pub repo: Option<String>,
}

/// The host and path of a repository location: `https://[user@]host[:port]/path`,
/// `ssh://[user@]host[:port]/path`, `user@host:path`; `None` for local paths and `git://`
/// daemons (no code host to talk to).
fn host_and_path(location: &str) -> Option<(String, String)> {
    let (host, path) = match location.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if !matches!(scheme.as_str(), "https" | "http" | "ssh") {
                return None;
            }
            let (authority, path) = rest.split_once('/')?;
            let host = authority.rsplit('@').next()?;
            (host.to_string(), path.to_string())
        }
        None => {
            // scp-like: user@host:path (a local path has no `:` before its first `/`)
            let (left, path) = location.split_once(':')?;
            if left.contains('/') || !left.contains('@') {
                return None;
            }
            (left.rsplit('@').next()?.to_string(), path.to_string())
        }
    };
    let path = path
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_matches('/')
        .to_string();
    (!host.is_empty() && !path.is_empty()).then_some((host, path))
}

/// The target of `location` (the repository's public URL) with the operator's overrides, or
/// why there is none.
pub fn target(location: &str, o: &Overrides) -> Result<Target, String> {
    let found = host_and_path(location);
    let host = found
        .as_ref()
        .map(|(h, _)| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
    let kind = match (o.kind, host.as_deref()) {
        (Some(k), _) => k,
        (None, Some("github.com")) => Kind::GitHub,
        (None, Some("gitlab.com")) => Kind::GitLab,
        (None, Some("bitbucket.org")) => Kind::BitbucketCloud,
        _ => {
            return Err(format!(
                "`{location}` is not on github.com, gitlab.com or bitbucket.org (--code-host \
                 names the host of a self-hosted instance)"
            ))
        }
    };
    let mut repo = match (&o.repo, &found) {
        (Some(r), _) => r.trim_matches('/').to_string(),
        (None, Some((_, path))) => path.clone(),
        (None, None) => {
            return Err(format!(
                "the repository's path on the code host cannot be read from `{location}`; \
                 give it with --code-host-repo"
            ))
        }
    };
    // Bitbucket Data Center clones from /scm/PROJECT/repo
    if kind == Kind::BitbucketDc && o.repo.is_none() {
        if let Some(rest) = repo.strip_prefix("scm/") {
            repo = rest.to_string();
        }
    }
    let web_host = host.clone().unwrap_or_default();
    let (api, web) = match kind {
        Kind::GitHub => (
            "https://api.github.com".to_string(),
            format!("https://github.com/{repo}"),
        ),
        Kind::GitLab => (
            format!("https://{}/api/v4", host_or(&web_host, "gitlab.com")),
            format!("https://{}/{repo}", host_or(&web_host, "gitlab.com")),
        ),
        Kind::BitbucketCloud => (
            "https://api.bitbucket.org/2.0".to_string(),
            format!("https://bitbucket.org/{repo}"),
        ),
        Kind::BitbucketDc => {
            let base = format!("https://{web_host}");
            let web = match repo.split_once('/') {
                Some((project, slug)) => format!("{base}/projects/{project}/repos/{slug}"),
                None => base.clone(),
            };
            (base, web)
        }
    };
    let api = o
        .api
        .clone()
        .unwrap_or(api)
        .trim_end_matches('/')
        .to_string();
    if kind == Kind::BitbucketDc && o.api.is_none() && web_host.is_empty() {
        return Err("a Bitbucket Data Center repository needs --code-host-api".into());
    }
    if repo.split('/').count() < 2 {
        return Err(format!(
            "`{repo}` is not a repository path on {} (owner/name)",
            kind.as_str()
        ));
    }
    Ok(Target {
        kind,
        api,
        repo,
        web,
    })
}

fn host_or<'a>(host: &'a str, default: &'a str) -> &'a str {
    match host.is_empty() {
        true => default,
        false => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(location: &str) -> Result<Target, String> {
        target(location, &Overrides::default())
    }

    #[test]
    fn the_public_hosts_are_read_from_every_url_form() {
        for url in [
            "https://github.com/acme/shop.git",
            "https://x-access-token@github.com/acme/shop",
            "git@github.com:acme/shop.git",
            "ssh://git@github.com/acme/shop.git",
        ] {
            let got = t(url).unwrap();
            assert_eq!(
                (got.kind, got.api.as_str(), got.repo.as_str()),
                (Kind::GitHub, "https://api.github.com", "acme/shop"),
                "{url}"
            );
        }
        let gl = t("git@gitlab.com:group/sub/project.git").unwrap();
        assert_eq!(
            (gl.kind, gl.api.as_str(), gl.repo.as_str()),
            (
                Kind::GitLab,
                "https://gitlab.com/api/v4",
                "group/sub/project"
            )
        );
        let bb = t("https://bitbucket.org/team/app.git").unwrap();
        assert_eq!(
            (bb.kind, bb.api.as_str(), bb.web.as_str()),
            (
                Kind::BitbucketCloud,
                "https://api.bitbucket.org/2.0",
                "https://bitbucket.org/team/app"
            )
        );
    }

    #[test]
    fn local_paths_and_unknown_hosts_have_none_unless_the_operator_names_it() {
        assert!(t("/srv/git/app").is_err());
        assert!(t("git://127.0.0.1:9418/app.git").is_err());
        assert!(t("https://git.example.com/acme/shop.git").is_err());
        let o = Overrides {
            kind: Some(Kind::GitLab),
            ..Default::default()
        };
        let gl = target("https://git.example.com/acme/shop.git", &o).unwrap();
        assert_eq!(gl.api, "https://git.example.com/api/v4");
        let o = Overrides {
            kind: Some(Kind::BitbucketDc),
            ..Default::default()
        };
        let dc = target("https://bb.example.com/scm/PROJ/shop.git", &o).unwrap();
        assert_eq!(
            (dc.api.as_str(), dc.repo.as_str(), dc.web.as_str()),
            (
                "https://bb.example.com",
                "PROJ/shop",
                "https://bb.example.com/projects/PROJ/repos/shop"
            )
        );
        let o = Overrides {
            kind: Some(Kind::GitHub),
            api: Some("http://127.0.0.1:9/".into()),
            repo: Some("acme/shop".into()),
        };
        let gh = target("/srv/git/app", &o).unwrap();
        assert_eq!(
            (gh.api.as_str(), gh.repo.as_str()),
            ("http://127.0.0.1:9", "acme/shop")
        );
        let o = Overrides {
            kind: Some(Kind::GitHub),
            ..Default::default()
        };
        assert!(target("/srv/git/app", &o)
            .unwrap_err()
            .contains("--code-host-repo"));
    }
}
