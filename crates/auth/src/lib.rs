//! etcd's auth store, pure: users (with bcrypt password hashes, hashed elsewhere), roles, key-range
//! permissions, the `root` user and `root` role, the enabled flag and etcd's auth revision; the
//! requests that change them, evaluated exactly as etcd's auth store and its applier evaluate
//! them (the admin check first, then the store's own checks, in etcd's order); the permission
//! checks every other request goes through; and the table of simple tokens. No IO, no clock, no
//! randomness: callers pass the time and the random token text in.
//!
//! Invariants:
//! - The auth revision starts at 1 (etcd's new store) and grows by one with every change that
//!   etcd commits a revision for: every user and role change that changed something, and
//!   disabling auth; enabling does not bump it.
//! - [`AuthState::apply`] is deterministic: replaying the changes evaluation accepted, in order,
//!   rebuilds an equal state (revision included).
//! - Permission checks are etcd's `isOpPermitted` and `IsAdminPermitted`: with auth disabled
//!   everything is permitted; the `root` role may do anything; a user's permissions are the union
//!   of its roles' key ranges, compared with etcd's affine byte order (an empty key or range end
//!   is +infinity).

mod permissions;
mod state;
mod tokens;

pub use permissions::UserPermissions;
pub use state::{AuthRequest, AuthState, Permission, Role, User};
pub use tokens::{SimpleTokens, SIMPLE_TOKEN_RANDOM_CHARACTERS};

/// The user that must exist (with the `root` role) before auth can be enabled.
pub const ROOT_USER: &str = "root";
/// The role that may do anything; it need not exist as a role to be granted.
pub const ROOT_ROLE: &str = "root";
/// A new auth store's revision, as etcd's.
pub const AUTH_REVISION_INITIAL: u64 = 1;

/// etcd's `authpb.Permission_Type` numbers.
pub const PERMISSION_READ: i32 = 0;
pub const PERMISSION_WRITE: i32 = 1;
pub const PERMISSION_READWRITE: i32 = 2;

/// Who a request is from, as etcd's `AuthInfo`: the user a token or a client certificate named,
/// and the auth revision the credentials were issued at (for a simple token or a certificate:
/// the revision current when the request arrived; for a JWT: the one in its claims).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthInfo {
    pub user: String,
    pub revision: u64,
}

/// etcd's auth errors. [`AuthError::message`] holds the auth package's words (`auth: …`),
/// which etcd's maintenance service passes on unmapped; `strata-etcd-api`'s error table maps
/// them to etcd's gRPC codes and `etcdserver: …` messages for every other service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    RootUserNotExist,
    RootRoleNotExist,
    UserAlreadyExists,
    UserEmpty,
    UserNotFound,
    RoleAlreadyExists,
    RoleNotFound,
    RoleEmpty,
    PermissionNotGiven,
    AuthFailed,
    NoPasswordUser,
    PermissionDenied,
    RoleNotGranted,
    PermissionNotGranted,
    AuthNotEnabled,
    OldRevision,
    InvalidAuthToken,
    InvalidAuthManagement,
    /// A JWT node configured with a public key only was asked to issue a token.
    VerifyOnly,
}

impl AuthError {
    /// The auth package's own words for the error (etcd's `auth.Err…`).
    pub fn message(self) -> &'static str {
        match self {
            AuthError::RootUserNotExist => "auth: root user does not exist",
            AuthError::RootRoleNotExist => "auth: root user does not have root role",
            AuthError::UserAlreadyExists => "auth: user already exists",
            AuthError::UserEmpty => "auth: user name is empty",
            AuthError::UserNotFound => "auth: user not found",
            AuthError::RoleAlreadyExists => "auth: role already exists",
            AuthError::RoleNotFound => "auth: role not found",
            AuthError::RoleEmpty => "auth: role name is empty",
            AuthError::PermissionNotGiven => "auth: permission not given",
            AuthError::AuthFailed => "auth: authentication failed, invalid user ID or password",
            AuthError::NoPasswordUser => "auth: authentication failed, password was given for no password user",
            AuthError::PermissionDenied => "auth: permission denied",
            AuthError::RoleNotGranted => "auth: role is not granted to the user",
            AuthError::PermissionNotGranted => "auth: permission is not granted to the role",
            AuthError::AuthNotEnabled => "auth: authentication is not enabled",
            AuthError::OldRevision => "auth: revision in header is old",
            AuthError::InvalidAuthToken => "auth: invalid auth token",
            AuthError::InvalidAuthManagement => "auth: invalid auth management",
            AuthError::VerifyOnly => "auth: token signing attempted with verify-only key",
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AuthError {}

/// Go's `base64.StdEncoding.DecodeString` (padded standard alphabet), as etcd decodes a
/// pre-hashed password; the error is the offset of the first bad byte, as Go reports it.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, usize> {
    fn value(byte: u8) -> Option<u32> {
        match byte {
            b'A'..=b'Z' => Some(u32::from(byte - b'A')),
            b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut decoded = Vec::with_capacity(text.len() / 4 * 3);
    for (chunk_index, chunk) in text.chunks(4).enumerate() {
        let offset = chunk_index * 4;
        let padding = chunk.iter().rev().take_while(|&&byte| byte == b'=').count();
        let last = chunk_index == text.len().div_ceil(4) - 1;
        if chunk.len() < 4 || padding > 2 || (padding > 0 && !last) {
            // Go names the first byte it could not use.
            let bad = chunk.iter().position(|&byte| value(byte).is_none()).unwrap_or(chunk.len().min(4 - padding));
            return Err(offset + bad);
        }
        let mut bits = 0u32;
        for (position, &byte) in chunk[..4 - padding].iter().enumerate() {
            bits |= value(byte).ok_or(offset + position)? << (18 - 6 * position);
        }
        let bytes = bits.to_be_bytes();
        decoded.extend_from_slice(&bytes[1..4 - padding]);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_as_go_standard_encoding() {
        assert_eq!(decode_base64(b"").unwrap(), b"");
        assert_eq!(decode_base64(b"Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64(b"Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64(b"Zg==").unwrap(), b"f");
        assert_eq!(decode_base64(b"JDJhJDA0JA==").unwrap(), b"$2a$04$");
        assert_eq!(decode_base64(b"Zm9v!m9v"), Err(4));
        assert!(decode_base64(b"Zm9").is_err());
        assert!(decode_base64(b"Zg==Zm9v").is_err());
    }

    #[test]
    fn messages_are_the_auth_packages() {
        assert_eq!(AuthError::NoPasswordUser.to_string(), "auth: authentication failed, password was given for no password user");
        assert_eq!(AuthError::PermissionDenied.to_string(), "auth: permission denied");
    }
}
