#!/usr/bin/env bash
# The test command: provisions what the tests need when it is missing, then runs the whole
# suite. The tests use real parts and fail (never skip) without them:
#   - chromium (headless, for pages), sqlite3, openssl, postfix and dovecot-imapd (bounces) and
#     nsd (DNS, for doctor), from Debian/Ubuntu packages;
#   - aiosmtpd (the SMTP server the send and serve tests deliver to) and dkimpy + PyNaCl (the
#     independent DKIM verifier), from PyPI, into a virtual environment under target/ when the
#     system Python lacks them (Debian's Python refuses `pip install` outside one, PEP 668).
# Installing packages needs root (or sudo); without either it names what to install and stops.
#
#   ./test.sh                 everything (cargo test --all-targets)
#   ./test.sh --test send     any cargo test arguments instead
set -euo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else
    echo "test.sh: needs root or sudo to run: $*" >&2
    exit 1
  fi
}

need=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
# A private Postfix instance is the relay that writes real DSNs in tests/feedback.
command -v postfix >/dev/null || need+=(postfix)
# …and a private Dovecot serves that bounce mailbox over IMAP.
command -v dovecot >/dev/null || need+=(dovecot-imapd)
# An authoritative DNS server (NSD) serves the zones `bulletin doctor` is tested against.
command -v nsd >/dev/null || need+=(nsd)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]} (Debian packages)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python_ok() { "$1" -c "import aiosmtpd, dkim, nacl" 2>/dev/null; }
if ! python_ok python3; then
  venv=target/test-python
  if ! python_ok "$venv/bin/python3"; then
    echo "test.sh: installing aiosmtpd, dkimpy and PyNaCl into $venv…" >&2
    if ! python3 -m venv "$venv" 2>/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      as_root apt-get update -qq
      as_root apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy pynacl
  fi
  # The tests start `python3`; this one has the packages.
  export PATH="$PWD/$venv/bin:$PATH"
fi

if [ $# -eq 0 ]; then
  set -- --all-targets
fi
exec cargo test "$@"
