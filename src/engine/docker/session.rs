//! benchctl's own BuildKit session with the engine, for builds that need build secrets: a
//! `POST /session` upgraded to HTTP/2 on the engine's socket, on which benchctl serves gRPC's
//! health check and BuildKit's `Secrets` service (each secret read from benchctl's environment
//! or a file when the build asks for it; the value goes to the engine and nowhere else). The
//! build names the session by its id. Only an engine on a local socket is reached this way.
//!
//! Reference followed: moby's session manager (`session/manager.go`: the `Upgrade: h2c`
//! request and its `X-Docker-Expose-Session-*` headers) and BuildKit's secrets protocol
//! (`session/secrets/secrets.proto`), as bollard's own session speaks them.

use crate::{Error, Result};
use bollard::health::health_server::{Health, HealthServer};
use bollard::health::{
    health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse,
    HealthListRequest, HealthListResponse,
};
use bollard::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use tonic::{Request, Response, Status};

/// Where a build secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of benchctl's.
    Env(String),
    /// A file on benchctl's machine.
    File(PathBuf),
}

/// The largest secret served (BuildKit's own limit is 500 KiB).
const MAX_SECRET: u64 = 500 * 1024;

struct SecretStore(BTreeMap<String, SecretSource>);

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> std::result::Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        let data = match self.0.get(id) {
            None => return Err(Status::not_found(format!("no build secret `{id}`"))),
            Some(SecretSource::Env(name)) => std::env::var_os(name)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| {
                    Status::failed_precondition(format!(
                        "build secret `{id}`: the environment variable {name} is not set"
                    ))
                })?,
            Some(SecretSource::File(path)) => {
                let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                if len > MAX_SECRET {
                    return Err(Status::failed_precondition(format!(
                        "build secret `{id}`: {} is larger than {MAX_SECRET} bytes",
                        path.display()
                    )));
                }
                std::fs::read(path).map_err(|e| {
                    Status::failed_precondition(format!(
                        "build secret `{id}`: cannot read {}: {e}",
                        path.display()
                    ))
                })?
            }
        };
        Ok(Response::new(GetSecretResponse { data }))
    }
}

struct Serving;

#[tonic::async_trait]
impl Health for Serving {
    type WatchStream = Pin<
        Box<
            dyn futures_util::Stream<Item = std::result::Result<HealthCheckResponse, Status>>
                + Send,
        >,
    >;

    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> std::result::Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _: Request<HealthListRequest>,
    ) -> std::result::Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> std::result::Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// The upgraded connection, as tonic serves on it.
struct Conn(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A session served until dropped.
pub(crate) struct Session(tokio::task::JoinHandle<()>);

impl Drop for Session {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the session `id` on the engine's local socket `socket` and serves `secrets` on it.
pub(crate) async fn open(
    socket: &str,
    id: &str,
    secrets: BTreeMap<String, SecretSource>,
) -> Result<Session> {
    let failed = |what: String| {
        Error::Engine(format!(
            "cannot open a BuildKit session with the engine at unix://{socket} for the build's \
             secrets: {what}"
        ))
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(conn.with_upgrades());
    let methods = [
        "/grpc.health.v1.Health/Check",
        "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    ];
    let mut request = hyper::Request::builder()
        .method("POST")
        .uri("/session")
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", id)
        .header("X-Docker-Expose-Session-Name", "benchctl")
        .header("X-Docker-Expose-Session-Sharedkey", id);
    for m in methods {
        request = request.header("X-Docker-Expose-Session-Grpc-Method", m);
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        return Err(failed(format!("the engine answered {}", response.status())));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let conn = Conn(TokioIo::new(upgraded));
    let serve = tonic::transport::Server::builder()
        .add_service(HealthServer::new(Serving))
        .add_service(SecretsServer::new(SecretStore(secrets)))
        .serve_with_incoming(futures_util::stream::iter([Ok::<_, std::io::Error>(conn)]));
    let task = tokio::spawn(async move {
        let _ = serve.await;
    });
    // the engine registers the session right after it answered; a build naming it waits for it
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok(Session(task))
}
