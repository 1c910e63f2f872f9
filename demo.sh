#!/usr/bin/env bash
# The demo: the whole pipeline on the embedded defaults (bulletin.toml here, the SQLite file
# bulletin.db, the sample subscriber list, the GLO.ACT example edition). Safe to run again:
# every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x target/release/bulletin ]; then
  echo "Building bulletin (release). The first build takes a few minutes; later runs start at once."
fi
cargo build --release --quiet
bulletin=./target/release/bulletin

# Lists: created once; "already exists" on later runs is expected.
$bulletin lists add glo-act-news 2>/dev/null || true
$bulletin lists add practitioners --double-opt-in 2>/dev/null || true

# Subscribers: the second run reports them all unchanged.
$bulletin subscribers import subscribers/glo-act-sample.csv
$bulletin lists list
$bulletin subscribers list --list glo-act-news

# The edition: HTML, text and archive page per language, with the lint report.
# Unsubscribe links are signed; a real deployment keeps its own secret (see README).
export BULLETIN_SECRET="${BULLETIN_SECRET:-demo-only-secret-change-me-0123456789abcdef}"
$bulletin compose editions/glo-act-special-edition
$bulletin preview editions/glo-act-special-edition
echo "open out/glo-act-special-edition/preview.html to see every language at desktop and phone widths"

# The send: one message per confirmed subscriber into the Maildir outbox. A second run
# resumes the same campaign and sends nothing twice.
$bulletin send editions/glo-act-special-edition --list glo-act-news --outbox outbox --yes
$bulletin campaigns list

cat <<DONE

Done. What the demo made:
  bulletin.db                                 the subscribers, lists, campaign and one row per recipient
  out/glo-act-special-edition/                the edition per language: email.html, email.txt, archive.html, lint report
  out/glo-act-special-edition/preview.html    every language at desktop and phone widths, headers, text and lint
  outbox/new/                                 $(ls outbox/new | wc -l) messages, one per confirmed subscriber, exactly as SMTP would carry them

Next:
  open out/glo-act-special-edition/preview.html in a browser
  ./target/release/bulletin campaigns show 1        who got it, and what happened to each recipient
  ./target/release/bulletin serve --insecure-dev-secret   the unsubscribe and archive pages on http://127.0.0.1:8080
  ./target/release/bulletin init my-newsletter      start a newsletter of your own
DONE
