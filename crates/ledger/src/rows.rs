//! Row mapping: a stored row as the ledger's types.

use serde_json::Value;

use crate::db::Row;
use crate::error::LedgerError;
use crate::stored_json::StoredJson;
use crate::types::{AttemptRow, Record, Resolution, Status};

pub(crate) fn to_u32(column: &str, v: i64) -> Result<u32, LedgerError> {
    u32::try_from(v).map_err(|_| LedgerError::Corrupt(format!("column {column}: {v} is out of range")))
}

pub(crate) fn to_u16(column: &str, v: i64) -> Result<u16, LedgerError> {
    u16::try_from(v).map_err(|_| LedgerError::Corrupt(format!("column {column}: {v} is out of range")))
}

pub(crate) fn records_by_age(rows: Vec<Row>) -> Result<Vec<Record>, LedgerError> {
    // RETURNING gives no order.
    let mut records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
    records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(records)
}

pub(crate) fn record_from_row(row: &Row) -> Result<Record, LedgerError> {
    record_from_written_row(row, Written::default())
}

/// JSON columns the statement that returned a row has just written, taken as given rather than
/// parsed back from the row (a provider's answer is the bulk of a record: parsing it again
/// cost more than the copy). `Some(value)`: written (`Value::Null` for SQL NULL, as the ledger
/// stores a JSON null); `None`: read from the row.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub(crate) request: Option<Value>,
    pub(crate) metadata: Option<Value>,
    pub(crate) error: Option<Value>,
    /// `Some(None)`: written as SQL NULL.
    pub(crate) upstream: Option<Option<StoredJson>>,
}

/// The column as it reads back: given, or parsed from the row.
fn written_json(row: &Row, column: &str, given: Option<Value>) -> Result<Option<Value>, LedgerError> {
    match given {
        Some(value) => Ok(Some(value).filter(|v| !v.is_null())),
        None => row.opt_json(column),
    }
}

/// A record from a row, with the JSON columns `written` holds taken as given.
pub(crate) fn record_from_written_row(row: &Row, written: Written) -> Result<Record, LedgerError> {
    let status = row.text("status")?;
    Ok(Record {
        id: row.text("id")?,
        client: row.text("client")?,
        provider: row.text("provider")?,
        account: row.text("account")?,
        reference: row.text("reference")?,
        status: Status::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("status {status:?}")))?,
        idempotency_key: row.opt_text("idempotency_key")?,
        fingerprint: row.text("fingerprint")?,
        request: Row::required("request", written_json(row, "request", written.request)?)?,
        metadata: Row::required("metadata", written_json(row, "metadata", written.metadata)?)?,
        attempts: to_u32("attempts", row.int("attempts")?)?,
        ambiguous: row.bool("ambiguous")?,
        cancelled_at: row.opt_time("cancelled_at")?,
        error: written_json(row, "error", written.error)?,
        upstream: match written.upstream {
            Some(given) => given,
            None => row.opt_stored_json("upstream")?,
        },
        http_status: row.opt_int("http_status")?.map(|v| to_u16("http_status", v)).transpose()?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_time("lease_until")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        batch_id: row.opt_text("batch_id")?,
        resolution: resolution_from_row(row)?,
        round_start: to_u32("round_start", row.int("round_start")?)?,
        rechecks: to_u32("rechecks", row.int("rechecks")?)?,
        recheck_at: row.opt_time("recheck_at")?,
    })
}

pub(crate) fn resolution_from_row(row: &Row) -> Result<Option<Resolution>, LedgerError> {
    let Some(status) = row.opt_text("resolution_status")? else { return Ok(None) };
    let missing = |column: &str| LedgerError::Corrupt(format!("a resolution without {column}"));
    Ok(Some(Resolution {
        by: row.opt_text("resolution_by")?.ok_or_else(|| missing("resolution_by"))?,
        at: row.opt_time("resolution_at")?.ok_or_else(|| missing("resolution_at"))?,
        note: row.opt_text("resolution_note")?.ok_or_else(|| missing("resolution_note"))?,
        status: Status::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("resolution_status {status:?}")))?,
    }))
}

pub(crate) fn attempt_from_row(row: &Row) -> Result<AttemptRow, LedgerError> {
    Ok(AttemptRow {
        n: to_u32("n", row.int("n")?)?,
        owner: row.text("owner")?,
        started_at: row.time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        latency_ms: row
            .opt_int("latency_ms")?
            .map(|v| u64::try_from(v).map_err(|_| LedgerError::Corrupt(format!("column latency_ms: {v}"))))
            .transpose()?,
        outcome: row.text("outcome")?,
        http_status: row.opt_int("http_status")?.map(|v| to_u16("http_status", v)).transpose()?,
        body: row.opt_json("body")?,
        error: row.opt_text("error")?,
    })
}
