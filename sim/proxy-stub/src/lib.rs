//! A forward HTTP proxy for plain `http://` targets, on 127.0.0.1, for
//! tests: each connection goes to the authority its first request names
//! (`GET http://host:port/...`), as reqwest keeps one connection per
//! destination, and every byte the client sends is recorded, so a test sees
//! which side's traffic went through it, and with what headers. The
//! simulators answer absolute-form requests by their path, so the bytes go
//! on unchanged. A test double: nothing an operator installs uses it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

pub struct ProxyStub {
    addr: SocketAddr,
    /// What clients sent, one buffer per connection.
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProxyStub {
    /// Listens on a free port of 127.0.0.1; needs a Tokio runtime.
    pub async fn start() -> ProxyStub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy stub");
        let addr = listener.local_addr().expect("the stub's address");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, record.clone()));
            }
        });
        ProxyStub { addr, sent, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything clients sent, connection after connection.
    pub fn sent(&self) -> String {
        let sent = self.sent.lock().unwrap();
        sent.iter()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    }

    /// The request lines it carried (`GET http://127.0.0.1:port/path HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for bytes in self.sent.lock().unwrap().iter() {
            // A request line may follow a body with no line break between.
            let text = String::from_utf8_lossy(bytes);
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let marker = format!("{method} http://");
                for (at, _) in text.match_indices(&marker) {
                    let end = text[at..].find("\r\n").map_or(text.len(), |end| at + end);
                    lines.push(text[at..end].to_owned());
                }
            }
        }
        lines
    }

    /// The request lines it carried for `base` (`http://127.0.0.1:port`).
    pub fn requests_to(&self, base: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|line| line.contains(&format!(" {base}/")))
            .collect()
    }

    /// Forgets what it carried so far.
    pub fn forget(&self) {
        self.sent.lock().unwrap().clear();
    }
}

impl Drop for ProxyStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, record: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let connection = {
        let mut record = record.lock().unwrap();
        record.push(head.clone());
        record.len() - 1
    };
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or_default();
    let Some(authority) = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
    else {
        let _ = client
            .write_all(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let Ok(mut server) = TcpStream::connect(authority).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buffer = [0u8; 8192];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            record.lock().unwrap()[connection].extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
