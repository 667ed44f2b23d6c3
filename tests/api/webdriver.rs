//! A small WebDriver client: Debian's headless Chromium driven through chromedriver
//! (the W3C WebDriver protocol, JSON over HTTP, sent with reqwest), for the widget's
//! end-to-end tests.
//!
//! Every [`Browser`] starts its own chromedriver on a free port and its own Chromium with
//! a fresh profile directory; dropping it ends the session (which closes Chromium) and
//! stops that chromedriver. Nothing is downloaded: the binaries are Debian's packages
//! `chromium` and `chromium-driver`, which `tests/run-all.sh` installs when missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys of the WebDriver protocol, for [`Browser::type_into`].
pub const BACKSPACE: &str = "\u{E003}";
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const ESCAPE: &str = "\u{E00C}";
pub const ARROW_UP: &str = "\u{E013}";
pub const ARROW_DOWN: &str = "\u{E015}";

/// One element of the page, as WebDriver names it.
#[derive(Debug, Clone)]
pub struct Element(String);

/// A headless Chromium with one WebDriver session.
pub struct Browser {
    client: reqwest::Client,
    driver: Child,
    driver_port: u16,
    session_id: String,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with the flags this machine needs
    /// (no sandbox as root, no background connections to Google's hosts) and a fresh
    /// `--user-data-dir`. Fails the test with what to install when a binary is missing.
    pub async fn launch() -> Browser {
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser tests need Debian's `{package}` package \
                 (`apt-get install chromium chromium-driver`; tests/run-all.sh installs it)"
            );
        }
        let driver_port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start chromedriver");
        let profile = tempfile::tempdir().expect("failed to create a browser profile directory");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("failed to build the webdriver client");
        let mut browser = Browser {
            client,
            driver,
            driver_port,
            session_id: String::new(),
            _profile: profile,
        };
        browser.wait_for_driver().await;
        let profile_argument = format!("--user-data-dir={}", browser._profile.path().display());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30_000, "script": 30_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1024,1100", profile_argument,
                ],
            },
        }}});
        let answer = browser.send("POST", "/session", Some(capabilities)).await;
        browser.session_id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver started no session: {answer}"))
            .to_owned();
        browser
    }

    async fn wait_for_driver(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status_url = format!("http://127.0.0.1:{}/status", self.driver_port);
        while Instant::now() < deadline {
            if let Ok(response) = self.client.get(&status_url).send().await {
                if let Ok(status) = response.json::<Value>().await {
                    if status["value"]["ready"] == true {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "chromedriver did not answer on port {} within 20 s",
            self.driver_port
        );
    }

    /// Sends one WebDriver command and returns its `value`; fails the test with the
    /// driver's error when it refuses.
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.driver_port);
        let request = match method {
            "GET" => self.client.get(&url),
            "DELETE" => self.client.delete(&url),
            _ => self
                .client
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("webdriver {method} {path} failed: {error}"));
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_else(|error| {
            panic!("webdriver {method} {path}: unreadable answer: {error}")
        });
        assert!(
            status.is_success(),
            "webdriver {method} {path} answered {status}: {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session_id);
        self.send(method, &path, body).await
    }

    /// Opens `url` in the current tab and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        let url = self.command("GET", "/url", None).await;
        url.as_str().unwrap_or_default().to_owned()
    }

    /// Returns the elements matching a CSS selector (none is not an error).
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let found = self
            .command(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        found
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|element| element[ELEMENT_KEY].as_str())
                    .map(|id| Element(id.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Returns the first element matching `selector`; fails the test when there is none.
    pub async fn find(&self, selector: &str) -> Element {
        self.find_all(selector)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches `{selector}`"))
    }

    /// Types `text` into `element` (focusing it first), key by key as a keyboard would:
    /// each character fires its own key and input events. Special keys: [`TAB`] etc.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Presses keys on whatever element has the focus (the W3C actions API).
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.command(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    pub async fn click(&self, element: &Element) {
        self.command("POST", &format!("/element/{}/click", element.0), None)
            .await;
    }

    pub async fn text(&self, element: &Element) -> String {
        let text = self
            .command("GET", &format!("/element/{}/text", element.0), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns
    /// what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    pub async fn window_handles(&self) -> Vec<String> {
        let handles = self.command("GET", "/window/handles", None).await;
        serde_json::from_value(handles).expect("window handles are strings")
    }

    pub async fn current_window(&self) -> String {
        let handle = self.command("GET", "/window", None).await;
        handle.as_str().unwrap_or_default().to_owned()
    }

    pub async fn switch_to_window(&self, handle: &str) {
        self.command("POST", "/window", Some(json!({ "handle": handle })))
            .await;
    }

    /// Opens a new, empty tab of the same browser (same profile, so the same
    /// `localStorage`) and returns its handle; the current tab stays current.
    pub async fn new_tab(&self) -> String {
        let opened = self
            .command("POST", "/window/new", Some(json!({"type": "tab"})))
            .await;
        opened["handle"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver opened no tab: {opened}"))
            .to_owned()
    }

    /// Closes the current tab (switch to another one afterwards).
    pub async fn close_window(&self) {
        self.command("DELETE", "/window", None).await;
    }

    /// Saves a PNG of the current tab at `path` (its directory is created).
    pub async fn screenshot(&self, path: &Path) {
        let encoded = self.command("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory).expect("failed to create the screenshot directory");
        }
        std::fs::write(path, png).expect("failed to write the screenshot");
    }

    /// Polls `probe` until it returns `Some`, at most `seconds`; fails the test with
    /// `what` otherwise. For what the page does in its own time (debounced requests,
    /// beacons), never to assert how long something took.
    pub async fn wait_until<T, F, Fut>(&self, what: &str, seconds: u64, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "gave up after {seconds} s waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Browser {
    /// Ends the session (chromedriver then closes Chromium) and stops chromedriver. A
    /// blocking request by hand: `Drop` cannot wait for reqwest's futures.
    fn drop(&mut self) {
        if !self.session_id.is_empty() {
            let _ = delete_session(self.driver_port, &self.session_id);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn delete_session(port: u16, session_id: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("failed to find a free port");
    listener.local_addr().expect("a bound address").port()
}

/// Where the browser tests keep their screenshots: `target/browser-tests/` (or under
/// `CARGO_TARGET_DIR`), kept by CI as artifacts.
pub fn artifact_path(file_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser-tests").join(file_name)
}
