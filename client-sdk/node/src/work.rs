//! Work that runs on libuv's thread pool: every network call, proof, key generation and
//! decryption goes through [`Work`], so the JavaScript thread only starts it and receives
//! the result (a promise). What comes back is JSON text (`index.js` parses it) or bytes (a
//! `Buffer`).

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};

use crate::errors::Failure;

type Job<T> = Box<dyn FnOnce() -> Result<T, Failure> + Send>;

/// One piece of work for the thread pool, run once.
pub struct Work<T> {
    job: Option<Job<T>>,
}

/// A promise of JSON text.
pub(crate) type JsonTask = AsyncTask<Work<String>>;
/// A promise of a `Buffer`.
pub(crate) type BytesTask = AsyncTask<Work<Vec<u8>>>;

/// Runs `f` on the thread pool; its value serialized as JSON text.
pub(crate) fn json<T, F>(f: F) -> JsonTask
where
    T: serde::Serialize,
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
{
    AsyncTask::new(Work {
        job: Some(Box::new(move || {
            let value = f()?;
            serde_json::to_string(&value)
                .map_err(|e| Failure::other(format!("couldn't convert a result to JSON: {e}")))
        })),
    })
}

/// Runs `f` on the thread pool; its bytes become a `Buffer`.
pub(crate) fn bytes<F>(f: F) -> BytesTask
where
    F: FnOnce() -> Result<Vec<u8>, Failure> + Send + 'static,
{
    AsyncTask::new(Work {
        job: Some(Box::new(f)),
    })
}

impl<T: Send + 'static> Work<T> {
    fn run(&mut self) -> napi::Result<T> {
        let job = self
            .job
            .take()
            .ok_or_else(|| napi::Error::from_reason("this work already ran"))?;
        job().map_err(napi::Error::from)
    }
}

impl Task for Work<String> {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        self.run()
    }

    fn resolve(&mut self, _env: Env, output: String) -> napi::Result<String> {
        Ok(output)
    }
}

impl Task for Work<Vec<u8>> {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> napi::Result<Vec<u8>> {
        self.run()
    }

    fn resolve(&mut self, _env: Env, output: Vec<u8>) -> napi::Result<Buffer> {
        Ok(output.into())
    }
}
