//! `/c/{token}`: the redirect of a link in a campaign that counts clicks ([`crate::clicks`]).
//!
//! The token is checked first; the address comes from the database row it names, and only
//! when that row belongs to the campaign the token names, so no request can make the service
//! redirect anywhere else (no open redirect). A bad token gets the ordinary "not found" page in
//! the visitor's language and no redirect.
//!
//! A `GET` counts one click with one UPDATE (an aggregated counter; nothing says who clicked)
//! and answers `302 Found` to the stored address, with `Referrer-Policy: no-referrer` so the
//! destination does not learn the token, and `Cache-Control: no-store` so each click reaches
//! us. A `GET` without `Accept-Language`, which every browser sends, is counted apart as
//! automated (link scanners, previewers, scripts); a `HEAD` (link checkers) gets the same
//! redirect and counts nothing. Scanners that imitate a browser do count as clicks: the README
//! says so. When the count cannot be written in time, the reader is still sent on (a lost
//! count, not a lost reader).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, Denied, PageError};
use crate::store::Follow;

/// `GET` or `HEAD /c/{token}`.
pub(super) async fn follow(
    State(state): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let refuse = |why| state.refuse(state.browser_lang(&headers), why);
    let (campaign_id, link_id) = state
        .keys()
        .verify_click(&token)
        .map_err(|_| refuse(Denied::NotFound))?;
    let how = if method != Method::GET {
        Follow::Look
    } else if headers.contains_key(header::ACCEPT_LANGUAGE) {
        Follow::Click
    } else {
        Follow::Automated
    };
    let counted = match how {
        Follow::Look => Err(Denied::Unavailable),
        _ => {
            state
                .write(|store| store.follow_link(campaign_id, link_id, how))
                .await
        }
    };
    let url = match counted {
        Ok(url) => url,
        Err(_) => state
            .read(|store| store.follow_link(campaign_id, link_id, Follow::Look))
            .await
            .map_err(refuse)?,
    };
    let url = url.ok_or_else(|| refuse(Denied::NotFound))?;
    let location = HeaderValue::from_str(&ascii_url(&url)).map_err(|_| refuse(Denied::NotFound))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// `url` with every byte outside printable ASCII percent-encoded, as a `Location` header
/// carries it (an edition may link to `https://example.org/café`).
fn ascii_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_carries_only_printable_ascii() {
        assert_eq!(
            ascii_url("https://example.org/café?q=a b"),
            "https://example.org/caf%C3%A9?q=a%20b"
        );
        let plain = "https://example.org/a?x=1&y=%20";
        assert_eq!(ascii_url(plain), plain);
        assert!(HeaderValue::from_str(&ascii_url("https://example.org/\u{7f}\r\n")).is_ok());
    }
}
