//! A scriptable HTTP/1.1 server for the tests of serin's outgoing calls (metrics servers,
//! webhooks, alert services): it records every request (head and body) and answers what the
//! test's closure says — a status, headers, a body, a delay before answering, a body that
//! trickles in slowly — over plain TCP or TLS.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
    /// When the request was read whole.
    pub at: std::time::Instant,
}

impl Request {
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What to answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering at all.
    pub delay: Duration,
    /// Send the head at once, then the body one byte per this interval.
    pub trickle: Option<Duration>,
    /// This many bytes of `x` after the body, written from a small buffer: a large answer
    /// without the server holding it.
    pub filler: usize,
    /// Leave out content-length: the body ends when the connection closes.
    pub unannounced: bool,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
            trickle: None,
            filler: 0,
            unannounced: false,
        }
    }

    /// Appends `bytes` bytes of `x` to the body.
    pub fn filler(mut self, bytes: usize) -> Self {
        self.filler = bytes;
        self
    }

    /// Sends no content-length.
    pub fn unannounced(mut self) -> Self {
        self.unannounced = true;
        self
    }

    pub fn ok(body: &str) -> Self {
        Self::status(200, body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

pub type Answer = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running mock: its base URL and what it received.
pub struct Server {
    pub url: String,
    received: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    pub fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }
}

/// A self-signed certificate for 127.0.0.1: (PEM for clients, DER certificate, DER key).
pub fn certificate() -> (String, Vec<u8>, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    (
        certified.cert.pem(),
        certified.cert.der().to_vec(),
        certified.signing_key.serialize_der(),
    )
}

/// Starts a plain HTTP mock.
pub async fn serve(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
    start(Arc::new(answer), None).await
}

/// Starts an HTTPS mock with this certificate and key (DER).
pub async fn serve_tls(
    answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    certificate: Vec<u8>,
    key: Vec<u8>,
) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.into()],
            tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    start(Arc::new(answer), Some(acceptor)).await
}

/// A URL on which nothing listens (a port that was free a moment ago).
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

async fn start(answer: Arc<Answer>, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<Request>>> = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (answer, log, tls) = (answer.clone(), log.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            handle(stream, &*answer, &log).await;
                        }
                    }
                    None => handle(stream, &*answer, &log).await,
                }
            });
        }
    });
    Server { url, received }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    answer: &Answer,
    log: &Mutex<Vec<Request>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let reply = answer(&request);
    log.lock().unwrap().push(request);
    tokio::time::sleep(reply.delay).await;
    let mut head = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", reply.status);
    if !reply.unannounced {
        head.push_str(&format!(
            "content-length: {}\r\n",
            reply.body.len() + reply.filler
        ));
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    match reply.trickle {
        None => {
            let _ = stream.write_all(reply.body.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = reply.filler;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        }
        Some(interval) => {
            for byte in reply.body.as_bytes() {
                let _ = stream.flush().await;
                tokio::time::sleep(interval).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// Reads the head and as many body bytes as content-length says.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Request> {
    let mut data = Vec::new();
    let mut buffer = [0_u8; 8192];
    loop {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            })
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            let body = data[end + 4..end + 4 + length].to_vec();
            return Some(Request {
                head,
                body,
                at: std::time::Instant::now(),
            });
        }
    }
}

/// The peak resident memory (VmHWM) of a process, in bytes: `self` or a pid.
pub fn peak_memory(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// 100 MiB: what a process that buffered one 200 MB answer cannot stay under.
pub const MEMORY_BOUND: u64 = 100 * 1024 * 1024;
