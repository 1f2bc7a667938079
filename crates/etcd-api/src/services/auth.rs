//! etcd's Auth service. Changes (enable, disable, users, roles, permissions) go through the
//! node's writer, which checks that the caller is an admin (the root role) when auth is enabled
//! and applies etcd's own checks in etcd's order; they are logged and survive restarts. Reads
//! (UserGet, UserList, RoleGet, RoleList, AuthStatus) are answered from the durable auth state
//! with etcd's rules: admins may read anything, a user may read itself and the roles it has.
//!
//! Passwords are hashed here with bcrypt (`--bcrypt-cost`), before the change is queued, as etcd
//! 3.5 hashes before proposing; a client may send etcd 3.5's `hashedPassword` (base64 of a bcrypt
//! hash) instead of a password. To spare the hashing for requests that would be refused anyway,
//! the admin and name checks are made once against the durable state first; the writer makes
//! them again against the newest state.
//!
//! Authenticate checks the password and issues a token of the node's kind (`--auth-token`); as
//! etcd 3.5, it ignores any token the request carries. Every header carries the key-value
//! revision (auth changes do not bump it).

use strata_auth::{AuthError, AuthInfo, AuthRequest, Permission};
use strata_node::{WriteRequest, WriteResponse};
use tonic::{Code, Request, Response, Status};

use super::Api;
use crate::errors::{auth_status, node_status};
use crate::pb::authpb;
use crate::pb::etcdserverpb as pb;

#[tonic::async_trait]
impl pb::auth_server::Auth for Api {
    async fn auth_enable(&self, request: Request<pb::AuthEnableRequest>) -> Result<Response<pb::AuthEnableResponse>, Status> {
        let revision = self.change_auth(&request, AuthRequest::Enable).await?;
        Ok(Response::new(pb::AuthEnableResponse { header: Some(self.header(revision)) }))
    }

    async fn auth_disable(&self, request: Request<pb::AuthDisableRequest>) -> Result<Response<pb::AuthDisableResponse>, Status> {
        let revision = self.change_auth(&request, AuthRequest::Disable).await?;
        Ok(Response::new(pb::AuthDisableResponse { header: Some(self.header(revision)) }))
    }

    async fn auth_status(&self, request: Request<pb::AuthStatusRequest>) -> Result<Response<pb::AuthStatusResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let (enabled, auth_revision) = self.node.auth_state().status(caller.as_ref()).map_err(auth_status)?;
        Ok(Response::new(pb::AuthStatusResponse { header: Some(self.header(self.node.revision())), enabled, auth_revision }))
    }

    async fn authenticate(&self, request: Request<pb::AuthenticateRequest>) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let request = request.into_inner();
        let token = self.node.authenticate(&request.name, &request.password).await.map_err(node_status)?;
        Ok(Response::new(pb::AuthenticateResponse { header: Some(self.header(self.node.revision())), token }))
    }

    async fn user_add(&self, request: Request<pb::AuthUserAddRequest>) -> Result<Response<pb::AuthUserAddResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let request = request.into_inner();
        let no_password = request.options.as_ref().is_some_and(|options| options.no_password);
        self.precheck(caller.as_ref(), |auth| {
            if request.name.is_empty() {
                return Err(AuthError::UserEmpty);
            }
            if auth.user(&request.name).is_some() {
                return Err(AuthError::UserAlreadyExists);
            }
            Ok(())
        })?;
        let password_hash = if no_password { Vec::new() } else { self.password_hash(request.password, &request.hashed_password).await? };
        let change = AuthRequest::UserAdd { name: request.name, password_hash, no_password };
        let revision = self.write_auth(change, caller).await?;
        Ok(Response::new(pb::AuthUserAddResponse { header: Some(self.header(revision)) }))
    }

    async fn user_get(&self, request: Request<pb::AuthUserGetRequest>) -> Result<Response<pb::AuthUserGetResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let auth = self.node.auth_state();
        let user = auth.user_get(caller.as_ref(), &request.get_ref().name).map_err(auth_status)?;
        Ok(Response::new(pb::AuthUserGetResponse { header: Some(self.header(self.node.revision())), roles: user.roles.clone() }))
    }

    async fn user_list(&self, request: Request<pb::AuthUserListRequest>) -> Result<Response<pb::AuthUserListResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let users = self.node.auth_state().user_list(caller.as_ref()).map_err(auth_status)?;
        Ok(Response::new(pb::AuthUserListResponse { header: Some(self.header(self.node.revision())), users }))
    }

    async fn user_delete(&self, request: Request<pb::AuthUserDeleteRequest>) -> Result<Response<pb::AuthUserDeleteResponse>, Status> {
        let name = request.get_ref().name.clone();
        let revision = self.change_auth(&request, AuthRequest::UserDelete { name }).await?;
        Ok(Response::new(pb::AuthUserDeleteResponse { header: Some(self.header(revision)) }))
    }

    async fn user_change_password(&self, request: Request<pb::AuthUserChangePasswordRequest>) -> Result<Response<pb::AuthUserChangePasswordResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let request = request.into_inner();
        self.precheck(caller.as_ref(), |auth| auth.user(&request.name).map(|_| ()).ok_or(AuthError::UserNotFound))?;
        let password_hash = self.password_hash(request.password, &request.hashed_password).await?;
        let revision = self.write_auth(AuthRequest::UserChangePassword { name: request.name, password_hash }, caller).await?;
        Ok(Response::new(pb::AuthUserChangePasswordResponse { header: Some(self.header(revision)) }))
    }

    async fn user_grant_role(&self, request: Request<pb::AuthUserGrantRoleRequest>) -> Result<Response<pb::AuthUserGrantRoleResponse>, Status> {
        let pb::AuthUserGrantRoleRequest { user, role } = request.get_ref().clone();
        let revision = self.change_auth(&request, AuthRequest::UserGrantRole { user, role }).await?;
        Ok(Response::new(pb::AuthUserGrantRoleResponse { header: Some(self.header(revision)) }))
    }

    async fn user_revoke_role(&self, request: Request<pb::AuthUserRevokeRoleRequest>) -> Result<Response<pb::AuthUserRevokeRoleResponse>, Status> {
        let pb::AuthUserRevokeRoleRequest { name, role } = request.get_ref().clone();
        let revision = self.change_auth(&request, AuthRequest::UserRevokeRole { name, role }).await?;
        Ok(Response::new(pb::AuthUserRevokeRoleResponse { header: Some(self.header(revision)) }))
    }

    async fn role_add(&self, request: Request<pb::AuthRoleAddRequest>) -> Result<Response<pb::AuthRoleAddResponse>, Status> {
        let name = request.get_ref().name.clone();
        let revision = self.change_auth(&request, AuthRequest::RoleAdd { name }).await?;
        Ok(Response::new(pb::AuthRoleAddResponse { header: Some(self.header(revision)) }))
    }

    async fn role_get(&self, request: Request<pb::AuthRoleGetRequest>) -> Result<Response<pb::AuthRoleGetResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let auth = self.node.auth_state();
        let role = auth.role_get(caller.as_ref(), &request.get_ref().role).map_err(auth_status)?;
        let perm = role
            .permissions
            .iter()
            .map(|permission| authpb::Permission { perm_type: permission.kind, key: permission.key.clone(), range_end: permission.range_end.clone() })
            .collect();
        Ok(Response::new(pb::AuthRoleGetResponse { header: Some(self.header(self.node.revision())), perm }))
    }

    async fn role_list(&self, request: Request<pb::AuthRoleListRequest>) -> Result<Response<pb::AuthRoleListResponse>, Status> {
        let caller = self.caller(&request).map_err(auth_status)?;
        let roles = self.node.auth_state().role_list(caller.as_ref()).map_err(auth_status)?;
        Ok(Response::new(pb::AuthRoleListResponse { header: Some(self.header(self.node.revision())), roles }))
    }

    async fn role_delete(&self, request: Request<pb::AuthRoleDeleteRequest>) -> Result<Response<pb::AuthRoleDeleteResponse>, Status> {
        let role = request.get_ref().role.clone();
        let revision = self.change_auth(&request, AuthRequest::RoleDelete { role }).await?;
        Ok(Response::new(pb::AuthRoleDeleteResponse { header: Some(self.header(revision)) }))
    }

    async fn role_grant_permission(
        &self,
        request: Request<pb::AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<pb::AuthRoleGrantPermissionResponse>, Status> {
        let pb::AuthRoleGrantPermissionRequest { name, perm } = request.get_ref().clone();
        let permission = perm.map(|perm| Permission { kind: perm.perm_type, key: perm.key, range_end: perm.range_end });
        let revision = self.change_auth(&request, AuthRequest::RoleGrantPermission { name, permission }).await?;
        Ok(Response::new(pb::AuthRoleGrantPermissionResponse { header: Some(self.header(revision)) }))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<pb::AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<pb::AuthRoleRevokePermissionResponse>, Status> {
        let pb::AuthRoleRevokePermissionRequest { role, key, range_end } = request.get_ref().clone();
        let revision = self.change_auth(&request, AuthRequest::RoleRevokePermission { role, key, range_end }).await?;
        Ok(Response::new(pb::AuthRoleRevokePermissionResponse { header: Some(self.header(revision)) }))
    }
}

impl Api {
    /// An auth change from `request`'s caller; the header revision.
    async fn change_auth<T>(&self, request: &Request<T>, change: AuthRequest) -> Result<i64, Status> {
        let caller = self.caller(request).map_err(auth_status)?;
        self.write_auth(change, caller).await
    }

    async fn write_auth(&self, change: AuthRequest, caller: Option<AuthInfo>) -> Result<i64, Status> {
        let WriteResponse::Auth { revision } = self.write_as(WriteRequest::Auth(change), caller).await? else {
            unreachable!("the writer answers an auth change with an auth change")
        };
        Ok(revision)
    }

    /// The admin check and `checks` against the durable state, before a password is hashed.
    fn precheck(&self, caller: Option<&AuthInfo>, checks: impl FnOnce(&strata_auth::AuthState) -> Result<(), AuthError>) -> Result<(), Status> {
        let auth = self.node.auth_state();
        auth.is_admin_permitted(caller).and_then(|()| checks(&auth)).map_err(auth_status)
    }

    /// The bcrypt hash to store: of `password`, or etcd 3.5's `hashedPassword` (base64 of a bcrypt
    /// hash) when only that is given. A `hashedPassword` that is not base64 is refused as etcd's
    /// Go decoder words it.
    async fn password_hash(&self, password: String, hashed_password: &str) -> Result<Vec<u8>, Status> {
        if password.is_empty() && !hashed_password.is_empty() {
            return strata_auth::decode_base64(hashed_password.as_bytes())
                .map_err(|offset| Status::new(Code::Unknown, format!("illegal base64 data at input byte {offset}")));
        }
        self.node.hash_password(password).await.map_err(node_status)
    }
}
