//! Protobuf editions in a pool that knows proto2 and proto3 only.
//!
//! prost-reflect (0.16, the newest release) refuses files with `syntax = "editions"`. So each
//! editions file (edition 2023 or 2024) is rewritten when it is loaded, whatever its source
//! (descriptor set, reflection), into the classic syntax that has the same wire format and the
//! same JSON mapping, from the features each element resolves to (file, then message, then
//! field; enums likewise):
//!
//! - **proto3**, when it can say everything the features say: explicit presence of a singular
//!   scalar, enum, string or bytes field becomes a proto3 `optional` (a synthetic oneof),
//!   implicit presence stays plain, an `EXPANDED` repeated field gets `[packed = false]`.
//! - **proto2**, when the file needs it: a `LEGACY_REQUIRED` field (becomes `required`) or a
//!   default value. `PACKED` repeated fields get `[packed = true]`. What proto2 cannot say is
//!   approximated and logged: an `IMPLICIT` field keeps explicit presence (a zero set on
//!   purpose is written out).
//! - Enum openness needs nothing: prost-reflect keeps an unknown enum number as the field's
//!   value whatever the syntax (open semantics), so a `CLOSED` enum behaves as an open one.
//! - Refused with a clear error: `DELIMITED` message encoding (groups), and an edition other than
//!   2023 and 2024.
//!
//! Everything else of the file (options, custom options such as `google.api.http`, source
//! info) is kept byte for byte: the file is decoded as a dynamic message, which keeps unknown
//! fields.

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

/// `Edition` numbers of `descriptor.proto`.
const EDITION_2023: i32 = 1000;
const EDITION_2024: i32 = 1001;

/// `FieldDescriptorProto.Type` numbers.
const TYPE_GROUP: i32 = 10;
const TYPE_MESSAGE: i32 = 11;
const TYPE_STRING: i32 = 9;
const TYPE_BYTES: i32 = 12;

/// `FieldDescriptorProto.Label` numbers.
const LABEL_REQUIRED: i32 = 2;
const LABEL_REPEATED: i32 = 3;

/// The features that change a file's wire format or JSON mapping, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Features {
    /// 1 EXPLICIT, 2 IMPLICIT, 3 LEGACY_REQUIRED.
    field_presence: i32,
    /// 1 OPEN, 2 CLOSED (reported only: see the module docs).
    enum_type: i32,
    /// 1 PACKED, 2 EXPANDED.
    repeated_field_encoding: i32,
    /// 1 LENGTH_PREFIXED, 2 DELIMITED.
    message_encoding: i32,
}

impl Features {
    /// The defaults of edition 2023 and 2024 (identical for these features).
    const DEFAULTS: Features = Features {
        field_presence: 1,
        enum_type: 1,
        repeated_field_encoding: 1,
        message_encoding: 1,
    };

    /// These features overridden by the `features` of `options` (a `*Options` message).
    fn with(mut self, options: Option<&DynamicMessage>) -> Features {
        let Some(set) = options
            .filter(|o| o.has_field_by_name("features"))
            .and_then(|o| o.get_field_by_name("features"))
        else {
            return self;
        };
        let Some(set) = set.as_message() else {
            return self;
        };
        let get = |name: &str| {
            set.has_field_by_name(name)
                .then(|| set.get_field_by_name(name))
                .flatten()
                .and_then(|v| v.as_enum_number())
                .filter(|n| *n != 0)
        };
        if let Some(n) = get("field_presence") {
            self.field_presence = n;
        }
        if let Some(n) = get("enum_type") {
            self.enum_type = n;
        }
        if let Some(n) = get("repeated_field_encoding") {
            self.repeated_field_encoding = n;
        }
        if let Some(n) = get("message_encoding") {
            self.message_encoding = n;
        }
        self
    }
}

/// What a rewrite produced.
#[derive(Debug)]
pub(crate) struct Classic {
    /// The file, in proto2 or proto3.
    pub bytes: Bytes,
    /// `proto2` or `proto3`.
    pub syntax: &'static str,
    /// Features the target syntax could only approximate, for the log.
    pub approximations: Vec<String>,
}

fn descriptor(name: &str) -> Result<MessageDescriptor, String> {
    DescriptorPool::global()
        .get_message_by_name(name)
        .ok_or_else(|| format!("internal: {name} is not in the built-in descriptor.proto"))
}

/// The descriptor.proto messages a rewrite creates.
struct Descs {
    oneof: MessageDescriptor,
    field_options: MessageDescriptor,
}

fn options_of(m: &DynamicMessage) -> Option<DynamicMessage> {
    m.has_field_by_name("options")
        .then(|| m.get_field_by_name("options"))
        .flatten()
        .and_then(|v| v.as_message().cloned())
}

fn int(m: &DynamicMessage, name: &str) -> i32 {
    m.get_field_by_name(name)
        .and_then(|v| v.as_enum_number().or_else(|| v.as_i32()))
        .unwrap_or(0)
}

fn string(m: &DynamicMessage, name: &str) -> String {
    m.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn messages(m: &DynamicMessage, name: &str) -> Vec<DynamicMessage> {
    match m.get_field_by_name(name).as_deref() {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| v.as_message().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

fn set_messages(m: &mut DynamicMessage, name: &str, items: Vec<DynamicMessage>) {
    m.set_field_by_name(
        name,
        Value::List(items.into_iter().map(Value::Message).collect()),
    );
}

/// Removes the `features` of an element's options (they mean nothing to proto2/proto3).
fn clear_features(m: &mut DynamicMessage) {
    if let Some(mut options) = options_of(m) {
        options.clear_field_by_name("features");
        m.set_field_by_name("options", Value::Message(options));
    }
}

/// Whether the file is written in editions (`syntax = "editions"`).
pub(crate) fn is_editions(syntax: Option<&str>) -> bool {
    syntax == Some("editions")
}

/// Rewrites an editions file (its encoded `FileDescriptorProto`) into proto2 or proto3; see
/// the module docs. The error says what cannot be served.
pub(crate) fn to_classic(bytes: &[u8]) -> Result<Classic, String> {
    let mut file =
        DynamicMessage::decode(descriptor("google.protobuf.FileDescriptorProto")?, bytes)
            .map_err(|e| format!("cannot be decoded: {e}"))?;
    let edition = int(&file, "edition");
    if edition == 0 {
        return Err(
            "declares syntax \"editions\" without an edition: a reflection server that \
             re-encodes descriptors with an older descriptor.proto drops it; register the \
             descriptor set file instead"
                .to_owned(),
        );
    }
    if edition != EDITION_2023 && edition != EDITION_2024 {
        return Err(format!(
            "uses protobuf edition {edition}; the editions the gateway can serve are 2023 and 2024"
        ));
    }
    let features = Features::DEFAULTS.with(options_of(&file).as_ref());
    let mut plan = Plan::default();
    for m in messages(&file, "message_type") {
        plan.survey_message(&m, features, &string(&file, "package"))?;
    }
    for e in messages(&file, "enum_type") {
        plan.survey_enum(&e, features);
    }
    for f in messages(&file, "extension") {
        plan.survey_field(&f, features, "extension")?;
    }
    let proto2 = !plan.needs_proto2.is_empty();
    let d = Descs {
        oneof: descriptor("google.protobuf.OneofDescriptorProto")?,
        field_options: descriptor("google.protobuf.FieldOptions")?,
    };
    let mut top = messages(&file, "message_type");
    for m in &mut top {
        rewrite_message(&d, m, features, proto2);
    }
    set_messages(&mut file, "message_type", top);
    let mut enums = messages(&file, "enum_type");
    enums.iter_mut().for_each(rewrite_enum);
    set_messages(&mut file, "enum_type", enums);
    let mut extensions = messages(&file, "extension");
    for f in &mut extensions {
        rewrite_field(&d, f, features, proto2, false);
    }
    set_messages(&mut file, "extension", extensions);
    let syntax = if proto2 { "proto2" } else { "proto3" };
    file.clear_field_by_name("edition");
    file.set_field_by_name("syntax", Value::String(syntax.to_owned()));
    clear_features(&mut file);
    let approximations = plan
        .approximations
        .into_iter()
        .filter(|a| proto2 || !a.starts_with("implicit presence"))
        .collect();
    Ok(Classic {
        bytes: Bytes::from(file.encode_to_vec()),
        syntax,
        approximations,
    })
}

/// What the survey found: why proto2 is needed, and what proto2 would approximate.
#[derive(Default)]
struct Plan {
    needs_proto2: Vec<String>,
    approximations: Vec<String>,
}

impl Plan {
    fn survey_message(
        &mut self,
        m: &DynamicMessage,
        inherited: Features,
        scope: &str,
    ) -> Result<(), String> {
        let name = join(scope, &string(m, "name"));
        let features = inherited.with(options_of(m).as_ref());
        for f in messages(m, "field") {
            self.survey_field(&f, features, &name)?;
        }
        for f in messages(m, "extension") {
            self.survey_field(&f, features, &name)?;
        }
        for nested in messages(m, "nested_type") {
            self.survey_message(&nested, features, &name)?;
        }
        for e in messages(m, "enum_type") {
            self.survey_enum(&e, features);
        }
        Ok(())
    }

    fn survey_enum(&mut self, e: &DynamicMessage, inherited: Features) {
        let features = inherited.with(options_of(e).as_ref());
        if features.enum_type == 2 {
            self.approximations.push(format!(
                "closed enum {} (an unknown number is kept as the value, as for open enums)",
                string(e, "name")
            ));
        }
    }

    fn survey_field(
        &mut self,
        f: &DynamicMessage,
        inherited: Features,
        owner: &str,
    ) -> Result<(), String> {
        let features = inherited.with(options_of(f).as_ref());
        let name = format!("{owner}.{}", string(f, "name"));
        let ty = int(f, "type");
        if (ty == TYPE_MESSAGE || ty == TYPE_GROUP) && features.message_encoding == 2 {
            return Err(format!(
                "field {name} uses DELIMITED message encoding (a group), which the gateway cannot serve"
            ));
        }
        if features.field_presence == 3 {
            self.needs_proto2.push(format!("required field {name}"));
        }
        if f.has_field_by_name("default_value") {
            self.needs_proto2.push(format!("default value of {name}"));
        }
        if features.field_presence == 2 && int(f, "label") != LABEL_REPEATED {
            self.approximations
                .push(format!("implicit presence of {name} (explicit in proto2)"));
        }
        Ok(())
    }
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

/// Rewrites a message (and what it nests) in place.
fn rewrite_message(d: &Descs, m: &mut DynamicMessage, inherited: Features, proto2: bool) {
    let features = inherited.with(options_of(m).as_ref());
    let mut oneofs = messages(m, "oneof_decl");
    let mut fields = messages(m, "field");
    let mut taken: Vec<String> = fields.iter().map(|f| string(f, "name")).collect();
    taken.extend(oneofs.iter().map(|o| string(o, "name")));
    for f in &mut fields {
        let synthetic = rewrite_field(d, f, features, proto2, true);
        if synthetic {
            // proto3 `optional`: a oneof of its own, after every real oneof.
            let mut name = format!("_{}", string(f, "name"));
            while taken.contains(&name) {
                name.insert(0, 'X');
            }
            taken.push(name.clone());
            let mut oneof = DynamicMessage::new(d.oneof.clone());
            oneof.set_field_by_name("name", Value::String(name));
            f.set_field_by_name("oneof_index", Value::I32(oneofs.len() as i32));
            f.set_field_by_name("proto3_optional", Value::Bool(true));
            oneofs.push(oneof);
        }
    }
    for o in &mut oneofs {
        clear_features(o);
    }
    set_messages(m, "field", fields);
    set_messages(m, "oneof_decl", oneofs);
    let mut extensions = messages(m, "extension");
    for f in &mut extensions {
        rewrite_field(d, f, features, proto2, false);
    }
    set_messages(m, "extension", extensions);
    let mut nested = messages(m, "nested_type");
    for n in &mut nested {
        rewrite_message(d, n, features, proto2);
    }
    set_messages(m, "nested_type", nested);
    let mut enums = messages(m, "enum_type");
    enums.iter_mut().for_each(rewrite_enum);
    set_messages(m, "enum_type", enums);
    clear_features(m);
}

fn rewrite_enum(e: &mut DynamicMessage) {
    let mut values = messages(e, "value");
    values.iter_mut().for_each(clear_features);
    set_messages(e, "value", values);
    clear_features(e);
}

/// Rewrites one field in place; returns whether it needs a synthetic oneof (proto3
/// `optional`; never for an extension, which always has presence).
fn rewrite_field(
    d: &Descs,
    f: &mut DynamicMessage,
    inherited: Features,
    proto2: bool,
    in_message: bool,
) -> bool {
    let features = inherited.with(options_of(f).as_ref());
    clear_features(f);
    let label = int(f, "label");
    let ty = int(f, "type");
    if label == LABEL_REPEATED {
        let packable = !matches!(ty, TYPE_STRING | TYPE_BYTES | TYPE_MESSAGE | TYPE_GROUP);
        if packable {
            let packed = features.repeated_field_encoding == 1;
            // proto3 packs by default, proto2 does not: say it when it differs.
            if packed == proto2 {
                let mut options =
                    options_of(f).unwrap_or_else(|| DynamicMessage::new(d.field_options.clone()));
                options.set_field_by_name("packed", Value::Bool(packed));
                f.set_field_by_name("options", Value::Message(options));
            }
        }
        return false;
    }
    if proto2 {
        if features.field_presence == 3 {
            f.set_field_by_name("label", Value::EnumNumber(LABEL_REQUIRED));
        }
        return false;
    }
    let in_oneof = f.has_field_by_name("oneof_index");
    let presence_by_type = ty == TYPE_MESSAGE || ty == TYPE_GROUP;
    let explicit = features.field_presence == 1;
    in_message && explicit && !in_oneof && !presence_by_type
}

#[cfg(test)]
#[path = "editions_tests.rs"]
mod tests;
