//! `benchctl config [BRANCH]`: the settings a deploy of the branch would use and where each
//! comes from (flags, environment, `--config`, the branch's benchctl.toml, defaults).

use super::Ctx;
use crate::cli::args::ConfigArgs;
use crate::cli::print::{Output, Settings};
use crate::cli::resolve;
use crate::secret::ProcessEnv;
use crate::settings::keys::{self, Key};
use crate::{env, Result};

pub async fn exec(args: &ConfigArgs, cx: &Ctx<'_>) -> Result<Output> {
    let m = cx.matches;
    use crate::settings::Row;
    let mut head: Vec<Row> = Vec::new();
    let row = |key: &str, value: String, origin: &str| Row {
        key: key.into(),
        value,
        origin: origin.into(),
    };
    let inputs = resolve::shown_inputs(args, m)?;
    // the --config file, read once
    let local = match &inputs {
        Some(i) => i.local.clone(),
        None => resolve::local_layer(&args.bench)?,
    };
    let effective = if let Some(inputs) = &inputs {
        let (req, effective) = inputs.resolve(cx.reporter)?;
        let branch_origin = if args.source.branch.is_some() {
            "argument"
        } else {
            "CI variable"
        };
        head.push(row("branch", req.branch.clone(), branch_origin));
        head.push(row(
            "repository",
            req.repo.public(),
            if args.source.repo.is_some() {
                "flag --repo"
            } else {
                "current directory"
            },
        ));
        head.push(row(
            "issue",
            req.issue.clone(),
            if args.source.issue.is_some() {
                "flag --issue"
            } else {
                "issue-pattern on the branch"
            },
        ));
        if let Some(t) = &req.bench.template {
            head.push(row("template (chosen)", t.name.clone(), &t.reason));
        }
        head.extend(req.bench.stack.as_ref().map(stack_rows).unwrap_or_default());
        effective
    } else {
        let explicit = resolve::explicit_layer(
            &args.bench,
            args.tracker.field.as_deref(),
            args.source.issue_pattern.as_deref(),
            m,
        )?;
        let mut layers = vec![&explicit];
        layers.extend(local.as_ref());
        let effective = crate::settings::merge(&layers);
        crate::settings::apply(
            &resolve::base_request(&args.bench, true, false)?,
            &effective,
        )?;
        head.push(row(
            "branch",
            "-".into(),
            "none given: the branch's benchctl.toml is not read",
        ));
        effective
    };
    let mut rows = head;
    // the bench's settings; where benches run follows below
    let bench: Vec<&Key> = keys::KEYS
        .iter()
        .copied()
        .filter(|k| !keys::is_engine_key(k))
        // hooks only when set (three hooks of four keys each would crowd the listing)
        .filter(|k| !k.name.starts_with("hooks.") || effective.get(k).is_some())
        .collect();
    rows.extend(crate::settings::rows(&effective, &bench));
    let public_host_origin = if args.bench.public_host.is_some() {
        resolve::origin_of(m, "public_host", "--public-host", Some(env::PUBLIC_HOST)).to_string()
    } else if crate::settings::remote_engine_host(&ProcessEnv).is_some() {
        "DOCKER_HOST (the remote engine's host)".into()
    } else {
        "default (this machine's host name)".into()
    };
    rows.push(row(
        "public-host",
        crate::settings::public_host(args.bench.public_host.as_deref(), &ProcessEnv),
        &public_host_origin,
    ));
    rows.push(row(
        "bind",
        args.bench.bind.clone(),
        "flag --bind or default",
    ));
    let builder_origin = match m.value_source("builder") {
        Some(clap::parser::ValueSource::EnvVariable) => "BENCHCTL_BUILDER",
        Some(clap::parser::ValueSource::CommandLine) => "flag --builder",
        _ => "default",
    };
    rows.push(row(
        "builder",
        args.bench.builder.clone(),
        &format!("{builder_origin}: {}", builder_now(args, cx).await),
    ));
    rows.extend(cx.engine.rows(local.as_ref(), m)?);
    rows.push(row(
        "cache-dir",
        resolve::cache_dir(&args.bench.cache_dir)?
            .display()
            .to_string(),
        if args.bench.cache_dir.is_some() {
            "flag --cache-dir or BENCHCTL_CACHE_DIR"
        } else {
            "default"
        },
    ));
    match resolve::tracker_client(&args.tracker, cx.reporter) {
        Ok(Some(t)) => rows.push(row(
            "tracker",
            t.base_url().to_string(),
            "token and organization set (token not shown)",
        )),
        Ok(None) => rows.push(row(
            "tracker",
            "-".into(),
            "none configured: benches are not linked",
        )),
        Err(e) => rows.push(row("tracker", "-".into(), &format!("error: {e}"))),
    }
    Ok(Settings(rows).into())
}

/// What `--builder` chooses on this engine now, and why (a deploy decides it again).
async fn builder_now(args: &ConfigArgs, cx: &Ctx<'_>) -> String {
    let choice: crate::app::request::BuilderChoice = match args.bench.builder.parse() {
        Ok(c) => c,
        Err(e) => return e,
    };
    if choice == crate::app::request::BuilderChoice::Classic {
        return "the classic builder: its steps run under the bench's memory and CPU limits".into();
    }
    let asked = async {
        let engine = cx.engine.backend()?.connect().await?;
        Ok::<_, crate::Error>(engine.images.buildkit().await)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), asked).await {
        Ok(Ok(buildkit)) => match choice.resolve(buildkit) {
            Ok((builder, why)) => format!("now {} ({why})", builder.as_str()),
            Err(e) => format!("error: {e}"),
        },
        Ok(Err(e)) => format!("decided at each deploy (the engine did not answer: {e})"),
        Err(_) => "decided at each deploy (the engine did not answer within 10 s)".into(),
    }
}

/// A multi-service bench's rows: its file and services, the web service, and the notes.
fn stack_rows(st: &crate::app::request::Stack) -> Vec<crate::settings::Row> {
    let row = |key: &str, value: String, origin: &str| crate::settings::Row {
        key: key.into(),
        value,
        origin: origin.into(),
    };
    let services = st.project.services.keys().cloned().collect::<Vec<_>>();
    let mut rows = vec![
        row("compose", st.file.clone(), &services.join(", ")),
        row("compose web service", st.web.clone(), "the bench's address"),
    ];
    rows.extend(
        st.project
            .notes
            .iter()
            .map(|n| row("compose note", n.clone(), &st.file)),
    );
    rows
}
