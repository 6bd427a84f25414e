//! The segment vocabulary of the data inventory: the dimensions a pilot may
//! break its results down by, each tied to the inventory category its values
//! belong to and with the values it may take (a list, or a shape such as a
//! country code), so no free-form personal data enters as an attribute.
//! A design names its segments before it starts (pre-registered, so nobody
//! fishes for a segment after seeing the data); assignment accepts the
//! attributes of those segments only, and stores them in one canonical text.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::experiment::DesignError;
use crate::purpose::LegalBasis;

/// The most segments one design may name.
pub const MAX_SEGMENTS: usize = 4;

/// A dimension results may be broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The kind of device the person used when assigned.
    DeviceType,
    /// The person's country when assigned, as an ISO 3166-1 alpha-2 code.
    Country,
    /// Whether the person was a new or a returning customer when assigned.
    NewVsReturning,
    /// The legal basis of the assignment, from its proof (never an attribute).
    LegalBasis,
}

/// Where a dimension's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The shop sends it as an attribute of the assignment call.
    Attribute,
    /// The assignment's own legal basis; an attribute of that name is refused.
    AssignmentBasis,
}

/// The values a dimension may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Exactly one of these.
    Listed(&'static [&'static str]),
    /// Two capital letters (an ISO 3166-1 alpha-2 code, `DE`).
    CountryCode,
    /// A legal basis, as the API names it.
    LegalBases,
}

impl Values {
    /// The values, or the shape, in words.
    pub fn describe(self) -> String {
        match self {
            Values::Listed(values) => values.join(", "),
            Values::CountryCode => "two capital letters (ISO 3166-1 alpha-2, e.g. DE)".to_owned(),
            Values::LegalBases => LegalBasis::ALL.map(LegalBasis::as_str).join(", "),
        }
    }

    fn admits(self, value: &str) -> bool {
        match self {
            Values::Listed(values) => values.contains(&value),
            Values::CountryCode => {
                value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())
            }
            Values::LegalBases => LegalBasis::ALL.iter().any(|b| b.as_str() == value),
        }
    }
}

const DEVICE_TYPES: &[&str] = &["desktop", "mobile", "tablet", "other"];
const NEW_OR_RETURNING: &[&str] = &["new", "returning"];

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::DeviceType,
        Dimension::Country,
        Dimension::NewVsReturning,
        Dimension::LegalBasis,
    ];

    /// The snake_case name of the API, the design and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::DeviceType => "device_type",
            Dimension::Country => "country",
            Dimension::NewVsReturning => "new_vs_returning",
            Dimension::LegalBasis => "legal_basis",
        }
    }

    /// What the dimension says, in one sentence.
    pub fn description(self) -> &'static str {
        match self {
            Dimension::DeviceType => "The kind of device the person used when assigned.",
            Dimension::Country => "The person's country when assigned.",
            Dimension::NewVsReturning => {
                "Whether the person was a new or a returning customer when assigned."
            }
            Dimension::LegalBasis => {
                "The legal basis the assignment relied on (from its proof, never sent)."
            }
        }
    }

    /// The inventory category a design must declare to use the dimension
    /// (so a category compliance prohibits takes its segments with it);
    /// `None` for the legal basis, which the ledger holds already.
    pub fn category(self) -> Option<&'static str> {
        match self {
            Dimension::DeviceType => Some("device"),
            Dimension::Country => Some("location"),
            Dimension::NewVsReturning => Some("purchase"),
            Dimension::LegalBasis => None,
        }
    }

    pub fn source(self) -> Source {
        match self {
            Dimension::LegalBasis => Source::AssignmentBasis,
            _ => Source::Attribute,
        }
    }

    pub fn values(self) -> Values {
        match self {
            Dimension::DeviceType => Values::Listed(DEVICE_TYPES),
            Dimension::Country => Values::CountryCode,
            Dimension::NewVsReturning => Values::Listed(NEW_OR_RETURNING),
            Dimension::LegalBasis => Values::LegalBases,
        }
    }

    /// The segment value of an assignment with `basis` and stored `attributes`:
    /// the basis for [`Dimension::LegalBasis`], the attribute otherwise, and
    /// `None` when the shop did not send it.
    pub fn value_of<'a>(self, basis: &'a str, attributes: &'a Attributes) -> Option<&'a str> {
        match self.source() {
            Source::AssignmentBasis => Some(basis),
            Source::Attribute => attributes.get(self),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dimension {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dimension::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "is not a segment of the inventory (one of: {})",
                    Dimension::ALL.map(Dimension::as_str).join(", ")
                )
            })
    }
}

impl<'de> serde::Deserialize<'de> for Dimension {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// How the p-values of segment results are adjusted for the number of
/// comparisons (each segment value times each treatment variant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm–Bonferroni: controls the family-wise error rate.
    #[default]
    Holm,
    /// Benjamini–Hochberg: controls the false discovery rate.
    BenjaminiHochberg,
}

impl Correction {
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Holm => "holm",
            Correction::BenjaminiHochberg => "benjamini_hochberg",
        }
    }
}

impl FromStr for Correction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "holm" => Ok(Correction::Holm),
            "benjamini_hochberg" => Ok(Correction::BenjaminiHochberg),
            _ => Err("must be holm or benjamini_hochberg".to_owned()),
        }
    }
}

/// The rules a design's segments obey, needing nothing but the design: at
/// most [`MAX_SEGMENTS`], none twice, and each dimension's inventory
/// category among the design's declared categories.
pub fn check_design_segments(
    segments: &[Dimension],
    data_categories: &[String],
) -> Result<(), DesignError> {
    if segments.len() > MAX_SEGMENTS {
        return Err(DesignError::new(
            "segments",
            &format!("a pilot names at most {MAX_SEGMENTS} segments"),
        ));
    }
    for (i, segment) in segments.iter().enumerate() {
        if segments[..i].contains(segment) {
            return Err(DesignError::new(
                "segments",
                &format!("'{segment}' is named twice"),
            ));
        }
        if let Some(category) = segment.category()
            && !data_categories.iter().any(|c| c == category)
        {
            return Err(DesignError::new(
                "segments",
                &format!(
                    "'{segment}' is '{category}' data: declare '{category}' among the data categories"
                ),
            ));
        }
    }
    Ok(())
}

/// The attributes of one assignment, each of a segment the pilot declared
/// and with a value its dimension admits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<Dimension, String>);

/// An attribute that may not be stored, in one sentence naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attributes.{name}: {reason}")]
pub struct AttributeError {
    /// The attribute's name when it is a dimension of the vocabulary, else
    /// a placeholder: a name the shop made up is not echoed.
    pub name: String,
    pub reason: String,
}

impl Attributes {
    /// Parses the attributes a shop sent for a pilot that declared
    /// `declared`: every name must be an attribute segment the pilot
    /// declared, every value one its dimension admits. Anything else is
    /// refused whole, so no undeclared data reaches the database.
    pub fn parse(
        declared: &[Dimension],
        sent: &BTreeMap<String, String>,
    ) -> Result<Attributes, AttributeError> {
        let mut attributes = BTreeMap::new();
        for (name, value) in sent {
            let refuse = |name: &str, reason: String| AttributeError {
                name: name.to_owned(),
                reason,
            };
            let Ok(dimension) = name.parse::<Dimension>() else {
                return Err(refuse(
                    "<name>",
                    format!(
                        "an attribute name is not a segment of the inventory; this pilot accepts only {}",
                        accepted(declared)
                    ),
                ));
            };
            if dimension.source() == Source::AssignmentBasis {
                return Err(refuse(
                    name,
                    "comes from the assignment's legal basis; do not send it".to_owned(),
                ));
            }
            if !declared.contains(&dimension) {
                return Err(refuse(
                    name,
                    format!(
                        "is not a segment this pilot declared before it started; it accepts only {}",
                        accepted(declared)
                    ),
                ));
            }
            if !dimension.values().admits(value) {
                return Err(refuse(
                    name,
                    format!("must be {}", dimension.values().describe()),
                ));
            }
            attributes.insert(dimension, value.clone());
        }
        Ok(Attributes(attributes))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, dimension: Dimension) -> Option<&str> {
        self.0.get(&dimension).map(String::as_str)
    }

    /// The stored text: `name=value` pairs in the dimensions' order,
    /// separated by `;` (no value contains either character), `None` when
    /// there are none.
    pub fn stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(d, v)| format!("{d}={v}"))
                .collect::<Vec<_>>()
                .join(";")
        })
    }

    /// The attributes of a stored text, keeping only what the vocabulary
    /// admits (a stored text is [`Attributes::stored`]'s).
    pub fn from_stored(text: Option<&str>) -> Attributes {
        let mut attributes = BTreeMap::new();
        for pair in text.unwrap_or_default().split(';') {
            if let Some((name, value)) = pair.split_once('=')
                && let Ok(dimension) = name.parse::<Dimension>()
                && dimension.source() == Source::Attribute
                && dimension.values().admits(value)
            {
                attributes.insert(dimension, value.to_owned());
            }
        }
        Attributes(attributes)
    }
}

fn accepted(declared: &[Dimension]) -> String {
    let names: Vec<&str> = declared
        .iter()
        .filter(|d| d.source() == Source::Attribute)
        .map(|d| d.as_str())
        .collect();
    if names.is_empty() {
        "no attributes".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn declared_attributes_with_admitted_values_are_stored_in_one_canonical_text() {
        let declared = [Dimension::NewVsReturning, Dimension::DeviceType];
        let attributes = Attributes::parse(
            &declared,
            &sent(&[("new_vs_returning", "new"), ("device_type", "mobile")]),
        )
        .unwrap();
        let stored = attributes.stored().unwrap();
        assert_eq!(stored, "device_type=mobile;new_vs_returning=new");
        assert_eq!(Attributes::from_stored(Some(&stored)), attributes);
        assert_eq!(
            Attributes::parse(&declared, &sent(&[])).unwrap().stored(),
            None
        );
    }

    #[test]
    fn undeclared_unknown_derived_or_free_values_are_refused() {
        let declared = [Dimension::Country, Dimension::LegalBasis];
        let refusal = |pairs: &[(&str, &str)]| {
            Attributes::parse(&declared, &sent(pairs))
                .unwrap_err()
                .to_string()
        };
        assert!(
            refusal(&[("device_type", "mobile")]).contains("not a segment this pilot declared")
        );
        let unknown = refusal(&[("email", "ann@example.com")]);
        assert!(
            unknown.contains("not a segment of the inventory"),
            "{unknown}"
        );
        assert!(
            !unknown.contains("email") && !unknown.contains("ann"),
            "{unknown}"
        );
        assert!(refusal(&[("legal_basis", "consent")]).contains("legal basis"));
        assert!(refusal(&[("country", "Germany")]).contains("two capital letters"));
        assert!(refusal(&[("country", "de")]).contains("two capital letters"));
    }

    #[test]
    fn a_segment_needs_its_category_declared_and_may_be_named_once() {
        let categories = vec!["orders".to_owned(), "device".to_owned()];
        assert!(
            check_design_segments(&[Dimension::DeviceType, Dimension::LegalBasis], &categories)
                .is_ok()
        );
        let missing = check_design_segments(&[Dimension::Country], &categories).unwrap_err();
        assert!(missing.reason.contains("declare 'location'"), "{missing}");
        let twice =
            check_design_segments(&[Dimension::DeviceType, Dimension::DeviceType], &categories)
                .unwrap_err();
        assert!(twice.reason.contains("named twice"));
    }

    #[test]
    fn every_legal_basis_is_a_value_of_the_legal_basis_segment() {
        for basis in LegalBasis::ALL {
            assert!(Dimension::LegalBasis.values().admits(basis.as_str()));
        }
        assert!(!Dimension::LegalBasis.values().admits("consented"));
    }
}
