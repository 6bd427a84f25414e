//! Notices: the texts a shop shows its customers, versioned, per language,
//! naming the purposes they ask for with one sentence each; and the rules of
//! the customer's consent form (which language to show, which status a
//! choice records). The version number a ledger record carries is a
//! published version of its notice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::consent::ConsentStatus;
use crate::purpose::PurposeKey;
use crate::text::PlainText;

/// The language every notice must have, and the fallback of the form.
pub const DEFAULT_LANGUAGE: &str = "en";
/// The longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// The longest body, in characters.
pub const MAX_BODY: usize = 10_000;
/// The longest description of a purpose, in characters.
pub const MAX_PURPOSE_SENTENCE: usize = 300;
/// The most purposes one notice may ask for.
pub const MAX_PURPOSES: usize = 20;

/// A notice's id: a slug such as `shop-testing` (lowercase letters, digits
/// and single hyphens, 1 to 64 characters, starting with a letter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NoticeId(String);

impl NoticeId {
    pub fn parse(value: &str) -> Result<NoticeId, NoticeError> {
        let ok = (1..=64).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && !value.ends_with('-')
            && !value.contains("--")
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| NoticeId(value.to_owned()))
            .ok_or(NoticeError::Id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NoticeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `tag` is a short BCP 47 language tag: a primary subtag of 2 or 3
/// letters and optional subtags of 2 to 8 letters or digits (`en`, `de`,
/// `pt-br`), at most 35 characters. Tags are kept in lowercase.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    primary_ok
        && tag.len() <= 35
        && parts.all(|p| {
            (2..=8).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A notice's text in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoticeText {
    /// One line.
    pub title: String,
    /// Plain language, several lines.
    pub body: String,
    /// One sentence per purpose key the notice asks for.
    pub purposes: BTreeMap<String, String>,
}

/// What one version of a notice says: the purposes it asks for, in order,
/// and its text per language tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoticeContent {
    pub purposes: Vec<String>,
    pub languages: BTreeMap<String, NoticeText>,
}

/// Why a notice is not valid; each message begins with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error(
        "id: must be a slug of 1 to 64 lowercase letters, digits and single hyphens, starting with a letter"
    )]
    Id,
    #[error("purposes: list 1 to {MAX_PURPOSES} purposes, each once")]
    PurposeCount,
    #[error("purposes: '{0}' is not a purpose key")]
    PurposeKey(String),
    #[error("languages: the notice needs an '{DEFAULT_LANGUAGE}' text")]
    NoDefaultLanguage,
    #[error("languages: '{0}' is not a short language tag such as en, de or pt-br")]
    Language(String),
    #[error("languages.{0}.title: {1}")]
    Title(String, crate::text::TextError),
    #[error("languages.{0}.body: {1}")]
    Body(String, crate::text::TextError),
    #[error(
        "languages.{0}.purposes: describe exactly the purposes the notice asks for, one sentence each"
    )]
    PurposeSet(String),
    #[error("languages.{0}.purposes.{1}: {2}")]
    PurposeSentence(String, String, crate::text::TextError),
    #[error("purposes: '{0}' is not a registered purpose")]
    Unregistered(String),
    #[error("languages: '{0}' is given twice (language tags are compared without regard to case)")]
    DuplicateLanguage(String),
    #[error("purposes: '{0}' is retired: a notice may not ask for it")]
    Retired(String),
}

impl NoticeContent {
    /// Checks every rule that needs nothing but the content itself: 1 to 20
    /// distinct purpose keys; an English text; language tags, distinct
    /// without regard to case; a title, body and one sentence per purpose in
    /// each language, all plain text. Language tags are lowercased first.
    pub fn checked(mut self) -> Result<NoticeContent, NoticeError> {
        let mut seen = std::collections::BTreeSet::new();
        if self.purposes.is_empty()
            || self.purposes.len() > MAX_PURPOSES
            || !self.purposes.iter().all(|p| seen.insert(p.clone()))
        {
            return Err(NoticeError::PurposeCount);
        }
        for key in &self.purposes {
            PurposeKey::parse(key).map_err(|_| NoticeError::PurposeKey(key.clone()))?;
        }
        let mut languages = BTreeMap::new();
        for (tag, text) in std::mem::take(&mut self.languages) {
            let lower = tag.to_ascii_lowercase();
            if !is_language_tag(&lower) {
                return Err(NoticeError::Language(tag.chars().take(40).collect()));
            }
            if languages.insert(lower.clone(), text).is_some() {
                return Err(NoticeError::DuplicateLanguage(lower));
            }
        }
        self.languages = languages;
        if !self.languages.contains_key(DEFAULT_LANGUAGE) {
            return Err(NoticeError::NoDefaultLanguage);
        }
        for (tag, text) in &mut self.languages {
            if !is_language_tag(tag) {
                return Err(NoticeError::Language(tag.chars().take(40).collect()));
            }
            text.title = PlainText::line(&text.title, MAX_TITLE)
                .map_err(|e| NoticeError::Title(tag.clone(), e))?
                .into_string();
            text.body = PlainText::lines(&text.body, MAX_BODY)
                .map_err(|e| NoticeError::Body(tag.clone(), e))?
                .into_string();
            if text.purposes.len() != self.purposes.len()
                || !self.purposes.iter().all(|p| text.purposes.contains_key(p))
            {
                return Err(NoticeError::PurposeSet(tag.clone()));
            }
            for (key, sentence) in &mut text.purposes {
                *sentence = PlainText::line(sentence.trim(), MAX_PURPOSE_SENTENCE)
                    .map_err(|e| NoticeError::PurposeSentence(tag.clone(), key.clone(), e))?
                    .into_string();
            }
        }
        Ok(self)
    }

    /// The first purpose of the notice that is not in `registered`, or is
    /// in `retired` (a retired purpose takes no new consent), as the error.
    pub fn all_registered(&self, registered: &[&str], retired: &[&str]) -> Result<(), NoticeError> {
        for purpose in &self.purposes {
            if !registered.contains(&purpose.as_str()) {
                return Err(NoticeError::Unregistered(purpose.clone()));
            }
            if retired.contains(&purpose.as_str()) {
                return Err(NoticeError::Retired(purpose.clone()));
            }
        }
        Ok(())
    }

    /// The language to show: the one asked for in the query if the notice
    /// has it, else the first of `Accept-Language` it has (by quality, then
    /// order; a tag matches its primary language too), else English.
    pub fn pick_language(&self, query: Option<&str>, accept: Option<&str>) -> String {
        let has = |tag: &str| self.languages.contains_key(tag);
        if let Some(asked) = query.map(str::to_ascii_lowercase).filter(|t| has(t)) {
            return asked;
        }
        let mut wanted: Vec<(f32, usize, String)> = accept
            .unwrap_or_default()
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.trim().split(';');
                let tag = pieces.next()?.trim().to_ascii_lowercase();
                let quality = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (quality > 0.0 && !tag.is_empty()).then_some((quality, i, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, tag) in wanted {
            if has(&tag) {
                return tag;
            }
            if let Some((primary, _)) = tag.split_once('-')
                && has(primary)
            {
                return primary.to_owned();
            }
        }
        DEFAULT_LANGUAGE.to_owned()
    }
}

/// The status a choice on the form records under the basis `consent`:
/// `granted` for yes; for no, `withdrawn` when consent is granted now, and
/// `denied` otherwise.
pub fn status_of_choice(allow: bool, granted_now: bool) -> ConsentStatus {
    match (allow, granted_now) {
        (true, _) => ConsentStatus::Granted,
        (false, true) => ConsentStatus::Withdrawn,
        (false, false) => ConsentStatus::Denied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> NoticeContent {
        let text = |title: &str| NoticeText {
            title: title.to_owned(),
            body: "We test two versions of the shop.\nYou may say no.".to_owned(),
            purposes: [(
                "analytics.storefront.ab_testing".to_owned(),
                "We compare versions of pages.".to_owned(),
            )]
            .into(),
        };
        NoticeContent {
            purposes: vec!["analytics.storefront.ab_testing".to_owned()],
            languages: [
                ("en".to_owned(), text("Testing")),
                ("DE".to_owned(), text("Tests")),
            ]
            .into(),
        }
    }

    #[test]
    fn a_valid_notice_is_kept_with_lowercase_tags() {
        let checked = content().checked().unwrap();
        assert!(checked.languages.contains_key("de"));
    }

    #[test]
    fn tags_that_differ_only_by_case_are_one_language_given_twice() {
        let mut twice = content();
        let english = twice.languages["en"].clone();
        twice.languages.insert("En".to_owned(), english);
        assert_eq!(
            twice.checked().unwrap_err().to_string(),
            "languages: 'en' is given twice (language tags are compared without regard to case)"
        );
        let mut german = content();
        let text = german.languages["DE"].clone();
        german.languages.insert("de".to_owned(), text);
        assert_eq!(
            german.checked().unwrap_err(),
            NoticeError::DuplicateLanguage("de".to_owned())
        );
    }

    #[test]
    fn every_purpose_must_be_registered_and_in_force() {
        let notice = content().checked().unwrap();
        let key = "analytics.storefront.ab_testing";
        assert_eq!(notice.all_registered(&[key], &[]), Ok(()));
        assert_eq!(
            notice.all_registered(&[], &[]),
            Err(NoticeError::Unregistered(key.to_owned()))
        );
        assert_eq!(
            notice
                .all_registered(&[key], &[key])
                .unwrap_err()
                .to_string(),
            "purposes: 'analytics.storefront.ab_testing' is retired: a notice may not ask for it"
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        type Change = Box<dyn Fn(&mut NoticeContent)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.purposes.clear()), "purposes:"),
            (
                Box::new(|c| c.purposes.push(c.purposes[0].clone())),
                "purposes:",
            ),
            (
                Box::new(|c| {
                    c.languages.remove("en");
                }),
                "languages: the notice needs",
            ),
            (
                Box::new(|c| {
                    let t = c.languages["en"].clone();
                    c.languages.insert("english!".into(), t);
                }),
                "languages: 'english!'",
            ),
            (
                Box::new(|c| c.languages.get_mut("en").unwrap().title = " ".into()),
                "languages.en.title",
            ),
            (
                Box::new(|c| c.languages.get_mut("en").unwrap().body = "a\u{7}".into()),
                "languages.en.body",
            ),
            (
                Box::new(|c| c.languages.get_mut("en").unwrap().purposes.clear()),
                "languages.en.purposes",
            ),
        ];
        for (change, field) in cases {
            let mut bad = content();
            change(&mut bad);
            let error = bad.checked().unwrap_err().to_string();
            assert!(error.starts_with(field), "{error} / {field}");
        }
        assert_eq!(
            content()
                .all_registered(&["other"], &[])
                .unwrap_err()
                .to_string(),
            "purposes: 'analytics.storefront.ab_testing' is not a registered purpose"
        );
    }

    #[test]
    fn ids_are_slugs() {
        assert!(NoticeId::parse("shop-testing").is_ok());
        for bad in ["", "Shop", "-a", "a-", "a--b", "a b", "1a", &"a".repeat(65)] {
            assert!(NoticeId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_language_follows_the_query_then_the_browser_then_english() {
        let notice = content().checked().unwrap();
        assert_eq!(notice.pick_language(Some("DE"), None), "de");
        assert_eq!(
            notice.pick_language(Some("fr"), Some("de-AT,en;q=0.5")),
            "de"
        );
        assert_eq!(
            notice.pick_language(None, Some("fr, en;q=0.9, de;q=0.8")),
            "en"
        );
        assert_eq!(notice.pick_language(None, Some("de;q=0, fr")), "en");
        assert_eq!(notice.pick_language(None, None), "en");
    }

    #[test]
    fn saying_no_withdraws_a_consent_in_force_and_denies_otherwise() {
        assert_eq!(status_of_choice(true, false), ConsentStatus::Granted);
        assert_eq!(status_of_choice(true, true), ConsentStatus::Granted);
        assert_eq!(status_of_choice(false, true), ConsentStatus::Withdrawn);
        assert_eq!(status_of_choice(false, false), ConsentStatus::Denied);
    }
}
