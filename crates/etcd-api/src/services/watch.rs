//! etcd's Watch service.

use tonic::Streaming;

use tonic::{Request, Response, Status};

use super::{Api, BoxStream};
use crate::errors::not_yet;
use crate::pb::etcdserverpb as pb;

#[tonic::async_trait]
impl pb::watch_server::Watch for Api {
    type WatchStream = BoxStream<pb::WatchResponse>;

    async fn watch(&self, _: Request<Streaming<pb::WatchRequest>>) -> Result<Response<Self::WatchStream>, Status> {
        Err(not_yet("Watch"))
    }
}

