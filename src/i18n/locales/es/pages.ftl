# Las palabras de las páginas públicas de `bulletin serve`, en español.

language-name = Español

home-subscribe = Suscribirse
home-archive = Ediciones anteriores

not-found-title = Este enlace no es válido
not-found-body = Puede que el enlace esté incompleto (algunos programas de correo cortan los enlaces largos) o que ya no se use. Para dejar de recibir el boletín, use el enlace de baja de un mensaje reciente, o respóndalo y pídanoslo.
expired-title = Este enlace de confirmación ha caducado
expired-body = { $days ->
    [one] Los enlaces de confirmación sirven durante un día. Suscríbase de nuevo para recibir otro.
   *[other] Los enlaces de confirmación sirven durante { $days } días. Suscríbase de nuevo para recibir otro.
}
stale-title = Este enlace ya no sirve
stale-body = Ya se usó, otro más reciente lo sustituyó o su suscripción cambió después. No se ha modificado nada. Para suscribirse de nuevo, use el formulario: le enviaremos un mensaje para confirmar.
unavailable-title = Vuelva a intentarlo dentro de un minuto
unavailable-body = El servicio está ocupado o en mantenimiento. No se ha modificado nada.
too-many-title = Demasiadas solicitudes
too-many-body = Vuelva a intentarlo más tarde.
too-large-title = Solicitud demasiado grande
bad-request-title = No se pudo leer este formulario
bad-request-body = Vuelva atrás e inténtelo de nuevo.

unsubscribe-title = ¿Darse de baja de { $list }?
unsubscribe-body = Dejará de recibir { $list } en esta dirección.
unsubscribe-button = Darme de baja
unsubscribed-title = Se ha dado de baja
unsubscribed-body = No recibirá más ediciones de { $list }.
resubscribe-hint = ¿Fue un error?
resubscribe-button = Volver a suscribirme
others-hint = { $count ->
    [one] Sigue recibiendo otra lista nuestra.
   *[other] Sigue recibiendo otras { $count } listas nuestras.
}
leave-all-button = Salir de todas las listas
resubscribed-title = Bienvenido de nuevo
resubscribed-body = Vuelve a estar suscrito a { $list }.
left-all-title = Ha salido de todas las listas
left-all-body = No le enviaremos nada más.
generic-unsubscribe-title = Darse de baja
generic-unsubscribe-body = Cada mensaje que enviamos termina con un enlace personal para darse de baja: ábralo desde el mensaje que recibió, o use el botón de baja de su programa de correo.
generic-preferences-body = Cada mensaje que enviamos termina con un enlace personal de preferencias: ábralo desde el mensaje que recibió para elegir sus listas y su idioma.
test-copy-title = Esta es una copia de prueba
test-copy-body = Ha abierto un enlace de una copia de prueba de una edición, enviada con bulletin preview --to para revisarla antes del envío. En la edición real, este botón da de baja al lector de la lista. No se ha modificado nada: una copia de prueba no da de baja a nadie.

subscribe-title = Suscribirse
email-label = Correo electrónico
list-label = Lista
honeypot-label = Deje este campo vacío
subscribe-button = Suscribirme
subscribe-note = Le enviaremos un mensaje para confirmar. Nunca compartimos su dirección.
no-lists = Todavía no hay ninguna lista a la que suscribirse.
bad-address = Esta dirección no parece correcta. Revísela, por favor.
check-inbox-title = Revise su bandeja de entrada
check-inbox-body = Si esta dirección puede recibir nuestro boletín, le llegará un mensaje con un enlace de confirmación. La suscripción empieza cuando abra el enlace y confirme.
confirm-title = Confirme su suscripción
confirm-body = Pulse el botón para empezar a recibir { $list }.
confirm-button = Confirmar
confirmed-title = Suscripción confirmada
confirmed-body = Recibirá la próxima edición de { $list }.

archive-title = Ediciones anteriores
archive-empty = Todavía no se ha publicado ninguna edición.

prefs-title = Sus suscripciones
prefs-intro = Elija lo que recibe de nosotros. Nada cambia hasta que guarde.
prefs-lists-legend = Listas
prefs-name-label = Su nombre
prefs-language-label = Idioma de nuestros mensajes y páginas
prefs-save-button = Guardar mis opciones
prefs-saved = Sus opciones se han guardado.
prefs-unchanged = Todo estaba ya como lo eligió: no había nada que guardar.
prefs-leave-all-hint = O deje de recibir cualquier cosa de nosotros:
prefs-blocklisted = Esta dirección ya no recibe nuestros mensajes, así que desde aquí no puede unirse a ninguna lista; sí puede salir de ellas.
prefs-bad-input = No se pudo guardar: el nombre debe ocupar una sola línea de { $max } caracteres como máximo, y el idioma ser un código como es o pt-BR. No se ha modificado nada.
prefs-test-copy-title = Vista previa del centro de preferencias
prefs-test-copy-body = Ha abierto el enlace «Preferencias» de una copia de prueba. Aquí cada lector ve sus propias listas y puede unirse o salir de cada una, cambiar su nombre e idioma, o salir de todo. Desde una copia de prueba no se guarda nada.
