# El mensaje de doble confirmación de `bulletin serve`, en español.

subject = Confirme su suscripción a { $list }
greeting = Hola:
asked = Alguien, probablemente usted, pidió recibir { $list } en esta dirección. Para confirmarlo, abra este enlace y pulse el botón:
validity = { $days ->
    [one] El enlace sirve durante un día. Si no lo pidió, ignore este mensaje: no recibirá nada más.
   *[other] El enlace sirve durante { $days } días. Si no lo pidió, ignore este mensaje: no recibirá nada más.
}
button = Confirmar mi suscripción
