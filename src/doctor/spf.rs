//! SPF (RFC 7208) `check_host()` for one address and one domain: the record is parsed whole
//! first (a syntax error anywhere is a permerror, §4.6), then its mechanisms are tried in
//! order, following `include:` and `redirect=` under the limit of 10 DNS-querying terms and 2
//! void lookups (§4.6.4). Macros (§7) are not expanded: a record that uses them is reported
//! as one `doctor` cannot judge, never as a pass or a fail.

use std::net::IpAddr;

use futures_util::future::BoxFuture;

use super::dns::Dns;

/// The result of `check_host()` (RFC 7208 §2.6), with what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfResult {
    /// Authorised, by this mechanism.
    Pass(String),
    /// Explicitly not authorised (`-`), by this mechanism.
    Fail(String),
    /// Probably not authorised (`~`).
    SoftFail(String),
    /// No statement (`?`, or nothing matched and no `all`).
    Neutral(String),
    /// No SPF record at the domain.
    None,
    /// The record is broken: receivers treat it as a failure.
    PermError(String),
    /// A lookup failed; a receiver would try again later.
    TempError(String),
    /// Uses macros, which `doctor` does not expand.
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mechanism {
    All,
    Include(String),
    A(Option<String>, u8, u8),
    Mx(Option<String>, u8, u8),
    Ip(IpAddr, u8),
    Exists(String),
    Ptr,
}

#[derive(Debug, Clone)]
struct Term {
    qualifier: Qualifier,
    mechanism: Mechanism,
    text: String,
}

/// A parsed record: its mechanisms in order and its `redirect=`.
#[derive(Debug, Clone)]
pub struct Record {
    terms: Vec<Term>,
    redirect: Option<String>,
}

/// The SPF records among `txt`: those that are `v=spf1` alone or followed by a space.
pub fn spf_records(txt: &[String]) -> Vec<&String> {
    txt.iter()
        .filter(|t| {
            let lower = t.to_ascii_lowercase();
            lower == "v=spf1" || lower.starts_with("v=spf1 ")
        })
        .collect()
}

/// Parses one record (starting `v=spf1`); the error says which term is wrong and why.
pub fn parse(record: &str) -> Result<Record, String> {
    let mut words = record.split_ascii_whitespace();
    match words.next() {
        Some(v) if v.eq_ignore_ascii_case("v=spf1") => {}
        _ => return Err("the record does not start with v=spf1".into()),
    }
    let mut terms = Vec::new();
    let mut redirect = None;
    for word in words {
        if word.contains('%') {
            return Err(format!("macro:{word}"));
        }
        // A modifier is `name=value` with a name of letters, digits, `-`, `_`, `.`.
        if let Some((name, value)) = word.split_once('=') {
            let is_name = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && name.starts_with(|c: char| c.is_ascii_alphabetic());
            if is_name && !name.contains(':') {
                if name.eq_ignore_ascii_case("redirect") {
                    if redirect.is_some() {
                        return Err("`redirect=` appears twice".into());
                    }
                    redirect = Some(domain_spec(value, word)?);
                }
                // `exp=` and unknown modifiers change nothing about the result (§6).
                continue;
            }
        }
        terms.push(term(word)?);
    }
    Ok(Record { terms, redirect })
}

fn domain_spec(value: &str, word: &str) -> Result<String, String> {
    let d = value.trim_end_matches('.');
    let ok = d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if ok {
        Ok(d.to_ascii_lowercase())
    } else {
        Err(format!("`{word}`: `{value}` is not a domain"))
    }
}

/// `/24`, `//64` or both after a domain of `a` and `mx`.
fn cidrs(rest: &str, word: &str) -> Result<(u8, u8), String> {
    let bad = || format!("`{word}`: bad CIDR length");
    let (v4, v6) = match rest.split_once("//") {
        Some((v4, v6)) => (v4, Some(v6)),
        None => (rest, None),
    };
    let v4 = match v4.strip_prefix('/') {
        Some(n) => n.parse::<u8>().ok().filter(|n| *n <= 32).ok_or_else(bad)?,
        None if v4.is_empty() => 32,
        None => return Err(bad()),
    };
    let v6 = match v6 {
        Some(n) => n.parse::<u8>().ok().filter(|n| *n <= 128).ok_or_else(bad)?,
        None => 128,
    };
    Ok((v4, v6))
}

fn term(word: &str) -> Result<Term, String> {
    let (qualifier, rest) = match word.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &word[1..]),
        Some(b'-') => (Qualifier::Fail, &word[1..]),
        Some(b'~') => (Qualifier::SoftFail, &word[1..]),
        Some(b'?') => (Qualifier::Neutral, &word[1..]),
        _ => (Qualifier::Pass, word),
    };
    let end = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, tail) = rest.split_at(end);
    let name = name.to_ascii_lowercase();
    // `a:example.org/24`: the domain runs to the first `/`.
    let (target, cidr) = match tail.strip_prefix(':') {
        Some(t) => {
            let slash = t.find('/').unwrap_or(t.len());
            (Some(&t[..slash]), &t[slash..])
        }
        None => (None, tail),
    };
    let need = |t: Option<&str>| {
        t.ok_or_else(|| format!("`{word}` needs a domain after `:`"))
            .and_then(|d| domain_spec(d, word))
    };
    let mechanism = match name.as_str() {
        "all" if tail.is_empty() => Mechanism::All,
        "include" if cidr.is_empty() => Mechanism::Include(need(target)?),
        "exists" if cidr.is_empty() => Mechanism::Exists(need(target)?),
        "ptr" => Mechanism::Ptr,
        "a" | "mx" => {
            let domain = target.map(|d| domain_spec(d, word)).transpose()?;
            let (v4, v6) = cidrs(cidr, word)?;
            if name == "a" {
                Mechanism::A(domain, v4, v6)
            } else {
                Mechanism::Mx(domain, v4, v6)
            }
        }
        "ip4" | "ip6" => {
            let text = &rest[name.len()..];
            let text = text
                .strip_prefix(':')
                .ok_or_else(|| format!("`{word}` needs an address after `:`"))?;
            let (addr, len) = match text.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (text, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{word}`: `{addr}` is not an address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if (name == "ip4") != ip.is_ipv4() {
                return Err(format!(
                    "`{word}`: {name} with an address of the other family"
                ));
            }
            let len = match len {
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("`{word}`: bad prefix length"))?,
                None => max,
            };
            Mechanism::Ip(ip, len)
        }
        _ => return Err(format!("`{word}` is not an SPF mechanism")),
    };
    Ok(Term {
        qualifier,
        mechanism,
        text: word.to_string(),
    })
}

/// Whether `ip` is inside `net/len` (of the same family).
pub fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// One evaluation's counters, shared down `include:` and `redirect=`.
pub struct Evaluator<'d> {
    dns: &'d dyn Dns,
    lookups: usize,
    voids: usize,
}

/// RFC 7208 §4.6.4.
const MAX_LOOKUPS: usize = 10;
const MAX_VOIDS: usize = 2;

enum Step {
    Match,
    NoMatch,
    Stop(SpfResult),
}

impl<'d> Evaluator<'d> {
    /// A fresh evaluation over `dns`.
    pub fn new(dns: &'d dyn Dns) -> Self {
        Self {
            dns,
            lookups: 0,
            voids: 0,
        }
    }

    /// `check_host(ip, domain)`.
    pub fn check_host<'s>(&'s mut self, ip: IpAddr, domain: String) -> BoxFuture<'s, SpfResult> {
        Box::pin(async move {
            let txt = match self.dns.txt(&domain).await {
                Ok(t) => t,
                Err(e) => return SpfResult::TempError(e.0),
            };
            let found = spf_records(&txt);
            let record = match found.as_slice() {
                [] => return SpfResult::None,
                [one] => (*one).clone(),
                _ => {
                    return SpfResult::PermError(format!(
                        "{domain} publishes {} SPF records; there must be exactly one",
                        found.len()
                    ));
                }
            };
            let parsed = match parse(&record) {
                Ok(p) => p,
                Err(e) if e.starts_with("macro:") => {
                    return SpfResult::Unsupported(format!(
                        "{domain}'s record uses the macro `{}`, which doctor does not expand",
                        &e["macro:".len()..]
                    ));
                }
                Err(e) => return SpfResult::PermError(format!("{domain}: {e}")),
            };
            for term in &parsed.terms {
                match self.matches(ip, &domain, term).await {
                    Step::Stop(result) => return result,
                    Step::NoMatch => {}
                    Step::Match => {
                        let why = format!("`{}` in {domain}'s record", term.text);
                        return match term.qualifier {
                            Qualifier::Pass => SpfResult::Pass(why),
                            Qualifier::Fail => SpfResult::Fail(why),
                            Qualifier::SoftFail => SpfResult::SoftFail(why),
                            Qualifier::Neutral => SpfResult::Neutral(why),
                        };
                    }
                }
            }
            if let Some(target) = parsed.redirect {
                if let Some(stop) = self.count() {
                    return stop;
                }
                return match self.check_host(ip, target.clone()).await {
                    SpfResult::None => SpfResult::PermError(format!(
                        "{domain}'s redirect={target} names a domain without an SPF record"
                    )),
                    other => other,
                };
            }
            SpfResult::Neutral(format!(
                "nothing in {domain}'s record matched, and it has no `all`"
            ))
        })
    }

    /// Counts one DNS-querying term; the 11th is a permerror.
    fn count(&mut self) -> Option<SpfResult> {
        self.lookups += 1;
        (self.lookups > MAX_LOOKUPS).then(|| {
            SpfResult::PermError(format!(
                "more than {MAX_LOOKUPS} DNS-querying terms (include, a, mx, ptr, exists, redirect); \
                 receivers stop there (RFC 7208 4.6.4): flatten some includes into ip4:/ip6:"
            ))
        })
    }

    /// Counts a lookup that found nothing; the 3rd is a permerror.
    fn void(&mut self, name: &str) -> Option<SpfResult> {
        self.voids += 1;
        (self.voids > MAX_VOIDS).then(|| {
            SpfResult::PermError(format!(
                "more than {MAX_VOIDS} lookups found nothing (the last: {name}); receivers stop there \
                 (RFC 7208 4.6.4)"
            ))
        })
    }

    async fn addresses_match(&mut self, ip: IpAddr, name: &str, v4: u8, v6: u8) -> Step {
        match self.dns.ips(name).await {
            Err(e) => Step::Stop(SpfResult::TempError(e.0)),
            Ok(found) if found.is_empty() => match self.void(name) {
                Some(stop) => Step::Stop(stop),
                None => Step::NoMatch,
            },
            Ok(found) => {
                let hit = found.iter().any(|a| {
                    let len = if a.is_ipv4() { v4 } else { v6 };
                    in_network(ip, *a, len)
                });
                if hit { Step::Match } else { Step::NoMatch }
            }
        }
    }

    async fn matches(&mut self, ip: IpAddr, domain: &str, term: &Term) -> Step {
        match &term.mechanism {
            Mechanism::All => Step::Match,
            Mechanism::Ip(net, len) => {
                if in_network(ip, *net, *len) {
                    Step::Match
                } else {
                    Step::NoMatch
                }
            }
            Mechanism::Include(target) => {
                if let Some(stop) = self.count() {
                    return Step::Stop(stop);
                }
                match self.check_host(ip, target.clone()).await {
                    SpfResult::Pass(_) => Step::Match,
                    SpfResult::Fail(_) | SpfResult::SoftFail(_) | SpfResult::Neutral(_) => {
                        Step::NoMatch
                    }
                    SpfResult::None => Step::Stop(SpfResult::PermError(format!(
                        "`{}`: {target} has no SPF record",
                        term.text
                    ))),
                    stop => Step::Stop(stop),
                }
            }
            Mechanism::A(target, v4, v6) => {
                if let Some(stop) = self.count() {
                    return Step::Stop(stop);
                }
                let name = target.clone().unwrap_or_else(|| domain.to_string());
                self.addresses_match(ip, &name, *v4, *v6).await
            }
            Mechanism::Mx(target, v4, v6) => {
                if let Some(stop) = self.count() {
                    return Step::Stop(stop);
                }
                let name = target.clone().unwrap_or_else(|| domain.to_string());
                let exchanges = match self.dns.mx(&name).await {
                    Err(e) => return Step::Stop(SpfResult::TempError(e.0)),
                    Ok(x) => x,
                };
                if exchanges.is_empty() {
                    if let Some(stop) = self.void(&name) {
                        return Step::Stop(stop);
                    }
                }
                if exchanges.len() > 10 {
                    return Step::Stop(SpfResult::PermError(format!(
                        "`{}`: {name} has more than 10 MX records (RFC 7208 4.6.4)",
                        term.text
                    )));
                }
                for (_, host) in exchanges {
                    match self.addresses_match(ip, &host, *v4, *v6).await {
                        Step::NoMatch => {}
                        other => return other,
                    }
                }
                Step::NoMatch
            }
            Mechanism::Exists(target) => {
                if let Some(stop) = self.count() {
                    return Step::Stop(stop);
                }
                match self.dns.ips(target).await {
                    Err(e) => Step::Stop(SpfResult::TempError(e.0)),
                    Ok(found) if found.iter().any(IpAddr::is_ipv4) => Step::Match,
                    Ok(_) => match self.void(target) {
                        Some(stop) => Step::Stop(stop),
                        None => Step::NoMatch,
                    },
                }
            }
            // Deprecated (§5.5) and slow; doctor does not ask reverse DNS and counts it as
            // not matching, which is what a receiver with a missing PTR does.
            Mechanism::Ptr => match self.count() {
                Some(stop) => Step::Stop(stop),
                None => Step::NoMatch,
            },
        }
    }
}

/// `record` with `add` (e.g. `ip4:192.0.2.1`) inserted before its final `all` or
/// `redirect=`, or at its end: the record to publish instead.
pub fn with_term(record: &str, add: &str) -> String {
    let words: Vec<&str> = record.split_ascii_whitespace().collect();
    let at = words
        .iter()
        .position(|w| {
            let w = w
                .trim_start_matches(['+', '-', '~', '?'])
                .to_ascii_lowercase();
            w == "all" || w.starts_with("redirect=")
        })
        .unwrap_or(words.len());
    let mut out: Vec<&str> = words[..at].to_vec();
    out.push(add);
    out.extend_from_slice(&words[at..]);
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::dns::table::Table;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn table(records: &[(&str, &str)]) -> Table {
        let mut t = Table::default();
        for (name, txt) in records {
            t.txt
                .entry((*name).to_string())
                .or_default()
                .push((*txt).to_string());
        }
        t
    }

    fn check(t: &Table, addr: &str, domain: &str) -> SpfResult {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(Evaluator::new(t).check_host(ip(addr), domain.to_string()))
    }

    #[test]
    fn ip4_include_and_all_decide_in_order() {
        let mut t = table(&[
            (
                "example.org",
                "v=spf1 ip4:192.0.2.0/24 include:_spf.relay.example -all",
            ),
            (
                "_spf.relay.example",
                "v=spf1 ip6:2001:db8::/32 a:out.relay.example ~all",
            ),
        ]);
        t.ips
            .insert("out.relay.example".into(), vec![ip("198.51.100.7")]);
        assert!(matches!(
            check(&t, "192.0.2.9", "example.org"),
            SpfResult::Pass(_)
        ));
        assert!(matches!(
            check(&t, "2001:db8::1", "example.org"),
            SpfResult::Pass(_)
        ));
        assert!(matches!(
            check(&t, "198.51.100.7", "example.org"),
            SpfResult::Pass(_)
        ));
        // The include's ~all is "no match" for the parent, whose -all then decides.
        assert!(matches!(
            check(&t, "203.0.113.1", "example.org"),
            SpfResult::Fail(_)
        ));
    }

    #[test]
    fn mx_redirect_and_none() {
        let mut t = table(&[
            ("example.org", "v=spf1 redirect=_spf.example.org"),
            ("_spf.example.org", "v=spf1 mx:example.net/24 ?all"),
        ]);
        t.mx.insert("example.net".into(), vec![(10, "mx.example.net".into())]);
        t.ips.insert("mx.example.net".into(), vec![ip("192.0.2.1")]);
        assert!(matches!(
            check(&t, "192.0.2.200", "example.org"),
            SpfResult::Pass(_)
        ));
        assert!(matches!(
            check(&t, "192.0.3.1", "example.org"),
            SpfResult::Neutral(_)
        ));
        assert_eq!(check(&t, "192.0.2.1", "other.example"), SpfResult::None);
    }

    #[test]
    fn broken_records_are_permerrors() {
        for record in [
            "v=spf1 ip4:192.0.2.300 -all",
            "v=spf1 include -all",
            "v=spf1 ipv4:192.0.2.1 -all",
            "v=spf1 ip4:192.0.2.1/33 -all",
            "v=spf1 redirect=a.example redirect=b.example",
        ] {
            let t = table(&[("example.org", record)]);
            assert!(
                matches!(
                    check(&t, "192.0.2.1", "example.org"),
                    SpfResult::PermError(_)
                ),
                "{record}"
            );
        }
        let two = table(&[
            ("example.org", "v=spf1 -all"),
            ("example.org", "v=spf1 +all"),
        ]);
        assert!(matches!(
            check(&two, "192.0.2.1", "example.org"),
            SpfResult::PermError(_)
        ));
        // An include of a domain without a record is a permerror, not a silent no-match.
        let dangling = table(&[("example.org", "v=spf1 include:gone.example -all")]);
        assert!(matches!(
            check(&dangling, "192.0.2.1", "example.org"),
            SpfResult::PermError(_)
        ));
    }

    #[test]
    fn the_eleventh_lookup_is_a_permerror() {
        let mut records = vec![(
            "example.org".to_string(),
            format!(
                "v=spf1 {} -all",
                (0..11)
                    .map(|i| format!("include:i{i}.example"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )];
        for i in 0..11 {
            records.push((format!("i{i}.example"), "v=spf1 ip4:10.0.0.1 -all".into()));
        }
        let refs: Vec<(&str, &str)> = records
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let t = table(&refs);
        let result = check(&t, "192.0.2.1", "example.org");
        assert!(
            matches!(&result, SpfResult::PermError(m) if m.contains("more than 10")),
            "{result:?}"
        );
        // An include loop ends at the same limit instead of recursing forever.
        let looped = table(&[("example.org", "v=spf1 include:example.org -all")]);
        assert!(matches!(
            check(&looped, "192.0.2.1", "example.org"),
            SpfResult::PermError(_)
        ));
    }

    #[test]
    fn void_lookups_limit_temperror_and_macros() {
        let t = table(&[(
            "example.org",
            "v=spf1 a:x1.example a:x2.example a:x3.example -all",
        )]);
        assert!(matches!(
            check(&t, "192.0.2.1", "example.org"),
            SpfResult::PermError(_)
        ));
        let mut dead = table(&[("example.org", "v=spf1 include:dead.example -all")]);
        dead.failing.push("dead.example".into());
        assert!(matches!(
            check(&dead, "192.0.2.1", "example.org"),
            SpfResult::TempError(_)
        ));
        let macro_ = table(&[("example.org", "v=spf1 exists:%{i}._spf.example.org -all")]);
        assert!(matches!(
            check(&macro_, "192.0.2.1", "example.org"),
            SpfResult::Unsupported(_)
        ));
    }

    #[test]
    fn the_fix_inserts_before_all() {
        assert_eq!(
            with_term("v=spf1 include:x.example ~all", "ip4:192.0.2.1"),
            "v=spf1 include:x.example ip4:192.0.2.1 ~all"
        );
        assert_eq!(with_term("v=spf1", "ip4:192.0.2.1"), "v=spf1 ip4:192.0.2.1");
        assert!(in_network(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_network(ip("10.1.2.3"), ip("10.0.0.0"), 16));
        assert!(in_network(ip("10.1.2.3"), ip("0.0.0.0"), 0));
    }
}
