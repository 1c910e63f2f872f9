# Les mots du thème intégré, en français.

dear = Bonjour
reader = à toutes et à tous
in-this-edition = Dans ce numéro
read-more = Lire la suite
further-reading = Pour aller plus loin
documents = Documents à télécharger
why = Vous recevez ce message parce que vous êtes abonné·e à
unsubscribe = Se désabonner
preferences = Gérer mes préférences
view-in-browser = Voir dans le navigateur
contact = Contact
published-by = Publié par
