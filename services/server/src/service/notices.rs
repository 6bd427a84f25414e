//! Notices: creating one with its first version, publishing the next, and
//! the two templates a shop can start from (files in `notice-templates/`,
//! built into the binary). The API and the `/ui/notices` page both call here.

use pilotgate_domain::Actor;
use pilotgate_domain::notice::{NoticeContent, NoticeId};
use pilotgate_store::{NoticeVersion, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::ServiceError;

/// A template a shop can start a notice from.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeTemplate {
    /// The template's key, e.g. `ab-testing`.
    pub key: String,
    /// What it is for, in a few words.
    pub name: String,
    /// The notice's purposes and texts (English and German).
    #[schema(value_type = Object)]
    pub content: NoticeContent,
}

const TEMPLATE_FILES: [&str; 2] = [
    include_str!("../../notice-templates/ab-testing.json"),
    include_str!("../../notice-templates/personalisation.json"),
];

/// The templates shipped with pilotgate, in a fixed order.
pub fn templates() -> Vec<NoticeTemplate> {
    TEMPLATE_FILES
        .iter()
        .map(|text| serde_json::from_str(text).expect("the notice templates are valid JSON"))
        .collect()
}

/// The template `key`, if there is one.
pub fn template(key: &str) -> Option<NoticeTemplate> {
    templates().into_iter().find(|t| t.key == key)
}

/// Checks the content, then that every purpose it asks for is registered
/// and not retired.
async fn checked(store: &Store, content: NoticeContent) -> Result<NoticeContent, ServiceError> {
    let content = content
        .checked()
        .map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
    let purposes = store.list_purpose_records().await?;
    let key = |p: &pilotgate_store::PurposeRecord| p.purpose.key.as_str().to_owned();
    let registered: Vec<String> = purposes.iter().map(key).collect();
    let retired: Vec<String> = purposes
        .iter()
        .filter(|p| p.retired_at.is_some())
        .map(key)
        .collect();
    content
        .all_registered(&as_strs(&registered), &as_strs(&retired))
        .map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
    Ok(content)
}

/// Creates the notice `id` with `content` as its version 1.
pub async fn create(
    store: &Store,
    actor: &Actor,
    id: &str,
    content: NoticeContent,
) -> Result<NoticeVersion, ServiceError> {
    let id = NoticeId::parse(id).map_err(|e| ServiceError::Unprocessable(e.to_string()))?;
    let content = checked(store, content).await?;
    Ok(store.create_notice(&id, &content, actor).await?)
}

/// Publishes `content` as the next version of the notice `id`.
pub async fn publish(
    store: &Store,
    actor: &Actor,
    id: &str,
    content: NoticeContent,
) -> Result<NoticeVersion, ServiceError> {
    let id = NoticeId::parse(id).map_err(|_| {
        ServiceError::Store(StoreError::NotFound(format!(
            "no notice is called '{}'",
            clip(id)
        )))
    })?;
    let content = checked(store, content).await?;
    Ok(store.publish_notice_version(&id, &content, actor).await?)
}

fn as_strs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// At most 64 characters of a text a client sent, for a message.
pub fn clip(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_templates_are_valid_notices_in_english_and_german() {
        let all = templates();
        assert_eq!(all.len(), 2);
        for template in all {
            let content = template.content.checked().expect("a valid notice");
            assert!(content.languages.contains_key("en") && content.languages.contains_key("de"));
        }
        assert!(template("ab-testing").is_some());
    }
}
