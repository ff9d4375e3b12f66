//! Issue 29, low 15: a branch's name and text are text in benchctl's comments. A branch named
//! with a backtick and `@acme/team` used to leave the code span and mention the whole team
//! from the bot; now it stays in a span nothing inside can close, and its `@` mentions no one.

use crate::support::code_hosts::{FakeCodeHost, Platform};
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
