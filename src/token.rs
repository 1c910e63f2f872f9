//! Signed, unforgeable tokens for the links a subscriber receives: unsubscribe (which never
//! expires, because laws require the link in an old message to keep working) and confirm
//! (which does).
//!
//! A token is the URL-safe base64 of `version | purpose | subscriber id | list id | issued at`
//! (version 1), with `| event id` appended (version 2), followed by a truncated HMAC-SHA256
//! over those bytes and the subscriber's nonce. The event id binds a confirm link to the
//! sign-up that asked for it, and an undo link to the unsubscribe it undoes: the web service
//! honours it only while that event is still the subscription's latest change, so a link
//! replayed after any later change (an opt-out by another route above all) does nothing.
//! Unsubscribe links carry no event and stay version 1: they must keep working for ever. The nonce
//! lives in the database (`subscribers.token_nonce`): it is not in the token, so a token cannot
//! be minted without the database *and* the secret, and changing a subscriber's nonce revokes
//! every link they hold. Verification tries the current secret, then each previous one, so a
//! secret can be rotated without breaking links already in inboxes. Comparisons are constant
//! time.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Secret;

/// Why a token was refused. Deliberately coarse: a caller shows every one of them as the same
/// "this link is not valid" page, so that a forger learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64, wrong length, unknown version.
    #[error("the link is damaged or incomplete")]
    Malformed,
    /// A confirm token used as an unsubscribe token, or the reverse.
    #[error("the link is for another purpose")]
    WrongPurpose,
    /// The signature does not match under any known secret.
    #[error("the link was not issued by this newsletter")]
    BadSignature,
    /// A confirm token older than its validity.
    #[error("the link has expired")]
    Expired,
    /// No secret configured.
    #[error(
        "no token secret is configured: set BULLETIN_SECRET or [server] secret_file (at least 32 characters)"
    )]
    NoSecret,
    /// A secret too short to be safe.
    #[error(
        "the token secret is too short: use at least 32 characters (e.g. `openssl rand -hex 32`)"
    )]
    WeakSecret,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Leave one list (`/u/{token}`, and the RFC 8058 one-click POST).
    Unsubscribe,
    /// Confirm a subscription (double opt-in).
    Confirm,
    /// Undo the unsubscribe just made, from the page that made it (short-lived).
    Undo,
    /// Open the preference centre (`/p/{token}`, the "Manage preferences" link of every
    /// message). Like an unsubscribe link it never expires, since it is also a way to leave;
    /// being a different purpose, neither link can stand in for the other.
    Preferences,
    /// Follow one stored link of a campaign that counts clicks (`/c/{token}`). Names no
    /// subscriber: counts are aggregated per link (see [`Keys::click`]).
    Click,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Self::Unsubscribe => 1,
            Self::Confirm => 2,
            Self::Undo => 3,
            Self::Preferences => 4,
            Self::Click => 5,
        }
    }
}

/// The facts a token carries, once its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// What it is for.
    pub purpose: Purpose,
    /// The subscriber the link was mailed to.
    pub subscriber_id: i64,
    /// The list the link acts on.
    pub list_id: i64,
    /// Unix seconds when it was issued.
    pub issued_at: i64,
    /// The `events` row the link is bound to (confirm and undo links), `None` for unsubscribe
    /// links.
    pub event_id: Option<i64>,
}

const VERSION: u8 = 1;
/// Tokens bound to an event.
const VERSION_BOUND: u8 = 2;
const BODY_LEN: usize = 1 + 1 + 8 + 8 + 8;
const BOUND_BODY_LEN: usize = BODY_LEN + 8;
/// Longer than any token issued (a bound one is 67 characters).
const MAX_TOKEN_CHARS: usize = 80;
/// 128 bits of MAC: far beyond guessing, and keeps URLs short.
const MAC_LEN: usize = 16;
/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// The signing keys: the current secret, and earlier ones still accepted.
#[derive(Clone)]
pub struct Keys {
    current: hmac::Key,
    previous: Vec<hmac::Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys([redacted], {} previous)", self.previous.len())
    }
}

impl Keys {
    /// Keys from the current secret and any previous ones.
    pub fn new(current: &Secret, previous: &[Secret]) -> Result<Self, TokenError> {
        let key = |s: &Secret| -> Result<hmac::Key, TokenError> {
            if s.expose().len() < MIN_SECRET_LEN {
                return Err(TokenError::WeakSecret);
            }
            Ok(hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes()))
        };
        Ok(Self {
            current: key(current)?,
            previous: previous.iter().map(key).collect::<Result<_, _>>()?,
        })
    }

    /// A token for `claims`, bound to the subscriber's `nonce`.
    pub fn issue(&self, claims: Claims, nonce: &str) -> String {
        let body = encode_body(claims);
        let tag = sign(&self.current, &body, nonce);
        let mut bytes = Vec::with_capacity(BOUND_BODY_LEN + MAC_LEN);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&tag.as_ref()[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An unsubscribe token (it never expires).
    pub fn unsubscribe(&self, subscriber_id: i64, list_id: i64, nonce: &str, now: i64) -> String {
        self.issue(
            Claims {
                purpose: Purpose::Unsubscribe,
                subscriber_id,
                list_id,
                issued_at: now,
                event_id: None,
            },
            nonce,
        )
    }

    /// A preference-centre token (it never expires). `list_id` is the list of the message the
    /// link came in: the page starts from it, but the link acts on all the subscriber's lists.
    pub fn preferences(&self, subscriber_id: i64, list_id: i64, nonce: &str, now: i64) -> String {
        self.issue(
            Claims {
                purpose: Purpose::Preferences,
                subscriber_id,
                list_id,
                issued_at: now,
                event_id: None,
            },
            nonce,
        )
    }

    /// Checks a token whose claims were read with [`read`]: the signature under the current or
    /// a previous secret, the purpose, and (for confirm tokens) the age.
    pub fn verify(
        &self,
        token: &str,
        nonce: &str,
        purpose: Purpose,
        now: i64,
        max_age_secs: Option<i64>,
    ) -> Result<Claims, TokenError> {
        let (claims, body, mac) = decode(token)?;
        let valid = std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|key| {
                let tag = sign(key, &body, nonce);
                constant_time_eq(&tag.as_ref()[..MAC_LEN], &mac)
            });
        if !valid {
            return Err(TokenError::BadSignature);
        }
        if claims.purpose != purpose {
            return Err(TokenError::WrongPurpose);
        }
        if let Some(max) = max_age_secs
            && now.saturating_sub(claims.issued_at) > max
        {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The nonce of click tokens: they belong to no subscriber, so there is no per-subscriber
/// nonce to mix in (and none to revoke; a click link only ever leads to a stored URL).
const CLICK_NONCE: &str = "";

impl Keys {
    /// The token of a click link: stored link `link_id` of campaign `campaign_id`, carried in
    /// the claims' `list_id` and `event_id` places (the subscriber is 0, the time 0, so a link
    /// has one token and the messages of a variant share it). It names the link row, never the
    /// URL: `serve` reads the URL from the database, so no token can redirect anywhere else.
    pub fn click(&self, campaign_id: i64, link_id: i64) -> String {
        self.issue(
            Claims {
                purpose: Purpose::Click,
                subscriber_id: 0,
                list_id: campaign_id,
                issued_at: 0,
                event_id: Some(link_id),
            },
            CLICK_NONCE,
        )
    }

    /// `(campaign id, link id)` of a click token made by [`Keys::click`] under the current or
    /// a previous secret.
    pub fn verify_click(&self, token: &str) -> Result<(i64, i64), TokenError> {
        let claims = self.verify(token, CLICK_NONCE, Purpose::Click, 0, None)?;
        match (claims.subscriber_id, claims.event_id) {
            (0, Some(link_id)) => Ok((claims.list_id, link_id)),
            _ => Err(TokenError::Malformed),
        }
    }
}

impl Keys {
    /// The VERP token of one delivery: lower-case hex of the delivery id and a truncated
    /// HMAC-SHA256 of it. Hex, not base64, because the token travels as the local part of an
    /// envelope sender, and some relays and mailbox providers change the case of local parts.
    /// No nonce is mixed in: a bounce may come back days later, after the subscriber's links
    /// were revoked, and must still map to its delivery. The delivery id is not personal data.
    pub fn bounce_token(&self, delivery_id: i64) -> String {
        let tag = sign_bounce(&self.current, delivery_id);
        let mut text = String::with_capacity(2 * (8 + BOUNCE_MAC_LEN));
        for byte in delivery_id
            .to_be_bytes()
            .iter()
            .chain(&tag.as_ref()[..BOUNCE_MAC_LEN])
        {
            text.push_str(&format!("{byte:02x}"));
        }
        text
    }

    /// The delivery id of a VERP token made by [`Keys::bounce_token`] under the current or a
    /// previous secret.
    pub fn verify_bounce(&self, token: &str) -> Result<i64, TokenError> {
        let token = token.to_ascii_lowercase();
        if token.len() != 2 * (8 + BOUNCE_MAC_LEN) || !token.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(TokenError::Malformed);
        }
        let bytes: Vec<u8> = (0..token.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok())
            .collect();
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[..8]);
        let delivery_id = i64::from_be_bytes(id);
        let valid = std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|key| {
                let tag = sign_bounce(key, delivery_id);
                constant_time_eq(&tag.as_ref()[..BOUNCE_MAC_LEN], &bytes[8..])
            });
        if valid {
            Ok(delivery_id)
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

/// 96 bits: a forger would have to guess it to make us blocklist someone.
const BOUNCE_MAC_LEN: usize = 12;

/// The purpose is in the signed bytes so that no other token's MAC can stand for this one.
fn sign_bounce(key: &hmac::Key, delivery_id: i64) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"bulletin-bounce-v1");
    ctx.update(&delivery_id.to_be_bytes());
    ctx.sign()
}

/// Reads a token's claims without checking its signature: the caller needs the subscriber id to
/// fetch the nonce, then must call [`Keys::verify`] before trusting anything.
pub fn read(token: &str) -> Result<Claims, TokenError> {
    decode(token).map(|(claims, _, _)| claims)
}

fn encode_body(c: Claims) -> Vec<u8> {
    let mut body = Vec::with_capacity(BOUND_BODY_LEN);
    body.push(if c.event_id.is_some() {
        VERSION_BOUND
    } else {
        VERSION
    });
    body.push(c.purpose.byte());
    body.extend_from_slice(&c.subscriber_id.to_be_bytes());
    body.extend_from_slice(&c.list_id.to_be_bytes());
    body.extend_from_slice(&c.issued_at.to_be_bytes());
    if let Some(event) = c.event_id {
        body.extend_from_slice(&event.to_be_bytes());
    }
    body
}

fn decode(token: &str) -> Result<(Claims, Vec<u8>, [u8; MAC_LEN]), TokenError> {
    // Longer than any token we issue: refuse before decoding attacker-sized input.
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let mut body = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    let body_len = match body.first() {
        Some(&VERSION) => BODY_LEN,
        Some(&VERSION_BOUND) => BOUND_BODY_LEN,
        _ => return Err(TokenError::Malformed),
    };
    if body.len() != body_len + MAC_LEN {
        return Err(TokenError::Malformed);
    }
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&body[body_len..]);
    body.truncate(body_len);
    let purpose = match body[1] {
        1 => Purpose::Unsubscribe,
        2 => Purpose::Confirm,
        3 => Purpose::Undo,
        4 => Purpose::Preferences,
        5 => Purpose::Click,
        _ => return Err(TokenError::Malformed),
    };
    let int = |range: std::ops::Range<usize>| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[range]);
        i64::from_be_bytes(b)
    };
    Ok((
        Claims {
            purpose,
            subscriber_id: int(2..10),
            list_id: int(10..18),
            issued_at: int(18..26),
            event_id: (body_len == BOUND_BODY_LEN).then(|| int(26..34)),
        },
        body,
        mac,
    ))
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how many leading bytes of a forged MAC were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    a.len() == b.len() && diff == 0
}

fn sign(key: &hmac::Key, body: &[u8], nonce: &str) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(body);
    ctx.update(nonce.as_bytes());
    ctx.sign()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> Keys {
        Keys::new(&Secret::new(secret), &[]).expect("long enough")
    }

    const A: &str = "a-secret-of-at-least-thirty-two-characters";
    const B: &str = "another-secret-of-at-least-thirty-two-chars";

    #[test]
    fn round_trip_and_tampering() {
        let k = keys(A);
        let t = k.unsubscribe(42, 7, "nonce1", 1_000);
        let claims = k
            .verify(&t, "nonce1", Purpose::Unsubscribe, 5_000_000, None)
            .expect("valid");
        assert_eq!((claims.subscriber_id, claims.list_id), (42, 7));
        assert_eq!(read(&t).expect("readable").subscriber_id, 42);
        // Another nonce (revoked), another purpose, another secret, a flipped character.
        assert_eq!(
            k.verify(&t, "nonce2", Purpose::Unsubscribe, 0, None),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            k.verify(&t, "nonce1", Purpose::Confirm, 0, None),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            keys(B).verify(&t, "nonce1", Purpose::Unsubscribe, 0, None),
            Err(TokenError::BadSignature)
        );
        let mut chars: Vec<char> = t.chars().collect();
        chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
        let forged: String = chars.into_iter().collect();
        assert!(
            k.verify(&forged, "nonce1", Purpose::Unsubscribe, 0, None)
                .is_err()
        );
        assert_eq!(read("not a token!"), Err(TokenError::Malformed));
        assert_eq!(read(&"A".repeat(500)), Err(TokenError::Malformed));
    }

    #[test]
    fn rotation_keeps_old_links_working() {
        let old = keys(A).unsubscribe(1, 1, "n", 0);
        let rotated = Keys::new(&Secret::new(B), &[Secret::new(A)]).expect("keys");
        assert!(
            rotated
                .verify(&old, "n", Purpose::Unsubscribe, 0, None)
                .is_ok()
        );
    }

    #[test]
    fn confirm_tokens_expire() {
        let k = keys(A);
        let t = k.issue(
            Claims {
                purpose: Purpose::Confirm,
                subscriber_id: 1,
                list_id: 2,
                issued_at: 100,
                event_id: Some(9),
            },
            "n",
        );
        assert!(
            k.verify(&t, "n", Purpose::Confirm, 100 + 60, Some(3600))
                .is_ok()
        );
        assert_eq!(
            k.verify(&t, "n", Purpose::Confirm, 100 + 3601, Some(3600)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn the_bound_event_is_signed() {
        let k = keys(A);
        let claims = Claims {
            purpose: Purpose::Undo,
            subscriber_id: 1,
            list_id: 2,
            issued_at: 100,
            event_id: Some(41),
        };
        let t = k.issue(claims, "n");
        assert!(t.len() <= MAX_TOKEN_CHARS, "{}", t.len());
        assert_eq!(k.verify(&t, "n", Purpose::Undo, 100, Some(60)), Ok(claims));
        // The same link bound to another event: the MAC no longer matches.
        let other = k.issue(
            Claims {
                event_id: Some(42),
                ..claims
            },
            "n",
        );
        let mut forged = URL_SAFE_NO_PAD.decode(&t).expect("base64");
        let mac = URL_SAFE_NO_PAD.decode(&other).expect("base64")[BOUND_BODY_LEN..].to_vec();
        forged[BOUND_BODY_LEN..].copy_from_slice(&mac);
        assert_eq!(
            k.verify(
                &URL_SAFE_NO_PAD.encode(forged),
                "n",
                Purpose::Undo,
                100,
                None
            ),
            Err(TokenError::BadSignature)
        );
        // Unsubscribe links stay unbound and short.
        let u = k.unsubscribe(1, 2, "n", 100);
        assert_eq!(read(&u).expect("readable").event_id, None);
        assert!(u.len() <= 64);
    }

    #[test]
    fn preference_and_unsubscribe_links_are_not_interchangeable() {
        let k = keys(A);
        let p = k.preferences(1, 2, "n", 100);
        let claims = k
            .verify(&p, "n", Purpose::Preferences, 9_000_000_000, None)
            .expect("a preference link never expires");
        assert_eq!((claims.subscriber_id, claims.list_id), (1, 2));
        assert_eq!(
            k.verify(&p, "n", Purpose::Unsubscribe, 100, None),
            Err(TokenError::WrongPurpose)
        );
        let u = k.unsubscribe(1, 2, "n", 100);
        assert_eq!(
            k.verify(&u, "n", Purpose::Preferences, 100, None),
            Err(TokenError::WrongPurpose)
        );
        assert_ne!(p, u);
    }

    #[test]
    fn bounce_tokens_round_trip_and_refuse_forgeries() {
        let k = keys(A);
        let t = k.bounce_token(1234);
        assert_eq!(t.len(), 40);
        assert_eq!(k.verify_bounce(&t), Ok(1234));
        // A relay that upper-cases the local part changes nothing.
        assert_eq!(k.verify_bounce(&t.to_ascii_uppercase()), Ok(1234));
        assert_eq!(keys(B).verify_bounce(&t), Err(TokenError::BadSignature));
        let rotated = Keys::new(&Secret::new(B), &[Secret::new(A)]).expect("keys");
        assert_eq!(rotated.verify_bounce(&t), Ok(1234));
        // Another delivery id with the same MAC.
        let forged = format!("{:016x}{}", 1235, &t[16..]);
        assert_eq!(k.verify_bounce(&forged), Err(TokenError::BadSignature));
        assert_eq!(k.verify_bounce("zz"), Err(TokenError::Malformed));
    }

    #[test]
    fn click_tokens_name_one_link_and_no_one() {
        let k = keys(A);
        let t = k.click(7, 31);
        assert!(t.len() <= MAX_TOKEN_CHARS, "{}", t.len());
        assert_eq!(k.verify_click(&t), Ok((7, 31)));
        assert_eq!(
            t,
            k.click(7, 31),
            "one token per link, shared by every message"
        );
        // Rotation keeps links in old messages working.
        let rotated = Keys::new(&Secret::new(B), &[Secret::new(A)]).expect("keys");
        assert_eq!(rotated.verify_click(&t), Ok((7, 31)));
        assert_eq!(keys(B).verify_click(&t), Err(TokenError::BadSignature));
        // Another link (or campaign) with this link's MAC.
        let mut forged = URL_SAFE_NO_PAD.decode(&t).expect("base64");
        forged[BOUND_BODY_LEN - 1] ^= 1;
        assert_eq!(
            k.verify_click(&URL_SAFE_NO_PAD.encode(&forged)),
            Err(TokenError::BadSignature)
        );
        // Not interchangeable with the other purposes.
        assert_eq!(
            k.verify(&t, "", Purpose::Unsubscribe, 0, None),
            Err(TokenError::WrongPurpose)
        );
        let u = k.unsubscribe(0, 7, "", 0);
        assert_eq!(k.verify_click(&u), Err(TokenError::WrongPurpose));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            Keys::new(&Secret::new("short"), &[]),
            Err(TokenError::WeakSecret)
        ));
    }
}
