//! DKIM signing (RFC 6376), RSA-SHA256 or Ed25519-SHA256 (RFC 8463), relaxed/relaxed.
//!
//! Written against the built message bytes rather than through lettre's `DkimConfig`, whose
//! default signs only From, Subject, To and Date: Gmail and Yahoo want the RFC 8058
//! `List-Unsubscribe` and `List-Unsubscribe-Post` headers covered too, and we sign every
//! header we write. The signing is aws-lc-rs's: constant-time, about twice as fast as ring at
//! RSA-2048 (which is what sets the speed of a signed send), several times faster than the
//! pure-Rust `rsa` crate lettre uses, and the same provider rustls uses for the relay's TLS, so
//! the binary carries one cryptography library.

use aws_lc_rs::signature::{Ed25519KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The headers we sign, in this order: every one we write (`Reply-To` and `Feedback-ID` only
/// when configured). Listing one that is absent stops anyone adding it later.
const SIGNED: &[&str] = &[
    "from",
    "reply-to",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
];

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// Unreadable file.
    #[error("cannot read the DKIM key {path}: {source}")]
    Read {
        /// The key file named by `[dkim] key_file`.
        path: std::path::PathBuf,
        /// What went wrong, for the operator.
        source: std::io::Error,
    },
    /// Not a PEM key we can use.
    #[error(
        "{path} is not a usable DKIM key ({why}); give an RSA key (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`, 1024–4096 bits) \
         or an Ed25519 key (PKCS#8), e.g. `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem`"
    )]
    Key {
        /// The key file named by `[dkim] key_file`.
        path: std::path::PathBuf,
        /// What was wrong.
        why: String,
    },
}

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A loaded signing key with its domain and selector.
pub struct Signer {
    key: Key,
    domain: String,
    selector: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signer(d={}, s={}, key [redacted])",
            self.domain, self.selector
        )
    }
}

impl Signer {
    /// The signer for `[dkim]`, when the section is present.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Self>, DkimError> {
        match &config.dkim {
            None => Ok(None),
            Some(d) => Self::load(&d.domain, &d.selector, &d.key_file).map(Some),
        }
    }

    /// The public half as DKIM publishes it in DNS: the `k=` tag and the bytes of `p=`
    /// (RSA: the SubjectPublicKeyInfo DER, as `openssl pkey -pubout` writes it; Ed25519: the
    /// raw 32-byte key, RFC 8463).
    pub fn public_key(&self) -> (&'static str, Vec<u8>) {
        use aws_lc_rs::encoding::AsDer as _;
        use aws_lc_rs::signature::KeyPair as _;
        match &self.key {
            Key::Rsa(k) => (
                "rsa",
                // Fails only if aws-lc cannot allocate; an empty key then never matches DNS.
                k.public_key()
                    .as_der()
                    .map(|d| d.as_ref().to_vec())
                    .unwrap_or_default(),
            ),
            Key::Ed25519(k) => ("ed25519", k.public_key().as_ref().to_vec()),
        }
    }

    /// Loads `key_file` (PEM).
    pub fn load(
        domain: &str,
        selector: &str,
        key_file: &std::path::Path,
    ) -> Result<Self, DkimError> {
        let text = std::fs::read_to_string(key_file).map_err(|source| DkimError::Read {
            path: key_file.to_path_buf(),
            source,
        })?;
        let bad = |why: &str| DkimError::Key {
            path: key_file.to_path_buf(),
            why: why.to_string(),
        };
        let (label, der) = pem_block(&text).ok_or_else(|| bad("no PEM block found"))?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => {
                Key::Rsa(RsaKeyPair::from_der(&der).map_err(|e| bad(&format!("RSA: {e}")))?)
            }
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(k) => Key::Rsa(k),
                Err(rsa) => Key::Ed25519(
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                        .map_err(|ed| bad(&format!("neither RSA ({rsa}) nor Ed25519 ({ed})")))?,
                ),
            },
            other => return Err(bad(&format!("a PEM block `{other}`, not a private key"))),
        };
        Ok(Self {
            key,
            domain: domain.to_string(),
            selector: selector.to_string(),
        })
    }

    /// Returns `message` with a `DKIM-Signature` header in front.
    pub fn sign(&self, message: &[u8], unix_time: i64) -> Vec<u8> {
        let split = find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 2);
        let (head, body) = (
            &message[..split],
            &message[(split + 2).min(message.len())..],
        );
        let body_hash = STANDARD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &relaxed_body(body),
        ));
        let algorithm = match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        let headers = parse_headers(head);
        let value = format!(
            "v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={}; t={unix_time}; h={}; bh={body_hash}; b=",
            self.domain,
            self.selector,
            SIGNED.join(":")
        );
        let mut data = Vec::with_capacity(2048);
        for name in SIGNED {
            // RFC 6376 5.4: a listed header that is absent contributes nothing, and a header
            // added later then breaks the signature, which is what listing it is for.
            if let Some((_, v)) = headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                data.extend_from_slice(relaxed_header(name, v).as_bytes());
                data.extend_from_slice(b"\r\n");
            }
        }
        data.extend_from_slice(relaxed_header("dkim-signature", &value).as_bytes());
        let signature = match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                // Signing only fails for an output buffer of the wrong size, which
                // `public_modulus_len` rules out; an empty b= would then simply not verify.
                if k.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    &data,
                    &mut sig,
                )
                .is_err()
                {
                    sig.clear();
                }
                sig
            }
            // RFC 8463: Ed25519 signs the SHA-256 of the canonicalised headers.
            Key::Ed25519(k) => k
                .sign(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data).as_ref())
                .as_ref()
                .to_vec(),
        };
        let header = format!(
            "DKIM-Signature: {value}{}\r\n",
            fold_b64(&STANDARD.encode(signature))
        );
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        out
    }
}

fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let end_marker = format!("-----END {label}-----");
    let body_start = label_end + 5;
    let body_end = rest.find(&end_marker)?;
    let b64: String = rest[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Header fields as (name, raw value with folding), in order.
fn parse_headers(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push_str("\r\n");
                last.1.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

/// RFC 6376 3.4.2: lower-case name, unfold, runs of white space to one space, trimmed.
fn relaxed_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let mut v = String::with_capacity(unfolded.len());
    let mut space = false;
    for c in unfolded.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !v.is_empty() {
                v.push(' ');
            }
            space = false;
            v.push(c);
        }
    }
    format!("{}:{v}", name.trim().to_ascii_lowercase())
}

/// RFC 6376 3.4.4: trailing white space of each line removed, inner runs to one space, empty
/// lines at the end removed, a non-empty body ends with CRLF.
///
/// The bodies bulletin builds are already in this form (`mail::quoted_printable` writes them
/// so): those are hashed as they are, after a check that costs a few SIMD passes, instead of
/// being copied byte by byte. Any other body takes the general path.
pub(crate) fn relaxed_body(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if is_relaxed_canonical(body) {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                }
                space = false;
                out.push(b);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    while out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    if out == b"\r\n" {
        out.clear();
    }
    std::borrow::Cow::Owned(out)
}

/// Whether relaxed canonicalisation would leave `body` unchanged: empty, or ending in exactly
/// one CRLF, every line ending in CRLF, no tab, no two spaces in a row, no space before a
/// line's end.
pub(crate) fn is_relaxed_canonical(body: &[u8]) -> bool {
    use memchr::memmem;
    if body.is_empty() {
        return true;
    }
    body.ends_with(b"\r\n")
        && !body.ends_with(b"\r\n\r\n")
        && body != b"\r\n"
        && memchr::memchr(b'\t', body).is_none()
        && memmem::find(body, b"  ").is_none()
        && memmem::find(body, b" \r\n").is_none()
        && memchr::memchr_iter(b'\n', body).all(|i| i > 0 && body[i - 1] == b'\r')
}

/// Folds the signature so the header's lines stay short (white space in b= is ignored).
fn fold_b64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 70 * 3);
    for (i, chunk) in b64.as_bytes().chunks(70).enumerate() {
        if i > 0 {
            out.push_str("\r\n ");
        }
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_canonicalises_exactly_as_the_general_one() {
        let slow = |body: &[u8]| {
            // Force the general path by making the body non-canonical in a way that relaxed
            // canonicalisation removes: a trailing empty line.
            let mut b = body.to_vec();
            b.extend_from_slice(b"\r\n\r\n");
            relaxed_body(&b).into_owned()
        };
        let cases: &[&[u8]] = &[
            b"",
            b"\r\n",
            b"a\r\n",
            b"a b\r\n",
            b"a  b\r\n",
            b"a\tb\r\n",
            b"a \r\n",
            b"a\nb\r\n",
            b"a\r\n\r\n",
            b"a\rb\r\n",
            b" a\r\n b\r\n",
            b"no final line end",
        ];
        for &case in cases {
            let fast = relaxed_body(case);
            let expected = if case.is_empty() {
                Vec::new()
            } else {
                slow(case)
            };
            assert_eq!(
                fast.as_ref(),
                expected.as_slice(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
        assert!(matches!(
            relaxed_body(b"a b\r\nc\r\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn relaxed_canonicalisation_follows_rfc_6376_examples() {
        // RFC 6376 section 3.4.5.
        assert_eq!(relaxed_header("A", " X\r\n"), "a:X");
        assert_eq!(relaxed_header("B ", " Y\t\r\n\tZ  "), "b:Y Z");
        assert_eq!(
            relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n").as_ref(),
            b" C\r\nD E\r\n".as_slice()
        );
        assert!(relaxed_body(b"").is_empty());
    }

    #[test]
    fn a_wrong_key_file_is_named_with_the_fix() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("k.pem");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let err = Signer::load("example.org", "s", &path).expect_err("not a key");
        assert!(err.to_string().contains("openssl genpkey"), "{err}");
        let err =
            Signer::load("example.org", "s", &dir.path().join("missing.pem")).expect_err("missing");
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}
