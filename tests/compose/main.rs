//! Integration tests of `compose` and `preview`: snapshots of the rendered editions, every
//! broken fixture edition with the error it must give, the real binary, the preview server
//! over real HTTP, and the email and preview page in a real headless Chromium.

mod broken;
mod browser;
mod catalogues;
mod cli;
mod greeting;
mod hostile;
mod images;
mod init;
mod languages;
mod preview;
mod rtl;
mod snapshots;

use std::path::{Path, PathBuf};

use bulletin::render::ListIdentity;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture edition folder.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/editions").join(name)
}

/// The example edition.
pub fn example() -> PathBuf {
    root().join("editions/glo-act-special-edition")
}

/// The identity the tests render with (what bulletin.toml's [list] would give).
pub fn list() -> ListIdentity {
    ListIdentity {
        name: "GLO.ACT Newsletter".into(),
        from: "GLO.ACT <newsletter@example.org>".into(),
        reply_to: Some("glo-act@example.org".into()),
        postal_address: Some(
            "GLO.ACT, UNODC, Vienna International Centre, PO Box 500, 1400 Vienna, Austria".into(),
        ),
        public_url: "https://newsletter.example.org".into(),
    }
}

/// A configuration file for the binary, written into `dir`.
pub fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("bulletin.toml");
    std::fs::write(
        &path,
        "[list]\nname = \"GLO.ACT Newsletter\"\nid = \"glo-act.newsletter.example.org\"\n\
         from = \"GLO.ACT <newsletter@example.org>\"\nreply_to = \"glo-act@example.org\"\n\
         postal_address = \"GLO.ACT, UNODC, Vienna International Centre, 1400 Vienna, Austria\"\n\
         public_url = \"https://newsletter.example.org\"\n",
    )
    .expect("write config");
    path
}

/// Copies a folder tree.
pub use bulletin_testkit::copy_dir;

/// The binary, run in `dir` with a configuration there.
pub fn bulletin(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("bulletin").expect("binary");
    cmd.current_dir(dir);
    for key in bulletin_testkit::bulletin_vars() {
        cmd.env_remove(key);
    }
    cmd.env("BULLETIN_CONFIG", write_config(dir));
    cmd
}

/// A temporary folder into which the binary has composed the example edition
/// (`out/glo-act-special-edition/<lang>/email.html`…).
pub fn composed_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    bulletin(dir.path())
        .arg("compose")
        .arg(example())
        .assert()
        .success();
    dir
}

/// Writes a project theme file `templates/<name>` into `dir`.
pub fn write_template(dir: &Path, name: &str, text: &str) {
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir templates");
    std::fs::write(templates.join(name), text).expect("write template");
}
