//! Whether fail2ban-server runs: one `ping` over its socket, in fail2ban's own protocol.
//!
//! `fail2ban-client ping` costs a Python interpreter (a tenth of a second or more) to send
//! eleven bytes. The protocol is small and stable: the client writes a pickled list of
//! strings followed by `<F2B_END_COMMAND>`; the server answers a pickled `(code, value)`
//! followed by the same marker, `(0, 'pong')` for a ping. The socket's path is the server's
//! `socket` setting (`fail2ban.conf`, `fail2ban.d/*.conf`, `fail2ban.local`,
//! `fail2ban.d/*.local`). The answer is read with serde-pickle, which builds plain values
//! and never runs anything the stream names.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harden_host::Host;
use serde_pickle::{DeOptions, SerOptions, Value};

use super::ini;
use crate::resource::Failure;

/// fail2ban's end-of-message marker.
const END: &[u8] = b"<F2B_END_COMMAND>";
/// The marker that asks the server to close the connection.
const CLOSE: &[u8] = b"<F2B_CLOSE_COMMAND>";
/// fail2ban's default socket.
const DEFAULT_SOCKET: &str = "/var/run/fail2ban/fail2ban.sock";
/// A busy server answers a ping within seconds; past this, the plan cannot tell.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The server's socket, as its configuration sets it.
pub fn socket(host: &Host) -> Result<PathBuf, Failure> {
    let dir = format!("{}/fail2ban.d", ini::ETC);
    let names: Vec<String> = host
        .read_dir(Path::new(&dir))
        .map_err(|e| Failure::Probe(format!("{dir}: {e}")))?
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let local = format!("{}/fail2ban.local", ini::ETC);
    let has_local = host
        .stat(Path::new(&local))
        .map_err(|e| Failure::Probe(format!("{local}: {e}")))?
        .is_some();
    let mut config = ini::Config::default();
    for path in ini::merge_order_of("fail2ban", &names, has_local) {
        let text = host
            .read_to_string(Path::new(&path))
            .map_err(|e| Failure::Probe(format!("{path}: {e}")))?;
        config
            .files
            .push(ini::parse(&path, text.as_deref().unwrap_or("")));
    }
    let socket = config
        .definitions("Definition", "socket")
        .last()
        .map_or(DEFAULT_SOCKET.to_owned(), |d| d.value.trim().to_owned());
    Ok(PathBuf::from(socket))
}

/// Whether the server answers on `socket`; an error when that cannot be told (a server
/// too busy to answer, a socket harden may not open, an answer that is not fail2ban's).
pub async fn ping(host: &Host, socket: &Path) -> Result<bool, Failure> {
    let answer = host
        .ask_socket(socket, &request(&["ping"])?, END, TIMEOUT)
        .await;
    match answer {
        Ok(bytes) => is_pong(&bytes).map_err(|why| failed(socket, &why)),
        // What fail2ban-client reports as "Is fail2ban running?": no socket, or no listener.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(failed(socket, &e.to_string())),
    }
}

fn failed(socket: &Path, why: &str) -> Failure {
    Failure::Probe(format!(
        "cannot tell whether fail2ban-server runs: ping on {} failed: {why}",
        socket.display()
    ))
}

/// A command as the client sends it (a pickled list of strings and the marker), then the
/// close request the client sends when it is done, so the server answers and hangs up.
fn request(command: &[&str]) -> Result<Vec<u8>, Failure> {
    let mut bytes = serde_pickle::to_vec(&command, SerOptions::new())
        .map_err(|e| Failure::Probe(format!("cannot encode a fail2ban command: {e}")))?;
    for part in [END, CLOSE, END] {
        bytes.extend_from_slice(part);
    }
    Ok(bytes)
}

/// True for the server's `(0, 'pong')`.
fn is_pong(answer: &[u8]) -> Result<bool, String> {
    let body = answer
        .strip_suffix(END)
        .ok_or("the answer has no end marker")?;
    let value = serde_pickle::value_from_slice(body, DeOptions::new())
        .map_err(|e| format!("the answer is not a pickle: {e}"))?;
    match value {
        Value::Tuple(items) | Value::List(items) => match items.as_slice() {
            [Value::I64(0), Value::String(s)] if s == "pong" => Ok(true),
            _ => Err(format!("unexpected answer {items:?}")),
        },
        other => Err(format!("unexpected answer {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python 3.11's `pickle.dumps((0, 'pong'), pickle.HIGHEST_PROTOCOL)`, what the server
    /// sends, and protocol 2's form of the same.
    #[test]
    fn the_servers_pong_is_read_in_every_protocol() {
        let five = b"\x80\x05\x95\x0c\x00\x00\x00\x00\x00\x00\x00K\x00\x8c\x04pong\x94\x86\x94.";
        let two = b"\x80\x02K\x00X\x04\x00\x00\x00pongq\x00\x86q\x01.";
        for body in [&five[..], &two[..]] {
            let mut answer = body.to_vec();
            answer.extend_from_slice(END);
            assert_eq!(is_pong(&answer), Ok(true));
        }
    }

    #[test]
    fn an_error_answer_is_not_a_pong() {
        // pickle.dumps("ERROR: boom", 2)
        let mut answer = b"\x80\x02X\x0b\x00\x00\x00ERROR: boomq\x00.".to_vec();
        answer.extend_from_slice(END);
        assert!(is_pong(&answer).is_err());
        assert!(is_pong(b"\x80\x02K\x00.").is_err(), "no marker");
    }

    /// The request is what Python's pickle reads as `['ping']`.
    #[test]
    fn the_request_is_a_pickled_list_and_the_marker() {
        let bytes = request(&["ping"]).expect("request");
        let mut close = CLOSE.to_vec();
        close.extend_from_slice(END);
        let body = bytes
            .strip_suffix(close.as_slice())
            .and_then(|b| b.strip_suffix(END))
            .expect("markers");
        let value = serde_pickle::value_from_slice(body, DeOptions::new()).expect("pickle");
        assert_eq!(value, Value::List(vec![Value::String("ping".into())]));
    }
}
