//! `benchctl tracker init` against the fake Tracker: it creates the bench field and the close
//! trigger once (a second run changes nothing), names a queue that does not exist, and wants
//! the hook secret before it applies anything.

use crate::support::serve::{serve_tracker, HOOK_SECRET, ORG, TOKEN};
use crate::support::TrackerEnv;
use serde_json::json;

#[test]
fn tracker_init_creates_the_field_and_the_trigger_once() {
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    t.add_queue("SRVI");
    let init = |extra: &[&str]| {
        let mut cmd = crate::support::benchctl();
        cmd.args(["tracker", "init", "--queue", "SRVI"])
            .args(extra)
            .env("BENCHCTL_TRACKER_HOOK_SECRET", HOOK_SECRET);
        cmd.tracker(&t, TOKEN, ORG);
        crate::support::run(&mut cmd)
    };
    let hook = "https://bench.example.com/hooks/tracker";

    // without --apply: the field is created, the trigger only printed (secret left out)
    let r = init(&["--hook-url", hook]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("field: 6063181a59590578909db920--benchLink (created)"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("export BENCHCTL_BENCH_FIELD='6063181a59590578909db920--benchLink'"));
    assert!(r.stdout.contains("pass --apply"), "{}", r.stdout);
    assert!(
        r.stdout.contains(hook) && r.stdout.contains("<secret>"),
        "{}",
        r.stdout
    );
    assert!(!r.all().contains(HOOK_SECRET), "{}", r.all());
    assert!(t.triggers("SRVI").is_empty());
    let fields = t.local_fields("SRVI");
    assert_eq!(fields.len(), 1);
    assert_eq!(
        fields[0]["schema"]["type"],
        "ru.yandex.startrek.core.fields.UriFieldType"
    );

    // with --apply, twice: the trigger is created once, the field not again
    for round in 0..2 {
        let r = init(&["--hook-url", hook, "--apply", "--json"]);
        assert_eq!(r.code, 0, "{}", r.all());
        let v = r.json();
        assert_eq!(v["field_key"], "6063181a59590578909db920--benchLink");
        assert_eq!(v["field_created"], false);
        assert_eq!(
            v["trigger_state"],
            if round == 0 { "created" } else { "exists" }
        );
        assert!(!r.all().contains(HOOK_SECRET));
    }
    assert_eq!(t.local_fields("SRVI").len(), 1);
    let triggers = t.triggers("SRVI");
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    let action = &triggers[0]["actions"][0];
    assert_eq!(action["type"], "Webhook");
    assert_eq!(action["endpoint"], hook);
    assert_eq!(action["authContext"]["accessToken"], HOOK_SECRET);
    assert_eq!(action["authContext"]["tokenType"], "Bearer");
    assert!(action["body"].as_str().unwrap().contains("{{issue.key}}"));
    assert_eq!(
        triggers[0]["conditions"][0],
        json!({"type": "FieldBecameEqual", "field": "status", "value": "closed"})
    );

    // a queue that does not exist: exit 2, naming the queue
    let mut cmd = crate::support::benchctl();
    cmd.args(["tracker", "init", "--queue", "NOPE"]);
    cmd.tracker(&t, TOKEN, ORG);
    let r = crate::support::run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("queue NOPE") && r.stderr.contains("case-sensitive"),
        "{}",
        r.stderr
    );
    // --apply without the secret: exit 2, naming the variable
    let mut cmd = crate::support::benchctl();
    cmd.args([
        "tracker",
        "init",
        "--queue",
        "SRVI",
        "--apply",
        "--hook-url",
        hook,
    ]);
    cmd.tracker(&t, TOKEN, ORG);
    let r = crate::support::run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("BENCHCTL_TRACKER_HOOK_SECRET"),
        "{}",
        r.stderr
    );
}
