//! The CatalogService implementation: lookups, batch reads and search over the seeded
//! products, plus the binary-body methods: photo upload and download (in memory), a chunked
//! CSV export and a CSV price import.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::HttpBody;
use crate::data;
use crate::knobs::Knobs;
use crate::pb::catalog_service_server::CatalogService;
use crate::pb::{
    BatchGetProductsRequest, BatchGetProductsResponse, ExportCatalogRequest,
    GetProductImageRequest, GetProductPhotoRequest, GetProductRequest, ImportCatalogCsvRequest,
    ImportCatalogCsvResponse, Product, ProductImage, ProductPhotoInfo, SearchProductsRequest,
    SearchProductsResponse, UploadProductPhotoRequest,
};
use crate::rpc;

/// The chunks of a catalog export.
pub type CsvStream = Pin<Box<dyn Stream<Item = Result<HttpBody, Status>> + Send>>;

/// Products per chunk of an export, by default.
const DEFAULT_CHUNK: usize = 5;
/// Largest photo UploadProductPhoto keeps.
const MAX_PHOTO_BYTES: usize = 4 << 20;
/// The content type of an export.
const CSV: &str = "text/csv; charset=utf-8";

/// A stored photo.
#[derive(Clone, Debug)]
struct Photo {
    content_type: String,
    filename: String,
    data: Vec<u8>,
}

/// Most ids BatchGetProducts accepts.
const MAX_BATCH: usize = 100;

/// `demo.v1.CatalogService` over the seeded products (read-only).
#[derive(Clone)]
pub struct CatalogApi {
    knobs: Knobs,
    products: Arc<Vec<Product>>,
    /// Uploaded photos by product id.
    photos: Arc<Mutex<HashMap<String, Photo>>>,
    /// Prices set by ImportCatalogCsv (whole units) by product id; shown by ExportCatalog.
    prices: Arc<Mutex<HashMap<String, i64>>>,
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
            photos: Arc::default(),
            prices: Arc::default(),
        }
    }

    /// The price of a product in whole units, after imports.
    fn price_units(&self, product: &Product) -> i64 {
        let imported = self
            .prices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&product.id)
            .copied();
        imported.unwrap_or_else(|| product.price.as_ref().map_or(0, |m| m.units))
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

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Reads an import: a header `id,price_units`, then `id,units` lines; blank lines skipped.
fn parse_price_csv(text: &str) -> Result<Vec<(String, i64)>, Status> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.trim() == "id,price_units" => {}
        _ => {
            return Err(rpc::invalid_field(
                "csv",
                "the first line must be the header \"id,price_units\"",
            ));
        }
    }
    lines
        .map(|(i, line)| {
            let parsed = line
                .split_once(',')
                .and_then(|(id, units)| Some((id.trim(), units.trim().parse::<i64>().ok()?)));
            match parsed {
                Some((id, units)) if !id.is_empty() && units >= 0 => Ok((id.to_owned(), units)),
                _ => Err(rpc::invalid_field(
                    "csv",
                    format!("line {}: expected \"id,price_units\", got {line:?}", i + 1),
                )),
            }
        })
        .collect()
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

    async fn upload_product_photo(
        &self,
        request: Request<UploadProductPhotoRequest>,
    ) -> Result<Response<ProductPhotoInfo>, Status> {
        self.knobs
            .on_call("UploadProductPhoto", request.metadata())
            .await?;
        let req = request.into_inner();
        if self.by_id(&req.product_id).is_none() {
            return Err(product_not_found(
                &format!("products/{}", req.product_id),
                &req.product_id,
            ));
        }
        if req.photo.is_empty() {
            return Err(rpc::invalid_field("photo", "must not be empty"));
        }
        if req.photo.len() > MAX_PHOTO_BYTES {
            return Err(rpc::invalid_field(
                "photo",
                format!("at most {MAX_PHOTO_BYTES} bytes"),
            ));
        }
        let content_type = if req.content_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            req.content_type
        };
        let info = ProductPhotoInfo {
            product_id: req.product_id.clone(),
            content_type: content_type.clone(),
            filename: req.filename.clone(),
            size: i64::try_from(req.photo.len()).unwrap_or(i64::MAX),
        };
        self.photos
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                req.product_id,
                Photo {
                    content_type,
                    filename: req.filename,
                    data: req.photo,
                },
            );
        Ok(Response::new(info))
    }

    async fn get_product_photo(
        &self,
        request: Request<GetProductPhotoRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        self.knobs
            .on_call("GetProductPhoto", request.metadata())
            .await?;
        let req = request.into_inner();
        if self.by_id(&req.product_id).is_none() {
            return Err(product_not_found(
                &format!("products/{}", req.product_id),
                &req.product_id,
            ));
        }
        let stored = self
            .photos
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&req.product_id)
            .cloned();
        // A product nobody uploaded a photo for has a generated PNG.
        let photo = stored.unwrap_or_else(|| Photo {
            content_type: "image/png".to_owned(),
            filename: "photo.png".to_owned(),
            data: image_bytes("image/png", &req.product_id, "photo.png"),
        });
        tracing::debug!(product = %req.product_id, filename = %photo.filename, "photo served");
        Ok(self.knobs.reply(HttpBody {
            content_type: photo.content_type,
            data: photo.data,
            extensions: Vec::new(),
        }))
    }

    type ExportCatalogStream = CsvStream;

    async fn export_catalog(
        &self,
        request: Request<ExportCatalogRequest>,
    ) -> Result<Response<Self::ExportCatalogStream>, Status> {
        self.knobs
            .on_call("ExportCatalog", request.metadata())
            .await?;
        let req = request.into_inner();
        let chunk = match usize::try_from(req.chunk_size) {
            Err(_) => return Err(rpc::invalid_field("chunk_size", "must not be negative")),
            Ok(0) => DEFAULT_CHUNK,
            Ok(n) => n,
        };
        let rows: Vec<String> = self
            .products
            .iter()
            .filter(|p| req.category.is_empty() || p.categories.contains(&req.category))
            .map(|p| {
                format!(
                    "{},{},{},{}\n",
                    csv_field(&p.id),
                    csv_field(&p.title),
                    self.price_units(p),
                    p.stock
                )
            })
            .collect();
        // The first message carries the header (and the content type); then `chunk` products
        // per message.
        let mut chunks = vec!["id,title,price_units,stock\n".to_owned()];
        chunks.extend(rows.chunks(chunk).map(|c| c.concat()));
        let fail_after = self
            .knobs
            .stream_failure_after()
            .and_then(|n| usize::try_from(n).ok());
        let failure = self.knobs.injected_status("ExportCatalog");
        let stream = futures::stream::iter(chunks.into_iter().enumerate())
            .map(move |(i, text)| {
                if fail_after.is_some_and(|n| i >= n) {
                    Err(failure.clone())
                } else {
                    Ok(HttpBody {
                        content_type: if i == 0 {
                            CSV.to_owned()
                        } else {
                            String::new()
                        },
                        data: text.into_bytes(),
                        extensions: Vec::new(),
                    })
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

    async fn import_catalog_csv(
        &self,
        request: Request<ImportCatalogCsvRequest>,
    ) -> Result<Response<ImportCatalogCsvResponse>, Status> {
        self.knobs
            .on_call("ImportCatalogCsv", request.metadata())
            .await?;
        let req = request.into_inner();
        let csv = req.csv.unwrap_or_default();
        let text = std::str::from_utf8(&csv.data)
            .map_err(|_| rpc::invalid_field("csv", "is not UTF-8 text"))?;
        let changes = parse_price_csv(text)?;
        if let Some((id, _)) = changes.iter().find(|(id, _)| self.by_id(id).is_none()) {
            return Err(product_not_found(&format!("products/{id}"), id));
        }
        let rows = i32::try_from(changes.len()).unwrap_or(i32::MAX);
        let updated = if req.dry_run {
            0
        } else {
            let mut prices = self.prices.lock().unwrap_or_else(PoisonError::into_inner);
            prices.extend(changes);
            rows
        };
        Ok(Response::new(ImportCatalogCsvResponse {
            rows,
            updated,
            content_type: csv.content_type,
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

    #[tokio::test]
    async fn photos_round_trip_and_default() {
        let api = api();
        let get = |id: &str| {
            api.get_product_photo(Request::new(GetProductPhotoRequest {
                product_id: id.to_owned(),
            }))
        };
        let default = get("p-2").await.unwrap().into_inner();
        assert_eq!(default.content_type, "image/png");
        assert!(default.data.starts_with(&[0x89, b'P']));
        let info = api
            .upload_product_photo(Request::new(UploadProductPhotoRequest {
                product_id: "p-2".into(),
                photo: vec![0, 0xFF, 0xFE, 7],
                content_type: "image/webp".into(),
                filename: "a.webp".into(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((info.size, info.filename.as_str()), (4, "a.webp"));
        let back = get("p-2").await.unwrap().into_inner();
        assert_eq!(back.data, [0, 0xFF, 0xFE, 7]);
        assert_eq!(back.content_type, "image/webp");
        assert_eq!(get("p-99").await.unwrap_err().code(), Code::NotFound);
    }

    #[tokio::test]
    async fn export_chunks_and_import_prices() {
        let api = api();
        let export = |chunk_size| {
            let api = api.clone();
            async move {
                let stream = api
                    .export_catalog(Request::new(ExportCatalogRequest {
                        category: String::new(),
                        chunk_size,
                    }))
                    .await
                    .unwrap()
                    .into_inner();
                stream.map(|m| m.unwrap()).collect::<Vec<HttpBody>>().await
            }
        };
        let chunks = export(0).await;
        assert_eq!(chunks.len(), 5, "a header then 4 chunks of 5");
        assert_eq!(chunks[0].content_type, CSV);
        assert!(chunks[1..].iter().all(|c| c.content_type.is_empty()));
        let text: String = chunks
            .iter()
            .map(|c| String::from_utf8(c.data.clone()).unwrap())
            .collect();
        assert_eq!(text.lines().count(), 21);
        let imported = api
            .import_catalog_csv(Request::new(ImportCatalogCsvRequest {
                dry_run: false,
                csv: Some(HttpBody {
                    content_type: "text/csv".into(),
                    data: b"id,price_units\np-1,777\n".to_vec(),
                    extensions: Vec::new(),
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((imported.rows, imported.updated), (1, 1));
        let text: String = export(100)
            .await
            .iter()
            .map(|c| String::from_utf8(c.data.clone()).unwrap())
            .collect();
        assert!(
            text.lines()
                .any(|l| l.starts_with("p-1,") && l.contains(",777,"))
        );
        let bad = api
            .import_catalog_csv(Request::new(ImportCatalogCsvRequest {
                dry_run: true,
                csv: Some(HttpBody {
                    content_type: "text/csv".into(),
                    data: b"id,price_units\np-1,x\n".to_vec(),
                    extensions: Vec::new(),
                }),
            }))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert!(bad.message().contains("line 2"), "{}", bad.message());
    }
}
