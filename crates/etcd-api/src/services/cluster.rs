//! etcd's Cluster service, answered as a single-member etcd answers it: this member is started
//! and the leader; a learner can be added (listed unstarted, without name or client URLs),
//! updated and removed, never promoted (it never catches up); a voting member is refused, since
//! it could never start and this member would lose its quorum. Headers carry no revision, as
//! etcd's cluster service fills none. Membership changes go through the node's writer and are
//! logged, so they survive a restart. With auth enabled, membership changes are for admins (the
//! root role), as etcd's `checkMembershipOperationPermission`; MemberList is not checked.

use strata_node::{ClusterRequest, ClusterResponse, Member, WriteRequest, WriteResponse};
use tonic::{Request, Response, Status};

use super::Api;
use crate::errors::{api_status, auth_status, ApiError};
use crate::pb::etcdserverpb as pb;

/// The URL schemes etcd takes for a member's peer URLs (Go's `types.NewURLs`).
const PEER_URL_SCHEMES: [&str; 4] = ["http", "https", "unix", "unixs"];

#[tonic::async_trait]
impl pb::cluster_server::Cluster for Api {
    async fn member_add(&self, request: Request<pb::MemberAddRequest>) -> Result<Response<pb::MemberAddResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let peer_urls = peer_urls(&request.peer_ur_ls).ok_or_else(|| api_status(ApiError::MemberBadUrls))?;
        self.check_membership_admin(caller)?;
        let (added, members) = self.change_members(ClusterRequest::MemberAdd { peer_urls, is_learner: request.is_learner }).await?;
        Ok(Response::new(pb::MemberAddResponse { header: Some(self.header(0)), member: added.map(|member| self.member_of(&member)), members }))
    }

    async fn member_remove(&self, request: Request<pb::MemberRemoveRequest>) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        self.check_membership_admin(self.caller(&request))?;
        let (_, members) = self.change_members(ClusterRequest::MemberRemove { id: request.into_inner().id }).await?;
        Ok(Response::new(pb::MemberRemoveResponse { header: Some(self.header(0)), members }))
    }

    async fn member_update(&self, request: Request<pb::MemberUpdateRequest>) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        self.check_membership_admin(self.caller(&request))?;
        let request = request.into_inner();
        // etcd's MemberUpdate takes the URLs as given: no check, no sorting.
        let (_, members) = self.change_members(ClusterRequest::MemberUpdate { id: request.id, peer_urls: request.peer_ur_ls }).await?;
        Ok(Response::new(pb::MemberUpdateResponse { header: Some(self.header(0)), members }))
    }

    async fn member_list(&self, _: Request<pb::MemberListRequest>) -> Result<Response<pb::MemberListResponse>, Status> {
        let members = self.node.members().iter().map(|member| self.member_of(member)).collect();
        Ok(Response::new(pb::MemberListResponse { header: Some(self.header(0)), members }))
    }

    async fn member_promote(&self, request: Request<pb::MemberPromoteRequest>) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        self.check_membership_admin(self.caller(&request))?;
        let (_, members) = self.change_members(ClusterRequest::MemberPromote { id: request.into_inner().id }).await?;
        Ok(Response::new(pb::MemberPromoteResponse { header: Some(self.header(0)), members }))
    }
}

impl Api {
    /// etcd's `checkMembershipOperationPermission`: with auth enabled, admins only.
    fn check_membership_admin(&self, caller: Result<Option<strata_auth::AuthInfo>, strata_auth::AuthError>) -> Result<(), Status> {
        let caller = caller.map_err(auth_status)?;
        self.node.auth_state().is_admin_permitted(caller.as_ref()).map_err(auth_status)
    }

    /// Sends a membership change through the writer; the member it added and the members after.
    async fn change_members(&self, request: ClusterRequest) -> Result<(Option<Member>, Vec<pb::Member>), Status> {
        let WriteResponse::Cluster(ClusterResponse::Members { added, members }) = self.write(WriteRequest::Cluster(request)).await? else {
            unreachable!("the writer answers a membership change with the members")
        };
        Ok((added, members.iter().map(|member| self.member_of(member)).collect()))
    }

    /// A member as etcd lists it: this one with its name and client URLs, the others (learners
    /// that never started) with their peer URLs only.
    fn member_of(&self, member: &Member) -> pb::Member {
        if member.is_self {
            return pb::Member { peer_ur_ls: member.peer_urls.clone(), ..self.member() };
        }
        pb::Member { id: member.id, name: member.name.clone(), peer_ur_ls: member.peer_urls.clone(), client_ur_ls: Vec::new(), is_learner: member.is_learner }
    }
}

/// Go's `types.NewURLs` as etcd's MemberAdd applies it: at least one URL, each (trimmed)
/// `scheme://host:port` with one of [`PEER_URL_SCHEMES`] and no path; sorted. `None` if invalid.
fn peer_urls(urls: &[String]) -> Option<Vec<String>> {
    if urls.is_empty() {
        return None;
    }
    let mut parsed = urls.iter().map(|url| peer_url(url.trim())).collect::<Option<Vec<String>>>()?;
    parsed.sort();
    Some(parsed)
}

fn peer_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !PEER_URL_SCHEMES.contains(&scheme) {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[authority_end..].starts_with('/') {
        return None;
    }
    let authority = &rest[..authority_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:")?.0,
        None => host_port.rsplit_once(':')?.0,
    };
    // Go's SplitHostPort: an IPv6 host needs its brackets.
    if !host_port.starts_with('[') && host.contains(':') {
        return None;
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(urls: &[&str]) -> Vec<String> {
        urls.iter().map(|url| url.to_string()).collect()
    }

    #[test]
    fn peer_urls_are_checked_and_sorted_as_go_checks_them() {
        assert_eq!(peer_urls(&urls(&["http://b:2", " http://a:1 "])), Some(urls(&["http://a:1", "http://b:2"])));
        assert_eq!(peer_urls(&urls(&["https://[::1]:2380", "unix://socket:0"])), Some(urls(&["https://[::1]:2380", "unix://socket:0"])));
        assert_eq!(peer_urls(&urls(&["http://a:"])), Some(urls(&["http://a:"])));
        for bad in ["", "a:1", "ftp://a:1", "http://a", "http://a:1/path", "http://a:1/", "http://::1:80"] {
            assert_eq!(peer_urls(&urls(&[bad])), None, "{bad:?}");
        }
        assert_eq!(peer_urls(&[]), None);
    }
}
