//! The accept loop: HTTP/1.1 connections served by hyper directly, because `axum::serve` has
//! neither a header read timeout nor a connection cap, and a few hundred clients that open a
//! socket and send nothing (or half a header) would otherwise hold it for ever.
//!
//! - At most `max_connections` connections are served at once. Beyond that the loop stops
//!   accepting and new clients wait in the kernel's listen queue, rather than each costing a
//!   task and a file descriptor: the service cannot run out of descriptors and fail
//!   `accept` for everyone.
//! - A connection must deliver a complete request head within `header_timeout` of opening, or
//!   of the previous response (so an idle keep-alive connection is closed after it too).
//!   Slots held by idle or slow clients therefore come back within that time.
//! - The body's deadline is the router's (`read_body_in_time` in the parent module).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The limits of each connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a request's head, from the connection's opening or the previous response.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting (new
/// connections are refused), lets every connection finish the request it is serving, and
/// waits for them for at most `drain`. Returns false when some were still open after it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> bool {
    // `acquire_many` counts in u32; nobody serves more connections than that at once.
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                // Never closed while this loop runs.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(found) => found,
                Err(e) => {
                    // Out of descriptors or memory, or a connection reset before it was
                    // accepted: none of them ends the service; pause so as not to spin.
                    eprintln!("serve: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // What `into_make_service_with_connect_info` would add: the rate limit needs it.
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                tower_service::Service::call(&mut app, request.map(Body::new))
                    .await
                    .map_err(|never: Infallible| match never {})
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            tokio::select! {
                // Errors here are the client's (reset, timed out, malformed): nothing to do.
                _ = connection.as_mut() => return,
                _ = stop.wait_for(|stopped| *stopped) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    // Refuse new connections at once rather than leave them in the listen queue.
    drop(listener);
    let _ = stop_tx.send(true);
    let all = slots.acquire_many(max);
    matches!(tokio::time::timeout(drain, all).await, Ok(Ok(_)))
}
