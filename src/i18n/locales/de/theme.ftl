# Die Wörter des eingebauten Themas, auf Deutsch.

dear = Hallo
reader = zusammen
in-this-edition = In dieser Ausgabe
read-more = Weiterlesen
further-reading = Mehr dazu
documents = Dokumente zum Herunterladen
why = Sie erhalten diese E-Mail, weil Sie folgenden Newsletter abonniert haben:
unsubscribe = Abmelden
preferences = Einstellungen
view-in-browser = Im Browser ansehen
contact = Kontakt
published-by = Herausgegeben von
