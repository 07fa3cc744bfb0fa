//! Storage edge: every read and write of the lake goes through a [`Lake`], a location (local
//! folder, `file://`, `s3://`, `gs://`, `az://`, `memory://`) opened as an object store.
//!
//! The pipeline's stages never touch storage; only `read` (input) and `publish` (output) call
//! into this module. The API is blocking: the job is a batch process and each call waits on a
//! small private tokio runtime.
//!
//! Requests to cloud stores are retried by object_store's client under an explicit
//! [`RetryConfig`] built from the job file's `[storage]` section ([`StorageSection`]): transient
//! errors (5xx such as 503 Slow Down, 429, 408, connections refused or closed before the
//! answer) are retried
//! with exponential backoff; anything else, or a request still failing when its retries or its
//! time run out, is returned as [`Error::Storage`] and ends the run.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use crate::config::StorageSection;
use crate::error::{Error, Result};

/// The object_store retry policy of a `[storage]` section.
pub fn retry_config(storage: &StorageSection) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(storage.initial_backoff_ms),
            max_backoff: Duration::from_millis(storage.max_backoff_ms),
            base: 2.0,
        },
        max_retries: storage.max_retries as usize,
        retry_timeout: Duration::from_secs(storage.retry_timeout_secs),
    }
}

/// An opened lake location.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: String,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Bytes read from the store so far (whole objects and ranges), by this handle and its
    /// clones.
    fetched: Arc<AtomicU64>,
    /// The folder of a local location.
    local_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("url", &self.url).finish()
    }
}

/// Whether a location must exist already (input) or may be created (output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only input: a local folder must exist.
    Read,
    /// Output: a local folder is created if missing.
    Write,
}

impl Lake {
    /// Open a location given as a URL or a plain local path.
    ///
    /// Cloud credentials and endpoints come from the usual environment variables
    /// (`AWS_*`, e.g. `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for an S3-compatible store;
    /// `GOOGLE_*`; `AZURE_*`). Cloud requests are retried under the default `[storage]`
    /// policy; see [`Lake::open_with`].
    pub fn open(location: &str, access: Access) -> Result<Lake> {
        Lake::open_with(location, access, &StorageSection::default())
    }

    /// [`Lake::open`], retrying failed cloud requests as `storage` says.
    pub fn open_with(location: &str, access: Access, storage: &StorageSection) -> Result<Lake> {
        let retry = retry_config(storage);
        let scheme = location
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let mut local_root = None;
        let (store, prefix): (Arc<dyn ObjectStore>, Option<String>) = match scheme.as_deref() {
            None | Some("file") => {
                let path = location.strip_prefix("file://").unwrap_or(location);
                let path = std::path::Path::new(path);
                if !path.exists() {
                    match access {
                        Access::Read => {
                            return Err(Error::Usage(format!(
                                "input location {location} does not exist"
                            )))
                        }
                        Access::Write => std::fs::create_dir_all(path)?,
                    }
                }
                let store = LocalFileSystem::new_with_prefix(path)?;
                local_root = Some(path.canonicalize()?);
                (Arc::new(store), None)
            }
            Some("memory") => (Arc::new(InMemory::new()), None),
            Some("s3") | Some("s3a") => {
                let store = AmazonS3Builder::from_env()
                    .with_url(location)
                    .with_retry(retry)
                    .build()?;
                (Arc::new(store), url_path(location))
            }
            Some("gs") => {
                let store = GoogleCloudStorageBuilder::from_env()
                    .with_url(location)
                    .with_retry(retry)
                    .build()?;
                (Arc::new(store), url_path(location))
            }
            Some("az") | Some("abfs") | Some("abfss") => {
                let store = MicrosoftAzureBuilder::from_env()
                    .with_url(location)
                    .with_retry(retry)
                    .build()?;
                (Arc::new(store), url_path(location))
            }
            Some(other) => {
                return Err(Error::Usage(format!(
                    "location {location}: unsupported scheme `{other}` \
                     (expected a path, file://, s3://, gs://, az:// or memory://)"
                )))
            }
        };
        let store: Arc<dyn ObjectStore> = match prefix {
            Some(p) if !p.is_empty() => Arc::new(PrefixStore::new(store, Path::from(p))),
            _ => store,
        };
        let mut lake = Lake::from_store(store, location);
        lake.local_root = local_root;
        Ok(lake)
    }

    /// Wrap an existing store (tests use [`InMemory`]).
    pub fn from_store(store: Arc<dyn ObjectStore>, url: &str) -> Lake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Lake {
            store,
            url: url.to_string(),
            runtime: Arc::new(runtime),
            fetched: Arc::new(AtomicU64::new(0)),
            local_root: None,
        }
    }

    /// The location as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every object under `prefix` (relative, `/`-separated), as relative paths, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let prefix = Path::from(prefix);
        let store = self.store.clone();
        let mut items: Vec<(String, u64)> = self.runtime.block_on(async move {
            store
                .list(Some(&prefix))
                .map_ok(|m| (m.location.to_string(), m.size))
                .try_collect()
                .await
        })?;
        items.sort();
        Ok(items)
    }

    /// Read a whole object.
    pub fn get(&self, path: &str) -> Result<Bytes> {
        let path = Path::from(path);
        let store = self.store.clone();
        let bytes = self
            .runtime
            .block_on(async move { store.get(&path).await?.bytes().await })?;
        self.fetched
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Read byte ranges of an object: one ranged request per range, sent together. (Not
    /// `ObjectStore::get_ranges`, which coalesces ranges less than 1 MiB apart into one
    /// request and so reads the gaps too.)
    pub fn get_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = Path::from(path);
        let store = self.store.clone();
        let ranges = ranges.to_vec();
        let parts = self.runtime.block_on(async move {
            futures::future::try_join_all(ranges.into_iter().map(|r| {
                let (store, path) = (store.clone(), path.clone());
                async move { store.get_range(&path, r).await }
            }))
            .await
        })?;
        let n: usize = parts.iter().map(Bytes::len).sum();
        self.fetched.fetch_add(n as u64, Ordering::Relaxed);
        Ok(parts)
    }

    /// Read one byte range of an object.
    pub fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        Ok(self
            .get_ranges(path, std::slice::from_ref(&range))?
            .remove(0))
    }

    /// Bytes read from the store so far by this handle (and its clones): whole objects and
    /// ranges.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Read a whole object, or `None` if it does not exist.
    pub fn get_opt(&self, path: &str) -> Result<Option<Bytes>> {
        match self.get(path) {
            Ok(b) => Ok(Some(b)),
            Err(Error::Storage(object_store::Error::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write (or overwrite) an object atomically.
    pub fn put(&self, path: &str, data: Bytes) -> Result<()> {
        let path = Path::from(path);
        let store = self.store.clone();
        self.runtime
            .block_on(async move { store.put(&path, PutPayload::from(data)).await })?;
        Ok(())
    }

    /// A writer of one object whose bytes are handed over as they are made: held in memory up
    /// to [`STREAM_BUFFER`] bytes and put in one request, or, once bigger, uploaded in parts
    /// of that size (a multipart upload on object stores, a staging file renamed at the end on
    /// local disk), so a big file is never whole in memory. Nothing is visible at `path` until
    /// [`ObjectWriter::finish`]; a writer dropped unfinished aborts its upload.
    pub fn writer(&self, path: &str) -> ObjectWriter {
        ObjectWriter {
            runtime: self.runtime.clone(),
            inner: Some(object_store::buffered::BufWriter::with_capacity(
                self.store.clone(),
                Path::from(path),
                STREAM_BUFFER,
            )),
            written: 0,
            path: path.to_string(),
            failure: None,
        }
    }

    /// Write an object that must not exist yet (markers).
    pub fn put_new(&self, path: &str, data: Bytes) -> Result<()> {
        let path = Path::from(path);
        let store = self.store.clone();
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.runtime
            .block_on(async move { store.put_opts(&path, PutPayload::from(data), opts).await })?;
        Ok(())
    }

    /// Delete one object; a missing object is not an error.
    pub fn delete(&self, path: &str) -> Result<()> {
        let path = Path::from(path);
        let store = self.store.clone();
        match self
            .runtime
            .block_on(async move { store.delete(&path).await })
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete every object under `prefix`.
    pub fn delete_prefix(&self, prefix: &str) -> Result<()> {
        for (path, _) in self.list(prefix)? {
            self.delete(&path)?;
        }
        // A local folder may also hold a half-written file of a killed run (object_store
        // writes `name#N`, then renames it; listings skip such files): remove the folder.
        if let Some(root) = &self.local_root {
            let dir = root.join(prefix);
            if dir.starts_with(root) && dir != *root {
                match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// The key prefix of a bucket URL: `s3://bucket/a/b` → `a/b`.
fn url_path(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    let p = url.path().trim_matches('/');
    Some(p.to_string())
}

/// Bytes [`Lake::writer`] holds before it uploads in parts (and the size of each part).
pub const STREAM_BUFFER: usize = 16 << 20;

/// See [`Lake::writer`]. Implements [`std::io::Write`], for encoders that write as they go.
pub struct ObjectWriter {
    runtime: Arc<tokio::runtime::Runtime>,
    inner: Option<object_store::buffered::BufWriter>,
    written: u64,
    path: String,
    /// The store's error, when an upload failed (the encoder writing to this sees an
    /// `io::Error`; the run reports this one, which names the object and the store's answer).
    failure: Option<object_store::Error>,
}

impl ObjectWriter {
    /// Complete the object: from here on it is visible whole at its path. Returns its size.
    pub fn finish(mut self) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let mut inner = self.inner.take().expect("a writer is finished once");
        if let Err(e) = self.runtime.block_on(async move { inner.shutdown().await }) {
            let e = self.keep(e);
            return Err(self.failure.take().map_or_else(|| e.into(), Error::Storage));
        }
        Ok(self.written)
    }

    /// The store's error of a failed upload, once (kept when a write or `finish` failed).
    pub fn take_failure(&mut self) -> Option<object_store::Error> {
        self.failure.take()
    }

    /// Keep the store's error inside `e`, if it is one, and name the object in what is left.
    fn keep(&mut self, e: std::io::Error) -> std::io::Error {
        let kind = e.kind();
        match e.into_inner().map(|b| b.downcast::<object_store::Error>()) {
            Some(Ok(store)) => {
                let message = format!("writing {}: {store}", self.path);
                self.failure = Some(*store);
                std::io::Error::new(kind, message)
            }
            Some(Err(other)) => {
                std::io::Error::new(kind, format!("writing {}: {other}", self.path))
            }
            None => std::io::Error::new(kind, format!("writing {}", self.path)),
        }
    }
}

impl std::io::Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        let inner = self.inner.as_mut().expect("not written after finish");
        if let Err(e) = self.runtime.block_on(inner.write_all(buf)) {
            return Err(self.keep(e));
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Parts are uploaded as they fill; the rest goes at `finish`.
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(mut inner) = self.inner.take() {
            // An unfinished upload leaves nothing behind (best effort: the run is failing).
            let _ = self.runtime.block_on(async move { inner.abort().await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_object_appears_whole_at_finish_and_not_before() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().to_str().unwrap().to_string();
        for location in ["memory://", local.as_str()] {
            let lake = Lake::open(location, Access::Write).unwrap();
            // Small: one put. Big: uploaded in parts of STREAM_BUFFER bytes.
            for size in [1_000usize, STREAM_BUFFER * 2 + 12_345] {
                let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
                let path = format!("t/{size}.bin");
                let mut w = lake.writer(&path);
                for chunk in data.chunks(1 << 19) {
                    w.write_all(chunk).unwrap();
                }
                assert!(
                    lake.get_opt(&path).unwrap().is_none(),
                    "{location}: not before finish"
                );
                assert_eq!(w.finish().unwrap(), size as u64);
                assert_eq!(
                    lake.get(&path).unwrap().as_ref(),
                    data.as_slice(),
                    "{location}"
                );
            }
            // A writer dropped unfinished leaves nothing.
            let mut w = lake.writer("t/abandoned.bin");
            w.write_all(&vec![7u8; STREAM_BUFFER + 1]).unwrap();
            drop(w);
            assert!(
                lake.get_opt("t/abandoned.bin").unwrap().is_none(),
                "{location}"
            );
        }
    }

    #[test]
    fn retry_policy_follows_the_storage_section() {
        let r = retry_config(&StorageSection::default());
        assert_eq!(r.max_retries, 10);
        assert_eq!(r.retry_timeout, Duration::from_secs(180));
        assert_eq!(r.backoff.init_backoff, Duration::from_millis(100));
        assert_eq!(r.backoff.max_backoff, Duration::from_secs(15));
        let r = retry_config(&StorageSection {
            max_retries: 2,
            retry_timeout_secs: 5,
            initial_backoff_ms: 10,
            max_backoff_ms: 40,
        });
        assert_eq!(r.max_retries, 2);
        assert_eq!(r.retry_timeout, Duration::from_secs(5));
        assert_eq!(r.backoff.init_backoff, Duration::from_millis(10));
        assert_eq!(r.backoff.max_backoff, Duration::from_millis(40));
    }

    #[test]
    fn bucket_prefix_is_the_url_path() {
        assert_eq!(url_path("s3://bucket/a/b/").as_deref(), Some("a/b"));
        assert_eq!(url_path("s3://bucket").as_deref(), Some(""));
    }

    #[test]
    fn memory_lake_round_trips_and_markers_are_written_once() {
        let lake = Lake::open("memory://", Access::Write).unwrap();
        lake.put("runs/x/a.txt", Bytes::from_static(b"1")).unwrap();
        assert_eq!(lake.get("runs/x/a.txt").unwrap(), Bytes::from_static(b"1"));
        lake.put_new("runs/x/_SUCCESS", Bytes::new()).unwrap();
        assert!(lake.put_new("runs/x/_SUCCESS", Bytes::new()).is_err());
        assert_eq!(lake.list("runs").unwrap().len(), 2);
        lake.delete_prefix("runs/x").unwrap();
        assert!(lake.list("runs").unwrap().is_empty());
        assert!(lake.get_opt("nope").unwrap().is_none());
    }

    #[test]
    fn deleting_a_local_prefix_removes_half_written_files_too() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), Access::Write).unwrap();
        lake.put("runs/x/t/part-00000.parquet", Bytes::from_static(b"1"))
            .unwrap();
        lake.put("runs/y/keep.txt", Bytes::from_static(b"2"))
            .unwrap();
        // What a run killed in the middle of a write leaves: listings do not show it.
        let staging = dir.path().join("runs/x/t/part-00000.parquet#1");
        std::fs::write(&staging, b"half").unwrap();
        assert_eq!(lake.list("runs/x").unwrap().len(), 1);
        lake.delete_prefix("runs/x").unwrap();
        assert!(!staging.exists());
        assert!(!dir.path().join("runs/x").exists());
        assert_eq!(
            lake.get("runs/y/keep.txt").unwrap(),
            Bytes::from_static(b"2")
        );
        lake.delete_prefix("runs/x").unwrap(); // nothing left: not an error
    }
}
