#!/usr/bin/env bash
# A real SMTP server for the serve tests: Python's aiosmtpd, keeping every message it receives
# in a Maildir (new/ holds one file per message). The tests start it themselves.
#
#   tests/serve/smtp-sink.sh HOST:PORT MAILDIR
#
# Needs `python3 -m pip install aiosmtpd` (BULLETIN_PYTHON names another interpreter).
set -euo pipefail
listen=${1:?usage: smtp-sink.sh HOST:PORT MAILDIR}
maildir=${2:?usage: smtp-sink.sh HOST:PORT MAILDIR}
# Python's Maildir creates its new/ cur/ tmp/ only when the folder itself is missing.
mkdir -p "$maildir/new" "$maildir/cur" "$maildir/tmp"
exec "${BULLETIN_PYTHON:-python3}" -m aiosmtpd -n -l "$listen" \
    -c aiosmtpd.handlers.Mailbox "$maildir"
