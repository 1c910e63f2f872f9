//! `GET {public_url}/healthz`: hyper's HTTP/1.1 client over a TCP connection, wrapped in
//! rustls (the aws-lc-rs provider lettre and the IMAP reader use) for `https://`. Roots are the
//! system's, or only those of `--ca-file` for a private CA.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::DoctorError;

/// The parts of an absolute http(s) URL that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` or `http`.
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, the scheme's default when absent.
    pub port: u16,
    /// The path the URL ends in, without a final `/`.
    pub base_path: String,
}

impl Target {
    /// Parses `public_url` (already checked by the configuration to be http(s)).
    pub fn parse(url: &str) -> Option<Self> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            (false, url.strip_prefix("http://")?)
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        if authority.contains('@') || authority.is_empty() {
            return None;
        }
        let default = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if after.is_empty() => default,
                None => return None,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().ok()?),
                None => (authority.to_string(), default),
            }
        };
        Some(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// Whether the host is this machine (`localhost`, 127.0.0.0/8, `::1`).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The TLS settings: the system's roots, or only the certificates of `ca_file`.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, DoctorError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |why: String| DoctorError::CaFile {
                path: path.to_path_buf(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("it holds no PEM certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // One unusable system certificate should not stop the others from counting.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DoctorError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `GET /healthz` under `target`; the status code, or what went wrong, in words.
pub async fn healthz(
    target: &Target,
    tls: Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<u16, String> {
    match tokio::time::timeout(limit, get(target, tls)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

async fn get(target: &Target, tls: Arc<rustls::ClientConfig>) -> Result<u16, String> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", target.host, target.port))?;
    let path = format!("{}/healthz", target.base_path);
    if target.https {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| format!("`{}` is not a TLS server name: {e}", target.host))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        request(TokioIo::new(stream), target, &path).await
    } else {
        request(TokioIo::new(tcp), target, &path).await
    }
}

async fn request<S>(io: TokioIo<S>, target: &Target, path: &str) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection is driven beside the request and ends with it.
    let driver = tokio::spawn(connection);
    let default = if target.https { 443 } else { 80 };
    let host = match (target.host.contains(':'), target.port == default) {
        (true, true) => format!("[{}]", target.host),
        (true, false) => format!("[{}]:{}", target.host, target.port),
        (false, true) => target.host.clone(),
        (false, false) => format!("{}:{}", target.host, target.port),
    };
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "bulletin-doctor")
        .body(String::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("the request failed: {e}"));
    driver.abort();
    Ok(response?.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://News.example.org/letters/").expect("valid");
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.base_path.as_str()),
            (true, "news.example.org", 443, "/letters")
        );
        let t = Target::parse("http://[::1]:8080").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert!(t.is_loopback());
        assert!(Target::parse("https://user@example.org").is_none());
        assert!(Target::parse("ftp://example.org").is_none());
    }
}
