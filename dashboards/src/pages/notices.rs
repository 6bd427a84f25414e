//! The notices: each notice with its version history, and (for compliance)
//! the forms that create a notice, from scratch or from a template, and
//! publish its next version, prefilled from the latest. The forms are plain
//! fields (purposes as checkboxes; per language a title, a body and one
//! sentence per purpose) whose own buttons add a language and refresh the
//! sentence fields without JavaScript.

use askama::Template;

use crate::layout::Chrome;

/// The notices page.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/notices.html")]
pub struct NoticesPage {
    /// The frame.
    pub chrome: Chrome,
    /// Every notice, by id.
    pub notices: Vec<NoticeRow>,
    /// Whether this role may create and publish (compliance): the forms show only then.
    pub can_edit: bool,
    /// The templates to start from.
    pub templates: Vec<TemplateLink>,
    /// The create form's notice id field.
    pub new_id: String,
    /// The create form, prefilled from a template when one was chosen.
    pub create: NoticeForm,
    /// The template the create form was prefilled from, if any.
    pub template_name: Option<String>,
    /// Why the last form was not saved (the form keeps what was typed).
    pub error: Option<String>,
}

/// A template offered on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateLink {
    /// What it is for.
    pub name: String,
    /// The page with the create form prefilled from it.
    pub href: String,
}

/// One notice with its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    /// The notice id.
    pub id: String,
    /// Every version, newest first.
    pub versions: Vec<NoticeVersionRow>,
    /// The form of its next version, prefilled from the latest.
    pub form: NoticeForm,
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeVersionRow {
    /// The version number.
    pub version: u32,
    /// The English title.
    pub title: String,
    /// The purposes it asks for, comma-separated.
    pub purposes: String,
    /// Its languages, comma-separated.
    pub languages: String,
    /// Who published it.
    pub published_by: String,
    /// When.
    pub published_at: String,
}

/// The fields of a notice's texts, as a form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoticeForm {
    /// What the ids of its fields begin with (unique on the page).
    pub prefix: String,
    /// Where it posts.
    pub action: String,
    /// The purposes to tick: the chosen ones first, in the notice's order,
    /// then every other registered purpose that is not retired.
    pub purposes: Vec<PurposeChoice>,
    /// The texts, English first.
    pub languages: Vec<LanguageFields>,
    /// What was typed in "add a language".
    pub new_language: String,
    /// Whether the form is the one just posted (shown open).
    pub open: bool,
}

/// One purpose's checkbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeChoice {
    /// The purpose key.
    pub key: String,
    /// What the registry says it is for.
    pub description: String,
    /// Whether it is ticked.
    pub chosen: bool,
    /// Why a chosen purpose is not on offer (retired, not registered).
    pub note: Option<String>,
}

/// The fields of one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageFields {
    /// The language tag (`en`, `de`, `pt-br`).
    pub tag: String,
    /// The title.
    pub title: String,
    /// The plain-language text.
    pub body: String,
    /// One sentence per chosen purpose: (purpose key, sentence).
    pub sentences: Vec<(String, String)>,
}

/// The language `tag` as people read it: `German (de)`, or the tag alone
/// for a language without a name here.
pub fn language_name(tag: &str) -> String {
    const NAMES: [(&str, &str); 16] = [
        ("en", "English"),
        ("de", "German"),
        ("fr", "French"),
        ("es", "Spanish"),
        ("it", "Italian"),
        ("nl", "Dutch"),
        ("pt", "Portuguese"),
        ("pl", "Polish"),
        ("sv", "Swedish"),
        ("da", "Danish"),
        ("fi", "Finnish"),
        ("nb", "Norwegian"),
        ("cs", "Czech"),
        ("el", "Greek"),
        ("hu", "Hungarian"),
        ("ro", "Romanian"),
    ];
    let primary = tag.split('-').next().unwrap_or(tag);
    match NAMES.iter().find(|(t, _)| *t == primary) {
        Some((_, name)) => format!("{name} ({tag})"),
        None => format!("language {tag}"),
    }
}

impl NoticeRow {
    fn heading_id(&self) -> String {
        format!("notice-{}", self.id)
    }

    fn latest(&self) -> u32 {
        self.versions.first().map_or(0, |v| v.version)
    }
}

impl NoticeForm {
    fn field(&self, kind: &str, tag: &str) -> String {
        format!("{}-{kind}-{tag}", self.prefix)
    }
}

impl LanguageFields {
    fn name(&self) -> String {
        language_name(&self.tag)
    }

    /// English cannot be removed: every notice needs it.
    fn removable(&self) -> bool {
        self.tag != "en"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_have_names_and_unknown_ones_their_tag() {
        assert_eq!(language_name("de"), "German (de)");
        assert_eq!(language_name("pt-br"), "Portuguese (pt-br)");
        assert_eq!(language_name("xq"), "language xq");
    }
}
