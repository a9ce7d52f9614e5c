//! A programmable webhook receiver for the tests (SPEC §8): a small HTTP/1.1 server on
//! 127.0.0.1:0 that records every request (path, headers, body, arrival time) and answers each
//! from a script: a status with headers (e.g. `Retry-After`), a delay, a hang, a 50 MiB body,
//! or a connection reset.
//!
//! Written on a bare `TcpListener` rather than a framework: only a raw socket can reset a
//! connection (zero linger) or send a head and then stall, and the tests need both.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most a request head may take (a gateway's delivery has a handful of headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most a delivery body may take (an event is a Cancellation: a few KiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When the whole request had arrived.
    pub at: Instant,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `webhook-id` (the event id).
    pub fn id(&self) -> String {
        self.header("webhook-id").unwrap_or_default().to_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// The reference of the cancellation the event is about (empty for a batch).
    pub fn reference(&self) -> String {
        self.json()["data"]["reference"].as_str().unwrap_or_default().to_owned()
    }
}

/// What the receiver does with one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A status with an empty body.
    Status(u16),
    /// A status with extra headers (e.g. `("retry-after", "3")`).
    WithHeaders(u16, Vec<(String, String)>),
    /// Wait, then answer.
    Delay(Duration, Box<Answer>),
    /// Never answer (the connection stays open until the gateway gives up).
    Hang,
    /// `200` with a body of this many bytes, streamed in 64 KiB chunks.
    Huge(usize),
    /// Reset the connection (RST, no answer).
    Reset,
}

type Script = Box<dyn FnMut(&Delivery, usize) -> Answer + Send>;

struct State {
    recorded: Mutex<Vec<Delivery>>,
    script: Mutex<Script>,
}

/// A running receiver; it stops with the test's runtime.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    state: Arc<State>,
}

impl Receiver {
    /// Starts a receiver; `script(request, n)` decides the answer to the `n`-th request (from 0).
    pub async fn start(script: impl FnMut(&Delivery, usize) -> Answer + Send + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the receiver binds");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State { recorded: Mutex::new(Vec::new()), script: Mutex::new(Box::new(script)) });
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        Receiver { addr, state }
    }

    /// A receiver that answers `200` at once, always.
    pub async fn ok() -> Receiver {
        Receiver::start(|_, _| Answer::Status(200)).await
    }

    /// Answers `answers` in turn, then `200`.
    pub async fn sequence(answers: Vec<Answer>) -> Receiver {
        Receiver::start(move |_, n| answers.get(n).cloned().unwrap_or(Answer::Status(200))).await
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.recorded.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.recorded.lock().unwrap().len()
    }

    /// Replaces the script (for requests from now on).
    pub fn set_script(&self, script: impl FnMut(&Delivery, usize) -> Answer + Send + 'static) {
        *self.state.script.lock().unwrap() = Box::new(script);
    }

    /// Waits (at most `within`) until `condition` holds over the recorded requests.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        condition: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.deliveries();
            if condition(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "receiver: timed out after {within:?} waiting until {what}; got {} requests: {:#?}",
                seen.len(),
                seen.iter().map(|d| (d.id(), d.event_type(), d.reference())).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let Some(delivery) = read_request(&mut stream).await else { return };
    let answer = {
        let mut recorded = state.recorded.lock().unwrap();
        let n = recorded.len();
        recorded.push(delivery.clone());
        drop(recorded);
        (state.script.lock().unwrap())(&delivery, n)
    };
    respond(&mut stream, answer).await;
}

/// One request: the head up to its blank line, then a `Content-Length` or chunked body.
async fn read_request(stream: &mut TcpStream) -> Option<Delivery> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i;
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = buffer[head_end + 4..].to_vec();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(stream, rest).await?
    } else {
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if length > MAX_BODY {
            return None;
        }
        while rest.len() < length {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(length);
        rest
    };
    Some(Delivery { path, headers, body: String::from_utf8_lossy(&body).into_owned(), at: Instant::now() })
}

async fn read_chunked(stream: &mut TcpStream, mut buffer: Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        while find(&buffer, b"\r\n").is_none() {
            fill(stream, &mut buffer).await?;
        }
        let line_end = find(&buffer, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&buffer[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buffer.drain(..line_end + 2);
        if size == 0 {
            return Some(body);
        }
        if body.len() + size > MAX_BODY {
            return None;
        }
        while buffer.len() < size + 2 {
            fill(stream, &mut buffer).await?;
        }
        body.extend_from_slice(&buffer[..size]);
        buffer.drain(..size + 2);
    }
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.ok()?;
    (n > 0).then(|| buffer.extend_from_slice(&chunk[..n]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn respond(stream: &mut TcpStream, answer: Answer) {
    let mut answer = answer;
    loop {
        match answer {
            Answer::Delay(delay, then) => {
                tokio::time::sleep(delay).await;
                answer = *then;
            }
            Answer::Hang => {
                // Reads (and drops) whatever comes until the gateway closes the connection.
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Answer::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Answer::Huge(bytes) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {bytes}\r\nconnection: close\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = stream.shutdown().await;
                return;
            }
            Answer::Status(status) => answer = Answer::WithHeaders(status, Vec::new()),
            Answer::WithHeaders(status, headers) => {
                let mut head = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n");
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}
