//! Long operations run in the background as jobs; their pages refresh themselves (no
//! JavaScript needed) until the job is done, and the API answers 202 with the job's id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::db::now;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", tag = "state", content = "message")]
pub enum JobState {
    Running,
    Done(String),
    Failed(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: u64,
    #[serde(skip)]
    pub owner_id: i64,
    /// What it does, for people: "import template tiny".
    pub what: String,
    #[serde(flatten)]
    pub state: JobState,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// The jobs of this panel process (the last 1000 kept).
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    jobs: Arc<Mutex<HashMap<u64, Job>>>,
    next: Arc<AtomicU64>,
}

impl Jobs {
    /// Runs `work` in the background; its `Ok` message or error becomes the job's end state.
    pub fn spawn<F>(&self, owner_id: i64, what: String, work: F) -> u64
    where
        F: std::future::Future<Output = Result<String, String>> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let job = Job {
            id,
            owner_id,
            what,
            state: JobState::Running,
            started_at: now(),
            finished_at: None,
        };
        {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            if jobs.len() >= 1000 {
                let oldest = jobs
                    .values()
                    .filter(|j| j.state != JobState::Running)
                    .map(|j| j.id)
                    .min();
                if let Some(oldest) = oldest {
                    jobs.remove(&oldest);
                }
            }
            jobs.insert(id, job);
        }
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let state = match work.await {
                Ok(message) => JobState::Done(message),
                Err(message) => JobState::Failed(message),
            };
            if let Some(job) = jobs.lock().expect("jobs lock").get_mut(&id) {
                job.state = state;
                job.finished_at = Some(now());
            }
        });
        id
    }

    /// A job, if it is `owner_id`'s.
    pub fn get(&self, id: u64, owner_id: i64) -> Option<Job> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .get(&id)
            .filter(|j| j.owner_id == owner_id)
            .cloned()
    }
}
