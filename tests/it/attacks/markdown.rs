//! Issue 29, low 15: a branch's name and text are text in benchctl's comments. A branch named
//! with a backtick and `@acme/team` used to leave the code span and mention the whole team
//! from the bot; now it stays in a span nothing inside can close, and its `@` mentions no one.
//! A person's comment holding benchctl's marker is never taken over: on every platform only the
//! token's own comment is edited.

use crate::support::code_hosts::{FakeCodeHost, Platform, BOT};
use crate::support::*;

#[test]
fn a_branch_name_neither_leaves_its_code_span_nor_mentions_a_team() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKM-15"]);
    let repo = AppRepo::new();
    let branch = "feature/ATKM-15-`@acme/team`";
    repo.branch_with(branch, "fifteen\n");
    let host = FakeCodeHost::start(Platform::GitHub);
    host.open_pull_request(branch, 7);
    let r = run(benchctl()
        .args([
            "deploy",
            branch,
            "--issue",
            "ATKM-15",
            "--repo",
            &repo.path_str(),
        ])
        .args(["--no-link", "--json", "--pr-comment"])
        .args(host.args())
        .env(host.token_var(), host.token)
        .env("BENCHCTL_CODE_HOST_TIMEOUT", "1"));
    assert_eq!(r.code, 0, "{}", r.all());
    let c = host.comments();
    assert_eq!(c.len(), 1, "{c:?}");
    let body = &c[0].body;
    assert!(!body.contains("@acme"), "a mention of the team: {body}");
    assert!(
        body.contains("(branch `` feature/ATKM-15-`@\u{2060}acme/team` ``)"),
        "the branch's span: {body}"
    );
}

#[test]
fn a_persons_comment_holding_the_marker_is_never_edited() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKP-15"]);
    let repo = AppRepo::new();
    let branch = "feature/ATKP-15";
    for platform in Platform::ALL {
        let host = FakeCodeHost::start(platform);
        host.open_pull_request(branch, 7);
        let theirs = "<!-- benchctl:bench --> a note of mine, with the marker copied";
        host.comment_as("alice", 7, theirs);
        for round in ["one\n", "two\n"] {
            repo.branch_with(branch, round);
            let r = run(benchctl()
                .args(["deploy", branch, "--repo", &repo.path_str()])
                .args(["--no-link", "--pr-comment"])
                .args(host.args())
                .env(host.token_var(), host.token)
                .env("BENCHCTL_CODE_HOST_TIMEOUT", "2"));
            assert_eq!(r.code, 0, "{platform:?}: {}", r.all());
        }
        let c = host.comments();
        assert_eq!(
            c.len(),
            2,
            "{platform:?}: one comment of the bot's, edited: {c:?}"
        );
        assert_eq!(c[0].author, "alice");
        assert_eq!(
            c[0].body, theirs,
            "{platform:?}: a person's comment was edited"
        );
        assert_eq!(c[1].author, BOT);
        assert!(c[1].body.contains("ATKP-15"), "{platform:?}: {c:?}");
        assert_eq!(
            c[1].version, 1,
            "{platform:?}: the bot's comment is edited in place"
        );
    }
}
