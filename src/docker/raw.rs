//! A command's output read straight from the daemon's socket. The Docker API sends an
//! exec's stdout and stderr as one multiplexed stream of frames, an 8-byte header (the
//! stream, three zero bytes, the length as a big-endian u32) before each payload.
//! Through bollard each frame went through a tokio task, a growing `BytesMut` and a
//! channel before the reader copied it out; a base backup spent a fifth of drctl's time
//! on that. Here the reader's own thread reads each stdout payload from the socket into
//! the caller's buffer: no task, no copy.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Error, Result};

/// The most a response's head may take; the daemon sends a few hundred bytes.
const HEAD_LIMIT: usize = 16 << 10;
/// How much of an error response's body is read for its message.
const BODY_LIMIT: usize = 64 << 10;
/// How long the daemon may take to answer the start.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Which stream a frame belongs to.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Channel {
    Stdout,
    Stderr,
}

/// The frames of one exec's output.
pub(super) struct Frames<R> {
    input: R,
    /// Bytes read past the response's head, read before the input.
    early: Vec<u8>,
    early_at: usize,
    /// The payload bytes left in the current frame, and its stream.
    left: usize,
    channel: Channel,
}

/// Starts the created exec `id` on the daemon at `socket` and returns its output's
/// frames once the daemon has taken over the connection. The path has no API version,
/// as bollard's requests have none in effect: the daemon answers in its own.
pub(super) fn start(socket: &Path, id: &str) -> Result<Frames<UnixStream>> {
    let io = |e: std::io::Error| Error::io(format!("the Docker socket {}", socket.display()), e);
    let mut sock = UnixStream::connect(socket).map_err(io)?;
    let body = br#"{"Detach":false,"Tty":false}"#;
    let head = format!(
        "POST /exec/{id}/start HTTP/1.1\r\nHost: docker\r\n\
         Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    // The answer comes at once; the stream after it may pause for as long as the
    // command is silent.
    sock.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
    sock.write_all(head.as_bytes()).map_err(io)?;
    sock.write_all(body).map_err(io)?;
    let frames = Frames::after_head(sock).map_err(|e| match e {
        HeadError::Io(e) => io(e),
        HeadError::Refused(m) => Error::Failed(m),
    })?;
    frames.input.set_read_timeout(None).map_err(io)?;
    Ok(frames)
}

/// Why a response did not start a stream.
#[derive(Debug)]
pub(super) enum HeadError {
    Io(std::io::Error),
    /// The daemon's answer, as its message says it.
    Refused(String),
}

impl<R: Read> Frames<R> {
    /// Reads the response's head: a stream begins after `101` (or `200` from a daemon
    /// that does not upgrade); anything else is the daemon refusing, with its message.
    pub(super) fn after_head(mut input: R) -> std::result::Result<Self, HeadError> {
        let mut got = Vec::with_capacity(1024);
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if got.len() > HEAD_LIMIT {
                return Err(HeadError::Refused(
                    "the Docker daemon's answer has no end to its head".into(),
                ));
            }
            let mut buf = [0u8; 4096];
            let n = input.read(&mut buf).map_err(HeadError::Io)?;
            if n == 0 {
                return Err(HeadError::Refused(
                    "the Docker daemon closed the connection before it answered".into(),
                ));
            }
            got.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&got[..end]).into_owned();
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status == "101" || status == "200" {
            return Ok(Frames {
                input,
                early: got.split_off(end),
                early_at: 0,
                left: 0,
                channel: Channel::Stdout,
            });
        }
        // The connection stays open after the answer: its body is read as far as its
        // length says, or up to the end of a chunked body's first chunk.
        let mut body = got.split_off(end);
        let length = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        });
        let complete = |b: &[u8]| match length {
            Some(n) => b.len() >= n,
            None => b.windows(2).filter(|w| w == b"\r\n").count() >= 2,
        };
        while !complete(&body) && body.len() < BODY_LIMIT {
            let mut buf = [0u8; 4096];
            match input.read(&mut buf) {
                Ok(n) if n > 0 => body.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        Err(HeadError::Refused(refusal(status, &body)))
    }

    /// Reads some bytes of the connection, those read with the head first.
    fn read_raw(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.early_at < self.early.len() {
            let n = buf.len().min(self.early.len() - self.early_at);
            buf[..n].copy_from_slice(&self.early[self.early_at..self.early_at + n]);
            self.early_at += n;
            return Ok(n);
        }
        loop {
            match self.input.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// The next frame's header: false at the end of the stream.
    fn next_header(&mut self) -> std::io::Result<bool> {
        let mut h = [0u8; 8];
        let mut got = 0;
        while got < h.len() {
            let n = self.read_raw(&mut h[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(cut_short());
            }
            got += n;
        }
        self.channel = match h[0] {
            // 0 is stdin, which the daemon sends on stdout.
            0 | 1 => Channel::Stdout,
            2 => Channel::Stderr,
            other => {
                return Err(std::io::Error::other(format!(
                    "the Docker daemon sent a frame of unknown stream {other}"
                )))
            }
        };
        self.left = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        Ok(true)
    }

    /// Reads the next piece of output into `buf` (at most one frame's rest): its stream
    /// and length; `None` at the end of the stream.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> std::io::Result<Option<(Channel, usize)>> {
        while self.left == 0 {
            if !self.next_header()? {
                return Ok(None);
            }
        }
        if buf.is_empty() {
            return Ok(Some((self.channel, 0)));
        }
        let want = buf.len().min(self.left);
        let n = self.read_raw(&mut buf[..want])?;
        if n == 0 {
            return Err(cut_short());
        }
        self.left -= n;
        Ok(Some((self.channel, n)))
    }
}

fn cut_short() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the Docker daemon's stream ended inside a frame",
    )
}

/// The daemon's message in a refusal (`{"message": "..."}`), else the status.
fn refusal(status: &str, body: &[u8]) -> String {
    // A chunked body has the JSON on its second line.
    let text = String::from_utf8_lossy(body);
    let message = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find_map(|v| v.get("message")?.as_str().map(str::to_string));
    match message {
        Some(m) => m,
        None => format!("the Docker daemon answered {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Hands out what it holds a few bytes at a time, as a socket may.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    fn read_all(input: Vec<u8>, trickle: bool) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        let mut frames = if trickle {
            Frames::after_head(Box::new(Trickle(input, 0)) as Box<dyn Read>)
        } else {
            Frames::after_head(Box::new(std::io::Cursor::new(input)) as Box<dyn Read>)
        }
        .unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 5];
        while let Some((ch, n)) = frames.read(&mut buf)? {
            match ch {
                Channel::Stdout => out.extend_from_slice(&buf[..n]),
                Channel::Stderr => err.extend_from_slice(&buf[..n]),
            }
        }
        Ok((out, err))
    }

    #[test]
    fn frames_are_split_into_their_streams_however_the_bytes_arrive() {
        let mut input =
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n"
                .to_vec();
        input.extend(frame(1, b"hello, "));
        input.extend(frame(2, b"warning\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"world: a longer payload than the buffer"));
        for trickle in [false, true] {
            let (out, err) = read_all(input.clone(), trickle).unwrap();
            assert_eq!(out, b"hello, world: a longer payload than the buffer");
            assert_eq!(err, b"warning\n");
        }
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error_not_an_end() {
        let mut input = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        input.extend(frame(1, b"complete"));
        let mut cut = frame(1, b"cut short");
        cut.truncate(10);
        input.extend(&cut);
        let e = read_all(input.clone(), false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        // Inside the header too.
        input.truncate(input.len() - cut.len() + 5);
        let e = read_all(input, true).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    /// A connection the daemon keeps open: reading past what it sent would wait forever.
    struct KeptOpen(std::io::Cursor<Vec<u8>>);
    impl Read for KeptOpen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            assert!(
                n > 0 || buf.is_empty(),
                "read past the answer: this would hang"
            );
            Ok(n)
        }
    }

    fn refused(answer: String) -> String {
        match Frames::after_head(KeptOpen(std::io::Cursor::new(answer.into_bytes()))) {
            Err(HeadError::Refused(m)) => m,
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_refusal_gives_the_daemons_message_without_waiting_for_the_connection_to_close() {
        let body = "{\"message\":\"No such exec instance: abc\"}\n";
        let sized = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(refused(sized), "No such exec instance: abc");
        let chunked = format!(
            "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
            body.len()
        );
        assert_eq!(refused(chunked), "No such exec instance: abc");
        assert_eq!(
            refused("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n".into()),
            "the Docker daemon answered 500"
        );
    }

    #[test]
    fn an_unknown_stream_is_refused() {
        let mut input = b"HTTP/1.1 101 UPGRADED\r\n\r\n".to_vec();
        input.extend(frame(7, b"?"));
        assert!(read_all(input, false).is_err());
    }
}
