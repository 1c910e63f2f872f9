"""An aiosmtpd handler that only counts: one line per accepted recipient, for the multi-host
and benchmark runs where a Maildir of 20,000 files would measure the disk, not the sender.

Run as
    python3 -m aiosmtpd -n -l ADDR:PORT -c counting_smtp.CountingHandler LOGFILE
with this folder on PYTHONPATH. Each line is `<arrival unix time> <recipient> <Message-ID>`,
written when the final dot has been received, before the 250 reply.
"""

import time


class CountingHandler:
    def __init__(self, log):
        self.log = open(log, "a", buffering=1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("CountingHandler takes LOGFILE")
        return cls(*args)

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        message_id = "-"
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                message_id = line[11:].strip().decode("ascii", "replace")
                break
        now = time.time()
        for rcpt in envelope.rcpt_tos:
            self.log.write(f"{now:.6f} {rcpt} {message_id}\n")
        return "250 2.0.0 OK counted"
