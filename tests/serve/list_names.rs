//! What subscribers see of a list (#12 item 7): the form offers only public lists, by the
//! display name set with `bulletin lists set`, and neither the pages nor the confirmation mail
//! ever show the internal list name. Also: `/subscribe?lang=es` remembers Spanish.

use std::time::Duration;

use crate::support::{Project, Server, SmtpSink, confirm_path};

const FORM: &str = "application/x-www-form-urlencoded";

/// Lists `partners-doi` (double opt-in, public, English and Spanish names) and `staff-test`
/// (private), made through the real binary as an operator would.
fn project_with_named_lists() -> Project {
    let project = Project::new();
    project.ok(&["lists", "add", "partners-doi", "--double-opt-in"]);
    project.ok(&[
        "lists",
        "set",
        "partners-doi",
        "--display-name",
        "en=Partners' briefing",
        "--display-name",
        "es=Boletín para socios",
        "--description",
        "es=Una carta al mes sobre el proyecto.",
    ]);
    project.ok(&["lists", "add", "staff-test", "--private"]);
    project
}

#[test]
fn the_form_offers_public_lists_by_display_name_and_keeps_the_asked_language() {
    let project = project_with_named_lists();
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);

    let form = server.get("/subscribe?lang=es");
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Boletín para socios"), "{}", form.body);
    assert!(
        form.body.contains("Una carta al mes sobre el proyecto."),
        "{}",
        form.body
    );
    assert!(
        !form.body.contains("staff-test"),
        "a private list is not offered: {}",
        form.body
    );
    assert!(
        form.body.contains("name=\"lang\" value=\"es\""),
        "the form posts the language it was asked for: {}",
        form.body
    );
    let shown = form.body.replace("value=\"partners-doi\"", "");
    assert!(
        !shown.contains("partners-doi"),
        "the internal name is only the form's value: {}",
        form.body
    );

    // A private list cannot be reached by its name either.
    assert_eq!(server.get("/subscribe?list=staff-test").status, 404);
    let r = server.post(
        "/subscribe",
        Some(FORM),
        b"email=someone%40example.org&list=staff-test&lang=en",
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(project.scalar("SELECT COUNT(*) FROM subscribers"), 0);

    let r = server.post(
        "/subscribe",
        Some(FORM),
        b"email=lucia%40example.org&list=partners-doi&lang=es",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        project
            .strings("SELECT language FROM subscribers WHERE email = 'lucia@example.org'")
            .concat(),
        "es",
        "the subscriber's language is the form's"
    );
    let mail = sink.wait_for(1, Duration::from_secs(20)).remove(0);
    assert!(
        !mail.contains("partners-doi"),
        "the mail never shows the internal name: {mail}"
    );
    let path = confirm_path(&mail);
    let page = server.get(&path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("partners-doi"), "{}", page.body);
    let done = server.post(&path, Some(FORM), b"");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(!done.body.contains("partners-doi"), "{}", done.body);
}

#[test]
fn lists_set_refuses_bad_texts_naming_the_fix() {
    let project = project_with_named_lists();
    let (code, _, err) = project.run(&["lists", "set", "partners-doi", "--description", "fr=x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--display-name fr="), "{err}");
    let (code, _, err) = project.run(&["lists", "set", "partners-doi", "--display-name", "e s=x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a language tag"), "{err}");
    let (code, _, err) = project.run(&["lists", "set", "partnrs-doi", "--public"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean `partners-doi`"), "{err}");
    let listed = project.ok(&["--json", "lists", "list"]);
    assert!(listed.contains("\"public\": false"), "{listed}");
}
