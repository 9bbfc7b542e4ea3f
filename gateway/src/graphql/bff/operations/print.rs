//! The canonical text of an operation: the operation, then the fragments it uses (sorted by
//! name), printed one selection per line with two-space indents; plus, for every printed line,
//! where it came from in the source files (for error messages).
//!
//! The canonical text is what the manifest lists, what its id hashes, and what runs. It does not
//! depend on the source's whitespace, comments, commas or fragment order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use async_graphql::Pos;
use async_graphql::parser::types::{
    Directive, FragmentDefinition, OperationDefinition, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{Name, Positioned};

/// Where one printed line came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Index of the source file (in the loader's list).
    pub file: usize,
    /// Position in that file.
    pub pos: Pos,
    /// The field printed on that line, if the line is a field.
    pub field: Option<String>,
}

/// A fragment definition and the file it is defined in.
pub type FragmentSource<'a> = (usize, &'a Positioned<FragmentDefinition>);

/// A printed document and the origin of each of its lines (index 0 is line 1).
#[derive(Clone, Debug, Default)]
pub struct Printed {
    /// The canonical text (ends without a newline).
    pub text: String,
    /// One origin per line.
    pub lines: Vec<Origin>,
}

/// Why an operation could not be printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingFragment {
    /// The fragment's name.
    pub name: String,
    /// Where it is spread.
    pub origin: Origin,
}

/// Prints operation `name` (from file `file`) with every fragment it uses, transitively, taken
/// from `fragments`.
pub fn print_operation(
    file: usize,
    name: &str,
    op: &Positioned<OperationDefinition>,
    fragments: &BTreeMap<String, FragmentSource<'_>>,
) -> Result<Printed, MissingFragment> {
    let mut p = Printer::default();
    let mut header = format!("{} {name}", op.node.ty);
    write_variables(&mut header, &op.node.variable_definitions);
    write_directives(&mut header, &op.node.directives);
    p.open(&header, file, op.pos, None);
    let mut used = BTreeSet::new();
    p.selections(file, &op.node.selection_set, 1, &mut used);
    p.close(0, file, op.pos);
    // Fragments used by fragments too, until no new name appears.
    let mut done = BTreeSet::new();
    let mut bodies: BTreeMap<String, Printer> = BTreeMap::new();
    while let Some(next) = used.iter().find(|n| !done.contains(*n)).cloned() {
        done.insert(next.clone());
        let Some((ffile, frag)) = fragments.get(&next) else {
            let origin = p.spread_origin(&next).unwrap_or(Origin {
                file,
                pos: op.pos,
                field: None,
            });
            return Err(MissingFragment { name: next, origin });
        };
        let mut fp = Printer::default();
        let mut head = format!(
            "fragment {next} on {}",
            frag.node.type_condition.node.on.node
        );
        write_directives(&mut head, &frag.node.directives);
        fp.open(&head, *ffile, frag.pos, None);
        let mut inner = BTreeSet::new();
        fp.selections(*ffile, &frag.node.selection_set, 1, &mut inner);
        fp.close(0, *ffile, frag.pos);
        used.extend(inner);
        bodies.insert(next, fp);
    }
    for (_, body) in bodies {
        p.blank(file, op.pos);
        p.append(body);
    }
    Ok(p.finish())
}

#[derive(Default)]
struct Printer {
    text: String,
    lines: Vec<Origin>,
    /// Fragment spreads seen, with their origin (for a missing fragment's message).
    spreads: Vec<(String, Origin)>,
}

impl Printer {
    fn line(&mut self, indent: usize, content: &str, origin: Origin) {
        if !self.lines.is_empty() {
            self.text.push('\n');
        }
        for _ in 0..indent {
            self.text.push_str("  ");
        }
        self.text.push_str(content);
        self.lines.push(origin);
    }

    fn open(&mut self, head: &str, file: usize, pos: Pos, field: Option<String>) {
        self.line(0, &format!("{head} {{"), Origin { file, pos, field });
    }

    fn close(&mut self, indent: usize, file: usize, pos: Pos) {
        self.line(
            indent,
            "}",
            Origin {
                file,
                pos,
                field: None,
            },
        );
    }

    fn blank(&mut self, file: usize, pos: Pos) {
        self.text.push('\n');
        self.lines.push(Origin {
            file,
            pos,
            field: None,
        });
    }

    fn append(&mut self, other: Printer) {
        if !self.lines.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(&other.text);
        self.lines.extend(other.lines);
        self.spreads.extend(other.spreads);
    }

    fn spread_origin(&self, name: &str) -> Option<Origin> {
        self.spreads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o.clone())
    }

    fn selections(
        &mut self,
        file: usize,
        set: &Positioned<SelectionSet>,
        indent: usize,
        used: &mut BTreeSet<String>,
    ) {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(f) => {
                    let field = &f.node;
                    let mut s = String::new();
                    if let Some(alias) = &field.alias {
                        let _ = write!(s, "{}: ", alias.node);
                    }
                    s.push_str(&field.name.node);
                    if !field.arguments.is_empty() {
                        s.push('(');
                        write_arguments(&mut s, &field.arguments);
                        s.push(')');
                    }
                    write_directives(&mut s, &field.directives);
                    let origin = Origin {
                        file,
                        pos: f.pos,
                        field: Some(field.name.node.to_string()),
                    };
                    if field.selection_set.node.items.is_empty() {
                        self.line(indent, &s, origin);
                    } else {
                        s.push_str(" {");
                        self.line(indent, &s, origin);
                        self.selections(file, &field.selection_set, indent + 1, used);
                        self.close(indent, file, f.pos);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    let mut s = format!("...{name}");
                    write_directives(&mut s, &spread.node.directives);
                    let origin = Origin {
                        file,
                        pos: spread.pos,
                        field: None,
                    };
                    self.spreads.push((name.clone(), origin.clone()));
                    self.line(indent, &s, origin);
                    used.insert(name);
                }
                Selection::InlineFragment(inline) => {
                    let mut s = String::from("...");
                    if let Some(cond) = &inline.node.type_condition {
                        let _ = write!(s, " on {}", cond.node.on.node);
                    }
                    write_directives(&mut s, &inline.node.directives);
                    s.push_str(" {");
                    let origin = Origin {
                        file,
                        pos: inline.pos,
                        field: None,
                    };
                    self.line(indent, &s, origin);
                    self.selections(file, &inline.node.selection_set, indent + 1, used);
                    self.close(indent, file, inline.pos);
                }
            }
        }
    }

    fn finish(self) -> Printed {
        Printed {
            text: self.text,
            lines: self.lines,
        }
    }
}

fn write_variables(out: &mut String, vars: &[Positioned<VariableDefinition>]) {
    if vars.is_empty() {
        return;
    }
    out.push('(');
    for (i, v) in vars.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "${}: {}", v.node.name.node, v.node.var_type.node);
        if let Some(d) = &v.node.default_value {
            let _ = write!(out, " = {}", d.node);
        }
        for d in &v.node.directives {
            let _ = write!(out, " @{}", d.node.name.node);
            if !d.node.arguments.is_empty() {
                out.push('(');
                for (j, (n, value)) in d.node.arguments.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{}: {}", n.node, value.node);
                }
                out.push(')');
            }
        }
    }
    out.push(')');
}

fn write_arguments<V: std::fmt::Display>(
    out: &mut String,
    args: &[(Positioned<Name>, Positioned<V>)],
) {
    for (i, (n, value)) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}: {}", n.node, value.node);
    }
}

fn write_directives(out: &mut String, directives: &[Positioned<Directive>]) {
    for d in directives {
        let _ = write!(out, " @{}", d.node.name.node);
        if !d.node.arguments.is_empty() {
            out.push('(');
            write_arguments(out, &d.node.arguments);
            out.push(')');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::DocumentOperations;

    fn print(src: &str, name: &str) -> Result<Printed, MissingFragment> {
        let doc = parse_query(src).unwrap();
        let DocumentOperations::Multiple(ops) = &doc.operations else {
            panic!("named operations expected")
        };
        let op = ops.get(name).unwrap();
        let fragments: BTreeMap<String, FragmentSource<'_>> = doc
            .fragments
            .iter()
            .map(|(n, f)| (n.to_string(), (0, f)))
            .collect();
        print_operation(0, name, op, &fragments)
    }

    #[test]
    fn canonical_text_ignores_layout_and_comments() {
        let a = print(
            "# the home screen\nquery Home($id: Int64!, $n: Int = 3) @cached {\n  user(id: $id) { id, ...U @include(if: true) }\n  b: product(id: \"p-1\") { name }\n}\nfragment U on User { displayName ... on User { email } }",
            "Home",
        )
        .unwrap();
        let b = print(
            "fragment U on User{displayName ...on User{email}}\nquery Home($id:Int64!,$n:Int=3)@cached{user(id:$id){id ...U@include(if:true)} b:product(id:\"p-1\"){name}}",
            "Home",
        )
        .unwrap();
        assert_eq!(a.text, b.text);
        assert_eq!(
            a.text,
            "query Home($id: Int64!, $n: Int = 3) @cached {\n  user(id: $id) {\n    id\n    ...U @include(if: true)\n  }\n  b: product(id: \"p-1\") {\n    name\n  }\n}\n\nfragment U on User {\n  displayName\n  ... on User {\n    email\n  }\n}"
        );
        assert_eq!(a.lines.len(), a.text.lines().count());
        // Line 3 is `id` at line 3, column 19 of the first source.
        assert_eq!(a.lines[2].field.as_deref(), Some("id"));
        assert_eq!(
            a.lines[2].pos,
            Pos {
                line: 3,
                column: 19
            }
        );
    }

    #[test]
    fn only_used_fragments_are_printed_transitively_and_sorted() {
        let p = print(
            "query Q { user(id: 1) { ...B } }\nfragment B on User { ...A }\nfragment A on User { id }\nfragment Unused on User { id }",
            "Q",
        )
        .unwrap();
        assert!(p.text.contains("fragment A on User"));
        assert!(p.text.contains("fragment B on User"));
        assert!(p.text.find("fragment A").unwrap() < p.text.find("fragment B").unwrap());
        assert!(!p.text.contains("Unused"));
    }

    #[test]
    fn missing_fragment_is_named_with_its_spread() {
        let e = print("query Q {\n  user(id: 1) { ...Nope }\n}", "Q").unwrap_err();
        assert_eq!(e.name, "Nope");
        assert_eq!(e.origin.pos.line, 2);
    }
}
