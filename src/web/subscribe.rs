//! `/subscribe` and `/confirm/{token}`: the subscription form and its double opt-in.
//!
//! The form's answer is the same page whatever the address: new, pending, confirmed,
//! blocklisted or erased, so that nobody can use it to learn who subscribes. The mail is sent
//! after the response, in the background, so that the response time does not tell either.
//! A hidden honeypot field catches the simplest bots (they fill every field), and a per-IP
//! limit bounds how many mails one client can make us send.
//!
//! `GET /confirm/{token}` only shows a button; the `POST` it makes confirms. Mail scanners
//! open confirmation links too, and must not subscribe anybody by doing so.
//!
//! The form cannot be made a weapon against a mailbox: besides the per-client limit, one
//! address gets at most one confirmation mail per `[server] confirm_cooldown_minutes`, counted
//! in the database (so across restarts and processes), whoever asks. And it cannot be posted
//! from another site: a hostile page could otherwise make every visitor's browser submit
//! addresses, each from a different client address. A browser always names the page that
//! posts in `Origin` (falling back to `Referer`); a POST naming another host than
//! `[list] public_url`'s or the request's own `Host` is refused with 403. A request naming
//! neither comes from no browser (curl, a script), which could forge them anyway, and stays
//! subject to the limits. A CSRF token would not help here: without a session cookie, a hostile
//! site can fetch a fresh token from the form and post it along.

use std::net::SocketAddr;

use axum::Form;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::pages::{self, Arg, Lang, button_form, escape, para};
use super::{
    AppState, Denied, PageError, form_list, html, list_title, page_ok, resolve_link, unix_now,
};
use crate::address::Address;
use crate::store::{BoundOutcome, List, ListText, PendingOutcome};
use crate::token::{Claims, Purpose};

/// `?lang=fr&list=news` on the form.
#[derive(Debug, Deserialize)]
pub(super) struct FormQuery {
    lang: Option<String>,
    list: Option<String>,
}

/// The posted form.
#[derive(Debug, Deserialize)]
pub(super) struct SubscribeForm {
    email: String,
    list: String,
    #[serde(default)]
    lang: Option<String>,
    /// The honeypot: hidden from people, filled in by naive bots.
    #[serde(default)]
    website: String,
}

fn form_lang(state: &AppState, explicit: Option<&str>, headers: &HeaderMap) -> Lang {
    state.negotiate(explicit, None, headers)
}

/// The language to remember for a new subscriber: the one the form was asked for
/// (`/subscribe?lang=es`, carried by the form's hidden field) when it is a valid tag, even if
/// the pages themselves are not written in it (the editions may be), else the page's.
fn requested_language(explicit: Option<&str>, page: Lang) -> String {
    explicit
        .and_then(|raw| {
            crate::subscriber_input::validate_language(raw)
                .ok()
                .flatten()
        })
        .unwrap_or_else(|| page.tag().to_string())
}

/// A list as the form offers it: its internal name travels in the form, its title is shown.
struct Offered {
    name: String,
    title: String,
    description: String,
}

/// The public lists, each with its title and description in language `tag`.
async fn offered_lists(state: &AppState, tag: &str) -> Result<Vec<(List, Offered)>, Denied> {
    let (lists, texts) = state
        .read(|store| async move { Ok((store.all_lists().await?, store.list_texts(None).await?)) })
        .await?;
    Ok(lists
        .into_iter()
        .filter(|l| l.public)
        .map(|list| {
            let own: Vec<ListText> = texts
                .iter()
                .filter(|t| t.list_id == list.id)
                .cloned()
                .collect();
            let description = crate::store::pick_text(&own, tag)
                .map(|t| t.description.clone())
                .unwrap_or_default();
            let offered = Offered {
                name: list.name.clone(),
                title: list_title(state, tag, &own),
                description,
            };
            (list, offered)
        })
        .collect())
}

/// The form's HTML: one list preselected (or a choice), the address, the honeypot.
fn form_page(
    state: &AppState,
    lang: Lang,
    language: &str,
    lists: &[&Offered],
    selected: Option<&str>,
    email: &str,
    error: Option<&'static str>,
) -> String {
    let s = state.pages(lang);
    let site = &state.settings().site_name;
    if lists.is_empty() {
        return pages::page(
            lang,
            site,
            &s.text("subscribe-title"),
            &para(&s.html("no-lists")),
        );
    }
    let mut body = String::new();
    // `error` is a message id of the pages catalogue.
    if let Some(error) = error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\" id=\"email-error\">{}</p>\n",
            s.html(error)
        ));
    }
    let list_field = match (
        selected.and_then(|n| lists.iter().find(|l| l.name == n)),
        lists,
    ) {
        (Some(list), _) | (None, [list]) => {
            let description = if list.description.is_empty() {
                String::new()
            } else {
                para(&escape(&list.description))
            };
            format!(
                "<input type=\"hidden\" name=\"list\" value=\"{}\"><p><strong>{}</strong></p>{description}",
                escape(&list.name),
                escape(&list.title)
            )
        }
        (None, _) => {
            let options: String = lists
                .iter()
                .map(|l| {
                    format!(
                        "<option value=\"{}\">{}</option>",
                        escape(&l.name),
                        escape(&l.title)
                    )
                })
                .collect();
            format!(
                "<label for=\"list\">{}</label><select id=\"list\" name=\"list\">{options}</select>",
                s.html("list-label")
            )
        }
    };
    let described = if error.is_some() {
        " aria-invalid=\"true\" aria-describedby=\"email-error\""
    } else {
        ""
    };
    body.push_str(&format!(
        "<form method=\"post\" action=\"{base}/subscribe\">\
         {list_field}\
         <input type=\"hidden\" name=\"lang\" value=\"{lang}\">\
         <label for=\"email\">{email_label}</label>\
         <input type=\"email\" id=\"email\" name=\"email\" required autocomplete=\"email\" value=\"{email}\"{described}>\
         <div class=\"hp\" aria-hidden=\"true\"><label for=\"website\">{hp}</label>\
         <input type=\"text\" id=\"website\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\"></div>\
         <p><button type=\"submit\">{button}</button></p></form>\n{note}",
        base = escape(&state.settings().base_path),
        lang = escape(language),
        email_label = s.html("email-label"),
        email = escape(email),
        hp = s.html("honeypot-label"),
        button = s.html("subscribe-button"),
        note = para(&s.html("subscribe-note")),
    ));
    pages::page(lang, site, &s.text("subscribe-title"), &body)
}

/// `GET /subscribe[?list=NAME][&lang=fr]`.
pub(super) async fn form(
    State(state): State<AppState>,
    Query(query): Query<FormQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = form_lang(&state, query.lang.as_deref(), &headers);
    let language = requested_language(query.lang.as_deref(), lang);
    let lists = offered_lists(&state, &language)
        .await
        .map_err(|why| state.refuse(lang, why))?;
    // A private list is not on offer, whoever knows its name.
    if let Some(name) = &query.list {
        if !lists.iter().any(|(l, _)| &l.name == name) {
            return Err(state.refuse(lang, Denied::NotFound));
        }
    }
    let offered: Vec<&Offered> = lists.iter().map(|(_, o)| o).collect();
    Ok(form_response(
        StatusCode::OK,
        form_page(
            &state,
            lang,
            &language,
            &offered,
            query.list.as_deref(),
            "",
            None,
        ),
    ))
}

/// A page holding a form that the cross-site check guards (this one, the preference
/// centre's). `Referrer-Policy: same-origin` rather than the other pages' `no-referrer`: under
/// `no-referrer` browsers send `Origin: null` with the form's POST, which the check would have
/// to accept. Same-origin sends nothing to other sites either, not even a tokened URL.
pub(super) fn form_response(status: StatusCode, page: String) -> Response {
    let mut response = html(status, page);
    response.headers_mut().insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether a POST may come from the page that sent it: see the module's notes.
pub(super) fn same_site(state: &AppState, headers: &HeaderMap) -> bool {
    use axum::http::header::{HOST, ORIGIN, REFERER};
    let named = |name| headers.get(name).map(|v| v.to_str().unwrap_or("null"));
    let sender = match (named(ORIGIN), named(REFERER)) {
        (Some(origin), _) => origin,
        (None, Some(referer)) => referer,
        // No browser sends a cross-site form without saying where from.
        (None, None) => return true,
    };
    let Some(sender) = authority(sender) else {
        // `null` (sandboxed frames, data: URLs) or garbage: not our page.
        return false;
    };
    let ours = authority(&state.settings().public_url);
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    ours.is_some_and(|o| o.eq_ignore_ascii_case(sender))
        || host.is_some_and(|h| h.trim().eq_ignore_ascii_case(sender))
}

/// The `host[:port]` of an absolute http(s) URL or origin.
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

/// The client's address: the trusted proxy's header when configured, else the peer.
fn client_ip(state: &AppState, headers: &HeaderMap, ext: &Extensions) -> Option<std::net::IpAddr> {
    if let Some(name) = &state.settings().client_ip_header {
        // X-Forwarded-For grows by one entry per proxy; the last is the one our proxy added.
        return headers
            .get(name)?
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse()
            .ok();
    }
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// `POST /subscribe`.
pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ext: Extensions,
    form: Result<Form<SubscribeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let fallback_lang = state.browser_lang(&headers);
    let Form(form) = form.map_err(|e| state.reject(fallback_lang, e.status()))?;
    let lang = form_lang(&state, form.lang.as_deref(), &headers);
    let s = state.pages(lang);
    if !same_site(&state, &headers) {
        return Err(state.reject(lang, StatusCode::FORBIDDEN));
    }
    // Every attempt counts, the honeypot's too: a bot that learns the trap still hits the limit.
    let allowed = match client_ip(&state, &headers, &ext) {
        // Counted in the store, so every `serve` instance on it counts together.
        Some(ip) => state
            .write(|store| state.inner.limiter.allow(store, ip))
            .await
            .map_err(|d| state.refuse(lang, d))?,
        // No address to count by (a proxy header missing): refuse rather than run unlimited.
        None => false,
    };
    if !allowed {
        let mut response = html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::page(
                lang,
                &state.settings().site_name,
                &s.text("too-many-title"),
                &para(&s.html("too-many-body")),
            ),
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("3600"),
        );
        return Ok(response);
    }
    let language = requested_language(form.lang.as_deref(), lang);
    let (list, offered) = match offered_lists(&state, &language).await {
        Ok(lists) => match lists.into_iter().find(|(l, _)| l.name == form.list) {
            Some(found) => found,
            None => return Err(state.refuse(lang, Denied::NotFound)),
        },
        Err(why) => return Err(state.refuse(lang, why)),
    };
    let check_inbox = || {
        html(
            StatusCode::OK,
            pages::page(
                lang,
                &state.settings().site_name,
                &s.text("check-inbox-title"),
                &para(&s.html("check-inbox-body")),
            ),
        )
    };
    if !form.website.is_empty() {
        return Ok(check_inbox());
    }
    let address = match Address::parse(&form.email) {
        Ok(a) => a,
        Err(_) => {
            return Ok(form_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                form_page(
                    &state,
                    lang,
                    &language,
                    &[&offered],
                    Some(&list.name),
                    &form.email,
                    Some("bad-address"),
                ),
            ));
        }
    };
    let outcome = state
        .write(|store| {
            store.subscribe_pending(
                &address,
                list.id,
                Some(&language),
                "form",
                state.settings().confirm_cooldown_secs,
            )
        })
        .await;
    match outcome {
        Ok(PendingOutcome::Confirm {
            subscriber_id,
            list_id,
            nonce,
            language,
            event_id,
        }) => {
            let token = state.keys().issue(
                Claims {
                    purpose: Purpose::Confirm,
                    subscriber_id,
                    list_id,
                    issued_at: unix_now(),
                    // Bound to this request: replayed after any later change, it does nothing.
                    event_id: Some(event_id),
                },
                &nonce,
            );
            let link = format!("{}/confirm/{token}", state.settings().public_url);
            // The person's own language if we knew them, else the form's.
            let mail_lang = language
                .as_deref()
                .and_then(|tag| state.settings().words.lang(tag))
                .unwrap_or(lang);
            // The list's title in the mail's language, never its internal name.
            let title = match state.read(|store| store.list_texts(Some(list.id))).await {
                Ok(texts) => list_title(&state, mail_lang.tag(), &texts),
                Err(_) => offered.title.clone(),
            };
            state.send_confirmation(address, title, link, mail_lang);
        }
        Ok(PendingOutcome::Nothing) => {}
        Err(why) => return Err(state.refuse(lang, why)),
    }
    Ok(check_inbox())
}

/// `GET /confirm/{token}`: a button, nothing else.
pub(super) async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (_, target) = resolve_link(&state, &token, Purpose::Confirm)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = state.subscriber_lang(&target, &headers);
    let s = state.pages(lang);
    let title = list_title(&state, lang.tag(), &target.list_texts);
    let body = format!(
        "{}{}",
        para(&s.html_with("confirm-body", &[("list", Arg::Text(&title))])),
        button_form(
            &format!("{}/confirm/{token}", state.settings().base_path),
            &[],
            &s.text("confirm-button"),
            true
        )
    );
    Ok(page_ok(&state, lang, &s.text("confirm-title"), &body))
}

/// `POST /confirm/{token}`: the subscription starts.
pub(super) async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    if let Err(e) = body {
        return Err(state.reject(state.browser_lang(&headers), e.status()));
    }
    let (claims, target) = resolve_link(&state, &token, Purpose::Confirm)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = state.subscriber_lang(&target, &headers);
    let stale = Denied::Stale {
        list: form_list(&target),
    };
    // A link issued before links were bound to their sign-up cannot be checked: ask again.
    let Some(request) = claims.event_id else {
        return Err(state.refuse(lang, stale));
    };
    match state
        .write(|store| {
            store.confirm_subscription(claims.subscriber_id, claims.list_id, request, "page")
        })
        .await
    {
        Ok(BoundOutcome::Changed | BoundOutcome::AlreadyDone) => {}
        // Used, replaced, or overtaken by an unsubscribe or a blocklisting: nothing changes.
        Ok(BoundOutcome::Stale) => return Err(state.refuse(lang, stale)),
        // The subscription was removed meanwhile (list removed, erased): nothing to confirm.
        Ok(BoundOutcome::Missing) => return Err(state.refuse(lang, Denied::NotFound)),
        Err(why) => return Err(state.refuse(lang, why)),
    }
    let s = state.pages(lang);
    Ok(page_ok(
        &state,
        lang,
        &s.text("confirmed-title"),
        &para(&s.html_with(
            "confirmed-body",
            &[(
                "list",
                Arg::Text(&list_title(&state, lang.tag(), &target.list_texts)),
            )],
        )),
    ))
}
