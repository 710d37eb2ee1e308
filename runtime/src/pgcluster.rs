//! A private Postgres cluster started from the `initdb`/`postgres` binaries, for `hogsend dev`
//! and for tests on a machine without a reachable server.
//!
//! Postgres refuses to run as root; when this process is root the cluster is initialised and
//! run as an unprivileged system user (`postgres`, else `nobody`) through `runuser`.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// A running cluster listening on 127.0.0.1:`port`, trust auth, superuser `postgres`.
#[derive(Debug, Clone)]
pub struct PrivateCluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    run_as: Option<String>,
}

/// Why a private cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Postgres binaries found: put `initdb` and `pg_ctl` on PATH or install them under /usr/lib/postgresql/*/bin")]
    NoBinaries,
    #[error(
        "running as root and no unprivileged user (`postgres` or `nobody`) to run Postgres as"
    )]
    NoUser,
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn find_binaries() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn current_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The user Postgres will run as: `None` when this process is not root.
fn run_as_user() -> Result<Option<String>, ClusterError> {
    if current_uid() != Some(0) {
        return Ok(None);
    }
    ["postgres", "nobody"]
        .into_iter()
        .find(|u| user_exists(u))
        .map(|u| Some(u.to_owned()))
        .ok_or(ClusterError::NoUser)
}

impl PrivateCluster {
    /// Whether a cluster can live in `dir`: when run as root, the unprivileged user must be
    /// able to reach it (a project under a private home directory such as `/root` is not).
    pub fn can_host(dir: &Path) -> bool {
        let Ok(Some(user)) = run_as_user() else {
            return true;
        };
        let Ok(dir) = std::path::absolute(dir) else {
            return false;
        };
        let parent = dir.parent().unwrap_or(&dir);
        Command::new("runuser")
            .arg("-u")
            .arg(&user)
            .arg("--")
            .arg("test")
            .arg("-x")
            .arg(parent)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts (initialising if needed) the cluster kept in `dir`, or reuses it when it is
    /// already running. Safe against concurrent callers through a lock directory.
    pub fn ensure(dir: &Path) -> Result<PrivateCluster, ClusterError> {
        let bin = find_binaries().ok_or(ClusterError::NoBinaries)?;
        let run_as = run_as_user()?;
        // Postgres changes into its data directory: every path it gets must be absolute.
        let dir = &std::path::absolute(dir)?;
        fs::create_dir_all(dir)?;
        let _lock = DirLock::acquire(&dir.with_extension("lock"))?;
        let cluster = PrivateCluster {
            dir: dir.clone(),
            port: 0,
            bin,
            run_as,
        };
        let data = cluster.data_dir();
        if !data.join("PG_VERSION").is_file() {
            fs::create_dir_all(&data)?;
            cluster.chown(&cluster.dir)?;
            cluster.run(
                "initdb",
                &[
                    "-D",
                    path_str(&data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            )?;
        }
        let port_file = cluster.dir.join("port");
        if let Ok(port) = fs::read_to_string(&port_file) {
            if let Ok(port) = port.trim().parse::<u16>() {
                if cluster.is_running() {
                    return Ok(PrivateCluster { port, ..cluster });
                }
            }
        }
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            path_str(&data)
        );
        let log = cluster.dir.join("postgres.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        fs::write(&port_file, port.to_string())?;
        Ok(PrivateCluster { port, ..cluster })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The superuser URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn is_running(&self) -> bool {
        let data = self.data_dir();
        self.command("pg_ctl", &["-D", path_str(&data), "status"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Stops the cluster (fast shutdown).
    pub fn stop(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
        )
    }

    fn chown(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some(user) = &self.run_as {
            let status = Command::new("chown")
                .arg("-R")
                .arg(user)
                .arg(path)
                .status()?;
            if !status.success() {
                return Err(ClusterError::Command {
                    command: format!("chown -R {user} {}", path.display()),
                    output: status.to_string(),
                });
            }
        }
        Ok(())
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe).args(args);
                c
            }
            None => {
                let mut c = Command::new(exe);
                c.args(args);
                c
            }
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        let output = self.command(program, args).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ClusterError::Command {
                command: format!("{program} {}", args.join(" ")),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            })
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or(".")
}

/// A crude cross-process lock: an exclusive `mkdir`, removed on drop.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> io::Result<DirLock> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match fs::create_dir(path) {
                Ok(()) => return Ok(DirLock(path.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // A holder that died left its lock behind; take it over.
                    return Ok(DirLock(path.to_path_buf()));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}
