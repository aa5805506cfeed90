//! Serving a simulator's router on a socket, and stopping it when its owner drops it.

use std::net::SocketAddr;

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
