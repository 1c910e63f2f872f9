//! Email addresses as subscribers give them: validated once, at the door, and normalised.
//!
//! An address is an RFC 5321/5322 `addr-spec` (`local@domain`), with RFC 6531's UTF-8 in the
//! local part. Display names (`Ana <ana@example.org>`), comments, whitespace and control
//! characters are refused: a name belongs in the `name` field, and a CR or LF in an address
//! is a header-injection attempt. The domain is lower-cased and IDNA-encoded
//! (`bücher.example` → `xn--bcher-kva.example`) because DNS is case-insensitive and SMTP
//! needs ASCII; the local part keeps its case, because RFC 5321 lets a server treat `Ana`
//! and `ana` as different mailboxes. Two addresses that differ only by case are nonetheless
//! the same subscriber ([`Address::key`]), as every real mail host treats them.
//!
//! Quoting is canonicalised (RFC 5321 section 4.1.2 says `"x"` and `x` are the same local
//! part): quotes that are not needed are dropped (`"ana"@example.org` is
//! `ana@example.org`) and needless backslashes inside needed quotes too, so that one mailbox
//! is one subscriber and never gets two copies. An IP literal as domain (`x@[192.0.2.1]`)
//! is refused unless the caller allows it ([`Address::parse_with`]): such mailboxes are
//! almost always typing mistakes or probes, and bypass the domain's MX.

use std::fmt;

/// Why an address was refused. Each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing was given.
    #[error("the address is empty")]
    Empty,
    /// `Name <addr>` form.
    #[error(
        "`{0}` has a display name; give only the address (e.g. `{1}`) and put the name in the name field"
    )]
    DisplayName(String, String),
    /// CR, LF, NUL or another control character.
    #[error(
        "the address contains a control character (line break or similar), which is never allowed"
    )]
    ControlCharacter,
    /// A space outside quotes.
    #[error("`{0}` contains a space; an address has none")]
    Whitespace(String),
    /// No `@`, or nothing on one side of it.
    #[error("`{0}` is not an address of the form name@example.org")]
    Shape(String),
    /// The part before `@` breaks RFC 5322.
    #[error("`{0}`: the part before @ {1}")]
    LocalPart(String, &'static str),
    /// The domain breaks RFC 5321 or IDNA.
    #[error("`{0}`: the domain {1}")]
    Domain(String, &'static str),
    /// `x@[192.0.2.1]` where IP literals are not allowed.
    #[error(
        "`{0}`: the domain is an IP literal; use the host's name (or, for a mailbox that really has none, pass --allow-ip-literal)"
    )]
    IpLiteral(String),
    /// Over the limits of RFC 5321 section 4.5.3.1.
    #[error("`{0}` is longer than SMTP allows (64 characters before @, 254 in all)")]
    TooLong(String),
}

/// A valid, normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// `local@domain` with the domain normalised.
    full: String,
    /// Byte index of the `@` in `full`.
    at: usize,
}

impl Address {
    /// Validates and normalises `input`. Surrounding whitespace is trimmed (spreadsheets
    /// leave it); anything else that is not an addr-spec is an error, and so is an IP
    /// literal as domain.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        Self::parse_with(input, false)
    }

    /// [`Address::parse`], accepting an IP literal as domain (`x@[192.0.2.1]`,
    /// `x@[IPv6:2001:db8::1]`, written canonically) when `allow_ip_literal`.
    pub fn parse_with(input: &str, allow_ip_literal: bool) -> Result<Self, AddressError> {
        if input.chars().any(|c| c.is_control()) {
            return Err(AddressError::ControlCharacter);
        }
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
            let inner = s[open + 1..s.len() - 1].trim().to_string();
            return Err(AddressError::DisplayName(s.to_string(), inner));
        }
        let Some(at) = s.rfind('@') else {
            return Err(AddressError::Shape(s.to_string()));
        };
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::Shape(s.to_string()));
        }
        let local = canonical_local(s, local)?;
        let domain = if domain.starts_with('[') {
            if !allow_ip_literal {
                return Err(AddressError::IpLiteral(s.to_string()));
            }
            ip_literal(s, domain)?
        } else {
            normalise_domain(s, domain)?
        };
        if local.len() > 64 || local.len() + 1 + domain.len() > 254 {
            return Err(AddressError::TooLong(s.to_string()));
        }
        Ok(Self {
            at: local.len(),
            full: format!("{local}@{domain}"),
        })
    }

    /// The address as stored and as mailed to.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The part before `@`, in its canonical form (quotes only where needed).
    pub fn local_part(&self) -> &str {
        &self.full[..self.at]
    }

    /// The normalised (lower-case, ASCII) domain.
    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }

    /// Whether delivering to this address needs a relay that announces SMTPUTF8 (RFC 6531):
    /// a non-ASCII local part. (The domain is always ASCII here, IDNA-encoded.)
    pub fn needs_smtputf8(&self) -> bool {
        !self.local_part().is_ascii()
    }

    /// The identity of the subscriber: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.full.to_lowercase()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// RFC 5322 `atext`, plus any non-ASCII character (RFC 6531).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// The local part in its one canonical form: unquoted when it is a dot-atom, else quoted
/// with a backslash only before `"` and `\`.
fn canonical_local(whole: &str, local: &str) -> Result<String, AddressError> {
    let err = |why| AddressError::LocalPart(whole.to_string(), why);
    let Some(inner) = local.strip_prefix('"') else {
        check_dot_atom(whole, local)?;
        return Ok(local.to_string());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        return Err(err("opens a quote it does not close"));
    };
    let mut content = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            content.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Err(err("has an unescaped quote inside quotes"));
        } else {
            content.push(c);
        }
    }
    if escaped {
        return Err(err("ends with a lone backslash"));
    }
    if is_dot_atom(&content) {
        return Ok(content);
    }
    let mut quoted = String::with_capacity(content.len() + 2);
    quoted.push('"');
    for c in content.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Ok(quoted)
}

/// RFC 5322 `dot-atom-text` (with RFC 6531's UTF-8): the form that needs no quotes.
fn is_dot_atom(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('.')
        && !text.ends_with('.')
        && !text.contains("..")
        && text.chars().all(|c| c == '.' || is_atext(c))
}

/// The domain literal of `x@[192.0.2.1]` or `x@[IPv6:2001:db8::1]`, written canonically.
fn ip_literal(whole: &str, domain: &str) -> Result<String, AddressError> {
    let err = || {
        AddressError::Domain(
            whole.to_string(),
            "is not an IP literal such as [192.0.2.1] or [IPv6:2001:db8::1]",
        )
    };
    let inner = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .ok_or_else(err)?;
    if let Some(v6) = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
    {
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| err())?;
        return Ok(format!("[IPv6:{ip}]"));
    }
    let ip: std::net::Ipv4Addr = inner.parse().map_err(|_| err())?;
    Ok(format!("[{ip}]"))
}

fn check_dot_atom(whole: &str, local: &str) -> Result<(), AddressError> {
    let err = |why| AddressError::LocalPart(whole.to_string(), why);
    if local.contains(char::is_whitespace) {
        return Err(AddressError::Whitespace(whole.to_string()));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(err(
            "may not start or end with a dot or have two dots in a row",
        ));
    }
    if !local.chars().all(|c| c == '.' || is_atext(c)) {
        return Err(err(
            "has a character that needs quoting (one of ( ) < > [ ] : ; @ \\ , \")",
        ));
    }
    Ok(())
}

fn normalise_domain(whole: &str, domain: &str) -> Result<String, AddressError> {
    let err = |why| AddressError::Domain(whole.to_string(), why);
    if domain.contains(char::is_whitespace) {
        return Err(AddressError::Whitespace(whole.to_string()));
    }
    let ascii =
        idna::domain_to_ascii(domain).map_err(|_| err("is not a valid (IDNA) host name"))?;
    if ascii.len() > 253 {
        return Err(err("is longer than 253 characters"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(err("has no dot; write the full domain, e.g. example.org"));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(err(
                "has an empty part (two dots in a row, or a dot at an end)",
            ));
        }
        if label.len() > 63 {
            return Err(err("has a part longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err("has a part that starts or ends with a hyphen"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(err("may only hold letters, digits, hyphens and dots"));
        }
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_normalised_local_part_kept() {
        let a = Address::parse("  Ana.Lima@Example.ORG ").expect("valid");
        assert_eq!(a.as_str(), "Ana.Lima@example.org");
        assert_eq!(a.key(), "ana.lima@example.org");
        let b = Address::parse("josé@bücher.example").expect("valid IDN");
        assert_eq!(b.as_str(), "josé@xn--bcher-kva.example");
        assert_eq!(b.local_part(), "josé");
    }

    #[test]
    fn refuses_what_is_not_an_addr_spec() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "ana@",
            "ana@localhost",
            "a..b@example.org",
            ".a@example.org",
            "a b@example.org",
            "a@exa mple.org",
            "a@-x.example.org",
            "a@[127.0.0.1]",
            "a,b@example.org",
            "\"open@example.org",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn display_names_and_injection_are_refused_with_the_fix() {
        let e = Address::parse("Ana <ana@example.org>").expect_err("display name");
        assert!(e.to_string().contains("`ana@example.org`"), "{e}");
        assert_eq!(
            Address::parse("ana@example.org\r\nBcc: x@y.org"),
            Err(AddressError::ControlCharacter)
        );
    }

    #[test]
    fn quotes_are_canonical_so_one_mailbox_is_one_subscriber() {
        for (input, canonical) in [
            ("\"ana\"@example.org", "ana@example.org"),
            ("\"ana.lima\"@example.org", "ana.lima@example.org"),
            ("\"a\\na\"@example.org", "ana@example.org"),
            ("\"josé\"@example.org", "josé@example.org"),
            ("\"john smith\"@example.org", "\"john smith\"@example.org"),
            ("\"john\\ smith\"@example.org", "\"john smith\"@example.org"),
            ("\"a\\\"b\"@example.org", "\"a\\\"b\"@example.org"),
            ("\"a..b\"@example.org", "\"a..b\"@example.org"),
        ] {
            let a = Address::parse(input).expect(input);
            assert_eq!(a.as_str(), canonical, "{input}");
            assert_eq!(Address::parse(canonical).expect(canonical), a);
        }
        let plain = Address::parse("Ana@example.org").expect("valid");
        let quoted = Address::parse("\"ANA\"@Example.org").expect("valid");
        assert_eq!(plain.key(), quoted.key());
    }

    #[test]
    fn ip_literals_only_when_allowed() {
        for input in ["x@[192.0.2.1]", "x@[IPv6:2001:db8::1]"] {
            assert!(matches!(
                Address::parse(input),
                Err(AddressError::IpLiteral(_))
            ));
        }
        let v4 = Address::parse_with("x@[192.0.2.1]", true).expect("allowed");
        assert_eq!(v4.domain(), "[192.0.2.1]");
        let v6 = Address::parse_with("x@[ipv6:2001:DB8:0::1]", true).expect("allowed");
        assert_eq!(v6.as_str(), "x@[IPv6:2001:db8::1]");
        for bad in [
            "x@[300.1.1.1]",
            "x@[192.0.2.1",
            "x@[example.org]",
            "x@[1.2.3.04]",
        ] {
            assert!(Address::parse_with(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_follow_rfc_5321() {
        let local = "a".repeat(65);
        assert!(matches!(
            Address::parse(&format!("{local}@example.org")),
            Err(AddressError::TooLong(_))
        ));
        assert!(Address::parse(&format!("{}@example.org", "a".repeat(64))).is_ok());
        assert!(Address::parse("\"john smith\"@example.org").is_ok());
    }
}
