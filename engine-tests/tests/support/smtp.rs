//! A real SMTP server for the email tests (aiosmtpd, `smtp_sink.py`) and readers of what it
//! received. Include with `#[path = "support/smtp.rs"] mod smtp;` (the root crate's crash
//! tests include it by its path from there: the script is compiled in, so it runs from any
//! crate).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The SMTP server, stopped (its stdin closed) on drop.
pub(crate) struct Sink {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
}

impl Sink {
    /// Starts the server; panics (never skips) when `python3` or aiosmtpd is missing.
    pub(crate) fn start() -> Sink {
        Sink::spawn(false)
    }

    /// Starts a server that records only each message's envelope and headers (no body is
    /// parsed: fast enough for thousands of messages).
    pub(crate) fn start_headers_only() -> Sink {
        Sink::spawn(true)
    }

    fn spawn(headers_only: bool) -> Sink {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("hogsend-smtp-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(include_str!("smtp_sink.py"))
            .arg(&dir)
            .args(headers_only.then_some("--headers-only"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (aiosmtpd is installed by .ci/run)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP sink did not start (is aiosmtpd installed?): {line:?}")
        });
        Sink { child, port, dir }
    }

    /// How many messages it has received so far (cheaper than [`Sink::received`]).
    pub(crate) fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
    }

    /// Every message received so far, in order.
    pub(crate) fn received(&self) -> Vec<Value> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header of a received message.
pub(crate) fn header<'a>(m: &'a Value, name: &str) -> Option<&'a str> {
    m["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .and_then(|h| h[1].as_str())
}

/// The decoded body of a received message's part of `content_type`.
pub(crate) fn part<'a>(m: &'a Value, content_type: &str) -> Option<&'a str> {
    m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == content_type)
        .and_then(|p| p["body"].as_str())
}

/// Every `href="…"` and `src="…"` value of an HTML text, in order, with `&amp;` decoded.
pub(crate) fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            out.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    out
}
