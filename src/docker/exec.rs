//! Commands run inside containers: to completion with their output returned, or with
//! their stdout read as a stream (a dump) or their stdin written as one (a load).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::raw::{Channel, Frames};
use super::{api_error, exit_text, Docker};
use crate::error::{Error, Result};

/// How much of a command's stderr is kept for the error message.
const STDERR_TAIL: usize = 4096;
/// How much of a dump's end is kept to look for its completion marker.
const STDOUT_TAIL: usize = 4096;

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
        // A long piece replaces what was kept: its end is all that is kept of it.
        if data.len() >= cap {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - cap..]);
            return;
        }
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

impl Docker {
    async fn start_exec(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<(String, StartExecResults)> {
        let what = cmd.first().copied().unwrap_or("command");
        let id = self.create_exec(container, cmd, env, stdin).await?;
        let started = self
            .client
            .start_exec(
                &id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(1 << 20),
                }),
            )
            .await
            .map_err(|e| api_error(&format!("starting {what} in container {container}"), e))?;
        Ok((id, started))
    }

    /// Creates an exec of `cmd` in the container, not yet started: its ID.
    async fn create_exec(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
        stdin: bool,
    ) -> Result<String> {
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
        Ok(exec.id)
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
    /// failure is returned as the final read's error. The output is read from the
    /// daemon's socket on the reader's thread (see [`super::raw`]).
    pub fn stream(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[(String, String)],
        marker: Option<&'static str>,
    ) -> Result<ExecReader> {
        let what = cmd.first().copied().unwrap_or("command");
        let id = self
            .rt
            .block_on(self.create_exec(container, cmd, env, false))?;
        let frames = super::raw::start(&self.socket, &id).map_err(|e| match e {
            Error::Failed(m) => {
                Error::Failed(format!("starting {what} in container {container}: {m}"))
            }
            other => other,
        })?;
        Ok(ExecReader {
            docker: self.clone(),
            exec_id: id,
            what: format!("{what} in container {container}"),
            tool: what.to_string(),
            frames,
            stderr: Tail::default(),
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
}

/// A command's stdout, read as a stream; see [`Docker::stream`].
pub struct ExecReader {
    docker: Docker,
    exec_id: String,
    what: String,
    tool: String,
    frames: Frames<UnixStream>,
    stderr: Tail,
    /// The end of stdout, where the completion marker is.
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
        let stderr = self.stderr.text(STDERR_TAIL);
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
        if self.finished || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let got = self.frames.read(buf).map_err(|e| {
                self.finished = true;
                std::io::Error::other(format!("reading the output of {}: {e}", self.what))
            })?;
            match got {
                Some((Channel::Stdout, n)) => {
                    if n == 0 {
                        continue;
                    }
                    // Only a completion marker is looked for in the end.
                    if self.marker.is_some() {
                        self.tail.push(&buf[..n], STDOUT_TAIL);
                    }
                    return Ok(n);
                }
                Some((Channel::Stderr, n)) => self.stderr.push(&buf[..n], STDERR_TAIL),
                None => {
                    self.finished = true;
                    self.finish()?;
                    return Ok(0);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_summary_keeps_the_last_lines() {
        assert_eq!(stderr_summary(""), "no error output");
        assert_eq!(stderr_summary("a\n\nb\nc\nd\n"), "b | c | d");
    }
}
