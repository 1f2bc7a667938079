//! The auth state (etcd's `authStore` without its backend): users, roles and their permissions,
//! the enabled flag and the auth revision; the requests that change it ([`AuthRequest`],
//! evaluated with etcd's admin check and then the store's checks, in etcd's order); the reads
//! etcd serves with their own permission rules (a user may read itself, and the roles it has);
//! and the permission checks of every other request.
//!
//! Invariants: a user's roles are sorted and unique; a role's permissions are sorted by key
//! (stable: equal keys keep their grant order); each user's merged permissions are rebuilt after
//! every change, so checks never see a stale cache.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::permissions::UserPermissions;
use crate::{AuthError, AuthInfo, AUTH_REVISION_INITIAL, ROOT_ROLE, ROOT_USER};

/// Access of one type (etcd's `authpb.Permission_Type` number, kept as given) to a key
/// (`range_end` empty), a range `[key, range_end)`, or every key from `key` on (`range_end`
/// `"\0"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub kind: i32,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The bcrypt hash (empty for a user without password).
    pub password_hash: Vec<u8>,
    /// Created with etcd's `no_password` option: it cannot authenticate with a password (only
    /// with a client certificate naming it).
    pub no_password: bool,
    /// Sorted, unique.
    pub roles: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Sorted by key.
    pub permissions: Vec<Permission>,
}

/// A change to the auth state, as the writer evaluates and the log replays it. Passwords arrive
/// already hashed (hashing is slow and happens before the request is queued, as etcd 3.5 hashes
/// before proposing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest {
    Enable,
    Disable,
    UserAdd {
        name: String,
        password_hash: Vec<u8>,
        no_password: bool,
    },
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        password_hash: Vec<u8>,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        name: String,
        role: String,
    },
    RoleAdd {
        name: String,
    },
    RoleDelete {
        role: String,
    },
    /// `None`: the request named no permission (etcd 3.5 refuses it; 3.4 crashes).
    RoleGrantPermission {
        name: String,
        permission: Option<Permission>,
    },
    RoleRevokePermission {
        role: String,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthState {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
    /// Each user's merged permissions (etcd's `rangePermCache`), rebuilt after every change.
    permissions: BTreeMap<String, Arc<UserPermissions>>,
}

impl Default for AuthState {
    fn default() -> AuthState {
        AuthState::new()
    }
}

fn has_root_role(user: &User) -> bool {
    user.roles.iter().any(|role| role == ROOT_ROLE)
}

impl AuthState {
    /// A new store: no users, no roles, disabled, at revision 1.
    pub fn new() -> AuthState {
        AuthState { enabled: false, revision: AUTH_REVISION_INITIAL, users: BTreeMap::new(), roles: BTreeMap::new(), permissions: BTreeMap::new() }
    }

    /// A state as a snapshot recorded it (users' roles and roles' permissions are normalized).
    pub fn restore(enabled: bool, revision: u64, users: Vec<User>, roles: Vec<Role>) -> AuthState {
        let mut state = AuthState { enabled, revision, users: BTreeMap::new(), roles: BTreeMap::new(), permissions: BTreeMap::new() };
        for mut user in users {
            user.roles.sort();
            user.roles.dedup();
            state.users.insert(user.name.clone(), user);
        }
        for mut role in roles {
            role.permissions.sort_by(|left, right| left.key.cmp(&right.key));
            state.roles.insert(role.name.clone(), role);
        }
        state.rebuild_permissions();
        state
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// etcd's auth revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Every role, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// etcd's `HasRole`.
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.users.get(user).is_some_and(|user| user.roles.iter().any(|granted| granted == role))
    }

    /// Evaluates a change as etcd's applier does: every auth change needs an admin (when auth is
    /// enabled), then the store's own checks. `Ok(true)`: the state changed and the request is to
    /// be logged; `Ok(false)`: it succeeded without changing anything.
    pub fn evaluate(&mut self, caller: Option<&AuthInfo>, request: &AuthRequest) -> Result<bool, AuthError> {
        self.is_admin_permitted(caller)?;
        self.apply(request)
    }

    /// Applies a change without the admin check (replay applies what evaluation accepted).
    pub fn apply(&mut self, request: &AuthRequest) -> Result<bool, AuthError> {
        let changed = self.apply_unchecked(request)?;
        if changed {
            self.rebuild_permissions();
        }
        Ok(changed)
    }

    fn apply_unchecked(&mut self, request: &AuthRequest) -> Result<bool, AuthError> {
        match request {
            AuthRequest::Enable => {
                if self.enabled {
                    return Ok(false);
                }
                let root = self.users.get(ROOT_USER).ok_or(AuthError::RootUserNotExist)?;
                if !has_root_role(root) {
                    return Err(AuthError::RootRoleNotExist);
                }
                // etcd does not commit a revision for enabling.
                self.enabled = true;
            }
            AuthRequest::Disable => {
                if !self.enabled {
                    return Ok(false);
                }
                self.enabled = false;
                self.revision += 1;
            }
            AuthRequest::UserAdd { name, password_hash, no_password } => {
                if name.is_empty() {
                    return Err(AuthError::UserEmpty);
                }
                if self.users.contains_key(name) {
                    return Err(AuthError::UserAlreadyExists);
                }
                let password_hash = if *no_password { Vec::new() } else { password_hash.clone() };
                self.users.insert(name.clone(), User { name: name.clone(), password_hash, no_password: *no_password, roles: Vec::new() });
                self.revision += 1;
            }
            AuthRequest::UserDelete { name } => {
                if self.enabled && name == ROOT_USER {
                    return Err(AuthError::InvalidAuthManagement);
                }
                self.users.remove(name).ok_or(AuthError::UserNotFound)?;
                self.revision += 1;
            }
            AuthRequest::UserChangePassword { name, password_hash } => {
                let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
                user.password_hash = password_hash.clone();
                self.revision += 1;
            }
            AuthRequest::UserGrantRole { user, role } => {
                if !self.users.contains_key(user) {
                    return Err(AuthError::UserNotFound);
                }
                // The root role need not exist as a role to be granted.
                if role != ROOT_ROLE && !self.roles.contains_key(role) {
                    return Err(AuthError::RoleNotFound);
                }
                let Some(user) = self.users.get_mut(user) else { return Err(AuthError::UserNotFound) };
                match user.roles.binary_search(role) {
                    Ok(_) => return Ok(false),
                    Err(position) => user.roles.insert(position, role.clone()),
                }
                self.revision += 1;
            }
            AuthRequest::UserRevokeRole { name, role } => {
                if self.enabled && name == ROOT_USER && role == ROOT_ROLE {
                    return Err(AuthError::InvalidAuthManagement);
                }
                let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
                let before = user.roles.len();
                user.roles.retain(|granted| granted != role);
                if user.roles.len() == before {
                    return Err(AuthError::RoleNotGranted);
                }
                self.revision += 1;
            }
            AuthRequest::RoleAdd { name } => {
                if name.is_empty() {
                    return Err(AuthError::RoleEmpty);
                }
                if self.roles.contains_key(name) {
                    return Err(AuthError::RoleAlreadyExists);
                }
                self.roles.insert(name.clone(), Role { name: name.clone(), permissions: Vec::new() });
                self.revision += 1;
            }
            AuthRequest::RoleDelete { role } => {
                if self.enabled && role == ROOT_ROLE {
                    return Err(AuthError::InvalidAuthManagement);
                }
                self.roles.remove(role).ok_or(AuthError::RoleNotFound)?;
                for user in self.users.values_mut() {
                    user.roles.retain(|granted| granted != role);
                }
                self.revision += 1;
            }
            AuthRequest::RoleGrantPermission { name, permission } => {
                let permission = permission.as_ref().ok_or(AuthError::PermissionNotGiven)?;
                let role = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
                // etcd looks only at the first permission whose key is not below the new one's:
                // if that one has the same key and range end, its type is updated; otherwise the
                // permission is added (even if an equal one sits further on).
                let position = role.permissions.partition_point(|existing| existing.key < permission.key);
                match role.permissions.get_mut(position) {
                    Some(existing) if existing.key == permission.key && existing.range_end == permission.range_end => existing.kind = permission.kind,
                    _ => {
                        role.permissions.push(permission.clone());
                        role.permissions.sort_by(|left, right| left.key.cmp(&right.key));
                    }
                }
                self.revision += 1;
            }
            AuthRequest::RoleRevokePermission { role, key, range_end } => {
                let role = self.roles.get_mut(role).ok_or(AuthError::RoleNotFound)?;
                let before = role.permissions.len();
                role.permissions.retain(|permission| permission.key != *key || permission.range_end != *range_end);
                if role.permissions.len() == before {
                    return Err(AuthError::PermissionNotGranted);
                }
                self.revision += 1;
            }
        }
        Ok(true)
    }

    fn rebuild_permissions(&mut self) {
        let roles = &self.roles;
        self.permissions = self
            .users
            .values()
            .map(|user| {
                let permissions = user.roles.iter().filter_map(|role| roles.get(role)).flat_map(|role| role.permissions.iter());
                (user.name.clone(), Arc::new(UserPermissions::merge(permissions)))
            })
            .collect();
    }

    /// etcd's `IsAdminPermitted`: anyone while auth is disabled; otherwise a user with the root
    /// role. The credentials' revision is not checked.
    pub fn is_admin_permitted(&self, caller: Option<&AuthInfo>) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(caller) = caller.filter(|caller| !caller.user.is_empty()) else { return Err(AuthError::UserEmpty) };
        let user = self.users.get(&caller.user).ok_or(AuthError::UserNotFound)?;
        if !has_root_role(user) {
            return Err(AuthError::PermissionDenied);
        }
        Ok(())
    }

    /// etcd's `IsRangePermitted`: read access to `[key, range_end)`.
    pub fn is_range_permitted(&self, caller: Option<&AuthInfo>, key: &[u8], range_end: &[u8]) -> Result<(), AuthError> {
        self.is_op_permitted(caller, |permissions| permissions.can_read(key, range_end))
    }

    /// etcd's `IsPutPermitted`: write access to `key`.
    pub fn is_put_permitted(&self, caller: Option<&AuthInfo>, key: &[u8]) -> Result<(), AuthError> {
        self.is_op_permitted(caller, |permissions| permissions.can_write(key, b""))
    }

    /// etcd's `IsDeleteRangePermitted`: write access to `[key, range_end)`.
    pub fn is_delete_range_permitted(&self, caller: Option<&AuthInfo>, key: &[u8], range_end: &[u8]) -> Result<(), AuthError> {
        self.is_op_permitted(caller, |permissions| permissions.can_write(key, range_end))
    }

    /// etcd's `isOpPermitted`: credentials of revision 0 (none) name no user; credentials issued
    /// before the current revision are old; an unknown user is denied; root may do anything.
    fn is_op_permitted(&self, caller: Option<&AuthInfo>, permitted: impl Fn(&UserPermissions) -> bool) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(caller) = caller.filter(|caller| caller.revision != 0) else { return Err(AuthError::UserEmpty) };
        if caller.revision < self.revision {
            return Err(AuthError::OldRevision);
        }
        let user = self.users.get(&caller.user).ok_or(AuthError::PermissionDenied)?;
        if has_root_role(user) {
            return Ok(());
        }
        match self.permissions.get(&caller.user) {
            Some(permissions) if permitted(permissions) => Ok(()),
            _ => Err(AuthError::PermissionDenied),
        }
    }

    /// etcd's UserGet: an admin, or the user itself, may read a user.
    pub fn user_get(&self, caller: Option<&AuthInfo>, name: &str) -> Result<&User, AuthError> {
        if let Err(error) = self.is_admin_permitted(caller) {
            if name != caller.map_or("", |caller| caller.user.as_str()) {
                return Err(error);
            }
        }
        self.users.get(name).ok_or(AuthError::UserNotFound)
    }

    /// etcd's RoleGet: an admin, or a user that has the role, may read a role.
    pub fn role_get(&self, caller: Option<&AuthInfo>, role: &str) -> Result<&Role, AuthError> {
        if let Err(error) = self.is_admin_permitted(caller) {
            if !self.has_role(caller.map_or("", |caller| caller.user.as_str()), role) {
                return Err(error);
            }
        }
        self.roles.get(role).ok_or(AuthError::RoleNotFound)
    }

    /// etcd's UserList (admins only): the names, sorted.
    pub fn user_list(&self, caller: Option<&AuthInfo>) -> Result<Vec<String>, AuthError> {
        self.is_admin_permitted(caller)?;
        Ok(self.users.keys().cloned().collect())
    }

    /// etcd's RoleList (admins only): the names, sorted.
    pub fn role_list(&self, caller: Option<&AuthInfo>) -> Result<Vec<String>, AuthError> {
        self.is_admin_permitted(caller)?;
        Ok(self.roles.keys().cloned().collect())
    }

    /// etcd 3.5's AuthStatus (admins only): whether auth is enabled, and the auth revision.
    pub fn status(&self, caller: Option<&AuthInfo>) -> Result<(bool, u64), AuthError> {
        self.is_admin_permitted(caller)?;
        Ok((self.enabled, self.revision))
    }

    /// etcd's `CheckPassword` up to the hash comparison (the caller compares with bcrypt): the
    /// user's password hash and the revision it was read at.
    pub fn password_of(&self, name: &str) -> Result<(Vec<u8>, u64), AuthError> {
        if !self.enabled {
            return Err(AuthError::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(AuthError::AuthFailed)?;
        if user.no_password {
            return Err(AuthError::NoPasswordUser);
        }
        Ok((user.password_hash.clone(), self.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PERMISSION_READ, PERMISSION_READWRITE, PERMISSION_WRITE};

    fn add_user(name: &str) -> AuthRequest {
        AuthRequest::UserAdd { name: name.into(), password_hash: b"hash".to_vec(), no_password: false }
    }

    fn grant_role(user: &str, role: &str) -> AuthRequest {
        AuthRequest::UserGrantRole { user: user.into(), role: role.into() }
    }

    fn grant(role: &str, kind: i32, key: &str, range_end: &[u8]) -> AuthRequest {
        AuthRequest::RoleGrantPermission {
            name: role.into(),
            permission: Some(Permission { kind, key: key.as_bytes().to_vec(), range_end: range_end.to_vec() }),
        }
    }

    fn caller(user: &str, revision: u64) -> AuthInfo {
        AuthInfo { user: user.into(), revision }
    }

    /// root (with the root role) and alice (role `reader`: read on `key`, write on `w/`), enabled.
    fn enabled_state() -> AuthState {
        let mut state = AuthState::new();
        for request in [
            add_user("root"),
            grant_role("root", "root"),
            add_user("alice"),
            AuthRequest::RoleAdd { name: "reader".into() },
            grant("reader", PERMISSION_READ, "key", b""),
            grant("reader", PERMISSION_WRITE, "w/", b"w0"),
            grant_role("alice", "reader"),
            AuthRequest::Enable,
        ] {
            assert_eq!(state.evaluate(None, &request), Ok(true), "{request:?}");
        }
        state
    }

    #[test]
    fn enabling_needs_root_with_the_root_role_and_does_not_bump_the_revision() {
        let mut state = AuthState::new();
        assert_eq!(state.evaluate(None, &AuthRequest::Enable), Err(AuthError::RootUserNotExist));
        state.evaluate(None, &add_user("root")).unwrap();
        assert_eq!(state.evaluate(None, &AuthRequest::Enable), Err(AuthError::RootRoleNotExist));
        state.evaluate(None, &grant_role("root", "root")).unwrap();
        assert_eq!(state.revision(), 3);
        assert_eq!(state.evaluate(None, &AuthRequest::Enable), Ok(true));
        assert_eq!(state.revision(), 3);
        // Enabled: management needs root.
        assert_eq!(state.evaluate(None, &AuthRequest::Enable), Err(AuthError::UserEmpty));
        let root = caller("root", 3);
        assert_eq!(state.evaluate(Some(&root), &AuthRequest::Enable), Ok(false));
        assert_eq!(state.evaluate(Some(&root), &AuthRequest::UserDelete { name: "root".into() }), Err(AuthError::InvalidAuthManagement));
        assert_eq!(state.evaluate(Some(&root), &AuthRequest::RoleDelete { role: "root".into() }), Err(AuthError::InvalidAuthManagement));
        assert_eq!(
            state.evaluate(Some(&root), &AuthRequest::UserRevokeRole { name: "root".into(), role: "root".into() }),
            Err(AuthError::InvalidAuthManagement)
        );
        assert_eq!(state.evaluate(Some(&root), &AuthRequest::Disable), Ok(true));
        assert_eq!((state.is_enabled(), state.revision()), (false, 4));
        assert_eq!(state.evaluate(None, &AuthRequest::Disable), Ok(false));
    }

    #[test]
    fn user_and_role_errors_are_etcds() {
        let mut state = AuthState::new();
        assert_eq!(state.apply(&add_user("")), Err(AuthError::UserEmpty));
        state.apply(&add_user("a")).unwrap();
        assert_eq!(state.apply(&add_user("a")), Err(AuthError::UserAlreadyExists));
        assert_eq!(state.apply(&AuthRequest::RoleAdd { name: "".into() }), Err(AuthError::RoleEmpty));
        state.apply(&AuthRequest::RoleAdd { name: "r".into() }).unwrap();
        assert_eq!(state.apply(&AuthRequest::RoleAdd { name: "r".into() }), Err(AuthError::RoleAlreadyExists));
        assert_eq!(state.apply(&grant_role("b", "r")), Err(AuthError::UserNotFound));
        assert_eq!(state.apply(&grant_role("a", "s")), Err(AuthError::RoleNotFound));
        assert_eq!(state.apply(&grant_role("a", "r")), Ok(true));
        let revision = state.revision();
        assert_eq!(state.apply(&grant_role("a", "r")), Ok(false), "granting twice changes nothing");
        assert_eq!(state.revision(), revision);
        assert_eq!(state.apply(&AuthRequest::UserRevokeRole { name: "a".into(), role: "s".into() }), Err(AuthError::RoleNotGranted));
        assert_eq!(state.apply(&AuthRequest::RoleGrantPermission { name: "r".into(), permission: None }), Err(AuthError::PermissionNotGiven));
        assert_eq!(state.apply(&grant("s", PERMISSION_READ, "k", b"")), Err(AuthError::RoleNotFound));
        assert_eq!(
            state.apply(&AuthRequest::RoleRevokePermission { role: "r".into(), key: b"k".to_vec(), range_end: Vec::new() }),
            Err(AuthError::PermissionNotGranted)
        );
        // Deleting a role takes it from its users.
        state.apply(&AuthRequest::RoleDelete { role: "r".into() }).unwrap();
        assert!(state.user("a").unwrap().roles.is_empty());
        assert_eq!(state.apply(&AuthRequest::RoleDelete { role: "r".into() }), Err(AuthError::RoleNotFound));
    }

    #[test]
    fn granting_updates_the_first_permission_with_the_same_key_and_end() {
        let mut state = AuthState::new();
        state.apply(&AuthRequest::RoleAdd { name: "r".into() }).unwrap();
        state.apply(&grant("r", PERMISSION_READ, "b", b"")).unwrap();
        state.apply(&grant("r", PERMISSION_READ, "a", b"c")).unwrap();
        state.apply(&grant("r", PERMISSION_WRITE, "a", b"c")).unwrap();
        let permissions = &state.role("r").unwrap().permissions;
        assert_eq!(permissions.iter().map(|permission| (permission.key.as_slice(), permission.kind)).collect::<Vec<_>>(), [(&b"a"[..], 1), (b"b", 0)]);
        // Same key, another end: a second permission; then the same as the second: etcd compares
        // with the first only, so it is added again, and a revoke removes both.
        state.apply(&grant("r", PERMISSION_READ, "a", b"")).unwrap();
        state.apply(&grant("r", PERMISSION_READ, "a", b"")).unwrap();
        assert_eq!(state.role("r").unwrap().permissions.len(), 4);
        state.apply(&AuthRequest::RoleRevokePermission { role: "r".into(), key: b"a".to_vec(), range_end: Vec::new() }).unwrap();
        assert_eq!(state.role("r").unwrap().permissions.len(), 2);
    }

    #[test]
    fn operations_are_checked_against_the_callers_roles_and_revision() {
        let state = enabled_state();
        let revision = state.revision();
        let alice = caller("alice", revision);
        assert_eq!(state.is_range_permitted(Some(&alice), b"key", b""), Ok(()));
        assert_eq!(state.is_put_permitted(Some(&alice), b"key"), Err(AuthError::PermissionDenied));
        assert_eq!(state.is_put_permitted(Some(&alice), b"w/x"), Ok(()));
        assert_eq!(state.is_delete_range_permitted(Some(&alice), b"w/", b"w0"), Ok(()));
        assert_eq!(state.is_delete_range_permitted(Some(&alice), b"w/", b"w1"), Err(AuthError::PermissionDenied));
        assert_eq!(state.is_range_permitted(None, b"key", b""), Err(AuthError::UserEmpty));
        assert_eq!(state.is_range_permitted(Some(&caller("alice", revision - 1)), b"key", b""), Err(AuthError::OldRevision));
        assert_eq!(state.is_range_permitted(Some(&caller("nobody", revision)), b"key", b""), Err(AuthError::PermissionDenied));
        assert_eq!(state.is_range_permitted(Some(&caller("root", revision)), b"\0", b"\0"), Ok(()));
        assert_eq!(state.is_admin_permitted(Some(&alice)), Err(AuthError::PermissionDenied));
        assert_eq!(state.is_admin_permitted(Some(&caller("nobody", revision))), Err(AuthError::UserNotFound));
        assert_eq!(state.is_admin_permitted(Some(&caller("", revision))), Err(AuthError::UserEmpty));
        // Old credentials still pass the admin check, as in etcd.
        assert_eq!(state.is_admin_permitted(Some(&caller("root", 1))), Ok(()));
        // Reads with their own rules.
        assert!(state.user_get(Some(&alice), "alice").is_ok());
        assert_eq!(state.user_get(Some(&alice), "root"), Err(AuthError::PermissionDenied));
        assert!(state.role_get(Some(&alice), "reader").is_ok());
        assert_eq!(state.role_get(None, "reader"), Err(AuthError::UserEmpty));
        assert_eq!(state.user_get(None, ""), Err(AuthError::UserNotFound));
        assert_eq!(state.user_list(Some(&alice)), Err(AuthError::PermissionDenied));
        assert_eq!(state.status(Some(&caller("root", 1))), Ok((true, revision)));
    }

    #[test]
    fn disabled_auth_permits_everything_and_refuses_passwords() {
        let mut state = enabled_state();
        let root = caller("root", state.revision());
        state.evaluate(Some(&root), &AuthRequest::Disable).unwrap();
        assert_eq!(state.is_put_permitted(None, b"anything"), Ok(()));
        assert_eq!(state.password_of("root"), Err(AuthError::AuthNotEnabled));
        state.apply(&AuthRequest::Enable).unwrap();
        assert_eq!(state.password_of("nobody"), Err(AuthError::AuthFailed));
        assert_eq!(state.password_of("root").map(|(hash, _)| hash), Ok(b"hash".to_vec()));
        state.apply(&AuthRequest::UserAdd { name: "cn".into(), password_hash: b"x".to_vec(), no_password: true }).unwrap();
        assert_eq!(state.password_of("cn"), Err(AuthError::NoPasswordUser));
        assert!(state.user("cn").unwrap().password_hash.is_empty());
    }

    #[test]
    fn replaying_the_accepted_changes_rebuilds_an_equal_state() {
        let mut live = AuthState::new();
        let mut accepted = Vec::new();
        for request in [
            add_user("root"),
            add_user("root"),
            grant_role("root", "root"),
            AuthRequest::RoleAdd { name: "r".into() },
            grant("r", PERMISSION_READWRITE, "a", b"\0"),
            add_user("u"),
            grant_role("u", "r"),
            grant_role("u", "r"),
            AuthRequest::Enable,
            AuthRequest::UserChangePassword { name: "u".into(), password_hash: b"new".to_vec() },
            AuthRequest::Disable,
        ] {
            if let Ok(true) = live.apply(&request) {
                accepted.push(request);
            }
        }
        let mut replayed = AuthState::new();
        for request in &accepted {
            assert_eq!(replayed.apply(request), Ok(true));
        }
        assert_eq!(replayed, live);
        let restored = AuthState::restore(live.is_enabled(), live.revision(), live.users().cloned().collect(), live.roles().cloned().collect());
        assert_eq!(restored, live);
    }
}
