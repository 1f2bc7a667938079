//! The manifest, `<data-dir>/STRATA`: what this data directory is (format family, cluster id,
//! node id, member name, cluster version, the version of the binary that wrote it). Written once,
//! atomically (temp file, fsync, rename, directory fsync); `docs/formats/manifest.md` describes it.

use std::path::Path;

use prost::Message;
use strata_io::FileSystem;

pub const MANIFEST_FILE_NAME: &str = "STRATA";
pub const MANIFEST_MAGIC: &[u8; 8] = b"STRATAMF";
/// The newest manifest format this binary reads and the one it writes.
pub const MANIFEST_FORMAT_VERSION: u32 = strata_types::formats::newest_version(strata_types::formats::FileKind::Manifest);
const MANIFEST_HEADER_BYTES: usize = 20;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Manifest {
    #[prost(string, tag = "1")]
    pub format_family: String,
    #[prost(uint64, tag = "2")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "3")]
    pub node_id: u64,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub cluster_version: String,
    #[prost(string, tag = "6")]
    pub writer_version: String,
}

impl Manifest {
    pub fn encode_file(&self) -> Vec<u8> {
        let payload = self.encode_to_vec();
        let mut bytes = Vec::with_capacity(MANIFEST_HEADER_BYTES + payload.len());
        bytes.extend_from_slice(MANIFEST_MAGIC);
        bytes.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        bytes
    }

    /// Decodes a manifest file's bytes; `path` is only used in error messages.
    pub fn decode_file(path: &Path, bytes: &[u8]) -> Result<Manifest, String> {
        let path = path.display();
        if bytes.len() < MANIFEST_HEADER_BYTES || &bytes[..8] != MANIFEST_MAGIC {
            return Err(format!("{path}: not a Strata manifest (bad magic at offset 0); is this a Strata data directory?"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > MANIFEST_FORMAT_VERSION {
            return Err(format!(
                "{path}: manifest format version {version} is newer than this binary supports ({MANIFEST_FORMAT_VERSION}); \
                 run a newer strata release. Nothing was modified."
            ));
        }
        let length = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
        let checksum = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        let payload = bytes.get(MANIFEST_HEADER_BYTES..MANIFEST_HEADER_BYTES + length).ok_or_else(|| {
            format!("{path}: manifest truncated at offset {} (payload of {length} bytes expected)", bytes.len())
        })?;
        if crc32c::crc32c(payload) != checksum {
            return Err(format!("{path}: manifest checksum mismatch at offset {MANIFEST_HEADER_BYTES}; the file is corrupt and was left untouched"));
        }
        Manifest::decode(payload).map_err(|error| format!("{path}: manifest payload at offset {MANIFEST_HEADER_BYTES} does not decode: {error}"))
    }

    /// Reads the manifest of `data_directory`, `None` if it has none yet.
    pub fn load(fs: &dyn FileSystem, data_directory: &Path) -> Result<Option<Manifest>, String> {
        let path = data_directory.join(MANIFEST_FILE_NAME);
        if !fs.exists(&path).map_err(|error| format!("{}: {error}", path.display()))? {
            return Ok(None);
        }
        let bytes = fs.read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        Manifest::decode_file(&path, &bytes).map(Some)
    }

    /// Writes the manifest atomically: temp file, fsync, rename, directory fsync.
    pub fn store(&self, fs: &dyn FileSystem, data_directory: &Path) -> std::io::Result<()> {
        let path = data_directory.join(MANIFEST_FILE_NAME);
        let temporary = data_directory.join(format!("{MANIFEST_FILE_NAME}.tmp"));
        let mut file = fs.create(&temporary)?;
        file.write_all_at(0, &self.encode_file())?;
        file.sync_all()?;
        drop(file);
        fs.rename(&temporary, &path)?;
        fs.sync_dir(data_directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_refuses_damage() {
        let manifest = Manifest { format_family: "strata".into(), cluster_id: 7, node_id: 9, name: "n".into(), cluster_version: "3.5.0".into(), writer_version: "0.1.0".into() };
        let bytes = manifest.encode_file();
        let path = Path::new("dir/STRATA");
        assert_eq!(Manifest::decode_file(path, &bytes).unwrap(), manifest);
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(Manifest::decode_file(path, &flipped).unwrap_err().contains("checksum mismatch"));
        let mut newer = bytes.clone();
        newer[8] = 2;
        let error = Manifest::decode_file(path, &newer).unwrap_err();
        assert!(error.contains("version 2") && error.contains("(1)"), "{error}");
        assert!(Manifest::decode_file(path, b"not a manifest at all").unwrap_err().contains("bad magic"));
    }
}
