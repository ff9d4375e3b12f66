//! The webhook formats against the payloads other projects captured
//! (`tests/fixtures/webhooks/SOURCES.md`) and the platforms' published test vectors.

use super::*;
use serde_json::Value;

#[test]
fn github_test_vector() {
    let sig = sign("It's a Secret to Everybody", b"Hello, World!");
    assert_eq!(
        sig,
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    assert!(verify_hmac_sha256("It's a Secret to Everybody", b"Hello, World!", &sig).is_ok());
    assert!(verify_hmac_sha256("It's a Secret to Everybody", b"Hello, World?", &sig).is_err());
    assert!(verify_hmac_sha256("x", b"y", "sha1=0123")
        .unwrap_err()
        .contains("SHA-1"));
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(rel),
    )
    .unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

/// The captured payloads as they are: what each means (most carry no issue key).
#[test]
fn captured_payloads_are_understood() {
    let keys = KeyFinder::new(crate::naming::DEFAULT_ISSUE_PATTERN).unwrap();
    let parse_file = |source, hs: &[(&'static str, &str)], rel: &str| {
        parse(source, &headers(hs), &fixture(rel), &keys).unwrap()
    };
    // a tag deletion is not a branch
    let p = parse_file(
        Source::GitHub,
        &[("x-github-event", "push")],
        "github/push.json",
    );
    assert!(
        p.intents.is_empty() && p.ignored[0].contains("refs/tags/simple-tag"),
        "{p:?}"
    );
    // a review that only comments changes nothing
    let p = parse_file(
        Source::GitHub,
        &[("x-github-event", "pull_request_review")],
        "github/pull_request_review.submitted.json",
    );
    assert!(
        p.intents.is_empty() && p.ignored[0].contains("commented"),
        "{p:?}"
    );
    // a merged Bitbucket Cloud pull request redeploys its target (master: no key)
    let p = parse_file(
        Source::Bitbucket,
        &[
            ("x-event-key", "pullrequest:fulfilled"),
            ("x-request-uuid", "u"),
        ],
        "bitbucket-cloud/bitbucket-cloud-pull-event-fulfilled.json",
    );
    assert!(
        p.intents.is_empty() && p.ignored[0].contains("`master`"),
        "{p:?}"
    );
    // Data Center told apart by its headers; its branch push and needs-work review
    let p = parse_file(
        Source::Bitbucket,
        &[("x-event-key", "repo:refs_changed"), ("x-request-id", "r")],
        "bitbucket-server/repo-refs-changed.json",
    );
    assert!(
        p.intents.is_empty() && p.ignored[0].contains("`feature/wip`"),
        "{p:?}"
    );
    let p = parse_file(
        Source::Bitbucket,
        &[
            ("x-event-key", "pr:reviewer:needs_work"),
            ("x-request-id", "r"),
        ],
        "bitbucket-server/pr-reviewer-needs-work.json",
    );
    assert!(
        p.intents.is_empty() && p.ignored[0].contains("feature/wip"),
        "{p:?}"
    );
    // GitLab: a push to master and an opened merge request ("MS-Viewport" is no key)
    let p = parse_file(
        Source::GitLab,
        &[("x-gitlab-event", "Push Hook")],
        "gitlab/push-event.json",
    );
    assert!(
        p.intents.is_empty() && p.ignored[0].contains("`master`"),
        "{p:?}"
    );
    let p = parse_file(
        Source::GitLab,
        &[("x-gitlab-event", "Merge Request Hook")],
        "gitlab/merge-request-event.json",
    );
    assert!(p.intents.is_empty(), "{p:?}");
    // the Bitbucket Cloud branch `...-with-bitbucket-1532029690581` looks like a key: it is
    // the first candidate, the description's real key the next
    let mut v: Value = serde_json::from_slice(&fixture(
        "bitbucket-cloud/bitbucket-cloud-pull-event-created.json",
    ))
    .unwrap();
    v["pullrequest"]["description"] = "Implements PROJ-4.".into();
    let p = parse(
        Source::Bitbucket,
        &headers(&[
            ("x-event-key", "pullrequest:approved"),
            ("x-request-uuid", "u"),
        ]),
        &serde_json::to_vec(&v).unwrap(),
        &keys,
    )
    .unwrap();
    match &p.intents[..] {
        [Intent::Review {
            issue,
            candidates,
            review: Review::Approved,
            repo,
            ..
        }] => {
            assert_eq!(issue, "BITBUCKET-1532029690581");
            assert_eq!(candidates, &vec!["PROJ-4".to_string()]);
            assert_eq!(repo, "lkysow/atlantis-example");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn deletions_and_pushes_of_issue_branches() {
    let keys = KeyFinder::new(crate::naming::DEFAULT_ISSUE_PATTERN).unwrap();
    let gitlab_delete = serde_json::json!({
        "ref": "refs/heads/feature/PROJ-9",
        "after": "0000000000000000000000000000000000000000",
        "project": {"path_with_namespace": "g/p"}
    });
    let p = parse(
        Source::GitLab,
        &headers(&[("x-gitlab-event", "Push Hook")]),
        &serde_json::to_vec(&gitlab_delete).unwrap(),
        &keys,
    )
    .unwrap();
    assert_eq!(
        p.intents,
        vec![Intent::Remove {
            issue: "PROJ-9".into(),
            repo: "g/p".into(),
            branch: "feature/PROJ-9".into()
        }]
    );
    let cloud_push = serde_json::json!({
        "repository": {"full_name": "o/r"},
        "push": {"changes": [
            {"new": {"type": "branch", "name": "PROJ-1-a", "target": {"hash": "abc"}}, "old": null},
            {"new": null, "old": {"type": "branch", "name": "PROJ-2-b"}},
            {"new": {"type": "tag", "name": "v1"}, "old": null}
        ]}
    });
    let p = parse(
        Source::Bitbucket,
        &headers(&[("x-event-key", "repo:push"), ("x-request-uuid", "u")]),
        &serde_json::to_vec(&cloud_push).unwrap(),
        &keys,
    )
    .unwrap();
    assert_eq!(p.intents.len(), 2, "{p:?}");
    assert_eq!(p.intents[0].kind(), "deploy");
    assert_eq!(p.intents[1].kind(), "remove");
    assert_eq!(p.ignored.len(), 1);
    // a merge into an issue branch redeploys that branch
    let mut merged: Value =
        serde_json::from_slice(&fixture("github/pull_request.closed.json")).unwrap();
    merged["pull_request"]["merged"] = true.into();
    merged["pull_request"]["base"]["ref"] = "feature/PROJ-5-epic".into();
    merged["pull_request"]["merge_commit_sha"] = "abc123".into();
    let p = parse(
        Source::GitHub,
        &headers(&[("x-github-event", "pull_request")]),
        &serde_json::to_vec(&merged).unwrap(),
        &keys,
    )
    .unwrap();
    assert_eq!(
        p.intents,
        vec![Intent::Deploy {
            issue: "PROJ-5".into(),
            repo: "Codertocat/Hello-World".into(),
            branch: "feature/PROJ-5-epic".into(),
            commit: Some("abc123".into()),
        }]
    );
}

#[test]
fn keys_in_text_must_be_upper_case() {
    let k = KeyFinder::new(crate::naming::DEFAULT_ISSUE_PATTERN).unwrap();
    assert_eq!(k.find("feature/proj-42-x", &[]), Some("PROJ-42".into()));
    assert_eq!(k.find("changes", &["use utf-8 here"]), None);
    assert_eq!(k.find("changes", &["Fixes PROJ-7."]), Some("PROJ-7".into()));
    assert_eq!(
        k.find("changes", &["", "see ABC-12"]),
        Some("ABC-12".into())
    );
    assert_eq!(k.find("changes", &["MS-Viewport"]), None);
}

#[test]
fn empty_and_short_secrets_are_refused_at_start() {
    use std::collections::HashMap;
    for (value, weak_ok, ok) in [
        ("", true, false),
        ("   ", true, false),
        ("\t\n", true, false),
        ("fifteen-bytes!!", false, false),
        ("fifteen-bytes!!", true, true),
        ("sixteen-bytes!!!", false, true),
    ] {
        let envs: HashMap<&str, &str> = HashMap::from([(crate::env::GITLAB_TOKEN, value)]);
        let r = Secrets::from_env(&envs, weak_ok);
        assert_eq!(r.is_ok(), ok, "{value:?} weak_ok={weak_ok}");
        if let Err(e) = r {
            assert!(e.to_string().contains(crate::env::GITLAB_TOKEN), "{e}");
        }
    }
    let none: HashMap<&str, &str> = HashMap::new();
    assert!(Secrets::from_env(&none, false).unwrap().gitlab.is_none());
}
