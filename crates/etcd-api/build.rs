//! Compiles etcd's v3 .proto files (under `proto/`) into Rust with protox
//! (a pure-Rust protobuf compiler, so no `protoc` is needed) and
//! tonic-prost-build (messages plus gRPC servers and clients).

use std::path::PathBuf;

const PROTO_DIR: &str = "proto";
const PROTOS: &[&str] = &[
    "mvccpb/kv.proto",
    "authpb/auth.proto",
    "etcdserverpb/rpc.proto",
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

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
