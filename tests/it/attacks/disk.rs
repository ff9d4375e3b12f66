//! Issue 29, medium 10: the engine's disk. No build starts below `--min-free-disk` (here set
//! above what this machine has free, so that the refusal shows), and `benchctl disk` and the
//! end of `gc` say what each bench holds and what is left.

use crate::support::*;

#[test]
fn no_build_starts_on_a_full_disk_and_disk_says_who_holds_what() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKD-10"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/ATKD-10", "ten\n");
    let deploy = |extra: &[&str]| {
        run(benchctl()
            .args([
                "deploy",
                "feature/ATKD-10",
                "--repo",
                &repo.path_str(),
                "--no-link",
            ])
            .args(extra))
    };
    // a high-water mark above the disk's size: the build is refused before it starts
    let r = deploy(&["--min-free-disk", "1000000g"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("--min-free-disk") && r.stderr.contains("ATKD-10"),
        "{}",
        r.stderr
    );
    assert!(issue_containers("ATKD-10").is_empty());
    assert!(docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=ATKD-10"]).is_empty());

    let r = deploy(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run(benchctl().args(["disk", "--json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mine = v["benches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["issue"] == "ATKD-10")
        .unwrap_or_else(|| panic!("ATKD-10 is not in {v}"));
    assert!(mine["images"].as_u64().unwrap() > 0, "{mine}");
    assert!(v["free"].as_u64().unwrap() > 0, "{v}");
    let r = run(benchctl().args(["gc", "--dry-run"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("benches hold"), "{}", r.stdout);
    let r = run(benchctl().args(["teardown", "ATKD-10", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
}
