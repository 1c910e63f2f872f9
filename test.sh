#!/usr/bin/env bash
# The test command: provisions what the tests need when it is missing, then runs the whole
# suite twice, once per store backend: on SQLite files, then the integration tests again on
# PostgreSQL (a fresh database per test project). The tests use real parts and fail (never
# skip) without them:
#   - chromium (headless, for pages), sqlite3, openssl, postfix and dovecot-imapd (bounces),
#     nsd (DNS, for doctor) and postgresql, from Debian/Ubuntu packages;
#   - aiosmtpd (the SMTP server the send and serve tests deliver to) and dkimpy + PyNaCl (the
#     independent DKIM verifier), from PyPI, into a virtual environment under target/ when the
#     system Python lacks them (Debian's Python refuses `pip install` outside one, PEP 668).
#   - a throw-away PostgreSQL server: initdb into a temporary folder under /tmp, listening on
#     127.0.0.1 only, on a free port, trust authentication for the superuser `bulletin_test`;
#     stopped and removed when this script ends, however it ends. As root it runs as the
#     `postgres` user (PostgreSQL refuses root). BULLETIN_TEST_POSTGRES_URL=postgres://… (a
#     role that may create databases) uses that server instead.
# Installing packages needs root (or sudo); without either it names what to install and stops.
#
#   ./test.sh                 everything: cargo test --all-targets on SQLite, then
#                             cargo test --test '*' (the integration tests) on PostgreSQL
#   ./test.sh --test send     any cargo test arguments instead (on both backends)
#   BULLETIN_TEST_BACKEND=sqlite|postgres ./test.sh …   one backend's pass only
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
# Network namespaces and a bridge, the hosts of the multi-host test (tests/send/hosts.rs).
command -v ip >/dev/null || need+=(iproute2)
# PostgreSQL, the second store backend. Debian keeps the server programs off PATH, in
# /usr/lib/postgresql/<major>/bin; the newest is used.
pg_bin() { { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null || true; } | sort -V | tail -n 1; }
backend=${BULLETIN_TEST_BACKEND:-}
case "$backend" in
  "" | sqlite | postgres) ;;
  *) echo "test.sh: BULLETIN_TEST_BACKEND=$backend is not a backend: use sqlite or postgres" >&2; exit 2 ;;
esac
if [ -z "${BULLETIN_TEST_POSTGRES_URL:-}" ] && [ ! -x "$(pg_bin)/initdb" ]; then
  need+=(postgresql)
fi
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

# A throw-away PostgreSQL server for the second pass, unless one was given.
pg_data=
pg_run() { "$@"; }
stop_postgres() {
  if [ -n "$pg_data" ]; then
    pg_run "$(pg_bin)/pg_ctl" -D "$pg_data/db" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_data"
    pg_data=
  fi
}
start_postgres() {
  local bin port
  bin=$(pg_bin)
  if [ ! -x "$bin/initdb" ]; then
    echo "test.sh: no PostgreSQL server programs in /usr/lib/postgresql/*/bin: apt-get install postgresql," >&2
    echo "  or name a server with BULLETIN_TEST_POSTGRES_URL=postgres://HOST:PORT/postgres?user=ROLE" >&2
    exit 1
  fi
  pg_data=$(mktemp -d /tmp/bulletin-test-pg.XXXXXX)
  trap stop_postgres EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root; the package made this user.
    chown postgres: "$pg_data"
    pg_run() { runuser -u postgres -- "$@"; }
  fi
  # C.UTF-8: text sorts by code point, as in SQLite, so ORDER BY agrees on both backends.
  if ! pg_run "$bin/initdb" -D "$pg_data/db" -U bulletin_test --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync >"$pg_data/initdb.log" 2>&1; then
    cat "$pg_data/initdb.log" >&2
    echo "test.sh: initdb failed (above)" >&2
    exit 1
  fi
  # A free port (not 5432: Debian's own cluster may be there); sockets stay in the folder.
  # Each test makes its own database and the binary opens a pool: many connections.
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >>"$pg_data/db/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg_data/db'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  # TLS and a password role, for the tests of what only a server has (tests/foundation/
  # postgres.rs): a self-signed certificate for "localhost" (its own CA), and a role that may
  # come in only over TLS and with its password (scram-sha-256); everyone else is trusted.
  # (A CA and a server certificate it signs: rustls refuses a CA certificate as the server's.)
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bulletin test CA" \
    -keyout "$pg_data/ca.key" -out "$pg_data/ca.crt" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$pg_data/db/server.key" \
    -out "$pg_data/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$pg_data/server.ext"
  openssl x509 -req -in "$pg_data/server.csr" -CA "$pg_data/ca.crt" -CAkey "$pg_data/ca.key" \
    -CAcreateserial -days 2 -extfile "$pg_data/server.ext" -out "$pg_data/db/server.crt" >/dev/null 2>&1
  chmod 600 "$pg_data/db/server.key"
  chmod 644 "$pg_data/ca.crt"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pg_data/db/server.key" "$pg_data/db/server.crt"; fi
  cat >>"$pg_data/db/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
CONF
  { printf 'hostssl all bulletin_pw 127.0.0.1/32 scram-sha-256\nhost all bulletin_pw all reject\n'
    cat "$pg_data/db/pg_hba.conf"; } >"$pg_data/hba" && cat "$pg_data/hba" >"$pg_data/db/pg_hba.conf"
  if ! pg_run "$bin/pg_ctl" -D "$pg_data/db" -l "$pg_data/db/server.log" -w -t 60 start >/dev/null; then
    cat "$pg_data/db/server.log" >&2
    echo "test.sh: the PostgreSQL server did not start (its log is above)" >&2
    exit 1
  fi
  # The role goes in the query: bulletin refuses a URL with a user name or password in it.
  export BULLETIN_TEST_POSTGRES_URL="postgres://127.0.0.1:$port/postgres?user=bulletin_test&sslmode=disable"
  python3 -c 'import secrets; print(secrets.token_hex(16))' >"$pg_data/bulletin_pw.password"
  chmod 644 "$pg_data/bulletin_pw.password"
  "$bin/psql" "$BULLETIN_TEST_POSTGRES_URL" -q -c \
    "CREATE ROLE bulletin_pw LOGIN PASSWORD '$(cat "$pg_data/bulletin_pw.password")'" >/dev/null
  export BULLETIN_TEST_POSTGRES_TLS_CA="$pg_data/ca.crt"
  export BULLETIN_TEST_POSTGRES_PASSWORD_FILE="$pg_data/bulletin_pw.password"
  echo "test.sh: PostgreSQL $(basename "$(dirname "$bin")") on 127.0.0.1:$port (data in $pg_data)" >&2
}

if [ $# -eq 0 ]; then
  set -- --all-targets
fi
# The PostgreSQL pass reruns the integration tests only: the unit tests open no server.
pg_args=()
for arg in "$@"; do
  if [ "$arg" = --all-targets ]; then pg_args+=(--test '*'); else pg_args+=("$arg"); fi
done

# Both passes run even when the first fails, so that one run shows both; either fails it.
status=0
# The server is up for both passes: the SQLite pass's `db copy` tests copy into it.
if [ -z "${BULLETIN_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
fi
if [ "$backend" != postgres ]; then
  echo "test.sh: backend pass: SQLite (cargo test $*)" >&2
  BULLETIN_TEST_BACKEND=sqlite cargo test "$@" || status=$?
fi
if [ "$backend" != sqlite ]; then
  echo "test.sh: backend pass: PostgreSQL (cargo test ${pg_args[*]})" >&2
  BULLETIN_TEST_BACKEND=postgres cargo test "${pg_args[@]}" || status=$?
fi
exit "$status"
