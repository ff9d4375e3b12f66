//! Issue keys, branch validation and Docker-safe names.

use crate::{Error, Result};
use regex::Regex;
use sha2::{Digest, Sha256};

/// Default pattern: a Tracker key (Latin-letter queue, `-`, number) not glued to other letters.
pub const DEFAULT_ISSUE_PATTERN: &str = r"(?:^|[^A-Za-z])([A-Za-z]+-[0-9]+)";

/// Checks that `branch` is a valid git branch name (as `git check-ref-format --branch` would).
pub fn validate_branch(branch: &str) -> Result<()> {
    let ok = !branch.is_empty()
        && !branch.starts_with('-')
        && git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "`{}` is not a valid git branch name",
            branch.escape_debug()
        )))
    }
}

/// Derives the issue key from a branch name with `pattern` (a regex whose first capture
/// group, or whole match when it has none, is the key). The key is upper-cased.
pub fn issue_key_from_branch(branch: &str, pattern: &str) -> Result<String> {
    let re = Regex::new(pattern)
        .map_err(|e| Error::usage(format!("invalid issue pattern `{pattern}`: {e}")))?;
    let caps = re.captures(branch).ok_or_else(|| Error::NoIssueKey {
        branch: branch.to_string(),
        pattern: pattern.to_string(),
    })?;
    let m = caps.get(1).or_else(|| caps.get(0)).expect("match");
    normalize_issue_key(m.as_str())
}

/// Validates and upper-cases an issue key given by the user (`--issue`, `teardown <KEY>`).
pub fn normalize_issue_key(key: &str) -> Result<String> {
    let valid = Regex::new(r"^[A-Za-z]+-[0-9]+$").expect("static regex");
    if key.len() <= 64 && valid.is_match(key) {
        Ok(key.to_ascii_uppercase())
    } else {
        Err(Error::usage(format!(
            "`{}` is not a Tracker issue key (expected QUEUE-NUMBER, e.g. PROJ-42)",
            key.escape_debug()
        )))
    }
}

/// Lower-cases and maps every character outside `[a-z0-9]` to `-`, collapsing runs; when the
/// result is longer than `max`, it is cut and given a hash suffix so distinct inputs stay
/// distinct.
pub fn slug(input: &str, max: usize) -> String {
    let mut out = String::new();
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    let out = if out.is_empty() { "x".to_string() } else { out };
    if out.len() <= max {
        return out;
    }
    let hash = hex::encode(&Sha256::digest(input.as_bytes())[..4]);
    let keep = max.saturating_sub(hash.len() + 1);
    format!("{}-{hash}", out[..keep].trim_end_matches('-'))
}

/// Container name of an issue's bench.
pub fn container_name(issue: &str) -> String {
    format!("benchctl-{}", slug(issue, 60))
}

/// Image repository of an issue's benches (tagged per commit).
pub fn image_repo(issue: &str) -> String {
    format!("benchctl/{}", slug(issue, 60))
}

/// Short form of a commit id.
pub fn short_commit(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(branch: &str) -> Result<String> {
        issue_key_from_branch(branch, DEFAULT_ISSUE_PATTERN)
    }

    #[test]
    fn keys_come_from_branches() {
        assert_eq!(key("feature/PROJ-42-login").unwrap(), "PROJ-42");
        assert_eq!(key("proj-7").unwrap(), "PROJ-7");
        assert_eq!(key("bugfix/abc-12_fix").unwrap(), "ABC-12");
        assert_eq!(key("x2-PROJ-9").unwrap(), "PROJ-9");
        assert!(matches!(key("main"), Err(Error::NoIssueKey { .. })));
        assert!(matches!(
            key("feature/login"),
            Err(Error::NoIssueKey { .. })
        ));
    }

    #[test]
    fn custom_pattern_uses_first_group() {
        let k = issue_key_from_branch("team-a/task_OPS-5", r"task_([A-Z]+-\d+)").unwrap();
        assert_eq!(k, "OPS-5");
        assert!(issue_key_from_branch("x", "(").is_err());
    }

    #[test]
    fn branch_names_are_checked() {
        for bad in ["../x", "-x", "a..b", "a b", "", "x.lock", "a~1", "a:b"] {
            assert!(validate_branch(bad).is_err(), "{bad} accepted");
        }
        for good in ["feature/PROJ-1", "proj-1", "a/b/c-PROJ-2"] {
            validate_branch(good).unwrap();
        }
    }

    #[test]
    fn slugs_are_docker_safe_and_distinct_when_cut() {
        assert_eq!(slug("PROJ-42", 60), "proj-42");
        assert_eq!(slug("feature/Ünï code;$(id)", 60), "feature-n-code-id");
        let a = slug(&"a".repeat(300), 40);
        let b = slug(&format!("{}b", "a".repeat(299)), 40);
        assert!(a.len() <= 40 && b.len() <= 40);
        assert_ne!(a, b);
        assert_eq!(container_name("PROJ-42"), "benchctl-proj-42");
    }
}
