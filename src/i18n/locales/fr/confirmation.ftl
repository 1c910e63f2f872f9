# Le message de double opt-in de `bulletin serve`, en français.

subject = Confirmez votre abonnement à { $list }
greeting = Bonjour,
asked = Quelqu’un, sans doute vous, a demandé à recevoir { $list } à cette adresse. Pour confirmer, ouvrez ce lien et appuyez sur le bouton :
validity = { $days ->
    [one] Le lien est valable un jour. Si vous n’avez rien demandé, ignorez ce message : vous ne recevrez rien de plus.
   *[other] Le lien est valable { $days } jours. Si vous n’avez rien demandé, ignorez ce message : vous ne recevrez rien de plus.
}
button = Confirmer mon abonnement
