//! Hostile input: garbage on the client port (raw bytes, a broken HTTP/2 connection, a broken
//! HTTP/1 request), malformed protobuf inside a well-formed gRPC call, a huge range, invalid
//! revisions and a watch-create flood. Each gets an error or a closed connection; the node stays up and loses nothing.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, start_strata, TempDir};

/// Sends `bytes` and reads whatever comes back until the server closes or a second passes.
fn send_raw(endpoint: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(endpoint.trim_start_matches("http://")).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// An HTTP/2 client preface, an empty SETTINGS frame, then a HEADERS frame whose block is not
/// valid HPACK.
fn h2_call_with_garbage_headers() -> Vec<u8> {
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    // HEADERS on stream 1 whose block is not valid HPACK.
    bytes.extend_from_slice(&[0, 0, 4, 1, 4, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    bytes
}

#[test]
fn garbage_and_hostile_requests_leave_the_node_serving() {
    let temp = TempDir::new("hostile");
    let server = start_strata(&temp.join("data"), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..200 {
            let request = pb::PutRequest { key: format!("before/{index:04}").into_bytes(), value: vec![b'x'; 4096], ..Default::default() };
            clients.kv.put(request).await.unwrap();
        }
    });

    let mut seed = 0x5EED_u64;
    for round in 0..20 {
        let garbage: Vec<u8> = (0..(64 + round * 97))
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        send_raw(&server.endpoint, &garbage);
    }
    send_raw(&server.endpoint, &h2_call_with_garbage_headers());
    let http1 = send_raw(&server.endpoint, b"GET /health HTTP/1.1\r\nHost: \xff\xfe\r\nContent-Length: -5\r\n\r\n");
    assert!(!String::from_utf8_lossy(&http1).contains("200 OK"), "a broken HTTP/1 request is not answered as if it were fine");

    runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        // Malformed protobuf inside a well-formed gRPC call: an INTERNAL error, as from etcd.
        let channel = tonic::transport::Channel::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/etcdserverpb.KV/Put");
        let status = grpc
            .unary::<Vec<u8>, Vec<u8>, _>(tonic::Request::new(vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), path, RawCodec)
            .await
            .expect_err("garbage protobuf is refused");
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");

        // A huge range: everything, twice, with every option that makes it work harder.
        let everything = pb::RangeRequest { key: vec![0], range_end: vec![0], sort_order: 2, sort_target: 4, ..Default::default() };
        let response = clients.kv.range(everything.clone()).await.unwrap().into_inner();
        assert_eq!(response.kvs.len(), 200);
        let response = clients.kv.range(pb::RangeRequest { limit: i64::MAX, ..everything.clone() }).await.unwrap().into_inner();
        assert_eq!(response.count, 200);
        let status = clients.kv.range(pb::RangeRequest { revision: i64::MAX, ..everything.clone() }).await.unwrap_err();
        assert_eq!(status.message(), "etcdserver: mvcc: required revision is a future revision");
        let response = clients.kv.range(pb::RangeRequest { revision: i64::MIN, ..everything }).await.unwrap().into_inner();
        assert_eq!(response.count, 200, "a negative revision reads the current one, as in etcd");

        // A watch-create flood: 20,000 creates on one stream as fast as they can be sent, while
        // writing; then the stream goes away. The node keeps serving.
        let channel = tonic::transport::Channel::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
        let flood = support::watch::RecordedStream::open(channel, support::watch::create("flood/0", b"", 0)).await;
        for index in 1..20_000 {
            flood.create(support::watch::create(&format!("flood/{index}"), b"", 0));
        }
        for index in 0..50 {
            clients.kv.put(pb::PutRequest { key: format!("flood/{index}").into_bytes(), value: b"w".to_vec(), ..Default::default() }).await.unwrap();
        }
        let created_all = flood.wait_until(Duration::from_secs(60), |responses| responses.iter().filter(|response| response.created).count() >= 20_000).await;
        assert!(created_all, "every create of the flood is answered");
        drop(flood);

        // Still serving, nothing lost.
        clients.kv.put(pb::PutRequest { key: b"after".to_vec(), value: b"ok".to_vec(), ..Default::default() }).await.unwrap();
        let all = clients.kv.range(pb::RangeRequest { key: vec![0], range_end: vec![0], count_only: true, ..Default::default() }).await.unwrap();
        assert_eq!(all.into_inner().count, 251);
    });
}

/// Sends and receives raw bytes: lets the test put malformed protobuf on the wire.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, buffer: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Self::Error> {
        use bytes::BufMut;
        buffer.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buffer: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        use bytes::Buf;
        let mut item = vec![0; buffer.remaining()];
        buffer.copy_to_slice(&mut item);
        Ok(Some(item))
    }
}
