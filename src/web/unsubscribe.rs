//! `/u/{token}`: the link in `List-Unsubscribe` and in every footer.
//!
//! `POST` is RFC 8058 one-click: Gmail, Apple Mail and others POST
//! `List-Unsubscribe=One-Click` (form-encoded or multipart) without cookies and expect a 2xx,
//! never a redirect. The body is read (so that the size cap applies) but not required: the
//! signed token alone says who leaves which list, and an empty body is accepted too. The
//! page's own button POSTs `from=page` to the same URL, which only changes the event's source.
//!
//! `GET` shows the list and a button and changes nothing: scanners follow links.
//!
//! The page after an unsubscribe offers to undo it, with a short-lived token bound to that
//! unsubscribe's event ([`UNDO_TTL_SECS`]); the undo works only while that unsubscribe is still
//! the subscription's latest change and the subscriber is not blocklisted. The unsubscribe link
//! itself (which lives for ever in old mail, and in forwarded copies) can never re-subscribe
//! anybody: after any other opt-out, the only way back is the form's double opt-in.

use axum::Form;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::pages::{Arg, Lang, button_form, para};
use super::{
    AppState, Denied, PageError, form_list, list_title, page_ok, resolve_link, subscribe_link,
    unix_now,
};
use crate::store::{BoundOutcome, LinkTarget, SubscriptionStatus, WebOutcome};
use crate::token::{Claims, Purpose, TokenError};

/// How long the undo button after an unsubscribe works: long enough to notice a wrong click,
/// short enough that a page left open (or its saved copy) cannot undo much later.
pub(crate) const UNDO_TTL_SECS: i64 = 30 * 60;

fn action(state: &AppState, token: &str, suffix: &str) -> String {
    format!("{}/u/{token}{suffix}", state.settings().base_path)
}

/// `GET /u/{token}`: the question, or (when already done) the page that follows it.
pub(super) async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (_, target) = resolve_link(&state, &token, Purpose::Unsubscribe)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = state.subscriber_lang(&target, &headers);
    if target.status != Some(SubscriptionStatus::Confirmed)
        && target.status != Some(SubscriptionStatus::Unconfirmed)
    {
        return Ok(unsubscribed_page(&state, &token, &target, lang, None));
    }
    let s = state.pages(lang);
    let title = list_title(&state, lang.tag(), &target.list_texts);
    let list = title.as_str();
    let body = format!(
        "{}{}",
        para(&s.html_with("unsubscribe-body", &[("list", Arg::Text(list))])),
        button_form(
            &action(&state, &token, ""),
            &[("from", "page")],
            &s.text("unsubscribe-button"),
            true
        )
    );
    let heading = s.text_with("unsubscribe-title", &[("list", Arg::Text(list))]);
    Ok(page_ok(&state, lang, &heading, &body))
}

/// `GET` and `POST /u/test-copy`, the links of a test copy (`preview --to`): a page saying
/// what the link does in the real edition. It reads no token and writes nothing, so a mail
/// program's one-click POST is answered 200 like a real one.
pub(super) async fn test_copy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = state.browser_lang(&headers);
    let s = state.pages(lang);
    page_ok(
        &state,
        lang,
        &s.text("test-copy-title"),
        &para(&s.html("test-copy-body")),
    )
}

/// `POST /u/{token}`: leave the list the message came from. Always 200 once the token
/// verifies, whether or not anything changed (idempotent).
pub(super) async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let body = body.map_err(|e| state.reject(state.browser_lang(&headers), e.status()))?;
    let (claims, mut target) = resolve_link(&state, &token, Purpose::Unsubscribe)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = state.subscriber_lang(&target, &headers);
    let source = if body.as_ref() == b"from=page" {
        "page"
    } else {
        "one-click"
    };
    // Already gone: answer without taking the write lock (repeated clicks, retrying clients).
    let mut undo = None;
    if matches!(
        target.status,
        Some(SubscriptionStatus::Confirmed | SubscriptionStatus::Unconfirmed)
    ) {
        let done = state
            .write_opt_out(|store| {
                store.unsubscribe_by_id(claims.subscriber_id, claims.list_id, source)
            })
            .await;
        match done {
            // This request made the change: it may offer to undo exactly that change.
            Ok(WebOutcome::Changed { event_id }) => {
                undo = Some(state.keys().issue(
                    Claims {
                        purpose: Purpose::Undo,
                        subscriber_id: claims.subscriber_id,
                        list_id: claims.list_id,
                        issued_at: unix_now(),
                        event_id: Some(event_id),
                    },
                    &target.nonce,
                ));
            }
            Ok(WebOutcome::Unchanged | WebOutcome::Missing) => {}
            Err(why) => return Err(state.refuse(lang, why)),
        }
        target.status = Some(SubscriptionStatus::Unsubscribed);
    }
    Ok(unsubscribed_page(
        &state,
        &token,
        &target,
        lang,
        undo.as_deref(),
    ))
}

/// The page after leaving: undo (only right after this page's own unsubscribe, `undo` being
/// its token; otherwise the way back is the form), and leave every list when there are others.
fn unsubscribed_page(
    state: &AppState,
    token: &str,
    target: &LinkTarget,
    lang: Lang,
    undo: Option<&str>,
) -> Response {
    let s = state.pages(lang);
    let title = list_title(state, lang.tag(), &target.list_texts);
    let mut body = para(&s.html_with("unsubscribed-body", &[("list", Arg::Text(&title))]));
    if target.status.is_some() {
        body.push_str(&para(&s.html("resubscribe-hint")));
        match undo {
            Some(undo) => body.push_str(&button_form(
                &action(state, token, "/resubscribe"),
                &[("undo", undo)],
                &s.text("resubscribe-button"),
                false,
            )),
            None => body.push_str(&subscribe_link(state, lang, form_list(target).as_deref())),
        }
    }
    if target.other_active_lists > 0 {
        let count = Arg::Number(target.other_active_lists);
        body.push_str(&para(&s.html_with("others-hint", &[("count", count)])));
        body.push_str(&button_form(
            &action(state, token, "/all"),
            &[],
            &s.text("leave-all-button"),
            false,
        ));
    }
    page_ok(state, lang, &s.text("unsubscribed-title"), &body)
}

/// The undo button's form: the token bound to the unsubscribe it undoes.
#[derive(Debug, serde::Deserialize)]
pub(super) struct UndoForm {
    #[serde(default)]
    undo: String,
}

/// `POST /u/{token}/resubscribe` with `undo=<token>`: undo the unsubscribe this page just
/// made, and nothing else.
pub(super) async fn resubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<UndoForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = match form {
        Ok(Form(f)) => f,
        // An old page's button posted nothing: there is nothing to bind the undo to.
        Err(FormRejection::InvalidFormContentType(_)) => UndoForm {
            undo: String::new(),
        },
        Err(e) => return Err(state.reject(state.browser_lang(&headers), e.status())),
    };
    let (claims, target) = resolve_link(&state, &token, Purpose::Unsubscribe)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = state.subscriber_lang(&target, &headers);
    let stale = || Denied::Stale {
        list: form_list(&target),
    };
    // Never on this list: there is nothing to undo, and no consent to restore.
    if target.status.is_none() {
        return Err(state.refuse(lang, Denied::NotFound));
    }
    if form.undo.is_empty() {
        return Err(state.refuse(lang, stale()));
    }
    let undo = match state.keys().verify(
        &form.undo,
        &target.nonce,
        Purpose::Undo,
        unix_now(),
        Some(UNDO_TTL_SECS),
    ) {
        Ok(undo)
            if (undo.subscriber_id, undo.list_id) == (claims.subscriber_id, claims.list_id) =>
        {
            undo
        }
        Err(TokenError::Expired) => return Err(state.refuse(lang, stale())),
        Ok(_) | Err(_) => return Err(state.refuse(lang, Denied::NotFound)),
    };
    let Some(event) = undo.event_id else {
        return Err(state.refuse(lang, Denied::NotFound));
    };
    match state
        .write(|store| store.undo_unsubscribe(claims.subscriber_id, claims.list_id, event, "page"))
        .await
    {
        Ok(BoundOutcome::Changed | BoundOutcome::AlreadyDone) => {}
        Ok(BoundOutcome::Stale) => return Err(state.refuse(lang, stale())),
        Ok(BoundOutcome::Missing) => return Err(state.refuse(lang, Denied::NotFound)),
        Err(why) => return Err(state.refuse(lang, why)),
    }
    let s = state.pages(lang);
    let title = list_title(&state, lang.tag(), &target.list_texts);
    let body = format!(
        "{}{}",
        para(&s.html_with("resubscribed-body", &[("list", Arg::Text(&title))])),
        button_form(
            &action(&state, &token, ""),
            &[("from", "page")],
            &s.text("unsubscribe-button"),
            false
        )
    );
    Ok(page_ok(&state, lang, &s.text("resubscribed-title"), &body))
}

/// `POST /u/{token}/all`: leave every list of this subscriber.
pub(super) async fn leave_all(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    if let Err(e) = body {
        return Err(state.reject(state.browser_lang(&headers), e.status()));
    }
    let (claims, target) = resolve_link(&state, &token, Purpose::Unsubscribe)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = state.subscriber_lang(&target, &headers);
    if let Err(why) = state
        .write_opt_out(|store| store.unsubscribe_everywhere(claims.subscriber_id, "page"))
        .await
    {
        return Err(state.refuse(lang, why));
    }
    Ok(left_all_page(&state, lang))
}

/// The page after leaving every list, from here or from the preference centre.
pub(super) fn left_all_page(state: &AppState, lang: Lang) -> Response {
    let s = state.pages(lang);
    page_ok(
        state,
        lang,
        &s.text("left-all-title"),
        &para(&s.html("left-all-body")),
    )
}
