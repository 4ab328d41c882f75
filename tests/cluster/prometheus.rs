//! A real Prometheus (the Debian package's binary, which tests/run.sh installs) scraping test
//! exporters every second: each exporter is a workload's pods as Prometheus would see them,
//! serving app-level `http_requests_total` and `http_request_duration_seconds` (split by
//! `status`, as podinfo and Flagger's http observer have it) whose rate and error ratio the test
//! controls. Prometheus attaches `namespace` and `pod` labels to each target, as the Prometheus
//! Operator's relabelling does, or `kubernetes_namespace` and `kubernetes_pod_name`, as the
//! Prometheus Flagger's chart installs does.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{free_port, spawn_bound_to_process, which};

/// Requests per second every exporter serves.
pub const RATE: u32 = 200;
/// Every request takes between 50 and 100 ms: the p99 read from the histogram is
/// 50 + 50 × 0.99 = 99.5 ms (linear interpolation inside the bucket).
pub const P99_MS: f64 = 99.5;

/// The counters of one workload.
#[derive(Default)]
struct Counters {
    ok: u64,
    errors: u64,
}

/// The labels Prometheus attaches to a pod's series.
#[derive(Clone, Copy)]
pub enum PodLabels {
    /// `namespace`, `pod` (Prometheus Operator).
    Operator,
    /// `kubernetes_namespace`, `kubernetes_pod_name` (the Prometheus of Flagger's chart).
    Flagger,
}

/// A workload's metrics endpoint.
pub struct Exporter {
    pub address: String,
    pub namespace: String,
    pub pod: String,
    pub labels: PodLabels,
    error_ratio: Arc<Mutex<f64>>,
}

impl Exporter {
    /// Starts serving `/metrics` for a pod `pod` in `namespace` with this share of 5xx answers;
    /// `seed` sets where in the cycle of failures the exporter starts.
    pub fn start(namespace: &str, pod: &str, error_ratio: f64, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let counters = Arc::new(Mutex::new(Counters::default()));
        let ratio = Arc::new(Mutex::new(error_ratio));
        // The traffic: RATE/10 requests every 100 ms. Failures are spread evenly (error
        // diffusion: every request adds the ratio to a debt, a debt of one is a failure), so any
        // window holds the ratio to within one request. Coin flips would make a short window's
        // ratio wander by more than the tests' tolerances on a busy machine.
        let (traffic, current) = (counters.clone(), ratio.clone());
        std::thread::spawn(move || {
            let mut debt = (seed % 100) as f64 / 100.0;
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let ratio = *current.lock().unwrap();
                let mut counters = traffic.lock().unwrap();
                for _ in 0..RATE / 10 {
                    debt += ratio;
                    if debt >= 1.0 {
                        debt -= 1.0;
                        counters.errors += 1;
                    } else {
                        counters.ok += 1;
                    }
                }
            }
        });
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = [0_u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut buffer);
                let body = exposition(&counters.lock().unwrap());
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            address,
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            labels: PodLabels::Operator,
            error_ratio: ratio,
        }
    }

    /// The same exporter, its series labelled as Flagger's Prometheus labels them.
    pub fn with_flagger_labels(self) -> Self {
        Self {
            labels: PodLabels::Flagger,
            ..self
        }
    }

    pub fn set_error_ratio(&self, ratio: f64) {
        *self.error_ratio.lock().unwrap() = ratio;
    }
}

/// The Prometheus text format of the counters: every request takes between 50 and 100 ms.
fn exposition(c: &Counters) -> String {
    let mut text = format!(
        "# TYPE http_requests_total counter\n\
         http_requests_total{{status=\"200\"}} {ok}\n\
         http_requests_total{{status=\"500\"}} {errors}\n\
         # TYPE http_request_duration_seconds histogram\n",
        ok = c.ok,
        errors = c.errors,
    );
    for (status, count) in [("200", c.ok), ("500", c.errors)] {
        text.push_str(&format!(
            "http_request_duration_seconds_bucket{{status=\"{status}\",le=\"0.05\"}} 0\n\
             http_request_duration_seconds_bucket{{status=\"{status}\",le=\"0.1\"}} {count}\n\
             http_request_duration_seconds_bucket{{status=\"{status}\",le=\"+Inf\"}} {count}\n\
             http_request_duration_seconds_sum{{status=\"{status}\"}} {sum}\n\
             http_request_duration_seconds_count{{status=\"{status}\"}} {count}\n",
            sum = count as f64 * 0.075,
        ));
    }
    text
}

/// A Prometheus server; killed with the test process.
pub struct Prometheus {
    pub url: String,
    child: Child,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `exporters` every second and waits until it is ready.
    pub fn start(exporters: &[&Exporter]) -> Self {
        let binary = which("prometheus").unwrap_or_else(|| {
            panic!("prometheus is not installed: `apt-get install prometheus` (tests/run.sh installs it)")
        });
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "serin-e2e-{}-prometheus-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let targets: String = exporters
            .iter()
            .map(|e| {
                let (namespace, pod) = match e.labels {
                    PodLabels::Operator => ("namespace", "pod"),
                    PodLabels::Flagger => ("kubernetes_namespace", "kubernetes_pod_name"),
                };
                format!(
                    "      - targets: ['{}']\n        labels: {{{namespace}: '{}', {pod}: '{}'}}\n",
                    e.address, e.namespace, e.pod
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n{targets}"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port().unwrap();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let log = dir.join("prometheus.log");
        let child = spawn_bound_to_process(command, &log).unwrap();
        let prometheus = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&self) {
        let address = self.url.trim_start_matches("http://").to_string();
        for _ in 0..300 {
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                let _ = write!(
                    stream,
                    "GET /-/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
                );
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.logs());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Canary `web` in namespace `shop` (the exporters' namespace) whose analysis has this one
/// metric, given as YAML list lines.
pub fn canary(metric: &str) -> serin::api::Canary {
    let yaml = format!(
        "apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata: {{name: web, namespace: shop}}\nspec:\n  targetRef: {{name: web}}\n  service: {{port: 80}}\n  analysis:\n    stepWeight: 10\n    metrics:\n{metric}"
    );
    serin::api::load::from_yaml(&yaml, "").unwrap()
}

/// An endpoint for this Prometheus without credentials.
pub fn endpoint(prometheus: &Prometheus) -> serin::metrics::prometheus::Endpoint {
    serin::metrics::prometheus::Endpoint {
        client: serin::hooks::client().unwrap(),
        address: prometheus.url.clone(),
        auth: serin::metrics::prometheus::Auth::None,
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        aws: None,
        google: None,
    }
}

/// Waits until `query` answers a value `accept`s (the exporters' new error ratio has filled the
/// query's rate() window), instead of sleeping for a guessed time.
#[allow(dead_code)]
pub async fn wait_for_value(prometheus: &Prometheus, query: &str, accept: impl Fn(f64) -> bool) {
    let endpoint = endpoint(prometheus);
    let mut last = None;
    for _ in 0..240 {
        match endpoint.instant(query).await {
            Ok(answer) => {
                if let serin::metrics::provider::Answer::Value(v) = answer
                    && accept(v)
                {
                    return;
                }
                last = Some(format!("{answer:?}"));
            }
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{query} never answered an accepted value; last answer: {last:?}");
}
