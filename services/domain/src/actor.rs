//! Who did something: the name and role of a token, or the operator at the CLI.

use std::fmt;

use crate::Role;

/// The name of [`Actor::customer`].
pub const CUSTOMER: &str = "customer";
/// The name of [`Actor::retention_job`].
pub const RETENTION_JOB: &str = "retention-purge";

/// The author of a change, as written into the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's name, or `operator` for the command line.
    pub name: String,
    /// The token's role; `None` for someone with shell access to the server.
    pub role: Option<Role>,
}

impl Actor {
    /// The author of a request made with an API token.
    pub fn token(name: impl Into<String>, role: Role) -> Self {
        Actor {
            name: name.into(),
            role: Some(role),
        }
    }

    /// The author of a command run on the server's machine (`pilotgate token …`).
    pub fn operator() -> Self {
        Actor {
            name: "operator".to_owned(),
            role: None,
        }
    }

    /// A customer saving choices on the consent form through a privacy link
    /// (no token; the link names the person by pseudonym only).
    pub fn customer() -> Self {
        Actor {
            name: CUSTOMER.to_owned(),
            role: None,
        }
    }

    /// The retention purge that `pilotgate serve` runs on its own schedule.
    pub fn retention_job() -> Self {
        Actor {
            name: RETENTION_JOB.to_owned(),
            role: None,
        }
    }

    /// True when the actor holds `role` (admins hold every role).
    pub fn has_role(&self, role: Role) -> bool {
        matches!(self.role, Some(r) if r == role || r == Role::Admin)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Some(role) => write!(f, "{} ({role})", self.name),
            None if self.name == CUSTOMER => write!(f, "{} (privacy link)", self.name),
            None if self.name == RETENTION_JOB => write!(f, "{} (scheduled)", self.name),
            None => write!(f, "{} (cli)", self.name),
        }
    }
}
