//! The DNS questions `doctor` asks, behind a small trait so that the SPF evaluator can be
//! unit-tested with a table, and answered in earnest by hickory-resolver: the system's
//! resolv.conf, or one name server of the operator's choosing over UDP and TCP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::BoxFuture;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;

use super::DoctorError;

/// A lookup that could not be answered (timeout, SERVFAIL, refused): not the same as "no
/// such record", which is an empty answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsFailure(pub String);

/// What a lookup found: the records (empty when the name or the type has none), or why it
/// could not tell.
pub type Lookup<T> = Result<Vec<T>, DnsFailure>;

/// The lookups `doctor` needs.
pub trait Dns: Send + Sync {
    /// TXT records of `name`, each one's strings concatenated (RFC 7208 3.3, RFC 6376 3.6.2.2).
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>>;
    /// A and AAAA records of `name`.
    fn ips<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<IpAddr>>;
    /// MX records of `name`: preference and exchange (without the final dot).
    fn mx<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<(u16, String)>>;
    /// Which resolver answers, for the report.
    fn describe(&self) -> String;
}

/// hickory-resolver with bounded time: a dead name server is reported, never waited on.
pub struct Resolver {
    resolver: TokioResolver,
    describe: String,
    /// The whole of one lookup, retries included.
    limit: Duration,
}

impl Resolver {
    /// The name server `nameserver` (UDP, then TCP for truncated answers), or the system's
    /// resolvers from /etc/resolv.conf.
    pub fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Self, DoctorError> {
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.attempts = 2;
        // Each question is asked once per run; a cache would only hide a record just fixed
        // when doctor is used as a library in a longer process.
        options.cache_size = 0;
        let (builder, describe) = match nameserver {
            Some(addr) => {
                let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                let config = ResolverConfig::from_parts(None, vec![], group);
                (
                    TokioResolver::builder_with_config(config, TokioConnectionProvider::default()),
                    format!("the name server {addr}"),
                )
            }
            None => (
                TokioResolver::builder_tokio().map_err(|e| DoctorError::Resolver(e.to_string()))?,
                "the system's resolvers (/etc/resolv.conf)".to_string(),
            ),
        };
        let resolver = builder.with_options(options).build();
        Ok(Self {
            resolver,
            describe,
            // Two attempts over UDP and a TCP retry, with room to spare.
            limit: timeout * 3,
        })
    }
}

/// `name` as an absolute name, so that no search domain of resolv.conf is appended.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl Resolver {
    async fn ask<T, R>(
        &self,
        name: &str,
        lookup: impl Future<Output = Result<R, hickory_resolver::ResolveError>>,
        records: impl FnOnce(R) -> Vec<T>,
    ) -> Lookup<T> {
        match tokio::time::timeout(self.limit, lookup).await {
            Err(_) => Err(DnsFailure(format!(
                "{} did not answer about {name} within {} s",
                self.describe,
                self.limit.as_secs()
            ))),
            Ok(Ok(answer)) => Ok(records(answer)),
            // NXDOMAIN and NODATA alike: nothing published there.
            Ok(Err(e)) if e.is_no_records_found() => Ok(Vec::new()),
            Ok(Err(e)) => Err(DnsFailure(format!("looking up {name}: {e}"))),
        }
    }
}

impl Dns for Resolver {
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>> {
        Box::pin(async move {
            self.ask(name, self.resolver.txt_lookup(absolute(name)), |answer| {
                answer
                    .iter()
                    .map(|txt| {
                        txt.iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<String>()
                    })
                    .collect()
            })
            .await
        })
    }

    fn ips<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<IpAddr>> {
        Box::pin(async move {
            let v4 = self
                .ask(name, self.resolver.ipv4_lookup(absolute(name)), |a| {
                    a.iter().map(|r| IpAddr::V4(r.0)).collect()
                })
                .await?;
            let v6 = self
                .ask(name, self.resolver.ipv6_lookup(absolute(name)), |a| {
                    a.iter().map(|r| IpAddr::V6(r.0)).collect()
                })
                .await?;
            Ok(v4.into_iter().chain(v6).collect())
        })
    }

    fn mx<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<(u16, String)>> {
        Box::pin(async move {
            self.ask(name, self.resolver.mx_lookup(absolute(name)), |answer| {
                answer
                    .iter()
                    .map(|mx| {
                        let host = mx.exchange().to_ascii();
                        (
                            mx.preference(),
                            host.trim_end_matches('.').to_ascii_lowercase(),
                        )
                    })
                    .collect()
            })
            .await
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[cfg(test)]
pub(crate) mod table {
    //! A fixed table of answers for unit tests.

    use super::*;
    use std::collections::HashMap;

    /// Answers from a table; a name in `failing` fails as a dead server would.
    #[derive(Default)]
    pub(crate) struct Table {
        pub(crate) txt: HashMap<String, Vec<String>>,
        pub(crate) ips: HashMap<String, Vec<IpAddr>>,
        pub(crate) mx: HashMap<String, Vec<(u16, String)>>,
        pub(crate) failing: Vec<String>,
    }

    impl Table {
        fn get<T: Clone>(&self, map: &HashMap<String, Vec<T>>, name: &str) -> Lookup<T> {
            if self.failing.iter().any(|f| f == name) {
                return Err(DnsFailure(format!("SERVFAIL for {name}")));
            }
            Ok(map.get(name).cloned().unwrap_or_default())
        }
    }

    impl Dns for Table {
        fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<String>> {
            Box::pin(async move { self.get(&self.txt, name) })
        }
        fn ips<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<IpAddr>> {
            Box::pin(async move { self.get(&self.ips, name) })
        }
        fn mx<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Lookup<(u16, String)>> {
            Box::pin(async move { self.get(&self.mx, name) })
        }
        fn describe(&self) -> String {
            "a table".into()
        }
    }
}
