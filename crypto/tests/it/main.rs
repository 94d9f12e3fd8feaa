//! Integration tests for `blindsight-crypto`: one test binary, so the (slow) key set is
//! generated once per process and shared.

mod common;
mod compute;
mod decoders;
mod envelope;
mod fixtures;
mod keys;
mod keystore;
mod lane;
mod records;
mod seal;
mod tasks;
