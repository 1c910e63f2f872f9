"""An SMTP relay that wants a password, for `bulletin doctor`'s tests: aiosmtpd announcing
AUTH PLAIN LOGIN (over plain text: the tests run on loopback), SIZE and, unless told not to,
SMTPUTF8.

Run by the tests as
    python3 auth_smtp.py PORT USER PASSWORD SIZE [no-smtputf8] [tls=CERT:KEY]
It accepts (and discards) mail only after a successful AUTH with USER and PASSWORD; with
tls=, it also announces STARTTLS with that certificate and key (PEM files). It writes
`ready` on stderr once it answers: listening alone is not that (aiosmtpd's Controller binds,
then checks that it answers, and exits if that takes longer than its ready timeout).
"""

import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def main():
    port, user, password, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    smtputf8 = "no-smtputf8" not in sys.argv[5:]
    tls = None
    for arg in sys.argv[5:]:
        if arg.startswith("tls="):
            cert, _, key = arg[len("tls="):].partition(":")
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Discard(),
        hostname="127.0.0.1",
        port=port,
        # Its own name in the greeting, given: otherwise every connection asks the system
        # for this machine's name (socket.getfqdn, a DNS question that may be slow).
        server_hostname="relay.example.test",
        # A loaded machine may take seconds to answer the first connection; aiosmtpd's
        # default (5 s) would make the relay exit at start then, after it was listening.
        ready_timeout=60,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
        data_size_limit=size,
        enable_SMTPUTF8=smtputf8,
        tls_context=tls,
        require_starttls=False,
    )
    controller.start()
    print("ready", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
