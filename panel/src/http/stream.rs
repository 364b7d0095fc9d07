//! Interactive sessions over a WebSocket, shared by the API's streamed exec and the
//! browser terminal.
//!
//! The contract (also in README and the OpenAPI description):
//! - server to client, binary frames: one byte naming the stream (1 stdout, 2 stderr; a
//!   terminal sends everything as 1), then the bytes;
//! - client to server, binary frames: bytes for stdin; text frames: JSON
//!   `{"type":"resize","cols":C,"rows":R}` or `{"type":"eof"}` (closes stdin);
//! - at the end, a text frame `{"type":"exit","code":N}` (or `{"type":"ended","reason":R}`
//!   when the session was ended, idle or the client's login ended), then a close frame.
//!
//! Closing the socket hangs up the session (SIGHUP, then SIGKILL to its process group).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::runtime::interactive::{Reader, DRAIN, HANG_UP_GRACE};
use crate::service::shells::OpenSession;

/// Stream ids of output frames.
const STDOUT: u8 = 1;
const STDERR: u8 = 2;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u16, rows: u16 },
    Eof,
}

fn read_into(stream: u8, mut r: Reader, tx: mpsc::Sender<Vec<u8>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            buf[0] = stream;
            match r.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..=n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
}

fn end_frame(kind: &str, key: &str, value: serde_json::Value) -> Message {
    Message::Text(
        serde_json::json!({ "type": kind, key: value })
            .to_string()
            .into(),
    )
}

/// Runs the session over `socket` until the process ends, the client leaves, someone
/// ends it, or nothing passes for `idle`.
pub async fn bridge(mut socket: WebSocket, open: OpenSession, idle: Duration) {
    let OpenSession { io, mut ticket } = open;
    let process = io.process;
    let mut stdin = Some(io.stdin);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(8);
    let mut readers = vec![read_into(STDOUT, io.stdout, tx.clone())];
    if let Some(err) = io.stderr {
        readers.push(read_into(STDERR, err, tx.clone()));
    }
    drop(tx);
    let mut last = Instant::now();
    let mut exited = false;
    let mut outputs_open = true;
    let mut exit_deadline: Option<Instant> = None;
    let mut ended: Option<&str> = None;
    loop {
        if exited && !outputs_open {
            break;
        }
        let drain_until =
            exit_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            msg = socket.recv() => {
                last = Instant::now();
                match msg {
                    Some(Ok(Message::Binary(data))) => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(&data).await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                        Ok(Control::Resize { cols, rows }) if cols > 0 && rows > 0 => {
                            process.resize(cols, rows)
                        }
                        Ok(Control::Eof) => stdin = None,
                        _ => {}
                    },
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => {
                        process.hang_up(HANG_UP_GRACE).await;
                        ended = Some("disconnected");
                        break;
                    }
                }
            }
            chunk = rx.recv(), if outputs_open => match chunk {
                Some(bytes) => {
                    last = Instant::now();
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        process.hang_up(HANG_UP_GRACE).await;
                        ended = Some("disconnected");
                        break;
                    }
                }
                None => outputs_open = false,
            },
            _ = process.exited(), if !exited => {
                exited = true;
                exit_deadline = Some(Instant::now() + DRAIN);
            }
            _ = tokio::time::sleep_until(drain_until), if exit_deadline.is_some() => break,
            _ = ticket.ended.changed() => {
                process.kill();
                ended = Some("ended");
                break;
            }
            _ = tokio::time::sleep_until(last + idle) => {
                process.hang_up(HANG_UP_GRACE).await;
                ended = Some("idle");
                break;
            }
        }
    }
    drop(stdin);
    for r in &readers {
        r.abort();
    }
    let code = process.wait().await.unwrap_or(255);
    let (frame, outcome) = match ended {
        Some(why) => (end_frame("ended", "reason", why.into()), why.to_string()),
        None => (
            end_frame("exit", "code", code.into()),
            format!("exit {code}"),
        ),
    };
    if ended != Some("disconnected") {
        let _ = socket.send(frame).await;
        let _ = socket.send(Message::Close(None)).await;
    }
    ticket.finish(&outcome).await;
}
