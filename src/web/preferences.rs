//! `/p/{token}`: the preference centre, where the "Manage preferences" link of every message
//! leads. The subscriber sees their lists (the public ones, and any they receive), ticks or
//! unticks each, changes their language and name, or leaves everything.
//!
//! The link is signed like an unsubscribe link but for its own purpose
//! ([`Purpose::Preferences`]), so neither can stand in for the other, and like it never
//! expires. `GET` only shows; a `POST` from the page's own form changes, and only what
//! differs (saving an unchanged form writes nothing). Besides the secret link, a POST must
//! come from our own pages (`Origin`/`Referer`, as the subscription form checks): unlike the
//! RFC 8058 one-click, nothing but a browser on this page has reason to post here.
//!
//! Joining a double-opt-in list from here needs no confirmation mail: the link, mailed to the
//! address, already proves it. Every change is an event with source `preferences`.
//!
//! `/p/test-copy` is the preview the links of test copies and composed files lead to: the
//! public lists and the form as a reader would see them, with nothing saved.

use std::collections::HashMap;

use axum::Form;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::pages::{Arg, Lang, button_form, escape, para};
use super::subscribe::{form_response, same_site};
use super::{AppState, Denied, PageError, list_title};
use crate::store::{PreferenceChange, PreferenceList, PreferenceView};
use crate::subscriber_input::MAX_NAME_CHARS as MAX_NAME;
use crate::token::Purpose;

/// Where this page's forms post.
fn action(state: &AppState, token: &str, suffix: &str) -> String {
    format!("{}/p/{token}{suffix}", state.settings().base_path)
}

/// The page's language: the subscriber's own, else the browser's.
fn reader_lang(state: &AppState, view: &PreferenceView, headers: &HeaderMap) -> Lang {
    state.negotiate(None, view.language.as_deref(), headers)
}

/// Verifies a preference link and returns what the page shows. Any failure is the same 404.
async fn resolve(state: &AppState, token: &str) -> Result<(i64, PreferenceView), Denied> {
    let claims = crate::token::read(token).map_err(|_| Denied::NotFound)?;
    if claims.purpose != Purpose::Preferences {
        return Err(Denied::NotFound);
    }
    let view = state
        .read(|store| store.preference_view(claims.subscriber_id))
        .await?
        .ok_or(Denied::NotFound)?;
    state
        .keys()
        .verify(
            token,
            &view.nonce,
            Purpose::Preferences,
            super::unix_now(),
            None,
        )
        .map_err(|_| Denied::NotFound)?;
    Ok((claims.subscriber_id, view))
}

/// What the page says above the form.
enum Notice<'a> {
    None,
    Saved,
    Unchanged,
    Error(&'a str),
}

/// The whole page: notice, the form (lists, name, language, save) and "leave everything".
/// `token` is `None` for the test-copy preview, whose form saves nothing.
fn preferences_page(
    state: &AppState,
    lang: Lang,
    title: &str,
    view: &PreferenceView,
    token: Option<&str>,
    notice: Notice<'_>,
) -> String {
    let s = state.pages(lang);
    let mut body = String::new();
    match notice {
        Notice::None => {}
        Notice::Saved => body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            s.html("prefs-saved")
        )),
        Notice::Unchanged => body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            s.html("prefs-unchanged")
        )),
        // Already HTML, from the catalogue.
        Notice::Error(message) => body.push_str(&format!(
            "<p class=\"error\" role=\"alert\" id=\"name-error\">{message}</p>\n"
        )),
    }
    if token.is_none() {
        body.push_str(&para(&s.html("prefs-test-copy-body")));
    } else {
        body.push_str(&para(&s.html("prefs-intro")));
    }
    if view.blocklisted {
        body.push_str(&para(&s.html("prefs-blocklisted")));
    }
    let post = token.map_or_else(
        || format!("{}/p/test-copy", state.settings().base_path),
        |t| action(state, t, ""),
    );
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n",
        escape(&post)
    ));
    body.push_str(&lists_fieldset(
        state,
        lang,
        &view.lists,
        &s.text("prefs-lists-legend"),
    ));
    body.push_str(&name_and_language(state, lang, view));
    body.push_str(&format!(
        "<p><button type=\"submit\">{}</button></p>\n</form>\n",
        s.html("prefs-save-button")
    ));
    if view.lists.iter().any(PreferenceList::receiving) || token.is_none() {
        body.push_str(&para(&s.html("prefs-leave-all-hint")));
        let leave = token.map_or_else(
            || format!("{}/p/test-copy", state.settings().base_path),
            |t| action(state, t, "/all"),
        );
        body.push_str(&button_form(
            &leave,
            &[],
            &s.text("leave-all-button"),
            false,
        ));
    }
    super::pages::page(lang, &state.settings().site_name, title, &body)
}

/// One checkbox per list, named by id, and the ids shown (only those may change).
fn lists_fieldset(state: &AppState, lang: Lang, lists: &[PreferenceList], legend: &str) -> String {
    let mut out = format!("<fieldset>\n<legend>{}</legend>\n", escape(legend));
    for list in lists {
        let title = list_title(state, lang.tag(), &list.texts);
        let description = crate::store::pick_text(&list.texts, lang.tag())
            .map(|t| t.description.as_str())
            .filter(|d| !d.is_empty())
            .map(|d| {
                format!(
                    "<span class=\"hint\" id=\"list-{}-hint\">{}</span>",
                    list.id,
                    escape(d)
                )
            })
            .unwrap_or_default();
        let described = if description.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"list-{}-hint\"", list.id)
        };
        out.push_str(&format!(
            "<div class=\"choice\"><input type=\"checkbox\" id=\"list-{id}\" name=\"list-{id}\"{checked}{described}>\
             <label for=\"list-{id}\">{title}</label>{description}</div>\n",
            id = list.id,
            checked = if list.receiving() { " checked" } else { "" },
            title = escape(&title),
        ));
    }
    let shown: Vec<String> = lists.iter().map(|l| l.id.to_string()).collect();
    out.push_str(&format!(
        "<input type=\"hidden\" name=\"shown\" value=\"{}\">\n</fieldset>\n",
        shown.join(",")
    ));
    out
}

/// The name field and the language choice: every language the pages are written in, each
/// under its own name, and the subscriber's current one if it is none of those.
fn name_and_language(state: &AppState, lang: Lang, view: &PreferenceView) -> String {
    let s = state.pages(lang);
    let words = &state.settings().words;
    let current = view.language.as_deref();
    let mut options = String::new();
    let mut listed = false;
    for each in words.languages() {
        // Only an exact match: `fr-CA` keeps its own option, so that saving does not quietly
        // turn it into `fr`.
        let selected = current.is_some_and(|c| c.eq_ignore_ascii_case(each.tag()));
        listed |= selected;
        options.push_str(&format!(
            "<option value=\"{tag}\" lang=\"{tag}\"{sel}>{name}</option>",
            tag = each.tag(),
            sel = if selected { " selected" } else { "" },
            name = words.pages(*each).html("language-name"),
        ));
    }
    if let Some(other) = current.filter(|_| !listed) {
        options.insert_str(
            0,
            &format!(
                "<option value=\"{tag}\" selected>{tag}</option>",
                tag = escape(other)
            ),
        );
    } else if current.is_none() {
        options.insert_str(0, "<option value=\"\" selected>—</option>");
    }
    format!(
        "<label for=\"name\">{name_label}</label>\
         <input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"name\" maxlength=\"{max}\" value=\"{name}\">\n\
         <label for=\"lang\">{lang_label}</label><select id=\"lang\" name=\"lang\">{options}</select>\n",
        name_label = s.html("prefs-name-label"),
        name = escape(&view.name),
        max = MAX_NAME,
        lang_label = s.html("prefs-language-label"),
    )
}

/// `GET /p/{token}`.
pub(super) async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (_, view) = resolve(&state, &token)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = reader_lang(&state, &view, &headers);
    Ok(shown(&state, lang, &view, &token, Notice::None))
}

/// The page of a real link, 200.
fn shown(
    state: &AppState,
    lang: Lang,
    view: &PreferenceView,
    token: &str,
    notice: Notice<'_>,
) -> Response {
    let title = state.pages(lang).text("prefs-title");
    form_response(
        StatusCode::OK,
        preferences_page(state, lang, &title, view, Some(token), notice),
    )
}

/// The saved form, as posted: `list-{id}=on` per ticked box, `shown`, `name`, `lang`.
fn parse_change(form: &HashMap<String, String>) -> Result<PreferenceChange, String> {
    let shown: Vec<i64> = form
        .get("shown")
        .map(|v| {
            v.split(',')
                .filter_map(|id| id.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let wanted = shown
        .iter()
        .copied()
        .filter(|id| form.contains_key(&format!("list-{id}")))
        .collect();
    let language = match form.get("lang").map(String::as_str) {
        None | Some("") => None,
        Some(raw) => crate::subscriber_input::validate_language(raw).map_err(|e| e.to_string())?,
    };
    let name = match form.get("name") {
        None => None,
        Some(raw) => Some(crate::subscriber_input::validate_name(raw).map_err(|e| e.to_string())?),
    };
    Ok(PreferenceChange {
        shown,
        wanted,
        language,
        name,
    })
}

/// `POST /p/{token}`: save the form.
pub(super) async fn save(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| state.reject(state.browser_lang(&headers), e.status()))?;
    let (subscriber_id, view) = resolve(&state, &token)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = reader_lang(&state, &view, &headers);
    if !same_site(&state, &headers) {
        return Err(state.reject(lang, StatusCode::FORBIDDEN));
    }
    let change = match parse_change(&form) {
        Ok(change) => change,
        Err(_) => {
            let s = state.pages(lang);
            return Ok(form_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                preferences_page(
                    &state,
                    lang,
                    &s.text("prefs-title"),
                    &view,
                    Some(&token),
                    Notice::Error(
                        &s.html_with("prefs-bad-input", &[("max", Arg::Number(MAX_NAME as i64))]),
                    ),
                ),
            ));
        }
    };
    let outcome = state
        .write(|store| store.apply_preferences(subscriber_id, &change, "preferences"))
        .await
        .map_err(|why| state.refuse(lang, why))?
        .ok_or_else(|| state.refuse(lang, Denied::NotFound))?;
    // Read back what is now true, and answer in the language just chosen.
    let (_, view) = resolve(&state, &token)
        .await
        .map_err(|why| state.refuse(lang, why))?;
    let lang = reader_lang(&state, &view, &headers);
    let notice = if outcome.is_empty() {
        Notice::Unchanged
    } else {
        Notice::Saved
    };
    Ok(shown(&state, lang, &view, &token, notice))
}

/// `POST /p/{token}/all`: leave every list.
pub(super) async fn leave_all(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    if let Err(e) = body {
        return Err(state.reject(state.browser_lang(&headers), e.status()));
    }
    let (subscriber_id, view) = resolve(&state, &token)
        .await
        .map_err(|why| state.refuse(state.browser_lang(&headers), why))?;
    let lang = reader_lang(&state, &view, &headers);
    if !same_site(&state, &headers) {
        return Err(state.reject(lang, StatusCode::FORBIDDEN));
    }
    state
        .write_opt_out(|store| store.unsubscribe_everywhere(subscriber_id, "preferences"))
        .await
        .map_err(|why| state.refuse(lang, why))?;
    Ok(super::unsubscribe::left_all_page(&state, lang))
}

/// `GET` and `POST /p/test-copy`: the preference centre as a reader would see it, with the
/// public lists, for the person checking a test copy or a composed file. Nothing is read
/// about anybody and nothing is written.
pub(super) async fn test_copy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = state.browser_lang(&headers);
    // Without a database (a preview before any list exists) the page still explains itself.
    let lists = state
        .read(|store| async move {
            let lists = store.all_lists().await?;
            let texts = store.list_texts(None).await?;
            Ok(lists
                .into_iter()
                .filter(|l| l.public)
                .map(|l| PreferenceList {
                    id: l.id,
                    public: true,
                    status: None,
                    texts: texts
                        .iter()
                        .filter(|t| t.list_id == l.id)
                        .cloned()
                        .collect(),
                })
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
    let view = PreferenceView {
        nonce: String::new(),
        name: String::new(),
        language: Some(lang.tag().to_string()),
        blocklisted: false,
        lists,
    };
    let title = state.pages(lang).text("prefs-test-copy-title");
    form_response(
        StatusCode::OK,
        preferences_page(&state, lang, &title, &view, None, Notice::None),
    )
}
