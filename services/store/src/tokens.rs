//! API tokens: only the SHA-256 of a token's secret is stored, never the token.

use chrono::{DateTime, Utc};
use pilotgate_domain::time::{from_micros, to_micros};
use pilotgate_domain::{Actor, Role};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::AuditRecord;
use crate::cache::Generational;
use crate::core::Core;
use crate::error::StoreError;
use crate::error::unless_taken;

/// What the store keeps of a new token.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: Role,
    pub token_id: &'a str,
    pub secret_hash: &'a str,
}

/// A token as listed to operators: never its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What authentication needs to check a presented token.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub name: String,
    pub role: Role,
    pub secret_hash: String,
    pub revoked: bool,
}

impl Core {
    /// Stores a new token's hash and audits its creation in the same transaction.
    pub async fn create_token(
        &self,
        token: &NewToken<'_>,
        actor: &Actor,
    ) -> Result<TokenRecord, StoreError> {
        let created_at = to_micros(self.now());
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query("INSERT INTO api_tokens (token_id, name, role, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token.token_id)
            .bind(token.name)
            .bind(token.role.as_str())
            .bind(token.secret_hash)
            .bind(created_at)
            .execute(&mut *tx)
            .await;
        unless_taken(inserted, || {
            format!(
                "'{}' holds an active {} token already; revoke it first",
                token.name, token.role
            )
        })?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "token.create",
                target: format!("token:{}", token.name),
                details: serde_json::json!({ "role": token.role }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(TokenRecord {
            name: token.name.to_owned(),
            role: token.role,
            created_at: from_micros(created_at),
            revoked_at: None,
        })
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY id")
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes the active token of `name` (with `role`, when the name holds
    /// several); it stops working at once and its dashboard sessions end.
    pub async fn revoke_token(
        &self,
        name: &str,
        role: Option<Role>,
        actor: &Actor,
    ) -> Result<TokenRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT name, role, created_at, revoked_at FROM api_tokens WHERE name = $1 ORDER BY id",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        let mut tokens = rows
            .iter()
            .map(token_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        tokens.retain(|t| role.is_none_or(|r| t.role == r));
        if tokens.is_empty() {
            return Err(StoreError::NotFound(format!(
                "'{name}' holds no such token"
            )));
        }
        let revoked_role = tokens[0].role;
        tokens.retain(|t| t.revoked_at.is_none());
        let mut record = match tokens.len() {
            0 => {
                return Err(StoreError::Conflict(format!(
                    "the {revoked_role} token of '{name}' is revoked already"
                )));
            }
            1 => tokens.remove(0),
            _ => {
                let roles: Vec<&str> = tokens.iter().map(|t| t.role.as_str()).collect();
                return Err(StoreError::Conflict(format!(
                    "'{name}' holds tokens for several roles ({}); name the role to revoke",
                    roles.join(", ")
                )));
            }
        };
        let revoked_at = to_micros(self.now());
        sqlx::query(
            "UPDATE ui_sessions SET ended_at = $1 WHERE ended_at IS NULL AND token_id IN \
             (SELECT token_id FROM api_tokens WHERE name = $2 AND role = $3 AND revoked_at IS NULL)",
        )
        .bind(revoked_at)
        .bind(name)
        .bind(record.role.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND role = $3 AND revoked_at IS NULL",
        )
        .bind(revoked_at)
        .bind(name)
        .bind(record.role.as_str())
        .execute(&mut *tx)
        .await?;
        self.append_audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "token.revoke",
                target: format!("token:{name}"),
                details: serde_json::json!({ "role": record.role }),
            },
        )
        .await?;
        tx.commit().await?;
        record.revoked_at = Some(from_micros(revoked_at));
        Ok(record)
    }
}
/// The credentials read so far (SQLite only, see `cache.rs`): a revocation
/// makes every entry stale.
#[derive(Default)]
pub(crate) struct Credentials(Generational<String, StoredCredential>);

impl Credentials {
    /// The stored hash and role of the token with public id `token_id`.
    pub(crate) async fn get(
        &self,
        core: &Core,
        token_id: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        let generation = core.generation.current();
        if let Some(found) = self.0.get(generation, &token_id.to_owned()) {
            return Ok(Some(found));
        }
        let row = sqlx::query(
            "SELECT name, role, secret_hash, revoked_at FROM api_tokens WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(&core.reader)
        .await?;
        let found = row
            .map(|row| {
                Ok::<_, StoreError>(StoredCredential {
                    name: row.try_get("name")?,
                    role: parse_role(&row)?,
                    secret_hash: row.try_get("secret_hash")?,
                    revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                })
            })
            .transpose()?;
        if let Some(found) = &found {
            self.0.put(generation, token_id.to_owned(), found.clone());
        }
        Ok(found)
    }
}

fn parse_role(row: &AnyRow) -> Result<Role, StoreError> {
    let role: String = row.try_get("role")?;
    role.parse()
        .map_err(|_| crate::error::corrupt("api_tokens.role"))
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        name: row.try_get("name")?,
        role: parse_role(row)?,
        created_at: from_micros(row.try_get("created_at")?),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros),
    })
}
