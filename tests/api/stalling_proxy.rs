//! A proxy in front of deflect that stalls the first suggest request, as a slow network
//! or a busy server would, and forwards everything else at once: for proving that the
//! widget drops a request a newer keystroke made stale.
//!
//! A browser that gives up on an HTTP/1.1 request it is still waiting for closes the
//! connection (it cannot reuse it mid-answer), so the proxy sees an abort as the end of
//! the held connection. Every request gets its own connection (`Connection: close`), so
//! that end belongs to that one request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the first suggest request is held before it is forwarded after all.
pub const HOLD: Duration = Duration::from_secs(3);

/// What became of the held suggest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldRequest {
    /// Arrived; the proxy is holding it.
    Holding { description: String },
    /// The browser closed the connection while it was held: the request was aborted.
    AbortedByBrowser { description: String },
    /// Held for [`HOLD`], then forwarded and answered (late).
    AnsweredLate { description: String },
}

/// The running proxy.
pub struct StallingProxy {
    /// `http://127.0.0.1:<port>`: open deflect's pages through this address.
    pub origin: String,
    held: Arc<Mutex<Option<HeldRequest>>>,
}

impl StallingProxy {
    /// Starts the proxy in front of deflect listening on `app_port`.
    pub async fn start(app_port: u16) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("failed to bind the proxy");
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let held = Arc::new(Mutex::new(None));
        let first_suggest_seen = Arc::new(AtomicBool::new(false));
        let held_by_task = held.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let proxied = Proxied {
                    app_port,
                    held: held_by_task.clone(),
                    first_suggest_seen: first_suggest_seen.clone(),
                };
                tokio::spawn(proxied.serve(client));
            }
        });
        StallingProxy { origin, held }
    }

    /// What became of the held request so far (None before one arrived).
    pub fn held_request(&self) -> Option<HeldRequest> {
        self.held.lock().unwrap().clone()
    }
}

/// One connection's view of the proxy.
struct Proxied {
    app_port: u16,
    held: Arc<Mutex<Option<HeldRequest>>>,
    first_suggest_seen: Arc<AtomicBool>,
}

impl Proxied {
    async fn serve(self, mut client: TcpStream) {
        let Some(request) = read_request(&mut client).await else {
            return;
        };
        let is_suggest = request.head.starts_with("POST /v1/suggest");
        if is_suggest && !self.first_suggest_seen.swap(true, Ordering::SeqCst) {
            let description = serde_json::from_slice::<Value>(&request.body)
                .ok()
                .and_then(|body| body["description"].as_str().map(str::to_owned))
                .unwrap_or_default();
            self.note(HeldRequest::Holding {
                description: description.clone(),
            });
            // The browser sends nothing more on this connection: any read that returns is
            // the browser closing it (end of stream or a reset).
            let mut probe = [0u8; 1];
            tokio::select! {
                _ = client.read(&mut probe) => {
                    self.note(HeldRequest::AbortedByBrowser { description });
                    return;
                }
                _ = tokio::time::sleep(HOLD) => {
                    self.note(HeldRequest::AnsweredLate { description });
                }
            }
        }
        if let Ok(answer) = forward(&request, self.app_port).await {
            let _ = client.write_all(&answer).await;
        }
        let _ = client.shutdown().await;
    }

    fn note(&self, held: HeldRequest) {
        *self.held.lock().unwrap() = Some(held);
    }
}

struct Request {
    /// Request line and headers, with `Connection: close` and without the final blank
    /// line.
    head: String,
    body: Vec<u8>,
}

/// Reads one request (its body by `Content-Length`); None when the connection closes
/// first (browsers open spare connections they may never use).
async fn read_request(client: &mut TcpStream) -> Option<Request> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(position) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break position;
        }
        let read = client.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        received.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let mut headers = Vec::new();
    let mut content_length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.trim().parse().ok()?;
        }
        if !name.eq_ignore_ascii_case("connection") {
            headers.push(line.to_owned());
        }
    }
    let mut body = received[head_end + 4..].to_vec();
    while body.len() < content_length {
        let read = client.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&buffer[..read]);
    }
    headers.push("Connection: close".to_owned());
    Some(Request {
        head: format!("{request_line}\r\n{}", headers.join("\r\n")),
        body,
    })
}

/// Sends `request` to deflect as it came (the `Host` header too, so deflect sees the
/// page's own origin) and returns deflect's whole answer.
async fn forward(request: &Request, app_port: u16) -> std::io::Result<Vec<u8>> {
    let mut app = TcpStream::connect(("127.0.0.1", app_port)).await?;
    app.write_all(request.head.as_bytes()).await?;
    app.write_all(b"\r\n\r\n").await?;
    app.write_all(&request.body).await?;
    let mut answer = Vec::new();
    app.read_to_end(&mut answer).await?;
    Ok(answer)
}
