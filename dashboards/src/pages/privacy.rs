//! The customer's consent form behind a privacy link: the notice in one
//! language, one choice per purpose with "yes" and "no" equally prominent
//! and none pre-selected, the person's current choice beside each, and
//! "Allow all" / "Refuse all" beside "Save my choices". A page of its own
//! (no dashboard frame, neutral styling, no script) so that a shop can
//! embed it in an iframe. After a save it shows what was recorded and the
//! receipt to download.
//!
//! The one view model that carries a link token (in `action`, the language
//! links and the receipt link): the page is reached through that link and
//! posts back to it. The token is opaque (random; the server keeps only its
//! hash); no field holds a raw id, a pseudonym, an API token or a key.

use askama::Template;

/// The consent form.
#[derive(Debug, Clone, Template)]
#[template(path = "pages/privacy.html")]
pub struct PrivacyPage {
    /// The language shown (`lang` of the page).
    pub language: String,
    /// The notice's title in that language.
    pub title: String,
    /// The notice's text, one entry per paragraph.
    pub paragraphs: Vec<String>,
    /// The notice's other languages.
    pub languages: Vec<LanguageLink>,
    /// Where the form posts (the link itself).
    pub action: String,
    /// The form's CSRF value: an HMAC of the link's token.
    pub form_token: String,
    /// The notice version shown.
    pub notice_version: u32,
    /// One entry per purpose of the notice.
    pub purposes: Vec<PrivacyChoice>,
    /// What the last save recorded, on the page that answers it.
    pub saved: Option<SavedNote>,
    /// Why the last save failed, if it did.
    pub error: Option<String>,
}

/// A link to the notice in another language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageLink {
    pub tag: String,
    pub href: String,
}

/// One purpose on the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyChoice {
    /// The field's name (`c0`, `c1`, ...).
    pub field: String,
    /// The purpose's one sentence.
    pub sentence: String,
    /// False for a purpose that cannot be chosen at all: no radio buttons then.
    pub offered: bool,
    /// Whether "yes" is offered; when false, only "no" is (with `limit` saying why).
    pub may_allow: bool,
    /// Why "yes" is not offered, if it is not.
    pub limit: Option<ChoiceLimit>,
    /// "allowed since 2026-12-01", "not allowed" or "no choice yet", in the page's language.
    pub current: String,
}

/// Why a purpose on the form cannot be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceLimit {
    /// Retired or no longer registered.
    NotOffered,
    /// The purpose needs a newer version of the notice than the one shown.
    NoticeTooOld,
}

/// What a save recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedNote {
    /// One line per purpose: its sentence and the new status.
    pub lines: Vec<String>,
    /// The purposes a Global Privacy Control signal objected to (their sentences).
    pub gpc: Vec<String>,
    /// The receipt's id.
    pub receipt_id: String,
    /// Where to download it.
    pub receipt_href: String,
}

/// The form's words in one language (English unless German is shown).
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub yes: &'static str,
    pub no: &'static str,
    pub current: &'static str,
    pub save: &'static str,
    pub allow_all: &'static str,
    pub refuse_all: &'static str,
    pub not_offered: &'static str,
    pub refuse_only: &'static str,
    pub notice_too_old: &'static str,
    pub saved: &'static str,
    pub download: &'static str,
    pub gpc: &'static str,
    pub other_languages: &'static str,
    pub change: &'static str,
}

const ENGLISH: Labels = Labels {
    yes: "Yes, allow",
    no: "No, don't allow",
    current: "Your current choice",
    save: "Save my choices",
    allow_all: "Allow all",
    refuse_all: "Refuse all",
    not_offered: "This purpose is no longer offered.",
    refuse_only: "You can still say no, which withdraws what you allowed before.",
    notice_too_old: "This purpose cannot be allowed with this version of the notice; the shop has to publish a newer one first.",
    saved: "Your choices were saved.",
    download: "Download your receipt",
    gpc: "Your browser's Global Privacy Control signal was recorded as an objection to:",
    other_languages: "Other languages",
    change: "You can change your choices here at any time; saying no is as easy as saying yes.",
};

const GERMAN: Labels = Labels {
    yes: "Ja, erlauben",
    no: "Nein, nicht erlauben",
    current: "Ihre aktuelle Entscheidung",
    save: "Meine Auswahl speichern",
    allow_all: "Alle erlauben",
    refuse_all: "Alle ablehnen",
    not_offered: "Dieser Zweck wird nicht mehr angeboten.",
    refuse_only: "Sie können weiterhin Nein sagen; damit widerrufen Sie, was Sie früher erlaubt haben.",
    notice_too_old: "Dieser Zweck kann mit dieser Fassung des Hinweises nicht erlaubt werden; der Shop muss zuerst eine neuere veröffentlichen.",
    saved: "Ihre Auswahl wurde gespeichert.",
    download: "Ihre Quittung herunterladen",
    gpc: "Das Global-Privacy-Control-Signal Ihres Browsers wurde als Widerspruch erfasst gegen:",
    other_languages: "Andere Sprachen",
    change: "Sie können Ihre Auswahl hier jederzeit ändern; Nein sagen ist so einfach wie Ja sagen.",
};

/// The form's words for `language`.
pub fn labels(language: &str) -> Labels {
    if language == "de" || language.starts_with("de-") {
        GERMAN
    } else {
        ENGLISH
    }
}

/// "allowed since DATE", "not allowed" or "no choice yet" in `language`.
pub fn current_text(language: &str, allowed_since: Option<&str>, refused: bool) -> String {
    let german = labels(language).yes == GERMAN.yes;
    match (allowed_since, refused, german) {
        (Some(date), _, false) => format!("allowed since {date}"),
        (Some(date), _, true) => format!("erlaubt seit {date}"),
        (None, true, false) => "not allowed".to_owned(),
        (None, true, true) => "nicht erlaubt".to_owned(),
        (None, false, false) => "no choice yet".to_owned(),
        (None, false, true) => "noch keine Entscheidung".to_owned(),
    }
}

impl PrivacyPage {
    fn t(&self) -> Labels {
        labels(&self.language)
    }

    fn any_offered(&self) -> bool {
        self.purposes.iter().any(|p| p.offered)
    }

    fn any_allowable(&self) -> bool {
        self.purposes.iter().any(|p| p.may_allow)
    }

    /// The sentence saying why "yes" is not offered for `choice`, if it is not.
    fn limit_text(&self, choice: &PrivacyChoice) -> Option<&'static str> {
        choice.limit.map(|limit| match limit {
            ChoiceLimit::NotOffered => self.t().not_offered,
            ChoiceLimit::NoticeTooOld => self.t().notice_too_old,
        })
    }
}
