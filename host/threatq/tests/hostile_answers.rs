//! Answers no real ThreatQ gives, which the client must survive without a
//! panic and without filling memory: a token that "never" expires, and
//! bodies far larger than any ThreatQ answer.

use std::time::Duration;

use threatq_client::{Client, RetryPolicy, ThreatqConfig, ThreatqError};
use threatq_sim::{ThreatqSim, ThreatqSimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn config(base_url: &str) -> ThreatqConfig {
    ThreatqConfig {
        base_url: base_url.parse().expect("test URL"),
        client_id: "sim-client".to_owned(),
        username: "analyst@example.com".to_owned(),
        password: "sim-password".to_owned().into(),
    }
}

fn one_attempt() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn a_token_lifetime_of_u64_max_seconds_is_capped_not_a_panic() {
    let sim = ThreatqSim::start(ThreatqSimConfig {
        // The sim answers `expires_in: ttl.as_secs()`: 18446744073709551615.
        token_ttl: Duration::MAX,
        ..ThreatqSimConfig::default()
    })
    .await
    .expect("sim starts");
    let client = Client::new(
        config(&sim.base_url()),
        reqwest::Client::new(),
        one_attempt(),
    );
    client
        .login()
        .await
        .expect("login survives a huge expires_in");
    // The token is reused: the capped lifetime is still in the future.
    client.login().await.expect("second call");
}

/// A server that answers every request with `head` and then streams zeros
/// until the client hangs up. Returns its base URL.
async fn endless_server(head: &'static str, chunked: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let zeros = vec![b'0'; 64 * 1024];
                loop {
                    let written = if chunked {
                        let mut frame = format!("{:x}\r\n", zeros.len()).into_bytes();
                        frame.extend_from_slice(&zeros);
                        frame.extend_from_slice(b"\r\n");
                        socket.write_all(&frame).await
                    } else {
                        socket.write_all(&zeros).await
                    };
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

async fn login_error(base_url: &str) -> ThreatqError {
    let client = Client::new(config(base_url), reqwest::Client::new(), one_attempt());
    tokio::time::timeout(Duration::from_secs(60), client.login())
        .await
        .expect("the client gives up on a huge body instead of reading it for ever")
        .expect_err("a huge body is an error")
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_reading_it() {
    let url = endless_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4000000000\r\n\r\n",
        false,
    )
    .await;
    let text = login_error(&url).await.to_string();
    assert!(text.contains("MiB limit"), "{text}");
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    let url = endless_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        true,
    )
    .await;
    let text = login_error(&url).await.to_string();
    assert!(text.contains("MiB limit"), "{text}");
}

/// A server that answers every request with 200 and `body` (declared with
/// its exact length). Returns its base URL.
async fn fixed_server(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    let body = std::sync::Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = std::sync::Arc::clone(&body);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                if socket.write_all(head.as_bytes()).await.is_ok() {
                    let _ = socket.write_all(&body).await;
                }
            });
        }
    });
    format!("http://{address}")
}

/// A well-formed answer of 20 MiB: under the old 32 MiB cap it was read
/// and parsed whole; at 16 MiB it is refused before it is read.
#[tokio::test]
async fn a_well_formed_answer_over_16_mib_is_refused() {
    let padding = "0".repeat(20 * 1024 * 1024);
    let body = format!(r#"{{"access_token":"tok-abc","expires_in":3600,"padding":"{padding}"}}"#);
    let url = fixed_server(body.into_bytes()).await;
    let text = login_error(&url).await.to_string();
    assert!(text.contains("16 MiB limit"), "{text}");
}
