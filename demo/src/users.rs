//! The UserService implementation: an in-memory user store seeded from `data`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tonic::{Request, Response, Status};
use tonic_types::FieldViolation;

use crate::data;
use crate::knobs::Knobs;
use crate::pb::user_service_server::UserService;
use crate::pb::{
    Address, CreateUserRequest, GetUserRequest, ListUsersRequest, ListUsersResponse,
    UpdateUserRequest, User, UserRole, user,
};
use crate::rpc;

/// The users of one server process: seeded on start, mutated by CreateUser/UpdateUser.
struct Store {
    users: BTreeMap<i64, User>,
    next_id: i64,
}

/// `demo.v1.UserService` backed by an in-memory store.
#[derive(Clone)]
pub struct UsersApi {
    knobs: Knobs,
    store: Arc<Mutex<Store>>,
}

impl UsersApi {
    /// A service with the seed users (ids 1..=25), driven by `knobs`.
    pub fn new(knobs: Knobs) -> Self {
        Self {
            knobs,
            store: Arc::new(Mutex::new(Store {
                users: data::seed_users(),
                next_id: data::USER_COUNT + 1,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for UsersApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsersApi").finish_non_exhaustive()
    }
}

fn user_not_found(id: i64) -> Status {
    rpc::not_found(
        "demo.v1.User",
        &format!("users/{id}"),
        format!("user {id} not found"),
    )
}

/// Checks the fields a stored user must have; `prefix` is e.g. `"user."`.
fn validate_user(user: &User, prefix: &str) -> Result<(), Status> {
    let mut violations = Vec::new();
    if user.display_name.trim().is_empty() {
        violations.push(FieldViolation::new(
            format!("{prefix}display_name"),
            "must not be empty",
        ));
    }
    if !user.email.contains('@') {
        violations.push(FieldViolation::new(
            format!("{prefix}email"),
            "must contain an '@'",
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(rpc::bad_request("invalid user", violations))
    }
}

fn matches_filter(user: &User, filter: Option<&crate::pb::UserFilter>) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    let role_ok = filter.role == UserRole::Unspecified as i32 || filter.role == user.role;
    let tags_ok = filter.tags.iter().all(|t| user.tags.contains(t));
    let city_ok = filter.city.is_empty()
        || user
            .address
            .as_ref()
            .is_some_and(|a| a.city.eq_ignore_ascii_case(&filter.city));
    role_ok && tags_ok && city_ok
}

/// Copies the field named by one update_mask `path` from `src` into `dst`.
#[allow(deprecated)] // legacy_username is deprecated in the proto but still updatable.
fn apply_path(dst: &mut User, src: &User, path: &str) -> Result<(), Status> {
    let src_address = src.address.clone().unwrap_or_default();
    match path {
        "display_name" => dst.display_name.clone_from(&src.display_name),
        "email" => dst.email.clone_from(&src.email),
        "role" => dst.role = src.role,
        "address" => dst.address.clone_from(&src.address),
        "address.street" | "address.city" | "address.country_code" => {
            let address = dst.address.get_or_insert_with(Address::default);
            match path {
                "address.street" => address.street = src_address.street,
                "address.city" => address.city = src_address.city,
                _ => address.country_code = src_address.country_code,
            }
        }
        "tags" => dst.tags.clone_from(&src.tags),
        "attributes" => dst.attributes.clone_from(&src.attributes),
        "nickname" => dst.nickname.clone_from(&src.nickname),
        "preferences" => dst.preferences.clone_from(&src.preferences),
        "avatar" => dst.avatar.clone_from(&src.avatar),
        "contact" => dst.contact.clone_from(&src.contact),
        "phone" => match (&src.contact, &dst.contact) {
            (Some(user::Contact::Phone(p)), _) => {
                dst.contact = Some(user::Contact::Phone(p.clone()));
            }
            (_, Some(user::Contact::Phone(_))) => dst.contact = None,
            _ => {}
        },
        "chat_handle" => match (&src.contact, &dst.contact) {
            (Some(user::Contact::ChatHandle(h)), _) => {
                dst.contact = Some(user::Contact::ChatHandle(h.clone()));
            }
            (_, Some(user::Contact::ChatHandle(_))) => dst.contact = None,
            _ => {}
        },
        "loyalty_points" => dst.loyalty_points = src.loyalty_points,
        "verified" => dst.verified = src.verified,
        "rating" => dst.rating = src.rating,
        "legacy_username" => dst.legacy_username.clone_from(&src.legacy_username),
        "id" | "created_at" => {
            return Err(rpc::invalid_field(
                "update_mask",
                format!("field {path:?} cannot be updated"),
            ));
        }
        other => {
            return Err(rpc::invalid_field(
                "update_mask",
                format!("unknown field path {other:?}"),
            ));
        }
    }
    Ok(())
}

/// Applies an update: with an empty mask every mutable field is replaced (id and created_at stay).
fn apply_update(current: &User, update: &User, paths: &[String]) -> Result<User, Status> {
    let mut result = current.clone();
    if paths.is_empty() {
        result = User {
            id: current.id,
            created_at: current.created_at,
            ..update.clone()
        };
    } else {
        for path in paths {
            apply_path(&mut result, update, path)?;
        }
    }
    Ok(result)
}

#[tonic::async_trait]
impl UserService for UsersApi {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        self.knobs.on_call("GetUser", request.metadata()).await?;
        let id = request.get_ref().id;
        if id <= 0 {
            return Err(rpc::invalid_field("id", "must be a positive user id"));
        }
        let user = self.lock().users.get(&id).cloned();
        let mut resp = user
            .map(|u| self.knobs.reply(u))
            .ok_or_else(|| user_not_found(id))?;
        // Response metadata, so that gateways can show how they map it to headers.
        resp.metadata_mut().insert(
            "x-demo-served-by",
            tonic::metadata::MetadataValue::from_static("users"),
        );
        Ok(resp)
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        self.knobs.on_call("ListUsers", request.metadata()).await?;
        let req = request.into_inner();
        let page_size = rpc::page_size(req.page_size, "page_size")?;
        let matching: Vec<User> = self
            .lock()
            .users
            .values()
            .filter(|u| matches_filter(u, req.filter.as_ref()))
            .cloned()
            .collect();
        let total_size = i32::try_from(matching.len()).unwrap_or(i32::MAX);
        let (users, next_page_token) = rpc::paginate(matching, page_size, &req.page_token)?;
        Ok(Response::new(ListUsersResponse {
            users,
            next_page_token,
            total_size,
        }))
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<User>, Status> {
        self.knobs.on_call("CreateUser", request.metadata()).await?;
        let req = request.into_inner();
        let Some(mut user) = req.user else {
            return Err(rpc::invalid_field("user", "is required"));
        };
        validate_user(&user, "user.")?;
        user.created_at = Some(data::now());
        if req.validate_only {
            user.id = 0;
            return Ok(Response::new(user));
        }
        let mut store = self.lock();
        user.id = store.next_id;
        store.next_id += 1;
        store.users.insert(user.id, user.clone());
        Ok(Response::new(user))
    }

    async fn update_user(
        &self,
        request: Request<UpdateUserRequest>,
    ) -> Result<Response<User>, Status> {
        self.knobs.on_call("UpdateUser", request.metadata()).await?;
        let req = request.into_inner();
        let Some(update) = req.user else {
            return Err(rpc::invalid_field("user", "is required"));
        };
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut store = self.lock();
        let current = store
            .users
            .get(&update.id)
            .ok_or_else(|| user_not_found(update.id))?;
        let updated = apply_update(current, &update, &paths)?;
        validate_user(&updated, "user.")?;
        store.users.insert(updated.id, updated.clone());
        drop(store);
        Ok(self.knobs.reply(updated))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use prost_types::FieldMask;
    use tonic::Code;
    use tonic_types::StatusExt;

    fn api() -> UsersApi {
        UsersApi::new(Knobs::new())
    }

    #[tokio::test]
    async fn get_user_errors_carry_details() {
        let api = api();
        let err = api
            .get_user(Request::new(GetUserRequest { id: 42 }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.message(), "user 42 not found");
        let info = err.get_error_details().resource_info().cloned().unwrap();
        assert_eq!(info.resource_type, "demo.v1.User");
        assert_eq!(info.resource_name, "users/42");

        let err = api
            .get_user(Request::new(GetUserRequest { id: 0 }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let details = err.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            "id"
        );
    }

    #[tokio::test]
    async fn list_users_filters_and_pages() {
        let api = api();
        let page = |size, token: &str, filter| {
            api.list_users(Request::new(ListUsersRequest {
                page_size: size,
                page_token: token.to_owned(),
                filter,
            }))
        };
        let first = page(0, "", None).await.unwrap().into_inner();
        assert_eq!(first.users.len(), 10);
        assert_eq!(first.total_size, 25);
        assert_eq!(first.users[0].id, 1);
        let last = page(10, "20", None).await.unwrap().into_inner();
        assert_eq!(last.users.len(), 5);
        assert!(last.next_page_token.is_empty());
        assert_eq!(
            page(0, "bogus", None).await.unwrap_err().code(),
            Code::InvalidArgument
        );
        let err = page(-1, "", None).await.unwrap_err();
        assert_eq!(
            err.get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            "page_size"
        );
        let london_vips = page(
            100,
            "",
            Some(crate::pb::UserFilter {
                role: 0,
                tags: vec!["vip".to_owned()],
                city: "london".to_owned(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(london_vips.users.iter().any(|u| u.id == 1));
        assert!(
            london_vips
                .users
                .iter()
                .all(|u| u.tags.contains(&"vip".to_owned()))
        );
        assert_eq!(london_vips.total_size as usize, london_vips.users.len());
    }

    #[tokio::test]
    async fn create_validates_and_assigns_ids() {
        let api = api();
        let err = api
            .create_user(Request::new(CreateUserRequest {
                user: Some(User::default()),
                validate_only: false,
            }))
            .await
            .unwrap_err();
        let fields: Vec<_> = err
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(fields, ["user.display_name", "user.email"]);

        let new_user = User {
            display_name: "Linus".to_owned(),
            email: "linus@example.com".to_owned(),
            ..User::default()
        };
        let dry = api
            .create_user(Request::new(CreateUserRequest {
                user: Some(new_user.clone()),
                validate_only: true,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(dry.id, 0);
        let created = api
            .create_user(Request::new(CreateUserRequest {
                user: Some(new_user),
                validate_only: false,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.id, 26);
        assert!(created.created_at.is_some());
        let fetched = api
            .get_user(Request::new(GetUserRequest { id: 26 }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fetched, created);
    }

    #[tokio::test]
    async fn update_applies_mask_paths() {
        let api = api();
        let update = |paths: &[&str], user: User| {
            api.update_user(Request::new(UpdateUserRequest {
                user: Some(user),
                update_mask: Some(FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
            }))
        };
        let patch = User {
            id: 1,
            display_name: "Countess Lovelace".to_owned(),
            address: Some(Address {
                city: "Paris".to_owned(),
                ..Address::default()
            }),
            ..User::default()
        };
        let updated = update(&["display_name", "address.city"], patch.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.display_name, "Countess Lovelace");
        assert_eq!(updated.address.as_ref().unwrap().city, "Paris");
        assert_eq!(updated.address.as_ref().unwrap().country_code, "GB");
        assert_eq!(updated.email, "ada@example.com");

        let err = update(&["nope"], patch.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("nope"));

        let missing = User {
            id: 99,
            ..patch.clone()
        };
        assert_eq!(
            update(&["display_name"], missing).await.unwrap_err().code(),
            Code::NotFound
        );

        // Empty mask replaces everything mutable; the result must still be valid.
        let err = update(&[], patch).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let full = User {
            id: 2,
            display_name: "Amazing Grace".to_owned(),
            email: "grace@navy.example".to_owned(),
            ..User::default()
        };
        let replaced = update(&[], full).await.unwrap().into_inner();
        assert_eq!(replaced.display_name, "Amazing Grace");
        assert!(replaced.tags.is_empty());
        assert!(replaced.created_at.is_some());
    }
}
