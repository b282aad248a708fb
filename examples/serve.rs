//! How the example apps serve (embed-axum spells the same out in its main): on the address `LISTEN` names (default
//! `127.0.0.1:3000`; `127.0.0.1:0` picks a free port), saying where, until
//! Ctrl-C. Then the hub ends its open streams, so that axum's graceful
//! shutdown, which waits for every request in flight (and a stream is one
//! until it ends), can finish; browsers reconnect and resume.

use axum::Router;
use tidings_hub::Hub;

pub(crate) async fn serve(app: Router, hub: Hub) -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::signal::ctrl_c().await.ok();
            hub.shutdown().await;
        })
        .await?;
    Ok(())
}
