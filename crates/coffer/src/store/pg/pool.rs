//! The connection pool of a PostgreSQL store, and statements run through each connection's
//! cache of prepared statements.

use std::cell::RefCell;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use super::{POOL_SIZE, pg_error};
use crate::HashMap;
use crate::error::Result;

/// One pooled connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) statements: HashMap<String, Statement>,
    /// When it was last given back to the pool.
    pub(super) used: std::time::Instant,
}

/// A small pool: connections are made on demand, kept when healthy, at most [`POOL_SIZE`] in
/// use at once (callers past that wait).
pub(super) struct Pool {
    pub(super) config: postgres::Config,
    pub(super) tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    pub(super) idle: Mutex<(Vec<Conn>, usize)>,
    pub(super) freed: Condvar,
    /// `SET` statements each new connection runs (search path, lock timeout).
    pub(super) setup: String,
}

impl Pool {
    pub(super) fn connect(&self) -> Result<Conn> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
        .map_err(pg_error)?;
        client.batch_execute(&self.setup).map_err(pg_error)?;
        Ok(Conn {
            client,
            statements: HashMap::default(),
            used: std::time::Instant::now(),
        })
    }

    pub(super) fn get(&self) -> Result<Pooled<'_>> {
        loop {
            let mut guard = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while guard.0.is_empty() && guard.1 >= POOL_SIZE {
                guard = self
                    .freed
                    .wait(guard)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            guard.1 += 1;
            let idle = guard.0.pop();
            drop(guard);
            let mut pooled = Pooled {
                pool: self,
                conn: None,
            };
            match idle {
                // A connection idle for a while may have been closed by a server restart or
                // a proxy: one round trip tells, so that the caller's statement does not fail
                // on a connection the pool could have replaced.
                Some(mut conn) => {
                    let stale = conn.used.elapsed() > Duration::from_secs(1)
                        && conn.client.is_valid(Duration::from_secs(2)).is_err();
                    if conn.client.is_closed() || stale {
                        continue; // `pooled` gives its place back when dropped
                    }
                    conn.used = std::time::Instant::now();
                    pooled.conn = Some(conn);
                }
                None => pooled.conn = Some(self.connect()?),
            }
            return Ok(pooled);
        }
    }

    pub(super) fn release(&self, conn: Option<Conn>) {
        let mut guard = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.1 -= 1;
        if let Some(mut conn) = conn.filter(|c| !c.client.is_closed()) {
            conn.used = std::time::Instant::now();
            guard.0.push(conn);
        }
        drop(guard);
        self.freed.notify_one();
    }
}

/// A connection taken from the pool, given back when dropped (unless it broke).
pub(super) struct Pooled<'a> {
    pub(super) pool: &'a Pool,
    pub(super) conn: Option<Conn>,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        self.pool.release(self.conn.take());
    }
}

impl Pooled<'_> {
    pub(super) fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

/// Runs statements through one connection's cache of prepared statements.
pub(super) struct Exec<'c, 't> {
    pub(super) tx: RefCell<postgres::Transaction<'t>>,
    pub(super) statements: RefCell<&'c mut HashMap<String, Statement>>,
}

impl Exec<'_, '_> {
    pub(super) fn statement(&self, sql: &str) -> Result<Statement> {
        let mut statements = self.statements.borrow_mut();
        if let Some(st) = statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.borrow_mut().prepare(sql).map_err(pg_error)?;
        statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub(super) fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        self.tx.borrow_mut().query(&st, params).map_err(pg_error)
    }

    pub(super) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let st = self.statement(sql)?;
        self.tx
            .borrow_mut()
            .query_opt(&st, params)
            .map_err(pg_error)
    }

    pub(super) fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let st = self.statement(sql)?;
        self.tx
            .borrow_mut()
            .query_one(&st, params)
            .map_err(pg_error)
    }

    pub(super) fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let st = self.statement(sql)?;
        self.tx.borrow_mut().execute(&st, params).map_err(pg_error)
    }

    pub(super) fn commit(self) -> Result<()> {
        self.tx.into_inner().commit().map_err(pg_error)
    }
}
