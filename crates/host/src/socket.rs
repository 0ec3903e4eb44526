//! One question to a daemon over its Unix stream socket: write a request, read the answer.
//!
//! The framing is the daemon's: the answer ends where `end` appears (fail2ban closes each
//! message with a marker, not by closing the connection), or where the daemon closes the
//! stream. The whole exchange has one deadline, so a hung daemon cannot hang a plan.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Bound on an answer, far above any status answer; a daemon sending more is broken.
const MAX_ANSWER: usize = 16 << 20;

pub(crate) async fn ask(
    path: &Path,
    request: &[u8],
    end: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let exchange = async {
        let mut stream = UnixStream::connect(path).await?;
        stream.write_all(request).await?;
        read_answer(&mut stream, end).await
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{} did not answer within {} s",
                path.display(),
                timeout.as_secs()
            ),
        )
    })?
}

async fn read_answer(stream: &mut UnixStream, end: &[u8]) -> io::Result<Vec<u8>> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(answer);
        }
        answer.extend_from_slice(&chunk[..n]);
        if !end.is_empty() && answer.ends_with(end) {
            return Ok(answer);
        }
        if answer.len() > MAX_ANSWER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the answer exceeds 16 MiB",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// A server that answers in two pieces and keeps the connection open: the marker, not
    /// the end of the stream, ends the answer.
    #[test]
    fn the_answer_ends_at_the_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        runtime().block_on(async {
            let listener = UnixListener::bind(&path).expect("bind");
            let server = tokio::spawn(async move {
                let (mut conn, _) = listener.accept().await.expect("accept");
                let mut request = [0u8; 4];
                conn.read_exact(&mut request).await.expect("request");
                conn.write_all(b"po").await.expect("write");
                conn.write_all(b"ng<END>").await.expect("write");
                // Held open until the client has read.
                let mut rest = Vec::new();
                let _ = conn.read_to_end(&mut rest).await;
            });
            let answer = ask(&path, b"ping", b"<END>", Duration::from_secs(5))
                .await
                .expect("answer");
            assert_eq!(answer, b"pong<END>");
            server.abort();
        });
    }

    #[test]
    fn a_silent_daemon_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        runtime().block_on(async {
            let _listener = UnixListener::bind(&path).expect("bind");
            let e = ask(&path, b"ping", b"<END>", Duration::from_millis(200))
                .await
                .expect_err("no answer");
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn a_missing_socket_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        runtime().block_on(async {
            let e = ask(
                &dir.path().join("none.sock"),
                b"ping",
                b"<END>",
                Duration::from_secs(1),
            )
            .await
            .expect_err("no socket");
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
        });
    }
}
