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

/// The placeholders of a URL template.
pub const URL_PLACEHOLDERS: &[&str] = &["issue", "branch", "commit", "port"];

/// Values for a URL template's placeholders.
pub struct UrlValues<'a> {
    pub issue: &'a str,
    pub branch: &'a str,
    pub commit: &'a str,
    /// The published host port (unknown with a router).
    pub port: Option<u16>,
}

/// Checks a URL template (`https://{issue}.bench.example.com`): http(s), a host, known
/// placeholders only, none in the scheme.
pub fn check_url_template(template: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::usage(format!(
            "URL template `{}`: {why}",
            template.escape_debug()
        )))
    };
    let Some(rest) = template
        .strip_prefix("https://")
        .or_else(|| template.strip_prefix("http://"))
    else {
        return bad("it must start with http:// or https://");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) || *p == "{port}")
        .map_or(host, |(h, _)| h);
    if host.is_empty() {
        return bad("it has no host");
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return bad("a `{` is not closed");
        };
        let name = &after[..close];
        if !URL_PLACEHOLDERS.contains(&name) {
            return bad(&format!(
                "unknown placeholder {{{name}}} (known: {})",
                URL_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// A DNS-safe value of at most `max` characters (`[a-z0-9-]`, no dash at either end); long
/// values are cut and given a hash so distinct inputs stay distinct.
fn dns_value(input: &str, max: usize) -> String {
    let max = max.max(1);
    let s = slug(input, max.max(12));
    if s.len() <= max {
        return s;
    }
    // too little room for text and hash: the hash alone
    hex::encode(Sha256::digest(input.as_bytes()))[..max].to_string()
}

/// Renders a URL template: each placeholder becomes a DNS-safe slug, cut (with a hash) so that
/// every label of the host stays within 63 characters.
pub fn render_url(template: &str, v: &UrlValues) -> Result<String> {
    check_url_template(template)?;
    let (scheme, rest) = template.split_once("://").expect("checked");
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(host_end);
    let port = v.port.map(|p| p.to_string()).unwrap_or_default();
    let value = |name: &str| -> String {
        match name {
            "issue" => v.issue.to_string(),
            "branch" => v.branch.to_string(),
            "commit" => short_commit(v.commit).chars().take(7).collect(),
            _ => port.clone(),
        }
    };
    let render_label = |label: &str| -> String {
        // room for the placeholders: 63 minus the literal text, shared equally
        let mut literal = 0;
        let mut count = 0;
        let mut rest = label;
        while let Some(open) = rest.find('{') {
            literal += open;
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            count += 1;
            rest = &rest[(close + 1).min(rest.len())..];
        }
        literal += rest.len();
        let room = 63usize.saturating_sub(literal) / count.max(1);
        let mut out = String::new();
        let mut rest = label;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("checked");
            out.push_str(&dns_value(&value(&rest[open + 1..close]), room));
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    };
    let (host, host_port) = match authority.rsplit_once(':') {
        Some((h, p)) if p == "{port}" || p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (authority, None),
    };
    let host: Vec<String> = host.split('.').map(render_label).collect();
    let host = host.join(".");
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(Error::usage(format!(
                "URL template `{template}` gives the host name `{host}`, whose label `{label}` is \
                 not DNS-safe"
            )));
        }
    }
    let host_port = match host_port {
        Some("{port}") => format!(":{port}"),
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    let mut tail_out = String::new();
    let mut rest = tail;
    while let Some(open) = rest.find('{') {
        tail_out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("checked");
        tail_out.push_str(&slug(&value(&rest[open + 1..close]), 63));
        rest = &rest[close + 1..];
    }
    tail_out.push_str(rest);
    let tail_out = if tail_out.is_empty() {
        "/".to_string()
    } else {
        tail_out
    };
    Ok(format!("{scheme}://{host}{host_port}{tail_out}"))
}

/// Whether a URL template's host holds `{issue}`: then no two issues' benches share a host,
/// which routing by host needs.
pub fn template_host_names_the_issue(template: &str) -> bool {
    url_authority(template).contains("{issue}")
}

/// The host name a URL template gives (for a router's rule).
pub fn url_host(url: &str) -> &str {
    let authority = url_authority(url);
    // `user:pass@host`: the host is after the last `@`
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The authority of a URL (`user@host:port`).
fn url_authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#', '\\']).next().unwrap_or("")
}

/// Whether a URL carries user information (`http://a:b@host/`): nothing benchctl links to
/// or routes by may.
pub fn url_has_userinfo(url: &str) -> bool {
    url_authority(url).contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_host_is_after_its_user_information() {
        assert_eq!(
            url_host("http://proj-1.b.test:1@evil.example/"),
            "evil.example"
        );
        assert!(url_has_userinfo("http://proj-1.b.test:1@evil.example/"));
        assert!(!url_has_userinfo("https://proj-1.b.test/a@b"));
        assert_eq!(url_host("https://proj-1.b.test:8443/x"), "proj-1.b.test");
    }

    #[test]
    fn url_templates_give_dns_safe_hosts_within_limits() {
        let v = UrlValues {
            issue: "PROJ-42",
            branch: "feature/PROJ-42-Login_Page",
            commit: "0123456789abcdef0123",
            port: Some(32768),
        };
        assert_eq!(
            render_url("https://{issue}.bench.example.com", &v).unwrap(),
            "https://proj-42.bench.example.com/"
        );
        assert_eq!(
            render_url("http://{branch}-{commit}.b.test:8080/x/{issue}", &v).unwrap(),
            "http://feature-proj-42-login-page-0123456.b.test:8080/x/proj-42"
        );
        assert_eq!(
            render_url("http://bench.test:{port}/", &v).unwrap(),
            "http://bench.test:32768/"
        );
        // at the limit: a 300-character branch fits its label, and stays distinct
        let long_a = format!("feature/PROJ-1-{}", "a".repeat(300));
        let long_b = format!("feature/PROJ-1-{}b", "a".repeat(299));
        let render = |b: &str| {
            render_url(
                "https://{issue}-{branch}.bench.example.com",
                &UrlValues { branch: b, ..v },
            )
            .unwrap()
        };
        let (a, b) = (render(&long_a), render(&long_b));
        assert_ne!(a, b);
        for u in [&a, &b] {
            let label = url_host(u).split('.').next().unwrap();
            assert!(label.len() <= 63, "{label} ({})", label.len());
            assert!(!label.ends_with('-') && !label.starts_with('-'));
        }
        // a label with almost no room left still works
        let tight = format!("https://{}{{branch}}.x.test", "a".repeat(60));
        let u = render_url(
            &tight,
            &UrlValues {
                branch: &long_a,
                ..v
            },
        )
        .unwrap();
        assert!(url_host(&u).split('.').next().unwrap().len() <= 63, "{u}");
        // errors
        assert!(render_url("ftp://{issue}.x", &v).is_err());
        assert!(render_url("https://{user}.x", &v)
            .unwrap_err()
            .to_string()
            .contains("{user}"));
        assert!(render_url("https://{issue.x", &v).is_err());
        assert!(render_url("https:///path", &v).is_err());
    }

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
