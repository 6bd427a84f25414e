//! The notice form's fields: reading a posted form (the repeated `purpose`
//! and `lang` fields, `title.TAG`, `body.TAG`, `sentence.TAG.PURPOSE`, and
//! the `step` its button names), the fields of a stored version, the
//! notice content they describe (the same the API takes), the form's view,
//! and a service refusal in words an officer reads.

use std::collections::BTreeMap;

use pilotgate_dashboards as view;
use pilotgate_domain::notice::{
    DEFAULT_LANGUAGE, MAX_PURPOSES, NoticeContent, NoticeText, is_language_tag,
};
use pilotgate_store::PurposeRecord;

/// The most languages one form carries.
pub(super) const MAX_LANGUAGES: usize = 40;

/// What a POST of the form asks for; only `Save` saves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Save,
    /// Sentence fields for exactly the ticked purposes (and the language
    /// typed in "add a language", if any).
    Refresh,
    AddLanguage,
    RemoveLanguage(String),
}

impl Step {
    fn parse(value: &str) -> Step {
        match value {
            "refresh" => Step::Refresh,
            "add_language" => Step::AddLanguage,
            _ => match value.strip_prefix("remove_language:") {
                Some(tag) => Step::RemoveLanguage(tag.to_owned()),
                None => Step::Save,
            },
        }
    }
}

/// What the form holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Typed {
    /// The notice id (the create form only).
    pub(super) id: String,
    /// The ticked purposes, in order, each once.
    pub(super) purposes: Vec<String>,
    /// The texts, in the order of the form.
    pub(super) languages: Vec<TypedText>,
    /// What was typed in "add a language".
    pub(super) new_language: String,
}

/// One language's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TypedText {
    pub(super) tag: String,
    pub(super) title: String,
    pub(super) body: String,
    /// One sentence per ticked purpose.
    pub(super) sentences: BTreeMap<String, String>,
}

/// A posted form: its fields, CSRF token and step.
pub(super) struct Posted {
    pub(super) typed: Typed,
    pub(super) csrf: String,
    pub(super) step: Step,
}

/// A textarea's line breaks as `\n` (browsers send `\r\n`).
fn lines(value: String) -> String {
    if value.contains('\r') {
        value.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        value
    }
}

/// Reads the form's pairs (as `web::Form<Vec<(String, String)>>` gives
/// them, like the design form): repeated `purpose` and `lang` fields make
/// the lists; each language keeps a sentence for each ticked purpose only.
pub(super) fn read(pairs: Vec<(String, String)>) -> Posted {
    let mut typed = Typed::default();
    let (mut csrf, mut step) = (String::new(), Step::Save);
    let mut tags: Vec<String> = Vec::new();
    let (mut titles, mut bodies) = (BTreeMap::new(), BTreeMap::new());
    let mut sentences: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, value) in pairs {
        match name.as_str() {
            "csrf" => csrf = value,
            "step" => step = Step::parse(&value),
            "id" => typed.id = value.trim().to_owned(),
            "new_language" => typed.new_language = value,
            "purpose" => {
                if !typed.purposes.contains(&value) && typed.purposes.len() < 5 * MAX_PURPOSES {
                    typed.purposes.push(value);
                }
            }
            "lang" => {
                if !tags.contains(&value) && tags.len() < MAX_LANGUAGES {
                    tags.push(value);
                }
            }
            _ => {
                if let Some(tag) = name.strip_prefix("title.") {
                    titles.insert(tag.to_owned(), value);
                } else if let Some(tag) = name.strip_prefix("body.") {
                    bodies.insert(tag.to_owned(), lines(value));
                } else if let Some((tag, purpose)) = name
                    .strip_prefix("sentence.")
                    .and_then(|rest| rest.split_once('.'))
                {
                    sentences.insert((tag.to_owned(), purpose.to_owned()), value);
                }
            }
        }
    }
    typed.languages = tags
        .into_iter()
        .map(|tag| TypedText {
            title: titles.remove(&tag).unwrap_or_default(),
            body: bodies.remove(&tag).unwrap_or_default(),
            sentences: typed
                .purposes
                .iter()
                .map(|p| {
                    let sentence = sentences.remove(&(tag.clone(), p.clone()));
                    (p.clone(), sentence.unwrap_or_default())
                })
                .collect(),
            tag,
        })
        .collect();
    Posted { typed, csrf, step }
}

/// The fields of `content`: English first, then the other languages.
pub(super) fn typed_of(content: &NoticeContent) -> Typed {
    let mut languages: Vec<TypedText> = content
        .languages
        .iter()
        .map(|(tag, text)| TypedText {
            tag: tag.clone(),
            title: text.title.clone(),
            body: text.body.clone(),
            sentences: text.purposes.clone(),
        })
        .collect();
    languages.sort_by_key(|t| t.tag != DEFAULT_LANGUAGE);
    Typed {
        id: String::new(),
        purposes: content.purposes.clone(),
        languages,
        new_language: String::new(),
    }
}

/// An empty form: no purpose ticked, an empty English text.
pub(super) fn blank() -> Typed {
    Typed {
        languages: vec![TypedText {
            tag: DEFAULT_LANGUAGE.to_owned(),
            ..TypedText::default()
        }],
        ..Typed::default()
    }
}

/// The notice content the fields describe, for the service to check.
pub(super) fn content_of(typed: &Typed) -> NoticeContent {
    NoticeContent {
        purposes: typed.purposes.clone(),
        languages: typed
            .languages
            .iter()
            .map(|t| {
                let text = NoticeText {
                    title: t.title.clone(),
                    body: t.body.clone(),
                    purposes: t.sentences.clone(),
                };
                (t.tag.clone(), text)
            })
            .collect(),
    }
}

/// Adds the language typed in "add a language", or says why not.
pub(super) fn add_language(typed: &mut Typed) -> Result<(), String> {
    let tag = typed.new_language.trim().to_ascii_lowercase();
    if tag.is_empty() {
        return Err("Add a language: type a language code such as fr first.".to_owned());
    }
    if !is_language_tag(&tag) {
        return Err(format!(
            "Add a language: '{}' is not a short language code such as fr, de or pt-br.",
            crate::service::notices::clip(&tag)
        ));
    }
    if typed.languages.iter().any(|t| t.tag == tag) {
        return Err(format!(
            "Add a language: the notice has a text in {} already.",
            view::language_name(&tag)
        ));
    }
    if typed.languages.len() >= MAX_LANGUAGES {
        return Err(format!(
            "Add a language: a notice has at most {MAX_LANGUAGES} languages."
        ));
    }
    let sentences = typed
        .purposes
        .iter()
        .map(|p| (p.clone(), String::new()))
        .collect();
    typed.languages.push(TypedText {
        tag,
        sentences,
        ..TypedText::default()
    });
    typed.new_language.clear();
    Ok(())
}

/// The form's view: the ticked purposes first (in their order, with a note
/// when one is retired or not registered), then every other purpose that
/// is registered and not retired.
pub(super) fn form_view(
    typed: &Typed,
    records: &[PurposeRecord],
    prefix: String,
    action: String,
    open: bool,
) -> view::NoticeForm {
    let record = |key: &str| records.iter().find(|r| r.purpose.key.as_str() == key);
    let chosen = typed.purposes.iter().map(|key| match record(key) {
        Some(r) => view::PurposeChoice {
            key: key.clone(),
            description: r.purpose.description.clone(),
            chosen: true,
            note: r
                .retired_at
                .is_some()
                .then(|| "retired: untick it unless the notice must still name it".to_owned()),
        },
        None => view::PurposeChoice {
            key: key.clone(),
            description: String::new(),
            chosen: true,
            note: Some("not registered: register it first, or untick it".to_owned()),
        },
    });
    let others = records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .filter(|r| !typed.purposes.iter().any(|p| p == r.purpose.key.as_str()))
        .map(|r| view::PurposeChoice {
            key: r.purpose.key.to_string(),
            description: r.purpose.description.clone(),
            chosen: false,
            note: None,
        });
    view::NoticeForm {
        prefix,
        action,
        purposes: chosen.chain(others).collect(),
        languages: typed
            .languages
            .iter()
            .map(|t| view::LanguageFields {
                tag: t.tag.clone(),
                title: t.title.clone(),
                body: t.body.clone(),
                sentences: typed
                    .purposes
                    .iter()
                    .map(|p| (p.clone(), t.sentences.get(p).cloned().unwrap_or_default()))
                    .collect(),
            })
            .collect(),
        new_language: typed.new_language.clone(),
        open,
    }
}

/// A refusal of the notice's checks in the form's words: the field path
/// (`languages.de.title`) becomes the field's label (`Title in German (de)`).
pub(super) fn readable(message: &str) -> String {
    let Some((field, reason)) = message.split_once(": ") else {
        return message.to_owned();
    };
    let label = match field {
        "id" => "Notice id".to_owned(),
        "purposes" => "Purposes".to_owned(),
        "languages" => "Languages".to_owned(),
        _ => match field.strip_prefix("languages.").map(|r| r.split_once('.')) {
            Some(Some((tag, "title"))) => format!("Title in {}", view::language_name(tag)),
            Some(Some((tag, "body"))) => format!("Text in {}", view::language_name(tag)),
            Some(Some((tag, "purposes"))) => {
                format!("Sentences in {}", view::language_name(tag))
            }
            Some(Some((tag, rest))) => match rest.strip_prefix("purposes.") {
                Some(purpose) => {
                    format!("The sentence on {purpose} in {}", view::language_name(tag))
                }
                None => return message.to_owned(),
            },
            _ => return message.to_owned(),
        },
    };
    format!("{label}: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn repeated_fields_make_the_lists_and_sentences_follow_the_ticked_purposes() {
        let posted = read(pairs(&[
            ("csrf", "t"),
            ("id", " shop-x "),
            ("purpose", "b.c.d"),
            ("purpose", "a.b.c"),
            ("purpose", "a.b.c"),
            ("lang", "en"),
            ("title.en", "Hello"),
            ("body.en", "One\r\nTwo\rThree"),
            ("sentence.en.a.b.c", "About a."),
            ("sentence.en.gone.purpose", "Unticked."),
            ("lang", "de"),
            ("title.de", "Hallo"),
            ("step", "refresh"),
        ]));
        assert_eq!(posted.csrf, "t");
        assert_eq!(posted.step, Step::Refresh);
        let typed = posted.typed;
        assert_eq!(typed.id, "shop-x");
        assert_eq!(typed.purposes, ["b.c.d", "a.b.c"]);
        let en = &typed.languages[0];
        assert_eq!(en.body, "One\nTwo\nThree");
        assert_eq!(
            en.sentences,
            BTreeMap::from([
                ("a.b.c".to_owned(), "About a.".to_owned()),
                ("b.c.d".to_owned(), String::new()),
            ])
        );
        assert_eq!(typed.languages[1].tag, "de");
        assert_eq!(typed.languages[1].title, "Hallo");
        assert_eq!(typed.languages[1].sentences.len(), 2);
        let content = content_of(&typed);
        assert_eq!(content.purposes, ["b.c.d", "a.b.c"]);
        assert_eq!(content.languages["de"].title, "Hallo");
        assert_eq!(
            Step::parse("remove_language:fr"),
            Step::RemoveLanguage("fr".to_owned())
        );
        assert_eq!(Step::parse("save"), Step::Save);
        assert_eq!(Step::parse("add_language"), Step::AddLanguage);
    }

    #[test]
    fn a_language_is_added_once_and_only_with_a_valid_code() {
        let mut typed = blank();
        typed.purposes = vec!["a.b.c".to_owned()];
        typed.new_language = " FR ".to_owned();
        add_language(&mut typed).unwrap();
        assert_eq!(typed.languages[1].tag, "fr");
        assert_eq!(typed.languages[1].sentences.len(), 1);
        assert!(typed.new_language.is_empty());
        for bad in ["", "french!", "fr", "en"] {
            typed.new_language = bad.to_owned();
            assert!(add_language(&mut typed).is_err(), "{bad}");
        }
        assert_eq!(typed.languages.len(), 2);
    }

    #[test]
    fn refusals_name_the_field_as_the_form_does() {
        assert_eq!(
            readable("languages.de.title: must be 1 to 200 characters"),
            "Title in German (de): must be 1 to 200 characters"
        );
        assert_eq!(
            readable("languages.en.purposes.a.b.c: must be short"),
            "The sentence on a.b.c in English (en): must be short"
        );
        assert_eq!(
            readable("purposes: 'x' is not a registered purpose"),
            "Purposes: 'x' is not a registered purpose"
        );
        assert_eq!(readable("no field here"), "no field here");
    }
}
