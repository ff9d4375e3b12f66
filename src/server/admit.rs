//! Which of a delivery's intents may be queued: deploys, branch removals, reviews and pull
//! request closes only for the configured repositories (a payload never chooses what is cloned
//! nor which project's reviews move issues), and on GitHub only reviews by the repository's
//! owners, members and collaborators (`--review-associations`). What is refused is
//! acknowledged, logged and counted by reason, never retried by the platform.

use super::webhook::{Intent, Parsed};
use std::collections::HashMap;

/// Why an intent was refused (the `reason` label of `benchctl_deliveries_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The repository is not one of `--repo`.
    UnconfiguredRepository,
    /// A GitHub review (or close) by someone whose association is not accepted.
    ReviewerAssociation,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::UnconfiguredRepository => "unconfigured_repository",
            Reason::ReviewerAssociation => "reviewer_association",
        }
    }
}

/// The default of `--review-associations`.
pub const DEFAULT_ASSOCIATIONS: &[&str] = &["OWNER", "MEMBER", "COLLABORATOR"];

/// Keeps the intents of `parsed` that may run; each refused one adds its reason to the result
/// and a sentence to `parsed.ignored`.
pub fn admit(
    parsed: &mut Parsed,
    repos: &HashMap<String, String>,
    associations: &[String],
) -> Vec<Reason> {
    let mut refused = Vec::new();
    let intents = std::mem::take(&mut parsed.intents);
    for intent in intents {
        let (repo, branch) = match &intent {
            Intent::Deploy { repo, branch, .. }
            | Intent::Remove { repo, branch, .. }
            | Intent::Review { repo, branch, .. } => (repo.clone(), branch.clone()),
            Intent::Close { .. } | Intent::Gc => {
                parsed.intents.push(intent);
                continue;
            }
        };
        if !repos.contains_key(&repo) {
            parsed.ignored.push(format!(
                "repository `{repo}` (branch `{branch}`) is not configured; start serve with \
                 --repo {repo}=<clone URL>"
            ));
            refused.push(Reason::UnconfiguredRepository);
            continue;
        }
        if let (Intent::Review { issue, .. }, Some(who)) = (&intent, &parsed.actor_association) {
            if !associations.iter().any(|a| a.eq_ignore_ascii_case(who)) {
                parsed.ignored.push(format!(
                    "the review of {issue} (branch `{branch}`) is by an account whose \
                     association with `{repo}` is {who}; only {} move issues \
                     (--review-associations)",
                    associations.join(", ")
                ));
                refused.push(Reason::ReviewerAssociation);
                continue;
            }
        }
        parsed.intents.push(intent);
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::webhook::Review;

    fn review(repo: &str) -> Intent {
        Intent::Review {
            issue: "P-1".into(),
            candidates: vec![],
            review: Review::Approved,
            repo: repo.into(),
            branch: "feature/P-1".into(),
            title: String::new(),
            url: None,
        }
    }

    fn defaults() -> Vec<String> {
        DEFAULT_ASSOCIATIONS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reviews_count_only_from_configured_repositories_and_trusted_reviewers() {
        let repos = HashMap::from([("acme/app".to_string(), "/r".to_string())]);
        for (repo, who, kept, reason) in [
            ("acme/app", Some("OWNER"), true, None),
            ("acme/app", Some("member"), true, None),
            ("acme/app", Some("COLLABORATOR"), true, None),
            ("acme/app", None, true, None),
            (
                "acme/app",
                Some("NONE"),
                false,
                Some(Reason::ReviewerAssociation),
            ),
            (
                "acme/app",
                Some("CONTRIBUTOR"),
                false,
                Some(Reason::ReviewerAssociation),
            ),
            (
                "acme/app",
                Some("FIRST_TIMER"),
                false,
                Some(Reason::ReviewerAssociation),
            ),
            (
                "evil/app",
                Some("OWNER"),
                false,
                Some(Reason::UnconfiguredRepository),
            ),
        ] {
            let mut p = Parsed {
                intents: vec![review(repo)],
                actor_association: who.map(str::to_string),
                ..Default::default()
            };
            let refused = admit(&mut p, &repos, &defaults());
            assert_eq!(p.intents.len() == 1, kept, "{repo} {who:?}");
            assert_eq!(refused.first().copied(), reason, "{repo} {who:?}");
            assert_eq!(p.ignored.len(), refused.len());
        }
        // a close from the Tracker names no repository
        let mut p = Parsed {
            intents: vec![Intent::Close {
                issue: "P-1".into(),
            }],
            ..Default::default()
        };
        assert!(admit(&mut p, &HashMap::new(), &defaults()).is_empty());
        assert_eq!(p.intents.len(), 1);
    }
}
