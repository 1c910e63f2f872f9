# The words the built-in email theme writes itself, in English (the last fallback of every
# language). The templates see each message as `labels.<id>` with `-` written `_`:
# `read-more` is `{{labels.read_more}}`.

dear = Dear
reader = reader
in-this-edition = In this edition
read-more = Read more
further-reading = Further reading
documents = Documents to download
why = You are receiving this email because you subscribed to
unsubscribe = Unsubscribe
preferences = Manage preferences
view-in-browser = View in your browser
contact = Contact
published-by = Published by
