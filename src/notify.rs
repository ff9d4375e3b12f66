//! Messenger notifications (Slack incoming webhooks, Telegram Bot API) and the text templates
//! in `templates/`. A failing messenger never fails the work it reports on: sending returns
//! warnings, never errors.

use crate::secret::EnvSource;
use crate::secret::{redact, Secret};
use std::path::PathBuf;
use std::time::Duration;

/// Templates built into the binary (the files in `templates/`).
const BUILTIN: &[(&str, &str)] = &[
    (
        "notify/bench-up.txt",
        include_str!("../templates/notify/bench-up.txt"),
    ),
    (
        "notify/bench-failed.txt",
        include_str!("../templates/notify/bench-failed.txt"),
    ),
    (
        "notify/bench-removed.txt",
        include_str!("../templates/notify/bench-removed.txt"),
    ),
    (
        "tracker/review-comment.txt",
        include_str!("../templates/tracker/review-comment.txt"),
    ),
    (
        "tracker/deploy-failed.txt",
        include_str!("../templates/tracker/deploy-failed.txt"),
    ),
    (
        "tracker/deploy-up.txt",
        include_str!("../templates/tracker/deploy-up.txt"),
    ),
];

/// Text templates: a user's directory first, else the built-in copy.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub dir: Option<PathBuf>,
}

impl Templates {
    /// The template `name` (e.g. `notify/bench-up.txt`) with `{key}` placeholders filled.
    pub fn render(&self, name: &str, values: &[(&str, &str)]) -> String {
        let text = self
            .dir
            .as_deref()
            .and_then(|d| std::fs::read_to_string(d.join(name)).ok())
            .unwrap_or_else(|| {
                BUILTIN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default()
            });
        fill(&text, values).trim_end().to_string()
    }

    /// Checks that a user's directory exists (a typo should not silently fall back).
    pub fn check(&self) -> crate::Result<()> {
        match &self.dir {
            Some(d) if !d.is_dir() => Err(crate::Error::usage(format!(
                "--templates-dir `{}` is not a directory",
                d.display()
            ))),
            _ => Ok(()),
        }
    }
}

/// Replaces `{key}` by its value; a placeholder never re-expands inside a value.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((key, close)) if values.iter().any(|(k, _)| *k == key) => {
                let v = values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                out.push_str(v.unwrap_or_default());
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Up {
        issue: String,
        url: String,
        branch: String,
        commit: String,
    },
    Failed {
        issue: String,
        branch: String,
        reason: String,
    },
    Removed {
        issue: String,
        reason: String,
    },
}

impl Message {
    /// The template and the values of its placeholders.
    fn parts(&self) -> (&'static str, Vec<(&'static str, &str)>) {
        match self {
            Message::Up {
                issue,
                url,
                branch,
                commit,
            } => (
                "notify/bench-up.txt",
                vec![
                    ("issue", issue),
                    ("url", url),
                    ("branch", branch),
                    ("commit", crate::naming::short_commit(commit)),
                ],
            ),
            Message::Failed {
                issue,
                branch,
                reason,
            } => (
                "notify/bench-failed.txt",
                vec![("issue", issue), ("branch", branch), ("reason", reason)],
            ),
            Message::Removed { issue, reason } => (
                "notify/bench-removed.txt",
                vec![("issue", issue), ("reason", reason)],
            ),
        }
    }

    /// The message as plain text.
    pub fn render(&self, t: &Templates) -> String {
        let (name, values) = self.parts();
        t.render(name, &values)
    }

    /// The message with each value escaped by `escape` (the template's own text is the
    /// operator's and stays as written).
    pub fn render_escaped(&self, t: &Templates, escape: fn(&str) -> String) -> String {
        let (name, values) = self.parts();
        let escaped: Vec<(&str, String)> = values.iter().map(|(k, v)| (*k, escape(v))).collect();
        let refs: Vec<(&str, &str)> = escaped.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.render(name, &refs)
    }
}

/// Slack's control characters escaped, as its message formatting asks: a branch's text (a
/// build error, a log line) cannot mention `<!channel>` or disguise a link as `<url|text>`.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(Debug, Clone)]
enum Target {
    Slack(Secret),
    Telegram {
        api: String,
        token: Secret,
        chat: String,
    },
}

/// Sends messages to every configured messenger.
pub struct Notifier {
    targets: Vec<Target>,
    templates: Templates,
    http: reqwest::Client,
}

impl Notifier {
    /// A notifier that tells nobody (serve's sleeps and wakes).
    pub fn silent() -> Notifier {
        Notifier {
            targets: Vec::new(),
            templates: Templates::default(),
            http: reqwest::Client::new(),
        }
    }

    /// The text templates (also used for the Tracker's comments).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Targets from the environment: `BENCHCTL_SLACK_WEBHOOK_URL`, `BENCHCTL_TELEGRAM_BOT_TOKEN`
    /// with `BENCHCTL_TELEGRAM_CHAT_ID` (each secret also from `<VAR>_FILE`).
    pub fn from_env(envs: &dyn EnvSource, templates: Templates) -> crate::Result<Notifier> {
        use crate::env;
        let mut targets = Vec::new();
        if let Some(url) = crate::secret::secret_from_env(envs, env::SLACK_WEBHOOK_URL)? {
            targets.push(Target::Slack(url));
        }
        let token = crate::secret::secret_from_env(envs, env::TELEGRAM_BOT_TOKEN)?;
        match (token, envs.get(env::TELEGRAM_CHAT_ID)) {
            (Some(token), Some(chat)) => targets.push(Target::Telegram {
                api: envs
                    .get(env::TELEGRAM_API_URL)
                    .unwrap_or_else(|| "https://api.telegram.org".into())
                    .trim_end_matches('/')
                    .to_string(),
                token,
                chat,
            }),
            (None, None) => {}
            _ => {
                return Err(crate::Error::usage(format!(
                    "Telegram needs both {} and {}",
                    env::TELEGRAM_BOT_TOKEN,
                    env::TELEGRAM_CHAT_ID
                )))
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("static reqwest configuration");
        Ok(Notifier {
            targets,
            templates,
            http,
        })
    }

    /// Names of the configured messengers (for the start-up log).
    pub fn describe(&self) -> Vec<&'static str> {
        self.targets
            .iter()
            .map(|t| match t {
                Target::Slack(_) => "slack",
                Target::Telegram { .. } => "telegram",
            })
            .collect()
    }

    /// Sends `msg` everywhere; returns one warning per messenger that failed.
    pub async fn send(&self, msg: &Message) -> Vec<String> {
        // Telegram gets plain text: no `parse_mode`, so nothing in it is markup
        let text = msg.render(&self.templates);
        let mut warnings = Vec::new();
        for t in &self.targets {
            let (name, req) = match t {
                Target::Slack(url) => (
                    "Slack",
                    self.http.post(url.expose()).json(&serde_json::json!({
                        "text": msg.render_escaped(&self.templates, slack_escape)
                    })),
                ),
                Target::Telegram { api, token, chat } => (
                    "Telegram",
                    self.http
                        .post(format!("{api}/bot{}/sendMessage", token.expose()))
                        .json(&serde_json::json!({
                            "chat_id": chat,
                            "text": text,
                            "disable_web_page_preview": true,
                        })),
                ),
            };
            let problem = match req.send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("answered {}", r.status())),
                Err(e) => Some(e.without_url().to_string()),
            };
            if let Some(p) = problem {
                warnings.push(redact(&format!("{name} notification not sent: {p}")));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill("{a} and {b} {unknown} {", &[("a", "{b}"), ("b", "2")]),
            "{b} and 2 {unknown} {"
        );
    }

    #[test]
    fn slack_gets_a_branchs_text_escaped() {
        let t = Templates::default();
        let failed = Message::Failed {
            issue: "P-1".into(),
            branch: "feature/P-1".into(),
            reason: "RUN echo <!channel> <https://evil.example|docs> & more".into(),
        };
        let slack = failed.render_escaped(&t, slack_escape);
        assert!(
            slack.contains("&lt;!channel&gt; &lt;https://evil.example|docs&gt; &amp; more"),
            "{slack}"
        );
        assert!(!slack.contains('<') && !slack.contains('>'), "{slack}");
        assert!(failed.render(&t).contains("<!channel>"));
    }

    #[test]
    fn builtin_templates_render() {
        let t = Templates::default();
        let up = Message::Up {
            issue: "PROJ-1".into(),
            url: "http://h:1/".into(),
            branch: "feature/PROJ-1".into(),
            commit: "0123456789abcdef".into(),
        }
        .render(&t);
        assert!(up.contains("PROJ-1") && up.contains("http://h:1/") && up.contains("0123456789ab"));
        assert!(!up.contains('{'), "{up}");
    }
}
