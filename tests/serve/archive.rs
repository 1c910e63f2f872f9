//! `/archive/`: what `compose` wrote, served as is once the edition was sent (or explicitly
//! published), and nothing outside it.

use std::path::Path;

use crate::support::{Project, SECRET, Server, bulletin, http};

const EDITION: &str = "glo-act-special-edition";

/// Runs `bulletin ARGS` in the project (its database, the test secret) and checks it worked.
fn run(project: &Project, args: &[&str]) {
    let out = bulletin(project.path())
        .env("BULLETIN_DATABASE_URL", project.database_url())
        .args(args)
        .env("BULLETIN_SECRET", SECRET)
        .output()
        .expect("run bulletin");
    assert!(
        out.status.success(),
        "bulletin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn edition_dir(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("editions")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_composed_draft_is_not_public_until_it_is_sent() {
    let project = Project::new();
    project.lists(&["news"]);
    project.subscribers(&["reader@example.org".into()], &["news"], None);
    run(&project, &["compose", &edition_dir(EDITION)]);
    let server = Server::start(&project, &[]);

    // Composed, never sent: the draft is nobody's business.
    let index = server.get("/archive/");
    assert_eq!(index.status, 200);
    assert!(!index.body.contains(EDITION), "{}", index.body);
    for lang in ["en", "fr"] {
        let r = server.get(&format!("/archive/{EDITION}/{lang}/"));
        assert_eq!(r.status, 404, "{lang}: a draft is served");
    }

    // Sent (into a Maildir outbox): now it is listed and served.
    run(
        &project,
        &[
            "send",
            &edition_dir(EDITION),
            "--list",
            "news",
            "--outbox",
            "outbox",
            "--yes",
        ],
    );
    let index = server.get("/archive/");
    for (lang, name) in [("en", "English"), ("fr", "Français")] {
        let link = format!("/archive/{EDITION}/{lang}/");
        assert!(index.body.contains(&link), "{}", index.body);
        assert!(
            index.body.contains(&format!("lang=\"{lang}\">{name}</a>")),
            "each language under its own name: {}",
            index.body
        );
        assert_eq!(server.get(&link).status, 200, "{link}");
    }
}

#[test]
fn an_edition_can_be_published_without_a_send() {
    let project = Project::new();
    project.lists(&["news"]);
    run(&project, &["compose", &edition_dir(EDITION)]);
    let server = Server::start(&project, &[]);
    assert_eq!(server.get(&format!("/archive/{EDITION}/en/")).status, 404);
    std::fs::write(
        project.path().join("out").join(EDITION).join("published"),
        "",
    )
    .expect("publish");
    assert!(server.get("/archive/").body.contains(EDITION));
    assert_eq!(server.get(&format!("/archive/{EDITION}/en/")).status, 200);
}

#[test]
fn published_editions_are_served_as_composed_and_nothing_else_is() {
    let project = Project::new();
    project.lists(&["news"]);
    run(&project, &["compose", &edition_dir(EDITION)]);
    std::fs::write(
        project.path().join("out").join(EDITION).join("published"),
        "",
    )
    .expect("publish");
    std::fs::write(project.path().join("secret.txt"), "top secret").expect("write");
    let server = Server::start(&project, &[]);

    let index = server.get("/archive/");
    assert_eq!(index.status, 200);
    for lang in ["en", "fr"] {
        let link = format!("/archive/{EDITION}/{lang}/");
        assert!(index.body.contains(&link), "{}", index.body);
        let page = server.get(&link);
        assert_eq!(page.status, 200, "{link}");
        let on_disk = std::fs::read_to_string(
            project
                .path()
                .join("out")
                .join(EDITION)
                .join(lang)
                .join("archive.html"),
        )
        .expect("archive.html");
        assert_eq!(page.body, on_disk);
        let csp = page.header("content-security-policy").expect("csp");
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script"),
            "{csp}"
        );
    }
    assert_eq!(server.get("/archive").status, 308);

    for path in [
        "/archive/..%2F..%2Fsecret.txt/en",
        "/archive/../secret.txt",
        "/archive/glo-act-special-edition/..",
        "/archive/glo-act-special-edition/%2E%2E",
        "/archive/..%2F/..%2F",
        "/archive/glo-act-special-edition/de/",
        "/archive/%2Fetc/passwd",
    ] {
        let r = http(server.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(!r.body.contains("top secret"), "{path}");
    }
}
