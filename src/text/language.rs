//! The languages deflect analyses text in, derived from BCP 47 locale tags.

use std::fmt;

/// A language with its own stemmer and stop words.
///
/// Locales outside this list are still indexed and searched, with lowercasing and
/// accent folding only (no stemming, no stop words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    English,
    German,
    French,
    Spanish,
    Portuguese,
    Italian,
    Dutch,
    Unstemmed,
}

impl Language {
    /// Returns the language of a locale tag such as `en`, `de-AT` or `pt_BR`.
    pub fn from_locale(locale: &str) -> Language {
        match primary_subtag(locale).as_str() {
            "en" => Language::English,
            "de" => Language::German,
            "fr" => Language::French,
            "es" => Language::Spanish,
            "pt" => Language::Portuguese,
            "it" => Language::Italian,
            "nl" => Language::Dutch,
            _ => Language::Unstemmed,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::German => "de",
            Language::French => "fr",
            Language::Spanish => "es",
            Language::Portuguese => "pt",
            Language::Italian => "it",
            Language::Dutch => "nl",
            Language::Unstemmed => "und",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

/// Returns the lowercase primary language subtag of a locale (`pt_BR` -> `pt`).
pub fn primary_subtag(locale: &str) -> String {
    locale
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_variants_share_their_language() {
        assert_eq!(Language::from_locale("de-AT"), Language::German);
        assert_eq!(Language::from_locale("pt_BR"), Language::Portuguese);
        assert_eq!(Language::from_locale("EN"), Language::English);
        assert_eq!(Language::from_locale("ja"), Language::Unstemmed);
    }
}
