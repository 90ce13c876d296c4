//! [`WholeStore`] on PostgreSQL: the summary, and the dump and load that `store::copy` uses.

use postgres::types::ToSql;

use super::{PgStore, summary};
use crate::error::{Error, Result};
use crate::store::*;

impl WholeStore for PgStore {
    fn summary(&self) -> Result<StoreSummary> {
        self.read(summary)
    }

    fn dump(&self) -> Result<Vec<TableRows>> {
        use postgres::types::Type;
        self.read(|x| {
            let mut out = Vec::with_capacity(TABLES.len());
            for (table, columns) in TABLES {
                let rows = x.query(
                    &format!("SELECT {} FROM {table} ORDER BY 1, 2", columns.join(", ")),
                    &[],
                )?;
                let rows = rows
                    .iter()
                    .map(|r| {
                        r.columns()
                            .iter()
                            .enumerate()
                            .map(|(i, c)| match *c.type_() {
                                Type::INT8 => r.get::<_, Option<i64>>(i).map(Cell::Int),
                                Type::BYTEA => r.get::<_, Option<Vec<u8>>>(i).map(Cell::Blob),
                                _ => r.get::<_, Option<String>>(i).map(Cell::Text),
                            })
                            .map(|c| c.unwrap_or(Cell::Null))
                            .collect()
                    })
                    .collect();
                out.push(TableRows { table, rows });
            }
            Ok(out)
        })
    }

    fn load(&self, tables: &[TableRows]) -> Result<()> {
        use postgres::types::Type;
        self.write_with(None, |x| {
            let used: i64 = x
                .query_one(
                    "SELECT (SELECT count(*) FROM keyring) + (SELECT count(*) FROM audit)",
                    &[],
                )?
                .get(0);
            refuse_unless_new(used)?;
            for t in tables {
                let columns = columns_of(t.table)?;
                let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let conflict = if t.table == "meta" {
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                } else {
                    ""
                };
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES ({}){conflict}",
                    t.table,
                    columns.join(", "),
                    marks.join(", ")
                );
                let st = x.statement(&sql)?;
                let types = st.params().to_vec();
                for row in &t.rows {
                    if is_own_meta(t.table, row) {
                        continue;
                    }
                    let values: Vec<Box<dyn ToSql + Sync>> = row
                        .iter()
                        .zip(&types)
                        .map(|(c, ty)| -> Box<dyn ToSql + Sync> {
                            match (c, ty) {
                                (Cell::Int(v), _) => Box::new(*v),
                                (Cell::Text(v), _) => Box::new(v.clone()),
                                (Cell::Blob(v), _) => Box::new(v.clone()),
                                (Cell::Null, &Type::INT8) => Box::new(None::<i64>),
                                (Cell::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
                                (Cell::Null, _) => Box::new(None::<String>),
                            }
                        })
                        .collect();
                    let params: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|b| b.as_ref()).collect();
                    x.execute(&sql, &params)?;
                }
                if columns.first() == Some(&"id") {
                    // Serial ids were copied as they are: the next one follows the largest.
                    x.query(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{0}', 'id'), coalesce(max(id), 0) + 1, false) FROM {0}",
                            t.table
                        ),
                        &[],
                    )?;
                }
            }
            Ok(Some(()))
        })?;
        Ok(())
    }

    fn backup_to(&self, _path: &Path) -> Result<StoreSummary> {
        Err(Error::Unsupported {
            what: format!(
                "Coffer's own backups are of SQLite stores; back up {} with PostgreSQL's tools \
                 (pg_dump, base backups), or copy it to an SQLite store with `coffer store copy`",
                self.shown
            ),
        })
    }
}
