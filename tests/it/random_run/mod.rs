//! The seeded random run: two runners share one engine and apply a generated sequence of
//! operations to a few issues — deploys with and without a new commit, deploys killed with
//! SIGTERM or SIGKILL at a chosen moment (inside the build too), teardowns, `gc`, a Tracker
//! answering 503 — then one undisturbed deploy or teardown per issue and a `gc`. After that
//! every issue has one bench serving its branch head (its field right) or none, no lock, no
//! `-next-` container, no build step, no checkout, `list` agrees, and the engine holds nothing
//! new without benchctl's labels (checked after every operation too). It runs with the
//! containers backend and on a single-node swarm (services, config markers), one at a time.
//!
//! The operations are a function of the seed; their timing across the two runners is not.
//! `BENCHCTL_RANDOM_SEEDS` (comma-separated), `BENCHCTL_RANDOM_OPS` (per seed, both runners)
//! and `BENCHCTL_RANDOM_ISSUES` choose the run (CI: two short seeds on containers, one on the swarm); `bench/random-run.sh`
//! runs the long mode. A failure prints the seed and the operation log (`BENCHCTL_RANDOM_LOG=1`
//! prints it on success too).

mod invariants;

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::progress::Progress;
use crate::support::snapshot::Snapshot;
use crate::support::swarm::SwarmGuard;
use crate::support::*;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The busybox web app with a step that runs a second (a container the engine must remove
/// when the build is cancelled).
const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
    RUN [\"/bin/busybox\", \"sleep\", \"1\"]\nEXPOSE 8080\n\
    CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

const TOKEN: &str = "oauth-random-run-3c1d";
const FIELD: &str = "benchLink";

/// splitmix64: small, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// When a killed deploy gets its signal: a delay after a line of its progress appears (or
/// after it starts).
#[derive(Debug, Clone)]
struct Moment {
    after_line: Option<&'static str>,
    delay_ms: u64,
}

/// Lines of a deploy's progress to kill it at: the fetch, each step of the build, the commit
/// step, the start of the new bench, the readiness wait, the answer.
const MOMENTS: &[&str] = &[
    "==> fetching",
    "| Step 1/",
    "| Step 3/",
    "| Step 4/",
    "| Step 5/",
    "Commit: the trailing",
    "==> starting the new bench",
    "==> waiting for",
    "answers at",
];

#[derive(Debug, Clone)]
enum Op {
    Deploy {
        issue: usize,
        new_commit: bool,
    },
    Killed {
        issue: usize,
        new_commit: bool,
        sigkill: bool,
        at: Moment,
    },
    Teardown {
        issue: usize,
    },
    Gc,
    TrackerFaults {
        count: u64,
    },
}

fn generate(rng: &mut Rng, issues: usize, ops: usize) -> Vec<Op> {
    (0..ops)
        .map(|_| {
            let issue = rng.below(issues as u64) as usize;
            match rng.below(100) {
                0..=29 => Op::Deploy {
                    issue,
                    new_commit: true,
                },
                30..=41 => Op::Deploy {
                    issue,
                    new_commit: false,
                },
                42..=71 => Op::Killed {
                    issue,
                    new_commit: rng.below(4) != 0,
                    sigkill: rng.below(2) == 0,
                    at: Moment {
                        after_line: match rng.below(MOMENTS.len() as u64 + 1) as usize {
                            0 => None,
                            i => Some(MOMENTS[i - 1]),
                        },
                        delay_ms: rng.below(400),
                    },
                },
                72..=83 => Op::Teardown { issue },
                84..=91 => Op::Gc,
                _ => Op::TrackerFaults {
                    count: 1 + rng.below(2),
                },
            }
        })
        .collect()
}

/// What the runners share: the repository (one work tree: commits take turns), the Tracker,
/// the cache, the log, and each issue's newest content.
struct World {
    repo: Mutex<AppRepo>,
    repo_path: String,
    tracker: FakeTracker,
    cache: tempfile::TempDir,
    keys: Vec<String>,
    heads: Mutex<HashMap<usize, String>>,
    revision: Mutex<u64>,
    log: Mutex<Vec<String>>,
    started: Instant,
    /// What the engine held before the first operation.
    before: Snapshot,
    /// The swarm backend (services and config markers) instead of containers.
    swarm: bool,
}

impl World {
    fn say(&self, runner: usize, line: String) {
        let t = self.started.elapsed().as_secs_f64();
        self.log
            .lock()
            .unwrap()
            .push(format!("{t:7.2}s r{runner} {line}"));
    }

    fn branch(&self, issue: usize) -> String {
        format!("feature/{}", self.keys[issue])
    }

    /// A new commit on the issue's branch with content of its own.
    fn commit(&self, issue: usize) -> String {
        let repo = self.repo.lock().unwrap();
        let rev = {
            let mut r = self.revision.lock().unwrap();
            *r += 1;
            *r
        };
        let content = format!("{} rev {rev}\n", self.keys[issue]);
        repo.branch_with(&self.branch(issue), &content);
        self.heads.lock().unwrap().insert(issue, content.clone());
        content
    }

    fn benchctl(&self) -> Command {
        let mut cmd = benchctl();
        cmd.tracker(&self.tracker, TOKEN, "org-1")
            .env("BENCHCTL_CACHE_DIR", self.cache.path());
        if self.swarm {
            // host mode: this engine's routing mesh does not forward on loopback
            cmd.env("BENCHCTL_BACKEND", "swarm")
                .env("BENCHCTL_PUBLISH_MODE", "host");
        }
        cmd
    }

    fn deploy_cmd(&self, issue: usize) -> Command {
        let mut cmd = self.benchctl();
        cmd.args(["deploy", &self.branch(issue), "--repo", &self.repo_path]);
        if self.swarm {
            // limits are reservations on a swarm: small ones, so that every bench and the new
            // version of each fit on 2 cores
            cmd.args(["--cpus", "0.1", "--memory", "64m"]);
        }
        cmd
    }

    fn gc_cmd(&self) -> Command {
        let mut cmd = self.benchctl();
        cmd.args(["gc", "--build-cache", "--scope", &self.repo_path]);
        cmd
    }
}

/// Runs a command to its end; an exit other than 0 is the runner's failure.
fn undisturbed(w: &World, runner: usize, what: String, mut cmd: Command) -> Result<(), String> {
    let t = Instant::now();
    let r = run(&mut cmd);
    w.say(
        runner,
        format!(
            "{what}: exit {} in {:.1} s",
            r.code,
            t.elapsed().as_secs_f64()
        ),
    );
    if r.code != 0 {
        return Err(format!("{what} failed (exit {}):\n{}", r.code, r.all()));
    }
    Ok(())
}

/// Starts a deploy and signals it at `at`; the exit must be one a signal explains.
fn killed(
    w: &World,
    runner: usize,
    issue: usize,
    sigkill: bool,
    at: &Moment,
) -> Result<(), String> {
    let signal = if sigkill { "KILL" } else { "TERM" };
    let what = format!(
        "deploy {} killed with SIG{signal} {} ms after {}",
        w.keys[issue],
        at.delay_ms,
        at.after_line.unwrap_or("its start")
    );
    let mut child = w
        .deploy_cmd(issue)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut progress = Progress::follow(&mut child);
    if let Some(line) = at.after_line {
        progress.until(line);
    }
    std::thread::sleep(Duration::from_millis(at.delay_ms));
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let seen = progress.finish();
    let code = status.code();
    w.say(
        runner,
        format!(
            "{what}: {}",
            match code {
                Some(c) => format!("exit {c}"),
                None => "killed".into(),
            }
        ),
    );
    // 0: it was over before the signal; 143: SIGTERM's cleanup ran; none: SIGKILL
    match (code, sigkill) {
        (Some(0), _) | (Some(143), false) | (None, true) => Ok(()),
        _ => Err(format!("{what}: unexpected exit {code:?}:\n{seen}")),
    }
}

fn apply(w: &World, runner: usize, op: &Op) -> Result<(), String> {
    match op {
        Op::Deploy { issue, new_commit } => {
            let mut what = format!("deploy {}", w.keys[*issue]);
            if *new_commit {
                what = format!("{what} of `{}`", w.commit(*issue).trim_end());
            }
            undisturbed(w, runner, what, w.deploy_cmd(*issue))
        }
        Op::Killed {
            issue,
            new_commit,
            sigkill,
            at,
        } => {
            if *new_commit {
                let content = w.commit(*issue);
                w.say(runner, format!("commit `{}`", content.trim_end()));
            }
            killed(w, runner, *issue, *sigkill, at)
        }
        Op::Teardown { issue } => {
            let mut cmd = w.benchctl();
            cmd.args(["teardown", &w.keys[*issue]]);
            undisturbed(w, runner, format!("teardown {}", w.keys[*issue]), cmd)
        }
        Op::Gc => undisturbed(w, runner, "gc --build-cache".into(), w.gc_cmd()),
        Op::TrackerFaults { count } => {
            for _ in 0..*count {
                w.tracker.fail_next(503, None);
            }
            w.say(
                runner,
                format!("the Tracker answers 503 to the next {count} request(s)"),
            );
            Ok(())
        }
    }
}

/// One seed: the two runners' operations, convergence, the invariants. Returns the failure
/// with its log.
fn one_seed(seed: u64, ops: usize, issues: usize, swarm: bool) -> Result<(), String> {
    let queue = if swarm { "RANDS" } else { "RAND" };
    let keys: Vec<String> = (1..=issues).map(|n| format!("{queue}-{n}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let _cleanup = Cleanup::issues(&key_refs);
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    for k in &keys {
        tracker.add_issue(k);
    }
    let repo = AppRepo::new();
    // a build step that runs for a while, to be killed in
    repo.write("Dockerfile", DOCKERFILE);
    repo.commit("a build step that takes a second");
    let repo_path = repo.path_str();
    let world = Arc::new(World {
        repo: Mutex::new(repo),
        repo_path,
        tracker,
        cache: tempfile::tempdir().unwrap(),
        keys,
        heads: Mutex::new(HashMap::new()),
        revision: Mutex::new(0),
        log: Mutex::new(Vec::new()),
        started: Instant::now(),
        before: Snapshot::take(),
        swarm,
    });
    for i in 0..issues {
        world.commit(i);
    }

    let mut rng = Rng(seed);
    let plans: Vec<Vec<Op>> = (0..2)
        .map(|r| generate(&mut rng, issues, ops / 2 + (ops % 2) * (1 - r)))
        .collect();
    let finals: Vec<bool> = (0..issues).map(|_| rng.below(3) != 0).collect();
    for (r, plan) in plans.iter().enumerate() {
        world.say(r, format!("plan: {plan:?}"));
    }
    let handles: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(r, plan)| {
            let w = world.clone();
            std::thread::spawn(move || -> Result<(), String> {
                for (n, op) in plan.iter().enumerate() {
                    let fail = |e: String| format!("runner {r}, operation {n} ({op:?}): {e}");
                    apply(&w, r, op).map_err(fail)?;
                    // at every moment, whatever benchctl made carries its labels (the other
                    // runner's deploy may be half-way: what it made so far counts too)
                    let unlabelled = Snapshot::unlabelled_since(&w.before);
                    if !unlabelled.is_empty() {
                        return Err(fail(format!(
                            "afterwards the engine holds, without benchctl's labels: \
                             {unlabelled:#?}"
                        )));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let mut failures: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();

    // convergence: one undisturbed operation per issue, then gc
    if failures.is_empty() {
        for (i, deploy) in finals.iter().enumerate() {
            let op = if *deploy {
                Op::Deploy {
                    issue: i,
                    new_commit: false,
                }
            } else {
                Op::Teardown { issue: i }
            };
            if let Err(e) = apply(&world, 2, &op) {
                failures.push(format!("convergence: {e}"));
            }
        }
        // a swarm stops the tasks an update or a removal replaced in the background
        if let Err(e) = invariants::settle(&world, &finals) {
            failures.push(format!("convergence: {e}"));
        }
        if let Err(e) = apply(&world, 2, &Op::Gc) {
            failures.push(format!("convergence: {e}"));
        }
    }
    if failures.is_empty() {
        failures = invariants::broken(&world, &finals, &world.before);
    }
    if failures.is_empty() {
        let log = world.log.lock().unwrap();
        let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
        eprintln!(
            "{}seed {seed}: {} deploys killed ({} interrupted: {} by SIGTERM's cleanup, {} by SIGKILL; the others were over first), {} teardowns, {} gc, {} Tracker faults",
            if swarm { "swarm, " } else { "" },
            count("killed with SIG"),
            count(": exit 143") + count(": killed"),
            count(": exit 143"),
            count(": killed"),
            count("teardown "),
            count("gc --build-cache:"),
            count("the Tracker answers 503"),
        );
        if std::env::var_os("BENCHCTL_RANDOM_LOG").is_some() {
            eprintln!("{}", log.join("\n"));
        }
        return Ok(());
    }
    Err(format!(
        "{backend}seed {seed} ({ops} operations, {issues} issues) failed:\n{}\n\noperation \
         log:\n{}\n\nreproduce (the operations; their timing varies): BENCHCTL_RANDOM_SEEDS={seed} \
         BENCHCTL_RANDOM_OPS={ops} BENCHCTL_RANDOM_ISSUES={issues} cargo test --test it \
         random_run::{test}",
        failures.join("\n"),
        world.log.lock().unwrap().join("\n"),
        backend = if swarm { "swarm backend, " } else { "" },
        test = if swarm { "swarm" } else { "containers" },
    ))
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    match std::env::var(key) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a number")),
        Err(_) => default,
    }
}

/// The two backends' runs compare the whole engine before and after: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the seeds of `BENCHCTL_RANDOM_SEEDS` (default `seeds`) with `BENCHCTL_RANDOM_OPS`
/// operations (default `ops`) on `BENCHCTL_RANDOM_ISSUES` issues (default `issues`).
fn random_runs(seeds: &[u64], ops: usize, issues: usize, swarm: bool) {
    let seeds: Vec<u64> = match std::env::var("BENCHCTL_RANDOM_SEEDS") {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("BENCHCTL_RANDOM_SEEDS={v}"))
            })
            .collect(),
        Err(_) => seeds.to_vec(),
    };
    let ops = env_or("BENCHCTL_RANDOM_OPS", ops);
    let issues = env_or("BENCHCTL_RANDOM_ISSUES", issues);
    assert!(issues >= 1 && !seeds.is_empty());
    for seed in seeds {
        let t = Instant::now();
        if let Err(e) = one_seed(seed, ops, issues, swarm) {
            panic!("{e}");
        }
        eprintln!(
            "random run{}: seed {seed}, {ops} operations on {issues} issues: passed in {:.0} s",
            if swarm { " on the swarm" } else { "" },
            t.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn containers_random_deploys_kills_and_teardowns_leave_one_bench_or_none_and_nothing_unlabelled() {
    let _group = crate::support::group(module_path!());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_docker();
    random_runs(&[1, 2], 16, 3, false);
}

#[test]
fn swarm_random_deploys_kills_and_teardowns_leave_one_bench_or_none_and_nothing_unlabelled() {
    let _group = crate::support::group(module_path!());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _swarm = SwarmGuard::acquire();
    random_runs(&[1], 12, 2, true);
}
