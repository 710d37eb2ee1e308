//! What the crash tests (`campaign_crash.rs`, `journey_crash.rs`) share: the real
//! `hogsend serve` as a child process that can be SIGKILLed and started again, an HTTP
//! client that reports a dead daemon instead of panicking, the CLI's `migrate` and `keys`,
//! a seeded random source, and polling.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of a daemon's last log lines a failure message shows.
const KEPT_LINES: usize = 60;

/// A running `hogsend serve`, SIGKILLed when dropped.
pub(crate) struct Daemon {
    child: Option<Child>,
    /// The address its API listens on.
    pub addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Daemon {
    /// Starts `hogsend serve DIR` on `database_url` with `env`, and waits until its API
    /// answers `/healthz` (it migrates first).
    pub(crate) async fn start(dir: &Path, database_url: &str, env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hogsend"))
            .arg("serve")
            .arg(dir)
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hogsend serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let kept = log.clone();
        std::thread::spawn(move || {
            // Drains stderr until the process dies, so the daemon never blocks on it.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("listening on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
                {
                    let _ = tx.send(addr);
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
            .await
            .unwrap();
        let mut daemon = Daemon {
            child: Some(child),
            addr: addr.unwrap_or_else(|_| panic!("hogsend serve did not start")),
            log,
        };
        let addr = daemon.addr;
        let up = eventually(Duration::from_secs(120), || async move {
            matches!(
                try_request(addr, "GET", "/healthz", &[], None).await,
                Some((200, _))
            )
        })
        .await;
        if !up {
            panic!("serve never answered /healthz:\n{}", daemon.log());
        }
        daemon.assert_alive();
        daemon
    }

    /// SIGKILL, and wait until the process is gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// The local TCP ports of its open sockets (Linux: `/proc`), empty once it is gone. The
    /// ports of its database connections are the `client_port`s of its backends in
    /// `pg_stat_activity`: how a test tells this daemon's backends from another's.
    pub(crate) fn local_ports(&self) -> Vec<i32> {
        let Some(child) = self.child.as_ref() else {
            return Vec::new();
        };
        let inodes: std::collections::HashSet<String> =
            std::fs::read_dir(format!("/proc/{}/fd", child.id()))
                .map(|dir| {
                    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                        .filter_map(|l| {
                            let l = l.to_string_lossy().into_owned();
                            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
        let mut ports = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() > 9 && inodes.contains(fields[9]) {
                    if let Some(port) = fields[1]
                        .rsplit(':')
                        .next()
                        .and_then(|p| i32::from_str_radix(p, 16).ok())
                    {
                        ports.push(port);
                    }
                }
            }
        }
        ports
    }

    /// Panics with the daemon's last log lines if it has exited by itself.
    pub(crate) fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("hogsend serve exited ({status}):\n{}", self.log());
            }
        }
    }

    /// Its last log lines.
    pub(crate) fn log(&self) -> String {
        let kept = self.log.lock().unwrap();
        kept.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request (one connection); `None` when the daemon cannot be reached or
/// closes the connection without an answer (it was killed), or after 60 s.
pub(crate) async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let body = body.unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(head.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head
            .lines()
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        // The daemon answers JSON with a length, never chunked, for these routes.
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .ok()
        .flatten()
}

/// Runs `hogsend ARGS… DIR --database-url URL` and returns its standard output; panics
/// with its standard error when it fails.
pub(crate) fn cli(args: &[&str], dir: &Path, database_url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hogsend"))
        .args(args)
        .arg(dir)
        .args(["--database-url", database_url])
        .env("NO_COLOR", "1")
        .output()
        .expect("run hogsend");
    assert!(
        out.status.success(),
        "hogsend {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A new API key of `scope` (`ingest`, `read`, `admin`) through `hogsend keys create`.
pub(crate) fn api_key(dir: &Path, database_url: &str, scope: &str) -> String {
    cli(&["keys", "create", "--scope", scope], dir, database_url)
}

/// Polls `check` every 20 ms until it is true (then `true`) or `within` has passed
/// (`false`).
pub(crate) async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if started.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A small seeded random source (SplitMix64): the seed comes from `HOGSEND_CRASH_SEED` when
/// set, else the clock, and is printed so a failing run can be repeated.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded as described above; prints the seed.
    pub(crate) fn from_env(test: &str) -> Rng {
        let seed = std::env::var("HOGSEND_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: HOGSEND_CRASH_SEED={seed}");
        Rng(seed)
    }

    /// The next value in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        lo + z % (hi - lo).max(1)
    }
}

/// Polls the boolean query `sql` every 20 ms until it is true (then `true`) or `within` has
/// passed (`false`).
pub(crate) async fn until_sql(conn: &mut sqlx::PgConnection, within: Duration, sql: &str) -> bool {
    let started = Instant::now();
    loop {
        let holds: Option<bool> = sqlx::query_scalar(sql)
            .fetch_optional(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if holds == Some(true) {
            return true;
        }
        if started.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
