//! Serving a simulator's router on a socket, and stopping it when its owner drops it.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};

use crate::control::{Control, LostAnswer};

/// A running HTTP server. Dropping it stops the server.
pub struct Server {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `app` on `listen` (`127.0.0.1:0` picks a free port).
    pub async fn start(
        app: axum::Router,
        listen: &str,
        name: &'static str,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, simulator = name, "simulator stopped");
            }
        });
        Ok(Self {
            addr,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process is stopped.
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The answer to a saved write, or the way [`crate::control::Control::lost_answer`] says
/// it is lost.
pub async fn lose_answer(control: &Control, endpoint: &str, response: Response) -> Response {
    match control.lost_answer(endpoint) {
        None => response,
        Some(LostAnswer::BadGateway) => (
            axum::http::StatusCode::BAD_GATEWAY,
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Some(LostAnswer::DropConnection) => {
            let (parts, _) = response.into_parts();
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection dropped by the simulated gateway",
                ))
            });
            Response::from_parts(parts, axum::body::Body::from_stream(broken))
        }
        Some(LostAnswer::Late(delay)) => {
            tokio::time::sleep(delay).await;
            response
        }
    }
}
