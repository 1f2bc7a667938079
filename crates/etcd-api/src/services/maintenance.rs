//! etcd's Maintenance service, answered as a single-member etcd answers it: Alarm, Status (with
//! the alarms in `errors` and etcd-like `db_size` / `db_size_in_use`), Defragment, Hash, HashKV and
//! MoveLeader; Snapshot streams etcd's bbolt database (`crate::etcd_db`); Downgrade is etcd 3.5's
//! and stays unimplemented.
//!
//! Auth, as etcd: Defragment, Hash, HashKV and Snapshot are for admins (the root role); Alarm
//! reads the token (refusing a bad one) but needs no permission; Status and MoveLeader are not
//! checked. etcd's maintenance service returns these auth errors without mapping them to its
//! gRPC table: clients see code `Unknown` and the auth package's words (`auth: permission
//! denied`).
//!
//! Where etcd 3.4 and 3.5 answer differently, Strata answers as the 3.5 it reports being: the
//! Alarm response carries a header, and HashKV fills `hash_revision`. Defragment and MoveLeader
//! answer without a header, as both do.

use std::fmt::Write as _;

use strata_node::{Alarm, AlarmAction, ClusterRequest, ClusterResponse, WriteRequest, WriteResponse, ALARM_NONE};
use tonic::{Request, Response, Status};

use super::{Api, BoxStream, RAFT_TERM};
use crate::errors::{auth_status_unmapped, cluster_status, kv_status, not_yet};
use crate::pb::etcdserverpb as pb;

/// Snapshot messages produced ahead of the client.
const SNAPSHOT_MESSAGES_AHEAD: usize = 16;

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for Api {
    async fn alarm(&self, request: Request<pb::AlarmRequest>) -> Result<Response<pb::AlarmResponse>, Status> {
        self.caller(&request).map_err(auth_status_unmapped)?;
        let request = request.into_inner();
        let action = match pb::alarm_request::AlarmAction::try_from(request.action) {
            Ok(pb::alarm_request::AlarmAction::Get) => None,
            Ok(pb::alarm_request::AlarmAction::Activate) => Some(AlarmAction::Activate),
            Ok(pb::alarm_request::AlarmAction::Deactivate) => Some(AlarmAction::Deactivate),
            // etcd's applier answers no response at all for an unknown action; an empty one here.
            Err(_) => return Ok(Response::new(pb::AlarmResponse { header: Some(self.header(self.node.revision())), alarms: Vec::new() })),
        };
        let alarms = match action {
            None => self.node.alarms(request.alarm),
            Some(action) => {
                let change = ClusterRequest::Alarm { action, member_id: request.member_id, alarm: request.alarm };
                let WriteResponse::Cluster(ClusterResponse::Alarms(alarms)) = self.write(WriteRequest::Cluster(change)).await? else {
                    unreachable!("the writer answers an alarm with alarms")
                };
                alarms
            }
        };
        let alarms = alarms.iter().map(|alarm| pb::AlarmMember { member_id: alarm.member_id, alarm: alarm.alarm }).collect();
        Ok(Response::new(pb::AlarmResponse { header: Some(self.header(self.node.revision())), alarms }))
    }

    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        let status = self.node.status();
        let space = self.node.space();
        Ok(Response::new(pb::StatusResponse {
            header: Some(self.header(status.revision)),
            version: strata_node::ETCD_API_VERSION.to_string(),
            db_size: i64::try_from(space.size_bytes).unwrap_or(i64::MAX),
            leader: self.node.member_id(),
            raft_index: status.last_log_index,
            raft_term: RAFT_TERM,
            raft_applied_index: status.last_log_index,
            errors: self.node.alarms(ALARM_NONE).iter().map(alarm_text).collect(),
            db_size_in_use: i64::try_from(space.in_use_bytes).unwrap_or(i64::MAX),
            is_learner: false,
        }))
    }

    async fn defragment(&self, request: Request<pb::DefragmentRequest>) -> Result<Response<pb::DefragmentResponse>, Status> {
        self.check_maintenance_admin(&request)?;
        self.node.defragment();
        Ok(Response::new(pb::DefragmentResponse { header: None }))
    }

    async fn hash(&self, request: Request<pb::HashRequest>) -> Result<Response<pb::HashResponse>, Status> {
        self.check_maintenance_admin(&request)?;
        let (hash, revision) = self.node.hash();
        Ok(Response::new(pb::HashResponse { header: Some(self.header(revision)), hash }))
    }

    async fn hash_kv(&self, request: Request<pb::HashKvRequest>) -> Result<Response<pb::HashKvResponse>, Status> {
        self.check_maintenance_admin(&request)?;
        let hash = self.node.hash_kv(request.into_inner().revision).map_err(kv_status)?;
        Ok(Response::new(pb::HashKvResponse {
            header: Some(self.header(hash.revision)),
            hash: hash.hash,
            compact_revision: hash.compact_revision,
            hash_revision: hash.hash_revision,
        }))
    }

    type SnapshotStream = BoxStream<pb::SnapshotResponse>;

    /// etcd's snapshot stream: the database in etcd's bucket layout (`crate::etcd_db`) as of now,
    /// in chunks of 32 KiB with the bytes still to come, then its SHA-256 as the last message's
    /// blob, exactly as etcd streams it (no header, as etcd 3.4 and 3.5). The state is read
    /// without stopping writes; the file is laid out in memory before the first chunk, since
    /// etcd's stream tells the size from the first message on.
    async fn snapshot(&self, request: Request<pb::SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        self.check_maintenance_admin(&request)?;
        let node = self.node.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(SNAPSHOT_MESSAGES_AHEAD);
        tokio::task::spawn_blocking(move || {
            let database = match crate::etcd_db::etcd_db_of(&node, &|| sender.is_closed()) {
                Ok(database) => database,
                Err(message) => {
                    let _ = sender.blocking_send(Err(Status::internal(format!("strata: snapshot failed: {message}"))));
                    return;
                }
            };
            let total = database.len();
            let mut sent = 0;
            for chunk in database.chunks(crate::etcd_db::ETCD_SNAPSHOT_CHUNK_BYTES) {
                sent += chunk.len();
                let message = pb::SnapshotResponse { header: None, remaining_bytes: (total - sent) as u64, blob: chunk.to_vec(), version: String::new() };
                if sender.blocking_send(Ok(message)).is_err() {
                    return;
                }
            }
            let digest = crate::etcd_db::sha256(&database).to_vec();
            let _ = sender.blocking_send(Ok(pb::SnapshotResponse { header: None, remaining_bytes: 0, blob: digest, version: String::new() }));
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn move_leader(&self, request: Request<pb::MoveLeaderRequest>) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        self.node.move_leader(request.into_inner().target_id).map_err(cluster_status)?;
        Ok(Response::new(pb::MoveLeaderResponse { header: None }))
    }

    async fn downgrade(&self, _: Request<pb::DowngradeRequest>) -> Result<Response<pb::DowngradeResponse>, Status> {
        Err(not_yet("Maintenance.Downgrade"))
    }
}

impl Api {
    /// etcd's `authMaintenanceServer.isAuthenticated`: the caller must be an admin; the errors go
    /// out unmapped.
    fn check_maintenance_admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let caller = self.caller(request).map_err(auth_status_unmapped)?;
        self.node.auth_state().is_admin_permitted(caller.as_ref()).map_err(auth_status_unmapped)
    }
}

/// An alarm as etcd's Status lists it in `errors`: Go protobuf's compact text of `AlarmMember`,
/// zero fields left out, each field followed by a space (`memberID:… alarm:NOSPACE `).
fn alarm_text(alarm: &Alarm) -> String {
    let mut text = String::new();
    if alarm.member_id != 0 {
        let _ = write!(text, "memberID:{} ", alarm.member_id);
    }
    if alarm.alarm != 0 {
        match pb::AlarmType::try_from(alarm.alarm) {
            Ok(kind) => {
                let _ = write!(text, "alarm:{} ", kind.as_str_name());
            }
            Err(_) => {
                let _ = write!(text, "alarm:{} ", alarm.alarm);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_listed_in_status_as_etcd_lists_them() {
        let alarm = |member_id, alarm| alarm_text(&Alarm { member_id, alarm });
        assert_eq!(alarm(13_668_033_151_171_901_709, 1), "memberID:13668033151171901709 alarm:NOSPACE ");
        assert_eq!(alarm(7, 2), "memberID:7 alarm:CORRUPT ");
        assert_eq!(alarm(0, 1), "alarm:NOSPACE ");
        assert_eq!(alarm(7, 0), "memberID:7 ");
        assert_eq!(alarm(7, 9), "memberID:7 alarm:9 ");
    }
}
