//! The CatalogService implementation: lookups, batch reads and search over the seeded products.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::data;
use crate::knobs::Knobs;
use crate::pb::catalog_service_server::CatalogService;
use crate::pb::{
    BatchGetProductsRequest, BatchGetProductsResponse, GetProductImageRequest, GetProductRequest,
    Product, ProductImage, SearchProductsRequest, SearchProductsResponse,
};
use crate::rpc;

/// Most ids BatchGetProducts accepts.
const MAX_BATCH: usize = 100;

/// `demo.v1.CatalogService` over the seeded products (read-only).
#[derive(Clone)]
pub struct CatalogApi {
    knobs: Knobs,
    products: Arc<Vec<Product>>,
}

impl std::fmt::Debug for CatalogApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogApi").finish_non_exhaustive()
    }
}

impl CatalogApi {
    /// A service with the seed products p-1..p-20, driven by `knobs`.
    pub fn new(knobs: Knobs) -> Self {
        Self {
            knobs,
            products: Arc::new(data::seed_products()),
        }
    }

    fn by_id(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }
}

fn product_not_found(resource_name: &str, what: &str) -> Status {
    rpc::not_found(
        "demo.v1.Product",
        resource_name,
        format!("product {what} not found"),
    )
}

/// Whether every word of the query occurs (case-insensitively) in the title or description.
fn matches_query(product: &Product, words: &[String]) -> bool {
    let title = product.title.to_lowercase();
    let description = product.description.to_lowercase();
    words
        .iter()
        .all(|w| title.contains(w.as_str()) || description.contains(w.as_str()))
}

/// The MIME type of an image path, by extension.
fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// Deterministic fake image bytes: a format signature, then `product_id/path`.
fn image_bytes(content_type: &str, product_id: &str, path: &str) -> Vec<u8> {
    let mut data: Vec<u8> = match content_type {
        "image/png" => vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
        "image/jpeg" => vec![0xFF, 0xD8, 0xFF, 0xE0],
        "image/webp" => b"RIFF\0\0\0\0WEBP".to_vec(),
        _ => Vec::new(),
    };
    data.extend_from_slice(format!("{product_id}/{path}").as_bytes());
    data
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<Product>, Status> {
        self.knobs.on_call("GetProduct", request.metadata()).await?;
        let req = request.into_inner();
        let found = if !req.id.is_empty() {
            self.by_id(&req.id)
                .ok_or_else(|| product_not_found(&format!("products/{}", req.id), &req.id))?
        } else if !req.name.is_empty() {
            self.products
                .iter()
                .find(|p| p.name == req.name)
                .ok_or_else(|| product_not_found(&req.name, &req.name))?
        } else {
            return Err(rpc::bad_request(
                "either id or name is required",
                vec![
                    tonic_types::FieldViolation::new("id", "either id or name is required"),
                    tonic_types::FieldViolation::new("name", "either id or name is required"),
                ],
            ));
        };
        Ok(self.knobs.reply(found.clone()))
    }

    async fn batch_get_products(
        &self,
        request: Request<BatchGetProductsRequest>,
    ) -> Result<Response<BatchGetProductsResponse>, Status> {
        self.knobs
            .on_call("BatchGetProducts", request.metadata())
            .await?;
        let req = request.into_inner();
        if req.ids.len() > MAX_BATCH {
            return Err(rpc::invalid_field(
                "ids",
                format!("at most {MAX_BATCH} ids, got {}", req.ids.len()),
            ));
        }
        let products = req
            .ids
            .iter()
            .filter_map(|id| self.by_id(id).cloned())
            .collect();
        Ok(self.knobs.reply(BatchGetProductsResponse { products }))
    }

    async fn search_products(
        &self,
        request: Request<SearchProductsRequest>,
    ) -> Result<Response<SearchProductsResponse>, Status> {
        self.knobs
            .on_call("SearchProducts", request.metadata())
            .await?;
        let req = request.into_inner();
        let page_size = rpc::page_size(req.page_size, "page_size")?;
        let words: Vec<String> = req
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let ceiling = req
            .max_price_units
            .map(|units| i128::from(units) * 1_000_000_000);
        let mut matches: Vec<&Product> = self
            .products
            .iter()
            .filter(|p| matches_query(p, &words))
            .filter(|p| req.category.is_empty() || p.categories.contains(&req.category))
            .filter(|p| ceiling.is_none_or(|c| p.price.as_ref().map_or(0, data::money_nanos) <= c))
            .collect();
        let mut category_counts = HashMap::new();
        for product in &matches {
            for category in &product.categories {
                *category_counts.entry(category.clone()).or_insert(0) += 1;
            }
        }
        // Best first: products whose title holds every word, then the rest; ties in id order.
        matches.sort_by_key(|p| {
            let title = p.title.to_lowercase();
            !words.iter().all(|w| title.contains(w.as_str()))
        });
        let products = matches.into_iter().take(page_size).cloned().collect();
        Ok(Response::new(SearchProductsResponse {
            products,
            category_counts,
        }))
    }

    async fn get_product_image(
        &self,
        request: Request<GetProductImageRequest>,
    ) -> Result<Response<ProductImage>, Status> {
        self.knobs
            .on_call("GetProductImage", request.metadata())
            .await?;
        let req = request.into_inner();
        if req.path.is_empty() {
            return Err(rpc::invalid_field("path", "must not be empty"));
        }
        if self.by_id(&req.product_id).is_none() {
            return Err(product_not_found(
                &format!("products/{}", req.product_id),
                &req.product_id,
            ));
        }
        let content_type = content_type(&req.path);
        Ok(Response::new(ProductImage {
            data: image_bytes(content_type, &req.product_id, &req.path),
            content_type: content_type.to_owned(),
            path: req.path,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tonic::Code;

    fn api() -> CatalogApi {
        CatalogApi::new(Knobs::new())
    }

    #[tokio::test]
    async fn get_product_by_id_or_name() {
        let api = api();
        let get = |id: &str, name: &str| {
            api.get_product(Request::new(GetProductRequest {
                id: id.to_owned(),
                name: name.to_owned(),
            }))
        };
        let cup = get("p-1", "").await.unwrap().into_inner();
        assert_eq!(cup.title, "Espresso Cup");
        let by_name = get("", &cup.name).await.unwrap().into_inner();
        assert_eq!(by_name, cup);
        assert_eq!(
            get("", "categories/books/products/p-1")
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(get("p-99", "").await.unwrap_err().code(), Code::NotFound);
        assert_eq!(get("", "").await.unwrap_err().code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn batch_skips_unknown_and_limits() {
        let api = api();
        let batch = |ids: Vec<String>| {
            api.batch_get_products(Request::new(BatchGetProductsRequest { ids }))
        };
        let got = batch(vec!["p-2".into(), "nope".into(), "p-3".into()])
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<_> = got.products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["p-2", "p-3"]);
        let too_many = (0..101).map(|i| format!("p-{i}")).collect();
        assert_eq!(
            batch(too_many).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[tokio::test]
    async fn search_filters_and_counts() {
        let api = api();
        let search = |query: &str, category: &str, max: Option<i64>, page_size| {
            api.search_products(Request::new(SearchProductsRequest {
                query: query.to_owned(),
                category: category.to_owned(),
                max_price_units: max,
                page_size,
            }))
        };
        let all = search("", "", None, 100).await.unwrap().into_inner();
        assert_eq!(all.products.len(), 20);
        let total: i32 = all.category_counts.values().sum();
        assert!(total >= 20);
        let garden = search("GARDEN", "", None, 0).await.unwrap().into_inner();
        assert!(garden.products[0].title.to_lowercase().contains("garden"));
        assert!(garden.products.len() <= 10);
        let books = search("", "books", None, 0).await.unwrap().into_inner();
        assert!(
            books
                .products
                .iter()
                .all(|p| p.categories.contains(&"books".to_owned()))
        );
        assert_eq!(
            books.category_counts.get("books").copied(),
            Some(i32::try_from(books.products.len()).unwrap())
        );
        let cheap = search("", "", Some(10), 100).await.unwrap().into_inner();
        assert!(!cheap.products.is_empty());
        assert!(
            cheap
                .products
                .iter()
                .all(|p| data::money_nanos(p.price.as_ref().unwrap()) <= 10_000_000_000)
        );
        assert!(search("", "", None, -1).await.is_err());
    }

    #[tokio::test]
    async fn images_by_extension() {
        let api = api();
        let image = |product_id: &str, path: &str| {
            api.get_product_image(Request::new(GetProductImageRequest {
                product_id: product_id.to_owned(),
                path: path.to_owned(),
            }))
        };
        let png = image("p-1", "front/large.PNG").await.unwrap().into_inner();
        assert_eq!(png.content_type, "image/png");
        assert_eq!(png.path, "front/large.PNG");
        assert!(png.data.starts_with(&[0x89, b'P']));
        assert_eq!(
            image("p-1", "x.jpg")
                .await
                .unwrap()
                .into_inner()
                .content_type,
            "image/jpeg"
        );
        assert_eq!(
            image("p-1", "x.webp")
                .await
                .unwrap()
                .into_inner()
                .content_type,
            "image/webp"
        );
        assert_eq!(
            image("p-1", "x.gif")
                .await
                .unwrap()
                .into_inner()
                .content_type,
            "application/octet-stream"
        );
        assert_eq!(
            image("p-99", "a.png").await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(
            image("p-1", "").await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}
