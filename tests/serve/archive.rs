//! `/archive/`: what `compose` wrote, served as is, and nothing outside it.

use crate::support::{Project, Server, bulletin, http};

#[test]
fn composed_editions_are_listed_and_served_and_nothing_else_is() {
    let project = Project::new();
    let edition =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("editions/glo-act-special-edition");
    let out = bulletin(project.path())
        .arg("compose")
        .arg(&edition)
        .output()
        .expect("compose");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(project.path().join("secret.txt"), "top secret").expect("write");
    let server = Server::start(&project, &[]);

    let index = server.get("/archive/");
    assert_eq!(index.status, 200);
    for lang in ["en", "fr"] {
        let link = format!("/archive/glo-act-special-edition/{lang}/");
        assert!(index.body.contains(&link), "{}", index.body);
        let page = server.get(&link);
        assert_eq!(page.status, 200, "{link}");
        let on_disk = std::fs::read_to_string(
            project
                .path()
                .join("out/glo-act-special-edition")
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
