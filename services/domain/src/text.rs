//! Free text as people and clients write it: names, hypotheses, comments,
//! notice ids, raw ids. One rule, checked once where the text arrives: not
//! blank, at most so many characters, and no control characters (which could
//! forge log lines or hide text on a page), except line breaks where a text
//! may have several lines.

use std::fmt;

/// Text that passed the plain-text rule. Holds the text as given (one-line
/// texts) or trimmed (texts of several lines).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PlainText(String);

/// Why a text is not plain text of the length asked for; its message ends a
/// sentence that begins with the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must be 1 to {max} characters without control characters")]
    OneLine { max: usize },
    #[error("must be 1 to {max} characters; line breaks are the only control characters allowed")]
    Lines { max: usize },
}

impl PlainText {
    /// One line: not blank, at most `max` characters, no control character.
    pub fn line(value: &str, max: usize) -> Result<PlainText, TextError> {
        let fits = !value.trim().is_empty()
            && value.chars().count() <= max
            && !value.chars().any(char::is_control);
        fits.then(|| PlainText(value.to_owned()))
            .ok_or(TextError::OneLine { max })
    }

    /// Several lines (a comment): trimmed, then not empty, at most `max`
    /// characters, and no control character but line breaks (`\n`).
    pub fn lines(value: &str, max: usize) -> Result<PlainText, TextError> {
        let value = value.trim();
        let fits = !value.is_empty()
            && value.chars().count() <= max
            && !value.chars().any(|c| c.is_control() && c != '\n');
        fits.then(|| PlainText(value.to_owned()))
            .ok_or(TextError::Lines { max })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PlainText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PlainText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_refuses_blank_long_and_control_characters() {
        assert_eq!(
            PlainText::line("Spring banner", 20).unwrap().as_str(),
            "Spring banner"
        );
        for bad in ["", "   ", "a\nb", "tab\there", "nul\u{0}", "esc\u{1b}[31m"] {
            assert_eq!(
                PlainText::line(bad, 20),
                Err(TextError::OneLine { max: 20 }),
                "{bad:?}"
            );
        }
        assert!(
            PlainText::line(&"é".repeat(20), 20).is_ok(),
            "characters, not bytes"
        );
        assert!(PlainText::line(&"é".repeat(21), 20).is_err());
    }

    #[test]
    fn lines_allow_line_breaks_only_and_are_trimmed() {
        let comment = PlainText::lines("  purpose fits\nretention fits \n", 100).unwrap();
        assert_eq!(comment.as_str(), "purpose fits\nretention fits");
        for bad in ["\n \n", "a\u{0}b", "a\rb", "x\u{7}"] {
            assert!(PlainText::lines(bad, 100).is_err(), "{bad:?}");
        }
        assert_eq!(
            PlainText::lines(&"x".repeat(101), 100),
            Err(TextError::Lines { max: 100 })
        );
    }
}
