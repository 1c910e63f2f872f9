# The double opt-in mail `bulletin serve` sends when someone uses the subscription form, in
# English. { $list } is the list's display name; { $days } how long the link works.

subject = Confirm your subscription to { $list }
greeting = Hello,
asked = Someone, probably you, asked to receive { $list } at this address. To confirm, open this link and press the button:
validity = { $days ->
    [one] The link is valid for one day. If you did not ask for this, ignore this message: you will receive nothing more.
   *[other] The link is valid for { $days } days. If you did not ask for this, ignore this message: you will receive nothing more.
}
button = Confirm my subscription
