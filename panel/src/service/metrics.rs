//! Prometheus metrics: every container's use, limits and limit hits (from the snapshot the
//! panel keeps anyway, so a scrape reads no cgroup file), and the panel's own figures
//! (HTTP requests and latency, operations, plugin calls, billing runs). Names and labels
//! follow Prometheus's conventions (base units, `_total` counters).

use std::sync::{Arc, Mutex, OnceLock};

use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, Opts, Registry, TextEncoder,
};

use super::AppState;
use crate::error::{AppError, AppResult};

/// The panel process's own metrics.
#[derive(Debug)]
pub struct PanelMetrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub operations: IntCounterVec,
    pub billing_runs: IntCounter,
}

fn metric_error(e: prometheus::Error) -> AppError {
    AppError::Internal(format!("metrics: {e}"))
}

/// The process's metrics (one set per process, like Prometheus's default registry).
pub fn panel() -> &'static PanelMetrics {
    static METRICS: OnceLock<PanelMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("acetate_http_requests_total", "HTTP requests answered"),
            &["method", "code"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "acetate_http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")),
            &["method"],
        )
        .expect("valid metric");
        let operations = IntCounterVec::new(
            Opts::new(
                "acetate_operations_total",
                "Long actions this panel ran to their end",
            ),
            &["kind", "state"],
        )
        .expect("valid metric");
        let billing_runs = IntCounter::new(
            "acetate_billing_runs_total",
            "Billing runs (on demand and scheduled) this panel made",
        )
        .expect("valid metric");
        for c in [
            Box::new(http_requests.clone()) as Box<dyn Collector>,
            Box::new(http_duration.clone()),
            Box::new(operations.clone()),
            Box::new(billing_runs.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        PanelMetrics {
            registry,
            http_requests,
            http_duration,
            operations,
            billing_runs,
        }
    })
}

/// The rendered container metrics for one (rows, snapshot) generation.
pub type MetricsCache = Arc<Mutex<Option<((u64, u64), Arc<str>)>>>;

/// One per-container family: a gauge, or a counter (the kernel's counter since the
/// container started, reported as is in a registry made for this scrape).
enum Family {
    Gauge(GaugeVec),
    Counter(CounterVec),
}

impl Family {
    fn set(&self, labels: &[&str], value: f64) {
        match self {
            Family::Gauge(g) => g.with_label_values(labels).set(value),
            Family::Counter(c) => c.with_label_values(labels).inc_by(value.max(0.0)),
        }
    }

    fn collector(self) -> Box<dyn Collector> {
        match self {
            Family::Gauge(g) => Box::new(g),
            Family::Counter(c) => Box::new(c),
        }
    }
}

/// Per-container gauges and counters, as one family each.
struct Families {
    families: Vec<Family>,
}

const LABELS: [&str; 3] = ["container", "owner", "name"];

const CONTAINER_METRICS: [(&str, &str); 21] = [
    ("acetate_container_running", "1 if the container runs"),
    (
        "acetate_container_cpu_seconds_total",
        "CPU time used since the container started",
    ),
    ("acetate_container_cpu_limit_cores", "CPU quota, in cores"),
    ("acetate_container_memory_bytes", "Memory charged now"),
    ("acetate_container_memory_limit_bytes", "Memory limit"),
    ("acetate_container_processes", "Processes and threads now"),
    ("acetate_container_processes_limit", "Process limit"),
    ("acetate_container_disk_used_bytes", "Disk blocks used"),
    ("acetate_container_disk_limit_bytes", "Disk quota"),
    ("acetate_container_inodes_used", "Inodes used"),
    ("acetate_container_inodes_limit", "Inode quota"),
    (
        "acetate_container_network_receive_bytes_total",
        "Bytes the container received since it started",
    ),
    (
        "acetate_container_network_transmit_bytes_total",
        "Bytes the container sent since it started",
    ),
    (
        "acetate_container_oom_kills_total",
        "Processes killed for lack of memory since the container started",
    ),
    (
        "acetate_container_memory_limit_hits_total",
        "Times the memory limit was reached since the container started",
    ),
    (
        "acetate_container_forks_refused_total",
        "Forks refused at the process limit since the container started",
    ),
    (
        "acetate_container_cpu_throttled_seconds_total",
        "Time the CPU quota held the container back since it started",
    ),
    (
        "acetate_container_network_receive_dropped_packets_total",
        "Packets to the container its network rate limit dropped since it started",
    ),
    (
        "acetate_container_disk_read_bytes_total",
        "Disk bytes read through the container's cgroup since it started",
    ),
    (
        "acetate_container_disk_written_bytes_total",
        "Disk bytes written through the container's cgroup since it started",
    ),
    (
        "acetate_container_io_wait_seconds_total",
        "Time some of the container's tasks waited for disk I/O since it started",
    ),
];

impl Families {
    fn new() -> Families {
        Families {
            families: CONTAINER_METRICS
                .iter()
                .map(|(name, help)| {
                    let opts = Opts::new(*name, *help);
                    if name.ends_with("_total") {
                        Family::Counter(CounterVec::new(opts, &LABELS).expect("valid metric"))
                    } else {
                        Family::Gauge(GaugeVec::new(opts, &LABELS).expect("valid metric"))
                    }
                })
                .collect(),
        }
    }
}

/// The whole exposition: the panel's figures, then every container's (cached until a
/// container row or the snapshot changes).
pub async fn render(st: &AppState) -> AppResult<String> {
    let gens = (st.db.containers_generation(), st.snapshot.generation());
    let cached = st
        .metrics_cache
        .lock()
        .expect("metrics cache")
        .as_ref()
        .filter(|(g, _)| *g == gens)
        .map(|(_, text)| text.clone());
    let containers = match cached {
        Some(text) => text,
        None => {
            let text: Arc<str> = containers(st).await?.into();
            *st.metrics_cache.lock().expect("metrics cache") = Some((gens, text.clone()));
            text
        }
    };
    let mut out = encode(&panel().registry.gather())?;
    out.push_str(&database_figures(st).await?);
    out.push_str(&containers);
    Ok(out)
}

fn encode(families: &[prometheus::proto::MetricFamily]) -> AppResult<String> {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(families, &mut buf)
        .map_err(metric_error)?;
    String::from_utf8(buf).map_err(|e| AppError::Internal(e.to_string()))
}

/// Figures every panel on the database shares (plugin calls and failures, operations
/// under way), and this panel's open interactive sessions.
async fn database_figures(st: &AppState) -> AppResult<String> {
    let registry = Registry::new();
    let calls = GaugeVec::new(
        Opts::new(
            "acetate_plugin_calls",
            "Calls of resellers' plugins recorded (not dry runs), by result",
        ),
        &["result"],
    )
    .map_err(metric_error)?;
    let (all, failed) = st.db.plugin_call_totals().await?;
    calls.with_label_values(&["ok"]).set((all - failed) as f64);
    calls.with_label_values(&["failure"]).set(failed as f64);
    let running = GaugeVec::new(
        Opts::new(
            "acetate_operations_running",
            "Long actions under way, all panels",
        ),
        &["kind"],
    )
    .map_err(metric_error)?;
    for op in st.db.running_operations().await? {
        running.with_label_values(&[op.kind.as_str()]).inc();
    }
    let sessions = GaugeVec::new(
        Opts::new(
            "acetate_sessions_open",
            "Interactive sessions (SSH, browser terminals, streamed exec) open on this panel",
        ),
        &["kind"],
    )
    .map_err(metric_error)?;
    for (kind, n) in st.shells.counts() {
        sessions.with_label_values(&[kind]).set(n as f64);
    }
    registry.register(Box::new(calls)).map_err(metric_error)?;
    registry.register(Box::new(running)).map_err(metric_error)?;
    registry
        .register(Box::new(sessions))
        .map_err(metric_error)?;
    encode(&registry.gather())
}

async fn containers(st: &AppState) -> AppResult<String> {
    let names = st.db.container_names().await?;
    let families = Families::new();
    for info in st.snapshot.all() {
        let (owner, name) = names
            .get(&info.name)
            .cloned()
            .unwrap_or_else(|| (String::new(), String::new()));
        let labels = [info.name.as_str(), owner.as_str(), name.as_str()];
        let cg = info.usage.cgroup.unwrap_or_default();
        let running = info.state == acetate_engine::State::Running;
        let disk = info.usage.disk;
        let net = info.usage.net.unwrap_or_default();
        let l = &info.limits;
        let values: [f64; 21] = [
            f64::from(u8::from(running)),
            cg.cpu_ns as f64 / 1e9,
            f64::from(l.cpus_milli) / 1000.0,
            cg.memory_bytes as f64,
            l.memory as f64,
            cg.procs as f64,
            l.procs as f64,
            disk.map_or(0.0, |d| d.bytes_used as f64),
            l.disk as f64,
            disk.map_or(0.0, |d| d.inodes_used as f64),
            l.inodes as f64,
            net.rx_bytes as f64,
            net.tx_bytes as f64,
            cg.oom_kills as f64,
            cg.memory_limit_hits as f64,
            cg.pids_refused as f64,
            cg.cpu_throttled_us as f64 / 1e6,
            net.rx_dropped as f64,
            cg.io_read_bytes as f64,
            cg.io_write_bytes as f64,
            cg.io_stall_us as f64 / 1e6,
        ];
        for (family, value) in families.families.iter().zip(values) {
            family.set(&labels, value);
        }
    }
    let registry = Registry::new();
    for f in families.families {
        registry.register(f.collector()).map_err(metric_error)?;
    }
    encode(&registry.gather())
}
