//! `benchctl tracker init`: the queue's "Bench link" field (created if missing) and the
//! trigger that calls serve when an issue closes (printed, or created with `--apply`).

use super::{TrackerClient, TrackerError};

use serde_json::Value;

/// What `benchctl tracker init` sets up.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub queue: String,
    pub field_key: String,
    pub field_name: String,
    pub hook_url: Option<String>,
    pub closed_status: String,
    pub apply: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InitOutcome {
    /// The field's full key (`<hex>--benchLink`), as `--field` wants it.
    pub field_key: String,
    pub field_created: bool,
    pub trigger_name: String,
    /// `created`, `exists`, `printed` (no `--apply`) or `skipped` (no `--hook-url`).
    pub trigger_state: String,
    /// The trigger as it would be created (secret left out), when printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Value>,
}

pub const TRIGGER_NAME: &str = "benchctl: tear down the bench when the issue closes";

/// The trigger that posts `{"issue": "<key>"}` to `hook_url` with `Authorization: Bearer
/// <secret>` when an issue's status becomes `closed_status`.
pub fn close_trigger(hook_url: &str, closed_status: &str, secret: &str) -> Value {
    serde_json::json!({
        "name": TRIGGER_NAME,
        "actions": [{
            "type": "Webhook",
            "endpoint": hook_url,
            "method": "POST",
            "contentType": "application/json",
            "authContext": {
                "type": "oauth",
                "headerName": "Authorization",
                "accessToken": secret,
                "tokenType": "Bearer"
            },
            "body": "{\"issue\": \"{{issue.key}}\"}"
        }],
        "conditions": [{
            "type": "FieldBecameEqual",
            "field": "status",
            "value": closed_status
        }],
        "active": true
    })
}

/// Creates the queue's local URI field if missing and the close trigger (with `apply`) if
/// missing. Running it again changes nothing.
pub async fn init(
    t: &TrackerClient,
    opts: &InitOptions,
    secret: Option<&crate::secret::Secret>,
) -> crate::Result<InitOutcome> {
    let tracker_err = |e: TrackerError| {
        if e.status == Some(404) {
            crate::Error::usage(format!("{e}; check the queue key (it is case-sensitive)"))
        } else {
            crate::Error::Tracker(e)
        }
    };
    if opts.apply && opts.hook_url.is_none() {
        return Err(crate::Error::usage(
            "--apply creates the trigger, which needs --hook-url <https://.../hooks/tracker>",
        ));
    }
    let secret = match (opts.apply, secret) {
        (true, None) => {
            return Err(crate::Error::usage(format!(
                "--apply puts the secret the service checks into the trigger: set {} (or {}_FILE)",
                crate::env::TRACKER_HOOK_SECRET,
                crate::env::TRACKER_HOOK_SECRET
            )))
        }
        (true, Some(s)) => s.expose().to_string(),
        (false, _) => "<secret>".to_string(),
    };
    let short = opts.field_key.as_str();
    let suffix = format!("--{short}");
    let fields = t.local_fields(&opts.queue).await.map_err(tracker_err)?;
    let existing = fields.iter().find_map(|f| {
        let id = f.get("id").and_then(Value::as_str)?;
        let key = f.get("key").and_then(Value::as_str).unwrap_or("");
        (key == short || id.ends_with(&suffix)).then(|| id.to_string())
    });
    let (field_key, field_created) = match existing {
        Some(id) => (id, false),
        None => {
            let body = serde_json::json!({
                "name": { "en": opts.field_name, "ru": opts.field_name },
                "id": short,
                "category": "000000000000000000000003",
                "type": "ru.yandex.startrek.core.fields.UriFieldType",
            });
            let created = t
                .create_local_field(&opts.queue, body)
                .await
                .map_err(tracker_err)?;
            let id = created
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(short)
                .to_string();
            (id, true)
        }
    };
    let mut out = InitOutcome {
        field_key,
        field_created,
        trigger_name: TRIGGER_NAME.to_string(),
        trigger_state: "skipped".into(),
        trigger: None,
    };
    let Some(hook_url) = &opts.hook_url else {
        return Ok(out);
    };
    let triggers = t.triggers(&opts.queue).await.map_err(tracker_err)?;
    let exists = triggers
        .iter()
        .any(|tr| tr.get("name").and_then(Value::as_str) == Some(TRIGGER_NAME));
    let body = close_trigger(hook_url, &opts.closed_status, &secret);
    if exists {
        out.trigger_state = "exists".into();
    } else if opts.apply {
        t.create_trigger(&opts.queue, body)
            .await
            .map_err(tracker_err)?;
        out.trigger_state = "created".into();
    } else {
        out.trigger_state = "printed".into();
        out.trigger = Some(body);
    }
    Ok(out)
}
