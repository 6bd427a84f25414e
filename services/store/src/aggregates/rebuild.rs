//! The aggregates recomputed from the raw assignments and events, in one
//! SQL definition per table: what builds them for rows stored before
//! migration 0018, what `pilotgate aggregates rebuild` writes, and what
//! [`Core::aggregate_drift`] compares the maintained rows with.

use pilotgate_domain::experiment::MetricKind;
use sqlx::AnyConnection;
use sqlx::Row;

use super::{DAY_MICROS, Measures, TABLES, Table, measures_of, metric_key};
use crate::core::Core;
use crate::db::{Value, bound};
use crate::error::StoreError;

/// Every subject's outcome per metric of the pilot `$1`, from its events
/// under the attribution rules, as `(experiment_key, subject, metric, y)`;
/// each metric's parameters follow from `$2`.
fn subject_outcomes_sql(measures: &Measures) -> (String, Vec<Value>) {
    if measures.metrics.is_empty() {
        return (
            "SELECT experiment_key, subject, '' AS metric, CAST(0 AS DOUBLE PRECISION) AS y \
             FROM assignments WHERE experiment_key = $1 AND 1 = 0"
                .to_owned(),
            Vec::new(),
        );
    }
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for (i, metric) in measures.metrics.iter().enumerate() {
        let (name, event, window) = (2 + 3 * i, 3 + 3 * i, 4 + 3 * i);
        let y = match metric.kind {
            MetricKind::Binary => {
                "CAST(CASE WHEN COUNT(*) > 0 THEN 1 ELSE 0 END AS DOUBLE PRECISION)"
            }
            MetricKind::Sum => {
                "CAST(COALESCE(SUM(COALESCE(e.value, 0.0)), 0.0) AS DOUBLE PRECISION)"
            }
        };
        parts.push(format!(
            "SELECT e.experiment_key AS experiment_key, e.subject AS subject, CAST(${name} AS TEXT) AS metric, {y} AS y \
             FROM events e JOIN assignments b ON b.experiment_key = e.experiment_key AND b.subject = e.subject \
             WHERE e.experiment_key = $1 AND e.name = ${event} AND e.occurred_at >= b.assigned_at \
               AND (CAST(${window} AS BIGINT) < 0 OR e.occurred_at < b.assigned_at + CAST(${window} AS BIGINT)) \
             GROUP BY e.experiment_key, e.subject"
        ));
        params.extend([
            Value::Text(metric_key(metric)),
            Value::Text(metric.event.clone()),
            Value::Integer(Some(measures.window_micros.unwrap_or(-1))),
        ]);
    }
    (parts.join(" UNION ALL "), params)
}

/// The rows of `table` for the pilot `$1` recomputed from the raw rows, as a
/// `SELECT` of the table's keys and values in order, and its parameters
/// after the pilot.
fn recomputed_sql(table: &Table, measures: &Measures) -> (String, Vec<Value>) {
    let d = DAY_MICROS;
    let (outcomes, params) = subject_outcomes_sql(measures);
    let kept = format!(
        "FROM ({outcomes}) o JOIN assignments a ON a.experiment_key = o.experiment_key AND a.subject = o.subject \
         WHERE a.experiment_key = $1 AND a.withdrawn_at IS NULL"
    );
    let sql = match table.name {
        "assignment_cells" => format!(
            "SELECT experiment_key, variant, assigned_at / {d}, basis, COALESCE(notice_version, 0), COALESCE(segments, ''), \
               COUNT(*), COUNT(withdrawn_at) FROM assignments WHERE experiment_key = $1 \
             GROUP BY experiment_key, variant, assigned_at / {d}, basis, COALESCE(notice_version, 0), COALESCE(segments, '')"
        ),
        "withdrawal_cells" => format!(
            "SELECT experiment_key, variant, withdrawn_at / {d}, \
               COUNT(CASE WHEN withdrawn_as = 'objected' THEN NULL ELSE 1 END), \
               COUNT(CASE WHEN withdrawn_as = 'objected' THEN 1 END) \
             FROM assignments WHERE experiment_key = $1 AND withdrawn_at IS NOT NULL \
             GROUP BY experiment_key, variant, withdrawn_at / {d}"
        ),
        "subject_outcomes" => {
            format!("SELECT experiment_key, subject, metric, y FROM ({outcomes}) o")
        }
        _ => format!(
            "SELECT a.experiment_key, o.metric, a.variant, a.assigned_at / {d}, a.basis, COALESCE(a.segments, ''), \
               SUM(o.y), SUM(o.y * o.y) {kept} \
             GROUP BY a.experiment_key, o.metric, a.variant, a.assigned_at / {d}, a.basis, COALESCE(a.segments, '')"
        ),
    };
    let params = if matches!(table.name, "assignment_cells" | "withdrawal_cells") {
        Vec::new()
    } else {
        params
    };
    (sql, params)
}

/// Replaces every aggregate row of the pilot `key` by its recomputation,
/// in `conn`'s write transaction.
async fn rebuild_pilot(
    conn: &mut AnyConnection,
    key: &str,
    measures: &Measures,
) -> Result<(), StoreError> {
    // The recomputation covers the queued events too.
    sqlx::query("DELETE FROM outcome_queue WHERE experiment_key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    for table in TABLES {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE experiment_key = $1",
            table.name
        ))
        .bind(key)
        .execute(&mut *conn)
        .await?;
        let (select, params) = recomputed_sql(table, measures);
        let sql = format!("INSERT INTO {} ({}) {select}", table.name, table.columns());
        let values = std::iter::once(Value::Text(key.to_owned()))
            .chain(params)
            .collect();
        bound(&sql, values).execute(&mut *conn).await?;
    }
    Ok(())
}

impl Core {
    /// Recomputes the aggregates of every pilot from the raw rows, in one
    /// write transaction (`pilotgate aggregates rebuild`). Returns how many
    /// pilots were rebuilt.
    pub async fn rebuild_aggregates(&self) -> Result<usize, StoreError> {
        let mut tx = self.begin_subject_write().await?;
        let measures = measures_of(&mut tx, None).await?;
        let mut keys: Vec<&String> = measures.keys().collect();
        keys.sort();
        for key in &keys {
            rebuild_pilot(&mut tx, key, &measures[*key]).await?;
        }
        sqlx::query("UPDATE aggregates_state SET rebuild_pending = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(keys.len())
    }

    /// Builds the aggregates of the rows stored before migration 0018, once
    /// (at the first start after it; another instance may have done it).
    pub async fn build_pending_aggregates(&self) -> Result<(), StoreError> {
        let pending: i64 =
            sqlx::query_scalar("SELECT rebuild_pending FROM aggregates_state WHERE id = 1")
                .fetch_one(&self.reader)
                .await?;
        if pending == 0 {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut tx = self.begin_subject_write().await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT rebuild_pending FROM aggregates_state WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        if pending == 0 {
            return Ok(());
        }
        let measures = measures_of(&mut tx, None).await?;
        for (key, measures) in &measures {
            rebuild_pilot(&mut tx, key, measures).await?;
        }
        sqlx::query("UPDATE aggregates_state SET rebuild_pending = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if measures.is_empty() {
            return Ok(());
        }
        tracing::info!(
            pilots = measures.len(),
            seconds = started.elapsed().as_secs_f64(),
            "built the results' aggregates of the rows stored before them"
        );
        Ok(())
    }

    /// Where the maintained aggregates of the pilot `key` (the queue folded
    /// first) differ from a recomputation from its raw rows: one line per row that differs
    /// (a row missing on one side counts as zeros; sums agree to 1e-9,
    /// relative). Empty when they agree.
    pub async fn aggregate_drift(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.fold_outcomes().await?;
        // One snapshot for both reads.
        let mut conn = self.reader.begin().await?;
        if self.dialect == crate::db::Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *conn)
                .await?;
        }
        let result = async {
            let keys = [key.to_owned()];
            let measures = measures_of(&mut *conn, Some(&keys))
                .await?
                .remove(key)
                .unwrap_or_default();
            let mut drift = Vec::new();
            for table in TABLES {
                let (recomputed, params) = recomputed_sql(table, &measures);
                let maintained = format!(
                    "SELECT {} FROM {} WHERE experiment_key = $1",
                    table.columns(),
                    table.name
                );
                let ours = rows_of(&mut conn, table, &maintained, key, Vec::new()).await?;
                let theirs = rows_of(&mut conn, table, &recomputed, key, params).await?;
                drift.extend(differences(table, &ours, &theirs));
            }
            Ok::<_, StoreError>(drift)
        }
        .await;
        conn.rollback().await?;
        result
    }
}

/// A table's rows by key (each key column as text), with their values.
type Rows = std::collections::BTreeMap<Vec<String>, Vec<f64>>;

/// The type a column of the aggregate tables is read as.
enum Column {
    Text,
    Integer,
    Real,
}

fn column(name: &str) -> Column {
    match name {
        "day" | "notice_version" | "assigned" | "withdrawn" | "objected" | "subjects" => {
            Column::Integer
        }
        "total" | "total_squares" | "y" => Column::Real,
        _ => Column::Text,
    }
}

/// The rows `select` yields (the table's keys, then its values), by key.
async fn rows_of(
    conn: &mut AnyConnection,
    table: &Table,
    select: &str,
    key: &str,
    params: Vec<Value>,
) -> Result<Rows, StoreError> {
    let values = std::iter::once(Value::Text(key.to_owned()))
        .chain(params)
        .collect();
    let mut rows = Rows::new();
    for row in bound(select, values).fetch_all(&mut *conn).await? {
        let mut keys = Vec::with_capacity(table.keys.len());
        for (i, name) in table.keys.iter().enumerate() {
            keys.push(match column(name) {
                Column::Text => row.try_get::<String, _>(i)?,
                Column::Integer => row.try_get::<i64, _>(i)?.to_string(),
                Column::Real => format!("{:?}", row.try_get::<f64, _>(i)?),
            });
        }
        let mut values = Vec::with_capacity(table.values.len());
        for (i, name) in table.values.iter().enumerate() {
            let at = table.keys.len() + i;
            values.push(match column(name) {
                Column::Real => row.try_get::<f64, _>(at)?,
                _ => row.try_get::<i64, _>(at)? as f64,
            });
        }
        rows.insert(keys, values);
    }
    Ok(rows)
}

fn differences(table: &Table, ours: &Rows, theirs: &Rows) -> Vec<String> {
    let zeros = vec![0.0; table.values.len()];
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    ours.keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|k| {
            let a = ours.get(k).unwrap_or(&zeros);
            let b = theirs.get(k).unwrap_or(&zeros);
            (!a.iter().zip(b).all(|(a, b)| close(*a, *b)))
                .then(|| format!("{} {k:?}: maintained {a:?}, recomputed {b:?}", table.name))
        })
        .collect()
}
