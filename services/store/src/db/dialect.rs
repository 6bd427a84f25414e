//! The SQL dialect behind a store, and the little SQL text both dialects
//! need built: placeholder lists, multi-row `VALUES` lists, and packed rows.

use crate::error::{StoreError, corrupt};

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `rows` parenthesized rows of `width` placeholders each, numbered from 1,
    /// for a multi-row `VALUES` list.
    pub(crate) fn value_rows(self, rows: usize, width: usize) -> String {
        (0..rows)
            .map(|r| format!("({})", self.placeholders(r * width + 1, width)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Placeholders for `n` parameters bound in order, numbered from `first`.
    /// SQLite gets anonymous `?`: it looks named parameters up by a linear
    /// scan, which makes a statement with thousands of `$n` quadratic to bind.
    pub(crate) fn placeholders(self, first: usize, n: usize) -> String {
        match self {
            Dialect::Sqlite => vec!["?"; n].join(", "),
            Dialect::Postgres => numbered(first, n),
        }
    }

    /// ` FOR UPDATE` on PostgreSQL (a row lock until the transaction ends);
    /// nothing on SQLite, whose write transactions hold the whole database.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// `$first, $first+1, …` for `n` parameters, for statements that work the
/// same on both dialects.
pub(crate) fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows packed into one text value, `N` fields each: fields joined by the
/// unit separator (U+001F), rows by the record separator (U+001E). A read of
/// thousands of small rows then crosses the driver once instead of once per
/// row. One declaration yields both the `SELECT` expression and its decoder.
/// The fields must never hold either separator (keys, hashes and numbers do
/// not; control characters are refused on arrival) and must not be NULL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packed<const N: usize> {
    /// The SQL expressions of the fields, in order.
    pub(crate) fields: [&'static str; N],
    /// What the rows are, for the error when one cannot be read.
    pub(crate) what: &'static str,
}

impl<const N: usize> Packed<N> {
    /// The aggregate that packs every row of the query into one value
    /// (NULL when there are none).
    pub(crate) fn select(&self, dialect: Dialect) -> String {
        let (unit, record, aggregate) = match dialect {
            Dialect::Sqlite => ("char(31)", "char(30)", "group_concat"),
            Dialect::Postgres => ("chr(31)", "chr(30)", "string_agg"),
        };
        let row = self
            .fields
            .iter()
            .map(|f| format!("CAST({f} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(&format!(" || {unit} || "));
        format!("{aggregate}({row}, {record})")
    }

    /// The rows of a packed value, each as its `N` fields.
    pub(crate) fn rows<'a>(
        &self,
        packed: Option<&'a str>,
    ) -> impl Iterator<Item = Result<[&'a str; N], StoreError>> + 'a {
        let what = self.what;
        packed
            .into_iter()
            .flat_map(|rows| rows.split('\u{1e}'))
            .map(move |row| {
                let mut fields = row.split('\u{1f}');
                let mut out = [""; N];
                for slot in &mut out {
                    *slot = fields.next().ok_or_else(|| corrupt(what))?;
                }
                if fields.next().is_some() {
                    return Err(corrupt(what));
                }
                Ok(out)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRS: Packed<2> = Packed {
        fields: ["a", "b"],
        what: "pairs",
    };

    #[test]
    fn a_packed_row_reads_back_field_by_field() {
        let rows: Vec<[&str; 2]> = PAIRS
            .rows(Some("x\u{1f}1\u{1e}y\u{1f}2"))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [["x", "1"], ["y", "2"]]);
        assert_eq!(PAIRS.rows(None).count(), 0);
        assert!(PAIRS.rows(Some("only-one-field")).next().unwrap().is_err());
        assert!(PAIRS.rows(Some("a\u{1f}b\u{1f}c")).next().unwrap().is_err());
        assert_eq!(
            PAIRS.select(Dialect::Sqlite),
            "group_concat(CAST(a AS TEXT) || char(31) || CAST(b AS TEXT), char(30))"
        );
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        assert_eq!(Dialect::Sqlite.placeholders(3, 2), "?, ?");
        assert_eq!(Dialect::Postgres.placeholders(3, 2), "$3, $4");
        assert_eq!(Dialect::Postgres.value_rows(2, 2), "($1, $2), ($3, $4)");
    }
}
