//! Throw-away PostgreSQL databases on the server of
//! `PATCHFLEET_TEST_POSTGRES_URL` (made by `scripts/pg`), for the server's
//! and the agent's tests (the agent's include this file by path).

use sqlx::Connection;

pub const PG_ENV: &str = "PATCHFLEET_TEST_POSTGRES_URL";

/// A fresh database named `<prefix>_<random>`: (admin URL, name, URL).
/// A missing `PATCHFLEET_TEST_POSTGRES_URL` fails the test, never skips it.
pub async fn create_pg_database(prefix: &str) -> (String, String, String) {
    let admin_url = std::env::var(PG_ENV).unwrap_or_else(|_| {
        panic!(
            "{PG_ENV} is not set: the PostgreSQL tests need a PostgreSQL server. Run \
             ./scripts/test, or `eval \"$(scripts/pg start)\"` before cargo test (and \
             `scripts/pg stop \"$PATCHFLEET_PG_DIR\"` after)"
        )
    });
    let name = format!("{prefix}_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_ENV}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let base = admin_url.split('?').next().unwrap();
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    (admin_url, name, url)
}

/// Drops a database [`create_pg_database`] made.
pub async fn drop_pg_database(admin_url: &str, name: &str) {
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}
