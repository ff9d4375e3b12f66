//! Building a branch's image: the Dockerfile (the branch's, or a template's), its context
//! streamed from the checkout, the classic builder's trailing configuration and benchctl's
//! labels applied in one commit, and a build that lost a race with an image removal tried
//! again.

pub mod allow;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod references;
pub mod templates;

pub use context::{context_files, label_instruction, stream_context, walk_context};

use crate::engine::{BuildSpec, Images};
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use context::dockerfile_with;
use std::collections::HashMap;
use std::io;
use std::path::Path;

/// Checks a `--dockerfile` value and normalizes it to a slash path inside the context.
pub fn dockerfile_path(root: &Path, dockerfile: &str, branch: &str) -> Result<String> {
    let clean = crate::build::dockerignore::go_clean(dockerfile);
    if clean.starts_with("..") || clean.starts_with('/') || clean == "." {
        return Err(Error::usage(format!(
            "--dockerfile `{dockerfile}` must be a path inside the repository"
        )));
    }
    if !root.join(&clean).is_file() {
        return Err(Error::usage(format!(
            "branch `{branch}` has no `{clean}` and no template fits it; add a Dockerfile to \
             the branch, pass --dockerfile <path>, or --template <name> (`benchctl templates` \
             lists them)"
        )));
    }
    // a Dockerfile that is a link out of the checkout would read a host file into the build
    let inside = std::fs::canonicalize(root.join(&clean))
        .ok()
        .zip(std::fs::canonicalize(root).ok())
        .is_some_and(|(file, root)| file.starts_with(root));
    if !inside {
        return Err(Error::usage(format!(
            "`{clean}` of branch `{branch}` is a symbolic link that leads out of the branch; \
             a Dockerfile must be a file of the branch: replace the link with the file"
        )));
    }
    Ok(clean)
}

/// Whether a build failed because a concurrent image removal pruned a cached parent layer
/// (the classic builder then reports an unknown parent), or pruned the just-built untagged
/// head before the trailing configuration was committed onto it (another image's removal
/// takes its dangling parents along): building again succeeds.
fn lost_cache_race(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    message.contains("unknown parent image ID")
        || message.contains("failed to set parent")
        || lower.contains("no such image: sha256:")
        || lower.contains("unable to find image \"sha256:")
}

/// The line put after each `FROM`: the mark of benchctl's build layers, with the repository
/// they are built for (`gc --build-cache --scope`) and no issue or commit, so that every
/// branch of the repository that builds the same steps shares them.
fn layer_label(spec: &BuildSpec) -> String {
    use crate::engine::labels::{MANAGED, REPO};
    let mark: HashMap<String, String> = spec
        .owner
        .iter()
        .filter(|(k, _)| *k == REPO)
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain([(MANAGED.to_string(), "true".to_string())])
        .collect();
    label_instruction(&mark).unwrap_or_default()
}

/// The labels under benchctl's reserved prefixes that a build of `spec` puts on its image, with
/// their values: the spec's, the layer mark, and the commit step's own emptied. Anything else
/// under those prefixes came from the branch.
pub fn written_labels(spec: &BuildSpec) -> HashMap<String, String> {
    use crate::engine::labels::{DEPLOY_ID, MANAGED, REPO, ROLE};
    let mut l = spec.labels.clone();
    l.insert(MANAGED.to_string(), "true".to_string());
    if let Some(repo) = spec.owner.get(REPO) {
        l.insert(REPO.to_string(), repo.clone());
    }
    for key in [ROLE, DEPLOY_ID] {
        l.insert(key.to_string(), String::new());
    }
    l
}

/// Builds the image of `root` with the engine, streaming the context; returns the image id.
/// A build that lost a race with a concurrent image removal is tried again (twice at most).
pub async fn build(
    engine: &dyn Images,
    root: &Path,
    spec: &BuildSpec,
    issue: &str,
    branch: &str,
    reporter: &SharedReporter,
) -> Result<String> {
    let mut attempt = 1;
    loop {
        match build_once(engine, root, spec, issue, branch, reporter).await {
            Err(Error::Build { message, .. }) if attempt < 3 && lost_cache_race(&message) => {
                reporter.report(Event::Warn(format!(
                    "a concurrent image removal raced the build cache ({message}); building again"
                )));
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn build_once(
    engine: &dyn Images,
    root: &Path,
    spec: &BuildSpec,
    issue: &str,
    branch: &str,
    reporter: &SharedReporter,
) -> Result<String> {
    if spec.builder == crate::engine::Builder::BuildKit {
        return build_with_buildkit(engine, root, spec, issue, branch, reporter).await;
    }
    // The classic builder spends a container and a commit on every instruction. Labels passed
    // as build parameters are one instruction each: they travel in the Dockerfile instead, and
    // the Dockerfile's trailing configuration instructions go, with them, into one commit.
    let original = std::fs::read(root.join(&spec.dockerfile)).map_err(|e| Error::Context {
        issue: issue.to_string(),
        message: format!("cannot read {}: {e}", spec.dockerfile),
    })?;
    // a --target stage is not the Dockerfile's last: its trailing lines are not the image's
    let split = std::str::from_utf8(&original)
        .ok()
        .filter(|_| spec.target.is_none())
        .and_then(crate::build::dockerfile::split_trailing_config);
    let labels = label_instruction(&spec.labels);
    let (content, changes) = match (split, &spec.target) {
        (Some((head, mut trailing)), _) => {
            trailing.extend(labels.map(|l| l.trim_end().to_string()));
            (head.into_bytes(), Some(trailing.join("\n")))
        }
        // a LABEL appended to the Dockerfile would land in its last stage, not the target's:
        // the labels are committed onto the target stage's image instead
        (None, Some(_)) => (original, labels.map(|l| l.trim_end().to_string())),
        (None, None) => (
            match &labels {
                Some(l) => dockerfile_with(original, l),
                None => original,
            },
            None,
        ),
    };
    // every layer on the way carries benchctl's mark, so that what a killed build leaves is
    // found (`gc --build-cache`); a Dockerfile this cannot read is built as written
    let content = match std::str::from_utf8(&content)
        .ok()
        .and_then(|t| dockerfile::label_each_stage(t, &layer_label(spec)))
    {
        Some(labelled) => labelled.into_bytes(),
        None => content,
    };
    let (stream, walker) = stream_context(
        root.to_path_buf(),
        spec.dockerfile.clone(),
        Some(content),
        reporter.clone(),
    );
    let plain = BuildSpec {
        labels: HashMap::new(),
        // built untagged when a commit follows: only the committed image is tagged
        tag: if changes.is_some() {
            String::new()
        } else {
            spec.tag.clone()
        },
        ..spec.clone()
    };
    let built = engine.build(&plain, stream, reporter).await;
    let built = match (built, changes) {
        (Ok(id), Some(changes)) => {
            reporter.report(Event::BuildOutput(format!(
                "Commit: the trailing configuration and benchctl's labels in one step ({})",
                spec.tag
            )));
            engine.commit(&id, &changes, &spec.tag, &spec.owner).await
        }
        (other, _) => other,
    };
    finish(built, walker, issue, branch).await
}

/// A BuildKit build: the Dockerfile as the branch wrote it, benchctl's labels written into the
/// image's configuration by BuildKit itself (no commit step), the context streamed.
async fn build_with_buildkit(
    engine: &dyn Images,
    root: &Path,
    spec: &BuildSpec,
    issue: &str,
    branch: &str,
    reporter: &SharedReporter,
) -> Result<String> {
    let (stream, walker) = stream_context(
        root.to_path_buf(),
        spec.dockerfile.clone(),
        None,
        reporter.clone(),
    );
    // the image names its repository as the classic path's layer mark does (gc's scope)
    let mut labelled = spec.clone();
    if let Some(repo) = spec.owner.get(crate::engine::labels::REPO) {
        labelled
            .labels
            .insert(crate::engine::labels::REPO.to_string(), repo.clone());
    }
    let built = engine.build(&labelled, stream, reporter).await;
    finish(built, walker, issue, branch).await
}

/// The build's result once the context's walk has ended: a walk that failed is the error,
/// unless the build failed first (the engine then stopped reading).
async fn finish(
    built: Result<String>,
    walker: tokio::task::JoinHandle<io::Result<u64>>,
    issue: &str,
    branch: &str,
) -> Result<String> {
    let walked = walker.await.map_err(|e| Error::Context {
        issue: issue.to_string(),
        message: e.to_string(),
    })?;
    if let Err(e) = walked {
        if e.kind() == io::ErrorKind::BrokenPipe && built.is_err() {
            return built.map(|_| unreachable!("checked is_err"));
        }
        return Err(Error::Context {
            issue: issue.to_string(),
            message: format!("cannot read the checkout: {e}"),
        });
    }
    built.map_err(|e| match e {
        Error::Engine(message) => Error::Build {
            issue: issue.to_string(),
            branch: branch.to_string(),
            message,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn races_with_image_removals_are_recognised() {
        assert!(lost_cache_race("unknown parent image ID sha256:abc"));
        assert!(lost_cache_race(
            "no such image: sha256:7f4a90: No such image: sha256:7f4a90"
        ));
        assert!(!lost_cache_race(
            "COPY failed: file not found in build context"
        ));
        assert!(!lost_cache_race("No such image: node:20-alpine"));
        // the classic builder's word for a cached step's image removed under it
        assert!(lost_cache_race(
            "unable to find image \"sha256:d8c9e557f802a3c23fe3405af00157f4c8cf9dfb19a4962c0941438aa9165466\""
        ));
        assert!(!lost_cache_race("unable to find image \"postgres:15\""));
    }
}
