//! `bulletin serve`: the public web service (unsubscribe, subscribe and confirm, archive).
//!
//! Refuses to start without a real token secret, because a default secret would let anyone
//! forge unsubscribe links; `--insecure-dev-secret` is the one way round it, for a preview on
//! this machine only, and is refused on any address but loopback. Stops on SIGTERM or Ctrl-C:
//! it stops accepting, lets requests in flight finish and confirmation mails go out (for at
//! most [`DRAIN`]), then exits 0.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::{Context, Outcome, UsageError};
use crate::store::Store;
use crate::token::Keys;
use crate::web::{self, AppState, ConfirmationMailer, Settings, WebError};

/// The longest a shutdown waits for requests and mails in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// A secret everyone can read in this file: good for nothing but a local preview.
const DEV_SECRET: &str = "bulletin-insecure-development-secret-do-not-deploy";

/// `bulletin serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (overrides [server] listen; port 0 picks a free one)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Sign links with a built-in, publicly known secret when none is configured: for a
    /// preview on this machine only (refused unless listening on loopback)
    #[arg(long)]
    pub insecure_dev_secret: bool,
}

pub(crate) async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<Outcome> {
    let config = &ctx.config;
    let listen = args.listen.unwrap_or_else(|| config.server.listen.clone());
    let addr: SocketAddr = listen.parse().map_err(|_| {
        UsageError(format!(
            "`{listen}` is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:8080"
        ))
    })?;
    let previous = config.previous_token_secrets()?;
    let keys = match config.token_secret()? {
        Some(secret) => Keys::new(&secret, &previous)?,
        None if args.insecure_dev_secret => {
            if !addr.ip().is_loopback() {
                return Err(UsageError(format!(
                    "--insecure-dev-secret is for local previews: it is refused on {addr}; \
                     listen on 127.0.0.1, or set BULLETIN_SECRET (e.g. `openssl rand -hex 32`)"
                ))
                .into());
            }
            eprintln!(
                "warning: signing links with the insecure development secret; \
                 links made now will not work once a real secret is set"
            );
            Keys::new(&crate::config::Secret::new(DEV_SECRET), &previous)?
        }
        None => {
            return Err(UsageError(
                "no token secret is configured: set BULLETIN_SECRET or [server] secret_file \
                 (at least 32 characters, e.g. `openssl rand -hex 32 > secret.key`); \
                 for a local preview only, pass --insecure-dev-secret"
                    .into(),
            )
            .into());
        }
    };
    let mut settings = Settings::from_config(config)?;
    settings.log_requests = !ctx.quiet;
    let mailer = ConfirmationMailer::from_config(config)?;
    // Open the database now to catch a wrong URL or schema at once; a database that is only
    // unavailable (missing, locked) does not stop the service, which answers 503 and tries
    // again on each request. `serve` never creates the file: an unsubscribe recorded in a
    // fresh file that `send` does not read would be lost.
    let db = &config.database;
    let url = config.database_connect_url()?;
    let store = match Store::open_existing(&url, db.busy_timeout_ms).await {
        Ok(store) => Some(store),
        Err(e) if e.is_input_error() => return Err(e.into()),
        Err(e) => {
            eprintln!("warning: {e}; serving 503 until it opens");
            None
        }
    };
    let state = AppState::new(settings.clone(), keys, mailer, store);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Listen {
            addr: listen.clone(),
            source,
        })?;
    let local = listener.local_addr().context("no local address")?;
    // The stop signals are taken over before the port is announced: a SIGTERM that comes
    // right after "listening on" (a service manager, a test) must stop the service
    // gracefully, never meet the default action that kills the process mid-request.
    let stop_signal =
        shutdown_signal().context("cannot install the SIGTERM and SIGINT handlers")?;
    // Always printed, even with --quiet: it is how an operator (or a test) finds the port.
    eprintln!("serve: listening on http://{local}");
    let limits = web::ConnectionLimits {
        max_connections: settings.max_connections,
        header_timeout: settings.header_timeout,
    };
    let shutdown = async {
        stop_signal.await;
        eprintln!("serve: stopping: finishing requests in flight");
    };
    // A client holding a connection open must not keep the process alive for ever.
    if !web::serve(
        listener,
        web::router(state.clone()),
        limits,
        shutdown,
        DRAIN,
    )
    .await
    {
        eprintln!(
            "serve: requests still open after {}s; stopping anyway",
            DRAIN.as_secs()
        );
    }
    if !state.drain(DRAIN).await {
        eprintln!("serve: confirmation mails still pending were abandoned");
    }
    eprintln!("serve: stopped");
    Ok(Outcome::Success)
}

/// A future that resolves on SIGTERM (service managers, containers) or Ctrl-C (SIGINT). The
/// handlers are installed by this call, not when the future is first polled, so that the
/// signals are caught from here on.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
