"""An aiosmtpd handler that misbehaves on purpose, for bulletin's delivery tests.

Run by the tests as
    python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c faulty_smtp.FaultyHandler MAILDIR SPEC
with this folder on PYTHONPATH. The SMTP server is aiosmtpd's; only the replies are ours.

SPEC is a comma-separated list of rules (empty for none):
    temp=ADDR:N    answer the DATA of ADDR with 451 the first N times
    perm=ADDR      refuse ADDR at RCPT with 550 5.1.1 (no such user)
    drop=ADDR:N    close the connection during the DATA of ADDR the first N times
    swallow=ADDR:N take the whole DATA of ADDR the first N times and never answer the final dot
    delay=SECONDS  wait this long before answering every DATA (a slow server)
    hold=N:PATH    let the first N DATA through, then hold every later one (before its reply)
                   until the file PATH exists: a test acts on a send that is surely still
                   running, then releases it by creating PATH
    mailfrom=REPLY answer every MAIL FROM with REPLY (underscores stand for spaces)
    rcptall=REPLY  answer every RCPT TO with REPLY
    rcpt=ADDR:REPLY answer the RCPT TO of ADDR with REPLY
    pipelining     announce PIPELINING (RFC 2920), and write to envelopes.log, beside
                   MAILDIR, one line per MAIL FROM: `grouped` when the RCPT and DATA
                   commands had already arrived with it, `waited` when they had not
Every accepted message is stored in the Maildir MAILDIR.
"""

import asyncio
import mailbox
import os


class FaultyHandler:
    def __init__(self, maildir, spec=""):
        self.box = mailbox.Maildir(maildir, create=True)
        self.temp, self.drop, self.swallow, self.perm, self.delay = {}, {}, {}, set(), 0.0
        self.mailfrom, self.rcptall, self.rcpt = None, None, {}
        self.seen = {}
        self.pipelining = False
        self.hold_after, self.hold_path, self.data_count = None, None, 0
        self.log = os.path.join(os.path.dirname(os.path.abspath(maildir).rstrip("/")), "envelopes.log")
        for rule in filter(None, spec.split(",")):
            kind, _, arg = rule.partition("=")
            if kind == "pipelining":
                self.pipelining = True
            elif kind == "delay":
                self.delay = float(arg)
            elif kind == "hold":
                n, _, path = arg.partition(":")
                self.hold_after, self.hold_path = int(n), path
            elif kind == "perm":
                self.perm.add(arg.lower())
            elif kind in ("mailfrom", "rcptall"):
                setattr(self, kind, arg.replace("_", " "))
            elif kind == "rcpt":
                addr, _, reply = arg.partition(":")
                self.rcpt[addr.lower()] = reply.replace("_", " ")
            else:
                addr, _, n = arg.rpartition(":")
                getattr(self, kind)[addr.lower()] = int(n)

    @classmethod
    def from_cli(cls, parser, *args):
        if not 1 <= len(args) <= 2:
            parser.error("FaultyHandler takes MAILDIR [SPEC]")
        return cls(*args)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.pipelining:
            # What the client sent after MAIL FROM and the server has not read yet: aiosmtpd
            # reads one command at a time from its stream reader's buffer.
            waiting = bytes(server._reader._buffer).upper()
            with open(self.log, "a") as log:
                log.write("grouped\n" if b"RCPT TO:" in waiting and b"DATA\r\n" in waiting else "waited\n")
        if self.mailfrom:
            return self.mailfrom
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcptall:
            return self.rcptall
        if address.lower() in self.rcpt:
            return self.rcpt[address.lower()]
        if address.lower() in self.perm:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0].lower()
        n = self.seen.get(rcpt, 0) + 1
        self.seen[rcpt] = n
        # Counted as each DATA comes in, so that exactly N go through however many
        # connections the client has open at once.
        self.data_count += 1
        if self.hold_after is not None and self.data_count > self.hold_after:
            while not os.path.exists(self.hold_path):
                await asyncio.sleep(0.02)
        if self.delay:
            await asyncio.sleep(self.delay)
        if n <= self.temp.get(rcpt, 0):
            return "451 4.3.0 Temporary failure, try again later"
        if n <= self.swallow.get(rcpt, 0):
            # The whole message arrived; the final reply never comes.
            await asyncio.sleep(3600)
        if n <= self.drop.get(rcpt, 0):
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        self.box.add(envelope.original_content)
        return "250 2.0.0 OK: queued"
