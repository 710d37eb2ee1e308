//! Headless Chromium through chromedriver (W3C WebDriver over plain HTTP), for the tests that
//! drive the recipient's pages in a real browser. Include with
//! `#[path = "support/webdriver.rs"] mod webdriver;`. Nothing is skipped: without
//! `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`; `.ci/run`
//! installs them) the tests fail and say what to install. `HOGSEND_TEST_CHROMEDRIVER` and
//! `HOGSEND_TEST_CHROMIUM` override the binaries.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key of a WebDriver element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An HTTP exchange with chromedriver, which keeps connections open whatever the request
/// says: the answer is read up to its `Content-Length`. Returns the status and the JSON body.
async fn driver_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("chromedriver at {addr}: {e}"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let json =
                    serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                return (status, json);
            }
        }
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        assert!(
            n > 0,
            "chromedriver closed the connection: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// chromedriver with one headless Chromium session; both stopped when dropped.
pub(crate) struct Browser {
    driver: std::process::Child,
    addr: SocketAddr,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` × `height` CSS pixels.
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        let chromedriver =
            std::env::var("HOGSEND_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium =
            std::env::var("HOGSEND_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = std::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{chromedriver}` ({e}): apt-get install chromium chromium-driver \
                     (.ci/run does it)"
                )
            });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let started = Instant::now();
        loop {
            let ready = tokio::net::TcpStream::connect(addr).await.is_ok()
                && driver_http(addr, "GET", "/status", None).await.1["value"]["ready"] == true;
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let session = browser
            .command(
                "POST",
                "/session",
                Some(
                    json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}")]}}}}),
                ),
            )
            .await;
        browser.session = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        browser
    }

    /// A WebDriver command; the answer's `value`. Session commands take a path relative to
    /// the session (`/url`).
    pub(crate) async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = if path == "/session" {
            path.to_owned()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let (status, answer) = driver_http(self.addr, method, &path, body.as_ref()).await;
        assert!(
            status == 200,
            "chromedriver {method} {path}: {status} {answer}"
        );
        answer["value"].clone()
    }

    /// Opens `url` (returns once the page loaded).
    pub(crate) async fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    /// The element a CSS selector finds (the test fails when none does).
    pub(crate) async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element `{css}`: {found}"))
            .to_owned()
    }

    /// Clicks an element as a person would (it must be visible and not covered).
    pub(crate) async fn click(&self, element: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Whether a checkbox is ticked.
    pub(crate) async fn selected(&self, element: &str) -> bool {
        self.command("GET", &format!("/element/{element}/selected"), None)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// Runs a script in the page; its result.
    pub(crate) async fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Saves a PNG screenshot of the window under `target/artifacts/` and returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let shot = self.command("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}
