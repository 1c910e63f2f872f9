//! The few words the theme itself writes (footer, buttons, headings) and dates, per language.
//!
//! Articles are translated by people; these strings are the theme's. Languages without an
//! entry get English, which lint reports as a fallback so that nobody ships a French edition
//! with an English footer without knowing.

use serde_json::{Value, json};

/// Languages the theme's own strings are written in.
pub(crate) const LANGUAGES: &[&str] = &["en", "fr", "es", "pt", "de"];

/// The theme's strings in `lang` (English when the language has none), and whether it fell back.
pub(crate) fn labels(lang: &str) -> (Value, bool) {
    let base = lang.split('-').next().unwrap_or(lang);
    let labels = match base {
        "fr" => json!({
            "dear": "Bonjour", "reader": "à toutes et à tous",
            "in_this_edition": "Dans ce numéro",
            "read_more": "Lire la suite", "further_reading": "Pour aller plus loin",
            "documents": "Documents à télécharger",
            "why": "Vous recevez ce message parce que vous êtes abonné·e à",
            "unsubscribe": "Se désabonner", "preferences": "Gérer mes préférences",
            "view_in_browser": "Voir dans le navigateur",
            "contact": "Contact", "published_by": "Publié par",
        }),
        "es" => json!({
            "dear": "Hola", "reader": "a todos",
            "in_this_edition": "En este número",
            "read_more": "Leer más", "further_reading": "Para saber más",
            "documents": "Documentos para descargar",
            "why": "Recibe este mensaje porque está suscrito a",
            "unsubscribe": "Darse de baja", "preferences": "Preferencias",
            "view_in_browser": "Ver en el navegador",
            "contact": "Contacto", "published_by": "Publicado por",
        }),
        "pt" => json!({
            "dear": "Olá", "reader": "a todos",
            "in_this_edition": "Nesta edição",
            "read_more": "Ler mais", "further_reading": "Para saber mais",
            "documents": "Documentos para baixar",
            "why": "Você recebe esta mensagem porque assinou",
            "unsubscribe": "Cancelar inscrição", "preferences": "Preferências",
            "view_in_browser": "Ver no navegador",
            "contact": "Contato", "published_by": "Publicado por",
        }),
        "de" => json!({
            "dear": "Hallo", "reader": "zusammen",
            "in_this_edition": "In dieser Ausgabe",
            "read_more": "Weiterlesen", "further_reading": "Mehr dazu",
            "documents": "Dokumente zum Herunterladen",
            "why": "Sie erhalten diese E-Mail, weil Sie folgenden Newsletter abonniert haben:",
            "unsubscribe": "Abmelden", "preferences": "Einstellungen",
            "view_in_browser": "Im Browser ansehen",
            "contact": "Kontakt", "published_by": "Herausgegeben von",
        }),
        _ => json!({
            "dear": "Dear", "reader": "reader",
            "in_this_edition": "In this edition",
            "read_more": "Read more", "further_reading": "Further reading",
            "documents": "Documents to download",
            "why": "You are receiving this email because you subscribed to",
            "unsubscribe": "Unsubscribe", "preferences": "Manage preferences",
            "view_in_browser": "View in your browser",
            "contact": "Contact", "published_by": "Published by",
        }),
    };
    (labels, !LANGUAGES.contains(&base))
}

const MONTHS: [[&str; 12]; 5] = [
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
    [
        "janeiro",
        "fevereiro",
        "março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ],
    [
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ],
];

/// `date` as the language writes it: "30 June 2017", "30 juin 2017", "30 de junio de 2017".
pub(crate) fn format_date(date: time::Date, lang: &str) -> String {
    let base = lang.split('-').next().unwrap_or(lang);
    let index = LANGUAGES.iter().position(|l| *l == base);
    let (day, year) = (date.day(), date.year());
    let month_index = usize::from(u8::from(date.month())) - 1;
    let Some(index) = index else {
        return format!("{year}-{:02}-{day:02}", month_index + 1);
    };
    let month = MONTHS[index][month_index];
    match base {
        "es" | "pt" => format!("{day} de {month} de {year}"),
        "de" => format!("{day}. {month} {year}"),
        "fr" if day == 1 => format!("1er {month} {year}"),
        _ => format!("{day} {month} {year}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_per_language() {
        let d = time::macros::date!(2017 - 06 - 30);
        assert_eq!(format_date(d, "en"), "30 June 2017");
        assert_eq!(format_date(d, "fr"), "30 juin 2017");
        assert_eq!(format_date(d, "es"), "30 de junio de 2017");
        assert_eq!(format_date(d, "de"), "30. Juni 2017");
        assert_eq!(format_date(d, "sw"), "2017-06-30");
    }
}
