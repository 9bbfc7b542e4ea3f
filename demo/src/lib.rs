//! Demo gRPC backends (users, orders, catalog) used to exercise the Portico gateway.
//!
//! Each backend is a real tonic server with gRPC health, server reflection (v1 and v1alpha,
//! serving the raw descriptor set so `google.api.http` options survive) and [`Knobs`] to inject
//! latency and failures from tests. Start one with [`spawn`], all three with [`spawn_all`].

pub mod catalog;
pub mod chat;
pub mod cli;
pub mod data;
pub mod knobs;
pub mod orders;
mod rpc;
pub mod server;
pub mod users;
pub mod users_v2;

pub use knobs::Knobs;
pub use server::{
    DemoCluster, RunningService, ServeError, serve, serve_tls, spawn, spawn_all, spawn_tls,
};

/// Code generated from `descriptors/proto/demo/v1/*.proto` (messages, tonic clients and servers).
#[allow(
    missing_docs,
    deprecated,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/demo.v1.rs"));
}

/// `google.api.HttpBody` (`gateway/proto/google/api/httpbody.proto`): a raw HTTP body and its
/// content type, which the gateway's REST door sends and answers as they are, not as JSON.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpBody {
    /// The HTTP Content-Type header value of the body.
    #[prost(string, tag = "1")]
    pub content_type: String,
    /// The body's bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    /// Application-specific metadata (ignored by the gateway).
    #[prost(message, repeated, tag = "3")]
    pub extensions: Vec<prost_types::Any>,
}

/// Code generated from `descriptors/versions/demo/v2/users.proto` (version 2 of the user
/// service, served by [`users_v2`]).
#[allow(
    missing_docs,
    deprecated,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod pb_v2 {
    include!(concat!(env!("OUT_DIR"), "/demo.v2.rs"));
}

/// The encoded `FileDescriptorSet` of the demo protos: imports included (google/api/*,
/// google/protobuf/*), source info included, custom options kept. Byte-identical to the
/// committed `descriptors/demo.binpb`.
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/demo_descriptor_set.binpb"));

/// One of the three demo backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoService {
    /// `demo.v1.UserService`.
    Users,
    /// `demo.v1.OrderService`.
    Orders,
    /// `demo.v1.CatalogService`.
    Catalog,
}

impl DemoService {
    /// All three, in the order users, orders, catalog.
    pub const ALL: [DemoService; 3] = [Self::Users, Self::Orders, Self::Catalog];

    /// The fully-qualified gRPC service name, e.g. `"demo.v1.UserService"`.
    pub fn grpc_name(&self) -> &'static str {
        match self {
            Self::Users => "demo.v1.UserService",
            Self::Orders => "demo.v1.OrderService",
            Self::Catalog => "demo.v1.CatalogService",
        }
    }

    /// The short name used on the command line: `"users"`, `"orders"` or `"catalog"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Orders => "orders",
            Self::Catalog => "catalog",
        }
    }

    /// The port `demo-services` listens on by default: 50051, 50052, 50053.
    pub fn default_port(&self) -> u16 {
        match self {
            Self::Users => 50051,
            Self::Orders => 50052,
            Self::Catalog => 50053,
        }
    }
}

impl std::fmt::Display for DemoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`DemoService`] from a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown demo service {0:?} (expected users, orders or catalog)")]
pub struct UnknownService(pub String);

impl std::str::FromStr for DemoService {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|svc| svc.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownService(s.to_owned()))
    }
}

/// The cross-service GraphQL links that join the demo services, as the YAML list that goes
/// under a gateway config's `graphql.links` (indented for it): `User.orders`, `Order.user`
/// and the batched `OrderItem.product`. The example BFF configs carry the same list.
pub const GRAPHQL_LINKS_YAML: &str = r#"
    - on: demo.v1.User
      field: orders
      call: demo.v1.OrderService.ListOrdersByUser
      args: { user_id: id }
      result: orders
    - on: demo.v1.Order
      field: user
      call: demo.v1.UserService.GetUser
      args: { id: user_id }
    - on: demo.v1.OrderItem
      field: product
      call: demo.v1.CatalogService.GetProduct
      args: { id: product_id }
      batch:
        call: demo.v1.CatalogService.BatchGetProducts
        keys: ids
        results: products
        key: id
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn service_names_round_trip() {
        for svc in DemoService::ALL {
            assert_eq!(svc.to_string().parse::<DemoService>().unwrap(), svc);
        }
        assert_eq!(DemoService::Users.grpc_name(), "demo.v1.UserService");
        assert!("shipping".parse::<DemoService>().is_err());
    }
}
