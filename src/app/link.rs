//! The issue's "Bench link" field: whether a deploy links at all, writing the bench's address,
//! re-setting it when it differs, and `benchctl link` (the way out after exit code 3).

use crate::app::inspect::{find_bench, record_from};
use crate::clock::now_unix;
use crate::engine::Engine;
use crate::output::{Event, SharedReporter};
use crate::tracker::TrackerClient;
use crate::{Error, Result};

/// What happened to the Tracker field in a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The field holds the bench's address.
    Linked,
    /// Not linked, and that is not an error: why (`--no-link`, no Tracker, or an older commit
    /// that did not replace the running bench).
    Skipped(String),
    /// The Tracker refused or could not be reached: the bench is up but not linked (exit 3).
    Failed(String),
}

impl LinkState {
    pub fn is_linked(&self) -> bool {
        *self == LinkState::Linked
    }

    /// The Tracker's refusal, when linking failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            LinkState::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Why nothing was linked, when that is not an error.
    pub fn skipped(&self) -> Option<&str> {
        match self {
            LinkState::Skipped(why) => Some(why),
            _ => None,
        }
    }
}

/// One issue's bench field in the Tracker: where a deploy writes its address.
pub struct Field<'a> {
    pub tracker: &'a TrackerClient,
    pub issue: &'a str,
    pub name: &'a str,
}

/// The field a deploy links through, or why it does not link (which is not an error).
pub fn link_target<'a>(
    link: bool,
    tracker: Option<&'a TrackerClient>,
    issue: &'a str,
    name: &'a str,
) -> std::result::Result<Field<'a>, String> {
    match (link, tracker) {
        (false, _) => Err("--no-link was given".to_string()),
        (true, None) => Err("no Tracker is configured".to_string()),
        (true, Some(tracker)) => Ok(Field {
            tracker,
            issue,
            name,
        }),
    }
}

impl Field<'_> {
    /// What the field holds now (`None`: empty or not text).
    async fn current(&self) -> Result<Option<String>> {
        let issue = self.tracker.get_issue(self.issue).await?;
        Ok(issue
            .get(self.name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string))
    }

    /// Whether the field already holds `url` (a Tracker that cannot be asked: no).
    pub async fn holds(&self, url: &str) -> bool {
        matches!(self.current().await, Ok(Some(v)) if v == url)
    }

    /// Writes `url` into the field, reporting it.
    pub async fn set(&self, url: &str, reporter: &SharedReporter) -> LinkState {
        let (issue, field) = (self.issue, self.name);
        reporter.report(Event::Step(format!("setting field `{field}` of {issue}")));
        self.write(url, "", reporter).await
    }

    /// Re-sets the field to `url` when it holds something else (no-op redeploys).
    pub async fn ensure(&self, url: &str, reporter: &SharedReporter) -> LinkState {
        match self.current().await {
            Err(e) => LinkState::Failed(e.to_string()),
            Ok(Some(v)) if v == url => LinkState::Linked,
            Ok(_) => self.write(url, " (it differed)", reporter).await,
        }
    }

    async fn write(&self, url: &str, note: &str, reporter: &SharedReporter) -> LinkState {
        let (issue, field) = (self.issue, self.name);
        match self.tracker.set_field(issue, field, Some(url)).await {
            Ok(_) => {
                reporter.report(Event::Done(format!(
                    "{issue}: field `{field}` = {url}{note}"
                )));
                LinkState::Linked
            }
            Err(e) => LinkState::Failed(e.to_string()),
        }
    }
}

/// What `benchctl link` did.
#[derive(Debug, Clone)]
pub struct LinkOutcome {
    pub issue: String,
    pub field: String,
    /// The bench's address, when the field was set.
    pub url: Option<String>,
    /// The Tracker's refusal (exit 3).
    pub error: Option<String>,
}

/// Re-publishes the address of the issue's running bench in the Tracker (the way out after
/// exit code 3).
pub async fn link(
    issue: &str,
    engine: &Engine,
    tracker: &TrackerClient,
    field: &str,
    reporter: &SharedReporter,
) -> Result<LinkOutcome> {
    let bench = find_bench(engine, issue).await?.filter(|c| c.running);
    let Some(bench) = bench else {
        return Err(Error::usage(format!(
            "{issue} has no running bench to link; deploy it first (`benchctl deploy <branch>`)"
        )));
    };
    let url = record_from(&bench, now_unix()).url.ok_or_else(|| {
        Error::Engine(format!(
            "the bench of {issue} ({}) publishes no port; redeploy it",
            bench.name
        ))
    })?;
    reporter.report(Event::Step(format!("setting field `{field}` of {issue}")));
    let (url, error) = match tracker.set_field(issue, field, Some(&url)).await {
        Ok(_) => (Some(url), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(LinkOutcome {
        issue: issue.to_string(),
        field: field.to_string(),
        url,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_links_only_when_asked_and_a_tracker_is_there() {
        let t = TrackerClient::new(crate::tracker::TrackerConfig {
            base_url: "http://127.0.0.1:1".into(),
            auth: crate::tracker::TrackerAuth::OAuth(crate::secret::Secret::new("x")),
            org: crate::tracker::TrackerOrg::Org("1".into()),
        });
        let target = |link, tracker| link_target(link, tracker, "PROJ-1", "bench").err();
        assert_eq!(
            target(false, Some(&t)).as_deref(),
            Some("--no-link was given")
        );
        assert_eq!(
            target(true, None).as_deref(),
            Some("no Tracker is configured")
        );
        assert!(link_target(true, Some(&t), "PROJ-1", "bench").is_ok());
    }

    #[test]
    fn link_states_say_what_the_front_ends_print() {
        assert!(LinkState::Linked.is_linked());
        assert_eq!(LinkState::Failed("403".into()).error(), Some("403"));
        assert_eq!(LinkState::Skipped("why".into()).skipped(), Some("why"));
        assert_eq!(LinkState::Linked.error(), None);
    }
}
