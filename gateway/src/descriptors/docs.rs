//! Proto comments, read from the descriptors' source code info: the descriptions of the
//! GraphQL schema and of the OpenAPI document.

use std::collections::HashMap;

use prost_reflect::FileDescriptor;

/// Leading (else trailing) comments of every element of the files seen so far.
#[derive(Debug, Default)]
pub struct Docs {
    files: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Docs {
    /// The comment of the element at `path` in `file`, cleaned up; `None` when there is none
    /// (or the descriptors were built without source info).
    pub fn get(&mut self, file: &FileDescriptor, path: &[i32]) -> Option<String> {
        let map = self
            .files
            .entry(file.name().to_string())
            .or_insert_with(|| index(file));
        map.get(path).cloned()
    }
}

fn index(file: &FileDescriptor) -> HashMap<Vec<i32>, String> {
    let mut out = HashMap::new();
    let Some(info) = &file.file_descriptor_proto().source_code_info else {
        return out;
    };
    for loc in &info.location {
        let text = loc
            .leading_comments
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .or(loc.trailing_comments.as_deref())
            .map(clean)
            .filter(|c| !c.is_empty());
        if let Some(text) = text {
            out.insert(loc.path.clone(), text);
        }
    }
    out
}

/// Trims each line and the whole, keeping paragraph breaks.
fn clean(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().map(str::trim).collect();
    lines.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_trimmed() {
        assert_eq!(
            clean(" Fetches one user.\n  Second line. \n"),
            "Fetches one user.\nSecond line."
        );
    }
}
