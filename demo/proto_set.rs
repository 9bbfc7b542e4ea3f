// Compiles the demo protos with protox; shared by build.rs and tests/descriptor_set.rs via include!().
// (An include!()d file cannot start with an inner `//!` doc line.)

/// The demo .proto files, relative to `descriptors/proto`.
const DEMO_PROTO_FILES: [&str; 5] = [
    "demo/v1/common.proto",
    "demo/v1/users.proto",
    "demo/v1/orders.proto",
    "demo/v1/catalog.proto",
    "demo/v1/chat.proto",
];

/// Compiles the demo protos found under `workspace_root` (the repository root), with imports
/// (google/api/*, google/protobuf/*) and source info (comments) included.
fn compile_demo_protos(workspace_root: &std::path::Path) -> Result<protox::Compiler, protox::Error> {
    let mut compiler = protox::Compiler::new([
        workspace_root.join("descriptors/proto"),
        workspace_root.join("gateway/proto"),
    ])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(DEMO_PROTO_FILES)?;
    Ok(compiler)
}
