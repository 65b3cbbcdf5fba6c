//! Finds libpmem with pkg-config and generates bindings for the handful of calls vos uses.

fn main() {
    let lib = pkg_config::Config::new()
        .atleast_version("1.0")
        .probe("libpmem")
        .expect("libpmem not found: install Debian package libpmem-dev");
    let mut b = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <libpmem.h>\n")
        .allowlist_function("pmem_map_file|pmem_unmap|pmem_is_pmem|pmem_persist|pmem_msync|pmem_memcpy_persist|pmem_errormsg|pmem_check_version")
        .allowlist_var("PMEM_FILE_.*|PMEM_MAJOR_VERSION|PMEM_MINOR_VERSION")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &lib.include_paths {
        b = b.clang_arg(format!("-I{}", p.display()));
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    b.generate()
        .expect("bindgen libpmem.h")
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings");
}
