//! A BFF's named GraphQL operations, owned by its frontend team: loaded from a folder of
//! `*.graphql` files, validated against the aggregated schema when the snapshot is built, and
//! listed in the trusted-documents manifest.
//!
//! Rules:
//! - every `*.graphql` file of the folder (not its subfolders) is read, in name order; a file
//!   holds any number of named operations and fragments; fragments are shared by the whole
//!   folder; operation and fragment names are unique across the folder;
//! - each operation is turned into its canonical document (see [`print`](mod@print)): the operation and
//!   the fragments it uses; its id is the lowercase hex SHA-256 of that text, and it is what
//!   runs, whichever way the operation is called (by id, or as a REST endpoint);
//! - each canonical document is validated with async-graphql's rules against the schema; the
//!   first error stops the load with the file, line and column of the source, the operation
//!   and the field concerned.

pub mod print;
mod validate;
pub mod vars;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_graphql::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use sha2::{Digest, Sha256};

use crate::graphql::engine::schema::GraphqlSchema;
use print::{FragmentSource, Origin};
pub use vars::{Scalar, VarType, VariableDef};

/// One named operation of the folder.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The operation's name.
    pub name: String,
    /// Query, mutation or subscription.
    pub kind: OperationType,
    /// The file it is defined in.
    pub file: String,
    /// The canonical document (the operation and the fragments it uses).
    pub document: Arc<str>,
    /// Its id: the lowercase hex SHA-256 of `document`.
    pub id: String,
    /// The declared variables, in order.
    pub variables: Vec<VariableDef>,
    /// The response keys of the root selection (aliases or field names), in order.
    pub root_fields: Vec<String>,
}

/// The operations of a folder, by name and by id.
#[derive(Debug, Default)]
pub struct Operations {
    by_name: BTreeMap<String, Arc<Operation>>,
    by_id: HashMap<String, Arc<Operation>>,
}

impl Operations {
    /// The operation with this name.
    pub fn get(&self, name: &str) -> Option<&Arc<Operation>> {
        self.by_name.get(name)
    }

    /// The operation whose id (lowercase hex SHA-256) is `id`.
    pub fn by_id(&self, id: &str) -> Option<&Arc<Operation>> {
        self.by_id.get(id)
    }

    /// All operations, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Operation>> {
        self.by_name.values()
    }

    /// How many operations there are.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The trusted-documents manifest: id -> canonical document, sorted by id.
    pub fn manifest(&self) -> BTreeMap<String, String> {
        self.by_id
            .iter()
            .map(|(id, op)| (id.clone(), op.document.to_string()))
            .collect()
    }

    /// The manifest as pretty JSON (`{ "<sha256>": "<document>", ... }`, Apollo/Relay style).
    pub fn manifest_json(&self) -> String {
        serde_json::to_string_pretty(&self.manifest()).unwrap_or_else(|_| "{}".into())
    }
}

/// The lowercase hex SHA-256 of a document's text (its persisted-query id).
pub fn document_id(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Why the operations could not be loaded; each names the file (and position) at fault.
#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    /// The folder cannot be listed.
    #[error("{dir}: cannot read the operations folder: {source}")]
    ReadDir {
        /// The folder.
        dir: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file does not parse, or its definitions are wrong (anonymous or duplicated).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// Line (from 1).
        line: usize,
        /// Column (from 1).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An operation does not validate against the schema.
    #[error("{file}:{line}:{column}: operation {operation}{}: {message}", field_part(.field))]
    Invalid {
        /// The file holding the faulty line (the operation's, or a fragment's).
        file: String,
        /// The operation.
        operation: String,
        /// The field concerned, when the error is on a field.
        field: Option<String>,
        /// Line (from 1).
        line: usize,
        /// Column (from 1).
        column: usize,
        /// async-graphql's message.
        message: String,
    },
}

fn field_part(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|f| format!(", field {f}"))
        .unwrap_or_default()
}

/// A parsed file.
struct Source {
    path: String,
    doc: ExecutableDocument,
}

/// The name of the operation added to parse a file that only holds fragments.
const FRAGMENTS_ONLY: &str = "__PorticoFragmentsOnly";

/// Loads every `*.graphql` file of `dir` and validates each operation against `schema`.
pub async fn load(dir: &Path, schema: &GraphqlSchema) -> Result<Operations, OperationsError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| OperationsError::ReadDir {
            dir: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "graphql"))
        .collect();
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        let path = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|source| OperationsError::Read {
            file: path.clone(),
            source,
        })?;
        sources.push(Source {
            doc: parse(&path, &text)?,
            path,
        });
    }
    build(&sources, schema).await
}

/// Parses one file; a file of fragments only is accepted.
fn parse(path: &str, text: &str) -> Result<ExecutableDocument, OperationsError> {
    let syntax = |e: async_graphql::parser::Error| {
        let pos = e.positions().next().unwrap_or_default();
        OperationsError::Syntax {
            file: path.to_string(),
            line: pos.line,
            column: pos.column,
            message: e.to_string(),
        }
    };
    match async_graphql::parser::parse_query(text) {
        Ok(doc) => Ok(doc),
        Err(async_graphql::parser::Error::MissingOperation) => {
            let padded = format!("{text}\nquery {FRAGMENTS_ONLY} {{ __typename }}\n");
            async_graphql::parser::parse_query(padded).map_err(syntax)
        }
        Err(e) => Err(syntax(e)),
    }
}

async fn build(sources: &[Source], schema: &GraphqlSchema) -> Result<Operations, OperationsError> {
    let at = |file: usize, pos: async_graphql::Pos, message: String| OperationsError::Syntax {
        file: sources
            .get(file)
            .map(|s| s.path.clone())
            .unwrap_or_default(),
        line: pos.line,
        column: pos.column,
        message,
    };
    // Every fragment of the folder, and every operation with its file.
    let mut fragments: BTreeMap<String, FragmentSource<'_>> = BTreeMap::new();
    let mut ops: Vec<(usize, String, &Positioned<OperationDefinition>)> = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let mut names: Vec<_> = s.doc.fragments.iter().collect();
        names.sort_by_key(|(_, f)| f.pos);
        for (name, frag) in names {
            if let Some((other, _)) = fragments.insert(name.to_string(), (i, frag)) {
                return Err(at(
                    i,
                    frag.pos,
                    format!(
                        "fragment {name} is also defined in {}",
                        sources.get(other).map(|s| s.path.as_str()).unwrap_or("?")
                    ),
                ));
            }
        }
        match &s.doc.operations {
            DocumentOperations::Single(op) => {
                return Err(at(
                    i,
                    op.pos,
                    "anonymous operation: give it a name (`query Name { ... }`) so that it can be \
                     persisted and published"
                        .into(),
                ));
            }
            DocumentOperations::Multiple(map) => {
                let mut named: Vec<_> = map
                    .iter()
                    .filter(|(n, _)| n.as_str() != FRAGMENTS_ONLY)
                    .collect();
                named.sort_by_key(|(_, op)| op.pos);
                for (name, op) in named {
                    ops.push((i, name.to_string(), op));
                }
            }
        }
    }
    let mut out = Operations::default();
    let mut origin_of: HashMap<String, (usize, async_graphql::Pos)> = HashMap::new();
    for (file, name, op) in ops {
        if let Some((other, _)) = origin_of.get(&name) {
            return Err(at(
                file,
                op.pos,
                format!(
                    "operation {name} is also defined in {}",
                    sources.get(*other).map(|s| s.path.as_str()).unwrap_or("?")
                ),
            ));
        }
        origin_of.insert(name.clone(), (file, op.pos));
        let printed = print::print_operation(file, &name, op, &fragments).map_err(|m| {
            at(
                m.origin.file,
                m.origin.pos,
                format!("operation {name}: unknown fragment {}", m.name),
            )
        })?;
        if let Some(first) = validate::validate(&schema.schema, &printed.text, &name)
            .await
            .into_iter()
            .next()
        {
            let origin = first
                .pos
                .and_then(|p| p.line.checked_sub(1))
                .and_then(|l| printed.lines.get(l))
                .cloned()
                .unwrap_or(Origin {
                    file,
                    pos: op.pos,
                    field: None,
                });
            return Err(OperationsError::Invalid {
                file: sources
                    .get(origin.file)
                    .map(|s| s.path.clone())
                    .unwrap_or_default(),
                operation: name,
                field: origin.field,
                line: origin.pos.line,
                column: origin.pos.column,
                message: first.message,
            });
        }
        let registry = schema.schema.registry();
        let variables = op
            .node
            .variable_definitions
            .iter()
            .map(|v| VariableDef::new(&v.node, registry))
            .collect();
        let mut root_fields = Vec::new();
        collect_keys(&op.node.selection_set, &fragments, &mut root_fields, 0);
        let document: Arc<str> = printed.text.into();
        let operation = Arc::new(Operation {
            id: document_id(&document),
            document,
            name: name.clone(),
            kind: op.node.ty,
            file: sources
                .get(file)
                .map(|s| s.path.clone())
                .unwrap_or_default(),
            variables,
            root_fields,
        });
        out.by_id.insert(operation.id.clone(), operation.clone());
        out.by_name.insert(name, operation);
    }
    Ok(out)
}

/// The response keys of a selection set, through fragments.
fn collect_keys(
    set: &Positioned<SelectionSet>,
    fragments: &BTreeMap<String, FragmentSource<'_>>,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    for item in &set.node.items {
        match &item.node {
            Selection::Field(f) => {
                let key = f
                    .node
                    .alias
                    .as_ref()
                    .unwrap_or(&f.node.name)
                    .node
                    .to_string();
                if !out.contains(&key) {
                    out.push(key);
                }
            }
            Selection::InlineFragment(i) => {
                collect_keys(&i.node.selection_set, fragments, out, depth + 1)
            }
            Selection::FragmentSpread(s) => {
                if let Some((_, frag)) = fragments.get(s.node.fragment_name.node.as_str()) {
                    collect_keys(&frag.node.selection_set, fragments, out, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
