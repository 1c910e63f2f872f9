# Las palabras del tema integrado, en español.

dear = Hola
reader = a todos
in-this-edition = En este número
read-more = Leer más
further-reading = Para saber más
documents = Documentos para descargar
why = Recibe este mensaje porque está suscrito a
unsubscribe = Darse de baja
preferences = Preferencias
view-in-browser = Ver en el navegador
contact = Contacto
published-by = Publicado por
