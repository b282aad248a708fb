//! [`NatsLog`]: the hub's [`Log`] on one JetStream stream.

use std::sync::{Arc, Mutex};

use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use futures_util::future::join_all;

use super::entry;
use super::tail::NatsTail;
use super::{Connection, Nats, NatsOptions};
use crate::log::{Appended, Entry, Located, Log, LogError, LogFuture, LogStats, Tail};

/// The hub's log on a JetStream stream, shared by every node with the same
/// servers and stream name. Cheap to clone; every clone is the same log.
///
/// A publish is answered after JetStream acknowledged it: with
/// `replicas: 3`, once a quorum of the stream's servers holds it, so the
/// loss of any one server loses no acknowledged update.
#[derive(Debug, Clone)]
pub struct NatsLog {
    pub(super) nats: Arc<Nats>,
    /// The stream's creation time, as this node first saw it: a stream
    /// recreated under the same name (its sequences restarted) has another.
    epoch: Arc<Mutex<Option<Arc<str>>>>,
}

/// One publish of a batch, sent and not yet answered.
enum Sent {
    Waiting(jetstream::context::PublishAckFuture),
    /// The client refused it before sending (too large, say).
    Refused(Arc<str>),
}

impl NatsLog {
    /// A log on the JetStream stream named in `options`, not connected yet:
    /// it connects on first use, creates the stream if it is missing, and
    /// reconnects whenever NATS goes away.
    ///
    /// # Errors
    /// [`LogError::Config`] for unusable options (a bad URL, stream name,
    /// replica count, TLS or credentials file).
    pub fn new(options: NatsOptions) -> Result<NatsLog, LogError> {
        Ok(NatsLog {
            nats: Arc::new(Nats::new(options)?),
            epoch: Arc::default(),
        })
    }

    /// The presence of this node, on the same connection.
    pub fn presence(&self) -> super::NatsPresence {
        super::NatsPresence::new(self.nats.clone())
    }

    /// This node's id in the cluster.
    pub fn node(&self) -> &str {
        &self.nats.node
    }

    pub(super) fn known_epoch(&self) -> Option<Arc<str>> {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) async fn connection(&self) -> Result<&Connection, LogError> {
        self.nats.connection().await
    }

    /// A handle on the stream (no request is made).
    pub(super) async fn stream(&self) -> Result<Stream<()>, LogError> {
        let connection = self.connection().await?;
        connection
            .js
            .get_stream_no_info(&self.nats.options.stream)
            .await
            .map_err(|e| LogError::Config(format!("unusable NATS stream name: {e}")))
    }

    /// The stream's state, and its epoch (learnt on the first call).
    pub(super) async fn info(&self) -> Result<(jetstream::stream::Info, Arc<str>), LogError> {
        let connection = self.connection().await?;
        let name = &self.nats.options.stream;
        let info = match connection.js.get_stream(name).await {
            Ok(mut stream) => stream
                .info()
                .await
                .map_err(|e| self.nats.unavailable("reading the stream", e))?
                .clone(),
            Err(error) => {
                let missing = matches!(
                    error.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref e)
                        if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                );
                if !missing {
                    return Err(self.nats.unavailable("reading the stream", error));
                }
                self.create().await?
            }
        };
        let epoch: Arc<str> = info.created.unix_timestamp_nanos().to_string().into();
        let mut known = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        if known.as_ref().is_some_and(|k| **k != *epoch) {
            tracing::warn!(stream = %name, "the NATS stream was recreated (a new epoch): history before it is gone");
        }
        known.get_or_insert(epoch.clone());
        Ok((info, epoch))
    }

    /// Creates the stream; another node may create it at the same moment.
    async fn create(&self) -> Result<jetstream::stream::Info, LogError> {
        let connection = self.connection().await?;
        let config = self.nats.stream_config();
        tracing::info!(
            stream = %config.name,
            replicas = config.num_replicas,
            "creating the NATS stream that holds the log"
        );
        match connection.js.create_stream(config).await {
            Ok(mut stream) => Ok(stream
                .info()
                .await
                .map_err(|e| self.nats.unavailable("reading the new stream", e))?
                .clone()),
            Err(error) => {
                let text = error.to_string();
                // Another node won the race: read what it made.
                if text.contains("already in use") {
                    let mut stream = connection
                        .js
                        .get_stream(&self.nats.options.stream)
                        .await
                        .map_err(|e| self.nats.unavailable("reading the stream", e))?;
                    return Ok(stream
                        .info()
                        .await
                        .map_err(|e| self.nats.unavailable("reading the stream", e))?
                        .clone());
                }
                if text.contains("insufficient resources") || text.contains("replicas") {
                    return Err(LogError::Config(format!(
                        "NATS at {} cannot create the stream {} with {} replicas: {text} (a cluster of at least as many JetStream servers is needed; --nats-replicas 1 for one server)",
                        self.nats.target, self.nats.options.stream, self.nats.options.replicas
                    )));
                }
                Err(self.nats.unavailable("creating the stream", error))
            }
        }
    }

    /// Brings the stream's limits and replicas to the options when another
    /// node (or an operator) set them otherwise: the newest node's settings
    /// win, as with `--history-*` on one node.
    async fn reconcile(&self, info: &jetstream::stream::Info) -> Result<(), LogError> {
        let wanted = self.nats.stream_config();
        let have = &info.config;
        let same = have.max_messages == wanted.max_messages
            && have.max_bytes == wanted.max_bytes
            && have.max_age == wanted.max_age
            && have.num_replicas == wanted.num_replicas
            && have.subjects == wanted.subjects;
        if same {
            return Ok(());
        }
        tracing::warn!(
            stream = %wanted.name,
            replicas = format!("{} -> {}", have.num_replicas, wanted.num_replicas),
            max_messages = format!("{} -> {}", have.max_messages, wanted.max_messages),
            max_bytes = format!("{} -> {}", have.max_bytes, wanted.max_bytes),
            "the NATS stream's limits differ from this node's settings; updating them"
        );
        let mut config = have.clone();
        config.max_messages = wanted.max_messages;
        config.max_bytes = wanted.max_bytes;
        config.max_age = wanted.max_age;
        config.num_replicas = wanted.num_replicas;
        config.subjects = wanted.subjects;
        let connection = self.connection().await?;
        connection.js.update_stream(config).await.map_err(|e| {
            LogError::Config(format!(
                "NATS at {} refused to update the stream {}: {e}",
                self.nats.target, self.nats.options.stream
            ))
        })?;
        Ok(())
    }

    async fn append_all(&self, entries: Vec<Entry>) -> Result<Vec<Appended>, LogError> {
        let connection = self.connection().await?;
        let stream = &self.nats.options.stream;
        let nonces: Vec<u128> = entries.iter().map(|_| rand_nonce()).collect();
        // Every publish of the batch is sent before any answer is awaited:
        // JetStream takes them in the order they arrive on this connection,
        // and the quorum round trips overlap.
        let mut sent = Vec::with_capacity(entries.len());
        for (entry, nonce) in entries.iter().zip(&nonces) {
            let publish = PublishMessage::build()
                .payload(entry::encode(entry, *nonce))
                .expected_last_subject_sequence(0);
            let subject = entry::subject(stream, &entry.id);
            sent.push(match connection.js.send_publish(subject, publish).await {
                Ok(ack) => Sent::Waiting(ack),
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    Sent::Refused(Arc::from(format!(
                        "the update is larger than NATS at {} accepts (its max_payload): {error}",
                        self.nats.target
                    )))
                }
                Err(error) => return Err(self.nats.unavailable("publishing", error)),
            });
        }
        let answers = join_all(sent.into_iter().map(|sent| async move {
            match sent {
                Sent::Waiting(ack) => Ok(ack.await),
                Sent::Refused(why) => Err(why),
            }
        }))
        .await;
        // The publishes JetStream did not acknowledge are settled at once,
        // not one after the other: in an election every publish of the
        // batch times out, and each settling is a lookup of its own.
        Ok(join_all(answers.into_iter().zip(&entries).zip(nonces).map(
            |((answer, entry), nonce)| async move {
                match answer {
                    Err(why) => Appended::Refused(why),
                    Ok(Ok(ack)) => Appended::At(ack.sequence),
                    Ok(Err(error)) => self.settle(entry, nonce, error).await,
                }
            },
        ))
        .await)
    }

    /// What became of a publish JetStream did not acknowledge.
    async fn settle(
        &self,
        entry: &Entry,
        nonce: u128,
        error: jetstream::context::PublishError,
    ) -> Appended {
        match error.kind() {
            // The stream holds an update with this id: this node's own (a
            // retried publish whose answer was lost) or another one.
            PublishErrorKind::WrongLastSequence => match self.holder(entry).await {
                Ok(Some((position, held))) if held == nonce => Appended::At(position),
                Ok(Some(_)) => Appended::DuplicateId,
                // Gone again since (trimmed): it was held by another.
                Ok(None) => Appended::DuplicateId,
                Err(why) => Appended::Unconfirmed(Arc::from(format!(
                    "NATS refused the update as a duplicate id but cannot say whose: {why}"
                ))),
            },
            // No answer in time, or the connection went: it may be stored
            // (or be stored yet, when a new stream leader commits it).
            PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                match self.holder(entry).await {
                    Ok(Some((position, held))) if held == nonce => Appended::At(position),
                    _ => Appended::Unconfirmed(Arc::from(format!(
                        "NATS at {} did not acknowledge the update ({error}): no quorum of the stream's servers confirmed it",
                        self.nats.target
                    ))),
                }
            }
            PublishErrorKind::StreamNotFound => Appended::Unconfirmed(Arc::from(format!(
                "NATS at {} has no stream {} for the update now (no responders: its servers are electing a leader, or it was deleted)",
                self.nats.target, self.nats.options.stream
            ))),
            _ => Appended::Refused(Arc::from(format!(
                "NATS at {} refused the update: {error}",
                self.nats.target
            ))),
        }
    }

    /// The position and nonce of the update the stream holds with this
    /// entry's id, if any.
    async fn holder(&self, entry: &Entry) -> Result<Option<(u64, u128)>, LogError> {
        let stream = self.stream().await?;
        let subject = entry::subject(&self.nats.options.stream, &entry.id);
        match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(Some((
                message.sequence,
                entry::nonce(&message.payload).unwrap_or_default(),
            ))),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(error) => Err(self.nats.unavailable("looking an id up", error)),
        }
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, LogError> {
        let (info, epoch) = self.info().await?;
        // A page of a recreated stream read with a cursor of the old one
        // would skip what the new one holds: refuse it, so that the reader
        // resumes and is told of the gap.
        if self.known_epoch().is_some_and(|known| known != epoch) {
            return Err(LogError::Io(format!(
                "the NATS stream {} was recreated; resume to learn what history holds",
                self.nats.options.stream
            )));
        }
        let first = (after + 1).max(info.state.first_sequence);
        let last = info
            .state
            .last_sequence
            .min(after.saturating_add(max as u64));
        if first > last {
            return Ok(Vec::new());
        }
        let stream = self.stream().await?;
        // One request per update, all in flight at once: a page is at most
        // the hub's PAGE (64), and each answer comes from the stream's
        // leader, so the page is what the quorum committed.
        let replies = join_all((first..=last).map(|sequence| {
            let stream = &stream;
            async move { (sequence, stream.get_raw_message(sequence).await) }
        }))
        .await;
        let mut entries = Vec::with_capacity(replies.len());
        for (sequence, reply) in replies {
            match reply {
                Ok(message) => match entry::decode(sequence, &message.payload) {
                    Ok((entry, _)) => entries.push(Arc::new(entry)),
                    Err(foreign) => {
                        tracing::warn!(
                            sequence,
                            why = foreign.0,
                            "skipping a message of the NATS stream that is not a Tidings update"
                        );
                    }
                },
                // Trimmed between the state and the read: the page starts
                // later, or stops here if it was in the middle.
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    if !entries.is_empty() {
                        break;
                    }
                }
                Err(error) => return Err(self.nats.unavailable("reading history", error)),
            }
        }
        Ok(entries)
    }
}

/// A number no other publish uses, to tell this node's update from another:
/// a UUIDv7 (a millisecond clock, a counter and 74 random bits).
fn rand_nonce() -> u128 {
    uuid::Uuid::now_v7().as_u128()
}

impl Log for NatsLog {
    fn open(&self) -> LogFuture<'_, u64> {
        Box::pin(async move {
            let (info, _) = self.info().await?;
            self.reconcile(&info).await?;
            Ok(info.state.last_sequence)
        })
    }

    fn append(&self, entries: Vec<Entry>) -> LogFuture<'_, Vec<Appended>> {
        Box::pin(self.append_all(entries))
    }

    fn read_after(&self, after: u64, max: usize) -> LogFuture<'_, Vec<Arc<Entry>>> {
        Box::pin(self.read(after, max))
    }

    fn locate(&self, id: &str) -> LogFuture<'_, Located> {
        let id = id.to_owned();
        Box::pin(async move {
            let (info, _) = self.info().await?;
            let stream = self.stream().await?;
            let subject = entry::subject(&self.nats.options.stream, &id);
            let position = match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => Some(message.sequence),
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => None,
                Err(error) => return Err(self.nats.unavailable("looking an id up", error)),
            };
            Ok(Located {
                position,
                first_position: (info.state.messages > 0).then_some(info.state.first_sequence),
                last_position: info.state.last_sequence,
            })
        })
    }

    /// JetStream applies the stream's limits itself.
    fn trim(&self, _now_ms: u64) -> LogFuture<'_, u64> {
        Box::pin(async { Ok(0) })
    }

    fn stats(&self) -> LogFuture<'_, LogStats> {
        Box::pin(async move {
            let (info, _) = self.info().await?;
            Ok(LogStats {
                count: info.state.messages,
                bytes: info.state.bytes,
                first_position: (info.state.messages > 0).then_some(info.state.first_sequence),
                last_position: info.state.last_sequence,
            })
        })
    }

    /// Ready to publish when the stream has a leader and a quorum of its
    /// replicas is current.
    fn check(&self) -> LogFuture<'_, ()> {
        Box::pin(async move {
            let (info, _) = self.info().await?;
            quorum(&info, self.nats.options.replicas).map(drop)
        })
    }

    fn status(&self) -> LogFuture<'_, crate::log::LogStatus> {
        Box::pin(async move {
            let connection = self.connection().await?;
            let state = connection.client.connection_state();
            let server = connection.client.server_info();
            let mut servers = vec![format!(
                "{} ({})",
                self.nats.target,
                match state {
                    async_nats::connection::State::Connected => format!(
                        "connected to {} at {}:{}",
                        server.server_name, server.host, server.port
                    ),
                    async_nats::connection::State::Pending => "connecting".to_owned(),
                    async_nats::connection::State::Disconnected => "disconnected".to_owned(),
                }
            )];
            servers.extend(server.connect_urls.iter().map(|u| format!("{u} (known)")));
            let quorum = match self.info().await {
                Ok((info, _)) => match quorum(&info, self.nats.options.replicas) {
                    Ok(said) | Err(LogError::Unavailable { what: said, .. }) => said,
                    Err(other) => other.to_string(),
                },
                Err(error) => format!("unknown: {error}"),
            };
            Ok(crate::log::LogStatus {
                engine: "nats-jetstream".into(),
                servers,
                quorum: Some(quorum),
            })
        })
    }

    fn tail(&self, after: u64) -> Box<dyn Tail> {
        Box::new(NatsTail::new(self.clone(), after))
    }
}

/// Whether the stream can acknowledge publishes: a leader, and a majority
/// of its replicas (the leader included) current. Says what it saw.
fn quorum(info: &jetstream::stream::Info, replicas: usize) -> Result<String, LogError> {
    let Some(cluster) = &info.cluster else {
        return Ok("one server (no JetStream cluster)".into());
    };
    let Some(leader) = cluster.leader.as_deref().filter(|l| !l.is_empty()) else {
        return Err(LogError::Unavailable {
            what: format!(
                "the NATS stream {} has no leader now (its servers are electing one)",
                info.config.name
            ),
            source: Arc::new(std::io::Error::other("no stream leader")),
        });
    };
    let size = info.config.num_replicas.max(replicas).max(1);
    let current = 1 + cluster
        .replicas
        .iter()
        .filter(|peer| peer.current && !peer.offline)
        .count();
    let peers: Vec<String> = cluster
        .replicas
        .iter()
        .map(|peer| {
            let state = if peer.offline {
                "offline"
            } else if peer.current {
                "current"
            } else {
                "behind"
            };
            format!("{} {state}", peer.name)
        })
        .collect();
    let said = format!(
        "stream {} R{size}: leader {leader}{}{}; {current} of {size} current, quorum {}",
        info.config.name,
        if peers.is_empty() { "" } else { ", " },
        peers.join(", "),
        size / 2 + 1
    );
    if current < size / 2 + 1 {
        return Err(LogError::Unavailable {
            what: format!("no quorum: {said}"),
            source: Arc::new(std::io::Error::other("no quorum")),
        });
    }
    Ok(said)
}
