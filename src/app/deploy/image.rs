//! A bench's image: reused when the head's exists, else built from the checkout (with a
//! template when chosen, its Dockerfile written without following the branch's links); and the
//! check every image passes before anything runs from it: no label under benchctl's, the
//! proxy's or the engine's prefixes that benchctl did not write.

use super::phases::{Image, Source, TEMPLATE_DOCKERFILE};
use super::plan;
use crate::app::request::DeployRequest;
use crate::build as image;
use crate::engine::{labels, BuildSpec, Builder, Engine};
use crate::naming::short_commit;
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};

/// The image: the reused one, or built from the checkout (with the chosen template, if any).
pub(super) async fn image(
    req: &DeployRequest,
    engine: &Engine,
    source: Source,
    commit: String,
    commit_time: i64,
    reporter: &SharedReporter,
) -> Result<Image> {
    let issue = req.issue.as_str();
    let tag = plan::image_tag(issue, &commit, &req.build_hash());
    let mut labels = plan::base_labels(issue, &commit);
    labels.insert(labels::COMMIT_TIME.to_string(), commit_time.to_string());
    let mut owner = labels::issue_labels(issue);
    owner.insert(labels::DEPLOY_ID.to_string(), req.run.deploy_id.clone());
    owner.insert(labels::REPO.to_string(), labels::value(&req.repo.public()));
    let (id, found) = match source {
        Source::Reuse { image, .. } => {
            reporter.report(Event::Done(format!(
                "image {tag} of commit {} exists: nothing to build",
                short_commit(&commit)
            )));
            (image.id, Some(image.labels))
        }
        Source::Checkout(_, checkout) => {
            let src = checkout.path().join("src");
            let dockerfile = match &req.bench.template {
                Some(t) => {
                    reporter.report(Event::Info(format!(
                        "building with template `{}` ({}; {})",
                        t.name, t.reason, t.source
                    )));
                    write_own_file(&src, TEMPLATE_DOCKERFILE, &t.dockerfile).map_err(|e| {
                        Error::Context {
                            issue: issue.to_string(),
                            message: format!(
                                "cannot write the template's Dockerfile `{TEMPLATE_DOCKERFILE}` \
                                 in the checkout of branch `{}`: {e}",
                                req.branch
                            ),
                        }
                    })?;
                    TEMPLATE_DOCKERFILE.to_string()
                }
                None => image::dockerfile_path(&src, &req.bench.dockerfile, &req.branch)?,
            };
            reporter.report(Event::Step(format!("building {tag}")));
            let spec = BuildSpec {
                dockerfile,
                tag: tag.clone(),
                labels: labels.clone(),
                build_args: req.bench.build_args.clone(),
                target: req.bench.target.clone(),
                owner: owner.clone(),
                limits: Some(req.bench.limits.clone()),
                network: req.bench.build_network,
                builder: builder(req, engine, reporter).await?,
                secrets: req.bench.build_secrets.clone(),
            };
            let id = build_within(req, engine, &src, &spec, "", reporter).await?;
            drop(checkout);
            reporter.report(Event::Done(format!("built {tag}")));
            (id, None)
        }
    };
    let written = crate::build::written_labels(&BuildSpec {
        labels,
        owner,
        ..Default::default()
    });
    refuse_foreign_labels(engine, req, &id, found, &written, &commit, "image").await?;
    Ok(Image {
        id,
        tag,
        commit,
        commit_time,
    })
}

/// The builder of this deploy's builds, as the operator chose it (`--builder`); the choice and
/// why go to the progress display. Asked once per deploy, when a build is about to start.
pub(super) async fn builder(
    req: &DeployRequest,
    engine: &Engine,
    reporter: &SharedReporter,
) -> Result<Builder> {
    let buildkit = match req.bench.builder {
        crate::app::request::BuilderChoice::Classic => Err(String::new()),
        _ => engine.images.buildkit().await,
    };
    let (builder, why) = req.bench.builder.resolve(buildkit)?;
    reporter.report(Event::Info(format!(
        "builder: {} ({why})",
        builder.as_str()
    )));
    if builder == Builder::Classic && !req.bench.build_secrets.is_empty() {
        reporter.report(Event::Warn(
            "the classic builder mounts no build secrets: --build-secret needs BuildKit".into(),
        ));
    }
    Ok(builder)
}

/// Builds `spec` from `context` within the build timeout; past it the build's connection is
/// dropped (the engine stops the build and removes its step container; the running bench is
/// not touched). `what` prefixes the error (`service `db`: `), empty for a single bench.
pub(super) async fn build_within(
    req: &DeployRequest,
    engine: &Engine,
    context: &std::path::Path,
    spec: &BuildSpec,
    what: &str,
    reporter: &SharedReporter,
) -> Result<String> {
    allowed_images(req, context, spec, what)?;
    let local = req.machine.engine_host.is_none();
    crate::app::disk::ensure_room(engine, local, req.bench.min_free_disk, &req.issue).await?;
    let limit = req.bench.build_timeout;
    let build = image::build(
        engine.images.as_ref(),
        context,
        spec,
        &req.issue,
        &req.branch,
        reporter,
    );
    tokio::time::timeout(limit, build)
        .await
        .map_err(|_| Error::Build {
            issue: req.issue.clone(),
            branch: req.branch.clone(),
            message: format!(
                "{what}it ran past the build timeout of {} s and was stopped (whoever runs \
                 benchctl raises it with --build-timeout or BENCHCTL_BUILD_TIMEOUT)",
                limit.as_secs()
            ),
        })?
}

/// Refuses a Dockerfile that names an image the operator does not allow (`--allow-images`),
/// or one that cannot be known before the build: the error names the file, line and image.
fn allowed_images(
    req: &DeployRequest,
    context: &std::path::Path,
    spec: &BuildSpec,
    what: &str,
) -> Result<()> {
    let refuse = |why: String| {
        Error::usage(format!(
            "{what}the Dockerfile `{}` of branch `{}` ({}): {why}. Nothing was built",
            spec.dockerfile, req.branch, req.issue
        ))
    };
    let path = context.join(&spec.dockerfile);
    let text = crate::build::references::read_bounded(&path)
        .map_err(|e| refuse(format!("cannot be read: {e}")))?;
    let refs = crate::build::references::images(&text, &spec.build_args).map_err(&refuse)?;
    for r in refs {
        let why = match r.unresolved {
            true => Err(format!(
                "`{}` cannot be known before the build (a variable is left in it), so it \
                 cannot be checked against the images the operator allows; write the image out",
                r.image
            )),
            false => req.bench.allow_images.check(&r.image),
        };
        why.map_err(|why| refuse(format!("line {}, {} {}", r.line, r.how, why)))?;
    }
    Ok(())
}

/// Refuses an image carrying a label under benchctl's, the proxy's or the engine's prefixes
/// that benchctl did not write (`written`), since a container keeps its image's labels: the
/// image is removed and the error names the labels. `found` are the image's labels when
/// already read; `what` names the image (`image`, `image of service db`).
pub(super) async fn refuse_foreign_labels(
    engine: &Engine,
    req: &DeployRequest,
    id: &str,
    found: Option<std::collections::HashMap<String, String>>,
    written: &std::collections::HashMap<String, String>,
    commit: &str,
    what: &str,
) -> Result<()> {
    let issue = req.issue.as_str();
    let found = match found {
        Some(l) => l,
        None => engine
            .images
            .inspect(id)
            .await?
            .map(|i| i.labels)
            .unwrap_or_default(),
    };
    let foreign = labels::foreign(&found, written);
    if foreign.is_empty() {
        return Ok(());
    }
    let _ = engine.images.remove(id).await;
    Err(Error::usage(format!(
        "the {what} of {issue} (branch `{}`, commit {}) carries the label{} {}, from its \
         Dockerfile, a build argument or its base image; labels under {} are benchctl's \
         and the operator's (they find, hide and route benches), never a branch's: remove \
         {} from the branch (or use another base image) and deploy again. Nothing was \
         started and the image was removed",
        req.branch,
        short_commit(commit),
        if foreign.len() == 1 { "" } else { "s" },
        foreign
            .iter()
            .map(|k| format!("`{}`", k.escape_debug()))
            .collect::<Vec<_>>()
            .join(", "),
        labels::RESERVED_PREFIXES.join(", "),
        if foreign.len() == 1 { "it" } else { "them" },
    )))
}

/// Writes `name` in the checkout `dir` as a new file of benchctl's: whatever the branch put
/// under that name (a symlink to a host file, a file) is unlinked first, never written through,
/// and the file is created exclusively without following links.
fn write_own_file(dir: &std::path::Path, name: &str, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
        Ok(_) => std::fs::remove_file(&path)?,
        Err(_) => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    f.write_all(content.as_bytes())
}
