//! The SQL every Core entity shares: reading one row through an entity's view, paging a list, and the
//! INSERT / UPDATE / upsert a management route writes with (the caller has begun the mutation, so the database
//! audits the write). The column lists are the only SQL built per request; each entity's SELECT is its own
//! `.sql` file beside its store module.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use crate::db::{self, Filters};
use crate::db_errors;
use crate::envelope::{decode_cursor, page_from, page_limit, Page};
use crate::error::{ApiError, ApiResult, Entity, Operation};

pub type Param = Box<dyn ToSql + Sync + Send>;

/// How an entity is read: its table, the SELECT that produces its DTO columns (table alias `t`), and whether
/// it has a Space column and soft delete.
pub struct View {
    pub entity: Entity,
    pub table: &'static str,
    /// `SELECT ... FROM plystra.<table> t LEFT JOIN ...` without WHERE.
    pub select: &'static str,
    /// The SQL expression giving the row's Space in `select` (`t.space_id`, or a joined column).
    pub space_column: Option<&'static str>,
    pub soft_delete: bool,
    /// The list order and cursor key column (unique within a list), e.g. `t.id` or `t.path`.
    pub order_column: &'static str,
    pub default_limit: i64,
}

impl View {
    fn base_filters(&self) -> Filters {
        let mut f = Filters::default();
        if self.soft_delete {
            f.conditions.push("t.deleted_at IS NULL".into());
        }
        f
    }

    fn ordering(&self) -> String {
        format!("{}.{}", self.table, self.order_column)
    }

    /// One row by id (and Space, for Space-scoped routes); soft-deleted rows are not found.
    pub async fn fetch<C: GenericClient + Sync>(&self, client: &C, id: &str, space_id: Option<&str>) -> ApiResult<Row> {
        self.fetch_where(client, self.base_filters(), id, space_id).await
    }

    /// Like [`View::fetch`], soft-deleted rows included (a soft delete answers with the deleted row).
    pub async fn fetch_including_deleted<C: GenericClient + Sync>(
        &self,
        client: &C,
        id: &str,
        space_id: Option<&str>,
    ) -> ApiResult<Row> {
        self.fetch_where(client, Filters::default(), id, space_id).await
    }

    async fn fetch_where<C: GenericClient + Sync>(
        &self,
        client: &C,
        mut f: Filters,
        id: &str,
        space_id: Option<&str>,
    ) -> ApiResult<Row> {
        f.push("t.id = $", id.to_string());
        if let (Some(col), Some(space)) = (self.space_column, space_id) {
            f.push(&format!("{col} = $"), space.to_string());
        }
        let sql = format!("{} {}", self.select, f.where_clause());
        db::traced(&sql, client.query_opt(&sql, &f.refs()))
            .await
            .map_err(db_errors::read_error)?
            .ok_or_else(|| ApiError::not_found(self.entity))
    }

    /// One row matching `condition` (on the view's columns, `$1`... its `params`), or `<ENTITY>_NOT_FOUND`.
    pub async fn fetch_by<C: GenericClient + Sync>(
        &self,
        client: &C,
        condition: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> ApiResult<Row> {
        client
            .query_opt(&format!("{} WHERE {condition}", self.select), params)
            .await
            .map_err(db_errors::read_error)?
            .ok_or_else(|| ApiError::not_found(self.entity))
    }

    /// A page of rows matching `filters`, ordered by the view's order column, after the cursor.
    #[allow(clippy::too_many_arguments)] // each is a distinct part of a list request; a struct would only rename them
    pub async fn list<C: GenericClient + Sync, T>(
        &self,
        client: &C,
        mut filters: Filters,
        space_id: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
        map: impl Fn(&Row) -> T,
        key: impl Fn(&T) -> String,
    ) -> ApiResult<Page<T>> {
        let limit = page_limit(limit, self.default_limit);
        let ordering = self.ordering();
        if self.soft_delete {
            filters.conditions.insert(0, "t.deleted_at IS NULL".into());
        }
        if let (Some(col), Some(space)) = (self.space_column, space_id) {
            filters.push(&format!("{col} = $"), space.to_string());
        }
        if let Some(k) = decode_cursor(cursor, &ordering, 1)? {
            filters.push(&format!("{} > $", self.order_column), k[0].clone());
        }
        let sql =
            format!("{} {} ORDER BY {} LIMIT {}", self.select, filters.where_clause(), self.order_column, limit + 1);
        let rows = db::traced(&sql, client.query(&sql, &filters.refs())).await.map_err(db_errors::read_error)?;
        Ok(page_from(rows.iter().map(map).collect(), limit, &ordering, |item| vec![key(item)]))
    }
}

/// Columns to write, in order, with their values.
#[derive(Default)]
pub struct Columns {
    names: Vec<&'static str>,
    values: Vec<Param>,
}

impl Columns {
    pub fn set<T: ToSql + Sync + Send + 'static>(&mut self, name: &'static str, value: T) -> &mut Self {
        self.names.push(name);
        self.values.push(Box::new(value));
        self
    }

    /// Sets the column only when the request supplied a value.
    pub fn set_opt<T: ToSql + Sync + Send + 'static>(&mut self, name: &'static str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// Inserts a row; the caller has begun the mutation (acting context set).
pub async fn insert<C: GenericClient + Sync>(client: &C, view: &View, cols: &Columns, op: Operation) -> ApiResult<()> {
    let placeholders: Vec<String> = (1..=cols.names.len()).map(|i| format!("${i}")).collect();
    let sql =
        format!("INSERT INTO plystra.{} ({}) VALUES ({})", view.table, cols.names.join(", "), placeholders.join(", "));
    db::traced(&sql, client.execute(&sql, &cols.refs()))
        .await
        .map_err(|e| db_errors::write_error(e, view.entity, op))?;
    Ok(())
}

/// Updates one live row (by id, and Space when given); a missing row is `<ENTITY>_NOT_FOUND`. The view's
/// Space expression must be a column of the table itself (`t.space_id`).
pub async fn update<C: GenericClient + Sync>(
    client: &C,
    view: &View,
    id: &str,
    space_id: Option<&str>,
    cols: &Columns,
) -> ApiResult<()> {
    let mut assignments: Vec<String> =
        cols.names.iter().enumerate().map(|(i, n)| format!("{n} = ${}", i + 1)).collect();
    assignments.push("updated_at = now()".into());
    let mut refs = cols.refs();
    let id_param = format!("${}", refs.len() + 1);
    refs.push(&id);
    let mut sql = format!("UPDATE plystra.{} AS t SET {} WHERE t.id = {id_param}", view.table, assignments.join(", "));
    if view.soft_delete {
        sql.push_str(" AND t.deleted_at IS NULL");
    }
    let space_owned;
    if let (Some(col), Some(space)) = (view.space_column, space_id) {
        space_owned = space.to_string();
        refs.push(&space_owned);
        sql.push_str(&format!(" AND {col} = ${}", refs.len()));
    }
    let n = db::traced(&sql, client.execute(&sql, &refs))
        .await
        .map_err(|e| db_errors::write_error(e, view.entity, Operation::Update))?;
    if n == 0 {
        return Err(ApiError::not_found(view.entity));
    }
    Ok(())
}

/// Inserts or, when `conflict` columns match an existing row, updates the supplied columns (registry upserts,
/// re-granting a soft-deleted RolePermission). Returns the id of the row written.
pub async fn upsert<C: GenericClient + Sync>(
    client: &C,
    view: &View,
    cols: &Columns,
    conflict: &[&str],
    extra_on_update: &str,
    op: Operation,
) -> ApiResult<String> {
    let placeholders: Vec<String> = (1..=cols.names.len()).map(|i| format!("${i}")).collect();
    let mut updates: Vec<String> = cols
        .names
        .iter()
        .filter(|n| **n != "id" && !conflict.contains(n))
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    updates.push("updated_at = now()".into());
    if !extra_on_update.is_empty() {
        updates.push(extra_on_update.to_string());
    }
    let sql = format!(
        "INSERT INTO plystra.{table} AS t ({cols}) VALUES ({vals}) ON CONFLICT ({conflict}) DO UPDATE SET {updates} RETURNING t.id",
        table = view.table,
        cols = cols.names.join(", "),
        vals = placeholders.join(", "),
        conflict = conflict.join(", "),
        updates = updates.join(", "),
    );
    let row = db::traced(&sql, client.query_one(&sql, &cols.refs()))
        .await
        .map_err(|e| db_errors::write_error(e, view.entity, op))?;
    Ok(row.get(0))
}

/// Ends a mutation: reads the row back through the view (inside the transaction, so the answer is what was
/// committed) and commits.
pub async fn finish<T>(
    tx: deadpool_postgres::Transaction<'_>,
    view: &View,
    id: &str,
    space_id: Option<&str>,
    map: impl Fn(&Row) -> T,
) -> ApiResult<T> {
    let row = view.fetch(&*tx, id, space_id).await?;
    let dto = map(&row);
    tx.commit().await.map_err(db::internal)?;
    Ok(dto)
}

/// Space-scoped creations need their Space: a missing one is SPACE_NOT_FOUND, not a foreign-key conflict.
pub async fn require_space<C: GenericClient + Sync>(client: &C, space_id: &str) -> ApiResult<()> {
    let found = client.query_opt(crate::store::spaces::LIVE, &[&space_id]).await.map_err(db_errors::read_error)?;
    found.map(|_| ()).ok_or_else(|| ApiError::not_found(Entity::Space))
}
