//! `/u/{token}`: the link in `List-Unsubscribe` and in every footer.
//!
//! `POST` is RFC 8058 one-click: Gmail, Apple Mail and others POST
//! `List-Unsubscribe=One-Click` (form-encoded or multipart) without cookies and expect a 2xx,
//! never a redirect. The body is read (so that the size cap applies) but not required: the
//! signed token alone says who leaves which list, and an empty body is accepted too. The
//! page's own button POSTs `from=page` to the same URL, which only changes the event's source.
//!
//! `GET` shows the list and a button and changes nothing: scanners follow links.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::pages::{Lang, button_form, escape, fill, para};
use super::{
    AppState, Denied, browser_lang, denied, page_ok, rejected, resolve_link, subscriber_lang,
};
use crate::store::{LinkTarget, SubscriptionStatus, WebOutcome};
use crate::token::Purpose;

fn action(state: &AppState, token: &str, suffix: &str) -> String {
    format!("{}/u/{token}{suffix}", state.settings().base_path)
}

/// `GET /u/{token}`: the question, or (when already done) the page that follows it.
pub(super) async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (_, target) = match resolve_link(&state, &token, Purpose::Unsubscribe).await {
        Ok(found) => found,
        Err(why) => return denied(&state, browser_lang(&headers), why),
    };
    let lang = subscriber_lang(&target, &headers);
    if target.status != Some(SubscriptionStatus::Confirmed)
        && target.status != Some(SubscriptionStatus::Unconfirmed)
    {
        return unsubscribed_page(&state, &token, &target, lang);
    }
    let s = lang.strings();
    let list = target.list_name.as_str();
    let body = format!(
        "{}{}",
        para(&fill(s.unsubscribe_body, &[("list", list)])),
        button_form(
            &action(&state, &token, ""),
            &[("from", "page")],
            s.unsubscribe_button,
            true
        )
    );
    let title = s.unsubscribe_title.replace("{list}", list);
    page_ok(&state, lang, &title, &body)
}

/// `POST /u/{token}`: leave the list the message came from. Always 200 once the token
/// verifies, whether or not anything changed (idempotent).
pub(super) async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return rejected(&state, browser_lang(&headers), e.status()),
    };
    let (claims, mut target) = match resolve_link(&state, &token, Purpose::Unsubscribe).await {
        Ok(found) => found,
        Err(why) => return denied(&state, browser_lang(&headers), why),
    };
    let lang = subscriber_lang(&target, &headers);
    let source = if body.as_ref() == b"from=page" {
        "page"
    } else {
        "one-click"
    };
    // Already gone: answer without taking the write lock (repeated clicks, retrying clients).
    if matches!(
        target.status,
        Some(SubscriptionStatus::Confirmed | SubscriptionStatus::Unconfirmed)
    ) {
        let done = state
            .write_opt_out(|store| {
                store.unsubscribe_by_id(claims.subscriber_id, claims.list_id, source)
            })
            .await;
        if let Err(why) = done {
            return denied(&state, lang, why);
        }
        target.status = Some(SubscriptionStatus::Unsubscribed);
    }
    unsubscribed_page(&state, &token, &target, lang)
}

/// The page after leaving: undo, and leave every list when there are others.
fn unsubscribed_page(state: &AppState, token: &str, target: &LinkTarget, lang: Lang) -> Response {
    let s = lang.strings();
    let list = target.list_name.as_str();
    let mut body = para(&fill(s.unsubscribed_body, &[("list", list)]));
    if target.status.is_some() {
        body.push_str(&para(&escape(s.resubscribe_hint)));
        body.push_str(&button_form(
            &action(state, token, "/resubscribe"),
            &[],
            s.resubscribe_button,
            false,
        ));
    }
    if target.other_active_lists > 0 {
        let n = target.other_active_lists.to_string();
        body.push_str(&para(&fill(s.others_hint, &[("n", &n)])));
        body.push_str(&button_form(
            &action(state, token, "/all"),
            &[],
            s.leave_all_button,
            false,
        ));
    }
    page_ok(state, lang, s.unsubscribed_title, &body)
}

/// `POST /u/{token}/resubscribe`: undo.
pub(super) async fn resubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = body {
        return rejected(&state, browser_lang(&headers), e.status());
    }
    let (claims, target) = match resolve_link(&state, &token, Purpose::Unsubscribe).await {
        Ok(found) => found,
        Err(why) => return denied(&state, browser_lang(&headers), why),
    };
    let lang = subscriber_lang(&target, &headers);
    match state
        .write(|store| store.resubscribe(claims.subscriber_id, claims.list_id, "page"))
        .await
    {
        Ok(WebOutcome::Changed | WebOutcome::Unchanged) => {}
        // Never on this list: there is nothing to undo, and no consent to restore.
        Ok(WebOutcome::Missing) => return denied(&state, lang, Denied::NotFound),
        Err(why) => return denied(&state, lang, why),
    }
    let s = lang.strings();
    let list = target.list_name.as_str();
    let body = format!(
        "{}{}",
        para(&fill(s.resubscribed_body, &[("list", list)])),
        button_form(
            &action(&state, &token, ""),
            &[("from", "page")],
            s.unsubscribe_button,
            false
        )
    );
    page_ok(&state, lang, s.resubscribed_title, &body)
}

/// `POST /u/{token}/all`: leave every list of this subscriber.
pub(super) async fn leave_all(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = body {
        return rejected(&state, browser_lang(&headers), e.status());
    }
    let (claims, target) = match resolve_link(&state, &token, Purpose::Unsubscribe).await {
        Ok(found) => found,
        Err(why) => return denied(&state, browser_lang(&headers), why),
    };
    let lang = subscriber_lang(&target, &headers);
    if let Err(why) = state
        .write_opt_out(|store| store.unsubscribe_everywhere(claims.subscriber_id, "page"))
        .await
    {
        return denied(&state, lang, why);
    }
    let s = lang.strings();
    page_ok(
        &state,
        lang,
        s.left_all_title,
        &para(&escape(s.left_all_body)),
    )
}
