//! The landing pages in a real headless Chromium, driven over the DevTools protocol: load the
//! page, press its button like a person would, read what the browser then shows, and check
//! the database. This also proves that the strict CSP lets the pages' own stylesheet and
//! forms work. Screenshots go to target/screenshots/ for a person to look at.
//!
//! Fails, never skips, when Chromium is missing: `apt-get install -y chromium` (or set
//! BULLETIN_CHROMIUM to its path).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::support::{Project, SECRET, Server, unix_now};

fn chromium() -> PathBuf {
    bulletin_testkit::chromium::binary()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Kills the process when dropped, so that a test failing half-way leaves no Chromium behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium and a DevTools connection to its one tab.
struct Browser {
    _child: KillOnDrop,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Self {
        let profile = tempfile::tempdir().expect("profile");
        let mut child = KillOnDrop(
            Command::new(chromium())
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-port=0",
                    "--window-size=800,900",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start chromium"),
        );
        let stderr = child.0.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let browser_ws = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium announced its DevTools endpoint");
        // ws://127.0.0.1:PORT/devtools/browser/ID → the tab's own endpoint from /json/list.
        let host = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host")
            .to_string();
        let addr = host.parse().expect("devtools address");
        let page_ws = {
            let start = Instant::now();
            loop {
                let r = crate::support::http(addr, "GET", "/json/list", &[], b"");
                let targets: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                let found = targets.as_array().and_then(|a| {
                    a.iter()
                        .find(|t| t["type"] == "page")
                        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                        .map(str::to_string)
                });
                if let Some(url) = found {
                    break url;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "no tab: {}",
                    r.body
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let (mut ws, _) = tungstenite::connect(page_ws.as_str()).expect("connect to the tab");
        if let MaybeTlsStream::Plain(s) = ws.get_mut() {
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
        }
        let mut browser = Self {
            _child: child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Sends a command and returns its result; events that arrive meanwhile are kept.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::text(msg)).expect("send to chromium");
        loop {
            let reply = self.read();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
            self.events.push(reply);
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read from chromium") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
                Message::Close(_) => panic!("chromium closed the connection"),
                _ => {}
            }
        }
    }

    /// Waits for the next `Page.loadEventFired` not yet consumed.
    fn wait_load(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.drain(..=i);
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "page did not load"
            );
            let e = self.read();
            self.events.push(e);
        }
    }

    fn open(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_load();
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }

    fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the button whose text is `label`, and waits for the page it leads to.
    fn click(&mut self, label: &str) {
        self.events.clear();
        let found = self.eval(&format!(
            "(() => {{ const b = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === {label:?}); \
               if (!b) return false; b.click(); return true; }})()"
        ));
        assert_eq!(
            found,
            json!(true),
            "no button `{label}` on:\n{}",
            self.text()
        );
        self.wait_load();
    }

    /// Lays the page out as on a screen `width` CSS pixels wide.
    fn viewport(&mut self, width: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500 }),
        );
    }

    fn screenshot(&mut self, name: &str) {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("png data"))
            .expect("base64");
        std::fs::write(screenshots().join(name), png).expect("write screenshot");
    }
}

#[test]
fn a_person_confirms_a_subscription_in_a_real_browser() {
    let project = Project::new();
    let list = project.lists(&["doi-news"])[0];
    let id = project.with_store(async |store| {
        let l = store.list_named("doi-news").await.expect("list");
        let new = bulletin::store::NewSubscriber {
            address: bulletin::address::Address::parse("clicker@example.org").expect("address"),
            name: String::new(),
            language: None,
            attributes: Default::default(),
        };
        match store
            .add_subscriber(&new, &[l], None, false, "form")
            .await
            .expect("add")
        {
            bulletin::store::AddOutcome::Added { id } => id,
            other => panic!("{other:?}"),
        }
    });
    assert_eq!(project.status(id, list).as_deref(), Some("unconfirmed"));
    let token = project.confirm_token(id, list, unix_now());
    let server = Server::start(&project, &[]);
    let mut browser = Browser::launch();

    browser.open(&format!("http://{}/confirm/{token}", server.addr));
    let text = browser.text();
    assert!(text.contains("Confirm your subscription"), "{text}");
    // The stylesheet, allowed by its hash in the CSP, is applied.
    assert_eq!(
        browser.eval("getComputedStyle(document.querySelector('button')).backgroundColor"),
        json!("rgb(29, 78, 216)")
    );
    browser.screenshot("serve-confirm.png");
    assert_eq!(
        project.status(id, list).as_deref(),
        Some("unconfirmed"),
        "loading the page confirmed"
    );

    browser.click("Confirm");
    let text = browser.text();
    assert!(text.contains("Subscription confirmed"), "{text}");
    browser.screenshot("serve-confirmed.png");
    assert_eq!(project.status(id, list).as_deref(), Some("confirmed"));
}

#[test]
fn a_person_unsubscribes_and_changes_their_mind_in_a_real_browser() {
    let project = Project::new();
    let lists = project.lists(&["news", "events"]);
    project.display_name("news", "en", "Project news");
    let subs = project.subscribers(&["reader@example.org".into()], &["news", "events"], None);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let server = Server::start(&project, &[]);
    let mut browser = Browser::launch();

    browser.open(&format!("http://{}/u/{token}", server.addr));
    assert!(browser.text().contains("Unsubscribe from Project news?"));
    browser.screenshot("serve-unsubscribe.png");
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("confirmed")
    );

    browser.click("Unsubscribe");
    let text = browser.text();
    assert!(text.contains("You are unsubscribed"), "{text}");
    assert!(text.contains("You still receive one other list"), "{text}");
    browser.screenshot("serve-unsubscribed.png");
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("unsubscribed")
    );

    browser.click("Resubscribe");
    assert!(browser.text().contains("Welcome back"));
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        project.status(subs[0], lists[1]).as_deref(),
        Some("confirmed")
    );
}

/// For every text block of the page (headings, paragraphs, block labels, legends, hints; the
/// honeypot aside), what the browser computed: its direction, its `text-align`, and how far
/// the right end of its text lies from the right edge of its content box, measured on the
/// laid-out lines (a right-aligned block has its lines end at that edge).
const TEXT_BLOCKS: &str = "(() => [...document.querySelectorAll('main h1, main p, main legend, main label, main .hint')]
  .filter(el => !el.closest('.hp') && el.innerText.trim() && getComputedStyle(el).display !== 'inline')
  .map(el => {
    const cs = getComputedStyle(el);
    const range = document.createRange();
    range.selectNodeContents(el);
    const lines = [...range.getClientRects()];
    const box = el.getBoundingClientRect();
    const contentRight = box.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth);
    return { text: el.innerText.slice(0, 40), direction: cs.direction, align: cs.textAlign,
             gap: contentRight - Math.max(...lines.map(l => l.right)) };
  }))()";

/// Checks that every text block of the open page runs right to left and sits on the right.
fn assert_right_to_left(browser: &mut Browser, what: &str) {
    let blocks = browser.eval(TEXT_BLOCKS);
    let blocks = blocks.as_array().expect("an array of blocks");
    assert!(blocks.len() >= 3, "{what}: too few text blocks: {blocks:?}");
    for b in blocks {
        assert_eq!(b["direction"], "rtl", "{what}: {b}");
        assert!(
            b["align"] == "start" || b["align"] == "right",
            "{what}: {b}"
        );
        let gap = b["gap"].as_f64().expect("a number");
        assert!(gap.abs() < 2.0, "{what}: not right-aligned: {b}");
    }
    assert_eq!(
        browser.eval("document.documentElement.dir"),
        json!("rtl"),
        "{what}"
    );
    // Nothing sticks out sideways (the hidden honeypot included).
    let overflow =
        browser.eval("document.documentElement.scrollWidth - document.documentElement.clientWidth");
    assert!(
        overflow.as_f64().is_some_and(|o| o <= 0.0),
        "{what}: overflow {overflow}"
    );
}

#[test]
fn arabic_unsubscribe_and_preference_pages_are_laid_out_right_to_left() {
    let project = Project::new();
    let lists = project.lists(&["news", "events"]);
    // A display name mixing Arabic and Latin, the case bidi isolation is for.
    project.display_name("news", "ar", "نشرة GLO.ACT");
    project.display_name("events", "ar", "الفعاليات");
    let subs = project.subscribers(
        &["qari@example.org".into()],
        &["news", "events"],
        Some("ar"),
    );
    let unsubscribe = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let preferences = crate::support::keys(SECRET).preferences(
        subs[0],
        lists[0],
        &project.nonce(subs[0]),
        unix_now(),
    );
    let server = Server::start(&project, &[]);
    let mut browser = Browser::launch();

    browser.open(&format!("http://{}/u/{unsubscribe}", server.addr));
    assert_eq!(
        browser.eval("document.querySelector('h1 bdi').innerText"),
        json!("نشرة GLO.ACT"),
        "the list's name is isolated"
    );
    for width in [600, 375] {
        browser.viewport(width);
        assert_right_to_left(&mut browser, &format!("unsubscribe page at {width}px"));
        // The button sits at the start of the line, which is on the right.
        let gap = browser.eval(
            "(() => { const b = document.querySelector('form button').getBoundingClientRect(); \
              const f = document.querySelector('form').getBoundingClientRect(); return f.right - b.right; })()",
        );
        assert!(
            gap.as_f64().is_some_and(|g| g.abs() < 2.0),
            "button at {width}px: {gap}"
        );
        browser.screenshot(&format!("serve-ar-unsubscribe-{width}.png"));
    }

    browser.viewport(800);
    browser.open(&format!("http://{}/p/{preferences}", server.addr));
    for width in [600, 375] {
        browser.viewport(width);
        assert_right_to_left(&mut browser, &format!("preference centre at {width}px"));
        // Each checkbox stands to the right of its label, as Arabic readers expect.
        let mirrored = browser.eval(
            "[...document.querySelectorAll('.choice')].every(c => \
               c.querySelector('input').getBoundingClientRect().left >= \
               c.querySelector('label').getBoundingClientRect().right)",
        );
        assert_eq!(mirrored, json!(true), "checkboxes at {width}px");
        browser.screenshot(&format!("serve-ar-preferences-{width}.png"));
    }
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("confirmed"),
        "looking changed nothing"
    );

    // A person unticks the second list and presses the save button, as in any browser.
    browser.viewport(800);
    let unticked = browser.eval(&format!(
        "(() => {{ const b = document.getElementById('list-{}'); b.click(); return b.checked; }})()",
        lists[1]
    ));
    assert_eq!(unticked, json!(false));
    browser.click("حفظ اختياراتي");
    let text = browser.text();
    assert!(text.contains("تم حفظ اختياراتك"), "{text}");
    assert_eq!(
        project.status(subs[0], lists[1]).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("confirmed")
    );
}
