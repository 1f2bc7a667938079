//! Pins etcd's v3 wire contract: exact encodings computed by hand from
//! field numbers and wire types (tag = field_number << 3 | wire_type), and
//! the gRPC service / method names clients dial.

use prost::Message;
use strata_etcd_api::pb::etcdserverpb::{
    compare, range_request, request_op, watch_create_request, watch_request, Compare, PutRequest,
    RangeRequest, RequestOp, ResponseHeader, TxnRequest, WatchCreateRequest, WatchRequest,
    WatchResponse,
};
use strata_etcd_api::pb::{authpb, mvccpb};
use tonic::server::NamedService;

fn encode<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

#[test]
fn response_header_bytes() {
    let h = ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: 300,
        raft_term: 5,
    };
    #[rustfmt::skip]
    let want = [
        0x08, 0x01,       // 1 cluster_id varint
        0x10, 0x02,       // 2 member_id varint
        0x18, 0xac, 0x02, // 3 revision varint 300
        0x20, 0x05,       // 4 raft_term varint
    ];
    assert_eq!(encode(&h), want);
    assert_eq!(ResponseHeader::decode(&want[..]).unwrap(), h);
}

#[test]
fn range_request_bytes() {
    let r = RangeRequest {
        key: b"foo".to_vec(),
        range_end: b"fop".to_vec(),
        limit: 10,
        revision: 0,
        sort_order: range_request::SortOrder::Descend as i32,
        sort_target: range_request::SortTarget::Mod as i32,
        serializable: true,
        keys_only: false,
        count_only: true,
        min_mod_revision: 5,
        max_mod_revision: 0,
        min_create_revision: 0,
        max_create_revision: 300,
    };
    #[rustfmt::skip]
    let want = [
        0x0a, 0x03, b'f', b'o', b'o', // 1 key bytes
        0x12, 0x03, b'f', b'o', b'p', // 2 range_end bytes
        0x18, 0x0a,                   // 3 limit = 10
        // 4 revision = 0: omitted
        0x28, 0x02,                   // 5 sort_order = DESCEND
        0x30, 0x03,                   // 6 sort_target = MOD
        0x38, 0x01,                   // 7 serializable
        // 8 keys_only = false: omitted
        0x48, 0x01,                   // 9 count_only
        0x50, 0x05,                   // 10 min_mod_revision
        0x68, 0xac, 0x02,             // 13 max_create_revision = 300
    ];
    assert_eq!(encode(&r), want);
    assert_eq!(RangeRequest::decode(&want[..]).unwrap(), r);

    // Enum values are etcd's.
    assert_eq!(range_request::SortOrder::None as i32, 0);
    assert_eq!(range_request::SortOrder::Ascend as i32, 1);
    assert_eq!(range_request::SortTarget::Key as i32, 0);
    assert_eq!(range_request::SortTarget::Version as i32, 1);
    assert_eq!(range_request::SortTarget::Create as i32, 2);
    assert_eq!(range_request::SortTarget::Value as i32, 4);
}

#[test]
fn range_request_negative_revision_is_ten_byte_varint() {
    let r = RangeRequest {
        revision: -1,
        ..Default::default()
    };
    let mut want = vec![0x20];
    want.extend_from_slice(&[0xff; 9]);
    want.push(0x01);
    assert_eq!(encode(&r), want);
}

#[test]
fn put_request_bytes() {
    let p = PutRequest {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        lease: 0x1234,
        prev_kv: true,
        ignore_value: false,
        ignore_lease: true,
    };
    #[rustfmt::skip]
    let want = [
        0x0a, 0x01, b'k', // 1 key
        0x12, 0x01, b'v', // 2 value
        0x18, 0xb4, 0x24, // 3 lease = 0x1234
        0x20, 0x01,       // 4 prev_kv
        0x30, 0x01,       // 6 ignore_lease
    ];
    assert_eq!(encode(&p), want);
    assert_eq!(PutRequest::decode(&want[..]).unwrap(), p);
}

#[test]
fn compare_value_target_bytes() {
    let c = Compare {
        result: compare::CompareResult::NotEqual as i32,
        target: compare::CompareTarget::Value as i32,
        key: b"k".to_vec(),
        range_end: b"l".to_vec(),
        target_union: Some(compare::TargetUnion::Value(b"v".to_vec())),
    };
    #[rustfmt::skip]
    let want = [
        0x08, 0x03,                   // 1 result = NOT_EQUAL
        0x10, 0x03,                   // 2 target = VALUE
        0x1a, 0x01, b'k',             // 3 key
        0x3a, 0x01, b'v',             // 7 value (target_union)
        0x82, 0x04, 0x01, b'l',       // 64 range_end: tag 514 = varint 0x82 0x04
    ];
    assert_eq!(encode(&c), want);
    assert_eq!(Compare::decode(&want[..]).unwrap(), c);
}

#[test]
fn compare_oneof_zero_is_still_encoded() {
    // `version == 0` ("key does not exist") must be sent: oneof members have presence.
    let c = Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Version as i32,
        key: b"k".to_vec(),
        range_end: Vec::new(),
        target_union: Some(compare::TargetUnion::Version(0)),
    };
    assert_eq!(encode(&c), [0x1a, 0x01, b'k', 0x20, 0x00]);

    for (target, tag) in [
        (compare::TargetUnion::CreateRevision(1), 0x28),
        (compare::TargetUnion::ModRevision(1), 0x30),
        (compare::TargetUnion::Lease(1), 0x40),
    ] {
        let c = Compare {
            target_union: Some(target),
            ..Default::default()
        };
        assert_eq!(encode(&c), [tag, 0x01]);
    }
    assert_eq!(compare::CompareResult::Greater as i32, 1);
    assert_eq!(compare::CompareResult::Less as i32, 2);
    assert_eq!(compare::CompareTarget::Create as i32, 1);
    assert_eq!(compare::CompareTarget::Mod as i32, 2);
    assert_eq!(compare::CompareTarget::Lease as i32, 4);
}

#[test]
fn txn_request_bytes() {
    let t = TxnRequest {
        compare: vec![],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: b"k".to_vec(),
                ..Default::default()
            })),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: b"k".to_vec(),
                ..Default::default()
            })),
        }],
    };
    #[rustfmt::skip]
    let want = [
        0x12, 0x05,                   // 2 success: RequestOp
        0x12, 0x03,                   //   2 request_put: PutRequest
        0x0a, 0x01, b'k',             //     1 key
        0x1a, 0x05,                   // 3 failure: RequestOp
        0x0a, 0x03,                   //   1 request_range: RangeRequest
        0x0a, 0x01, b'k',             //     1 key
    ];
    assert_eq!(encode(&t), want);
    assert_eq!(TxnRequest::decode(&want[..]).unwrap(), t);
}

#[test]
fn watch_create_request_bytes() {
    let w = WatchCreateRequest {
        key: b"a".to_vec(),
        range_end: vec![0],
        start_revision: 7,
        progress_notify: true,
        filters: vec![
            watch_create_request::FilterType::Nodelete as i32,
            watch_create_request::FilterType::Noput as i32,
        ],
        prev_kv: true,
        watch_id: 42,
        fragment: true,
    };
    #[rustfmt::skip]
    let want = [
        0x0a, 0x01, b'a',       // 1 key
        0x12, 0x01, 0x00,       // 2 range_end = "\0"
        0x18, 0x07,             // 3 start_revision
        0x20, 0x01,             // 4 progress_notify
        0x2a, 0x02, 0x01, 0x00, // 5 filters, packed: NODELETE, NOPUT
        0x30, 0x01,             // 6 prev_kv
        0x38, 0x2a,             // 7 watch_id = 42
        0x40, 0x01,             // 8 fragment
    ];
    assert_eq!(encode(&w), want);
    assert_eq!(WatchCreateRequest::decode(&want[..]).unwrap(), w);

    // Wrapped in the WatchRequest oneof as create_request = 1.
    let req = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(w)),
    };
    let mut wrapped = vec![0x0a, want.len() as u8];
    wrapped.extend_from_slice(&want);
    assert_eq!(encode(&req), wrapped);

    let cancel = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CancelRequest(
            strata_etcd_api::pb::etcdserverpb::WatchCancelRequest { watch_id: 3 },
        )),
    };
    assert_eq!(encode(&cancel), [0x12, 0x02, 0x08, 0x03]);

    let progress = WatchRequest {
        request_union: Some(watch_request::RequestUnion::ProgressRequest(
            strata_etcd_api::pb::etcdserverpb::WatchProgressRequest {},
        )),
    };
    assert_eq!(encode(&progress), [0x1a, 0x00]);
}

#[test]
fn watch_response_bytes() {
    let w = WatchResponse {
        header: Some(ResponseHeader {
            revision: 9,
            ..Default::default()
        }),
        watch_id: 3,
        created: false,
        canceled: true,
        compact_revision: 4,
        cancel_reason: "x".to_owned(),
        fragment: true,
        events: vec![mvccpb::Event {
            r#type: mvccpb::event::EventType::Delete as i32,
            kv: Some(mvccpb::KeyValue {
                key: b"a".to_vec(),
                mod_revision: 9,
                ..Default::default()
            }),
            prev_kv: None,
        }],
    };
    #[rustfmt::skip]
    let want = [
        0x0a, 0x02, 0x18, 0x09,       // 1 header { 3 revision = 9 }
        0x10, 0x03,                   // 2 watch_id
        0x20, 0x01,                   // 4 canceled
        0x28, 0x04,                   // 5 compact_revision
        0x32, 0x01, b'x',             // 6 cancel_reason
        0x38, 0x01,                   // 7 fragment
        0x5a, 0x09,                   // 11 events
        0x08, 0x01,                   //   1 type = DELETE
        0x12, 0x05,                   //   2 kv
        0x0a, 0x01, b'a',             //     1 key
        0x18, 0x09,                   //     3 mod_revision
    ];
    assert_eq!(encode(&w), want);
    assert_eq!(WatchResponse::decode(&want[..]).unwrap(), w);
}

#[test]
fn key_value_and_auth_bytes() {
    let kv = mvccpb::KeyValue {
        key: b"k".to_vec(),
        create_revision: 2,
        mod_revision: 3,
        version: 4,
        value: b"v".to_vec(),
        lease: 6,
    };
    assert_eq!(
        encode(&kv),
        [0x0a, 0x01, b'k', 0x10, 0x02, 0x18, 0x03, 0x20, 0x04, 0x2a, 0x01, b'v', 0x30, 0x06]
    );

    let perm = authpb::Permission {
        perm_type: authpb::permission::Type::Readwrite as i32,
        key: b"a".to_vec(),
        range_end: b"b".to_vec(),
    };
    assert_eq!(
        encode(&perm),
        [0x08, 0x02, 0x12, 0x01, b'a', 0x1a, 0x01, b'b']
    );
    let role = authpb::Role {
        name: b"r".to_vec(),
        key_permission: vec![perm],
    };
    assert_eq!(
        encode(&role),
        [0x0a, 0x01, b'r', 0x12, 0x08, 0x08, 0x02, 0x12, 0x01, b'a', 0x1a, 0x01, b'b']
    );
}

#[test]
fn service_names() {
    use strata_etcd_api::pb::etcdserverpb::{
        auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
        lease_server::LeaseServer, maintenance_server::MaintenanceServer,
        watch_server::WatchServer,
    };
    assert_eq!(KvServer::<()>::NAME, "etcdserverpb.KV");
    assert_eq!(WatchServer::<()>::NAME, "etcdserverpb.Watch");
    assert_eq!(LeaseServer::<()>::NAME, "etcdserverpb.Lease");
    assert_eq!(ClusterServer::<()>::NAME, "etcdserverpb.Cluster");
    assert_eq!(MaintenanceServer::<()>::NAME, "etcdserverpb.Maintenance");
    assert_eq!(AuthServer::<()>::NAME, "etcdserverpb.Auth");
}

/// Every RPC of etcd v3.5's client API, as `/package.Service/Method`.
const ALL_METHODS: &[&str] = &[
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/DeleteRange",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Compact",
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseGrant",
    "/etcdserverpb.Lease/LeaseRevoke",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/etcdserverpb.Lease/LeaseTimeToLive",
    "/etcdserverpb.Lease/LeaseLeases",
    "/etcdserverpb.Cluster/MemberAdd",
    "/etcdserverpb.Cluster/MemberRemove",
    "/etcdserverpb.Cluster/MemberUpdate",
    "/etcdserverpb.Cluster/MemberList",
    "/etcdserverpb.Cluster/MemberPromote",
    "/etcdserverpb.Maintenance/Alarm",
    "/etcdserverpb.Maintenance/Status",
    "/etcdserverpb.Maintenance/Defragment",
    "/etcdserverpb.Maintenance/Hash",
    "/etcdserverpb.Maintenance/HashKV",
    "/etcdserverpb.Maintenance/Snapshot",
    "/etcdserverpb.Maintenance/MoveLeader",
    "/etcdserverpb.Maintenance/Downgrade",
    "/etcdserverpb.Auth/AuthEnable",
    "/etcdserverpb.Auth/AuthDisable",
    "/etcdserverpb.Auth/AuthStatus",
    "/etcdserverpb.Auth/Authenticate",
    "/etcdserverpb.Auth/UserAdd",
    "/etcdserverpb.Auth/UserGet",
    "/etcdserverpb.Auth/UserList",
    "/etcdserverpb.Auth/UserDelete",
    "/etcdserverpb.Auth/UserChangePassword",
    "/etcdserverpb.Auth/UserGrantRole",
    "/etcdserverpb.Auth/UserRevokeRole",
    "/etcdserverpb.Auth/RoleAdd",
    "/etcdserverpb.Auth/RoleGet",
    "/etcdserverpb.Auth/RoleList",
    "/etcdserverpb.Auth/RoleDelete",
    "/etcdserverpb.Auth/RoleGrantPermission",
    "/etcdserverpb.Auth/RoleRevokePermission",
];

#[test]
fn generated_code_routes_every_method() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
    for path in ALL_METHODS {
        // Each path appears once in the client and once in the server router.
        let quoted = format!("\"{path}\"");
        assert_eq!(generated.matches(&quoted).count(), 2, "{path}");
    }
    // And no RPC beyond etcd's.
    assert_eq!(
        generated.matches("\"/etcdserverpb.").count(),
        2 * ALL_METHODS.len()
    );
}

mod kv_routing {
    use std::future::poll_fn;

    use strata_etcd_api::pb::etcdserverpb::{
        kv_server::{Kv, KvServer},
        CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
        PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
    };
    use tonic::codegen::{http, Service};
    use tonic::{Request, Response, Status};

    /// Answers every call with NOT_FOUND so routing can be told apart from
    /// tonic's UNIMPLEMENTED fallback for unknown paths.
    struct Probe;

    #[tonic::async_trait]
    impl Kv for Probe {
        async fn range(&self, _: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
            Err(Status::not_found("range"))
        }
        async fn put(&self, _: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
            Err(Status::not_found("put"))
        }
        async fn delete_range(
            &self,
            _: Request<DeleteRangeRequest>,
        ) -> Result<Response<DeleteRangeResponse>, Status> {
            Err(Status::not_found("delete_range"))
        }
        async fn txn(&self, _: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
            Err(Status::not_found("txn"))
        }
        async fn compact(
            &self,
            _: Request<CompactionRequest>,
        ) -> Result<Response<CompactionResponse>, Status> {
            Err(Status::not_found("compact"))
        }
    }

    async fn grpc_status(path: &str) -> String {
        let mut svc = KvServer::new(Probe);
        poll_fn(|cx| Service::<http::Request<String>>::poll_ready(&mut svc, cx))
            .await
            .unwrap();
        // One uncompressed gRPC frame holding an empty message.
        let req = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/grpc")
            .body(String::from("\0\0\0\0\0"))
            .unwrap();
        let resp = svc.call(req).await.unwrap();
        resp.headers()
            .get("grpc-status")
            .expect("grpc-status header")
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn kv_methods_reach_the_service() {
        for m in ["Range", "Put", "DeleteRange", "Txn", "Compact"] {
            // 5 = NOT_FOUND, produced by Probe.
            assert_eq!(
                grpc_status(&format!("/etcdserverpb.KV/{m}")).await,
                "5",
                "{m}"
            );
        }
        // 12 = UNIMPLEMENTED, produced by tonic for an unknown method.
        assert_eq!(grpc_status("/etcdserverpb.KV/Nope").await, "12");
    }
}
