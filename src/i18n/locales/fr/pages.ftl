# Les mots des pages publiques de `bulletin serve`, en français.

language-name = Français

home-subscribe = S’abonner
home-archive = Éditions précédentes

not-found-title = Ce lien n’est pas valide
not-found-body = Le lien est peut-être incomplet (certains logiciels de messagerie coupent les liens longs) ou n’est plus utilisé. Pour ne plus recevoir la lettre, utilisez le lien de désinscription d’un message récent, ou répondez-y pour nous le demander.
expired-title = Ce lien de confirmation a expiré
expired-body = { $days ->
    [one] Les liens de confirmation sont valables un jour. Abonnez-vous de nouveau pour en recevoir un autre.
   *[other] Les liens de confirmation sont valables { $days } jours. Abonnez-vous de nouveau pour en recevoir un autre.
}
stale-title = Ce lien n’est plus valable
stale-body = Il a déjà servi, un lien plus récent l’a remplacé, ou votre abonnement a changé depuis. Rien n’a été modifié. Pour vous abonner de nouveau, utilisez le formulaire : nous vous enverrons un message de confirmation.
unavailable-title = Veuillez réessayer dans une minute
unavailable-body = Le service est occupé ou en maintenance. Rien n’a été modifié.
too-many-title = Trop de demandes
too-many-body = Veuillez réessayer plus tard.
too-large-title = Requête trop volumineuse
bad-request-title = Ce formulaire n’a pas pu être lu
bad-request-body = Revenez en arrière et réessayez.

unsubscribe-title = Se désinscrire de { $list } ?
unsubscribe-body = Vous ne recevrez plus { $list } à cette adresse.
unsubscribe-button = Me désinscrire
unsubscribed-title = Désinscription effectuée
unsubscribed-body = Vous ne recevrez plus aucune édition de { $list }.
resubscribe-hint = Une erreur ?
resubscribe-button = Me réabonner
others-hint = { $count ->
    [one] Vous recevez encore une autre liste de notre part.
   *[other] Vous recevez encore { $count } autres listes de notre part.
}
leave-all-button = Quitter toutes les listes
resubscribed-title = Bon retour parmi nous
resubscribed-body = Votre abonnement à { $list } est rétabli.
left-all-title = Vous avez quitté toutes les listes
left-all-body = Nous ne vous enverrons plus rien.
generic-unsubscribe-title = Se désinscrire
generic-unsubscribe-body = Chaque message que nous envoyons se termine par un lien de désinscription personnel : ouvrez-le depuis le message reçu, ou utilisez le bouton de désinscription de votre messagerie.
generic-preferences-body = Chaque message que nous envoyons se termine par un lien personnel « Gérer mes préférences » : ouvrez-le depuis le message reçu pour choisir vos listes et votre langue.
test-copy-title = Ceci est une copie de test
test-copy-body = Vous avez ouvert un lien d’une copie de test d’une édition, envoyée avec bulletin preview --to pour la vérifier avant l’envoi. Dans l’édition réelle, ce bouton désinscrit le lecteur de la liste. Rien n’a été modifié : une copie de test ne désinscrit personne.

subscribe-title = S’abonner
email-label = Adresse e-mail
list-label = Liste
honeypot-label = Laissez ce champ vide
subscribe-button = M’abonner
subscribe-note = Nous vous enverrons un message de confirmation. Nous ne communiquons jamais votre adresse.
no-lists = Il n’y a encore aucune liste à laquelle s’abonner.
bad-address = Cette adresse semble incorrecte. Merci de la vérifier.
check-inbox-title = Consultez votre boîte de réception
check-inbox-body = Si cette adresse peut recevoir notre lettre, un message avec un lien de confirmation est en route. L’abonnement commence quand vous ouvrez le lien et confirmez.
confirm-title = Confirmez votre abonnement
confirm-body = Appuyez sur le bouton pour recevoir { $list }.
confirm-button = Confirmer
confirmed-title = Abonnement confirmé
confirmed-body = Vous recevrez la prochaine édition de { $list }.

archive-title = Éditions précédentes
archive-empty = Aucune édition n’a encore été publiée.

prefs-title = Vos abonnements
prefs-intro = Choisissez ce que vous recevez de notre part. Rien ne change avant l’enregistrement.
prefs-lists-legend = Listes
prefs-name-label = Votre nom
prefs-language-label = Langue de nos messages et de nos pages
prefs-save-button = Enregistrer mes choix
prefs-saved = Vos choix sont enregistrés.
prefs-unchanged = Tout était déjà comme vous l’avez choisi : rien à enregistrer.
prefs-leave-all-hint = Ou ne plus rien recevoir de notre part :
prefs-blocklisted = Cette adresse ne reçoit plus nos messages : aucune liste ne peut être rejointe d’ici, mais vous pouvez encore les quitter.
prefs-bad-input = Impossible d’enregistrer : le nom doit tenir sur une ligne de { $max } caractères au plus, et la langue être un code comme fr ou pt-BR. Rien n’a été modifié.
prefs-test-copy-title = Aperçu du centre de préférences
prefs-test-copy-body = Vous avez ouvert le lien « Gérer mes préférences » d’une copie de test. Un lecteur voit ici ses propres listes, peut rejoindre ou quitter chacune, changer son nom et sa langue, ou tout quitter. Rien n’est enregistré depuis une copie de test.
