//! Where FHE and proof work runs: off the async runtime, on blocking threads bounded by a
//! semaphore, with decoded key material cached per key set under a memory bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Runs CPU-heavy work (proof verification, key decoding, FHE evaluation) on blocking threads,
/// at most `workers` at once; callers beyond that wait in a queue whose depth is exported.
#[derive(Debug)]
pub struct FhePool {
    permits: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

/// Decrements a counter when dropped, so a caller that gives up (timeout, disconnect) while
/// queued is not counted for ever.
struct CountGuard(Arc<AtomicUsize>);

impl CountGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FhePool {
    /// A pool running at most `workers` jobs at once.
    pub fn new(workers: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            queued: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Runs `f` on a blocking thread once a worker slot is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = {
            let _queued = CountGuard::new(&self.queued);
            Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| ApiError::Internal("the FHE pool is closed".into()))?
        };
        let running = Arc::clone(&self.running);
        tokio::task::spawn_blocking(move || {
            let _running = CountGuard::new(&running);
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("an FHE task failed: {e}")))
    }

    /// Callers waiting for a worker slot.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

struct Entry<V> {
    value: Arc<V>,
    weight: u64,
    used: u64,
}

struct CacheInner<K, V> {
    map: HashMap<K, Entry<V>>,
    total: u64,
    clock: u64,
}

/// A least-recently-used cache bounded by the total weight (approximate bytes) of its values.
/// A value heavier than the whole bound is handed back but not kept.
pub struct WeightedCache<K, V> {
    inner: Mutex<CacheInner<K, V>>,
    max_weight: u64,
}

impl<K: Eq + Hash + Clone, V> std::fmt::Debug for WeightedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (len, weight) = self.stats();
        f.debug_struct("WeightedCache")
            .field("len", &len)
            .field("weight", &weight)
            .field("max_weight", &self.max_weight)
            .finish()
    }
}

impl<K: Eq + Hash + Clone, V> WeightedCache<K, V> {
    /// An empty cache holding at most `max_weight`.
    pub fn new(max_weight: u64) -> Self {
        Self {
            inner: Mutex::new(CacheInner {
                map: HashMap::new(),
                total: 0,
                clock: 0,
            }),
            max_weight,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner<K, V>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached value, marked as just used.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        inner.map.get_mut(key).map(|e| {
            e.used = clock;
            Arc::clone(&e.value)
        })
    }

    /// Caches `value`, evicting the least recently used entries to stay under the bound.
    pub fn insert(&self, key: K, value: Arc<V>, weight: u64) -> Arc<V> {
        if weight > self.max_weight {
            return value;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(&key) {
            inner.total -= old.weight;
        }
        while inner.total + weight > self.max_weight {
            let Some(victim) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.map.remove(&victim) {
                inner.total -= e.weight;
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.total += weight;
        inner.map.insert(
            key,
            Entry {
                value: Arc::clone(&value),
                weight,
                used,
            },
        );
        value
    }

    /// Drops an entry.
    pub fn remove(&self, key: &K) {
        let mut inner = self.lock();
        if let Some(e) = inner.map.remove(key) {
            inner.total -= e.weight;
        }
    }

    /// Entries held and their total weight.
    pub fn stats(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.map.len(), inner.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_evicts_least_recently_used_to_stay_under_its_bound() {
        let cache = WeightedCache::new(100);
        cache.insert("a", Arc::new(1), 40);
        cache.insert("b", Arc::new(2), 40);
        assert_eq!(cache.get(&"a").as_deref(), Some(&1));
        cache.insert("c", Arc::new(3), 40);
        // "b" was used least recently.
        assert!(cache.get(&"b").is_none());
        assert_eq!(cache.stats(), (2, 80));
        // Too heavy to keep, but handed back.
        assert_eq!(*cache.insert("d", Arc::new(4), 101), 4);
        assert!(cache.get(&"d").is_none());
        // Replacing a key does not count it twice.
        cache.insert("a", Arc::new(5), 50);
        assert_eq!(cache.stats(), (2, 90));
        cache.remove(&"a");
        assert_eq!(cache.stats(), (1, 40));
    }

    #[tokio::test]
    async fn the_pool_bounds_concurrency_and_counts_its_queue() {
        let pool = Arc::new(FhePool::new(1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p = Arc::clone(&pool);
        let first = tokio::spawn(async move { p.run(move || rx.recv().is_ok()).await });
        while pool.running() == 0 {
            tokio::task::yield_now().await;
        }
        let p = Arc::clone(&pool);
        let second = tokio::spawn(async move { p.run(|| 7).await });
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.running(), 1);
        tx.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert_eq!(second.await.unwrap().unwrap(), 7);
        assert_eq!((pool.queued(), pool.running()), (0, 0));
    }
}
