//! Real metrics servers from Debian packages (tests/run.sh installs them), each started per
//! test in its own temporary directory on free loopback ports, fed known series, and killed
//! with the test process:
//!
//! - Graphite: `carbon-cache` (graphite-carbon) receiving the plaintext protocol, and
//!   graphite-web's Django WSGI application served by Python's own `wsgiref` server (no web
//!   server package needed; the command is in [`Graphite::start`]). graphite-web has no login
//!   of its own on /render: when basic auth is asked for, a small WSGI wrapper checks it, as the
//!   reverse proxy in front of a real graphite-web would.
//! - InfluxDB 1.6 (`influxd`, package influxdb) with authentication on: InfluxQL on `/query`.
//! - VictoriaMetrics (`victoria-metrics`) with basic auth: the Prometheus API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{free_port, spawn_bound_to_process, which};

/// The Python graphite-web is installed for (Debian's, not a virtualenv's or pyenv's).
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// A process of a metrics server with its log; killed when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(command: Command, log: PathBuf) -> Self {
        let child = spawn_bound_to_process(command, &log).unwrap();
        Self { child, log }
    }

    fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or(&text).to_string()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.logs());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server's directory, removed when the server is dropped (after its processes: it is the
/// last field of each server).
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory for one server of one test (the cluster module sweeps those of test
/// processes that died before removing them).
fn directory(server: &str) -> PathBuf {
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "serin-e2e-{}-{server}-{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn binary(name: &str, package: &str) -> PathBuf {
    which(name).unwrap_or_else(|| {
        panic!("{name} is not installed: `apt-get install {package}` (tests/run.sh installs it)")
    })
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body). For feeding and readiness;
/// serin's own client is what the tests test.
pub fn http(address: &str, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.get(9..12)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// `request` until it answers `ok`, or panics with `process`'s log.
fn wait_until(what: &str, processes: &[&Process], mut ok: impl FnMut() -> bool) {
    for _ in 0..300 {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = processes.iter().map(|p| p.logs()).collect();
    panic!("{what} did not become ready:\n{}", logs.join("\n---\n"));
}

/// The Authorization header of basic auth, as reqwest writes it.
pub fn basic(username: &str, password: &str) -> String {
    let request = serin::outbound::client_builder()
        .build()
        .unwrap()
        .get("http://127.0.0.1/")
        .basic_auth(username, Some(password))
        .build()
        .unwrap();
    request.headers()[reqwest::header::AUTHORIZATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// Graphite: carbon-cache and graphite-web.
pub struct Graphite {
    pub url: String,
    line_receiver: String,
    /// The Authorization header /render wants, if any.
    authorization: Option<String>,
    _web: Process,
    _carbon: Process,
    _dir: Dir,
}

impl Graphite {
    /// Starts carbon-cache (1-second resolution for an hour) and graphite-web; with
    /// `basic_auth`, /render wants those credentials.
    pub fn start(basic_auth: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(DEBIAN_PYTHON).exists()
                && Path::new("/usr/lib/python3/dist-packages/graphite/wsgi.py").exists(),
            "graphite-web is not installed: `apt-get install graphite-web` (tests/run.sh installs it)"
        );
        let dir = directory("graphite");
        let (carbon, line_receiver, cache) = start_carbon(&dir);
        let authorization = basic_auth.map(|(u, p)| basic(u, p));
        let (web, address) = start_graphite_web(&dir, cache, authorization.as_deref());
        wait_until("graphite-web", &[&web, &carbon], || {
            http(
                &address,
                "GET /render?target=constantLine(1)&format=json HTTP/1.0\r\n\r\n",
            )
            .is_some_and(|(status, _)| status == 200 || status == 401)
        });
        Self {
            url: format!("http://{address}"),
            line_receiver,
            authorization,
            _web: web,
            _carbon: carbon,
            _dir: Dir(dir),
        }
    }

    /// Sends `(path, value, epoch seconds)` to carbon's plaintext receiver and waits until
    /// graphite-web renders the last one of each path.
    pub fn feed(&self, points: &[(&str, f64, i64)]) {
        let text: String = points
            .iter()
            .map(|(path, value, at)| format!("{path} {value} {at}\n"))
            .collect();
        let mut stream = TcpStream::connect(&self.line_receiver).unwrap();
        stream.write_all(text.as_bytes()).unwrap();
        drop(stream);
        let address = self.url.trim_start_matches("http://").to_string();
        let last: std::collections::BTreeMap<&str, i64> =
            points.iter().map(|(path, _, at)| (*path, *at)).collect();
        for (path, at) in last {
            let request = format!(
                "GET /render?target={path}&from={}&until={}&format=json HTTP/1.0\r\n{}\r\n",
                at - 1,
                at + 1,
                self.authorization
                    .as_ref()
                    .map_or(String::new(), |a| format!("authorization: {a}\r\n"))
            );
            let (point, missing) = (format!(", {at}]"), format!("null, {at}]"));
            wait_until("a fed point", &[], || {
                http(&address, &request)
                    .is_some_and(|(_, body)| body.contains(&point) && !body.contains(&missing))
            });
        }
    }
}

/// carbon-cache in `dir`, 1-second resolution for an hour: the process, its plaintext
/// receiver's address and its cache query port (graphite-web reads unwritten points there).
fn start_carbon(dir: &Path) -> (Process, String, u16) {
    let carbon_cache = binary("carbon-cache", "graphite-carbon");
    std::fs::create_dir_all(dir.join("storage/whisper")).unwrap();
    std::fs::create_dir_all(dir.join("log")).unwrap();
    let [line, pickle, cache] = [(); 3].map(|()| free_port().unwrap());
    let d = dir.display();
    std::fs::write(
        dir.join("carbon.conf"),
        format!(
            "[cache]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\n\
             WHITELISTS_DIR = {d}/storage/lists/\nCONF_DIR = {d}/\nLOG_DIR = {d}/log/\n\
             PID_DIR = {d}/\nDATABASE = whisper\nENABLE_LOGROTATION = False\n\
             MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = 10000\nMAX_CREATES_PER_MINUTE = inf\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line}\n\
             ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
             PICKLE_RECEIVER_PORT = {pickle}\nCACHE_QUERY_INTERFACE = 127.0.0.1\n\
             CACHE_QUERY_PORT = {cache}\nWHISPER_AUTOFLUSH = True\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 1s:1h\n",
    )
    .unwrap();
    let mut carbon = Command::new(carbon_cache);
    carbon.arg(format!("--config={d}/carbon.conf")).args([
        &format!("--pidfile={d}/carbon.pid"),
        "--nodaemon",
        &format!("--logfile={d}/log/carbon.log"),
        "start",
    ]);
    let carbon = Process::start(carbon, dir.join("carbon.out"));
    let line_receiver = format!("127.0.0.1:{line}");
    wait_until("carbon-cache", &[&carbon], || {
        TcpStream::connect(&line_receiver).is_ok()
    });
    (carbon, line_receiver, cache)
}

/// graphite-web on a free port, reading `dir`'s whisper files and carbon's cache on
/// `cache`: the process and its address. The command is
/// `PYTHONPATH=<dir> GRAPHITE_SETTINGS_MODULE=serin_graphite_settings
/// DJANGO_SETTINGS_MODULE=graphite.settings /usr/bin/python3 serve_graphite.py <port> [<Authorization>]`.
fn start_graphite_web(dir: &Path, cache: u16, authorization: Option<&str>) -> (Process, String) {
    let d = dir.display();
    // graphite-web reads its settings from GRAPHITE_SETTINGS_MODULE: one per test, so its
    // whisper directory, carbon link and SQLite file are this test's.
    std::fs::write(
        dir.join("serin_graphite_settings.py"),
        format!(
            "SECRET_KEY = 'serin-test'\nSTORAGE_DIR = '{d}/storage'\n\
             WHISPER_DIR = '{d}/storage/whisper/'\nLOG_DIR = '{d}/log/'\n\
             INDEX_FILE = '{d}/storage/index'\nCARBONLINK_HOSTS = ['127.0.0.1:{cache}']\n\
             DATABASES = {{'default': {{'NAME': '{d}/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}}}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("serve_graphite.py"), SERVE_GRAPHITE).unwrap();
    let port = free_port().unwrap();
    let mut web = Command::new(DEBIAN_PYTHON);
    web.arg(dir.join("serve_graphite.py"))
        .arg(port.to_string())
        .arg(authorization.unwrap_or_default());
    let web = spawn_with_env(
        web,
        &[
            ("PYTHONPATH", d.to_string()),
            ("GRAPHITE_SETTINGS_MODULE", "serin_graphite_settings".into()),
            ("DJANGO_SETTINGS_MODULE", "graphite.settings".into()),
        ],
        dir.join("graphite-web.log"),
    );
    (web, format!("127.0.0.1:{port}"))
}

/// graphite-web's WSGI application under Python's wsgiref server, optionally behind a basic
/// auth check: argv[1] is the port, argv[2] the expected Authorization header (or empty).
const SERVE_GRAPHITE: &str = r#"
import sys
from wsgiref.simple_server import make_server
from django.core.wsgi import get_wsgi_application

app = get_wsgi_application()
expected = sys.argv[2] if len(sys.argv) > 2 else ''

def guarded(environ, start_response):
    if expected and environ.get('HTTP_AUTHORIZATION') != expected:
        start_response('401 Unauthorized', [('Content-Type', 'text/plain'),
                                            ('WWW-Authenticate', 'Basic realm="graphite"')])
        return [b'401 Unauthorized: bad or missing credentials\n']
    return app(environ, start_response)

make_server('127.0.0.1', int(sys.argv[1]), guarded).serve_forever()
"#;

fn spawn_with_env(command: Command, env: &[(&str, String)], log: PathBuf) -> Process {
    // The keeper thread spawns commands as given: the environment goes through `env`.
    let mut with_env = Command::new("env");
    with_env
        .args(env.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(command.get_program())
        .args(command.get_args());
    Process::start(with_env, log)
}

/// InfluxDB 1.x with authentication on, one admin user, and one database.
pub struct InfluxDb {
    pub url: String,
    address: String,
    authorization: String,
    _influxd: Process,
    _dir: Dir,
}

impl InfluxDb {
    /// Starts influxd, creates the admin `username`/`password` (the one statement 1.x
    /// accepts without credentials while it has no user) and `database`.
    pub fn start(username: &str, password: &str, database: &str) -> Self {
        let influxd = binary("influxd", "influxdb");
        let dir = directory("influxdb");
        let (http_port, rpc_port) = (free_port().unwrap(), free_port().unwrap());
        let d = dir.display();
        std::fs::write(
            dir.join("influxdb.conf"),
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc_port}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  auth-enabled = true\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n"
            ),
        )
        .unwrap();
        let mut command = Command::new(influxd);
        command
            .arg("run")
            .arg("-config")
            .arg(dir.join("influxdb.conf"));
        let process = Process::start(command, dir.join("influxd.log"));
        let address = format!("127.0.0.1:{http_port}");
        wait_until("influxd", &[&process], || {
            http(&address, "GET /ping HTTP/1.0\r\n\r\n").is_some_and(|(status, _)| status == 204)
        });
        let server = Self {
            url: format!("http://{address}"),
            address,
            authorization: basic(username, password),
            _influxd: process,
            _dir: Dir(dir),
        };
        let user =
            format!("CREATE USER \"{username}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES");
        server.post("/query", &form(&[("q", &user)]), false);
        server.post(
            "/query",
            &form(&[("q", &format!("CREATE DATABASE \"{database}\""))]),
            true,
        );
        server
    }

    fn post(&self, path: &str, body: &str, authorized: bool) -> String {
        let authorization = if authorized {
            format!("authorization: {}\r\n", self.authorization)
        } else {
            String::new()
        };
        let content_type = if path.starts_with("/query") {
            "application/x-www-form-urlencoded"
        } else {
            "text/plain"
        };
        let request = format!(
            "POST {path} HTTP/1.0\r\n{authorization}content-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, answer) = http(&self.address, &request).expect("influxd answers");
        assert!(
            status / 100 == 2 && !answer.contains("\"error\""),
            "{path}: HTTP {status} {answer}"
        );
        answer
    }

    /// Writes `lines` (line protocol, timestamps in seconds) into `database`.
    pub fn write(&self, database: &str, lines: &str) {
        self.post(&format!("/write?db={database}&precision=s"), lines, true);
    }
}

/// `application/x-www-form-urlencoded` of these pairs.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

/// VictoriaMetrics single-node with basic auth, answering points up to now (no latency
/// offset), so fed points are queried at once.
pub struct VictoriaMetrics {
    pub url: String,
    address: String,
    authorization: String,
    _process: Process,
    _dir: Dir,
}

impl VictoriaMetrics {
    pub fn start(username: &str, password: &str) -> Self {
        let binary = binary("victoria-metrics", "victoria-metrics");
        let dir = directory("victoria-metrics");
        let port = free_port().unwrap();
        let address = format!("127.0.0.1:{port}");
        let mut command = Command::new(binary);
        command.args([
            format!("-storageDataPath={}", dir.join("data").display()),
            format!("-httpListenAddr={address}"),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
            format!("-httpAuth.username={username}"),
            format!("-httpAuth.password={password}"),
            "-loggerLevel=ERROR".into(),
        ]);
        let process = Process::start(command, dir.join("victoria-metrics.log"));
        wait_until("victoria-metrics", &[&process], || {
            // /health may want the credentials too: any HTTP answer means it listens.
            http(&address, "GET /health HTTP/1.0\r\n\r\n")
                .is_some_and(|(status, _)| status == 200 || status == 401)
        });
        Self {
            url: format!("http://{address}"),
            address,
            authorization: basic(username, password),
            _process: process,
            _dir: Dir(dir),
        }
    }

    /// Imports Prometheus text-format lines with timestamps (milliseconds) and makes them
    /// searchable at once.
    pub fn import(&self, lines: &str) {
        for (path, body) in [
            ("/api/v1/import/prometheus", lines),
            ("/internal/force_flush", ""),
        ] {
            let request = format!(
                "POST {path} HTTP/1.0\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n{body}",
                self.authorization,
                body.len()
            );
            let (status, answer) = http(&self.address, &request).expect("victoria-metrics answers");
            assert!(status / 100 == 2, "{path}: HTTP {status} {answer}");
        }
    }
}
