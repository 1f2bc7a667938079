//! Watch streams for the end-to-end tests: a bidirectional Watch stream whose responses are
//! recorded as they arrive, with waits on conditions over them bounded by a deadline (never a
//! fixed sleep), and the normalization the differential tests compare with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_etcd_api::pb::etcdserverpb as pb;
use tokio::sync::{mpsc, Notify};
use tonic::transport::Channel;

/// How long a test waits for a response it expects before it reports the wait as failed.
pub const RESPONSE_WAIT_MAX: Duration = Duration::from_secs(30);

/// A watch stream whose responses are recorded in arrival order.
pub struct RecordedStream {
    sender: mpsc::UnboundedSender<pb::WatchRequest>,
    received: Arc<Mutex<Vec<pb::WatchResponse>>>,
    arrived: Arc<Notify>,
    /// The status the stream ended with, if it ended.
    ended: Arc<Mutex<Option<tonic::Status>>>,
    /// Set for a paused stream: responses are not read until [`RecordedStream::resume`].
    resume: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Zeroes what identifies the server rather than the data (as the differential test does).
pub fn normalize(response: &mut pb::WatchResponse) {
    if let Some(header) = &mut response.header {
        header.cluster_id = 0;
        header.member_id = 0;
        header.raft_term = 0;
    }
}

pub fn create(key: &str, range_end: &[u8], start_revision: i64) -> pb::WatchCreateRequest {
    pb::WatchCreateRequest { key: key.as_bytes().to_vec(), range_end: range_end.to_vec(), start_revision, ..Default::default() }
}

impl RecordedStream {
    /// Opens a stream with its first create request already sent (etcd answers the call only once
    /// a request arrives).
    pub async fn open(channel: Channel, first: pb::WatchCreateRequest) -> RecordedStream {
        RecordedStream::open_with(channel, first, false).await
    }

    /// A stream whose responses are not read (so the server cannot send more than gRPC's flow
    /// control lets it) until [`RecordedStream::resume`]: a client that falls behind.
    pub async fn open_paused(channel: Channel, first: pb::WatchCreateRequest) -> RecordedStream {
        RecordedStream::open_with(channel, first, true).await
    }

    pub fn resume(&mut self) {
        if let Some(resume) = self.resume.take() {
            let _ = resume.send(());
        }
    }

    async fn open_with(channel: Channel, first: pb::WatchCreateRequest, paused: bool) -> RecordedStream {
        let (sender, requests) = mpsc::unbounded_channel();
        sender.send(pb::WatchRequest { request_union: Some(pb::watch_request::RequestUnion::CreateRequest(first)) }).expect("queue the first request");
        let mut client = pb::watch_client::WatchClient::new(channel).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX);
        let mut responses = client.watch(tokio_stream::wrappers::UnboundedReceiverStream::new(requests)).await.expect("open a watch stream").into_inner();
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let ended = Arc::new(Mutex::new(None));
        let (record, wake, end) = (received.clone(), arrived.clone(), ended.clone());
        let (resume, resumed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if paused {
                let _ = resumed.await;
            }
            loop {
                match responses.message().await {
                    Ok(Some(mut response)) => {
                        normalize(&mut response);
                        record.lock().expect("record lock").push(response);
                    }
                    Ok(None) => {
                        *end.lock().expect("end lock") = Some(tonic::Status::ok("stream ended"));
                        wake.notify_waiters();
                        return;
                    }
                    Err(status) => {
                        *end.lock().expect("end lock") = Some(status);
                        wake.notify_waiters();
                        return;
                    }
                }
                wake.notify_waiters();
            }
        });
        RecordedStream { sender, received, arrived, ended, resume: paused.then_some(resume) }
    }

    fn send(&self, request: pb::watch_request::RequestUnion) {
        // A stream that has ended takes nothing more; the waits then report it.
        let _ = self.sender.send(pb::WatchRequest { request_union: Some(request) });
    }

    pub fn create(&self, request: pb::WatchCreateRequest) {
        self.send(pb::watch_request::RequestUnion::CreateRequest(request));
    }

    pub fn cancel(&self, watch_id: i64) {
        self.send(pb::watch_request::RequestUnion::CancelRequest(pb::WatchCancelRequest { watch_id }));
    }

    pub fn request_progress(&self) {
        self.send(pb::watch_request::RequestUnion::ProgressRequest(pb::WatchProgressRequest {}));
    }

    /// Closes the sending side (the stream itself stays open, as a Go client's would).
    pub fn close_sending(&mut self) {
        let (closed, _) = mpsc::unbounded_channel();
        self.sender = closed;
    }

    pub fn responses(&self) -> Vec<pb::WatchResponse> {
        self.received.lock().expect("record lock").clone()
    }

    pub fn len(&self) -> usize {
        self.received.lock().expect("record lock").len()
    }

    pub fn ended(&self) -> Option<tonic::Status> {
        self.ended.lock().expect("end lock").clone()
    }

    /// Waits until `condition` holds over the responses so far; false if it still does not after
    /// `limit` (or the stream ended without it).
    pub async fn wait_until(&self, limit: Duration, condition: impl Fn(&[pb::WatchResponse]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if condition(&self.received.lock().expect("record lock")) {
                return true;
            }
            if self.ended().is_some() {
                return false;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return condition(&self.received.lock().expect("record lock"));
            }
        }
    }
}

/// The last revision any event of `watch_id` reached in `responses` (0 if none).
pub fn last_event_revision(responses: &[pb::WatchResponse], watch_id: i64) -> i64 {
    responses
        .iter()
        .filter(|response| response.watch_id == watch_id)
        .flat_map(|response| response.events.iter())
        .filter_map(|event| event.kv.as_ref().map(|kv| kv.mod_revision))
        .max()
        .unwrap_or(0)
}
