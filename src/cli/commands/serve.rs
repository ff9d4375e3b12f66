//! `benchctl serve`: checks every option at start, then runs the webhook service.

use super::Ctx;
use crate::cli::args::ServeArgs;
use crate::cli::print::Output;
use crate::cli::resolve::{self, duration};
use crate::naming::DEFAULT_ISSUE_PATTERN;
use crate::notify::{Notifier, Templates};
use crate::secret::ProcessEnv;
use crate::server::{ReviewTargets, ServeConfig};
use crate::{Error, Result};
use std::time::Duration;

pub async fn exec(args: &ServeArgs, cx: &Ctx<'_>) -> Result<Output> {
    let m = cx.matches;
    let mut repos = std::collections::HashMap::new();
    for r in &args.repos {
        let (name, url) = r.split_once('=').ok_or_else(|| {
            Error::usage(format!(
                "--repo `{r}` is not NAME=URL (e.g. acme/shop=git@github.com:acme/shop.git)"
            ))
        })?;
        if name.trim().is_empty() || url.trim().is_empty() {
            return Err(Error::usage(format!("--repo `{r}` needs a name and a URL")));
        }
        crate::git::resolve_repo(Some(url.trim()))?;
        repos.insert(name.trim().to_string(), url.trim().to_string());
    }
    let issue_pattern = args
        .issue_pattern
        .clone()
        .unwrap_or_else(|| DEFAULT_ISSUE_PATTERN.to_string());
    let templates = Templates {
        dir: args.templates_dir.clone(),
    };
    templates.check()?;
    let max_body = crate::settings::parse_bytes(&args.max_body)?;
    if max_body < 1024 {
        return Err(Error::usage("--max-body must be at least 1k"));
    }
    let explicit = resolve::explicit_layer(
        &args.bench,
        args.tracker.field.as_deref(),
        args.issue_pattern.as_deref(),
        m,
    )?;
    let local = resolve::local_layer(&args.bench)?;
    // what the deploys use when no branch's config says otherwise (checked now, at start)
    let mut layers = vec![&explicit];
    layers.extend(local.as_ref());
    let mut deploy = resolve::base_request(&args.bench, !args.no_link, false)?;
    deploy = crate::settings::apply(&deploy, &crate::settings::merge(&layers))?;
    let backend = cx.engine.pushing_backend(local.as_ref())?;
    let (deploy_field, cache_dir) = (
        deploy.policy.field.clone(),
        deploy.machine.cache_dir.clone(),
    );
    let gc = gc_schedule(args, &deploy_field, &cache_dir, deploy.bench.hook_limit)?;
    let sleep = sleep_policy(args)?;
    if args.proxy_listen.is_some() {
        let template = deploy.bench.url_template.as_deref().unwrap_or_default();
        if !crate::naming::template_host_names_the_issue(template) {
            return Err(Error::usage(format!(
                "--proxy-listen routes by host name, so each bench needs a host of its own: \
                 the URL template's host must hold {{issue}} (e.g. \
                 --url-template 'http://{{issue}}.bench.example.com'), and `{}` does not",
                if template.is_empty() { "-" } else { template }
            )));
        }
    }
    let proxy = args
        .proxy_listen
        .map(|listen| crate::server::proxy::ProxyConfig {
            listen,
            wake_hold: Duration::from_secs(args.wake_hold),
            tunnel_idle: Duration::from_secs(args.tunnel_idle_timeout.max(1)),
            wake_rate: args.wake_rate,
            wake_rate_client: args.wake_rate_client,
            body_gap: Duration::from_secs(args.body_timeout.max(1)),
        });
    let dashboard = dashboard_config(args, gc.as_ref().and_then(|g| g.options.ttl))?;
    let cfg = ServeConfig {
        listen: args.listen,
        secrets: crate::server::webhook::Secrets::from_env(&ProcessEnv, args.allow_weak_secrets)?,
        state_dir: resolve::state_dir(&args.state_dir)?,
        max_body: max_body as usize,
        max_parallel: args.max_parallel.max(1),
        max_attempts: args.max_attempts.max(1),
        retry_base: Duration::from_secs(args.retry_delay),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        job_timeout: Duration::from_secs(args.job_timeout.max(1)),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout.max(1)),
        max_connections: args.max_connections.max(1),
        repos,
        issue_pattern,
        review_targets: ReviewTargets {
            approved: resolve::review_target(&args.on_approved),
            changes_requested: resolve::review_target(&args.on_changes_requested),
            rejected: resolve::review_target(&args.on_rejected),
        },
        review_comment: args.review_comment,
        review_associations: args
            .review_associations
            .iter()
            .map(|a| a.trim().to_ascii_uppercase())
            .filter(|a| !a.is_empty())
            .collect(),
        closed_statuses: args.closed.closed_statuses.clone(),
        deploy,
        explicit,
        local,
        lock: args.lock.options(),
        templates: templates.clone(),
        backend,
        dashboard,
        gc,
        sleep,
        proxy,
    };
    let tracker = resolve::tracker_client(&args.tracker, cx.reporter)?;
    let notifier = Notifier::from_env(&ProcessEnv, templates)?;
    if tracker.is_none() {
        crate::server::log(
            "warning: no Tracker configured: reviews and closes cannot be handled, benches are not linked",
        );
    }
    let messengers = notifier.describe();
    if !messengers.is_empty() {
        crate::server::log(&format!("notifications to {}", messengers.join(", ")));
    }
    let code_hosts = crate::cli::resolve::code_hosts(&args.code_host)?;
    let egress = cfg.deploy.bench.egress;
    if egress == crate::engine::egress::Egress::Open {
        crate::server::log(
            "warning: --egress open: benches and builds reach the host's listeners and \
             link-local addresses (the cloud metadata service)",
        );
    }
    let remote = cfg.deploy.machine.engine_host.clone();
    crate::app::egress::ensure(egress, remote.as_deref(), cx.reporter).await;
    crate::server::serve(cfg, tracker, notifier, code_hosts).await?;
    Ok(Output::Written)
}

/// The dashboard's settings (`ttl`: serve's clean-up's, for the TTL column): `--dashboard`
/// needs credentials or a loopback listener of its own.
fn dashboard_config(
    args: &crate::cli::args::ServeArgs,
    ttl: Option<Duration>,
) -> Result<Option<crate::server::dashboard::DashboardConfig>> {
    if !args.dashboard {
        return Ok(None);
    }
    let password = crate::secret::secret_from_env(&ProcessEnv, crate::env::DASHBOARD_PASSWORD)?;
    if let Some(p) = &password {
        // as for the webhook secrets: a short password falls to guessing
        let len = p.expose().len();
        let min = crate::server::webhook::MIN_SECRET_LEN;
        if len < min && !args.allow_weak_secrets {
            return Err(crate::Error::usage(format!(
                "BENCHCTL_DASHBOARD_PASSWORD has {len} bytes: the dashboard shows logs, so its \
                 password needs at least {min} (or pass --allow-weak-secrets)"
            )));
        }
    }
    let user = crate::env::var(crate::env::DASHBOARD_USER).unwrap_or_else(|| "benchctl".into());
    if let Some(addr) = args.dashboard_listen {
        if !addr.ip().is_loopback() {
            return Err(crate::Error::usage(format!(
                "--dashboard-listen {addr}: the dashboard without credentials listens on a \
                 loopback address only (127.0.0.1:PORT); elsewhere set BENCHCTL_DASHBOARD_PASSWORD"
            )));
        }
    }
    if password.is_none() && args.dashboard_listen.is_none() {
        return Err(crate::Error::usage(
            "--dashboard shows logs, so it needs BENCHCTL_DASHBOARD_PASSWORD (HTTP Basic auth; \
             user BENCHCTL_DASHBOARD_USER, default `benchctl`) or --dashboard-listen on a \
             loopback address",
        ));
    }
    Ok(Some(crate::server::dashboard::DashboardConfig {
        basic: password.map(|p| (user, p)),
        listen: args.dashboard_listen,
        tracker_web: crate::env::var(crate::env::TRACKER_WEB_URL)
            .unwrap_or_else(|| "https://tracker.yandex.ru".into()),
        ttl,
    }))
}

/// serve's clean-up: every `--gc-interval` (off with `0`), what `benchctl gc` does with
/// `--ttl`, the closed statuses, and the deploys' field and cache directory.
fn gc_schedule(
    args: &crate::cli::args::ServeArgs,
    field: &str,
    cache_dir: &std::path::Path,
    hook_limit: Duration,
) -> Result<Option<crate::server::GcSchedule>> {
    let interval = duration("--gc-interval", &args.gc_interval)?;
    if interval.is_zero() {
        return Ok(None);
    }
    let ttl = args
        .ttl
        .as_deref()
        .map(|t| duration("--ttl", t))
        .transpose()?;
    Ok(Some(crate::server::GcSchedule {
        interval,
        options: crate::app::gc::GcOptions {
            dry_run: false,
            ttl,
            closed_statuses: args.closed.closed_statuses.clone(),
            scope: None,
            field: field.to_string(),
            clear_link: !args.no_link,
            cache_dir: cache_dir.to_path_buf(),
            cache_max_age: Duration::from_secs(14 * 86_400),
            build_cache: false,
            pin_tag: args.pin_tag.clone(),
            last_used: Default::default(),
            hook_limit,
        },
    }))
}

/// `--sleep-after` (and how often the counters are read), with the pin tag.
fn sleep_policy(
    args: &crate::cli::args::ServeArgs,
) -> Result<Option<crate::server::idle::SleepPolicy>> {
    let above_zero = |flag: &str, v: &str| {
        duration(flag, v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                crate::Error::usage(format!(
                    "{flag} `{v}` is not a duration above zero (e.g. 30m, 1h)"
                ))
            })
    };
    let Some(after) = args.sleep_after.as_deref() else {
        return Ok(None);
    };
    let after = above_zero("--sleep-after", after)?;
    let sample = match args.sleep_sample.as_deref() {
        Some(s) => above_zero("--sleep-sample", s)?,
        None => (after / 10).clamp(Duration::from_secs(1), Duration::from_secs(60)),
    };
    Ok(Some(crate::server::idle::SleepPolicy {
        after,
        sample,
        pin_tag: args.pin_tag.clone(),
    }))
}
