//! Deterministic seed data: 25 users, 3 orders per user, 20 catalog products.
//!
//! Everything here is a pure function of the ids, so every start of a demo server (and every
//! test) sees exactly the same data.

use std::collections::{BTreeMap, HashMap};

use prost_types::{Duration, Struct, Timestamp, Value, value::Kind};

use crate::pb::{
    Address, Card, Money, Order, OrderItem, OrderStatus, Product, ProductStatus, User, UserRole,
    order, user,
};

/// Number of seeded users (ids `1..=USER_COUNT`).
pub const USER_COUNT: i64 = 25;
/// Number of seeded orders per user.
pub const ORDERS_PER_USER: i64 = 3;
/// Number of seeded products (ids `p-1..=p-PRODUCT_COUNT`).
pub const PRODUCT_COUNT: u32 = 20;

/// 2024-01-02T03:04:05Z, the creation time of user 1.
const USER_EPOCH_SECONDS: i64 = 1_704_164_645;
/// 2024-03-01T10:00:00Z, the base of the orders' placed_at times.
const ORDER_EPOCH_SECONDS: i64 = 1_709_287_200;
const DAY_SECONDS: i64 = 86_400;
const HOUR_SECONDS: i64 = 3_600;
const NANOS_PER_UNIT: i64 = 1_000_000_000;

/// The names of the seeded users; user `id` is `NAMES[id - 1]`.
const NAMES: [&str; USER_COUNT as usize] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Dennis Ritchie",
    "Frances Allen",
    "John McCarthy",
    "Radia Perlman",
    "Tim Berners-Lee",
    "Katherine Johnson",
    "Claude Shannon",
    "Hedy Lamarr",
    "Niklaus Wirth",
    "Leslie Lamport",
    "Shafi Goldwasser",
    "Tony Hoare",
    "Adele Goldberg",
    "Robin Milner",
    "Sophie Wilson",
    "Bjarne Stroustrup",
    "Karen Jones",
];

/// The cities users live in, with their country codes; user `id` lives in `CITIES[(id-1) % 5]`.
const CITIES: [(&str, &str); 5] = [
    ("London", "GB"),
    ("Paris", "FR"),
    ("Berlin", "DE"),
    ("Lisbon", "PT"),
    ("Oslo", "NO"),
];

/// A timestamp `seconds` after the Unix epoch.
pub fn timestamp(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

/// An amount of euros.
pub fn eur(units: i64, nanos: i32) -> Money {
    Money {
        currency_code: "EUR".to_owned(),
        units,
        nanos,
    }
}

/// The amount in nano units (for sums and comparisons).
pub fn money_nanos(money: &Money) -> i128 {
    i128::from(money.units) * i128::from(NANOS_PER_UNIT) + i128::from(money.nanos)
}

/// Builds EUR money from nano units, saturating at the `i64` range.
fn eur_from_nanos(total: i128) -> Money {
    let per_unit = i128::from(NANOS_PER_UNIT);
    let units = i64::try_from(total / per_unit).unwrap_or(i64::MAX);
    let nanos = i32::try_from(total % per_unit).unwrap_or(0);
    eur(units, nanos)
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

fn number_value(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

/// The first name, lowercased (used for e-mails, nicknames, handles).
fn first_name(name: &str) -> String {
    name.split(' ').next().unwrap_or(name).to_lowercase()
}

/// Old-style login: first initial plus last name, lowercased, letters only.
fn legacy_login(name: &str) -> String {
    let mut parts = name.split(' ');
    let first = parts.next().unwrap_or_default();
    let last = parts.next_back().unwrap_or_default();
    first
        .chars()
        .take(1)
        .chain(last.chars())
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_lowercase()
}

/// A small fake PNG: the PNG signature followed by one byte of `seed`.
fn tiny_png(seed: u8) -> Vec<u8> {
    vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, seed]
}

/// The seeded user with this id (1..=25), or `None`.
///
/// User 1 is Ada Lovelace (admin in London, with every optional field set, loyalty points beyond
/// 2^53); user 2 is Grace Hopper. The others follow the pattern: role ADMIN when id % 7 == 0,
/// SUPPORT when id % 5 == 0, else CUSTOMER; city `CITIES[(id-1) % 5]`; a phone when the id is
/// odd, a chat handle when even; no nickname when id % 3 == 0; tag "vip" when id % 3 == 0 and
/// "newsletter" when the id is even; unverified when id % 4 == 0; created one day apart.
#[allow(deprecated)] // legacy_username is deprecated in the proto, but still seeded.
pub fn seed_user(id: i64) -> Option<User> {
    let index = usize::try_from(id.checked_sub(1)?).ok()?;
    let name = *NAMES.get(index)?;
    let (city, country_code) = CITIES[index % CITIES.len()];
    let first = first_name(name);
    let seed = u8::try_from(id).unwrap_or(u8::MAX);
    if id == 1 {
        return Some(User {
            id,
            display_name: name.to_owned(),
            email: "ada@example.com".to_owned(),
            role: UserRole::Admin as i32,
            created_at: Some(timestamp(USER_EPOCH_SECONDS)),
            address: Some(Address {
                street: "12 St James's Square".to_owned(),
                city: city.to_owned(),
                country_code: country_code.to_owned(),
            }),
            tags: vec!["vip".to_owned(), "early-adopter".to_owned()],
            attributes: HashMap::from([("team".to_owned(), "math".to_owned())]),
            nickname: Some("ada".to_owned()),
            preferences: Some(Struct {
                fields: BTreeMap::from([
                    ("theme".to_owned(), string_value("dark")),
                    ("fontSize".to_owned(), number_value(14.0)),
                ]),
            }),
            avatar: tiny_png(seed),
            loyalty_points: 18_446_744_073_709_551_000,
            verified: true,
            rating: 4.5,
            legacy_username: "alovelace".to_owned(),
            contact: Some(user::Contact::Phone("+441234567890".to_owned())),
        });
    }
    let role = if id % 7 == 0 {
        UserRole::Admin
    } else if id % 5 == 0 {
        UserRole::Support
    } else {
        UserRole::Customer
    };
    let mut tags = Vec::new();
    if id % 3 == 0 {
        tags.push("vip".to_owned());
    }
    if id % 2 == 0 {
        tags.push("newsletter".to_owned());
    }
    let contact = if id % 2 == 1 {
        user::Contact::Phone(format!("+4412345{id:05}"))
    } else {
        user::Contact::ChatHandle(format!("@{first}"))
    };
    Some(User {
        id,
        display_name: name.to_owned(),
        email: format!("{first}@example.com"),
        role: role as i32,
        created_at: Some(timestamp(USER_EPOCH_SECONDS + (id - 1) * DAY_SECONDS)),
        address: Some(Address {
            street: format!("{id} Main Street"),
            city: city.to_owned(),
            country_code: country_code.to_owned(),
        }),
        tags,
        attributes: HashMap::from([("team".to_owned(), format!("team-{}", id % 4))]),
        nickname: (id % 3 != 0).then(|| first.clone()),
        preferences: Some(Struct {
            fields: BTreeMap::from([(
                "theme".to_owned(),
                string_value(if id % 2 == 0 { "light" } else { "dark" }),
            )]),
        }),
        avatar: tiny_png(seed),
        loyalty_points: u64::from(seed) * 100,
        verified: id % 4 != 0,
        rating: f64::from(u8::try_from((id * 7) % 11).unwrap_or(0)) / 2.0,
        legacy_username: legacy_login(name),
        contact: Some(contact),
    })
}

/// All seeded users, by id.
pub fn seed_users() -> BTreeMap<i64, User> {
    (1..=USER_COUNT)
        .filter_map(|id| seed_user(id).map(|u| (id, u)))
        .collect()
}

/// The title, categories and colour of each product; product `p-i` is `PRODUCTS[i - 1]`.
const PRODUCTS: [(&str, &[&str], &str); PRODUCT_COUNT as usize] = [
    ("Espresso Cup", &["kitchen"], "white"),
    ("Garden Hose", &["garden"], "green"),
    ("The Rust Programming Language", &["books"], "orange"),
    ("Chef Knife", &["kitchen"], "steel"),
    ("Watering Can", &["garden"], "green"),
    ("Pasta Cookbook", &["books", "kitchen"], "red"),
    ("Tea Kettle", &["kitchen"], "black"),
    ("Pruning Shears", &["garden"], "red"),
    ("Science Fiction Novel", &["books"], "blue"),
    ("Cutting Board", &["kitchen"], "brown"),
    ("Flower Seeds", &["garden"], "yellow"),
    ("Travel Mug", &["kitchen"], "blue"),
    ("Poetry Anthology", &["books"], "white"),
    ("Plant Pot", &["garden", "kitchen"], "terracotta"),
    ("Cast Iron Pan", &["kitchen"], "black"),
    ("Garden Gloves", &["garden"], "green"),
    ("History of Computing", &["books"], "grey"),
    ("French Press", &["kitchen"], "steel"),
    ("Bird Feeder", &["garden"], "brown"),
    ("Gardening Handbook", &["books", "garden"], "green"),
];

/// The id of product number `i` (1-based): `"p-{i}"`.
pub fn product_id(i: u32) -> String {
    format!("p-{i}")
}

/// The price of product number `i`: `5 + (7 * i) % 40` euros and `(i % 4) * 25` cents.
fn product_price(i: u32) -> Money {
    let units = 5 + i64::from((7 * i) % 40);
    let nanos = i32::try_from((i % 4) * 250_000_000).unwrap_or(0);
    eur(units, nanos)
}

/// The seeded product with this id (`"p-1"` to `"p-20"`), or `None`.
///
/// Stock is `(13 * i) % 50` (OUT_OF_STOCK when 0), p-20 is DISCONTINUED, every fourth product
/// has no review score, shipping takes 1 to 3 days, and SKUs are above 2^63 (fixed64).
pub fn seed_product(id: &str) -> Option<Product> {
    let i: u32 = id.strip_prefix("p-")?.parse().ok()?;
    let (title, categories, color) = *PRODUCTS.get(usize::try_from(i.checked_sub(1)?).ok()?)?;
    if product_id(i) != id {
        return None; // e.g. "p-01"
    }
    let stock = i32::try_from((13 * i) % 50).unwrap_or(0);
    let status = if i == PRODUCT_COUNT {
        ProductStatus::Discontinued
    } else if stock == 0 {
        ProductStatus::OutOfStock
    } else {
        ProductStatus::Active
    };
    let main_category = categories.first().copied().unwrap_or("misc");
    Some(Product {
        id: id.to_owned(),
        name: format!("categories/{main_category}/products/{id}"),
        title: title.to_owned(),
        description: format!(
            "A {color} {} from the {main_category} range, item {i}.",
            title.to_lowercase()
        ),
        price: Some(product_price(i)),
        stock,
        status: status as i32,
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        attributes: HashMap::from([
            ("color".to_owned(), color.to_owned()),
            (
                "origin".to_owned(),
                CITIES[i as usize % CITIES.len()].1.to_owned(),
            ),
        ]),
        shipping_time: Some(Duration {
            seconds: i64::from(1 + i % 3) * DAY_SECONDS,
            nanos: 0,
        }),
        review_score: (!i.is_multiple_of(4)).then(|| 3.0 + f64::from(i % 5) * 0.4),
        sku: 10_000_000_000_000_000_000 + u64::from(i),
        thumbnail: tiny_png(u8::try_from(i).unwrap_or(0)),
    })
}

/// All seeded products, in id order (p-1 to p-20).
pub fn seed_products() -> Vec<Product> {
    (1..=PRODUCT_COUNT)
        .filter_map(|i| seed_product(&product_id(i)))
        .collect()
}

/// The id of order `n` (1..=3) of user `user_id`: `"o-{user_id * 1000 + n}"`, so user 1 has
/// o-1001, o-1002, o-1003 and user 25 has o-25001, o-25002, o-25003.
pub fn order_id(user_id: i64, n: i64) -> String {
    format!("o-{}", user_id * 1000 + n)
}

/// The seeded order `n` (1..=3) of user `user_id` (1..=25), or `None`.
///
/// Order n has n items (item k refers to product `p-{((3 * user + n + k) % 20) + 1}`, quantity
/// k), the total is the sum of the items, the status cycles through all five values, order n
/// was placed `3 * user + n` hours after 2024-03-01T10:00:00Z, odd orders are paid by visa card,
/// even ones with a voucher, and order 1 carries the internal note "fragile".
pub fn seed_order(user_id: i64, n: i64) -> Option<Order> {
    if !(1..=USER_COUNT).contains(&user_id) || !(1..=ORDERS_PER_USER).contains(&n) {
        return None;
    }
    let mut items = Vec::new();
    for k in 1..=n {
        let index = u32::try_from((3 * user_id + n + k) % i64::from(PRODUCT_COUNT)).ok()? + 1;
        let quantity = i32::try_from(k).ok()?;
        items.push(OrderItem {
            product_id: product_id(index),
            quantity,
            unit_price: Some(product_price(index)),
        });
    }
    let total = order_total(&items);
    let statuses = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];
    let status = statuses[usize::try_from((user_id + n) % 5).ok()?];
    let payment = if n % 2 == 1 {
        order::Payment::Card(Card {
            brand: "visa".to_owned(),
            card_number: "4111111111111111".to_owned(),
            expiry_month: 12,
            expiry_year: 2030,
        })
    } else {
        order::Payment::VoucherCode(format!("SPRING-{user_id}-{n}"))
    };
    let units: i32 = items.iter().map(|i| i.quantity).sum();
    Some(Order {
        id: order_id(user_id, n),
        user_id,
        status: status as i32,
        items,
        total: Some(total),
        placed_at: Some(timestamp(
            ORDER_EPOCH_SECONDS + (3 * user_id + n) * HOUR_SECONDS,
        )),
        delivery_estimate: Some(Duration {
            seconds: 72 * HOUR_SECONDS,
            nanos: 0,
        }),
        metadata: HashMap::from([
            (
                "channel".to_owned(),
                if n == 2 { "mobile" } else { "web" }.to_owned(),
            ),
            ("gift".to_owned(), (n == 3).to_string()),
        ]),
        payment: Some(payment),
        internal_notes: if n == 1 { "fragile" } else { "" }.to_owned(),
        #[allow(clippy::cast_precision_loss)] // tiny integers
        weight_kg: 0.25 * units as f32,
    })
}

/// The sum of `quantity * unit_price` over the items, in EUR.
pub fn order_total(items: &[OrderItem]) -> Money {
    let total: i128 = items
        .iter()
        .map(|i| i128::from(i.quantity) * i.unit_price.as_ref().map_or(0, money_nanos))
        .sum();
    eur_from_nanos(total)
}

/// All seeded orders, by id.
pub fn seed_orders() -> BTreeMap<String, Order> {
    (1..=USER_COUNT)
        .flat_map(|u| (1..=ORDERS_PER_USER).filter_map(move |n| seed_order(u, n)))
        .map(|o| (o.id.clone(), o))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn ada_is_seeded_as_specified() {
        let ada = seed_user(1).unwrap();
        assert_eq!(ada.display_name, "Ada Lovelace");
        assert_eq!(ada.loyalty_points, 18_446_744_073_709_551_000);
        assert_eq!(ada.created_at.unwrap().seconds, 1_704_164_645);
        assert_eq!(ada.legacy_username, "alovelace");
        assert_eq!(seed_user(2).unwrap().display_name, "Grace Hopper");
        assert!(seed_user(0).is_none());
        assert!(seed_user(26).is_none());
        assert_eq!(seed_users().len(), 25);
    }

    #[test]
    fn seed_data_is_deterministic_and_varied() {
        assert_eq!(seed_users(), seed_users());
        assert_eq!(seed_orders(), seed_orders());
        let users = seed_users();
        assert!(users.values().any(|u| u.nickname.is_none()));
        assert!(
            users
                .values()
                .any(|u| matches!(u.contact, Some(user::Contact::ChatHandle(_))))
        );
        assert!(users.values().any(|u| u.role == UserRole::Support as i32));
        assert!(users.values().any(|u| u.role == UserRole::Customer as i32));
    }

    #[test]
    fn orders_are_consistent_with_catalog_prices() {
        let orders = seed_orders();
        assert_eq!(orders.len(), 75);
        assert!(orders.contains_key("o-1001") && orders.contains_key("o-25003"));
        for order in orders.values() {
            for item in &order.items {
                let product = seed_product(&item.product_id).unwrap();
                assert_eq!(product.price, item.unit_price);
            }
            assert_eq!(order.total, Some(order_total(&order.items)));
        }
    }

    #[test]
    fn products_are_seeded() {
        let products = seed_products();
        assert_eq!(products.len(), 20);
        assert_eq!(products[0].title, "Espresso Cup");
        assert_eq!(products[0].name, "categories/kitchen/products/p-1");
        assert!(seed_product("p-0").is_none());
        assert!(seed_product("p-01").is_none());
        assert!(seed_product("p-21").is_none());
        assert!(products.iter().any(|p| p.review_score.is_none()));
    }
}
