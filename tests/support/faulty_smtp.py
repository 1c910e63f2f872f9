"""An aiosmtpd handler that misbehaves on purpose, for bulletin's delivery tests.

Run by the tests as
    python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c faulty_smtp.FaultyHandler MAILDIR SPEC
with this folder on PYTHONPATH. The SMTP server is aiosmtpd's; only the replies are ours.

SPEC is a comma-separated list of rules (empty for none):
    temp=ADDR:N    answer the DATA of ADDR with 451 the first N times
    perm=ADDR      refuse ADDR at RCPT with 550 5.1.1 (no such user)
    drop=ADDR:N    close the connection during the DATA of ADDR the first N times
    delay=SECONDS  wait this long before answering every DATA (a slow server)
Every accepted message is stored in the Maildir MAILDIR.
"""

import asyncio
import mailbox


class FaultyHandler:
    def __init__(self, maildir, spec=""):
        self.box = mailbox.Maildir(maildir, create=True)
        self.temp, self.drop, self.perm, self.delay = {}, {}, set(), 0.0
        self.seen = {}
        for rule in filter(None, spec.split(",")):
            kind, _, arg = rule.partition("=")
            if kind == "delay":
                self.delay = float(arg)
            elif kind == "perm":
                self.perm.add(arg.lower())
            else:
                addr, _, n = arg.rpartition(":")
                getattr(self, kind)[addr.lower()] = int(n)

    @classmethod
    def from_cli(cls, parser, *args):
        if not 1 <= len(args) <= 2:
            parser.error("FaultyHandler takes MAILDIR [SPEC]")
        return cls(*args)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.perm:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0].lower()
        n = self.seen.get(rcpt, 0) + 1
        self.seen[rcpt] = n
        if self.delay:
            await asyncio.sleep(self.delay)
        if n <= self.temp.get(rcpt, 0):
            return "451 4.3.0 Temporary failure, try again later"
        if n <= self.drop.get(rcpt, 0):
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        self.box.add(envelope.original_content)
        return "250 2.0.0 OK: queued"
