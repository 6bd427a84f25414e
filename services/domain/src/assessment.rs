//! Legitimate-interest assessments (GDPR Art. 6(1)(f)) as records: the
//! purpose test, the necessity test and the balancing test, with the outcome,
//! the reviewer and the date. A purpose may rely on `legitimate_interest`
//! only while its newest assessment is positive.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;

use crate::text::PlainText;

/// What the balancing of the controller's interests against the person's came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentOutcome {
    /// The interest is legitimate, the processing necessary, and it does not
    /// override the person's interests: `legitimate_interest` may be relied on.
    Positive,
    /// One of the tests failed: the purpose may not rely on `legitimate_interest`.
    Negative,
}

impl AssessmentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AssessmentOutcome::Positive => "positive",
            AssessmentOutcome::Negative => "negative",
        }
    }
}

impl fmt::Display for AssessmentOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssessmentOutcome {
    type Err = AssessmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "positive" => Ok(AssessmentOutcome::Positive),
            "negative" => Ok(AssessmentOutcome::Negative),
            _ => Err(AssessmentError::Outcome),
        }
    }
}

/// The balancing test: the interests pursued, what the person can reasonably
/// expect, and the safeguards that tip the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balancing {
    pub interests: String,
    pub expectations: String,
    pub safeguards: String,
}

/// An assessment as compliance records it (the version is the store's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// Is the interest legitimate, and what is it?
    pub purpose_test: String,
    /// Is the processing necessary for it, or would less do?
    pub necessity_test: String,
    pub balancing: Balancing,
    pub outcome: AssessmentOutcome,
    /// Who reviewed it (a person, not a token).
    pub reviewer: String,
    /// The day of the review, `YYYY-MM-DD`.
    pub reviewed_on: String,
}

/// Why an assessment cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessmentError {
    #[error("{0} must be 1 to 4000 characters, without control characters other than line breaks")]
    Text(&'static str),
    #[error("reviewer must be 1 to 200 characters, without control characters")]
    Reviewer,
    #[error("reviewed_on must be a date, YYYY-MM-DD")]
    Date,
    #[error("reviewed_on may not be in the future: give the day the review was made")]
    FutureDate,
    #[error("outcome must be positive or negative")]
    Outcome,
}

/// The longest text of one test.
pub const MAX_TEXT: usize = 4000;

impl Assessment {
    /// Checks every field, naming the first that is wrong; the review must
    /// have been made by `today` (a later day is not a review made).
    pub fn validate(&self, today: NaiveDate) -> Result<(), AssessmentError> {
        let texts = [
            ("purpose_test", &self.purpose_test),
            ("necessity_test", &self.necessity_test),
            ("interests", &self.balancing.interests),
            ("expectations", &self.balancing.expectations),
            ("safeguards", &self.balancing.safeguards),
        ];
        for (field, text) in texts {
            PlainText::lines(text, MAX_TEXT).map_err(|_| AssessmentError::Text(field))?;
        }
        PlainText::line(&self.reviewer, 200).map_err(|_| AssessmentError::Reviewer)?;
        let reviewed_on = NaiveDate::parse_from_str(&self.reviewed_on, "%Y-%m-%d")
            .map_err(|_| AssessmentError::Date)?;
        if self.reviewed_on.len() != 10 {
            return Err(AssessmentError::Date);
        }
        if reviewed_on > today {
            return Err(AssessmentError::FutureDate);
        }
        Ok(())
    }

    /// The reference a purpose carries while this assessment, recorded as
    /// `version`, is the newest: `Some` only for a positive outcome.
    pub fn reference(&self, version: u32) -> Option<String> {
        (self.outcome == AssessmentOutcome::Positive).then(|| format!("LIA v{version}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn assessment(outcome: AssessmentOutcome) -> Assessment {
        Assessment {
            purpose_test: "Improving the checkout is a legitimate interest.".to_owned(),
            necessity_test: "A/B tests on pseudonyms are the least intrusive way.".to_owned(),
            balancing: Balancing {
                interests: "Better checkout for customers and the shop.".to_owned(),
                expectations: "Customers expect the shop to improve its pages.".to_owned(),
                safeguards: "Pseudonyms, 90-day retention, objection honoured at once.".to_owned(),
            },
            outcome,
            reviewer: "Dana (DPO)".to_owned(),
            reviewed_on: "2026-12-01".to_owned(),
        }
    }

    #[test]
    fn only_a_positive_outcome_gives_a_reference() {
        assert_eq!(
            assessment(AssessmentOutcome::Positive)
                .reference(3)
                .as_deref(),
            Some("LIA v3")
        );
        assert_eq!(assessment(AssessmentOutcome::Negative).reference(3), None);
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    #[test]
    fn a_review_is_dated_today_or_earlier() {
        let mut a = assessment(AssessmentOutcome::Positive);
        for day in ["2026-12-03", "2020-01-01"] {
            a.reviewed_on = day.to_owned();
            assert_eq!(a.validate(today()), Ok(()), "{day}");
        }
        for day in ["2026-12-04", "9999-12-31"] {
            a.reviewed_on = day.to_owned();
            assert_eq!(
                a.validate(today()),
                Err(AssessmentError::FutureDate),
                "{day}"
            );
        }
    }

    #[test]
    fn every_test_must_be_written_and_the_date_real() {
        assert_eq!(
            assessment(AssessmentOutcome::Positive).validate(today()),
            Ok(())
        );
        let mut a = assessment(AssessmentOutcome::Positive);
        a.balancing.safeguards = " ".to_owned();
        assert_eq!(
            a.validate(today()),
            Err(AssessmentError::Text("safeguards"))
        );
        let mut a = assessment(AssessmentOutcome::Positive);
        a.reviewed_on = "2026-02-30".to_owned();
        assert_eq!(a.validate(today()), Err(AssessmentError::Date));
        let mut a = assessment(AssessmentOutcome::Positive);
        a.reviewer = "Dana\u{7}".to_owned();
        assert_eq!(a.validate(today()), Err(AssessmentError::Reviewer));
        assert_eq!(
            "maybe".parse::<AssessmentOutcome>(),
            Err(AssessmentError::Outcome)
        );
    }
}
