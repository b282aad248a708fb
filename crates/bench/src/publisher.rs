//! The benchmark publisher: POSTs over one kept-alive connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chunked::Dechunker;
use crate::net::Conn;
use crate::{BenchError, PublishFormat, Target};

const CLOSED: &str = "the server closed the publishing connection";

/// One kept-alive publishing connection.
pub(crate) struct Publisher {
    stream: Conn,
    target: Target,
    format: PublishFormat,
    buf: Vec<u8>,
    /// The server said `Connection: close` (Pushpin's publish API does, on
    /// every answer): the next publish opens a new connection.
    closing: bool,
}

impl Publisher {
    pub(crate) async fn connect(
        target: Target,
        format: PublishFormat,
    ) -> Result<Publisher, BenchError> {
        let stream = Conn::open(&target).await?;
        Ok(Publisher {
            stream,
            target,
            format,
            buf: Vec::with_capacity(4096),
            closing: false,
        })
    }

    /// Publishes `data`; returns when the server answered 2xx. A server
    /// that closed the kept-alive connection (nginx does after
    /// `keepalive_requests`) gets one retry on a new connection.
    /// `n` replaces `{n}` in the topic, channel or path (a topic each).
    pub(crate) async fn publish(&mut self, data: &str, n: usize) -> Result<(), BenchError> {
        match self.publish_once(data, n).await {
            Err(BenchError::Publish(reason)) if reason == CLOSED => {
                self.stream = Conn::open(&self.target).await?;
                self.buf.clear();
                self.publish_once(data, n).await
            }
            other => other,
        }
    }

    async fn publish_once(&mut self, data: &str, n: usize) -> Result<(), BenchError> {
        if std::mem::take(&mut self.closing) {
            self.stream = Conn::open(&self.target).await?;
            self.buf.clear();
        }
        let number = n.to_string();
        let numbered = |text: &str| text.replace("{n}", &number).replace("%7Bn%7D", &number);
        let (body, content_type) = match &self.format {
            PublishFormat::Mercure { topic } => {
                let body: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("topic", &numbered(topic))
                    .append_pair("data", data)
                    .finish();
                (body, "application/x-www-form-urlencoded")
            }
            PublishFormat::Raw => (data.to_owned(), "text/plain"),
            PublishFormat::Grip { channel } => {
                let item = serde_json::json!({"items": [{
                    "channel": numbered(channel),
                    "formats": {"http-stream": {"content": format!("data: {data}\n\n")}},
                }]});
                (item.to_string(), "application/json")
            }
        };
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}\r\n{body}",
            numbered(&self.target.path_and_query),
            self.target.host,
            body.len(),
            self.target.extra_headers
        );
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| BenchError::Publish(e.to_string()))?;
        self.stream
            .flush()
            .await
            .map_err(|e| BenchError::Publish(e.to_string()))?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<(), BenchError> {
        let head_end = loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            self.read_more().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.buf.drain(..head_end + 4);
        self.closing = head.contains("\r\nconnection: close");
        if head.contains("transfer-encoding: chunked") {
            let mut dechunker = Dechunker::new();
            loop {
                let taken = std::mem::take(&mut self.buf);
                dechunker
                    .feed(&taken, |_| {})
                    .map_err(|e| BenchError::Publish(e.to_string()))?;
                if dechunker.is_done() {
                    break;
                }
                self.read_more().await?;
            }
        } else {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while self.buf.len() < length {
                self.read_more().await?;
            }
            self.buf.drain(..length);
        }
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(BenchError::Publish(format!("the server answered {status}")))
        }
    }

    async fn read_more(&mut self) -> Result<(), BenchError> {
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| BenchError::Publish(e.to_string()))?;
        if n == 0 {
            return Err(BenchError::Publish(
                "the server closed the publishing connection".into(),
            ));
        }
        Ok(())
    }
}
