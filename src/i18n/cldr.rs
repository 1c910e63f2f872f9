//! Dates and numbers the way each language writes them, from the CLDR data that ICU4X
//! compiles into the binary: "30 June 2017", "30 juin 2017", "30 июня 2017 г.",
//! "2017年6月30日", and Arabic with the digits CLDR gives each Arabic locale (European
//! digits for `ar` itself since CLDR 46, Arabic-Indic ones for `ar-EG` or `ar-SA`).
//!
//! Only the Gregorian calendar and the year-month-day field set are linked, so that the
//! binary carries the patterns it uses and not every calendar's.

use icu_calendar::{Date, Gregorian};
use icu_datetime::FixedCalendarDateTimeFormatter;
use icu_datetime::fieldsets::YMD;
use icu_decimal::DecimalFormatter;
use icu_decimal::input::Decimal;
use icu_locale_core::Locale;

/// The CLDR locale for a language tag of ours. A bare `en` is read as international English
/// (`en-001`): CLDR's `en` is American ("June 30, 2017"), and an international newsletter
/// written in English dates like the rest of the world. A tag ICU cannot parse gets the root
/// locale, whose patterns are neutral (`2017 Jun 30`) rather than another language's.
pub(crate) fn locale(lang: &str) -> Locale {
    if lang.eq_ignore_ascii_case("en") {
        return icu_locale_core::locale!("en-001");
    }
    Locale::try_from_str(lang).unwrap_or(Locale::UNKNOWN)
}

/// `date` as `lang` writes a full date in running text (CLDR's long year-month-day form).
pub fn format_date(date: time::Date, lang: &str) -> String {
    let iso = (date.year(), u8::from(date.month()), date.day());
    let Ok(date) = Date::try_new_gregorian(iso.0, iso.1, iso.2) else {
        // `time::Date` keeps years within ±9999, which ICU4X accepts; this only guards a
        // future widening of either crate.
        return format!("{:04}-{:02}-{:02}", iso.0, iso.1, iso.2);
    };
    let formatter =
        FixedCalendarDateTimeFormatter::<Gregorian, YMD>::try_new(locale(lang).into(), YMD::long())
            // ICU4X's compiled data falls back to the root locale for every language, so a failure
            // here means the data is missing from the build: say it in the output, do not panic.
            .or_else(|_| {
                FixedCalendarDateTimeFormatter::<Gregorian, YMD>::try_new(
                    Locale::UNKNOWN.into(),
                    YMD::long(),
                )
            });
    match formatter {
        Ok(f) => f.format(&date).to_string(),
        Err(_) => format!("{:04}-{:02}-{:02}", iso.0, iso.1, iso.2),
    }
}

/// Formats numbers with `lang`'s digits and separators ("1 234,5", "١٬٢٣٤٫٥" in `ar-EG`).
#[derive(Debug)]
pub struct NumberFormatter(DecimalFormatter);

impl NumberFormatter {
    /// The formatter for `lang` (the root locale's when ICU has nothing closer).
    pub fn new(lang: &str) -> Self {
        let formatter = DecimalFormatter::try_new(locale(lang).into(), Default::default())
            .or_else(|_| DecimalFormatter::try_new(Locale::UNKNOWN.into(), Default::default()));
        // The root locale's decimal symbols are part of every ICU4X build (compiled data).
        #[allow(clippy::expect_used)]
        Self(formatter.expect("ICU4X compiled data has the root locale's decimal symbols"))
    }

    /// `number` (written in ASCII digits, `-1234.5`) in this formatter's language; text that
    /// is not a number is returned unchanged.
    pub fn format(&self, number: &str) -> String {
        match number.parse::<Decimal>() {
            Ok(decimal) => self.0.format(&decimal).to_string(),
            Err(_) => number.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_dates_follow_cldr() {
        let d = time::macros::date!(2017 - 06 - 30);
        assert_eq!(format_date(d, "en"), "30 June 2017");
        assert_eq!(format_date(d, "en-US"), "June 30, 2017");
        assert_eq!(format_date(d, "fr"), "30 juin 2017");
        assert_eq!(format_date(d, "es"), "30 de junio de 2017");
        assert_eq!(format_date(d, "pt"), "30 de junho de 2017");
        assert_eq!(format_date(d, "de"), "30. Juni 2017");
        // CLDR keeps `г.` to the year with a narrow no-break space.
        assert_eq!(format_date(d, "ru"), "30 июня 2017\u{202f}г.");
        assert_eq!(format_date(d, "zh"), "2017年6月30日");
        // Since CLDR 46 the default numbering system of `ar` itself is `latn`; Egypt and
        // Saudi Arabia keep the Arabic-Indic digits. CLDR decides, not us.
        assert_eq!(format_date(d, "ar"), "30 يونيو 2017");
        assert_eq!(format_date(d, "ar-EG"), "٣٠ يونيو ٢٠١٧");
        assert_eq!(format_date(d, "ar-SA"), "٣٠ يونيو ٢٠١٧");
    }

    #[test]
    fn numbers_use_the_languages_digits_and_separators() {
        assert_eq!(NumberFormatter::new("en").format("1234.5"), "1,234.5");
        assert_eq!(
            NumberFormatter::new("fr").format("1234.5"),
            "1\u{202f}234,5"
        );
        assert_eq!(NumberFormatter::new("ar").format("1234.5"), "1,234.5");
        assert_eq!(NumberFormatter::new("ar-EG").format("1234.5"), "١٬٢٣٤٫٥");
        assert_eq!(NumberFormatter::new("ar").format("n/a"), "n/a");
    }
}
