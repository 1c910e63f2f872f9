//! Every page of `bulletin serve` and the confirmation mail in the reader's language (#12
//! item 6), for each of the six UN languages: the subscriber's stored language when the link
//! names them, else the form's `lang`, else `Accept-Language`; right-to-left pages carry
//! `dir="rtl"`. The expected words come from the library's own catalogues, and no English
//! sentence of the pages may remain on a page in another language.

use std::time::Duration;

use bulletin::web::{Lang, PageWords};
use mail_parser::MessageParser;

use crate::support::{Project, SECRET, Server, SmtpSink, confirm_path, http, keys};

const LANGUAGES: [&str; 6] = ["ar", "en", "es", "fr", "ru", "zh"];
const FORM: &str = "application/x-www-form-urlencoded";

/// Every message of the pages catalogue without values, in English.
const KEYS: &[&str] = &[
    "home-subscribe",
    "home-archive",
    "not-found-title",
    "not-found-body",
    "unsubscribe-button",
    "unsubscribed-title",
    "resubscribe-hint",
    "resubscribe-button",
    "leave-all-button",
    "subscribe-title",
    "email-label",
    "honeypot-label",
    "subscribe-note",
    "check-inbox-title",
    "check-inbox-body",
    "confirm-title",
    "confirm-button",
    "confirmed-title",
    "archive-title",
    "archive-empty",
    "prefs-title",
    "prefs-intro",
    "prefs-lists-legend",
    "prefs-name-label",
    "prefs-language-label",
    "prefs-save-button",
    "prefs-leave-all-hint",
    "generic-preferences-body",
];

/// Checks that `body` is a page in `lang`: its `<html>` tag, and no English sentence of the
/// catalogue left in it (when the language is not English).
fn assert_in(words: &PageWords, lang: Lang, body: &str, what: &str) {
    let dir = if lang.tag() == "ar" { "rtl" } else { "ltr" };
    assert!(
        body.contains(&format!("<html lang=\"{}\" dir=\"{dir}\">", lang.tag())),
        "{what} in {}: {body}",
        lang.tag()
    );
    if lang == Lang::FALLBACK {
        return;
    }
    let en = words.pages(Lang::FALLBACK);
    for key in KEYS {
        let english = en.text(key);
        // A one-word message (`Confirm`) may begin a word of another language (`Confirme`):
        // look for it as a whole element's text.
        let needle = if english.contains(' ') {
            english.clone()
        } else {
            format!(">{english}<")
        };
        assert!(
            !body.contains(&needle),
            "{what} in {}: English `{english}` remains:\n{body}",
            lang.tag()
        );
    }
}

#[test]
fn every_page_and_the_confirmation_mail_speak_the_readers_language() {
    let words = PageWords::load(None).expect("built-in catalogues");
    let project = Project::new();
    let news = project.lists(&["news"])[0];
    let doi = project.lists(&["doi-letters"])[0];
    for tag in LANGUAGES {
        project.display_name("news", tag, &format!("news-title-{tag}"));
        project.display_name("doi-letters", tag, &format!("letters-title-{tag}"));
    }
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    for (i, tag) in LANGUAGES.iter().enumerate() {
        let lang = words.lang(tag).expect("pages in every UN language");
        let s = words.pages(lang);
        let id =
            project.subscribers(&[format!("reader-{tag}@example.org")], &["news"], Some(tag))[0];

        // The unsubscribe page, its answer, and the preference centre: the stored language,
        // whatever the browser says.
        let token = project.unsubscribe_token(SECRET, id, news);
        let en_browser = [("Accept-Language", "en-US,en;q=0.9")];
        let page = http(server.addr, "GET", &format!("/u/{token}"), &en_browser, b"");
        assert_in(&words, lang, &page.body, "unsubscribe page");
        assert!(
            page.body.contains(&format!("news-title-{tag}")),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(&s.html("unsubscribe-button")),
            "{}",
            page.body
        );
        let done = server.one_click(&token);
        assert_in(&words, lang, &done.body, "unsubscribed page");
        let prefs = keys(SECRET).preferences(id, news, &project.nonce(id), 1);
        let page = http(server.addr, "GET", &format!("/p/{prefs}"), &en_browser, b"");
        assert_in(&words, lang, &page.body, "preference centre");

        // Without a subscriber: the form's `lang`, then the browser's language.
        let form = server.get(&format!("/subscribe?lang={tag}&list=doi-letters"));
        assert_in(&words, lang, &form.body, "subscription form");
        assert!(
            form.body.contains(&format!("letters-title-{tag}")),
            "{}",
            form.body
        );
        assert!(
            form.body
                .contains(&format!("name=\"lang\" value=\"{tag}\""))
        );
        let browser = [("Accept-Language", *tag)];
        for path in [
            "/",
            "/archive/",
            "/no-such-page",
            "/preferences",
            &format!("/p/{token}"),
        ] {
            let r = http(server.addr, "GET", path, &browser, b"");
            assert_in(&words, lang, &r.body, path);
        }

        // The sign-up: the answer and the confirmation mail in the form's language, the
        // confirm page in the new subscriber's.
        let email = format!("new-{tag}@example.org");
        let body = format!(
            "email={}&list=doi-letters&lang={tag}",
            email.replace('@', "%40")
        );
        let r = http(
            server.addr,
            "POST",
            "/subscribe",
            &[("Content-Type", FORM)],
            body.as_bytes(),
        );
        assert_in(&words, lang, &r.body, "check your inbox");
        let mails = sink.wait_for(i + 1, Duration::from_secs(20));
        let mail = mails
            .iter()
            .find(|m| m.contains(&email))
            .expect("the confirmation mail");
        let parsed = MessageParser::default()
            .parse(mail.as_bytes())
            .expect("parses");
        let subject = parsed.subject().expect("subject").to_string();
        let expected = words.confirmation(lang).text_with(
            "subject",
            &[(
                "list",
                bulletin::web::Arg::Text(&format!("letters-title-{tag}")),
            )],
        );
        assert_eq!(subject, expected, "{tag}");
        let html = parsed.body_html(0).expect("html").into_owned();
        assert!(html.contains(&format!("lang=\"{tag}\"")), "{html}");
        assert!(!mail.contains("doi-letters"), "no internal name: {mail}");
        let confirm = server.get(&confirm_path(mail));
        assert_in(&words, lang, &confirm.body, "confirm page");
        let id = project.scalar(&format!(
            "SELECT id FROM subscribers WHERE email = '{email}'"
        ));
        assert_eq!(
            project
                .text(&format!("SELECT language FROM subscribers WHERE id = {id}"))
                .as_deref(),
            Some(*tag)
        );
        let _ = doi;
    }
}

/// A project's `locales/<lang>/pages.ftl` adds a language to the pages without recompiling,
/// and overrides a built-in message; what it lacks falls back to English message by message.
#[test]
fn a_projects_locales_folder_adds_a_language_and_overrides_words() {
    let project = Project::new();
    let news = project.lists(&["news"])[0];
    for lang in ["sw", "en"] {
        std::fs::create_dir_all(project.path().join("locales").join(lang)).expect("folder");
    }
    project.write(
        "locales/sw/pages.ftl",
        "language-name = Kiswahili\nunsubscribe-button = Jiondoe\n",
    );
    project.write(
        "locales/en/pages.ftl",
        "leave-all-button = Leave them all\n",
    );
    let id = project.subscribers(&["msomaji@example.org".into()], &["news"], Some("sw"))[0];
    let server = Server::start(&project, &[]);
    let token = project.unsubscribe_token(SECRET, id, news);
    let page = server.get(&format!("/u/{token}"));
    assert!(
        page.body.contains("<html lang=\"sw\" dir=\"ltr\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Jiondoe<"), "{}", page.body);
    assert!(
        page.body.contains("You will no longer receive"),
        "a message Swahili lacks comes in English: {}",
        page.body
    );
    let prefs = keys(SECRET).preferences(id, news, &project.nonce(id), 1);
    let page = server.get(&format!("/p/{prefs}"));
    assert!(
        page.body.contains(">Kiswahili<"),
        "the language menu: {}",
        page.body
    );
    assert!(page.body.contains("Leave them all"), "{}", page.body);

    // A broken file stops `serve` at start, naming the file and line.
    project.write(
        "locales/sw/pages.ftl",
        "language-name = Kiswahili\nbroken = {\n",
    );
    let out = crate::support::bulletin(project.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("BULLETIN_SECRET", SECRET)
        .env("BULLETIN_DATABASE_URL", project.database_url())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("locales/sw/pages.ftl:2"), "{err}");
}
