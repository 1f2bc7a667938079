//! Compiles etcd's v3 .proto files (under `proto/`) into Rust with protox
//! (a pure-Rust protobuf compiler, so no `protoc` is needed) and
//! tonic-prost-build (messages plus gRPC servers and clients), and generates their protobuf JSON
//! mapping (serde, with pbjson-build) for the HTTP/JSON gateway.

use std::path::PathBuf;

const PROTO_DIR: &str = "proto";
const PROTOS: &[&str] = &[
    "mvccpb/kv.proto",
    "authpb/auth.proto",
    "etcdserverpb/rpc.proto",
    // Strata's own admin service (not etcd's).
    "strata/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={PROTO_DIR}/{proto}");
    }

    let files: Vec<PathBuf> = PROTOS
        .iter()
        .map(|p| PathBuf::from(PROTO_DIR).join(p))
        .collect();
    let fds = protox::compile(&files, [PROTO_DIR])?;
    let descriptors = prost::Message::encode_to_vec(&fds);

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;

    // The protobuf JSON mapping for the HTTP/JSON gateway, as grpc-gateway's `JSONPb{OrigName:
    // true}`: proto field names out, both name styles in, unknown fields ignored.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[".mvccpb", ".authpb", ".etcdserverpb"])?;
    Ok(())
}
