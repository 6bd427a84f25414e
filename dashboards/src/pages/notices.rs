//! The notices: each notice with its version history, and (for compliance)
//! the forms that create a notice, from scratch or from a template, and
//! publish its next version, prefilled from the latest.

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
    /// The create form's id field.
    pub new_id: String,
    /// The create form's content (JSON), prefilled from a template when one was chosen.
    pub new_content: String,
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
    /// Where the publish form posts.
    pub publish_action: String,
    /// The latest version's content (JSON), to edit into the next.
    pub latest_content: String,
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

impl NoticeRow {
    fn heading_id(&self) -> String {
        format!("notice-{}", self.id)
    }

    fn latest(&self) -> u32 {
        self.versions.first().map_or(0, |v| v.version)
    }
}
