//! Signed, unforgeable tokens for the links a subscriber receives: unsubscribe (which never
//! expires, because laws require the link in an old message to keep working) and confirm
//! (which does).
//!
//! A token is the URL-safe base64 of `version | purpose | subscriber id | list id | issued at`
//! followed by a truncated HMAC-SHA256 over those bytes and the subscriber's nonce. The nonce
//! lives in the database (`subscribers.token_nonce`): it is not in the token, so a token cannot
//! be minted without the database *and* the secret, and changing a subscriber's nonce revokes
//! every link they hold. Verification tries the current secret, then each previous one, so a
//! secret can be rotated without breaking links already in inboxes. Comparisons are constant
//! time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

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
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Self::Unsubscribe => 1,
            Self::Confirm => 2,
        }
    }
}

/// The facts a token carries, once its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// What it is for.
    pub purpose: Purpose,
    /// The subscriber.
    pub subscriber_id: i64,
    /// The list.
    pub list_id: i64,
    /// Unix seconds when it was issued.
    pub issued_at: i64,
}

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 1 + 8 + 8 + 8;
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
        let mut bytes = Vec::with_capacity(BODY_LEN + MAC_LEN);
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

/// Reads a token's claims without checking its signature: the caller needs the subscriber id to
/// fetch the nonce, then must call [`Keys::verify`] before trusting anything.
pub fn read(token: &str) -> Result<Claims, TokenError> {
    decode(token).map(|(claims, _, _)| claims)
}

fn encode_body(c: Claims) -> [u8; BODY_LEN] {
    let mut body = [0u8; BODY_LEN];
    body[0] = VERSION;
    body[1] = c.purpose.byte();
    body[2..10].copy_from_slice(&c.subscriber_id.to_be_bytes());
    body[10..18].copy_from_slice(&c.list_id.to_be_bytes());
    body[18..26].copy_from_slice(&c.issued_at.to_be_bytes());
    body
}

fn decode(token: &str) -> Result<(Claims, [u8; BODY_LEN], [u8; MAC_LEN]), TokenError> {
    // Longer than any token we issue: refuse before decoding attacker-sized input.
    if token.len() > 64 {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() != BODY_LEN + MAC_LEN || bytes[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let mut body = [0u8; BODY_LEN];
    body.copy_from_slice(&bytes[..BODY_LEN]);
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&bytes[BODY_LEN..]);
    let purpose = match body[1] {
        1 => Purpose::Unsubscribe,
        2 => Purpose::Confirm,
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
    fn short_secrets_are_refused() {
        assert!(matches!(
            Keys::new(&Secret::new("short"), &[]),
            Err(TokenError::WeakSecret)
        ));
    }
}
