//! DKIM key records (RFC 6376 3.6.1), DMARC records (RFC 7489 6.3) and the organisational
//! domain that DMARC's relaxed alignment compares.

use std::collections::BTreeMap;

/// `tag=value; tag=value` as both DKIM and DMARC write them: tags lowercased, values with
/// their whitespace trimmed; the error names a malformed tag.
pub fn tags(record: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in record.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (tag, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not tag=value"))?;
        let tag = tag.trim().to_ascii_lowercase();
        if out.insert(tag.clone(), value.trim().to_string()).is_some() {
            return Err(format!("the tag `{tag}` appears twice"));
        }
    }
    Ok(out)
}

/// What a DKIM key record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// `k=`, `rsa` when absent.
    pub kind: String,
    /// `p=` decoded; empty when the key was revoked.
    pub key: Vec<u8>,
    /// `t=y`: the domain is testing DKIM, and receivers treat signatures as unsigned.
    pub testing: bool,
}

/// Parses a DKIM key record; the error says what is wrong.
pub fn dkim_key(record: &str) -> Result<DkimKey, String> {
    use base64::Engine as _;
    let tags = tags(record)?;
    if let Some(v) = tags.get("v") {
        if v != "DKIM1" {
            return Err(format!("v={v}, where only v=DKIM1 is defined"));
        }
    }
    let p = tags
        .get("p")
        .ok_or_else(|| "no p= tag (the public key)".to_string())?;
    let b64: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("p= is not base64: {e}"))?;
    let testing = tags
        .get("t")
        .is_some_and(|t| t.split(':').any(|f| f.trim() == "y"));
    Ok(DkimKey {
        kind: tags
            .get("k")
            .map_or_else(|| "rsa".to_string(), |k| k.to_ascii_lowercase()),
        key,
        testing,
    })
}

/// Whether a published RSA key equals ours: DKIM publishes the SubjectPublicKeyInfo, though
/// some tools publish the bare PKCS#1 RSAPublicKey, which receivers accept too; the SPKI
/// ends with exactly those bytes.
pub fn same_key(kind: &str, published: &[u8], ours: &[u8]) -> bool {
    if published.is_empty() {
        return false;
    }
    published == ours
        || (kind == "rsa" && ours.len() > published.len() && ours.ends_with(published))
}

/// What a DMARC record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    /// `p=`: none, quarantine or reject.
    pub policy: String,
    /// `adkim=s`: the DKIM domain must equal the From domain.
    pub strict_dkim: bool,
    /// `aspf=s`: the envelope domain must equal the From domain.
    pub strict_spf: bool,
    /// `rua=`, when reports are asked for.
    pub rua: Option<String>,
}

/// Parses a DMARC record (`v=DMARC1` first, `p=` required).
pub fn dmarc(record: &str) -> Result<Dmarc, String> {
    let first = record.split(';').next().unwrap_or_default();
    if first.replace(' ', "") != "v=DMARC1" {
        return Err("the record must start with v=DMARC1".into());
    }
    let tags = tags(record)?;
    let policy = tags
        .get("p")
        .ok_or_else(|| "no p= tag (none, quarantine or reject)".to_string())?
        .to_ascii_lowercase();
    if !matches!(policy.as_str(), "none" | "quarantine" | "reject") {
        return Err(format!(
            "p={policy}: the policy must be none, quarantine or reject"
        ));
    }
    let strict = |tag: &str| tags.get(tag).is_some_and(|v| v.eq_ignore_ascii_case("s"));
    Ok(Dmarc {
        policy,
        strict_dkim: strict("adkim"),
        strict_spf: strict("aspf"),
        rua: tags.get("rua").cloned(),
    })
}

/// The organisational domain, simplified to the last two labels (`news.example.org` →
/// `example.org`) instead of the public suffix list. Under a two-label public suffix
/// (`example.co.uk` gives `co.uk`) that would call unrelated domains aligned, which is why
/// [`aligned`] compares one label more there.
pub fn organisational(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() <= 2 {
        return domain;
    }
    labels[labels.len() - 2..].join(".")
}

/// Relaxed alignment: the same organisational domain, and for short (two-letter) second-level
/// labels such as `co.uk`, the same third label too; strict: the same domain.
pub fn aligned(a: &str, b: &str, strict: bool) -> bool {
    let (a, b) = (
        a.trim_end_matches('.').to_ascii_lowercase(),
        b.trim_end_matches('.').to_ascii_lowercase(),
    );
    if strict || a == b {
        return a == b;
    }
    let org = organisational(&a);
    if org != organisational(&b) {
        return false;
    }
    let second = org.split('.').next().unwrap_or_default();
    if second.len() <= 3 {
        // Probably a public suffix such as co.uk or com.au: compare one label more.
        let three = |d: &str| {
            let l: Vec<&str> = d.split('.').collect();
            l[l.len().saturating_sub(3)..].join(".")
        };
        return three(&a) == three(&b);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dkim_records() {
        let k = dkim_key("v=DKIM1; k=rsa; t=y; p=AAEC").expect("valid");
        assert_eq!(k.key, vec![0, 1, 2]);
        assert!(k.testing);
        assert_eq!(
            dkim_key("v=DKIM1; p=").expect("revoked").key,
            Vec::<u8>::new()
        );
        assert!(dkim_key("v=DKIM1; k=rsa").is_err());
        assert!(dkim_key("v=DKIM1; p=!!!").is_err());
        assert!(same_key("rsa", &[3, 4], &[9, 9, 3, 4]));
        assert!(!same_key("ed25519", &[3, 4], &[9, 9, 3, 4]));
        assert!(!same_key("rsa", &[], &[9]));
    }

    #[test]
    fn dmarc_records_and_alignment() {
        let d = dmarc("v=DMARC1; p=quarantine; adkim=s; rua=mailto:d@example.org").expect("ok");
        assert_eq!(d.policy, "quarantine");
        assert!(d.strict_dkim && !d.strict_spf);
        assert!(dmarc("p=none; v=DMARC1").is_err());
        assert!(dmarc("v=DMARC1; p=maybe").is_err());
        assert!(dmarc("v=DMARC1; rua=mailto:x@example.org").is_err());
        assert_eq!(organisational("a.news.example.org"), "example.org");
        assert!(aligned("bounces.example.org", "example.org", false));
        assert!(!aligned("bounces.example.org", "example.org", true));
        assert!(!aligned("example.net", "example.org", false));
        assert!(!aligned("a.co.uk", "b.co.uk", false));
        assert!(aligned("news.a.co.uk", "a.co.uk", false));
    }
}
