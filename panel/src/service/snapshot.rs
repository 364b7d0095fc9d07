//! A recent picture of every container (state, limits, usage), refreshed in the
//! background and after each change the panel makes, so that listing containers costs no
//! file reads per request. Usage figures are at most `REFRESH` old.

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
    inner: Arc<RwLock<HashMap<String, Arc<ContainerInfo>>>>,
    generation: Arc<AtomicU64>,
}

impl Snapshot {
    /// Replaces the whole picture from the engine (blocking).
    pub fn refresh_all(&self, engine: &dyn Runtime) -> acetate_engine::Result<()> {
        let all: HashMap<String, Arc<ContainerInfo>> = engine
            .list()?
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect();
        *self.inner.write().expect("snapshot lock") = all;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Re-reads one container after a change (blocking); forgets it if it is gone.
    pub fn refresh_one(&self, engine: &dyn Runtime, name: &str) {
        let info = engine.show(name).ok().map(Arc::new);
        let mut map = self.inner.write().expect("snapshot lock");
        match info {
            Some(i) => {
                map.insert(name.to_string(), i);
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
        self.inner.read().expect("snapshot lock").get(name).cloned()
    }

    /// Every container, by engine name.
    pub fn all(&self) -> Vec<Arc<ContainerInfo>> {
        let mut v: Vec<_> = self
            .inner
            .read()
            .expect("snapshot lock")
            .values()
            .cloned()
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
