//! The public web service (`bulletin serve`): what subscribers meet when they press
//! "unsubscribe" in their mail program, open the link in a footer, fill in the subscription
//! form, confirm it, or read a past edition.
//!
//! It is built to sit on the public internet, behind a TLS-terminating reverse proxy:
//!
//! - Links carry signed tokens ([`crate::token`]); anything that does not verify gets the same
//!   friendly 404 and changes nothing, so a forger learns nothing.
//! - A GET never changes state, because mail scanners and link previewers follow every link;
//!   only POSTs do (RFC 8058 one-click, or a button on the page). The one write a GET makes is
//!   a click counter of `/c/{token}` (`clicks.rs`), which belongs to no one.
//! - A click redirect goes only to an address stored for the campaign its token names.
//! - Bodies are capped at [`BODY_LIMIT`] and must arrive within `[server] body_timeout_secs`;
//!   request heads within `header_timeout_secs`; at most `max_connections` are served at once
//!   ([`serve`]). The subscription form is rate limited per client address and per recipient;
//!   every database call has a deadline and answers 503 rather than hanging.
//! - Pages carry a strict Content-Security-Policy, `Referrer-Policy: no-referrer` and
//!   `X-Content-Type-Options: nosniff`, load nothing from elsewhere and track nobody.
//! - One log line per request names the route pattern (`/u/{token}`), never the token, the
//!   address or the client's IP.
//!
//! The database is never created here (an operator's command does that). It is opened lazily
//! and re-tried on every request while it is missing or unavailable, so a service started
//! before its volume is mounted answers 503 on every route that needs it (and `/healthz` says
//! so) and recovers by itself once the file exists. An unsubscribe that meets another
//! process's write lock is held and retried (up to 25 s) rather than answered with a 503.

mod archive;
pub(crate) mod assets;
mod clicks;
mod confirmation_mail;
mod limits;
mod pages;
mod preferences;
mod server;
mod subscribe;
mod unsubscribe;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{OnceCell, Semaphore};

use crate::config::Config;
use crate::store::{LinkTarget, ListText, Store, StoreError};
use crate::token::{Claims, Keys, Purpose, TokenError};

pub use confirmation_mail::ConfirmationMailer;
pub use pages::{Arg, Lang, PageWords, Words, escape};
pub use server::{ConnectionLimits, serve};

/// Largest request body accepted. A one-click POST is 26 bytes, the subscription form a few
/// hundred; anything bigger is not from a mail program or our own pages.
pub const BODY_LIMIT: usize = 16 * 1024;

/// How many confirmation mails may be in flight at once; more wait their turn.
const MAIL_CONCURRENCY: u32 = 16;

/// How long an unsubscribe is held while another process holds the database's write lock,
/// before it gets a 503. Mail providers' one-click POSTs time out after 30 s or more.
const OPT_OUT_PATIENCE: Duration = Duration::from_secs(25);

/// The pause between two tries for a write lock held by another process.
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What can stop the service from starting, or a request from being served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A setting that cannot work (the `[list] from` address, the SMTP URL, ...).
    #[error("{origin}: {message}")]
    Config {
        /// Where the value came from.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The confirmation mail could not be built.
    #[error("cannot build the confirmation mail: {0}")]
    Mail(String),
    /// The SMTP relay refused or could not be reached.
    #[error("cannot send the confirmation mail through {relay}: {message}")]
    Smtp {
        /// The relay's URL, without credentials.
        relay: String,
        /// The transport's error.
        message: String,
    },
    /// The address to listen on is taken or not ours.
    #[error("cannot listen on {addr}: {source}; pick another with --listen or [server] listen")]
    Listen {
        /// As given.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the web service stopped: {0}")]
    Serve(std::io::Error),
}

impl WebError {
    /// True when the error is the operator's to fix in the configuration or arguments.
    pub fn is_input_error(&self) -> bool {
        matches!(self, Self::Config { .. } | Self::Listen { .. })
    }
}

/// The settings of the service, taken from the configuration once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The newsletter's name, shown at the top of every page and in the mail.
    pub site_name: String,
    /// Base of the links in mails (`https://news.example.org`).
    pub public_url: String,
    /// Path prefix of `public_url` (`""` or `/news`), for the forms' actions.
    pub base_path: String,
    /// Validity of confirm links, in seconds.
    pub confirm_ttl_secs: i64,
    /// Where `compose` writes: `<slug>/<lang>/archive.html`.
    pub archive_dir: PathBuf,
    /// Subscription requests per client and hour.
    pub subscribe_limit_per_hour: u32,
    /// At most one confirmation mail per address in this many seconds (0: no limit).
    pub confirm_cooldown_secs: i64,
    /// Time allowed for a request's head (and an idle keep-alive connection).
    pub header_timeout: Duration,
    /// Time allowed for a request's body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Header that a trusted proxy sets to the client address.
    pub client_ip_header: Option<HeaderName>,
    /// The database URL and busy timeout, for the lazy open.
    pub database_url: String,
    /// SQLite's busy timeout.
    pub busy_timeout_ms: u64,
    /// Print one line per request on stderr.
    pub log_requests: bool,
    /// The words of the pages and the confirmation mail: the built-in catalogues with the
    /// project's `locales/` folder on top.
    pub words: Arc<PageWords>,
}

impl Settings {
    /// The settings `config` describes.
    pub fn from_config(config: &Config) -> Result<Self, WebError> {
        let public_url = config.list.public_url.trim_end_matches('/').to_string();
        let base_path = public_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_default();
        let client_ip_header = match &config.server.client_ip_header {
            None => None,
            Some(name) => Some(HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                WebError::Config {
                    origin: "[server] client_ip_header".into(),
                    message: format!(
                        "`{name}` is not a header name; use X-Real-IP or X-Forwarded-For"
                    ),
                }
            })?),
        };
        let hours = i64::try_from(config.server.confirm_ttl_hours).unwrap_or(i64::MAX / 3600);
        // A project's `locales/` folder sits beside its bulletin.toml, as for `compose`.
        let locales = config
            .source
            .as_ref()
            .and_then(|file| file.parent())
            .map(|dir| dir.join("locales"));
        let words = PageWords::load(locales.as_deref()).map_err(|e| WebError::Config {
            origin: "locales/".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            site_name: config.list.name.clone(),
            public_url,
            base_path,
            confirm_ttl_secs: hours.saturating_mul(3600),
            archive_dir: config.server.archive_dir.clone(),
            subscribe_limit_per_hour: config.server.subscribe_limit_per_hour,
            confirm_cooldown_secs: i64::try_from(config.server.confirm_cooldown_minutes)
                .unwrap_or(i64::MAX / 60)
                .saturating_mul(60),
            header_timeout: Duration::from_secs(config.server.header_timeout_secs),
            body_timeout: Duration::from_secs(config.server.body_timeout_secs),
            max_connections: usize::try_from(config.server.max_connections).unwrap_or(usize::MAX),
            client_ip_header,
            database_url: config
                .database_connect_url()
                .map_err(|e| WebError::Config {
                    origin: "[database]".into(),
                    message: e.to_string(),
                })?,
            busy_timeout_ms: config.database.busy_timeout_ms,
            log_requests: true,
            words: Arc::new(words),
        })
    }
}

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    keys: Keys,
    store: OnceCell<Store>,
    mailer: ConfirmationMailer,
    limiter: limits::RateLimiter,
    /// Serialises this process's writes. SQLite has one writer; several pooled connections
    /// racing for it fall back on SQLite's sleeping busy handler, which under a burst of
    /// one-clicks turns milliseconds into seconds and can run out the busy timeout. Waiting
    /// here instead is first come, first served, and costs nothing when there is no burst.
    write_gate: tokio::sync::Mutex<()>,
    /// Bounds the confirmation mails in flight, and lets shutdown wait for them.
    mail_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Why a request could not be served as asked; each becomes a page.
#[derive(Debug)]
pub(crate) enum Denied {
    /// Invalid, forged, truncated or revoked link, or an unknown page.
    NotFound,
    /// A confirm link past its validity.
    Expired,
    /// A confirm or undo link whose event is no longer the subscription's latest change (used,
    /// replaced, or overtaken by an opt-out), or an undo past its few minutes: only a fresh
    /// sign-up on `list` can subscribe again.
    Stale {
        /// The list's internal name for the form's link, when the form offers it.
        list: Option<String>,
    },
    /// The database did not answer in time or failed.
    Unavailable,
}

impl AppState {
    /// The state for `settings`; `store` is an already open database, or `None` to open it on
    /// the first request that needs it.
    pub fn new(
        settings: Settings,
        keys: Keys,
        mailer: ConfirmationMailer,
        store: Option<Store>,
    ) -> Self {
        let limiter = limits::RateLimiter::new(settings.subscribe_limit_per_hour);
        Self {
            inner: Arc::new(Inner {
                settings,
                keys,
                store: OnceCell::new_with(store),
                mailer,
                limiter,
                write_gate: tokio::sync::Mutex::new(()),
                mail_slots: Arc::new(Semaphore::new(MAIL_CONCURRENCY as usize)),
            }),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The words of the pages in `lang`.
    pub(crate) fn pages(&self, lang: Lang) -> Words<'_> {
        self.inner.settings.words.pages(lang)
    }

    /// The language of a request without a subscriber: `?lang=` is handled by the handlers
    /// that take a query; this looks at `Accept-Language`.
    pub(crate) fn browser_lang(&self, headers: &HeaderMap) -> Lang {
        self.inner
            .settings
            .words
            .negotiate(None, None, accept_language(headers))
    }

    /// The language of a page about one subscriber: theirs, else the browser's.
    pub(crate) fn subscriber_lang(&self, target: &LinkTarget, headers: &HeaderMap) -> Lang {
        self.inner.settings.words.negotiate(
            None,
            target.language.as_deref(),
            accept_language(headers),
        )
    }

    /// Picks a language: explicit, the subscriber's, the browser's, English.
    pub(crate) fn negotiate(
        &self,
        explicit: Option<&str>,
        subscriber: Option<&str>,
        headers: &HeaderMap,
    ) -> Lang {
        self.inner
            .settings
            .words
            .negotiate(explicit, subscriber, accept_language(headers))
    }

    /// How long a database call may take before the request gets a 503: the busy timeout
    /// (SQLite's own wait for another process's lock) and a little more.
    fn db_deadline(&self) -> Duration {
        Duration::from_millis(self.inner.settings.busy_timeout_ms) + Duration::from_secs(2)
    }

    /// The store, opening it if that has not succeeded yet.
    async fn store(&self) -> Result<&Store, Denied> {
        let settings = &self.inner.settings;
        let opened = self
            .inner
            .store
            // Never `Store::open`, which creates a missing file: an opt-out recorded in a fresh
            // file that `send` does not read would be lost.
            .get_or_try_init(|| {
                Store::open_existing(&settings.database_url, settings.busy_timeout_ms)
            });
        match tokio::time::timeout(self.db_deadline(), opened).await {
            Ok(Ok(store)) => Ok(store),
            Ok(Err(e)) => {
                log_store_error(&e);
                Err(Denied::Unavailable)
            }
            Err(_) => {
                eprintln!("serve: the database did not open in time");
                Err(Denied::Unavailable)
            }
        }
    }

    /// Runs a read against the store with a deadline.
    pub(crate) async fn read<'a, T, F, Fut>(&'a self, f: F) -> Result<T, Denied>
    where
        F: FnOnce(&'a Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + 'a,
    {
        let store = self.store().await?;
        match tokio::time::timeout(self.db_deadline(), f(store)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                log_store_error(&e);
                Err(Denied::Unavailable)
            }
            Err(_) => {
                eprintln!("serve: a database read took too long");
                Err(Denied::Unavailable)
            }
        }
    }

    /// Runs a write against the store, one at a time in this process, with a deadline that
    /// includes the wait for the turn: a person at a browser gets a 503 ("nothing was
    /// changed, try again") rather than a page that hangs.
    pub(crate) async fn write<'a, T, F, Fut>(&'a self, f: F) -> Result<T, Denied>
    where
        F: Fn(&'a Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + 'a,
    {
        self.write_within(f, self.db_deadline()).await
    }

    /// Runs an opt-out, which must not be lost: a mail provider's one-click POST is often never
    /// retried. While another process holds the write lock (a long import, an operator's
    /// `sqlite3`), the request is held and tried again until it is recorded, for up to
    /// [`OPT_OUT_PATIENCE`]; only then does it get a 503.
    pub(crate) async fn write_opt_out<'a, T, F, Fut>(&'a self, f: F) -> Result<T, Denied>
    where
        F: Fn(&'a Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + 'a,
    {
        self.write_within(f, OPT_OUT_PATIENCE.max(self.db_deadline()))
            .await
    }

    /// Tries `f` until it succeeds, fails for another reason than the lock, or `patience`
    /// runs out. Each try waits SQLite's busy timeout for the lock; a try that finds it still
    /// taken is repeated after a short pause, so the last one ends near the deadline.
    async fn write_within<'a, T, F, Fut>(&'a self, f: F, patience: Duration) -> Result<T, Denied>
    where
        F: Fn(&'a Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + 'a,
    {
        let store = self.store().await?;
        let give_up = Instant::now() + patience;
        let work = async {
            loop {
                let result = {
                    let _turn = self.inner.write_gate.lock().await;
                    f(store).await
                };
                match result {
                    Err(StoreError::Locked { .. })
                        if Instant::now() + LOCK_RETRY_PAUSE < give_up =>
                    {
                        tokio::time::sleep(LOCK_RETRY_PAUSE).await;
                    }
                    other => return other,
                }
            }
        };
        match tokio::time::timeout_at(give_up.into(), work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                log_store_error(&e);
                Err(Denied::Unavailable)
            }
            Err(_) => {
                eprintln!("serve: a database write took too long");
                Err(Denied::Unavailable)
            }
        }
    }

    /// Waits (at most `within`) for confirmation mails still being sent, before exiting.
    pub async fn drain(&self, within: Duration) -> bool {
        let all = self.inner.mail_slots.acquire_many(MAIL_CONCURRENCY);
        matches!(tokio::time::timeout(within, all).await, Ok(Ok(_)))
    }
}

fn log_store_error(e: &StoreError) {
    // Store errors name the database file and the driver's message, never an address.
    eprintln!("serve: database unavailable: {e}");
}

/// The router of every public route. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that the rate limit sees the
/// client's address.
pub fn router(state: AppState) -> Router {
    let log = state.settings().log_requests;
    let mut app = Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route(
            crate::mail::Personaliser::TEST_COPY_PATH,
            get(unsubscribe::test_copy).post(unsubscribe::test_copy),
        )
        .route(
            "/u/{token}",
            get(unsubscribe::page).post(unsubscribe::one_click),
        )
        .route("/u/{token}/resubscribe", post(unsubscribe::resubscribe))
        .route("/u/{token}/all", post(unsubscribe::leave_all))
        .route(
            crate::mail::Personaliser::TEST_PREFERENCES_PATH,
            get(preferences::test_copy).post(preferences::test_copy),
        )
        .route("/p/{token}", get(preferences::page).post(preferences::save))
        .route("/p/{token}/all", post(preferences::leave_all))
        // A GET here writes a click counter, never a subscription (see web/clicks.rs).
        .route("/c/{token}", get(clicks::follow))
        .route("/subscribe", get(subscribe::form).post(subscribe::submit))
        .route(
            "/confirm/{token}",
            get(subscribe::confirm_page).post(subscribe::confirm),
        )
        .route("/archive", get(archive::redirect))
        .route("/archive/", get(archive::index))
        .route("/archive/{slug}/{lang}", get(archive::edition))
        .route("/archive/{slug}/{lang}/", get(archive::edition))
        .route("/archive/{slug}/assets/{name}", get(assets::file))
        // The web version's footer links here: there is no subscriber to act for.
        .route("/unsubscribe", get(generic_unsubscribe))
        .route("/preferences", get(generic_preferences))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            read_body_in_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_oversized,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(state);
    if log {
        app = app.layer(middleware::from_fn(log_request));
    }
    app
}

/// The name of a list as people read it in language `tag`: its display name in that language
/// (or the fallback [`crate::store::pick_text`] chooses), else the newsletter's name. Never
/// the internal list name, which is the operator's identifier, not a title.
pub(crate) fn list_title(state: &AppState, tag: &str, texts: &[ListText]) -> String {
    crate::store::pick_text(texts, tag).map_or_else(
        || state.settings().site_name.clone(),
        |t| t.display_name.clone(),
    )
}

/// The internal name of the list a link is about, for a link to the form: only when the
/// form offers that list.
pub(crate) fn form_list(target: &LinkTarget) -> Option<String> {
    target.list_public.then(|| target.list_name.clone())
}

/// The `Accept-Language` header, when it is text.
pub(crate) fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// Verifies a signed link of `purpose` (unsubscribe links never expire: laws require a link
/// in an old message to keep working; confirm links last `[server] confirm_ttl_hours`) and
/// returns its claims and what it points at.
pub(crate) async fn resolve_link(
    state: &AppState,
    token: &str,
    purpose: Purpose,
) -> Result<(Claims, LinkTarget), Denied> {
    let claims = crate::token::read(token).map_err(|_| Denied::NotFound)?;
    if claims.purpose != purpose {
        return Err(Denied::NotFound);
    }
    let target = state
        .read(|store| store.link_target(claims.subscriber_id, claims.list_id))
        .await?
        .ok_or(Denied::NotFound)?;
    let ttl = (purpose == Purpose::Confirm).then(|| state.settings().confirm_ttl_secs);
    match state
        .keys()
        .verify(token, &target.nonce, purpose, unix_now(), ttl)
    {
        Ok(_) => {
            // Only now: a forged link must cost one read, not two.
            let mut target = target;
            target.list_texts = state
                .read(|store| store.list_texts(Some(claims.list_id)))
                .await?;
            Ok((claims, target))
        }
        Err(TokenError::Expired) => Err(Denied::Expired),
        Err(_) => Err(Denied::NotFound),
    }
}

/// A 200 page in `lang` with the site's name.
pub(crate) fn page_ok(state: &AppState, lang: Lang, title: &str, body: &str) -> Response {
    html(
        StatusCode::OK,
        pages::page(lang, &state.settings().site_name, title, body),
    )
}

/// A page with a status.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A refusal on its way to becoming a page. Handlers return `Result<Response, PageError>` and
/// bail out with `?`; the page, in the visitor's language and with the right status, is made in
/// one place ([`denied`], [`rejected`]).
pub(crate) struct PageError {
    state: AppState,
    lang: Lang,
    why: Refusal,
}

enum Refusal {
    Denied(Denied),
    /// A body or form the extractor refused, with its status.
    Rejected(StatusCode),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self.why {
            Refusal::Denied(why) => denied(&self.state, self.lang, why),
            Refusal::Rejected(status) => rejected(&self.state, self.lang, status),
        }
    }
}

impl AppState {
    /// The refusal `why`, as a page in `lang`.
    pub(crate) fn refuse(&self, lang: Lang, why: Denied) -> PageError {
        PageError {
            state: self.clone(),
            lang,
            why: Refusal::Denied(why),
        }
    }

    /// A request the extractors refused with `status`, as a page in `lang`.
    pub(crate) fn reject(&self, lang: Lang, status: StatusCode) -> PageError {
        PageError {
            state: self.clone(),
            lang,
            why: Refusal::Rejected(status),
        }
    }
}

/// The page for a refusal, in `lang`.
pub(crate) fn denied(state: &AppState, lang: Lang, why: Denied) -> Response {
    let s = state.pages(lang);
    let site = &state.settings().site_name;
    match why {
        Denied::NotFound => html(
            StatusCode::NOT_FOUND,
            pages::page(
                lang,
                site,
                &s.text("not-found-title"),
                &pages::para(&s.html("not-found-body")),
            ),
        ),
        Denied::Expired => {
            let days = (state.settings().confirm_ttl_secs / 86_400).max(1);
            let body = format!(
                "{}{}",
                pages::para(&s.html_with("expired-body", &[("days", Arg::Number(days))])),
                subscribe_link(state, lang, None)
            );
            html(
                StatusCode::GONE,
                pages::page(lang, site, &s.text("expired-title"), &body),
            )
        }
        Denied::Stale { list } => {
            let body = format!(
                "{}{}",
                pages::para(&s.html("stale-body")),
                subscribe_link(state, lang, list.as_deref())
            );
            html(
                StatusCode::GONE,
                pages::page(lang, site, &s.text("stale-title"), &body),
            )
        }
        Denied::Unavailable => {
            let mut response = html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::page(
                    lang,
                    site,
                    &s.text("unavailable-title"),
                    &pages::para(&s.html("unavailable-body")),
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            response
        }
    }
}

/// A paragraph with a link to the subscription form (for `list`, when given): the one way
/// back after an opt-out, through a fresh double opt-in.
pub(crate) fn subscribe_link(state: &AppState, lang: Lang, list: Option<&str>) -> String {
    let list = list.map_or_else(String::new, |l| format!("&list={}", url_component(l)));
    format!(
        "<p><a href=\"{}/subscribe?lang={}{}\">{}</a></p>",
        pages::escape(&state.settings().base_path),
        lang.tag(),
        pages::escape(&list),
        state.pages(lang).html("home-subscribe")
    )
}

/// Percent-encodes a query value (list names are plain, but nothing here relies on it).
fn url_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = state.browser_lang(&headers);
    let s = state.pages(lang);
    let base = pages::escape(&state.settings().base_path);
    let body = format!(
        "<ul><li><a href=\"{base}/subscribe?lang={tag}\">{sub}</a></li>\
         <li><a href=\"{base}/archive/\">{arch}</a></li></ul>",
        tag = lang.tag(),
        sub = s.html("home-subscribe"),
        arch = s.html("home-archive"),
    );
    let site = &state.settings().site_name;
    html(StatusCode::OK, pages::page(lang, site, site, &body))
}

/// For load balancers and the tests: 200 when the database answers, 503 when not.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.read(|store| store.ping()).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response(),
    }
}

/// The archive's "unsubscribe" link has no token: explain where the personal link is.
async fn generic_unsubscribe(State(state): State<AppState>, headers: HeaderMap) -> Response {
    explanation(
        &state,
        &headers,
        "generic-unsubscribe-title",
        "generic-unsubscribe-body",
    )
}

/// The archive's "Manage preferences" link has no token either: the same, for preferences.
async fn generic_preferences(State(state): State<AppState>, headers: HeaderMap) -> Response {
    explanation(&state, &headers, "prefs-title", "generic-preferences-body")
}

/// A page of one paragraph, in the browser's language: messages `title` and `body`.
fn explanation(state: &AppState, headers: &HeaderMap, title: &str, body: &str) -> Response {
    let lang = state.browser_lang(headers);
    let s = state.pages(lang);
    let site = &state.settings().site_name;
    let page = pages::page(lang, site, &s.text(title), &pages::para(&s.html(body)));
    html(StatusCode::OK, page)
}

async fn fallback(State(state): State<AppState>, headers: HeaderMap) -> Response {
    denied(&state, state.browser_lang(&headers), Denied::NotFound)
}

/// Refuses a body announced larger than [`BODY_LIMIT`] before reading any of it: the body
/// extractors would first answer `100 Continue` and read up to the limit.
async fn refuse_oversized(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        let lang = state.browser_lang(request.headers());
        return rejected(&state, lang, StatusCode::PAYLOAD_TOO_LARGE);
    }
    next.run(request).await
}

/// Reads the whole body (at most [`BODY_LIMIT`]) within `[server] body_timeout_secs` before
/// any handler runs, so that a client trickling its body cannot hold a handler (and, for a
/// write, this process's turn at the database) for ever: 408 and the connection closed.
async fn read_body_in_time(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, BODY_LIMIT);
    let status = match tokio::time::timeout(state.settings().body_timeout, read).await {
        Ok(Ok(bytes)) => return next.run(Request::from_parts(parts, bytes.into())).await,
        // Longer than the limit without announcing it (chunked), or the client went away.
        Ok(Err(_)) => StatusCode::PAYLOAD_TOO_LARGE,
        Err(_) => StatusCode::REQUEST_TIMEOUT,
    };
    let mut response = rejected(&state, state.browser_lang(&parts.headers), status);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Adds the security headers every response needs; a handler that sets its own CSP (the
/// archive) keeps it.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(csp) = HeaderValue::from_str(&pages::PAGE_CSP) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
    }
    // Pages reached by a personal link must not leak it. The subscription form sets its own
    // (`same-origin`) so that its POST carries a real `Origin` for the cross-site check.
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages reached by a personal link must not sit in a shared cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One line per request: method, route pattern, status, time. The pattern, not the path,
/// so that tokens (which identify a subscriber) never reach the log.
async fn log_request(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    eprintln!(
        "serve: {method} {route} {} {:.1}ms",
        response.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// Unix seconds now, for token ages.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Turns a body or form rejection into a page with the right status.
pub(crate) fn rejected(state: &AppState, lang: Lang, status: StatusCode) -> Response {
    let s = state.pages(lang);
    let site = &state.settings().site_name;
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        html(
            status,
            pages::page(lang, site, &s.text("too-large-title"), ""),
        )
    } else {
        let status = if status.is_client_error() {
            status
        } else {
            StatusCode::BAD_REQUEST
        };
        html(
            status,
            pages::page(
                lang,
                site,
                &s.text("bad-request-title"),
                &pages::para(&s.html("bad-request-body")),
            ),
        )
    }
}
