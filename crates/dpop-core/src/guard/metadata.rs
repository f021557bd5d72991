//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for this resource, generated from the
//! same configuration that is enforced, so the two cannot drift.

use serde_json::{Value, json};

use crate::proof::algorithm::AlgorithmSet;

/// The well-known path segment of RFC 9728 §3.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// What a resource server says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceMetadata {
    /// The canonical resource URI (the token `aud`), e.g. `https://mcp.example.com/mcp`.
    pub(crate) resource: String,
    pub(crate) authorization_servers: Vec<String>,
    pub(crate) scopes_supported: Vec<String>,
    /// `scheme://authority` of the resource.
    origin: String,
    /// The metadata path, with the resource path inserted (RFC 9728 §3.1).
    path: String,
}

impl ResourceMetadata {
    /// Metadata for `resource`, an absolute http(s) URI without query or fragment.
    pub(crate) fn new(resource: &str) -> Option<Self> {
        crate::proof::htu::normalize_htu(resource)?;
        if resource.contains(['?', '#']) {
            return None;
        }
        let after_scheme = resource.find("://")? + 3;
        let path_start = resource.get(after_scheme..)?.find('/').map_or(resource.len(), |i| after_scheme + i);
        let (origin, resource_path) = resource.split_at(path_start);
        // RFC 9728 §3.1: insert the well-known segment between host and path; a bare "/" adds nothing.
        let path = match resource_path.trim_end_matches('/') {
            "" => WELL_KNOWN.to_owned(),
            trimmed => format!("{WELL_KNOWN}{trimmed}"),
        };
        Some(Self {
            resource: resource.to_owned(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            origin: origin.to_owned(),
            path,
        })
    }

    /// The scheme and authority of the resource.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The path the document is served at.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The absolute URL of the document: the `resource_metadata` challenge parameter.
    pub(crate) fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }

    /// The JSON document (RFC 9728 §2, RFC 9449 §5.1 `dpop_*` members).
    pub(crate) fn document(&self, algorithms: AlgorithmSet, bearer_allowed: bool) -> Value {
        let mut document = json!({
            "resource": self.resource,
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": algorithms.iter().map(|a| a.name()).collect::<Vec<_>>(),
            "dpop_bound_access_tokens_required": !bearer_allowed,
        });
        if let Some(object) = document.as_object_mut() {
            if !self.authorization_servers.is_empty() {
                object.insert("authorization_servers".into(), json!(self.authorization_servers));
            }
            if !self.scopes_supported.is_empty() {
                object.insert("scopes_supported".into(), json!(self.scopes_supported));
            }
        }
        document
    }
}
