//! Prometheus metrics in the text exposition format: request counts and latencies by route and
//! status, proof-verification time, the FHE queue, and the key cache. Labels are route
//! templates (`/v1/records/{record_id}/proof`), never raw paths, so their number is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, c) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, c) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// Gauges read at scrape time from the parts of the server that own them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    /// Callers waiting for an FHE worker.
    pub fhe_queued: usize,
    /// FHE jobs running.
    pub fhe_running: usize,
    /// Key sets whose decoded material is cached.
    pub cached_keys: usize,
    /// Approximate bytes of cached key material.
    pub cached_key_bytes: u64,
    /// Requests in flight.
    pub in_flight: usize,
    /// Job event streams (SSE or WebSocket) open.
    pub event_streams: usize,
}

/// The server's counters and histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    proof_verification: Mutex<BTreeMap<&'static str, Histogram>>,
    tasks: Mutex<BTreeMap<&'static str, Histogram>>,
    takeovers: AtomicU64,
}

/// A tenant's tasks in the job queue: waiting (queued, or under an expired lease) and running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantQueue {
    /// The tenant.
    pub tenant: String,
    /// Tasks waiting for a worker.
    pub waiting: i64,
    /// Tasks a worker holds.
    pub running: i64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Escapes a label value (route templates are ASCII, but stay safe).
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        lock(&self.requests)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Counts one proof verification, by outcome (`valid` / `invalid`).
    pub fn observe_proof(&self, outcome: &'static str, took: Duration) {
        lock(&self.proof_verification)
            .entry(outcome)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Counts one task this process's workers ran to its end (succeeded, failed or given
    /// back), by kind (`whole`, `part`, `merge`).
    pub fn observe_task(&self, kind: &'static str, took: Duration) {
        lock(&self.tasks)
            .entry(kind)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Counts a task this process's workers took over from a worker whose lease expired.
    pub fn lease_taken_over(&self) {
        self.takeovers.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition, with the job queue's depth per tenant (read from the database at
    /// scrape time: the whole queue, every process's).
    pub fn render(&self, gauges: Gauges, queue: &[TenantQueue]) -> String {
        let mut out = String::new();
        out.push_str("# HELP blindsight_http_requests_total Requests by route template, method and status.\n");
        out.push_str("# TYPE blindsight_http_requests_total counter\n");
        let requests = lock(&self.requests).clone();
        for ((route, method, status), h) in &requests {
            let _ = writeln!(
                out,
                "blindsight_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                label(route),
                label(method),
                h.count
            );
        }
        out.push_str("# HELP blindsight_http_request_duration_seconds Request latency by route template, method and status.\n");
        out.push_str("# TYPE blindsight_http_request_duration_seconds histogram\n");
        for ((route, method, status), h) in &requests {
            h.render(
                &mut out,
                "blindsight_http_request_duration_seconds",
                &format!(
                    "route=\"{}\",method=\"{}\",status=\"{status}\"",
                    label(route),
                    label(method)
                ),
            );
        }
        out.push_str("# HELP blindsight_proof_verification_seconds Zero-knowledge proof verification time by outcome.\n");
        out.push_str("# TYPE blindsight_proof_verification_seconds histogram\n");
        for (outcome, h) in lock(&self.proof_verification).iter() {
            h.render(
                &mut out,
                "blindsight_proof_verification_seconds",
                &format!("outcome=\"{outcome}\""),
            );
        }
        out.push_str("# HELP blindsight_task_duration_seconds Job tasks this process ran, by kind (whole, part, merge), from lease to outcome.\n");
        out.push_str("# TYPE blindsight_task_duration_seconds histogram\n");
        for (kind, h) in lock(&self.tasks).iter() {
            h.render(
                &mut out,
                "blindsight_task_duration_seconds",
                &format!("kind=\"{kind}\""),
            );
        }
        let _ = writeln!(
            out,
            "# HELP blindsight_lease_takeovers_total Tasks this process took over from a worker whose lease expired.\n# TYPE blindsight_lease_takeovers_total counter\nblindsight_lease_takeovers_total {}",
            self.takeovers.load(Ordering::Relaxed)
        );
        out.push_str("# HELP blindsight_job_tasks Job tasks in the queue by tenant and state (waiting, running), all processes.\n");
        out.push_str("# TYPE blindsight_job_tasks gauge\n");
        for q in queue {
            for (state, n) in [("waiting", q.waiting), ("running", q.running)] {
                let _ = writeln!(
                    out,
                    "blindsight_job_tasks{{tenant=\"{}\",state=\"{state}\"}} {n}",
                    label(&q.tenant)
                );
            }
        }
        let gauges = [
            (
                "blindsight_fhe_queue_depth",
                "Callers waiting for an FHE worker.",
                gauges.fhe_queued as f64,
            ),
            (
                "blindsight_fhe_running",
                "FHE and proof jobs running.",
                gauges.fhe_running as f64,
            ),
            (
                "blindsight_cached_keys",
                "Key sets with decoded material in the cache.",
                gauges.cached_keys as f64,
            ),
            (
                "blindsight_cached_key_bytes",
                "Approximate bytes of cached key material.",
                gauges.cached_key_bytes as f64,
            ),
            (
                "blindsight_http_in_flight",
                "Requests being handled.",
                gauges.in_flight as f64,
            ),
            (
                "blindsight_event_streams",
                "Job event streams (SSE or WebSocket) open.",
                gauges.event_streams as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histograms_and_gauges() {
        let m = Metrics::default();
        m.observe_request("/v1/records", "POST", 201, Duration::from_millis(30));
        m.observe_request("/v1/records", "POST", 201, Duration::from_millis(300));
        m.observe_proof("valid", Duration::from_millis(60));
        m.observe_task("part", Duration::from_secs(3));
        m.lease_taken_over();
        let text = m.render(
            Gauges {
                fhe_queued: 3,
                cached_keys: 1,
                ..Gauges::default()
            },
            &[TenantQueue {
                tenant: "clinic-a".into(),
                waiting: 4,
                running: 2,
            }],
        );
        assert!(text.contains(
            "blindsight_http_requests_total{route=\"/v1/records\",method=\"POST\",status=\"201\"} 2"
        ));
        assert!(text.contains(
            "blindsight_http_request_duration_seconds_bucket{route=\"/v1/records\",method=\"POST\",status=\"201\",le=\"0.05\"} 1"
        ));
        assert!(text.contains("blindsight_proof_verification_seconds_count{outcome=\"valid\"} 1"));
        assert!(text.contains("blindsight_fhe_queue_depth 3"));
        assert!(text.contains("blindsight_cached_keys 1"));
        assert!(text.contains("blindsight_task_duration_seconds_count{kind=\"part\"} 1"));
        assert!(text.contains("blindsight_lease_takeovers_total 1"));
        assert!(text.contains("blindsight_job_tasks{tenant=\"clinic-a\",state=\"waiting\"} 4"));
    }
}
