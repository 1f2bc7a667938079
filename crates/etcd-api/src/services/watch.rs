//! etcd's Watch service: one bidirectional stream per client, served as etcd 3.4's watch server
//! serves it. Requests (create, cancel, progress) go to the node's [`WatchStream`] in the order
//! they arrive; its responses go out in the order the hub queued them, each with a full header,
//! large ones split into fragments for watchers that allow it (etcd's `sendFragments`).
//!
//! With auth enabled, each create needs read permission on its range, checked when it arrives
//! with the credentials the stream was opened with; a refused create gets etcd's refusal (watch
//! id −1, `created` and `canceled`, the gRPC error's text as `cancel_reason`), in order with the
//! stream's other responses. Unlike etcd, a from-key create (`range_end` `"\0"`) is checked on
//! its whole range, not on its first key alone.
//!
//! Invariants:
//! - The stream ends only when the client goes away (a client that only closes its sending side
//!   still gets events, as from etcd) or the node stops (then with `etcdserver: server stopped`).
//! - Dropping the stream, in either direction, removes its watchers from the hub.

use std::sync::Arc;

use prost::Message;
use strata_node::{NodeError, WatchError, WatchStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Api, BoxStream, Credentials};
use crate::convert;
use crate::errors::node_status;
use crate::pb::etcdserverpb as pb;

/// Encoded responses waiting for the client per stream; when the client reads slower, the node's
/// per-watcher buffers fill and its watchers are caught up from history instead.
pub const WATCH_SEND_QUEUE_RESPONSES_MAX: usize = 64;

#[tonic::async_trait]
impl pb::watch_server::Watch for Api {
    type WatchStream = BoxStream<pb::WatchResponse>;

    async fn watch(&self, request: Request<Streaming<pb::WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        let credentials = Credentials::of(&request);
        let mut requests = request.into_inner();
        let stream = Arc::new(self.node.watch_stream());
        let (sender, receiver) = mpsc::channel(WATCH_SEND_QUEUE_RESPONSES_MAX);

        let receiving = stream.clone();
        let checking = self.clone();
        tokio::spawn(async move {
            // Ends when the client closes its side or goes away; the sending half goes on.
            while let Ok(Some(request)) = requests.message().await {
                handle(&checking, &credentials, &receiving, request);
            }
        });

        let api = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    responses = stream.next() => {
                        let Some(responses) = responses else {
                            let _ = sender.send(Err(node_status(NodeError::Stopped))).await;
                            return;
                        };
                        for response in responses {
                            for message in api.watch_messages(response) {
                                if sender.send(Ok(message)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    _ = sender.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

fn handle(api: &Api, credentials: &Credentials, stream: &WatchStream, request: pb::WatchRequest) {
    use pb::watch_request::RequestUnion;
    match request.request_union {
        Some(RequestUnion::CreateRequest(create)) => {
            let create = convert::watch_create(create);
            let permitted = api.resolve(credentials).and_then(|caller| api.node.auth_state().is_range_permitted(caller.as_ref(), &create.key, &create.range_end));
            match permitted {
                Ok(()) => stream.create(create),
                Err(error) => stream.refuse(WatchError::Auth(error)),
            }
        }
        Some(RequestUnion::CancelRequest(cancel)) => stream.cancel(cancel.watch_id),
        Some(RequestUnion::ProgressRequest(_)) => stream.request_progress(),
        // etcd ignores a request it does not know rather than ending the stream.
        None => {}
    }
}

impl Api {
    /// One hub response as the messages etcd sends for it: one, or its fragments when the
    /// watcher allows them, it holds two events or more and it reaches the limit, which etcd
    /// sets at `--max-request-bytes` plus gRPC's overhead.
    fn watch_messages(&self, response: strata_node::WatchResponse) -> Vec<pb::WatchResponse> {
        let fragment = response.fragment;
        let header = self.header(response.revision);
        let message = convert::watch_response(response, header);
        let limit = usize::try_from(self.info.request_bytes_max + strata_types::limits::GRPC_OVERHEAD_BYTES).unwrap_or(usize::MAX);
        if !fragment || message.events.len() < 2 || message.encoded_len() < limit {
            return vec![message];
        }
        fragments(message, limit)
    }
}

/// etcd's `sendFragments`: events go into a fragment until adding one more brings it to the limit
/// (a fragment always takes at least one); every fragment but the last is marked `fragment`.
fn fragments(mut message: pb::WatchResponse, limit: usize) -> Vec<pb::WatchResponse> {
    let events = std::mem::take(&mut message.events);
    message.fragment = true;
    // A repeated message field's element costs its tag (one byte for field 11), its length and itself.
    let event_cost = |event: &crate::pb::mvccpb::Event| {
        let length = event.encoded_len();
        1 + prost::encoding::encoded_len_varint(length as u64) + length
    };
    let base = message.encoded_len();
    let mut fragments = Vec::new();
    let mut current = Vec::new();
    let mut size = base;
    for event in events {
        let cost = event_cost(&event);
        if !current.is_empty() && size + cost >= limit {
            fragments.push(pb::WatchResponse { events: std::mem::take(&mut current), ..message.clone() });
            size = base;
        }
        size += cost;
        current.push(event);
    }
    fragments.push(pb::WatchResponse { events: current, fragment: false, ..message });
    fragments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::mvccpb;

    fn event(value_bytes: usize) -> mvccpb::Event {
        mvccpb::Event { kv: Some(mvccpb::KeyValue { key: b"k".to_vec(), value: vec![b'v'; value_bytes], ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn fragments_split_where_etcd_splits() {
        let message = pb::WatchResponse { watch_id: 3, events: (0..5).map(|_| event(600)).collect(), ..Default::default() };
        let pieces = fragments(message.clone(), 1500);
        let sizes: Vec<usize> = pieces.iter().map(|piece| piece.events.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert_eq!(pieces.iter().map(|piece| piece.fragment).collect::<Vec<_>>(), vec![true, true, false]);
        // etcd's rule, checked by encoding: a fragment with one more event would reach the limit.
        for piece in &pieces[..2] {
            let mut grown = piece.clone();
            grown.events.push(event(600));
            assert!(grown.encoded_len() >= 1500 && piece.encoded_len() < 1500);
        }
        let events: Vec<mvccpb::Event> = pieces.into_iter().flat_map(|piece| piece.events).collect();
        assert_eq!(events, message.events);
        // One event too large for the limit still goes out, alone.
        let pieces = fragments(pb::WatchResponse { events: vec![event(4000), event(10)], ..Default::default() }, 1500);
        assert_eq!(pieces.iter().map(|piece| piece.events.len()).collect::<Vec<_>>(), vec![1, 1]);
    }
}
