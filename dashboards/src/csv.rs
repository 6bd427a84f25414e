//! The eligibility report as CSV, the download linked from the compliance
//! view. Fields are quoted by RFC 4180 rules, and text that a spreadsheet
//! would run as a formula is defused.

use crate::pages::{EligibilityRow, ReconsentRow};

/// The header line of the eligibility report.
const HEADER: &str = "variant,basis,notice_version,subjects";

/// The eligibility report: a header line, then one line per row, each line
/// ended by CRLF; a count withheld by small-cell suppression reads `suppressed`.
pub fn eligibility_csv(rows: &[EligibilityRow]) -> String {
    let mut out = String::with_capacity(HEADER.len() + 2 + rows.len() * 40);
    out.push_str(HEADER);
    out.push_str("\r\n");
    for row in rows {
        let notice = row
            .notice_version
            .map(|version| version.to_string())
            .unwrap_or_default();
        let fields = [
            text_field(&row.variant),
            text_field(&row.basis),
            notice,
            count_field(row.subjects),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The header line of the re-consent report.
const RECONSENT_HEADER: &str = "purpose,day,expired,stale_notice,asked,links_issued,came_back";

/// The re-consent report: a header line, then one line per purpose and day,
/// each line ended by CRLF.
pub fn reconsent_csv(rows: &[ReconsentRow]) -> String {
    let mut out = String::with_capacity(RECONSENT_HEADER.len() + 2 + rows.len() * 60);
    out.push_str(RECONSENT_HEADER);
    out.push_str("\r\n");
    for row in rows {
        let fields = [
            text_field(&row.purpose),
            text_field(&row.day),
            count_field(row.expired),
            count_field(row.stale_notice),
            count_field(row.asked),
            count_field(row.links_issued),
            count_field(row.came_back),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One text field: prefixed with `'` when a spreadsheet would read it as a
/// formula, and quoted when it holds a comma, a quote or a line break.
fn text_field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// A count as a CSV field: the number, or `suppressed` when withheld.
fn count_field(count: crate::view::Count) -> String {
    count
        .value()
        .map_or_else(|| crate::view::SUPPRESSED.to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        variant: &str,
        basis: &str,
        notice_version: Option<u32>,
        subjects: u64,
    ) -> EligibilityRow {
        EligibilityRow {
            variant: variant.to_owned(),
            basis: basis.to_owned(),
            notice_version,
            subjects: crate::view::Count::Shown(subjects),
        }
    }

    #[test]
    fn the_report_has_a_header_and_one_line_per_row() {
        let csv = eligibility_csv(&[
            row("control", "consent", Some(3), 33_412),
            row("treatment", "legitimate_interest", None, 120),
        ]);
        assert_eq!(
            csv,
            "variant,basis,notice_version,subjects\r\n\
             control,consent,3,33412\r\n\
             treatment,legitimate_interest,,120\r\n"
        );
    }

    #[test]
    fn awkward_text_is_quoted_and_formulas_are_defused() {
        let csv = eligibility_csv(&[row("a,\"b\"\nc", "=HYPERLINK(\"x\")", Some(1), 5)]);
        let line = csv.lines().nth(1).unwrap_or_default();
        assert_eq!(line, "\"a,\"\"b\"\"");
        assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\",1,5\r\n"));
    }

    #[test]
    fn no_rows_give_the_header_alone() {
        assert_eq!(
            eligibility_csv(&[]),
            "variant,basis,notice_version,subjects\r\n"
        );
    }
}
