//! Yandex Tracker API client (the parts benchctl uses), reached by URL so tests point it at a
//! fake; its configuration (`config`) and `benchctl tracker init` (`init`).

pub mod config;
mod init;

use crate::output::{Event, SharedReporter};
use crate::secret::redact;
pub use config::{TrackerAuth, TrackerConfig, TrackerOrg};
pub use init::{close_trigger, init, InitOptions, InitOutcome, TRIGGER_NAME};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Retry policy for 429, 5xx and connection errors.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_tries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub max_total: Duration,
    /// Timeout of one request (connect timeout is 5 s at most).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_total: Duration::from_secs(30),
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// A failed Tracker request: which issue, what was attempted, and what the Tracker answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct TrackerError {
    pub issue: String,
    pub action: String,
    pub status: Option<u16>,
    pub messages: Vec<String>,
}

impl TrackerError {
    fn render(&self) -> String {
        let answer = match self.status {
            Some(code) => format!("the Tracker answered {code}"),
            None => "the Tracker could not be reached".to_string(),
        };
        let msgs = if self.messages.is_empty() {
            String::new()
        } else {
            format!(": {}", self.messages.join("; "))
        };
        let hint = match self.status {
            Some(401) => "; check BENCHCTL_TRACKER_TOKEN / BENCHCTL_TRACKER_IAM_TOKEN (IAM tokens expire after 12 h)",
            Some(403) => "; the token's user has no right to do this in the issue's queue",
            Some(404) => "; check the issue key and the organization id (BENCHCTL_TRACKER_ORG_ID / BENCHCTL_TRACKER_CLOUD_ORG_ID)",
            Some(422) => "; check the field key (--field / BENCHCTL_BENCH_FIELD); a queue-local field needs its full key `<hex>--benchLink`",
            Some(423) => "; the issue's edits are blocked",
            Some(429) | Some(500..=599) => "; retries were exhausted, try again later",
            None => "; check BENCHCTL_TRACKER_URL and the network",
            _ => "",
        };
        redact(&format!(
            "could not {} of {}: {answer}{msgs}{hint}",
            self.action, self.issue
        ))
    }

    /// Whether this points at bad input or configuration rather than a passing failure.
    pub fn is_usage(&self) -> bool {
        matches!(self.status, Some(401 | 403 | 404))
    }
}

/// What a request is about, as errors name it.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    Issue(&'a str),
    Queue(&'a str),
}

impl Subject<'_> {
    fn describe(&self) -> String {
        match self {
            Subject::Issue(k) => format!("issue {k}"),
            Subject::Queue(q) => format!("queue {q}"),
        }
    }
}

/// One transition of an issue's workflow: its id and the status it leads to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transition {
    pub id: String,
    pub to: String,
    pub display: String,
}

impl Transition {
    fn from_json(v: &Value) -> Option<Transition> {
        Some(Transition {
            id: v.get("id")?.as_str()?.to_string(),
            to: v.get("to")?.get("key")?.as_str()?.to_string(),
            display: v
                .get("display")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }
}

#[derive(Clone)]
pub struct TrackerClient {
    http: reqwest::Client,
    cfg: TrackerConfig,
    retry: RetryPolicy,
    /// Who hears that an answer is retried (nobody: the wait is silent).
    reporter: Option<SharedReporter>,
}

impl TrackerClient {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self::with_retry(cfg, RetryPolicy::default())
    }

    pub fn with_retry(cfg: TrackerConfig, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(retry.request_timeout.min(Duration::from_secs(5)))
            .timeout(retry.request_timeout)
            .user_agent(concat!("benchctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static reqwest configuration");
        TrackerClient {
            http,
            cfg,
            retry,
            reporter: None,
        }
    }

    /// This client, telling `reporter` of each retry (which answer, when, which attempt).
    pub fn reporting_to(&self, reporter: SharedReporter) -> TrackerClient {
        TrackerClient {
            reporter: Some(reporter),
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.cfg.base_url
    }

    /// `GET /v3/issues/<key>`.
    pub async fn get_issue(&self, key: &str) -> Result<Value, TrackerError> {
        self.send(Method::GET, key, "read the status", None).await
    }

    /// `PATCH /v3/issues/<key>` with `{"<field>": value}`; `None` clears the field.
    pub async fn set_field(
        &self,
        key: &str,
        field: &str,
        value: Option<&str>,
    ) -> Result<Value, TrackerError> {
        let mut body = serde_json::Map::new();
        body.insert(
            field.to_string(),
            value.map_or(Value::Null, |v| Value::String(v.to_string())),
        );
        let action = if value.is_some() {
            format!("set field `{field}`")
        } else {
            format!("clear field `{field}`")
        };
        self.send(Method::PATCH, key, &action, Some(Value::Object(body)))
            .await
    }

    /// `GET /v3/issues/<key>/transitions`: the transitions available from the issue's status.
    pub async fn transitions(&self, key: &str) -> Result<Vec<Transition>, TrackerError> {
        let v = self
            .request(
                Method::GET,
                &format!("issues/{key}/transitions"),
                Subject::Issue(key),
                "read the transitions",
                None,
            )
            .await?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(Transition::from_json).collect())
            .unwrap_or_default())
    }

    /// `POST /v3/issues/<key>/transitions/<id>/_execute`, with an optional comment.
    pub async fn execute_transition(
        &self,
        key: &str,
        transition: &str,
        comment: Option<&str>,
    ) -> Result<Value, TrackerError> {
        let body = match comment {
            Some(c) => serde_json::json!({ "comment": c }),
            None => serde_json::json!({}),
        };
        self.request(
            Method::POST,
            &format!("issues/{key}/transitions/{transition}/_execute"),
            Subject::Issue(key),
            &format!("execute transition `{transition}`"),
            Some(body),
        )
        .await
    }

    /// `POST /v3/issues/<key>/comments`.
    pub async fn add_comment(&self, key: &str, text: &str) -> Result<Value, TrackerError> {
        self.request(
            Method::POST,
            &format!("issues/{key}/comments"),
            Subject::Issue(key),
            "add a comment",
            Some(serde_json::json!({ "text": text })),
        )
        .await
    }

    /// `GET /v3/queues/<queue>/localFields`.
    pub async fn local_fields(&self, queue: &str) -> Result<Vec<Value>, TrackerError> {
        let v = self
            .request(
                Method::GET,
                &format!("queues/{queue}/localFields"),
                Subject::Queue(queue),
                "list the local fields",
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// `POST /v3/queues/<queue>/localFields`.
    pub async fn create_local_field(
        &self,
        queue: &str,
        body: Value,
    ) -> Result<Value, TrackerError> {
        self.request(
            Method::POST,
            &format!("queues/{queue}/localFields"),
            Subject::Queue(queue),
            "create a local field",
            Some(body),
        )
        .await
    }

    /// `GET /v3/queues/<queue>/triggers`.
    pub async fn triggers(&self, queue: &str) -> Result<Vec<Value>, TrackerError> {
        let v = self
            .request(
                Method::GET,
                &format!("queues/{queue}/triggers"),
                Subject::Queue(queue),
                "list the triggers",
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// `POST /v3/queues/<queue>/triggers`.
    pub async fn create_trigger(&self, queue: &str, body: Value) -> Result<Value, TrackerError> {
        self.request(
            Method::POST,
            &format!("queues/{queue}/triggers"),
            Subject::Queue(queue),
            "create a trigger",
            Some(body),
        )
        .await
    }

    /// One plain `GET` of the issue (no retries), after an edit conflict.
    async fn reread(&self, key: &str) -> Option<Value> {
        let url = format!("{}/v3/issues/{key}", self.cfg.base_url);
        let req = self.authorize(self.http.get(url));
        req.send().await.ok()?.json().await.ok()
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = req.header("Accept-Language", "en");
        let req = match &self.cfg.auth {
            TrackerAuth::OAuth(t) => req.header("Authorization", format!("OAuth {}", t.expose())),
            TrackerAuth::Iam(t) => req.header("Authorization", format!("Bearer {}", t.expose())),
        };
        match &self.cfg.org {
            TrackerOrg::Org(id) => req.header("X-Org-ID", id),
            TrackerOrg::Cloud(id) => req.header("X-Cloud-Org-ID", id),
        }
    }

    async fn send(
        &self,
        method: Method,
        key: &str,
        action: &str,
        body: Option<Value>,
    ) -> Result<Value, TrackerError> {
        self.request(
            method,
            &format!("issues/{key}"),
            Subject::Issue(key),
            action,
            body,
        )
        .await
    }

    /// One API call under the retry policy: `path` is below `/v3/`.
    async fn request(
        &self,
        method: Method,
        path: &str,
        subject: Subject<'_>,
        action: &str,
        body: Option<Value>,
    ) -> Result<Value, TrackerError> {
        let url = format!("{}/v3/{path}", self.cfg.base_url);
        let started = Instant::now();
        let fail = |status: Option<u16>, messages: Vec<String>| TrackerError {
            issue: subject.describe(),
            action: action.to_string(),
            status,
            messages,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self.authorize(self.http.request(method.clone(), &url));
            if let Some(b) = &body {
                req = req.json(b);
            }
            let (retryable, retry_after, err) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                    }
                    // 409/412: an edit conflict; re-read the issue, then send again.
                    if matches!(status.as_u16(), 409 | 412) && attempt < self.retry.max_tries {
                        if let Subject::Issue(key) = subject {
                            let _ = self.reread(key).await;
                        }
                        continue;
                    }
                    let retryable =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    (
                        retryable,
                        retry_after,
                        fail(Some(status.as_u16()), error_messages(&text)),
                    )
                }
                Err(e) => {
                    let retryable = e.is_connect() || e.is_timeout() || e.is_request();
                    (retryable, None, fail(None, vec![describe_reqwest(&e)]))
                }
            };
            if !retryable || attempt >= self.retry.max_tries {
                return Err(err);
            }
            let backoff = self
                .retry
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(self.retry.max_delay);
            let jitter = rand::thread_rng().gen_range(0.5..1.0);
            let delay = retry_after.unwrap_or_else(|| backoff.mul_f64(jitter));
            // a server's Retry-After is any number: compare without overflowing
            if started.elapsed().saturating_add(delay) > self.retry.max_total {
                return Err(err);
            }
            if let Some(r) = &self.reporter {
                r.report(Event::Info(retry_notice(
                    &err,
                    delay,
                    attempt + 1,
                    self.retry.max_tries,
                )));
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// `Tracker answered 503; retrying in 1.2 s (2 of 5)`: what is retried, when, which try.
fn retry_notice(err: &TrackerError, delay: Duration, next: u32, tries: u32) -> String {
    let answer = match err.status {
        Some(status) => format!("answered {status}"),
        None => format!(
            "could not be reached ({})",
            err.messages.first().map_or("no answer", String::as_str)
        ),
    };
    redact(&format!(
        "Tracker {answer} (to {} of {}); retrying in {:.1} s ({next} of {tries})",
        err.action,
        err.issue,
        delay.as_secs_f64()
    ))
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    redact(&s)
}

/// Extracts `errorMessages` and `errors` from a Tracker error body (falls back to the raw text).
pub fn error_messages(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(msgs) = v.get("errorMessages").and_then(Value::as_array) {
            out.extend(msgs.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if let Some(errs) = v.get("errors").and_then(Value::as_object) {
            for (k, m) in errs {
                let m = m
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m.to_string());
                out.push(format!("{k}: {m}"));
            }
        }
        if !out.is_empty() {
            return out;
        }
    }
    let trimmed = body.trim();
    if !trimmed.is_empty() {
        out.push(trimmed.chars().take(300).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_says_which_answer_when_and_which_try() {
        let mut err = TrackerError {
            issue: "issue PROJ-1".into(),
            action: "read the status".into(),
            status: Some(503),
            messages: vec![],
        };
        assert_eq!(
            retry_notice(&err, Duration::from_millis(1200), 2, 5),
            "Tracker answered 503 (to read the status of issue PROJ-1); retrying in 1.2 s (2 of 5)"
        );
        err.status = None;
        err.messages = vec!["connection refused".into()];
        assert!(retry_notice(&err, Duration::from_secs(3), 3, 5)
            .starts_with("Tracker could not be reached (connection refused) (to read"));
    }

    #[test]
    fn error_bodies_are_read() {
        let body = r#"{"errors":{"benchLink":"unknown field"},"errorsData":{},"errorMessages":["Validation failed"],"statusCode":422}"#;
        assert_eq!(
            error_messages(body),
            vec![
                "Validation failed".to_string(),
                "benchLink: unknown field".to_string()
            ]
        );
        assert_eq!(error_messages("oops"), vec!["oops".to_string()]);
        let e = TrackerError {
            issue: "issue PROJ-1".into(),
            action: "set field `benchLink`".into(),
            status: Some(422),
            messages: error_messages(body),
        };
        let s = e.to_string();
        assert!(s.contains("PROJ-1") && s.contains("benchLink") && s.contains("Validation failed"));
    }
}
