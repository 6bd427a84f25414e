//! The roles an API token can hold.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role decides which routes a token may call (see the permission table
/// in the server crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May do everything.
    Admin,
    /// Designs, launches and stops pilots.
    Marketer,
    /// Reads results and exports pseudonymized data.
    Analyst,
    /// The data-protection officer's role: approves pilots, handles consents and erasure.
    Compliance,
    /// Machine clients that send consents, assignments and events.
    Ingest,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Marketer,
        Role::Analyst,
        Role::Compliance,
        Role::Ingest,
    ];

    /// The lowercase name used in the API, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketer => "marketer",
            Role::Analyst => "analyst",
            Role::Compliance => "compliance",
            Role::Ingest => "ingest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a role name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': expected one of admin, marketer, analyst, compliance, ingest")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn an_unknown_role_is_refused_with_the_list_of_roles() {
        let error = "root".parse::<Role>().unwrap_err();
        assert!(error.to_string().contains("compliance"));
    }
}
