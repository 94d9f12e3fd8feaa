//! The server's API, in-process over SQLite and (when `BLINDSIGHT_TEST_POSTGRES_URL` is set)
//! PostgreSQL: one suite, both backends.

mod audit;
mod basics;
mod common;
mod compute;
#[cfg(target_os = "linux")]
mod connections;
mod docs;
mod events;
#[cfg(unix)]
mod files;
mod flows;
mod freshness;
mod jobs;
mod lane;
mod limits;
mod logs;
mod negative;
mod processes;
mod storage;
mod tasks;
mod verify;
