//! The pages subscribers see, in English and French: plain, accessible HTML with one inline
//! stylesheet and no script, image, font or anything else fetched from anywhere.
//!
//! Every string a subscriber reads lives in the [`Strings`] tables below, one per language,
//! so that adding a language is adding one table. Every value put into HTML goes through
//! [`escape`]; list names come from the database and newsletter names from configuration,
//! neither of which is trusted to be markup-free.

use std::sync::LazyLock;

use base64::Engine as _;

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English, the fallback.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Every language the pages are written in, for the preference centre's choice.
    pub const ALL: &[Lang] = &[Self::En, Self::Fr];

    /// The language's name in itself, as a language menu shows it.
    pub fn autonym(self) -> &'static str {
        self.strings().autonym
    }

    /// The language of a BCP 47 tag (`fr`, `fr-CA`), if the pages have it.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Self::En),
            "fr" => Some(Self::Fr),
            _ => None,
        }
    }

    /// Picks a language: an explicit choice, then the subscriber's own, then the browser's
    /// `Accept-Language` (in the order given; q-values are rarely anything but decreasing),
    /// then English.
    pub fn negotiate(
        explicit: Option<&str>,
        subscriber: Option<&str>,
        accept_language: Option<&str>,
    ) -> Self {
        explicit
            .and_then(Self::from_tag)
            .or_else(|| subscriber.and_then(Self::from_tag))
            .or_else(|| {
                accept_language?
                    .split(',')
                    .filter_map(|part| part.split(';').next())
                    .find_map(Self::from_tag)
            })
            .unwrap_or(Self::En)
    }

    /// The tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }

    /// The strings of this language.
    pub(crate) fn strings(self) -> &'static Strings {
        match self {
            Self::En => &EN,
            Self::Fr => &FR,
        }
    }
}

/// Every text of the pages and the confirmation mail, in one language. `{list}`, `{n}` and
/// `{days}` are filled in by the caller.
pub(crate) struct Strings {
    pub(crate) not_found_title: &'static str,
    pub(crate) not_found_body: &'static str,
    pub(crate) expired_title: &'static str,
    pub(crate) expired_body: &'static str,
    pub(crate) stale_title: &'static str,
    pub(crate) stale_body: &'static str,
    pub(crate) unsubscribe_title: &'static str,
    pub(crate) unsubscribe_body: &'static str,
    pub(crate) unsubscribe_button: &'static str,
    pub(crate) unsubscribed_title: &'static str,
    pub(crate) unsubscribed_body: &'static str,
    pub(crate) resubscribe_hint: &'static str,
    pub(crate) resubscribe_button: &'static str,
    pub(crate) others_hint: &'static str,
    pub(crate) leave_all_button: &'static str,
    pub(crate) resubscribed_title: &'static str,
    pub(crate) resubscribed_body: &'static str,
    pub(crate) left_all_title: &'static str,
    pub(crate) left_all_body: &'static str,
    pub(crate) subscribe_title: &'static str,
    pub(crate) email_label: &'static str,
    pub(crate) list_label: &'static str,
    pub(crate) honeypot_label: &'static str,
    pub(crate) subscribe_button: &'static str,
    pub(crate) subscribe_note: &'static str,
    pub(crate) no_lists: &'static str,
    pub(crate) bad_address: &'static str,
    pub(crate) check_inbox_title: &'static str,
    pub(crate) check_inbox_body: &'static str,
    pub(crate) confirm_title: &'static str,
    pub(crate) confirm_body: &'static str,
    pub(crate) confirm_button: &'static str,
    pub(crate) confirmed_title: &'static str,
    pub(crate) confirmed_body: &'static str,
    pub(crate) unavailable_title: &'static str,
    pub(crate) unavailable_body: &'static str,
    pub(crate) too_many_title: &'static str,
    pub(crate) too_many_body: &'static str,
    pub(crate) too_large_title: &'static str,
    pub(crate) bad_request_title: &'static str,
    pub(crate) bad_request_body: &'static str,
    pub(crate) archive_title: &'static str,
    pub(crate) archive_empty: &'static str,
    pub(crate) home_subscribe: &'static str,
    pub(crate) home_archive: &'static str,
    pub(crate) generic_unsubscribe_title: &'static str,
    pub(crate) generic_unsubscribe_body: &'static str,
    pub(crate) mail_subject: &'static str,
    pub(crate) mail_body: &'static str,
    pub(crate) mail_button: &'static str,
    pub(crate) test_copy_title: &'static str,
    pub(crate) test_copy_body: &'static str,
    pub(crate) prefs_title: &'static str,
    pub(crate) prefs_intro: &'static str,
    pub(crate) prefs_lists_legend: &'static str,
    pub(crate) prefs_name_label: &'static str,
    pub(crate) prefs_language_label: &'static str,
    pub(crate) prefs_save_button: &'static str,
    pub(crate) prefs_saved: &'static str,
    pub(crate) prefs_unchanged: &'static str,
    pub(crate) prefs_leave_all_hint: &'static str,
    pub(crate) prefs_blocklisted: &'static str,
    pub(crate) prefs_bad_input: &'static str,
    pub(crate) prefs_test_copy_title: &'static str,
    pub(crate) prefs_test_copy_body: &'static str,
    pub(crate) autonym: &'static str,
}

static EN: Strings = Strings {
    not_found_title: "This link is not valid",
    not_found_body: "The link may be incomplete (some mail programs cut long links) or no longer in use. \
        To stop receiving the newsletter, use the unsubscribe link of a recent message, or reply to it and ask us.",
    expired_title: "This confirmation link has expired",
    expired_body: "Confirmation links are valid for {days} days. Subscribe again to receive a new one.",
    stale_title: "This link is no longer valid",
    stale_body: "It was already used, replaced by a newer one, or your subscription has changed since. \
        Nothing was changed. To subscribe again, use the form: we will send you a message to confirm.",
    unsubscribe_title: "Unsubscribe from {list}?",
    unsubscribe_body: "You will no longer receive {list} at this address.",
    unsubscribe_button: "Unsubscribe",
    unsubscribed_title: "You are unsubscribed",
    unsubscribed_body: "You will receive no more editions of {list}.",
    resubscribe_hint: "Clicked by mistake?",
    resubscribe_button: "Resubscribe",
    others_hint: "You still receive {n} other list(s) from us.",
    leave_all_button: "Leave every list",
    resubscribed_title: "Welcome back",
    resubscribed_body: "You are subscribed to {list} again.",
    left_all_title: "You have left every list",
    left_all_body: "We will send you nothing more.",
    subscribe_title: "Subscribe",
    email_label: "Email address",
    list_label: "List",
    honeypot_label: "Leave this field empty",
    subscribe_button: "Subscribe",
    subscribe_note: "We will send you a message to confirm. We never share your address.",
    no_lists: "There is no list to subscribe to yet.",
    bad_address: "This address does not look right. Please check it.",
    check_inbox_title: "Check your inbox",
    check_inbox_body: "If this address can receive our newsletter, a message with a confirmation link is on its way. \
        The subscription starts when you open the link and confirm.",
    confirm_title: "Confirm your subscription",
    confirm_body: "Press the button to start receiving {list}.",
    confirm_button: "Confirm",
    confirmed_title: "Subscription confirmed",
    confirmed_body: "You will receive the next edition of {list}.",
    unavailable_title: "Please try again in a minute",
    unavailable_body: "The service is busy or under maintenance. Nothing was changed.",
    too_many_title: "Too many requests",
    too_many_body: "Please try again later.",
    too_large_title: "Request too large",
    bad_request_title: "This form could not be read",
    bad_request_body: "Please go back and try again.",
    archive_title: "Past editions",
    archive_empty: "No edition has been published yet.",
    home_subscribe: "Subscribe",
    home_archive: "Past editions",
    generic_unsubscribe_title: "Unsubscribe",
    generic_unsubscribe_body: "Every message we send ends with a personal unsubscribe link: open it from the message \
        you received, or use your mail program's unsubscribe button.",
    mail_subject: "Confirm your subscription to {list}",
    mail_body: "Hello,\n\nSomeone, probably you, asked to receive {list} at this address. \
        To confirm, open this link and press the button:\n\n{link}\n\n\
        The link is valid for {days} days. If you did not ask for this, ignore this message: \
        you will receive nothing more.\n",
    mail_button: "Confirm my subscription",
    test_copy_title: "This is a test copy",
    test_copy_body: "You opened a link of a test copy of an edition, sent with bulletin preview --to to check it \
        before sending. In the real edition, this button unsubscribes the reader from the list. \
        Nothing was changed: a test copy unsubscribes nobody.",
    prefs_title: "Your subscriptions",
    prefs_intro: "Choose what you receive from us. Nothing changes until you save.",
    prefs_lists_legend: "Lists",
    prefs_name_label: "Your name",
    prefs_language_label: "Language of our messages and pages",
    prefs_save_button: "Save my choices",
    prefs_saved: "Your choices are saved.",
    prefs_unchanged: "Everything was already as you chose: nothing needed saving.",
    prefs_leave_all_hint: "Or stop receiving anything from us:",
    prefs_blocklisted: "This address no longer receives mail from us, so lists cannot be joined from here; you can still leave them.",
    prefs_bad_input: "This could not be saved: the name must be one line of at most 200 characters, and the language a language tag such as en or pt-BR. Nothing was changed.",
    prefs_test_copy_title: "Preview of the preference centre",
    prefs_test_copy_body: "You opened the Manage preferences link of a test copy. A reader sees their own lists here, \
        and can join or leave each one, change their name and language, or leave everything. \
        Nothing is saved from a test copy.",
    autonym: "English",
};

static FR: Strings = Strings {
    not_found_title: "Ce lien n’est pas valide",
    not_found_body: "Le lien est peut-être incomplet (certains logiciels de messagerie coupent les liens longs) \
        ou n’est plus utilisé. Pour ne plus recevoir la lettre, utilisez le lien de désinscription d’un message récent, \
        ou répondez-y pour nous le demander.",
    expired_title: "Ce lien de confirmation a expiré",
    expired_body: "Les liens de confirmation sont valables {days} jours. Abonnez-vous de nouveau pour en recevoir un autre.",
    stale_title: "Ce lien n’est plus valable",
    stale_body: "Il a déjà servi, un lien plus récent l’a remplacé, ou votre abonnement a changé depuis. \
        Rien n’a été modifié. Pour vous abonner de nouveau, utilisez le formulaire : nous vous enverrons un message de confirmation.",
    unsubscribe_title: "Se désinscrire de {list} ?",
    unsubscribe_body: "Vous ne recevrez plus {list} à cette adresse.",
    unsubscribe_button: "Me désinscrire",
    unsubscribed_title: "Désinscription effectuée",
    unsubscribed_body: "Vous ne recevrez plus aucune édition de {list}.",
    resubscribe_hint: "Une erreur ?",
    resubscribe_button: "Me réabonner",
    others_hint: "Vous recevez encore {n} autre(s) liste(s) de notre part.",
    leave_all_button: "Quitter toutes les listes",
    resubscribed_title: "Bon retour parmi nous",
    resubscribed_body: "Votre abonnement à {list} est rétabli.",
    left_all_title: "Vous avez quitté toutes les listes",
    left_all_body: "Nous ne vous enverrons plus rien.",
    subscribe_title: "S’abonner",
    email_label: "Adresse e-mail",
    list_label: "Liste",
    honeypot_label: "Laissez ce champ vide",
    subscribe_button: "M’abonner",
    subscribe_note: "Nous vous enverrons un message de confirmation. Nous ne communiquons jamais votre adresse.",
    no_lists: "Il n’y a encore aucune liste à laquelle s’abonner.",
    bad_address: "Cette adresse semble incorrecte. Merci de la vérifier.",
    check_inbox_title: "Consultez votre boîte de réception",
    check_inbox_body: "Si cette adresse peut recevoir notre lettre, un message avec un lien de confirmation est en route. \
        L’abonnement commence quand vous ouvrez le lien et confirmez.",
    confirm_title: "Confirmez votre abonnement",
    confirm_body: "Appuyez sur le bouton pour recevoir {list}.",
    confirm_button: "Confirmer",
    confirmed_title: "Abonnement confirmé",
    confirmed_body: "Vous recevrez la prochaine édition de {list}.",
    unavailable_title: "Veuillez réessayer dans une minute",
    unavailable_body: "Le service est occupé ou en maintenance. Rien n’a été modifié.",
    too_many_title: "Trop de demandes",
    too_many_body: "Veuillez réessayer plus tard.",
    too_large_title: "Requête trop volumineuse",
    bad_request_title: "Ce formulaire n’a pas pu être lu",
    bad_request_body: "Revenez en arrière et réessayez.",
    archive_title: "Éditions précédentes",
    archive_empty: "Aucune édition n’a encore été publiée.",
    home_subscribe: "S’abonner",
    home_archive: "Éditions précédentes",
    generic_unsubscribe_title: "Se désinscrire",
    generic_unsubscribe_body: "Chaque message que nous envoyons se termine par un lien de désinscription personnel : \
        ouvrez-le depuis le message reçu, ou utilisez le bouton de désinscription de votre messagerie.",
    mail_subject: "Confirmez votre abonnement à {list}",
    mail_body: "Bonjour,\n\nQuelqu’un, sans doute vous, a demandé à recevoir {list} à cette adresse. \
        Pour confirmer, ouvrez ce lien et appuyez sur le bouton :\n\n{link}\n\n\
        Le lien est valable {days} jours. Si vous n’avez rien demandé, ignorez ce message : \
        vous ne recevrez rien de plus.\n",
    mail_button: "Confirmer mon abonnement",
    test_copy_title: "Ceci est une copie de test",
    test_copy_body: "Vous avez ouvert un lien d’une copie de test d’une édition, envoyée avec bulletin preview --to \
        pour la vérifier avant l’envoi. Dans l’édition réelle, ce bouton désinscrit le lecteur de la liste. \
        Rien n’a été modifié : une copie de test ne désinscrit personne.",
    prefs_title: "Vos abonnements",
    prefs_intro: "Choisissez ce que vous recevez de notre part. Rien ne change avant l’enregistrement.",
    prefs_lists_legend: "Listes",
    prefs_name_label: "Votre nom",
    prefs_language_label: "Langue de nos messages et de nos pages",
    prefs_save_button: "Enregistrer mes choix",
    prefs_saved: "Vos choix sont enregistrés.",
    prefs_unchanged: "Tout était déjà comme vous l’avez choisi : rien à enregistrer.",
    prefs_leave_all_hint: "Ou ne plus rien recevoir de notre part :",
    prefs_blocklisted: "Cette adresse ne reçoit plus nos messages : aucune liste ne peut être rejointe d’ici, mais vous pouvez encore les quitter.",
    prefs_bad_input: "Impossible d’enregistrer : le nom doit tenir sur une ligne de 200 caractères au plus, et la langue être un code comme fr ou pt-BR. Rien n’a été modifié.",
    prefs_test_copy_title: "Aperçu du centre de préférences",
    prefs_test_copy_body: "Vous avez ouvert le lien « Gérer mes préférences » d’une copie de test. Un lecteur voit ici ses propres listes, \
        peut rejoindre ou quitter chacune, changer son nom et sa langue, ou tout quitter. \
        Rien n’est enregistré depuis une copie de test.",
    autonym: "Français",
};

/// The one stylesheet, inline so that a page needs no second request. The CSP allows exactly
/// this text by its hash, so no injected style (let alone script) can run.
const CSS: &str = "body{font:1.05rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1a1a1a;background:#fafafa;margin:0}\
main{max-width:36rem;margin:3rem auto;padding:0 1.25rem}\
.brand{font-weight:600;color:#444;margin-bottom:2rem}\
h1{font-size:1.5rem;line-height:1.25}\
button{font:inherit;padding:.6rem 1.2rem;border-radius:.3rem;border:2px solid #1d4ed8;\
background:#1d4ed8;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1d4ed8}\
button:focus,input:focus,select:focus{outline:3px solid #f59e0b;outline-offset:2px}\
label{display:block;font-weight:600;margin-top:1rem}\
input[type=email],select{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #666;border-radius:.3rem}\
form{margin:1.5rem 0}\
.error{color:#b91c1c;font-weight:600}\
.notice{color:#166534;font-weight:600}\
fieldset{border:1px solid #ccc;border-radius:.3rem;padding:.5rem 1rem 1rem}\
.choice{margin:.6rem 0}.choice label{display:inline;font-weight:600;margin:0}\
.hint{display:block;color:#444;font-size:.95rem;margin-inline-start:1.7rem}\
input[type=text]{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #666;border-radius:.3rem}\
.hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}\
a{color:#1d4ed8}";

/// The Content-Security-Policy of every page but the archive's.
pub(crate) static PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `{list}`, `{n}`, `{days}` placeholders of a string, escaping the values.
pub(crate) fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = escape(template);
    for (key, value) in pairs {
        out = out.replace(&format!("{{{key}}}"), &escape(value));
    }
    out
}

/// A whole page: `title` is text (escaped here), `body` is HTML already escaped by the caller.
pub(crate) fn page(lang: Lang, site: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title} · {site}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<main>\n<p class=\"brand\">{site}</p>\n\
         <h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        lang = lang.tag(),
        title = escape(title),
        site = escape(site),
    )
}

/// A paragraph of already-escaped HTML.
pub(crate) fn para(html: &str) -> String {
    format!("<p>{html}</p>\n")
}

/// A form with one button that POSTs to `action` (already a path, escaped here).
pub(crate) fn button_form(
    action: &str,
    hidden: &[(&str, &str)],
    label: &str,
    primary: bool,
) -> String {
    let mut inputs = String::new();
    for (name, value) in hidden {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        ));
    }
    let class = if primary { "" } else { " class=\"secondary\"" };
    format!(
        "<form method=\"post\" action=\"{}\">{inputs}<button type=\"submit\"{class}>{}</button></form>\n",
        escape(action),
        escape(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_order() {
        assert_eq!(Lang::negotiate(Some("fr"), Some("en"), None), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("fr-CA"), Some("en")), Lang::Fr);
        assert_eq!(
            Lang::negotiate(None, Some("de"), Some("de-AT,fr;q=0.8,en;q=0.5")),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(None, None, Some("es")), Lang::En);
    }

    #[test]
    fn values_are_escaped() {
        let s = fill("Leave {list}?", &[("list", "<script>x</script>")]);
        assert_eq!(s, "Leave &lt;script&gt;x&lt;/script&gt;?");
        let p = page(Lang::En, "A & B", "T<", "<p>ok</p>");
        assert!(p.contains("<title>T&lt; · A &amp; B</title>"));
    }

    #[test]
    fn csp_allows_exactly_the_stylesheet() {
        assert!(PAGE_CSP.contains("style-src 'sha256-"));
        assert!(!PAGE_CSP.contains("unsafe-inline"));
    }
}
