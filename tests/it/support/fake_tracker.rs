//! A fake Yandex Tracker on 127.0.0.1 that follows `shared/reference/tracker-api.md`: auth and
//! organization headers, `GET`/`PATCH /v3/issues/<key>`, transitions (ids that are not status
//! keys) and their execution, comments, queue-local fields, triggers, error bodies with
//! `errorMessages`, 404 for unknown issues, 422 for unknown fields, growing `version`, and
//! injectable faults.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Auth {
    OAuth(&'static str),
    Iam(&'static str),
}

#[derive(Clone, Debug)]
pub enum Org {
    Org(&'static str),
    Cloud(&'static str),
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Option<Value>,
}

#[derive(Clone, Debug)]
pub struct Fault {
    /// Only requests with this method take the fault (any method when `None`).
    pub method: Option<&'static str>,
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub delay: Duration,
}

struct State {
    auth: Auth,
    org: Org,
    issues: HashMap<String, Map<String, Value>>,
    fields: HashSet<String>,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    queues: HashSet<String>,
    local_fields: HashMap<String, Vec<Value>>,
    triggers: HashMap<String, Vec<Value>>,
    comments: Vec<(String, String)>,
    /// Transitions executed: (issue, transition id).
    executed: Vec<(String, String)>,
    /// Per-issue workflows replacing [`WORKFLOW`]: (transition id, target status).
    workflows: HashMap<String, Vec<(String, String)>>,
}

pub struct FakeTracker {
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: super::LoopbackServer,
}

fn error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    let body = json!({
        "errors": errors,
        "errorsData": {},
        "errorMessages": messages,
        "statusCode": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: serde_json::from_slice(&body).ok(),
    };
    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(recorded.clone());
        let i = s
            .faults
            .iter()
            .position(|f| f.method.is_none_or(|m| m == recorded.method));
        i.and_then(|i| s.faults.remove(i))
    };
    if let Some(f) = fault.as_ref() {
        tokio::time::sleep(f.delay).await;
    }
    if fault.as_ref().is_some_and(|f| f.status == 1) {
        // a careless server that echoes the credentials it got
        let auth = recorded
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let msg = format!("token rejected: {auth}");
        return error(StatusCode::UNAUTHORIZED, &[msg.as_str()], json!({}));
    }
    if let Some(f) = fault.filter(|f| f.status != 0) {
        let status = StatusCode::from_u16(f.status).unwrap();
        let mut resp = error(status, &["injected fault"], json!({}));
        if let Some(ra) = f.retry_after {
            resp.headers_mut()
                .insert("retry-after", ra.parse().unwrap());
        }
        return resp;
    }
    let mut s = state.lock().unwrap();
    let h = |k: &str| recorded.headers.get(k).cloned();
    let expected_auth = match &s.auth {
        Auth::OAuth(t) => format!("OAuth {t}"),
        Auth::Iam(t) => format!("Bearer {t}"),
    };
    if h("authorization").as_deref() != Some(expected_auth.as_str()) {
        return error(StatusCode::UNAUTHORIZED, &["Not authorized."], json!({}));
    }
    match (h("x-org-id"), h("x-cloud-org-id"), &s.org) {
        (Some(_), Some(_), _) => {
            return error(
                StatusCode::BAD_REQUEST,
                &["Both X-Org-ID and X-Cloud-Org-ID are given."],
                json!({}),
            )
        }
        (Some(got), None, Org::Org(want)) | (None, Some(got), Org::Cloud(want)) if got == *want => {
        }
        _ => {
            return error(
                StatusCode::UNAUTHORIZED,
                &["Organization is not found."],
                json!({}),
            )
        }
    }
    let segments: Vec<String> = recorded
        .path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["v3", "issues", key] => issue(&mut s, key, &method, recorded.body.clone()),
        ["v3", "issues", key, "transitions"] if method == Method::GET => {
            let Some(current) = status_of(&s, key) else {
                return error(StatusCode::NOT_FOUND, &["Issue does not exist."], json!({}));
            };
            (StatusCode::OK, axum::Json(transitions(&s, key, &current))).into_response()
        }
        ["v3", "issues", key, "transitions", id, "_execute"] if method == Method::POST => {
            execute(&mut s, key, id, recorded.body.clone())
        }
        ["v3", "issues", key, "comments"] if method == Method::POST => {
            if !s.issues.contains_key(*key) {
                return error(StatusCode::NOT_FOUND, &["Issue does not exist."], json!({}));
            }
            let Some(text) = recorded.body.as_ref().and_then(|b| b["text"].as_str()) else {
                return error(StatusCode::BAD_REQUEST, &["Text is required."], json!({}));
            };
            let id = s.comments.len() + 1;
            s.comments.push((key.to_string(), text.to_string()));
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": id, "longId": format!("{id:024x}"), "text": text})),
            )
                .into_response()
        }
        ["v3", "queues", queue, "localFields"] => {
            if !s.queues.contains(*queue) {
                return error(StatusCode::NOT_FOUND, &["Queue does not exist."], json!({}));
            }
            match method {
                Method::GET => {
                    let list = s.local_fields.get(*queue).cloned().unwrap_or_default();
                    (StatusCode::OK, axum::Json(Value::Array(list))).into_response()
                }
                Method::POST => {
                    let body = recorded.body.clone().unwrap_or(Value::Null);
                    let (Some(short), Some(_name), Some(ty)) = (
                        body["id"].as_str(),
                        body["name"]["en"].as_str(),
                        body["type"].as_str(),
                    ) else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &["id, name and type are required."],
                            json!({}),
                        );
                    };
                    let full = format!("6063181a59590578909db920--{short}");
                    let field = json!({"id": full, "key": short, "name": body["name"]["en"], "schema": {"type": ty}});
                    s.local_fields
                        .entry(queue.to_string())
                        .or_default()
                        .push(field.clone());
                    s.fields.insert(full);
                    (StatusCode::CREATED, axum::Json(field)).into_response()
                }
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &["Method not allowed."],
                    json!({}),
                ),
            }
        }
        ["v3", "queues", queue, "triggers"] => {
            if !s.queues.contains(*queue) {
                return error(StatusCode::NOT_FOUND, &["Queue does not exist."], json!({}));
            }
            match method {
                Method::GET => {
                    let list = s.triggers.get(*queue).cloned().unwrap_or_default();
                    (StatusCode::OK, axum::Json(Value::Array(list))).into_response()
                }
                Method::POST => {
                    let mut body = recorded.body.clone().unwrap_or(Value::Null);
                    if body["name"].as_str().is_none() || !body["actions"].is_array() {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &["name and actions are required."],
                            json!({}),
                        );
                    }
                    let list = s.triggers.entry(queue.to_string()).or_default();
                    body["id"] = json!(list.len() + 1);
                    list.push(body.clone());
                    (StatusCode::CREATED, axum::Json(body)).into_response()
                }
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &["Method not allowed."],
                    json!({}),
                ),
            }
        }
        _ => error(StatusCode::NOT_FOUND, &["Not found."], json!({})),
    }
}

/// The default workflow: transition ids are not status keys.
pub const WORKFLOW: &[(&str, &str, &str)] = &[
    ("start_progress", "inProgress", "In progress"),
    ("send_to_testing", "readyForTest", "Ready for testing"),
    ("return_for_rework", "needsImprovement", "Needs improvement"),
    ("close_issue", "closed", "Closed"),
    ("reopen_issue", "open", "Open"),
];

fn status_of(s: &State, key: &str) -> Option<String> {
    s.issues.get(key)?["status"]["key"]
        .as_str()
        .map(str::to_string)
}

fn transitions(s: &State, key: &str, current: &str) -> Value {
    let all: Vec<(String, String)> = match s.workflows.get(key) {
        Some(w) => w.clone(),
        None => WORKFLOW
            .iter()
            .map(|(id, to, _)| (id.to_string(), to.to_string()))
            .collect(),
    };
    Value::Array(
        all.into_iter()
            .filter(|(_, to)| to != current)
            .map(|(id, to)| json!({"id": id, "display": format!("Go to {to}"), "to": {"key": to, "display": to}}))
            .collect(),
    )
}

fn execute(s: &mut State, key: &str, id: &str, body: Option<Value>) -> Response {
    let Some(current) = status_of(s, key) else {
        return error(StatusCode::NOT_FOUND, &["Issue does not exist."], json!({}));
    };
    let available = transitions(s, key, &current);
    let Some(to) = available
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .map(|t| t["to"]["key"].as_str().unwrap().to_string())
    else {
        return error(
            StatusCode::NOT_FOUND,
            &["Transition is not available."],
            json!({}),
        );
    };
    if let Some(c) = body.as_ref().and_then(|b| b["comment"].as_str()) {
        s.comments.push((key.to_string(), c.to_string()));
    }
    let issue = s.issues.get_mut(key).unwrap();
    issue.insert("status".into(), json!({"key": to, "display": to}));
    let version = issue["version"].as_i64().unwrap_or(1) + 1;
    issue.insert("version".into(), json!(version));
    s.executed.push((key.to_string(), id.to_string()));
    let next = transitions(s, key, &to);
    (StatusCode::OK, axum::Json(next)).into_response()
}

fn issue(s: &mut State, key: &str, method: &Method, body: Option<Value>) -> Response {
    let fields = s.fields.clone();
    let Some(issue) = s.issues.get_mut(key) else {
        return error(StatusCode::NOT_FOUND, &["Issue does not exist."], json!({}));
    };
    match *method {
        Method::GET => (StatusCode::OK, axum::Json(Value::Object(issue.clone()))).into_response(),
        Method::PATCH => {
            let Some(Value::Object(changes)) = body else {
                return error(StatusCode::BAD_REQUEST, &["Invalid JSON."], json!({}));
            };
            for k in changes.keys() {
                if !fields.contains(k) && k != "summary" && k != "description" {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &[],
                        json!({ k: "Field does not exist." }),
                    );
                }
            }
            for (k, v) in changes {
                if v.is_null() {
                    issue.remove(&k);
                } else {
                    issue.insert(k, v);
                }
            }
            let version = issue["version"].as_i64().unwrap_or(1) + 1;
            issue.insert("version".into(), json!(version));
            (StatusCode::OK, axum::Json(Value::Object(issue.clone()))).into_response()
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            &["Method not allowed."],
            json!({}),
        ),
    }
}

impl FakeTracker {
    /// Starts the fake with the token and organization it accepts, and the field `benchLink`.
    pub fn start(auth: Auth, org: Org) -> Self {
        let state = Arc::new(Mutex::new(State {
            auth,
            org,
            issues: HashMap::new(),
            fields: ["benchLink".to_string()].into_iter().collect(),
            requests: Vec::new(),
            faults: VecDeque::new(),
            queues: HashSet::new(),
            local_fields: HashMap::new(),
            triggers: HashMap::new(),
            comments: Vec::new(),
            executed: Vec::new(),
            workflows: HashMap::new(),
        }));
        let server = super::LoopbackServer::start(
            axum::Router::new()
                .fallback(handle)
                .with_state(state.clone()),
        );
        FakeTracker {
            url: server.url.clone(),
            state,
            _server: server,
        }
    }

    pub fn add_issue(&self, key: &str) -> &Self {
        let queue = key.split('-').next().unwrap();
        let issue = json!({
            "self": format!("{}/v3/issues/{key}", self.url),
            "id": format!("{:024x}", key.len() * 7919),
            "key": key,
            "version": 1,
            "summary": format!("Issue {key}"),
            "status": {"key": "open", "display": "Open"},
            "queue": {"key": queue},
        });
        let Value::Object(map) = issue else {
            unreachable!()
        };
        let mut s = self.state.lock().unwrap();
        s.issues.insert(key.to_string(), map);
        s.queues.insert(queue.to_string());
        drop(s);
        self
    }

    pub fn add_queue(&self, queue: &str) -> &Self {
        self.state.lock().unwrap().queues.insert(queue.to_string());
        self
    }

    /// Replaces the issue's workflow: (transition id, target status key).
    pub fn set_workflow(&self, key: &str, workflow: &[(&str, &str)]) -> &Self {
        self.state.lock().unwrap().workflows.insert(
            key.to_string(),
            workflow
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        );
        self
    }

    /// The issue's status key.
    pub fn status(&self, key: &str) -> Option<String> {
        status_of(&self.state.lock().unwrap(), key)
    }

    /// Transitions executed so far: (issue, transition id).
    pub fn executed(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().executed.clone()
    }

    /// Comments posted so far (directly or with a transition): (issue, text).
    pub fn comments(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().comments.clone()
    }

    pub fn local_fields(&self, queue: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .local_fields
            .get(queue)
            .cloned()
            .unwrap_or_default()
    }

    pub fn triggers(&self, queue: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .triggers
            .get(queue)
            .cloned()
            .unwrap_or_default()
    }

    pub fn fail_next(&self, status: u16, retry_after: Option<&'static str>) -> &Self {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: None,
            status,
            retry_after,
            delay: Duration::ZERO,
        });
        self
    }

    /// Moves the issue to a status (as a transition would).
    pub fn set_status(&self, key: &str, status: &str) -> &Self {
        let mut s = self.state.lock().unwrap();
        let issue = s.issues.get_mut(key).expect("known issue");
        issue.insert("status".into(), json!({ "key": status, "display": status }));
        self
    }

    /// Sets a field directly (as a person editing the issue would).
    pub fn put_field(&self, key: &str, field: &str, value: Value) -> &Self {
        let mut s = self.state.lock().unwrap();
        s.issues
            .get_mut(key)
            .expect("known issue")
            .insert(field.to_string(), value);
        self
    }

    /// The next request with `method` fails with `status` (others pass).
    pub fn fail_next_method(&self, method: &'static str, status: u16) -> &Self {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: Some(method),
            status,
            retry_after: None,
            delay: Duration::ZERO,
        });
        self
    }

    /// The next request is refused with 401 and an error message that repeats its
    /// `Authorization` header.
    pub fn echo_auth_next(&self) -> &Self {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: None,
            status: 1,
            retry_after: None,
            delay: Duration::ZERO,
        });
        self
    }

    /// The next request is answered normally, but only after `delay`.
    pub fn slow_next(&self, delay: Duration) -> &Self {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: None,
            status: 0,
            retry_after: None,
            delay,
        });
        self
    }

    /// The issue's field, or `None` when unset.
    pub fn field(&self, key: &str, field: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .issues
            .get(key)?
            .get(field)
            .cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn requests_for(&self, key: &str) -> Vec<Recorded> {
        let path = format!("/v3/issues/{key}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

/// Points a `benchctl` command at a fake Tracker: `.tracker(&t, token, org)` in its builder
/// chain sets the URL, the OAuth `token` and the organization `org`.
pub trait TrackerEnv {
    fn tracker(&mut self, t: &FakeTracker, token: &str, org: &str) -> &mut Self;
}

impl TrackerEnv for std::process::Command {
    fn tracker(&mut self, t: &FakeTracker, token: &str, org: &str) -> &mut Self {
        self.env("BENCHCTL_TRACKER_URL", &t.url)
            .env("BENCHCTL_TRACKER_TOKEN", token)
            .env("BENCHCTL_TRACKER_ORG_ID", org)
    }
}
