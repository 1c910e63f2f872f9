"""Verifies the DKIM signature of every message in a Maildir with dkimpy, an independent
implementation (bulletin signs with its own code). The public key is given on the command
line instead of being looked up in DNS.

    python3 dkim_verify.py MAILDIR "v=DKIM1; k=rsa; p=..."

Prints one line per message and exits 1 if any does not verify.
"""

import mailbox
import sys

import dkim

maildir, record = sys.argv[1], sys.argv[2].encode()
failed = 0
count = 0
for key in mailbox.Maildir(maildir, create=False).iterkeys():
    path = mailbox.Maildir(maildir, create=False)._lookup(key)
    with open(f"{maildir}/{path}", "rb") as f:
        raw = f.read()
    count += 1
    ok = dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    if not ok:
        failed += 1
        print("FAIL", path)
print(f"{count} checked, {failed} failed")
sys.exit(1 if failed or not count else 0)
