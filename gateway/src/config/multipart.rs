//! `rest.multipart`: how the REST door reads `multipart/form-data` request bodies (file
//! uploads mapped onto a method's fields) and the limits it reads them under.

use serde::{Deserialize, Serialize};

use super::ByteSize;

/// `multipart/form-data` request bodies on REST routes that take a body.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MultipartConfig {
    /// Accept `multipart/form-data` bodies (each part fills the field it is named after);
    /// off: such bodies are refused with 415 like any other non-JSON body.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Most parts in one body (413 past it).
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Largest part, in bytes (413 naming the part past it); default: the whole body's
    /// limit, `limits.max_body_bytes`, which bounds every body anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_part_bytes: Option<ByteSize>,
}

fn yes() -> bool {
    true
}

fn default_max_parts() -> usize {
    16
}

impl Default for MultipartConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_parts: default_max_parts(),
            max_part_bytes: None,
        }
    }
}

impl MultipartConfig {
    /// Checks the values; the error names the key (below `rest.multipart`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_parts == 0 {
            return Err(("max_parts", "must be at least 1".into()));
        }
        if self.max_part_bytes.is_some_and(|b| b.bytes() == 0) {
            return Err(("max_part_bytes", "must be at least 1 byte".into()));
        }
        Ok(())
    }
}
