# The words of the public pages of `bulletin serve`, in English (the last fallback of every
# language). Values in { $braces } are filled in by the program; { $list } is a list's display
# name, never its internal name.

# The language's own name, as the preference centre's language menu shows it.
language-name = English

home-subscribe = Subscribe
home-archive = Past editions

not-found-title = This link is not valid
not-found-body = The link may be incomplete (some mail programs cut long links) or no longer in use. To stop receiving the newsletter, use the unsubscribe link of a recent message, or reply to it and ask us.
expired-title = This confirmation link has expired
expired-body = { $days ->
    [one] Confirmation links are valid for one day. Subscribe again to receive a new one.
   *[other] Confirmation links are valid for { $days } days. Subscribe again to receive a new one.
}
stale-title = This link is no longer valid
stale-body = It was already used, replaced by a newer one, or your subscription has changed since. Nothing was changed. To subscribe again, use the form: we will send you a message to confirm.
unavailable-title = Please try again in a minute
unavailable-body = The service is busy or under maintenance. Nothing was changed.
too-many-title = Too many requests
too-many-body = Please try again later.
too-large-title = Request too large
bad-request-title = This form could not be read
bad-request-body = Please go back and try again.

unsubscribe-title = Unsubscribe from { $list }?
unsubscribe-body = You will no longer receive { $list } at this address.
unsubscribe-button = Unsubscribe
unsubscribed-title = You are unsubscribed
unsubscribed-body = You will receive no more editions of { $list }.
resubscribe-hint = Clicked by mistake?
resubscribe-button = Resubscribe
others-hint = { $count ->
    [one] You still receive one other list from us.
   *[other] You still receive { $count } other lists from us.
}
leave-all-button = Leave every list
resubscribed-title = Welcome back
resubscribed-body = You are subscribed to { $list } again.
left-all-title = You have left every list
left-all-body = We will send you nothing more.
generic-unsubscribe-title = Unsubscribe
generic-unsubscribe-body = Every message we send ends with a personal unsubscribe link: open it from the message you received, or use your mail program's unsubscribe button.
generic-preferences-body = Every message we send ends with a personal Manage preferences link: open it from the message you received to choose your lists and language.
test-copy-title = This is a test copy
test-copy-body = You opened a link of a test copy of an edition, sent with bulletin preview --to to check it before sending. In the real edition, this button unsubscribes the reader from the list. Nothing was changed: a test copy unsubscribes nobody.

subscribe-title = Subscribe
email-label = Email address
list-label = List
honeypot-label = Leave this field empty
subscribe-button = Subscribe
subscribe-note = We will send you a message to confirm. We never share your address.
no-lists = There is no list to subscribe to yet.
bad-address = This address does not look right. Please check it.
check-inbox-title = Check your inbox
check-inbox-body = If this address can receive our newsletter, a message with a confirmation link is on its way. The subscription starts when you open the link and confirm.
confirm-title = Confirm your subscription
confirm-body = Press the button to start receiving { $list }.
confirm-button = Confirm
confirmed-title = Subscription confirmed
confirmed-body = You will receive the next edition of { $list }.

archive-title = Past editions
archive-empty = No edition has been published yet.

prefs-title = Your subscriptions
prefs-intro = Choose what you receive from us. Nothing changes until you save.
prefs-lists-legend = Lists
prefs-name-label = Your name
prefs-language-label = Language of our messages and pages
prefs-save-button = Save my choices
prefs-saved = Your choices are saved.
prefs-unchanged = Everything was already as you chose: nothing needed saving.
prefs-leave-all-hint = Or stop receiving anything from us:
prefs-blocklisted = This address no longer receives mail from us, so lists cannot be joined from here; you can still leave them.
prefs-bad-input = This could not be saved: the name must be one line of at most { $max } characters, and the language a language tag such as en or pt-BR. Nothing was changed.
prefs-test-copy-title = Preview of the preference centre
prefs-test-copy-body = You opened the Manage preferences link of a test copy. A reader sees their own lists here, and can join or leave each one, change their name and language, or leave everything. Nothing is saved from a test copy.
