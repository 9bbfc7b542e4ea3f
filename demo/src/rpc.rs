//! Helpers shared by the service handlers: rich error statuses and page-token pagination.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Default page size of list and search calls.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 10;
/// Largest page size; bigger requests are clamped to it.
pub(crate) const MAX_PAGE_SIZE: usize = 100;

/// NOT_FOUND with a `ResourceInfo` detail.
pub(crate) fn not_found(resource_type: &str, resource_name: &str, message: String) -> Status {
    Status::with_error_details(
        Code::NotFound,
        message,
        ErrorDetails::with_resource_info(resource_type, resource_name, "", ""),
    )
}

/// INVALID_ARGUMENT with a `BadRequest` detail holding one violation per `(field, description)`.
pub(crate) fn bad_request(message: impl Into<String>, violations: Vec<FieldViolation>) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request(violations),
    )
}

/// INVALID_ARGUMENT with a `BadRequest` detail on one field; the message is the description.
pub(crate) fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    bad_request(
        format!("invalid {field}: {description}"),
        vec![FieldViolation::new(field, description)],
    )
}

/// Validates a page size: 0 means the default, above the maximum is clamped, negative is an error.
pub(crate) fn page_size(requested: i32, field: &str) -> Result<usize, Status> {
    match usize::try_from(requested) {
        Err(_) => Err(invalid_field(field, "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Parses a page token (the decimal offset of the page's first item; empty = 0).
pub(crate) fn page_offset(token: &str, total: usize) -> Result<usize, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    match token.parse::<usize>() {
        Ok(offset) if offset > 0 && offset <= total && token == offset.to_string() => Ok(offset),
        _ => Err(invalid_field(
            "page_token",
            format!("{token:?} is not a page token returned by this server"),
        )),
    }
}

/// Cuts one page out of `items`, returning it with the next page token (empty on the last page).
pub(crate) fn paginate<T>(
    items: Vec<T>,
    page_size: usize,
    token: &str,
) -> Result<(Vec<T>, String), Status> {
    let total = items.len();
    let offset = page_offset(token, total)?;
    let end = offset.saturating_add(page_size).min(total);
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    let page = items.into_iter().skip(offset).take(end - offset).collect();
    Ok((page, next))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_to_the_end() {
        let items: Vec<u32> = (0..25).collect();
        let (p1, t1) = paginate(items.clone(), 10, "").unwrap();
        assert_eq!(p1.len(), 10);
        assert_eq!(t1, "10");
        let (p3, t3) = paginate(items.clone(), 10, "20").unwrap();
        assert_eq!(p3, (20..25).collect::<Vec<_>>());
        assert!(t3.is_empty());
        for bad in ["x", "-1", "0", "26", "010", "+5"] {
            let err = paginate(items.clone(), 10, bad).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn page_size_rules() {
        assert_eq!(page_size(0, "page_size").unwrap(), 10);
        assert_eq!(page_size(500, "page_size").unwrap(), 100);
        let err = page_size(-1, "page_size").unwrap_err();
        let details = err.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            "page_size"
        );
    }
}
