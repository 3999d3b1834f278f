//! The Docker API (bollard), seen from drctl's synchronous pipeline threads: container
//! facts, commands run inside containers with their output streamed in or their input
//! streamed out, and stopping, pausing and starting containers.
//!
//! Every command runs through `exec` with its credentials in the exec environment: they
//! never appear on a command line (where `ps` shows them) or in a message.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{StartContainerOptions, StopContainerOptions};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

use crate::error::{Error, Result};

/// How much of a command's stderr is kept for the error message.
const STDERR_TAIL: usize = 4096;
/// How much of a dump's end is kept to look for its completion marker.
const STDOUT_TAIL: usize = 4096;
/// Output frames (about 20 KiB each) are handed to the chunker in batches of this many
/// bytes: one thread wake-up per frame cost more system time than the dump's own pipe.
const BATCH_BYTES: usize = 256 << 10;
/// Batches buffered between the Docker connection and the chunker.
const BATCHES_IN_FLIGHT: usize = 4;

/// A connection to the Docker daemon.
#[derive(Clone)]
pub struct Docker {
    client: bollard::Docker,
    rt: Arc<Runtime>,
}

/// What drctl needs to know about a container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// Full container ID.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// `running`, `exited`, `paused`, ...
    pub status: String,
    /// The image as the container was created from (`postgres:16`).
    pub image: String,
    /// The image's content digest (`sha256:...`): its repo digest when it has one, else its ID.
    pub image_digest: String,
    /// The container's environment.
    pub env: BTreeMap<String, String>,
    /// Its entrypoint and command as configured (the image's defaults unless overridden).
    pub entrypoint: Vec<String>,
    /// See `entrypoint`.
    pub cmd: Vec<String>,
}

impl ContainerInfo {
    /// An environment variable, when set and not empty.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A finished command's output.
#[derive(Debug)]
pub struct ExecOutput {
    /// Its stdout, whole (commands run this way print little).
    pub stdout: Vec<u8>,
    /// The end of its stderr.
    pub stderr: String,
    /// Its exit code; `None` when Docker could not tell.
    pub exit_code: Option<i64>,
}

impl ExecOutput {
    /// Stdout as trimmed text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }
}

/// The last lines of a command's stderr, as one line for an error message.
pub fn stderr_summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    let text = lines[start..].join(" | ");
    if text.is_empty() {
        "no error output".into()
    } else {
        text
    }
}

/// Keeps the last `cap` bytes written to it.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    fn push(&mut self, data: &[u8], cap: usize) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > 2 * cap {
            let cut = self.buf.len() - cap;
            self.buf.drain(..cut);
        }
    }

    fn text(&self, cap: usize) -> String {
        let start = self.buf.len().saturating_sub(cap);
        String::from_utf8_lossy(&self.buf[start..]).into_owned()
    }
}

pub(crate) fn api_error(what: &str, e: bollard::errors::Error) -> Error {
    Error::Failed(format!("{what}: {}", docker_message(&e)))
}

/// The daemon's own message, without bollard's wrapping.
fn docker_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Docker {
    /// Connects to the daemon (`DOCKER_HOST` or the local socket) and checks it answers.
    pub fn connect(rt: Arc<Runtime>) -> Result<Docker> {
        let client = bollard::Docker::connect_with_local_defaults()
            .map_err(|e| Error::Environment(format!("cannot connect to the Docker daemon: {e}")))?;
        let client = client.with_timeout(Duration::from_secs(600));
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), client.ping()).await })
            .map_err(|_| Error::Environment("the Docker daemon did not answer in 30 s".into()))?
            .map_err(|e| {
                Error::Environment(format!(
                    "cannot reach the Docker daemon: {}",
                    docker_message(&e)
                ))
            })?;
        Ok(Docker { client, rt })
    }

    /// Facts about a container; an error naming it when it does not exist.
    pub fn container(&self, name: &str) -> Result<ContainerInfo> {
        let c = self
            .rt
            .block_on(self.client.inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ))
            .map_err(|e| {
                if is_not_found(&e) {
                    Error::Failed(format!("container {name} does not exist"))
                } else {
                    api_error(&format!("inspecting container {name}"), e)
                }
            })?;
        let config = c.config.unwrap_or_default();
        let image = config.image.unwrap_or_default();
        let image_id = c.image.unwrap_or_default();
        let image_digest = self
            .rt
            .block_on(self.client.inspect_image(&image_id))
            .ok()
            .and_then(|i| i.repo_digests.and_then(|d| d.into_iter().next()))
            .and_then(|d| d.split_once('@').map(|(_, h)| h.to_string()))
            .unwrap_or(image_id);
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let status = c
            .state
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_else(|| name.to_string())
                .trim_start_matches('/')
                .to_string(),
            status,
            image,
            image_digest,
            env,
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
        })
    }

    /// Facts about a container that must be running for a command to run in it.
    pub fn running_container(&self, name: &str) -> Result<ContainerInfo> {
        let info = self.container(name)?;
        if info.status != "running" {
            return Err(Error::Failed(format!(
                "container {name} is not running (status: {})",
                info.status
            )));
        }
        Ok(info)
    }

    async fn start_exec(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<(String, StartExecResults)> {
        let what = cmd.first().copied().unwrap_or("command");
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let exec = self
            .client
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: Some(env),
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| api_error(&format!("starting {what} in container {container}"), e))?;
        let started = self
            .client
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(1 << 20),
                }),
            )
            .await
            .map_err(|e| api_error(&format!("starting {what} in container {container}"), e))?;
        Ok((exec.id, started))
    }

    /// The exit code of a finished exec. The output stream can end a moment before Docker
    /// records the exit, so this waits a little for it.
    async fn exit_code(&self, exec_id: &str) -> Option<i64> {
        for _ in 0..500 {
            match self.client.inspect_exec(exec_id).await {
                Ok(r) if r.running == Some(false) => return r.exit_code,
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(_) => return None,
            }
        }
        None
    }

    /// Runs a command to completion and returns its output (for short outputs only).
    pub fn run(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput> {
        self.rt.block_on(async {
            let (id, started) = self
                .start_exec(container, cmd, env, stdin.is_some())
                .await?;
            let StartExecResults::Attached {
                mut output,
                mut input,
            } = started
            else {
                return Err(Error::Failed("exec started detached".into()));
            };
            if let Some(data) = stdin {
                input
                    .write_all(data)
                    .await
                    .map_err(|e| Error::io("writing to exec stdin", e))?;
                input
                    .shutdown()
                    .await
                    .map_err(|e| Error::io("closing exec stdin", e))?;
            }
            let (mut stdout, mut stderr) = (Vec::new(), Tail::default());
            while let Some(frame) = output.next().await {
                match frame {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        stdout.extend_from_slice(&message)
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.push(&message, STDERR_TAIL)
                    }
                    Ok(_) => {}
                    Err(e) => return Err(api_error("reading exec output", e)),
                }
            }
            Ok(ExecOutput {
                stdout,
                stderr: stderr.text(STDERR_TAIL),
                exit_code: self.exit_code(&id).await,
            })
        })
    }

    /// Runs a command and returns its stdout as text, or an error with its stderr.
    pub fn run_ok(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
    ) -> Result<String> {
        let out = self.run(container, cmd, env, None)?;
        match out.exit_code {
            Some(0) => Ok(out.text()),
            code => Err(Error::Failed(format!(
                "{} {}: {}",
                cmd[0],
                exit_text(code),
                stderr_summary(&out.stderr)
            ))),
        }
    }

    /// Starts a command whose stdout is read as a stream (a dump). Reading it gives the
    /// output; at its end, the exit code and the completion marker are checked and a
    /// failure is returned as the final read's error.
    pub fn stream(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
        marker: Option<&'static str>,
    ) -> Result<ExecReader> {
        let (id, started) = self
            .rt
            .block_on(self.start_exec(container, cmd, env, false))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(Error::Failed("exec started detached".into()));
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Vec<Bytes>, String>>(
            BATCHES_IN_FLIGHT,
        );
        let stderr = Arc::new(Mutex::new(Tail::default()));
        let task_stderr = stderr.clone();
        self.rt.spawn(async move {
            let mut batch = Vec::new();
            let mut batched = 0;
            loop {
                let frame = output.next().await;
                let item = match frame {
                    Some(Ok(bollard::container::LogOutput::StdOut { message })) => {
                        batched += message.len();
                        batch.push(message);
                        if batched < BATCH_BYTES {
                            continue;
                        }
                        Ok(std::mem::take(&mut batch))
                    }
                    Some(Ok(bollard::container::LogOutput::StdErr { message })) => {
                        task_stderr.lock().unwrap().push(&message, STDERR_TAIL);
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => Err(docker_message(&e)),
                    None if batch.is_empty() => return,
                    None => Ok(std::mem::take(&mut batch)),
                };
                batched = 0;
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(ExecReader {
            docker: self.clone(),
            exec_id: id,
            what: format!("{} in container {container}", cmd[0]),
            tool: cmd[0].to_string(),
            rx,
            pending: std::collections::VecDeque::new(),
            current: Bytes::new(),
            stderr,
            tail: Tail::default(),
            marker,
            finished: false,
        })
    }

    /// Starts a command that reads a stream on its stdin (a restore); its output is
    /// drained as it comes so it can never block on a full pipe.
    pub fn feed(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
    ) -> Result<ExecWriter> {
        let (id, started) = self
            .rt
            .block_on(self.start_exec(container, cmd, env, true))?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err(Error::Failed("exec started detached".into()));
        };
        let drained = self.rt.spawn(async move {
            let (mut stdout, mut stderr) = (Tail::default(), Tail::default());
            while let Some(frame) = output.next().await {
                match frame {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
                        stdout.push(&message, STDERR_TAIL)
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.push(&message, STDERR_TAIL)
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            (stdout.text(STDERR_TAIL), stderr.text(STDERR_TAIL))
        });
        Ok(ExecWriter {
            docker: self.clone(),
            exec_id: id,
            input: Some(input),
            drained: Some(drained),
        })
    }

    /// Stops a container, giving it `grace` to exit cleanly.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<()> {
        self.rt
            .block_on(self.client.stop_container(
                name,
                Some(StopContainerOptions {
                    t: Some(grace.as_secs() as i32),
                    signal: None,
                }),
            ))
            .map_err(|e| api_error(&format!("stopping container {name}"), e))
    }

    /// Starts a stopped container.
    pub fn start(&self, name: &str) -> Result<()> {
        self.rt
            .block_on(
                self.client
                    .start_container(name, None::<StartContainerOptions>),
            )
            .map_err(|e| api_error(&format!("starting container {name}"), e))
    }

    /// Freezes a container's processes.
    pub fn pause(&self, name: &str) -> Result<()> {
        self.rt
            .block_on(self.client.pause_container(name))
            .map_err(|e| api_error(&format!("pausing container {name}"), e))
    }

    /// Thaws a paused container.
    pub fn unpause(&self, name: &str) -> Result<()> {
        self.rt
            .block_on(self.client.unpause_container(name))
            .map_err(|e| api_error(&format!("unpausing container {name}"), e))
    }

    /// Where a named volume's data lives on this host.
    pub fn volume_path(&self, name: &str) -> Result<PathBuf> {
        let v = self
            .rt
            .block_on(self.client.inspect_volume(name))
            .map_err(|e| {
                if is_not_found(&e) {
                    Error::Failed(format!("Docker volume {name} does not exist"))
                } else {
                    api_error(&format!("inspecting volume {name}"), e)
                }
            })?;
        Ok(PathBuf::from(v.mountpoint))
    }

    /// Copies one file into a container (running or not) from a stream of its bytes: a
    /// one-entry tar archive built on the fly, so the file is never held whole.
    pub fn upload_file(
        &self,
        container: &str,
        dir: &str,
        file: &TarFile,
        body: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> Result<tokio::task::JoinHandle<Result<()>>> {
        let header = Bytes::from(file.header());
        let padding = Bytes::from(vec![0u8; file.padding() + 1024]);
        let stream = futures::stream::once(async move { header })
            .chain(futures::stream::unfold(body, |mut rx| async move {
                rx.recv().await.map(|b| (b, rx))
            }))
            .chain(futures::stream::once(async move { padding }));
        let client = self.client.clone();
        let (container, dir) = (container.to_string(), dir.to_string());
        Ok(self.rt.spawn(async move {
            client
                .upload_to_container(
                    &container,
                    Some(
                        bollard::query_parameters::UploadToContainerOptionsBuilder::default()
                            .path(&dir)
                            .build(),
                    ),
                    bollard::body_stream(stream),
                )
                .await
                .map_err(|e| api_error(&format!("copying into container {container}"), e))
        }))
    }

    /// The runtime, for callers that bridge their own streams.
    /// The last `lines` lines a container wrote (stdout and stderr), for a message
    /// about why it did not start; empty when they cannot be read.
    pub fn last_logs(&self, name: &str, lines: usize) -> String {
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut out = String::new();
        self.rt.block_on(async {
            let mut logs = self.client.logs(name, Some(opts));
            while let Some(Ok(chunk)) = logs.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        });
        out.trim_end().to_string()
    }

    /// The API client, for the calls this module does not wrap.
    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }

    /// The tokio runtime its calls run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }
}

/// "exited 1", or what is known when the code is not.
pub fn exit_text(code: Option<i64>) -> String {
    match code {
        Some(137) => "was killed (exit 137)".into(),
        Some(c) => format!("exited {c}"),
        None => "ended without an exit status".into(),
    }
}

/// A command's stdout, read as a stream; see [`Docker::stream`].
pub struct ExecReader {
    docker: Docker,
    exec_id: String,
    what: String,
    tool: String,
    rx: tokio::sync::mpsc::Receiver<std::result::Result<Vec<Bytes>, String>>,
    /// Frames of the batch being read, after `current`.
    pending: std::collections::VecDeque<Bytes>,
    current: Bytes,
    stderr: Arc<Mutex<Tail>>,
    tail: Tail,
    marker: Option<&'static str>,
    finished: bool,
}

impl ExecReader {
    /// The verdict at the end of the stream: exit code, then completion marker.
    fn finish(&mut self) -> std::io::Result<()> {
        let code = self
            .docker
            .rt
            .block_on(self.docker.exit_code(&self.exec_id));
        let stderr = self.stderr.lock().unwrap().text(STDERR_TAIL);
        if code != Some(0) {
            return Err(std::io::Error::other(format!(
                "{} {}: {}",
                self.tool,
                exit_text(code),
                stderr_summary(&stderr)
            )));
        }
        if let Some(marker) = self.marker {
            if !self.tail.text(STDOUT_TAIL).contains(marker) {
                return Err(std::io::Error::other(format!(
                    "the output of {} ended without its completion marker {marker:?}: the dump is incomplete",
                    self.what
                )));
            }
        }
        Ok(())
    }
}

impl Read for ExecReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if let Some(b) = self.pending.pop_front() {
                self.current = b;
                continue;
            }
            if self.finished {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(frames)) => {
                    for b in &frames {
                        self.tail.push(b, STDOUT_TAIL);
                    }
                    self.pending = frames.into();
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(std::io::Error::other(format!(
                        "reading the output of {}: {e}",
                        self.what
                    )));
                }
                None => {
                    self.finished = true;
                    self.finish()?;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// A command's stdin, written as a stream; see [`Docker::feed`].
pub struct ExecWriter {
    docker: Docker,
    exec_id: String,
    input: Option<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>>,
    drained: Option<tokio::task::JoinHandle<(String, String)>>,
}

impl ExecWriter {
    /// Writes a piece of the input.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let input = self.input.as_mut().expect("not finished");
        self.docker.rt.block_on(input.write_all(data))
    }

    /// Closes stdin, waits for the command to end, and returns its output.
    pub fn finish(mut self) -> Result<ExecOutput> {
        let docker = self.docker.clone();
        docker.rt.block_on(async {
            if let Some(mut input) = self.input.take() {
                let _ = input.flush().await;
                let _ = input.shutdown().await;
            }
            let (stdout, stderr) = match self.drained.take() {
                Some(d) => d.await.unwrap_or_default(),
                None => Default::default(),
            };
            Ok(ExecOutput {
                stdout: stdout.into_bytes(),
                stderr,
                exit_code: docker.exit_code(&self.exec_id).await,
            })
        })
    }
}

/// A regular file for [`Docker::upload_file`]: its tar header is built up front, so the
/// size must be known.
pub struct TarFile {
    /// File name inside the target directory.
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
}

impl TarFile {
    /// A ustar header for this file.
    fn header(&self) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        let put = |h: &mut Vec<u8>, off: usize, len: usize, value: &[u8]| {
            h[off..off + value.len().min(len)].copy_from_slice(&value[..value.len().min(len)]);
        };
        let octal = |v: u64, len: usize| format!("{v:0width$o}\0", width = len - 1).into_bytes();
        put(&mut h, 0, 100, self.name.as_bytes());
        put(&mut h, 100, 8, &octal(self.mode as u64, 8));
        put(&mut h, 108, 8, &octal(self.uid as u64, 8));
        put(&mut h, 116, 8, &octal(self.gid as u64, 8));
        put(&mut h, 124, 12, &octal(self.size, 12));
        put(&mut h, 136, 12, &octal(self.mtime.max(0) as u64, 12));
        put(&mut h, 148, 8, b"        ");
        h[156] = b'0';
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// Zero bytes after the data up to the next 512-byte block.
    fn padding(&self) -> usize {
        ((512 - self.size % 512) % 512) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_header_has_a_valid_checksum_and_fields() {
        let f = TarFile {
            name: "dump.rdb".into(),
            size: 1000,
            mode: 0o644,
            uid: 999,
            gid: 999,
            mtime: 1_700_000_000,
        };
        let h = f.header();
        assert_eq!(h.len(), 512);
        assert_eq!(&h[0..8], b"dump.rdb");
        assert_eq!(&h[124..136], b"00000001750\0");
        let mut copy = h.clone();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&b| b as u32).sum();
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(f.padding(), 24);
    }

    #[test]
    fn stderr_summary_keeps_the_last_lines() {
        assert_eq!(stderr_summary(""), "no error output");
        assert_eq!(stderr_summary("a\n\nb\nc\nd\n"), "b | c | d");
    }
}
