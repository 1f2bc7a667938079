//! Strata's own Admin service (`proto/strata/admin.proto`), beside etcd's services: the online
//! snapshot stream that `strata snapshot save` reads, and taking a snapshot into the data
//! directory on demand. Not etcd's API; etcd's Maintenance.Snapshot is another matter.
//!
//! Auth, as etcd's Maintenance.Snapshot: with auth enabled only an admin (the root role) may call
//! it. Failures are `Internal` with the node's message (they are Strata's, not etcd's).

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use super::{Api, BoxStream};
use crate::errors::auth_status_unmapped;
use crate::pb::strata as admin;

impl Api {
    fn check_admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let caller = self.caller(request).map_err(auth_status_unmapped)?;
        self.node.auth_state().is_admin_permitted(caller.as_ref()).map_err(auth_status_unmapped)
    }
}

#[tonic::async_trait]
impl admin::admin_server::Admin for Api {
    type SnapshotStream = BoxStream<admin::SnapshotChunk>;

    async fn snapshot(&self, request: Request<admin::SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        self.check_admin(&request)?;
        let chunks = tokio_stream::wrappers::ReceiverStream::new(self.node.snapshot_stream()).map(|chunk| match chunk {
            Ok(chunk) => Ok(admin::SnapshotChunk { blob: chunk.bytes, revision: chunk.revision, keys_done: chunk.keys_done, keys_total: chunk.keys_total }),
            Err(message) => Err(Status::internal(format!("strata: snapshot failed: {message}"))),
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn create_snapshot(&self, request: Request<admin::CreateSnapshotRequest>) -> Result<Response<admin::CreateSnapshotResponse>, Status> {
        self.check_admin(&request)?;
        let created =
            self.node.create_snapshot(request.into_inner().full).await.map_err(|message| Status::internal(format!("strata: snapshot failed: {message}")))?;
        Ok(Response::new(admin::CreateSnapshotResponse {
            file_name: created.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default(),
            revision: created.revision,
            log_index: created.log_index,
            base_revision: created.base_revision.unwrap_or(0),
            bytes: created.bytes,
            key_count: created.key_count,
            snapshots_removed: created.snapshots_removed as u64,
            segments_removed: created.segments_removed as u64,
            duration_micros: u64::try_from(created.duration.as_micros()).unwrap_or(u64::MAX),
        }))
    }
}
