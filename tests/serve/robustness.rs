//! What happens under load, at shutdown, and when the database is locked or missing, and
//! how `serve` refuses to start without a real secret.

use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bulletin_testkit::project::sqlite_only;

use crate::support::{Project, SECRET, Server, bulletin};

#[test]
fn hundreds_of_simultaneous_one_clicks_lose_nothing() {
    const N: usize = 300;
    let project = Project::new();
    let lists = project.lists(&["news", "events"]);
    let emails: Vec<String> = (0..N).map(|i| format!("reader{i}@example.org")).collect();
    let subs = project.subscribers(&emails, &["news", "events"], None);
    let tokens: Vec<String> = subs
        .iter()
        .map(|&s| project.unsubscribe_token(SECRET, s, lists[0]))
        .collect();
    let server = Server::start(&project, &[]);
    let addr = server.addr;
    let barrier = Arc::new(Barrier::new(N));
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                crate::support::http(
                    addr,
                    "POST",
                    &format!("/u/{token}"),
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    b"List-Unsubscribe=One-Click",
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(ok, N, "statuses: {statuses:?}\n{}", server.log());
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE list_id = {} AND status = 'unsubscribed'",
            lists[0]
        )),
        N as i64
    );
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE list_id = {} AND status = 'confirmed'",
            lists[1]
        )),
        N as i64,
        "the other list is untouched"
    );
    assert_eq!(
        project.scalar("SELECT COUNT(*) FROM events WHERE source = 'one-click'"),
        N as i64
    );
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let project = Project::new();
    let lists = project.lists(&["news"]);
    let subs = project.subscribers(&["slow@example.org".into()], &["news"], None);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let mut server = Server::start(&project, &[]);

    // A slow client: the head and half the body, then SIGTERM, then the rest.
    // `Expect: 100-continue` makes the server say when it has read the head and its handler
    // has begun to read the body: the SIGTERM surely meets a request in flight, not one still
    // waiting to be accepted, however slow the machine.
    let body = b"List-Unsubscribe=One-Click";
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    write!(
        stream,
        "POST /u/{token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        body.len()
    )
    .expect("head");
    stream.write_all(&body[..10]).expect("half body");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut stream, &mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    // And the service answers a whole request on another connection: it is up and serving.
    assert_eq!(server.get("/healthz").status, 200, "{}", server.log());
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    // The rest of the body only once the service has begun to stop: the request is finished
    // during the shutdown, not before it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("serve: stopping") {
        assert!(
            Instant::now() < deadline,
            "no sign of SIGTERM: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(&body[10..]).expect("rest of body");
    let r = crate::support::read_response(&mut stream);
    assert_eq!(r.status, 200, "{}", r.body);
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}\n{}", server.log());
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("unsubscribed")
    );
    let log = server.log();
    assert!(log.contains("serve: stopped"), "{log}");
    // New connections are refused once it has stopped.
    assert!(std::net::TcpStream::connect(server.addr).is_err());
}

#[test]
fn a_sigterm_right_after_listening_on_stops_it_cleanly() {
    // A service manager (or a test) may signal as soon as the port is announced: the handler
    // is in place by then, so the signal is a clean stop, never the default action (death by
    // SIGTERM, no "serve: stopped").
    let project = Project::new();
    project.lists(&["news"]);
    let mut server = Server::start(&project, &[]);
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}\n{}", server.log());
    assert!(server.log().contains("serve: stopped"), "{}", server.log());
}

/// Another process holding SQLite's write lock: `sqlite3` in `BEGIN IMMEDIATE` until told to
/// commit. Dropping it kills the process (which releases the lock).
struct LockHolder(std::process::Child);

impl LockHolder {
    fn take(db: &std::path::Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new("sqlite3")
            .arg(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start sqlite3 (apt-get install sqlite3)");
        let stdin = child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "BEGIN IMMEDIATE;\n.print locked").expect("lock");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked", "sqlite3 did not take the lock");
        Self(child)
    }

    fn release(mut self) {
        let stdin = self.0.stdin.as_mut().expect("stdin");
        writeln!(stdin, "COMMIT;\n.quit").expect("unlock");
        self.0.wait().expect("sqlite3 exits");
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_one_click_outlasts_a_write_lock_held_by_another_process() {
    if sqlite_only("SQLite's file write lock held by the sqlite3 shell") {
        return;
    }
    let project = Project::new();
    let lists = project.lists(&["news"]);
    let subs = project.subscribers(&["locked@example.org".into()], &["news"], None);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    // SQLite's own wait is short, so the service must wait beyond it, not give up.
    let server = Server::start(&project, &[("BULLETIN_DATABASE_BUSY_TIMEOUT_MS", "300")]);

    let lock = LockHolder::take(&project.path().join("bulletin.db"));
    let addr = server.addr;
    let click = {
        let token = token.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let r = crate::support::http(
                addr,
                "POST",
                &format!("/u/{token}"),
                &[("Content-Type", "application/x-www-form-urlencoded")],
                b"List-Unsubscribe=One-Click",
            );
            (r, start.elapsed())
        })
    };
    // Reading still works while writes wait (WAL): the page shows.
    assert_eq!(server.get(&format!("/u/{token}")).status, 200);
    // The subscription form is no opt-out: it still answers 503 at once rather than hang.
    let start = Instant::now();
    let r = server.post(
        "/subscribe",
        Some("application/x-www-form-urlencoded"),
        b"email=new%40example.org&list=news",
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(r.header("retry-after"), Some("30"));
    assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    // Held well beyond the busy timeout and the old 2 s grace.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        project
            .text(&format!(
                "SELECT status FROM subscriptions WHERE subscriber_id = {}",
                subs[0]
            ))
            .as_deref(),
        Some("confirmed"),
        "nothing can be written while the lock is held"
    );
    lock.release();
    let (r, took) = click.join().expect("click thread");
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.log());
    assert!(took >= Duration::from_secs(7), "took {took:?}");
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("unsubscribed")
    );
}

#[test]
fn a_missing_database_gives_503_and_is_never_created_by_serve() {
    if sqlite_only("a SQLite file in a folder that is not there yet, then empty") {
        return;
    }
    let project = Project::new();
    let folder = project.path().join("not-mounted-yet");
    let file = folder.join("bulletin.db");
    let url = format!("sqlite://{}", file.display());
    let server = Server::start(
        &project,
        &[
            ("BULLETIN_DATABASE_URL", &url),
            ("BULLETIN_DATABASE_BUSY_TIMEOUT_MS", "300"),
        ],
    );
    assert!(
        server.log().contains("serving 503 until it opens"),
        "{}",
        server.log()
    );
    let start = Instant::now();
    assert_eq!(server.get("/healthz").status, 503);
    // A well-formed token still cannot be checked without the database.
    let token = crate::support::keys(SECRET).unsubscribe(1, 1, "n", 0);
    assert_eq!(server.one_click(&token).status, 503);
    assert_eq!(server.get("/subscribe").status, 503);
    assert!(start.elapsed() < Duration::from_secs(15));
    // The volume appears, still without the file: serve does not create it.
    std::fs::create_dir_all(&folder).expect("mkdir");
    assert_eq!(server.get("/healthz").status, 503);
    assert_eq!(server.one_click(&token).status, 503);
    assert!(!file.exists(), "serve created the database");
    // An empty file is no database either.
    std::fs::write(&file, b"").expect("touch");
    assert_eq!(server.get("/healthz").status, 503);
    assert_eq!(std::fs::metadata(&file).expect("file").len(), 0);
    std::fs::remove_file(&file).expect("rm");
    // The operator creates it: serve recovers by itself.
    let out = bulletin(project.path())
        .args(["lists", "add", "news"])
        .env("BULLETIN_DATABASE_URL", &url)
        .output()
        .expect("lists add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/subscribe").status, 200);
}

#[test]
fn refuses_to_start_without_a_real_secret() {
    let project = Project::new();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = bulletin(project.path());
        cmd.arg("serve")
            .args(if args.is_empty() {
                &["--listen", "127.0.0.1:0"][..]
            } else {
                args
            })
            .env("BULLETIN_DATABASE_URL", project.database_url());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("BULLETIN_SECRET") && err.contains("--insecure-dev-secret"),
        "{err}"
    );
    let (code, err) = run(&[("BULLETIN_SECRET", "short")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at least 32 characters"), "{err}");
    assert!(!err.contains("short\""), "the secret is not echoed: {err}");
    let (code, err) = run(&[], &["--insecure-dev-secret", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("local previews"), "{err}");
    // On loopback the development secret is accepted, with a warning.
    let mut child = bulletin(project.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure-dev-secret"])
        .env("BULLETIN_DATABASE_URL", project.database_url())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    use std::io::BufRead;
    while !seen.contains("listening on") {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read") == 0 {
            break;
        }
        seen.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("insecure development secret"), "{seen}");
    assert!(seen.contains("listening on"), "{seen}");
}

/// Reads until the server closes the connection (what it sent first, if anything, is
/// ignored); fails when it is still open after `within`.
fn assert_closed_within(stream: &mut std::net::TcpStream, within: Duration) {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut sink = [0u8; 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the connection is still open after {within:?}: {e}"),
        }
    }
}

#[test]
fn hundreds_of_idle_sockets_starve_nothing_and_are_closed() {
    let project = Project::new();
    let lists = project.lists(&["news"]);
    let subs = project.subscribers(&["busy@example.org".into()], &["news"], None);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    // A header timeout of 5 s: a server starved by the idle sockets would answer only once
    // they time out, 5 s on; one that is not answers at once, though a loaded machine may
    // take a second or two to.
    let server = Server::start(&project, &[("BULLETIN_SERVER_HEADER_TIMEOUT_SECS", "5")]);
    // 300 clients: half send nothing, half half a request head.
    let mut idle: Vec<std::net::TcpStream> = (0..300)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
            if i % 2 == 1 {
                write!(s, "POST /u/{token} HTTP/1.1\r\nHost: x\r\n").expect("partial head");
            }
            s
        })
        .collect();
    let start = Instant::now();
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.one_click(&token).status, 200);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "took {took:?}: the idle sockets starved the requests until their timeout"
    );
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("unsubscribed")
    );
    // Each idle socket is closed once the header timeout has passed.
    for s in idle.iter_mut().take(2) {
        assert_closed_within(s, Duration::from_secs(8));
    }
    // So is a keep-alive connection left idle after its response.
    let mut kept = std::net::TcpStream::connect(server.addr).expect("connect");
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let r = crate::support::read_response(&mut kept);
    assert_eq!(r.status, 200);
    let start = Instant::now();
    assert_closed_within(&mut kept, Duration::from_secs(8));
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "closed too early"
    );
}

#[test]
fn connections_beyond_the_cap_wait_for_a_slot() {
    let project = Project::new();
    project.lists(&["news"]);
    let server = Server::start(
        &project,
        &[
            ("BULLETIN_SERVER_MAX_CONNECTIONS", "20"),
            ("BULLETIN_SERVER_HEADER_TIMEOUT_SECS", "2"),
        ],
    );
    let _idle: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(server.addr).expect("connect"))
        .collect();
    // Give the server the time to accept them all.
    std::thread::sleep(Duration::from_millis(300));
    // The 21st waits in the listen queue until the header timeout frees a slot.
    let start = Instant::now();
    assert_eq!(server.get("/healthz").status, 200);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(6),
        "took {took:?}"
    );
}

#[test]
fn a_body_that_never_arrives_gets_408() {
    let project = Project::new();
    let lists = project.lists(&["news"]);
    let subs = project.subscribers(&["slowpoke@example.org".into()], &["news"], None);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let server = Server::start(&project, &[("BULLETIN_SERVER_BODY_TIMEOUT_SECS", "2")]);
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    write!(
        stream,
        "POST /u/{token} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nList-"
    )
    .expect("head and a bit");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let start = Instant::now();
    let r = crate::support::read_response(&mut stream);
    assert_eq!(r.status, 408, "{}", r.body);
    assert!(start.elapsed() < Duration::from_secs(6));
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("confirmed")
    );
}
