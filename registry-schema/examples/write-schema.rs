//! Writes `schema/index.schema.json` from the types: run after changing them.
fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/index.schema.json");
    std::fs::write(path, wt_registry_schema::json_schema()).expect("write the schema");
    println!("wrote {path}");
}
