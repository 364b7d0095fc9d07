//! A recent picture of every container (state, limits, usage), refreshed in the
//! background and after each change the panel makes, so that listing containers costs no
//! file reads per request. Usage figures are at most `REFRESH` old. Each entry knows when
//! it was read, so that a container another panel changed since (its row's `changed_at` is
//! later) is read again before it is shown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use acetate_engine::ContainerInfo;

use crate::runtime::Runtime;

/// How often the background task re-reads every container.
pub const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    inner: Arc<RwLock<HashMap<String, Entry>>>,
    generation: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Entry {
    info: Arc<ContainerInfo>,
    /// When the engine was asked (ms since the epoch, taken before asking).
    read_at: i64,
}

impl Snapshot {
    /// Replaces the whole picture from the engine (blocking).
    pub fn refresh_all(&self, engine: &dyn Runtime) -> acetate_engine::Result<()> {
        let read_at = crate::domain::now_ms();
        let all: HashMap<String, Entry> = engine
            .list()?
            .into_iter()
            .map(|c| {
                let info = Arc::new(c);
                (info.name.clone(), Entry { info, read_at })
            })
            .collect();
        *self.inner.write().expect("snapshot lock") = all;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Re-reads one container after a change (blocking); forgets it if it is gone.
    pub fn refresh_one(&self, engine: &dyn Runtime, name: &str) {
        let read_at = crate::domain::now_ms();
        let info = engine.show(name).ok().map(Arc::new);
        let mut map = self.inner.write().expect("snapshot lock");
        match info {
            Some(info) => {
                map.insert(name.to_string(), Entry { info, read_at });
            }
            None => {
                map.remove(name);
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes whenever the picture does (for caches built from it).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn get(&self, name: &str) -> Option<Arc<ContainerInfo>> {
        let map = self.inner.read().expect("snapshot lock");
        map.get(name).map(|e| e.info.clone())
    }

    /// Whether container `name` is in the picture as read after `changed_at` (ms since the
    /// epoch): a change made by another panel at that time is in it.
    pub fn read_after(&self, name: &str, changed_at: i64) -> bool {
        let map = self.inner.read().expect("snapshot lock");
        map.get(name).is_some_and(|e| e.read_at > changed_at)
    }

    /// Every container, by engine name.
    pub fn all(&self) -> Vec<Arc<ContainerInfo>> {
        let mut v: Vec<_> = self
            .inner
            .read()
            .expect("snapshot lock")
            .values()
            .map(|e| e.info.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Keeps the picture fresh until the process ends.
    pub fn spawn_refresher(&self, engine: Arc<dyn Runtime>) {
        let snap = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (s, e) = (snap.clone(), engine.clone());
                match tokio::task::spawn_blocking(move || s.refresh_all(e.as_ref())).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "refreshing the container snapshot")
                    }
                    Err(err) => tracing::warn!(error = %err, "snapshot task failed"),
                }
            }
        });
    }
}
