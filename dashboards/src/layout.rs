//! The page chrome every page shares: title, signed-in user, navigation and
//! the CSRF token that every POST form carries.

use std::fmt;

/// What the base template needs to draw the frame around a page.
#[derive(Clone, PartialEq, Eq)]
pub struct Chrome {
    /// The page title, shown in the browser tab and as the main heading.
    pub title: String,
    /// The signed-in user, or `None` on the sign-in page.
    pub user: Option<SignedInUser>,
    /// The navigation links this user's role may see, in order.
    pub nav: Vec<NavLink>,
    /// The session's CSRF token, embedded in every POST form as `csrf`.
    pub csrf_token: String,
}

impl Chrome {
    /// The signed-in user's display name, or "" before signing in.
    pub fn user_name(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.name.as_str())
    }

    /// Chrome for a page seen before signing in: no user, no navigation.
    pub fn anonymous(title: impl Into<String>, csrf_token: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: None,
            nav: Vec::new(),
            csrf_token: csrf_token.into(),
        }
    }
}

// The CSRF token is a secret of the session, so it stays out of debug output.
impl fmt::Debug for Chrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chrome")
            .field("title", &self.title)
            .field("user", &self.user)
            .field("nav", &self.nav)
            .field("csrf_token", &"<redacted>")
            .finish()
    }
}

/// The person signed in, by display name and role (never by token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInUser {
    /// The token's display name, e.g. `Dana (DPO)`.
    pub name: String,
    /// The role, e.g. `compliance`.
    pub role: String,
}

/// One link of the navigation bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavLink {
    /// Where the link goes, e.g. `/ui/experiments`.
    pub href: String,
    /// The link's text.
    pub label: String,
    /// Whether this is the page being shown.
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_csrf_token() {
        let chrome = Chrome::anonymous("Sign in", "secret-csrf-value");
        let debug = format!("{chrome:?}");
        assert!(!debug.contains("secret-csrf-value"));
        assert!(debug.contains("<redacted>"));
    }
}
