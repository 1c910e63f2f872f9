//! Interrupting and steering a campaign: Ctrl-C, `campaigns pause`, `campaigns cancel`.

use std::process::{Child, Stdio};

use crate::smtp::{
    edition, held_server, per_recipient, project_with, release, run, send_command, send_news,
    wait_for_messages,
};
use crate::smtp_server::SmtpServer;
use crate::support::Project;

fn spawn_send(p: &Project, server: &SmtpServer) -> Child {
    send_command(p, server, 2)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send")
}

#[test]
fn ctrl_c_sigterm_and_sighup_pause_cleanly_and_the_same_command_resumes() {
    // Ctrl-C at a terminal, SIGTERM from systemd or `timeout`, SIGHUP when the terminal goes
    // away: each stops claiming, records what was in flight and leaves the campaign paused.
    for signal in ["INT", "TERM", "HUP"] {
        let p = project_with(60);
        let server = SmtpServer::faulty(p.path(), "delay=0.03");
        let child = spawn_send(&p, &server);
        wait_for_messages(&server, 10);
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = child.wait_with_output().expect("send exits");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "SIG{signal}: {err}");
        assert!(
            err.contains("interrupted; run the same command again to resume"),
            "SIG{signal}: {err}"
        );
        assert_eq!(
            p.strings("SELECT status FROM campaigns"),
            vec!["paused".to_string()],
            "SIG{signal}"
        );
        assert_eq!(
            p.scalar("SELECT COUNT(*) FROM deliveries WHERE status IN ('sending', 'uncertain')"),
            0,
            "SIG{signal}: in-flight messages finished and were recorded"
        );
        let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
        assert_eq!(code, 0, "SIG{signal}: {err}");
        let seen = per_recipient(&server.messages());
        assert_eq!(seen.len(), 60, "SIG{signal}");
        assert!(
            seen.values().all(|n| *n == 1),
            "SIG{signal}: a clean pause never duplicates: {seen:?}"
        );
    }
}

#[test]
fn pause_from_another_command_then_cancel() {
    let p = project_with(60);
    // The send is held after 5 messages until the pause is recorded: the pause surely lands
    // mid-campaign, not after a fast send has finished.
    let (server, hold) = held_server(&p, 5);
    let child = spawn_send(&p, &server);
    wait_for_messages(&server, 5);
    let (code, _, err) = run(&p, &server.url(), &[], &["campaigns", "pause", "1"]);
    assert_eq!(code, 0, "{err}");
    release(&hold);
    let out = child.wait_with_output().expect("send exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("paused by `bulletin campaigns pause`"),
        "{err}"
    );
    let sent_before_cancel = server.messages().len();
    assert!(sent_before_cancel < 60, "paused before the end");

    let (code, out, _) = run(&p, &server.url(), &[], &["--json", "campaigns", "list"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list[0]["campaign"]["status"], "paused");

    let (code, _, err) = run(&p, &server.url(), &[], &["campaigns", "cancel", "1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("was cancelled; it will not be resumed"),
        "{err}"
    );
    assert_eq!(server.messages().len(), sent_before_cancel);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'skipped' AND last_reply = 'campaign cancelled'"),
        60 - i64::try_from(sent_before_cancel).expect("small")
    );
}

#[test]
fn a_changed_edition_is_not_mixed_into_a_started_campaign() {
    let p = project_with(3);
    let server = SmtpServer::start(p.path());
    let copy = p.path().join("edition");
    copy_dir(std::path::Path::new(&edition()), &copy);
    let copy_s = copy.to_str().expect("path").to_string();
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &copy_s, "--list", "news", "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    let toml = copy.join("edition.toml");
    let text = std::fs::read_to_string(&toml)
        .expect("read")
        .replace("Six pillars", "Six pillars, revised");
    std::fs::write(&toml, text).expect("write");
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &["send", &copy_s, "--list", "news", "--yes"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("with different content") && err.contains("new slug"),
        "{err}"
    );
    assert_eq!(server.messages().len(), 3);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
