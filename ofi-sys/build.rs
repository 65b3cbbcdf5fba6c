//! Finds the system libfabric with pkg-config, compiles the C shim for the `static inline` calls and
//! generates the raw bindings with bindgen (pinned to 0.72.1 in the workspace).
use std::path::PathBuf;

fn main() {
    let lib = pkg_config::Config::new()
        .atleast_version("1.17")
        .probe("libfabric")
        .expect(
            "libfabric >= 1.17 not found by pkg-config: apt-get install libfabric-dev pkg-config",
        );

    let mut cc = cc::Build::new();
    cc.file("shim/shim.c").warnings(true);
    for p in &lib.include_paths {
        cc.include(p);
    }
    cc.compile("cart_ofi_shim");

    let mut bg = bindgen::Builder::default()
        .header("shim/shim.h")
        .allowlist_function("fi_(getinfo|freeinfo|dupinfo|fabric|strerror|tostr|version)")
        .allowlist_function("cart_fi_.*")
        .allowlist_type("fi_.*")
        .allowlist_type("fid.*")
        .allowlist_var("FI_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &lib.include_paths {
        bg = bg.clang_arg(format!("-I{}", p.display()));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    bg.generate()
        .expect("bindgen failed on libfabric headers (is libclang-dev installed?)")
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
}
