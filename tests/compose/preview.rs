//! `bulletin preview --serve` over real HTTP: it serves the page and the emails, and
//! re-renders after a file of the edition changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running server; killed when dropped, so a failing test leaves no process behind.
pub(crate) struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bulletin preview EDITION --serve 127.0.0.1:0` and waits for its address.
pub(crate) fn start(dir: &std::path::Path, edition: &std::path::Path) -> Server {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("bulletin"));
    for key in bulletin_testkit::bulletin_vars() {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .current_dir(dir)
        .env("BULLETIN_CONFIG", super::write_config(dir))
        .arg("preview")
        .arg(edition)
        .args(["--serve", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the preview server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server printed its address before exiting")
            .expect("read stderr");
        if let Some(rest) = line.strip_prefix("preview: serving http://") {
            break rest.split('/').next().unwrap_or_default().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// GET `path`: the status code and body.
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

#[test]
fn serves_the_page_and_rerenders_when_a_file_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = dir.path().join("minimal");
    super::copy_dir(&super::fixture("minimal"), &edition);
    let server = start(dir.path(), &edition);
    assert!(server.addr.starts_with("127.0.0.1:"), "loopback only");

    let (status, page) = get(&server.addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("A new harbour office"));
    assert!(page.contains("Phone (375 px)"));
    let (_, v1) = get(&server.addr, "/version");
    let (status, email) = get(&server.addr, "/email/es");
    assert_eq!(status, 200);
    assert!(email.contains("Una nueva oficina en el puerto"));
    let (status, text) = get(&server.addr, "/text/en");
    assert_eq!(status, 200);
    assert!(text.contains("A new harbour office\n--------------------"));
    assert_eq!(get(&server.addr, "/email/xx").0, 404);

    // Edit an article: the next request shows the new text.
    let article = edition.join("articles/harbour.md");
    let text = std::fs::read_to_string(&article).expect("read");
    std::fs::write(
        &article,
        text.replace("A new harbour office", "The harbour office is open"),
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = get(&server.addr, "/");
        if page.contains("The harbour office is open") {
            break;
        }
        assert!(Instant::now() < deadline, "the page never re-rendered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, v2) = get(&server.addr, "/version");
    assert_ne!(v1, v2, "the version the page polls changed");

    // A broken file shows the error on the page instead of stopping the server.
    std::fs::write(&article, "no front matter\n").expect("write");
    let (status, page) = get(&server.addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("The edition does not render"), "{page}");
    assert!(page.contains("harbour.md:1: no front matter"));
}

/// `bulletin preview EDITION --out p.html` in `dir`; returns the page.
fn preview_page(dir: &std::path::Path, edition: &std::path::Path) -> String {
    super::bulletin(dir)
        .args(["preview", "--out", "p.html"])
        .arg(edition)
        .assert()
        .success();
    std::fs::read_to_string(dir.join("p.html")).expect("page")
}

#[test]
fn the_page_shows_each_emails_size_against_the_clip_and_every_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = preview_page(dir.path(), &super::example());
    // The size shown is the size of the email `compose` writes (same made-up subscriber).
    super::bulletin(dir.path())
        .arg("compose")
        .arg(super::example())
        .assert()
        .success();
    for lang in ["en", "fr"] {
        let email = dir
            .path()
            .join("out/glo-act-special-edition")
            .join(lang)
            .join("email.html");
        let bytes = std::fs::metadata(&email).expect("email.html").len();
        let figure = format!("({bytes} bytes) of Gmail’s 102 KB clipping limit");
        let section = page
            .split(&format!("id=\"lang-{lang}\""))
            .nth(1)
            .expect("the language's section");
        assert!(section.contains(&figure), "{lang}: no `{figure}`");
    }
    assert!(!page.contains("over Gmail’s"), "the example is not clipped");
    // A known link of the example, with its text and target, and the unsubscribe link.
    assert!(
        page.contains(
            "<td>summary of the protocols</td>\
             <td><code>https://newsletter.example.org/documents/untoc-protocols-summary.pdf</code></td>"
        ),
        "the link list"
    );
    assert!(page.contains("<code>https://newsletter.example.org/u/test-copy</code>"));
}

#[test]
fn an_email_over_gmails_clip_is_flagged_on_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edition = dir.path().join("big");
    super::copy_dir(&super::fixture("minimal"), &edition);
    let article = edition.join("articles/harbour.md");
    let mut text = std::fs::read_to_string(&article).expect("read");
    for i in 0..2_500 {
        text.push_str(&format!(
            "\nParagraph {i} of a very long article about the harbour.\n"
        ));
    }
    std::fs::write(&article, text).expect("write");
    let page = preview_page(dir.path(), &edition);
    assert!(
        page.contains("class=\"error\" id=\"size-en\"")
            && page.contains("over Gmail’s 102 KB clipping limit"),
        "{}",
        page.split("id=\"size-en\"")
            .nth(1)
            .unwrap_or("no size line")
    );
    assert!(
        page.contains("class=\"ok\" id=\"size-es\""),
        "es stays under"
    );
}
