//! A fake Yandex Tracker on 127.0.0.1 that follows `shared/reference/tracker-api.md`: auth and
//! organization headers, `GET`/`PATCH /v3/issues/<key>`, error bodies with `errorMessages`,
//! 404 for unknown issues, 422 for unknown fields, growing `version`, and injectable faults.

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
}

pub struct FakeTracker {
    pub url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
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
    let Some(key) = recorded.path.strip_prefix("/v3/issues/") else {
        return error(StatusCode::NOT_FOUND, &["Not found."], json!({}));
    };
    if key.contains('/') {
        return error(StatusCode::NOT_FOUND, &["Not found."], json!({}));
    }
    let key = key.to_string();
    let fields = s.fields.clone();
    let Some(issue) = s.issues.get_mut(&key) else {
        return error(StatusCode::NOT_FOUND, &["Issue does not exist."], json!({}));
    };
    match method {
        Method::GET => (StatusCode::OK, axum::Json(Value::Object(issue.clone()))).into_response(),
        Method::PATCH => {
            let Some(Value::Object(changes)) = recorded.body.clone() else {
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
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(st);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FakeTracker {
            url,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
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
        self.state
            .lock()
            .unwrap()
            .issues
            .insert(key.to_string(), map);
        self
    }

    pub fn add_field(&self, field: &str) -> &Self {
        self.state.lock().unwrap().fields.insert(field.to_string());
        self
    }

    pub fn remove_field(&self, field: &str) -> &Self {
        self.state.lock().unwrap().fields.remove(field);
        self
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

impl Drop for FakeTracker {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
