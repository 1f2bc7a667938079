//! The node's side of auth: the durable [`AuthState`] and its changes through the writer, the
//! permission checks of every write, replay of auth log entries, password hashing, Authenticate,
//! and the tokens etcd offers (`--auth-token`): `simple` (random, in memory, expiring
//! `--auth-token-ttl` after their last use) and `jwt` (signed, carrying etcd's claims
//! `username`, `revision` and `exp`).
//!
//! How auth stays consistent with the rest of the node:
//! - Auth changes are [`WriteRequest::Auth`]s: the writer evaluates them in order with the other
//!   requests of a batch against an [`AuthBatch`], a copy of the durable state made at the
//!   batch's first auth change, which later requests of the batch (and their permission checks)
//!   see. Each change that changed something logs one entry (log entry field 10; no key changes,
//!   no new revision). The copy replaces the durable state only once the batch is durable; replay
//!   applies the same changes to a fresh state.
//! - Every client write is checked by the writer, against that same view, before it is evaluated
//!   (etcd checks at apply time, not when the request arrives): a permission revoked earlier in
//!   the batch already applies. Reads are checked against the durable state, as etcd checks
//!   serialized reads.
//! - Passwords are hashed (bcrypt, `--bcrypt-cost`) before a request is queued, so the writer
//!   never hashes and the log never holds a password, only its hash.
//! - Deleting a user or changing its password invalidates its simple tokens, disabling auth all
//!   of them, when the change is published; Authenticate issues a token only if no change was
//!   published since it checked the password (etcd's `checkedRevision` loop).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use strata_auth::{AuthError, AuthInfo, AuthRequest, AuthState, Permission, SimpleTokens, SIMPLE_TOKEN_RANDOM_CHARACTERS};
use strata_lease::{LeaseBatch, Lessor, LEASE_NONE};
use strata_mvcc::{DeleteRangeRequest, PutRequest, RequestOp, Stamp, TxnRequest};
use strata_types::Revision;

use crate::entry::{LogAuthChange, LogRolePermission, LogUser, LogUserRole};
use crate::{LogEntry, Node, NodeError, Shared, WriteRequest, WriteResponse};

/// etcd's default `--bcrypt-cost`.
pub const BCRYPT_COST_DEFAULT: u32 = 10;
/// The costs etcd accepts for `--bcrypt-cost` (Go's `bcrypt.MinCost` and `MaxCost`).
pub const BCRYPT_COST_MIN: u32 = 4;
pub const BCRYPT_COST_MAX: u32 = 31;
/// etcd's default `--auth-token-ttl`: simple tokens live this long after their last use.
pub const AUTH_TOKEN_TTL_DEFAULT_SECONDS: u64 = 300;
/// etcd's default `ttl` of a JWT (`jwt,…,ttl=…`).
pub const JWT_TTL_DEFAULT_SECONDS: u64 = 300;
/// Draws of a simple token before Authenticate gives up (a collision of 16 random letters).
const SIMPLE_TOKEN_DRAWS_MAX: usize = 8;

/// Who sent a write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Caller {
    /// The node itself (lease expiry, the quota's NOSPACE alarm): never checked.
    #[default]
    Node,
    /// A client, with the credentials its token or certificate resolved to (`None`: it sent
    /// none).
    Client(Option<AuthInfo>),
}

/// etcd's `--auth-token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenConfig {
    /// etcd's default: random tokens in memory that expire `ttl` after their last use.
    Simple {
        ttl: Duration,
    },
    Jwt(JwtConfig),
}

/// `jwt,pub-key=PATH,priv-key=PATH,sign-method=METHOD,ttl=DURATION`, its key files read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtConfig {
    /// etcd's names: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, HS256, HS384, HS512
    /// (ES512 is etcd's too, but the signing library has no P-521: refused at start).
    pub sign_method: String,
    /// PEM (or, for HS*, the secret's bytes); without it the node verifies tokens but issues none.
    pub private_key: Option<Vec<u8>>,
    /// PEM; without it the public key is derived from the private one.
    pub public_key: Option<Vec<u8>>,
    pub ttl: Duration,
}

impl TokenConfig {
    /// Reads etcd's `--auth-token` value: `simple` (with `simple_ttl`, from `--auth-token-ttl`)
    /// or `jwt,` and options; `read_file` reads the key files. Options etcd does not know are
    /// ignored, as etcd ignores them.
    pub fn parse(spec: &str, simple_ttl: Duration, read_file: &dyn Fn(&str) -> Result<Vec<u8>, String>) -> Result<TokenConfig, String> {
        let mut parts = spec.split(',');
        let kind = parts.next().unwrap_or_default();
        let mut options = std::collections::BTreeMap::new();
        for option in parts {
            let Some((name, value)) = option.split_once('=').filter(|(_, value)| !value.contains('=')) else {
                return Err(format!("--auth-token: invalid option {option:?} (expected name=value)"));
            };
            if options.insert(name, value).is_some() {
                return Err(format!("--auth-token: option {name:?} given twice"));
            }
        }
        match kind {
            "simple" => Ok(TokenConfig::Simple { ttl: simple_ttl }),
            "jwt" => {
                let ttl = match options.get("ttl").filter(|ttl| !ttl.is_empty()) {
                    Some(ttl) => parse_go_duration(ttl).ok_or_else(|| format!("--auth-token: invalid ttl {ttl:?} (a Go duration, e.g. 5m)"))?,
                    None => Duration::from_secs(JWT_TTL_DEFAULT_SECONDS),
                };
                let read = |option: &str| -> Result<Option<Vec<u8>>, String> {
                    match options.get(option).filter(|path| !path.is_empty()) {
                        Some(path) => read_file(path).map(Some).map_err(|error| format!("--auth-token: {option} {path}: {error}")),
                        None => Ok(None),
                    }
                };
                let config = JwtConfig {
                    sign_method: options.get("sign-method").copied().unwrap_or_default().to_string(),
                    private_key: read("priv-key")?,
                    public_key: read("pub-key")?,
                    ttl,
                };
                // Refuse bad keys or methods at start, naming them.
                JwtTokens::new(&config)?;
                Ok(TokenConfig::Jwt(config))
            }
            other => Err(format!("--auth-token: unknown token type {other:?} (simple or jwt)")),
        }
    }
}

/// Go's `time.ParseDuration` for the JWT `ttl` option (units ns, us, ms, s, m, h; fractions).
fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_length = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_length);
        let unit_length = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_length);
        rest = after;
        let unit_nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_nanos += number.parse::<f64>().ok()? * unit_nanos;
    }
    (total_nanos.is_finite() && total_nanos >= 0.0).then(|| Duration::from_nanos(total_nanos as u64))
}

/// How a node hashes passwords and issues tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub token: TokenConfig,
    /// etcd's `--bcrypt-cost` (4 to 31; etcd's default 10). Tests use 4 to stay fast.
    pub bcrypt_cost: u32,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig { token: TokenConfig::Simple { ttl: Duration::from_secs(AUTH_TOKEN_TTL_DEFAULT_SECONDS) }, bcrypt_cost: BCRYPT_COST_DEFAULT }
    }
}

/// etcd's JWT claims as a token is issued, in the order Go writes a map's keys.
#[derive(serde::Serialize)]
struct IssuedClaims<'a> {
    exp: u64,
    revision: u64,
    username: &'a str,
}

/// etcd's JWT claims as a token is read (`exp` is checked by the library when present; Go reads
/// numbers as floats).
#[derive(serde::Deserialize)]
struct ReadClaims {
    revision: f64,
    username: String,
}

struct JwtTokens {
    algorithm: Algorithm,
    /// `None`: verify-only (no private key).
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

/// The one PEM block of `pem` as (label, DER).
fn pem_block(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let after = &text[start + "-----BEGIN ".len()..];
    let label_end = after.find("-----")?;
    let label = after[..label_end].to_string();
    let body_start = label_end + "-----".len();
    let body_end = after.find("-----END ")?;
    let body: Vec<u8> = after.get(body_start..body_end)?.bytes().filter(|byte| !byte.is_ascii_whitespace()).collect();
    Some((label, strata_auth::decode_base64(&body).ok()?))
}

impl JwtTokens {
    fn new(config: &JwtConfig) -> Result<JwtTokens, String> {
        let algorithm = match config.sign_method.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "ES512" => {
                return Err("--auth-token: sign-method ES512 is not supported by this Strata release (its JWT library has no P-521); use ES256 or ES384".into())
            }
            "" => return Err("--auth-token: jwt needs sign-method (e.g. RS256)".into()),
            other => return Err(format!("--auth-token: unknown sign-method {other:?}")),
        };
        let key_error = |which: &str, error: &dyn std::fmt::Display| format!("--auth-token: cannot read the {which} for {}: {error}", config.sign_method);
        let (encoding, decoding) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = config.private_key.as_deref().ok_or("--auth-token: jwt with an HS* sign-method needs priv-key (the secret)")?;
                (Some(EncodingKey::from_secret(secret)), DecodingKey::from_secret(secret))
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let encoding = match &config.private_key {
                    Some(pem) => Some(EncodingKey::from_ec_pem(pem).map_err(|error| key_error("private key (PKCS#8 PEM)", &error))?),
                    None => None,
                };
                let decoding = match (&config.public_key, &config.private_key) {
                    (Some(pem), _) => DecodingKey::from_ec_pem(pem).map_err(|error| key_error("public key", &error))?,
                    (None, Some(pem)) => {
                        let signing = if algorithm == Algorithm::ES256 {
                            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING
                        } else {
                            &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING
                        };
                        let der = pem_block(pem).map(|(_, der)| der).ok_or_else(|| key_error("private key", &"not PEM"))?;
                        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(signing, &der, &ring::rand::SystemRandom::new())
                            .map_err(|error| key_error("private key", &error))?;
                        DecodingKey::from_ec_der(ring::signature::KeyPair::public_key(&pair).as_ref())
                    }
                    (None, None) => return Err("--auth-token: jwt needs priv-key or pub-key".into()),
                };
                (encoding, decoding)
            }
            _ => {
                let encoding = match &config.private_key {
                    Some(pem) => Some(EncodingKey::from_rsa_pem(pem).map_err(|error| key_error("private key", &error))?),
                    None => None,
                };
                let decoding = match (&config.public_key, &config.private_key) {
                    (Some(pem), _) => DecodingKey::from_rsa_pem(pem).map_err(|error| key_error("public key", &error))?,
                    (None, Some(pem)) => {
                        let (label, der) = pem_block(pem).ok_or_else(|| key_error("private key", &"not PEM"))?;
                        let pair = if label == "RSA PRIVATE KEY" {
                            ring::signature::RsaKeyPair::from_der(&der)
                        } else {
                            ring::signature::RsaKeyPair::from_pkcs8(&der)
                        }
                        .map_err(|error| key_error("private key", &error))?;
                        DecodingKey::from_rsa_der(ring::signature::KeyPair::public_key(&pair).as_ref())
                    }
                    (None, None) => return Err("--auth-token: jwt needs priv-key or pub-key".into()),
                };
                (encoding, decoding)
            }
        };
        let mut validation = Validation::new(algorithm);
        // As etcd's JWT library: no leeway, `exp` checked when present, nothing else required.
        validation.leeway = 0;
        validation.required_spec_claims = HashSet::new();
        validation.validate_aud = false;
        Ok(JwtTokens { algorithm, encoding, decoding, validation, ttl: config.ttl })
    }

    fn assign(&self, user: &str, revision: u64) -> Result<String, AuthError> {
        let encoding = self.encoding.as_ref().ok_or(AuthError::VerifyOnly)?;
        let expires_at = crate::wall_clock_millis() / 1000 + self.ttl.as_secs();
        let claims = IssuedClaims { exp: expires_at, revision, username: user };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding).map_err(|error| {
            tracing::error!(%error, "cannot sign a JWT");
            AuthError::VerifyOnly
        })
    }

    fn info(&self, token: &str) -> Option<AuthInfo> {
        let claims = jsonwebtoken::decode::<ReadClaims>(token, &self.decoding, &self.validation).ok()?.claims;
        Some(AuthInfo { user: claims.username, revision: claims.revision as u64 })
    }
}

enum Tokens {
    Simple(Mutex<SimpleTokens>),
    Jwt(Box<JwtTokens>),
}

/// The durable auth state and the tokens, shared by the node and its writer.
pub(crate) struct Auth {
    state: RwLock<Arc<AuthState>>,
    tokens: Tokens,
    /// Held while a batch's changes are published and while a token is issued, so a token is
    /// never issued for a password or user a published change has replaced.
    issuing: Mutex<()>,
    bcrypt_cost: u32,
    clock: Instant,
    random: ring::rand::SystemRandom,
}

impl Auth {
    pub(crate) fn new(state: AuthState, config: &AuthConfig) -> Result<Auth, String> {
        if !(BCRYPT_COST_MIN..=BCRYPT_COST_MAX).contains(&config.bcrypt_cost) {
            return Err(format!("--bcrypt-cost {} is out of range [{BCRYPT_COST_MIN}, {BCRYPT_COST_MAX}]", config.bcrypt_cost));
        }
        let tokens = match &config.token {
            TokenConfig::Simple { ttl } => Tokens::Simple(Mutex::new(SimpleTokens::new(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))),
            TokenConfig::Jwt(jwt) => Tokens::Jwt(Box::new(JwtTokens::new(jwt)?)),
        };
        Ok(Auth {
            state: RwLock::new(Arc::new(state)),
            tokens,
            issuing: Mutex::new(()),
            bcrypt_cost: config.bcrypt_cost,
            clock: Instant::now(),
            random: ring::rand::SystemRandom::new(),
        })
    }

    pub(crate) fn state(&self) -> Arc<AuthState> {
        self.state.read().expect("auth state lock poisoned").clone()
    }

    fn issuing(&self) -> MutexGuard<'_, ()> {
        self.issuing.lock().expect("auth issuing lock poisoned")
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The writer's view of the auth state during one batch (see the module documentation).
pub(crate) struct AuthBatch {
    durable: Arc<AuthState>,
    pending: Option<AuthState>,
    /// The changes evaluated, for the token invalidations they imply once published.
    changes: Vec<AuthRequest>,
}

impl AuthBatch {
    pub(crate) fn new(shared: &Shared) -> AuthBatch {
        AuthBatch { durable: shared.auth.state(), pending: None, changes: Vec::new() }
    }

    fn view(&self) -> &AuthState {
        self.pending.as_ref().unwrap_or(&self.durable)
    }

    /// etcd's apply-time permission checks of a client's write. `lease_keys` lists the keys
    /// attached to a lease as the batch leaves it (asked only when a lease's keys matter).
    pub(crate) fn check(&self, caller: &Caller, request: &WriteRequest, lessor: &Lessor, lease_batch: &LeaseBatch) -> Result<(), NodeError> {
        let Caller::Client(info) = caller else { return Ok(()) };
        let state = self.view();
        if !state.is_enabled() {
            return Ok(());
        }
        let info = info.as_ref();
        let lease_keys = |id: i64| -> Vec<Vec<u8>> {
            if id == LEASE_NONE || !lease_batch.exists(lessor, id) {
                return Vec::new();
            }
            lease_batch.clone().revoke(lessor, id).unwrap_or_default()
        };
        let result = match request {
            WriteRequest::Put(put) => check_put(state, info, put, &lease_keys),
            WriteRequest::DeleteRange(delete) => check_delete(state, info, delete),
            WriteRequest::Txn(txn) => check_txn(state, info, txn),
            WriteRequest::LeaseRevoke { id } => check_lease_keys(state, info, *id, &lease_keys),
            // Compaction, lease grants, membership, alarms: no permission (as etcd); auth
            // changes: the admin check happens when they are evaluated.
            _ => Ok(()),
        };
        result.map_err(NodeError::Auth)
    }

    /// Evaluates one auth change of the batch; the entry to log if it changed something. Auth
    /// entries change no key: their revision is the current one.
    pub(crate) fn evaluate(
        &mut self,
        revision: Revision,
        stamp: Stamp,
        caller: &Caller,
        request: &AuthRequest,
    ) -> (Result<WriteResponse, NodeError>, Option<LogEntry>) {
        let durable = &self.durable;
        let state = self.pending.get_or_insert_with(|| AuthState::clone(durable));
        let result = match caller {
            Caller::Node => state.apply(request),
            Caller::Client(info) => state.evaluate(info.as_ref(), request),
        };
        match result {
            Ok(changed) => {
                let entry = changed.then(|| LogEntry { auth: Some(log_change(request)), ..LogEntry::from_changes(revision, stamp, &[]) });
                if changed {
                    self.changes.push(request.clone());
                }
                (Ok(WriteResponse::Auth { revision }), entry)
            }
            Err(error) => (Err(NodeError::Auth(error)), None),
        }
    }

    /// The batch is durable: its auth changes become the node's, and tokens they invalidate go.
    pub(crate) fn publish(self, shared: &Shared) {
        let Some(state) = self.pending else { return };
        let _issuing = shared.auth.issuing();
        *shared.auth.state.write().expect("auth state lock poisoned") = Arc::new(state);
        if let Tokens::Simple(tokens) = &shared.auth.tokens {
            let mut tokens = tokens.lock().expect("token table lock poisoned");
            for change in &self.changes {
                match change {
                    AuthRequest::Disable => tokens.clear(),
                    AuthRequest::UserDelete { name } | AuthRequest::UserChangePassword { name, .. } => tokens.invalidate_user(name),
                    _ => {}
                }
            }
        }
    }
}

/// etcd's checks of a Put: write on the key; write on every key of the lease it attaches to
/// (unless an admin), since a user who could not revoke that lease may not extend it; read on
/// the key for `prev_kv`.
fn check_put(state: &AuthState, info: Option<&AuthInfo>, put: &PutRequest, lease_keys: &dyn Fn(i64) -> Vec<Vec<u8>>) -> Result<(), AuthError> {
    state.is_put_permitted(info, &put.key)?;
    check_lease_keys(state, info, put.lease, lease_keys)?;
    if put.prev_kv {
        state.is_range_permitted(info, &put.key, b"")?;
    }
    Ok(())
}

fn check_delete(state: &AuthState, info: Option<&AuthInfo>, delete: &DeleteRangeRequest) -> Result<(), AuthError> {
    state.is_delete_range_permitted(info, &delete.key, &delete.range_end)?;
    if delete.prev_kv {
        state.is_range_permitted(info, &delete.key, &delete.range_end)?;
    }
    Ok(())
}

/// etcd's `checkLeasePuts`: write on every key attached to the lease, unless an admin.
fn check_lease_keys(state: &AuthState, info: Option<&AuthInfo>, lease: i64, lease_keys: &dyn Fn(i64) -> Vec<Vec<u8>>) -> Result<(), AuthError> {
    if lease == LEASE_NONE || state.is_admin_permitted(info).is_ok() {
        return Ok(());
    }
    for key in lease_keys(lease) {
        state.is_put_permitted(info, &key)?;
    }
    Ok(())
}

/// etcd's `checkTxnAuth`: read on every compare's range; then each op of both branches, nested
/// txns included (etcd 3.5's rule; 3.4 did not look into nested txns): read for a range, write
/// for a put (a txn's put needs no read for `prev_kv`, as in etcd), read (with `prev_kv`) and
/// write for a delete.
pub fn check_txn(state: &AuthState, info: Option<&AuthInfo>, txn: &TxnRequest) -> Result<(), AuthError> {
    for compare in &txn.compare {
        state.is_range_permitted(info, &compare.key, &compare.range_end)?;
    }
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            RequestOp::Range(range) => state.is_range_permitted(info, &range.key, &range.range_end)?,
            RequestOp::Put(put) => state.is_put_permitted(info, &put.key)?,
            RequestOp::DeleteRange(delete) => {
                if delete.prev_kv {
                    state.is_range_permitted(info, &delete.key, &delete.range_end)?;
                }
                state.is_delete_range_permitted(info, &delete.key, &delete.range_end)?;
            }
            RequestOp::Txn(nested) => check_txn(state, info, nested)?,
            // Validation refuses it before it gets here.
            RequestOp::Empty => {}
        }
    }
    Ok(())
}

/// An auth change as log entry field 10 holds it.
fn log_change(request: &AuthRequest) -> LogAuthChange {
    let mut change = LogAuthChange::default();
    match request {
        AuthRequest::Enable => change.enable = Some(true),
        AuthRequest::Disable => change.disable = Some(true),
        AuthRequest::UserAdd { name, password_hash, no_password } => {
            change.user_add = Some(LogUser { name: name.clone(), password_hash: password_hash.clone(), no_password: *no_password })
        }
        AuthRequest::UserDelete { name } => change.user_delete = Some(name.clone()),
        AuthRequest::UserChangePassword { name, password_hash } => {
            change.user_change_password = Some(LogUser { name: name.clone(), password_hash: password_hash.clone(), no_password: false })
        }
        AuthRequest::UserGrantRole { user, role } => change.user_grant_role = Some(LogUserRole { user: user.clone(), role: role.clone() }),
        AuthRequest::UserRevokeRole { name, role } => change.user_revoke_role = Some(LogUserRole { user: name.clone(), role: role.clone() }),
        AuthRequest::RoleAdd { name } => change.role_add = Some(name.clone()),
        AuthRequest::RoleDelete { role } => change.role_delete = Some(role.clone()),
        AuthRequest::RoleGrantPermission { name, permission } => {
            // Only a change that changed something is logged, so the permission is there.
            let permission = permission.clone().unwrap_or(Permission { kind: 0, key: Vec::new(), range_end: Vec::new() });
            change.role_grant_permission =
                Some(LogRolePermission { role: name.clone(), kind: permission.kind, key: permission.key, range_end: permission.range_end })
        }
        AuthRequest::RoleRevokePermission { role, key, range_end } => {
            change.role_revoke_permission = Some(LogRolePermission { role: role.clone(), kind: 0, key: key.clone(), range_end: range_end.clone() })
        }
    }
    change
}

/// The auth change a log entry holds; `None` if it sets no field this release knows.
fn request_of(change: &LogAuthChange) -> Option<AuthRequest> {
    let LogAuthChange {
        enable,
        disable,
        user_add,
        user_delete,
        user_change_password,
        user_grant_role,
        user_revoke_role,
        role_add,
        role_delete,
        role_grant_permission,
        role_revoke_permission,
    } = change.clone();
    if enable.is_some() {
        return Some(AuthRequest::Enable);
    }
    if disable.is_some() {
        return Some(AuthRequest::Disable);
    }
    if let Some(user) = user_add {
        return Some(AuthRequest::UserAdd { name: user.name, password_hash: user.password_hash, no_password: user.no_password });
    }
    if let Some(name) = user_delete {
        return Some(AuthRequest::UserDelete { name });
    }
    if let Some(user) = user_change_password {
        return Some(AuthRequest::UserChangePassword { name: user.name, password_hash: user.password_hash });
    }
    if let Some(grant) = user_grant_role {
        return Some(AuthRequest::UserGrantRole { user: grant.user, role: grant.role });
    }
    if let Some(revoke) = user_revoke_role {
        return Some(AuthRequest::UserRevokeRole { name: revoke.user, role: revoke.role });
    }
    if let Some(name) = role_add {
        return Some(AuthRequest::RoleAdd { name });
    }
    if let Some(role) = role_delete {
        return Some(AuthRequest::RoleDelete { role });
    }
    if let Some(grant) = role_grant_permission {
        let permission = Permission { kind: grant.kind, key: grant.key, range_end: grant.range_end };
        return Some(AuthRequest::RoleGrantPermission { name: grant.role, permission: Some(permission) });
    }
    role_revoke_permission.map(|revoke| AuthRequest::RoleRevokePermission { role: revoke.role, key: revoke.key, range_end: revoke.range_end })
}

/// Replays one logged auth change; `index` names the record in errors. A logged change always
/// changed the state when it was evaluated, so one that fails or changes nothing now means the
/// log and the state disagree.
pub(crate) fn replay(state: &mut AuthState, index: u64, change: &LogAuthChange) -> Result<(), String> {
    let request =
        request_of(change).ok_or_else(|| format!("log record {index} holds an auth change this release does not know (written by a newer release?)"))?;
    match state.apply(&request) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("log record {index}: auth change {request:?} changes nothing on replay")),
        Err(error) => Err(format!("log record {index}: auth change {request:?} fails on replay: {error}")),
    }
}

impl Node {
    /// The durable auth state (reads and their checks).
    pub fn auth_state(&self) -> Arc<AuthState> {
        self.shared.auth.state()
    }

    /// etcd's `AuthInfoFromCtx` for a token: the user and auth revision it stands for (a simple
    /// token: the current revision, and its TTL starts again), or `InvalidAuthToken`.
    pub fn auth_info_from_token(&self, token: &str) -> Result<AuthInfo, AuthError> {
        let auth = &self.shared.auth;
        match &auth.tokens {
            Tokens::Simple(tokens) => {
                let user = tokens.lock().expect("token table lock poisoned").user_of(token, auth.now_millis()).ok_or(AuthError::InvalidAuthToken)?;
                Ok(AuthInfo { user, revision: auth.state().revision() })
            }
            Tokens::Jwt(jwt) => jwt.info(token).ok_or(AuthError::InvalidAuthToken),
        }
    }

    /// etcd's `AuthInfoFromTLS`: a verified client certificate's common name is the user, at the
    /// current auth revision.
    pub fn auth_info_from_certificate(&self, common_name: &str) -> AuthInfo {
        AuthInfo { user: common_name.to_string(), revision: self.shared.auth.state().revision() }
    }

    /// A read as etcd serializes it (`doSerialize`): the permission check against the durable
    /// state, the read, then a refusal with `OldRevision` if the credentials' revision is not the
    /// auth revision any more (the state changed under the read).
    pub fn serialized_read<T>(
        &self,
        caller: Option<&AuthInfo>,
        check: impl FnOnce(&AuthState) -> Result<(), AuthError>,
        read: impl FnOnce() -> T,
    ) -> Result<T, AuthError> {
        check(&self.shared.auth.state())?;
        let value = read();
        if let Some(caller) = caller {
            if caller.revision != 0 && caller.revision != self.shared.auth.state().revision() {
                return Err(AuthError::OldRevision);
            }
        }
        Ok(value)
    }

    /// bcrypt of `password` with `--bcrypt-cost`, in Go's `$2a$` form (etcd's), off the async
    /// threads.
    pub async fn hash_password(&self, password: String) -> Result<Vec<u8>, NodeError> {
        let cost = self.shared.auth.bcrypt_cost;
        let hashed = tokio::task::spawn_blocking(move || bcrypt::hash_with_result(password, cost))
            .await
            .map_err(|_| NodeError::Stopped)?
            .map_err(|error| NodeError::Storage(format!("cannot hash the password: {error}")))?;
        Ok(hashed.format_for_version(bcrypt::Version::TwoA).into_bytes())
    }

    /// etcd's Authenticate: the password checked against the user's bcrypt hash (off the async
    /// threads), then a token issued, unless an auth change was published meanwhile (then again).
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<String, NodeError> {
        let auth = &self.shared.auth;
        loop {
            let (hash, checked_revision) = auth.state().password_of(name).map_err(NodeError::Auth)?;
            let password = password.to_string();
            let matches =
                tokio::task::spawn_blocking(move || std::str::from_utf8(&hash).ok().is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false)))
                    .await
                    .map_err(|_| NodeError::Stopped)?;
            if !matches {
                return Err(NodeError::Auth(AuthError::AuthFailed));
            }
            let _issuing = auth.issuing();
            if auth.state().revision() != checked_revision {
                tracing::info!("the auth revision changed while the password was checked; checking again");
                continue;
            }
            return match &auth.tokens {
                Tokens::Simple(tokens) => {
                    let index = self.shared.last_log_index.load(std::sync::atomic::Ordering::Relaxed);
                    let mut tokens = tokens.lock().expect("token table lock poisoned");
                    for _ in 0..SIMPLE_TOKEN_DRAWS_MAX {
                        let mut random = [0u8; SIMPLE_TOKEN_RANDOM_CHARACTERS];
                        ring::rand::SecureRandom::fill(&auth.random, &mut random).map_err(|_| NodeError::Storage("no randomness for a token".into()))?;
                        if let Some(token) = tokens.assign(&random, index, name, auth.now_millis()) {
                            return Ok(token);
                        }
                    }
                    Err(NodeError::Storage("cannot draw an unused token".into()))
                }
                Tokens::Jwt(jwt) => jwt.assign(name, checked_revision).map_err(NodeError::Auth),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_options_are_read_as_etcd_reads_them() {
        let no_files = |path: &str| -> Result<Vec<u8>, String> { Err(format!("{path}: no such file")) };
        assert_eq!(TokenConfig::parse("simple", Duration::from_secs(7), &no_files), Ok(TokenConfig::Simple { ttl: Duration::from_secs(7) }));
        assert!(TokenConfig::parse("bogus", Duration::from_secs(7), &no_files).unwrap_err().contains("bogus"));
        let error = TokenConfig::parse("jwt,sign-method=ES512,priv-key=k", Duration::from_secs(7), &|_| Ok(Vec::new())).unwrap_err();
        assert!(error.contains("ES512"), "{error}");
        assert!(TokenConfig::parse("jwt,sign-method=RS256,priv-key=/missing", Duration::from_secs(7), &no_files).unwrap_err().contains("/missing"));
        assert!(TokenConfig::parse("jwt,sign-method", Duration::from_secs(7), &no_files).is_err());
        let secret = |_: &str| -> Result<Vec<u8>, String> { Ok(b"secret".to_vec()) };
        let Ok(TokenConfig::Jwt(config)) = TokenConfig::parse("jwt,sign-method=HS256,priv-key=s,ttl=1m30s", Duration::from_secs(7), &secret) else {
            panic!("an HS256 config")
        };
        assert_eq!(config.ttl, Duration::from_secs(90));
    }

    #[test]
    fn a_jwt_carries_etcds_claims_and_is_refused_when_forged_or_expired() {
        let config = |secret: &str, ttl| JwtConfig { sign_method: "HS256".into(), private_key: Some(secret.as_bytes().to_vec()), public_key: None, ttl };
        let tokens = JwtTokens::new(&config("one", Duration::from_secs(60))).unwrap();
        let token = tokens.assign("alice", 7).unwrap();
        assert_eq!(tokens.info(&token), Some(AuthInfo { user: "alice".into(), revision: 7 }));
        let other = JwtTokens::new(&config("two", Duration::from_secs(60))).unwrap();
        assert_eq!(other.info(&token), None, "signed with another key");
        let expired = JwtTokens::new(&config("one", Duration::ZERO)).unwrap();
        let claims = IssuedClaims { exp: crate::wall_clock_millis() / 1000 - 10, revision: 7, username: "alice" };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, expired.encoding.as_ref().unwrap()).unwrap();
        assert_eq!(tokens.info(&old), None, "expired");
    }

    #[test]
    fn a_private_key_alone_signs_and_verifies_and_a_public_key_alone_only_verifies() {
        // The JWT test keys of the end-to-end tests (PKCS#8 and SPKI PEM).
        let fixture = |name: &str| std::fs::read(format!("{}/../cli/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))).expect("a fixture key");
        for (method, key) in [("RS256", "rsa"), ("ES256", "ec")] {
            let config = |private_key: Option<Vec<u8>>, public_key: Option<Vec<u8>>| JwtConfig {
                sign_method: method.into(),
                private_key,
                public_key,
                ttl: Duration::from_secs(60),
            };
            let signing = JwtTokens::new(&config(Some(fixture(&format!("{key}.key"))), None)).expect(method);
            let token = signing.assign("root", 3).expect("sign");
            assert_eq!(signing.info(&token), Some(AuthInfo { user: "root".into(), revision: 3 }), "{method}: the public key derived from the private");
            let verifying = JwtTokens::new(&config(None, Some(fixture(&format!("{key}.pub"))))).expect(method);
            assert_eq!(verifying.info(&token).map(|info| info.user), Some("root".into()));
            assert_eq!(verifying.assign("root", 3), Err(AuthError::VerifyOnly));
            assert!(JwtTokens::new(&config(None, None)).is_err());
        }
    }

    #[test]
    fn logged_changes_round_trip() {
        for request in [
            AuthRequest::Enable,
            AuthRequest::Disable,
            AuthRequest::UserAdd { name: "u".into(), password_hash: b"h".to_vec(), no_password: true },
            AuthRequest::UserDelete { name: "u".into() },
            AuthRequest::UserChangePassword { name: "u".into(), password_hash: b"h".to_vec() },
            AuthRequest::UserGrantRole { user: "u".into(), role: "r".into() },
            AuthRequest::UserRevokeRole { name: "u".into(), role: "r".into() },
            AuthRequest::RoleAdd { name: "r".into() },
            AuthRequest::RoleDelete { role: "r".into() },
            AuthRequest::RoleGrantPermission { name: "r".into(), permission: Some(Permission { kind: 2, key: b"a".to_vec(), range_end: b"\0".to_vec() }) },
            AuthRequest::RoleRevokePermission { role: "r".into(), key: b"a".to_vec(), range_end: b"b".to_vec() },
        ] {
            assert_eq!(request_of(&log_change(&request)), Some(request));
        }
        assert_eq!(request_of(&LogAuthChange::default()), None);
        let error = replay(&mut AuthState::new(), 9, &LogAuthChange::default()).unwrap_err();
        assert!(error.contains("log record 9"), "{error}");
    }
}
