//! The OrderService implementation: seeded orders, a simulated change feed and a bulk import.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::data;
use crate::knobs::Knobs;
use crate::pb::order_service_server::OrderService;
use crate::pb::{
    GetOrderRequest, ImportOrdersResponse, ListOrdersByUserRequest, ListOrdersByUserResponse,
    Order, OrderEvent, OrderStatus, WatchOrdersRequest,
};
use crate::rpc;

/// Events WatchOrders sends when `max_events` is 0.
const DEFAULT_MAX_EVENTS: i32 = 3;
/// Pause between WatchOrders events when `interval` is unset.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);

/// `demo.v1.OrderService` over the seeded orders (read-only; imports are only summarised).
#[derive(Clone)]
pub struct OrdersApi {
    knobs: Knobs,
    orders: Arc<BTreeMap<String, Order>>,
}

impl std::fmt::Debug for OrdersApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrdersApi").finish_non_exhaustive()
    }
}

/// The stream type of WatchOrders.
pub type OrderEventStream = Pin<Box<dyn Stream<Item = Result<OrderEvent, Status>> + Send>>;

impl OrdersApi {
    /// A service with the seed orders (3 per user 1..=25), driven by `knobs`.
    pub fn new(knobs: Knobs) -> Self {
        Self {
            knobs,
            orders: Arc::new(data::seed_orders()),
        }
    }

    /// The orders of a user, newest first.
    fn orders_of(&self, user_id: i64) -> Vec<Order> {
        let mut orders: Vec<Order> = self
            .orders
            .values()
            .filter(|o| o.user_id == user_id)
            .cloned()
            .collect();
        orders.sort_by_key(|o| {
            std::cmp::Reverse(
                o.placed_at
                    .map(|t| (t.seconds, t.nanos))
                    .unwrap_or_default(),
            )
        });
        orders
    }
}

fn order_not_found(id: &str) -> Status {
    rpc::not_found(
        "demo.v1.Order",
        &format!("orders/{id}"),
        format!("order {id:?} not found"),
    )
}

/// The status an order reaches after `steps` advances (pending -> paid -> shipped -> delivered;
/// delivered and cancelled orders stay put).
fn advance(status: i32, steps: usize) -> i32 {
    let mut status = OrderStatus::try_from(status).unwrap_or(OrderStatus::Pending);
    for _ in 0..steps {
        status = match status {
            OrderStatus::Unspecified | OrderStatus::Pending => OrderStatus::Paid,
            OrderStatus::Paid => OrderStatus::Shipped,
            OrderStatus::Shipped | OrderStatus::Delivered => OrderStatus::Delivered,
            OrderStatus::Cancelled => OrderStatus::Cancelled,
        };
    }
    status as i32
}

/// Event number `sequence` (1-based) of a user's feed over `orders` (which must not be empty):
/// the orders take turns, each turn advancing the order's status one step.
fn event(orders: &[Order], sequence: usize) -> OrderEvent {
    let index = (sequence - 1) % orders.len();
    let round = (sequence - 1) / orders.len();
    let mut order = orders[index].clone();
    order.status = advance(order.status, round + 1);
    let base = order.placed_at.map_or(0, |t| t.seconds);
    let offset = i64::try_from(sequence)
        .unwrap_or(i64::MAX)
        .saturating_mul(60);
    OrderEvent {
        sequence: i64::try_from(sequence).unwrap_or(i64::MAX),
        order: Some(order),
        at: Some(data::timestamp(base.saturating_add(offset))),
    }
}

#[tonic::async_trait]
impl OrderService for OrdersApi {
    async fn list_orders_by_user(
        &self,
        request: Request<ListOrdersByUserRequest>,
    ) -> Result<Response<ListOrdersByUserResponse>, Status> {
        self.knobs
            .on_call("ListOrdersByUser", request.metadata())
            .await?;
        let req = request.into_inner();
        let page_size = rpc::page_size(req.page_size, "page_size")?;
        let orders: Vec<Order> = self
            .orders_of(req.user_id)
            .into_iter()
            .filter(|o| req.status == OrderStatus::Unspecified as i32 || o.status == req.status)
            .collect();
        let (orders, next_page_token) = rpc::paginate(orders, page_size, &req.page_token)?;
        Ok(Response::new(ListOrdersByUserResponse {
            orders,
            next_page_token,
        }))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        self.knobs.on_call("GetOrder", request.metadata()).await?;
        let req = request.into_inner();
        match self.orders.get(&req.id) {
            Some(order) if req.user_id == 0 || order.user_id == req.user_id => {
                Ok(Response::new(order.clone()))
            }
            _ => Err(order_not_found(&req.id)),
        }
    }

    type WatchOrdersStream = OrderEventStream;

    async fn watch_orders(
        &self,
        request: Request<WatchOrdersRequest>,
    ) -> Result<Response<Self::WatchOrdersStream>, Status> {
        self.knobs
            .on_call("WatchOrders", request.metadata())
            .await?;
        let req = request.into_inner();
        let max_events = match req.max_events {
            n if n < 0 => return Err(rpc::invalid_field("max_events", "must not be negative")),
            0 => DEFAULT_MAX_EVENTS,
            n => n,
        };
        let max_events = usize::try_from(max_events).unwrap_or(0);
        let interval = match req.interval {
            None => DEFAULT_INTERVAL,
            Some(d) => Duration::try_from(d)
                .map_err(|_| rpc::invalid_field("interval", "must not be negative"))?,
        };
        let orders = self.orders_of(req.user_id);
        if orders.is_empty() {
            return Err(rpc::not_found(
                "demo.v1.User",
                &format!("users/{}", req.user_id),
                format!("user {} has no orders to watch", req.user_id),
            ));
        }
        let fail_after = self
            .knobs
            .stream_failure_after()
            .and_then(|n| usize::try_from(n).ok());
        let failure = self.knobs.injected_status("WatchOrders");
        let stream = futures::stream::iter(1..=max_events)
            .then(move |sequence| {
                let orders = orders.clone();
                let failure = failure.clone();
                async move {
                    if sequence > 1 && !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                    if fail_after.is_some_and(|n| sequence > n) {
                        Err(failure)
                    } else {
                        Ok(event(&orders, sequence))
                    }
                }
            })
            // End the stream after the first error.
            .scan(false, |failed, item| {
                let emit = !*failed;
                *failed = item.is_err();
                futures::future::ready(emit.then_some(item))
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn import_orders(
        &self,
        request: Request<Streaming<Order>>,
    ) -> Result<Response<ImportOrdersResponse>, Status> {
        self.knobs
            .on_call("ImportOrders", request.metadata())
            .await?;
        let mut stream = request.into_inner();
        let mut summary = ImportOrdersResponse::default();
        while let Some(order) = stream.message().await? {
            self.knobs.count_received("ImportOrders");
            if let Some(item) = order.items.iter().position(|i| i.quantity <= 0) {
                let index = summary.imported;
                return Err(rpc::invalid_field(
                    &format!("orders[{index}].items[{item}].quantity"),
                    "must be positive",
                ));
            }
            summary.imported += 1;
            let id = if order.id.is_empty() {
                format!("o-imp-{}", summary.imported)
            } else {
                order.id
            };
            summary.order_ids.push(id);
            summary.total_units += order.total.map_or(0, |t| t.units);
        }
        Ok(Response::new(summary))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tonic::Code;

    fn api() -> OrdersApi {
        OrdersApi::new(Knobs::new())
    }

    #[tokio::test]
    async fn lists_newest_first_and_pages() {
        let api = api();
        let list = |user_id, page_size, token: &str, status| {
            api.list_orders_by_user(Request::new(ListOrdersByUserRequest {
                user_id,
                page_size,
                page_token: token.to_owned(),
                status,
            }))
        };
        let all = list(1, 0, "", 0).await.unwrap().into_inner();
        let ids: Vec<_> = all.orders.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["o-1003", "o-1002", "o-1001"]);
        let first = list(1, 2, "", 0).await.unwrap().into_inner();
        assert_eq!(first.next_page_token, "2");
        let rest = list(1, 2, "2", 0).await.unwrap().into_inner();
        assert_eq!(rest.orders[0].id, "o-1001");
        assert!(rest.next_page_token.is_empty());
        assert!(
            list(999, 0, "", 0)
                .await
                .unwrap()
                .into_inner()
                .orders
                .is_empty()
        );
        let status = all.orders[0].status;
        let filtered = list(1, 0, "", status).await.unwrap().into_inner();
        assert!(filtered.orders.iter().all(|o| o.status == status));
        assert!(!filtered.orders.is_empty());
    }

    #[tokio::test]
    async fn get_order_checks_owner() {
        let api = api();
        let get = |id: &str, user_id| {
            api.get_order(Request::new(GetOrderRequest {
                id: id.to_owned(),
                user_id,
            }))
        };
        assert_eq!(get("o-2001", 0).await.unwrap().into_inner().user_id, 2);
        assert_eq!(get("o-2001", 2).await.unwrap().into_inner().id, "o-2001");
        assert_eq!(get("o-2001", 3).await.unwrap_err().code(), Code::NotFound);
        assert_eq!(get("o-9", 0).await.unwrap_err().code(), Code::NotFound);
    }

    #[test]
    fn events_cycle_and_advance() {
        let orders = api().orders_of(1);
        let e1 = event(&orders, 1);
        let e4 = event(&orders, 4);
        assert_eq!(e1.order.as_ref().unwrap().id, e4.order.as_ref().unwrap().id);
        assert_eq!(
            advance(OrderStatus::Pending as i32, 2),
            OrderStatus::Shipped as i32
        );
        assert_eq!(
            advance(OrderStatus::Cancelled as i32, 3),
            OrderStatus::Cancelled as i32
        );
    }
}
