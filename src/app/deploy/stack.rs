//! A multi-service bench's part of a deploy: its services' images (built from the branch
//! concurrently, or the engine's), its network and volumes, its other services started in
//! dependency order with each condition awaited (a service whose container would be the same
//! keeps running, its data untouched), and the web service's new container — which the deploy
//! then probes, switches to and links as it does a single-container bench.

use super::image::refuse_foreign_labels;
use super::phases::{Image, Started};
use super::plan::{self, BenchIdentity};
use super::stack_extras::Copied;
use super::stack_plan::{self as sp, Shape};
use crate::app::request::{DeployRequest, Stack};
use crate::clock::now_unix;
use crate::compose::{Condition, Service};
use crate::engine::{labels, BuildSpec, Builder, Engine, WebProbe};
use crate::git::checkout::Checkout;
use crate::naming::container_name;
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;

/// What the stack's steps need from the deploy.
pub(super) struct StackCtx<'a> {
    pub req: &'a DeployRequest,
    pub engine: &'a Engine,
    pub stack: &'a Stack,
    /// The branch's files in the checkout (build contexts, copied files).
    pub src: &'a std::path::Path,
    /// The settings hash the bench is labelled with.
    pub settings: &'a str,
    /// The bench running already (the web service's new version starts beside it, or
    /// updates it in place on a swarm).
    pub replaces: Option<String>,
    pub reporter: &'a SharedReporter,
    /// The builder of the services' builds, chosen by the first of them to start.
    pub builder: tokio::sync::OnceCell<Builder>,
    /// One classic build at a time: each runs under the bench's limits, which bound the
    /// bench's total (BuildKit's steps ignore them, so its builds run side by side).
    pub classic_build: tokio::sync::Semaphore,
}

fn err(req: &DeployRequest, stack: &Stack, msg: impl std::fmt::Display) -> Error {
    Error::usage(format!("{} of branch `{}`: {msg}", stack.file, req.branch))
}

/// What a stack bench starts from: the services' start order, their images and the files they
/// copy in.
pub(super) struct Prepared {
    order: Vec<String>,
    images: HashMap<String, (String, String, Vec<u16>)>,
    copies: HashMap<String, Copied>,
}

/// Checks the start order and builds or finds every service's image: the work done before
/// the bench needs room under the cap, so that building holds no engine-wide lock.
pub(super) async fn prepare(
    cx: &StackCtx<'_>,
    checkout: &Checkout,
    commit: &str,
    commit_time: i64,
) -> Result<Prepared> {
    let order = sp::order(&cx.stack.project).map_err(|m| err(cx.req, cx.stack, m))?;
    for n in &cx.stack.project.notes {
        cx.reporter
            .report(Event::Info(format!("{}: {n}", cx.stack.file)));
    }
    // the branch's files a service copies in, read once: a link out of the branch is refused
    // before anything is built
    let mut copies = HashMap::new();
    for (name, s) in &cx.stack.project.services {
        let c = super::stack_extras::copies(s, cx.src)
            .map_err(|m| err(cx.req, cx.stack, format!("service `{name}`: {m}")))?;
        copies.insert(name.clone(), c);
    }
    let images = images(cx, checkout, commit, commit_time).await?;
    Ok(Prepared {
        order,
        images,
        copies,
    })
}

/// Starts the services the web one needs, then the web one's new container.
pub(super) async fn start(
    cx: &StackCtx<'_>,
    prepared: Prepared,
    commit: String,
    commit_time: i64,
) -> Result<Started> {
    let (req, engine, stack, reporter) = (cx.req, cx.engine, cx.stack, cx.reporter);
    let issue = req.issue.as_str();
    let Prepared {
        order,
        images,
        copies,
    } = prepared;

    let owner = sp::stack_labels(
        issue,
        &req.repo.public(),
        &req.run.deploy_id,
        engine.stacks.kind(),
    );
    ensure_networks_and_volumes(cx, &owner).await?;

    // the other services, each once what it depends on is there
    let ids = start_others(cx, &order, &images, &copies, &owner).await?;

    // the web service: the bench, once what it needs is up, seeded and released
    let web = &stack.project.services[&stack.web];
    await_dependencies(cx, &stack.web, web, &ids).await?;
    let refs: HashMap<String, String> = images
        .iter()
        .map(|(k, (r, _, _))| (k.clone(), r.clone()))
        .collect();
    // a hook runs in a service's first container
    let first: HashMap<String, String> = ids
        .iter()
        .filter_map(|(k, v)| v.first().map(|id| (k.clone(), id.clone())))
        .collect();
    for name in ["seed", "release"] {
        if let Some(h) = stack.hook(name) {
            super::hooks::run(cx, h, &first, &refs, &copies).await?;
        }
    }
    let (image_ref, image_id, exposed) = images[&stack.web].clone();
    let port = match web.ports.first() {
        Some(p) => *p,
        None => plan::port(req.bench.port, &exposed, issue)?,
    };
    let shares = super::stack_shares::shares(&stack.project, &stack.web, &req.bench.limits);
    let identity = BenchIdentity {
        commit: &commit,
        commit_time,
        port,
        settings: cx.settings,
        deployed_at: now_unix(),
    };
    let shape = Shape {
        issue,
        service: &stack.web,
        image: image_ref.clone(),
        image_id: image_id.clone(),
        cap: &shares[&stack.web],
        cap_add: &req.bench.cap_add,
        publish: Some((port, req.bench.bind.clone())),
        copies: copies.get(&stack.web),
        web: &stack.web,
    };
    let name = container_name(issue);
    let mut bench_labels = plan::bench_labels(req, &identity, engine.stacks.kind())?;
    if let Some(h) = stack.hook("teardown") {
        bench_labels.insert(
            super::hooks::TEARDOWN_HOOK.into(),
            super::hooks::teardown_label(h),
        );
    }
    let mut spec = sp::service_spec(web, shape, name, bench_labels)
        .map_err(|m| err(req, stack, format!("service `{}`: {m}", stack.web)))?;
    spec.replaces = cx.replaces.clone();
    spec.probe = Some(WebProbe {
        port,
        path: req.bench.health_path.clone(),
        timeout: req.bench.ready_timeout,
    });
    // behind the reverse proxy: on its network too, publishing nothing
    if let Some(router) = &req.bench.router {
        spec.proxy_network = Some(router.network.clone());
        spec.publish = None;
    }
    // the bench's own settings reach the web service too
    spec.env.extend(
        req.bench
            .env
            .iter()
            .map(|e| format!("{}={}", e.name, e.value())),
    );
    reporter.report(Event::Step(format!(
        "starting the new bench of {issue}: service {} (port {port})",
        stack.web
    )));
    let id = engine.stacks.run_service(&spec).await?;
    Ok(Started {
        image: Image {
            id: image_id,
            tag: image_ref,
            commit,
            commit_time,
        },
        id,
        port,
        images: images.values().map(|(_, id, _)| id.clone()).collect(),
    })
}

/// Starts the services other than the web one in `order`, each replica once what it depends
/// on is there; a container whose configuration is the same is kept. Containers of services
/// that left the file, or replicas past a service's count, are removed first. Returns each
/// service's containers.
async fn start_others(
    cx: &StackCtx<'_>,
    order: &[String],
    images: &HashMap<String, (String, String, Vec<u16>)>,
    copies: &HashMap<String, Copied>,
    owner: &HashMap<String, String>,
) -> Result<HashMap<String, Vec<String>>> {
    let (req, engine, stack, reporter) = (cx.req, cx.engine, cx.stack, cx.reporter);
    let issue = req.issue.as_str();
    let mut planned: Vec<(&String, u32)> = Vec::new();
    for n in order.iter().filter(|n| **n != stack.web) {
        planned.extend((1..=stack.project.services[n].replicas).map(|i| (n, i)));
    }
    let names: Vec<String> = planned
        .iter()
        .map(|(n, i)| sp::replica(issue, n, *i))
        .collect();
    let mut running = crate::app::inspect::service_containers(engine, Some(issue)).await?;
    for c in running.iter().filter(|c| !names.contains(&c.name)) {
        engine.benches.remove(&c.id).await?;
        reporter.report(Event::Done(format!(
            "removed {}: its service or replica is no longer in {}",
            c.name, stack.file
        )));
    }
    running.retain(|c| names.contains(&c.name));
    let shares = super::stack_shares::shares(&stack.project, &stack.web, &req.bench.limits);
    let mut ids: HashMap<String, Vec<String>> = HashMap::new();
    for ((name, replica), container) in planned.into_iter().zip(names) {
        let s = &stack.project.services[name];
        await_dependencies(cx, name, s, &ids).await?;
        let mut l = owner.clone();
        l.insert(labels::ROLE.into(), sp::SERVICE_ROLE.into());
        l.insert(sp::REPLICA.into(), replica.to_string());
        let shape = Shape {
            issue,
            service: name,
            image: images[name].0.clone(),
            image_id: images[name].1.clone(),
            cap: &shares[name.as_str()],
            cap_add: &req.bench.cap_add,
            publish: None,
            copies: copies.get(name),
            web: &stack.web,
        };
        let spec = sp::service_spec(s, shape, container, l)
            .map_err(|m| err(req, stack, format!("service `{name}`: {m}")))?;
        let what = if s.replicas > 1 {
            format!("{name} ({replica} of {})", s.replicas)
        } else {
            name.clone()
        };
        let current = running.iter().find(|c| c.name == spec.name);
        let same = current.is_some_and(|c| {
            c.labels.get(sp::SERVICE_HASH) == spec.labels.get(sp::SERVICE_HASH)
                && (c.running || c.exit_code == Some(0))
        });
        let id = match current {
            Some(c) if same => {
                reporter.report(Event::Done(format!("service {what} is unchanged: kept")));
                c.id.clone()
            }
            _ => {
                if let Some(c) = current {
                    engine.benches.remove(&c.id).await?;
                }
                reporter.report(Event::Step(format!("starting service {what} of {issue}")));
                engine.stacks.run_service(&spec).await?
            }
        };
        ids.entry(name.clone()).or_default().push(id);
    }
    Ok(ids)
}

/// The bench's networks (the file's, internal ones too) and volumes, each labelled `owner`.
async fn ensure_networks_and_volumes(
    cx: &StackCtx<'_>,
    owner: &HashMap<String, String>,
) -> Result<()> {
    let (issue, stacks, project) = (cx.req.issue.as_str(), &cx.engine.stacks, &cx.stack.project);
    for (n, net) in &project.networks {
        let mut l = owner.clone();
        l.extend(net.labels.clone());
        l.insert("benchctl.network".into(), labels::value(n));
        if net.internal {
            l.insert(sp::INTERNAL.into(), "true".into());
        }
        stacks
            .ensure_network(&sp::network_named(issue, n), &l)
            .await?;
    }
    for v in &project.volumes {
        let mut l = owner.clone();
        l.insert("benchctl.volume".into(), labels::value(v));
        stacks.ensure_volume(&sp::volume(issue, v), &l).await?;
    }
    Ok(())
}

/// Each service's image: `(reference to run, image id, exposed ports)`. Images built from the
/// branch are built concurrently (the issue's tag of the commit reused when it exists); the
/// others are pulled when the engine lacks them.
async fn images(
    cx: &StackCtx<'_>,
    checkout: &Checkout,
    commit: &str,
    commit_time: i64,
) -> Result<HashMap<String, (String, String, Vec<u16>)>> {
    let (req, engine, stack, reporter) = (cx.req, cx.engine, cx.stack, cx.reporter);
    let issue = req.issue.as_str();
    let src = checkout.path().join("src");
    // before anything is built: an image the branch may not name refuses the whole bench
    for (name, s) in stack
        .project
        .services
        .iter()
        .filter(|(_, s)| s.build.is_none())
    {
        let image = s.image.as_deref().unwrap_or_default();
        req.bench
            .allow_images
            .check(image)
            .map_err(|why| err(req, stack, format!("service `{name}`: image {why}")))?;
    }
    let builds = stack.project.services.iter().map(|(name, s)| {
        let src = src.clone();
        async move {
            let found = match &s.build {
                Some(b) => build(cx, &src, name, b, commit, commit_time).await?,
                None => {
                    let image = s.image.clone().unwrap_or_default();
                    if engine.images.inspect(&image).await?.is_none() {
                        reporter.report(Event::Step(format!("pulling {image} for service {name}")));
                        engine.images.pull(&image).await.map_err(|e| {
                            err(
                                req,
                                stack,
                                format!("service `{name}`: image `{image}` cannot be pulled: {e}"),
                            )
                        })?;
                    }
                    let info = engine.images.inspect(&image).await?.ok_or_else(|| {
                        err(
                            req,
                            stack,
                            format!("service `{name}`: image `{image}` is not on the engine"),
                        )
                    })?;
                    // none of benchctl's, the proxy's or the engine's labels may come with it
                    let foreign = labels::foreign(&info.labels, &HashMap::new());
                    if !foreign.is_empty() {
                        let listed: Vec<String> =
                            foreign.iter().map(|k| format!("`{k}`")).collect();
                        return Err(err(
                            req,
                            stack,
                            format!(
                                "service `{name}`: image `{image}` carries {}, which only \
                                 benchctl and the operator write (they find, hide and route \
                                 benches); use another image",
                                listed.join(", ")
                            ),
                        ));
                    }
                    (image, info.id, info.exposed_ports)
                }
            };
            Ok::<_, Error>((name.clone(), found))
        }
    });
    let built = futures_util::future::try_join_all(builds).await?;
    reporter.report(Event::Done(format!(
        "images of {issue}'s {} services ready",
        built.len()
    )));
    Ok(built.into_iter().collect())
}

/// Builds service `name`'s image from its context in the checkout `src`.
async fn build(
    cx: &StackCtx<'_>,
    src: &std::path::Path,
    name: &str,
    b: &crate::compose::project::Build,
    commit: &str,
    commit_time: i64,
) -> Result<(String, String, Vec<u16>)> {
    let (req, engine, reporter) = (cx.req, cx.engine, cx.reporter);
    let issue = req.issue.as_str();
    let hash = {
        use sha2::Digest;
        let text = format!("{:?}|{}", b, req.build_hash());
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..3])
    };
    let context_digest = super::content::digest(src, &b.context).map_err(|e| {
        err(
            req,
            cx.stack,
            format!("service `{name}`: build context: {e}"),
        )
    })?;
    let tag = sp::image_tag(issue, name, &context_digest, &hash);
    let context = src.join(&b.context);
    // a context that is a link out of the checkout would send a host directory to the build
    let inside = std::fs::canonicalize(&context)
        .ok()
        .zip(std::fs::canonicalize(src).ok())
        .is_some_and(|(c, root)| c.starts_with(root) && c.is_dir());
    if !inside {
        return Err(err(
            req,
            cx.stack,
            format!(
                "service `{name}`: build context `{}` is not a directory of the branch (a link \
                 out of it is refused)",
                b.context
            ),
        ));
    }
    let dockerfile = crate::build::dockerfile_path(&context, &b.dockerfile, &req.branch)?;
    let mut labels_ = plan::base_labels(issue, commit);
    labels_.insert(labels::COMMIT_TIME.into(), commit_time.to_string());
    labels_.insert(sp::SERVICE.into(), name.to_string());
    let mut owner = labels::issue_labels(issue);
    owner.insert(labels::DEPLOY_ID.into(), req.run.deploy_id.clone());
    owner.insert(labels::REPO.into(), labels::value(&req.repo.public()));
    let spec = BuildSpec {
        dockerfile,
        tag: tag.clone(),
        labels: labels_,
        build_args: b.args.clone(),
        target: b.target.clone(),
        owner,
        limits: Some(req.bench.limits.clone()),
        network: req.bench.build_network,
        builder: Builder::default(),
        secrets: req.bench.build_secrets.clone(),
    };
    let existing = engine.images.inspect(&tag).await?;
    // an image built from the same context at an earlier commit: its commit labels are that
    // commit's
    let mut written = crate::build::written_labels(&spec);
    let id = match existing {
        Some(i) if !req.policy.force => {
            for k in [labels::COMMIT, labels::COMMIT_TIME] {
                if let Some(v) = i.labels.get(k) {
                    written.insert(k.to_string(), v.clone());
                }
            }
            reporter.report(Event::Done(format!(
                "service {name}: its build context is unchanged, image {tag} kept"
            )));
            i.id
        }
        _ => {
            reporter.report(Event::Step(format!("building {tag} (service {name})")));
            let chosen = cx
                .builder
                .get_or_try_init(|| super::image::builder(req, engine, reporter));
            let spec = BuildSpec {
                builder: *chosen.await?,
                ..spec.clone()
            };
            let _one = match spec.builder {
                Builder::Classic => cx.classic_build.acquire().await.ok(),
                _ => None,
            };
            let what = format!("service `{name}`: ");
            super::image::build_within(req, engine, &context, &spec, &what, reporter).await?
        }
    };
    let what = format!("image of service `{name}`");
    refuse_foreign_labels(engine, req, &id, None, &written, commit, &what).await?;
    let exposed = engine
        .images
        .inspect(&id)
        .await?
        .map(|i| i.exposed_ports)
        .unwrap_or_default();
    Ok((tag, id, exposed))
}

/// Waits until each service `s` depends on is there as its condition says, within the ready
/// timeout; a dependency that fails (exits non-zero, turns unhealthy) fails the deploy with
/// its last lines.
async fn await_dependencies(
    cx: &StackCtx<'_>,
    name: &str,
    s: &Service,
    ids: &HashMap<String, Vec<String>>,
) -> Result<()> {
    let (req, engine, stack, reporter) = (cx.req, cx.engine, cx.stack, cx.reporter);
    let mut each: Vec<(&String, &Condition, &String)> = Vec::new();
    for (dep, c) in &s.depends_on {
        each.extend(ids.get(dep).into_iter().flatten().map(|id| (dep, c, id)));
    }
    for (dep, condition, id) in each {
        if *condition != Condition::Started {
            reporter.report(Event::Step(format!(
                "service {name} waits for {dep} ({})",
                condition.as_str()
            )));
        }
        let deadline = tokio::time::Instant::now() + req.bench.ready_timeout;
        loop {
            let c = engine.stacks.inspect(id).await?;
            let state = c
                .as_ref()
                .map(|c| (c.running, c.health.clone(), c.exit_code, c.state.clone()));
            let (running, health, exit, st) = state.unwrap_or((false, None, None, "gone".into()));
            let done = match condition {
                Condition::Started => running || exit == Some(0),
                Condition::Healthy => health.as_deref() == Some("healthy"),
                Condition::CompletedSuccessfully => !running && st == "exited" && exit == Some(0),
            };
            if done {
                break;
            }
            let failed = (!running && st == "exited" && exit != Some(0))
                || health.as_deref() == Some("unhealthy")
                || st == "gone";
            if failed || tokio::time::Instant::now() >= deadline {
                let logs = engine.benches.logs_tail(id, 20).await.unwrap_or_default();
                let why = if failed {
                    format!(
                        "service `{dep}` failed ({st}{}{})",
                        exit.map(|e| format!(", exit code {e}")).unwrap_or_default(),
                        health.map(|h| format!(", {h}")).unwrap_or_default()
                    )
                } else {
                    format!(
                        "service `{dep}` was not {} within {} s (--ready-timeout)",
                        condition.as_str(),
                        req.bench.ready_timeout.as_secs()
                    )
                };
                return Err(Error::NotReady {
                    issue: req.issue.clone(),
                    reason: format!("{} ({name} depends on it): {why}", stack.file),
                    logs,
                    kept_old: cx.replaces.is_some(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
