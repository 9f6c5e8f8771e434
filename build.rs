//! Builds the thin C side of the libsolv binding (src/rpm/solver/libsolv_shim.c)
//! against the system's libsolv (Debian: libsolv-dev).

fn main() {
    let shim = "src/rpm/solver/libsolv_shim.c";
    println!("cargo:rerun-if-changed={shim}");
    cc::Build::new()
        .file(shim)
        .include("/usr/include/solv")
        .warnings(true)
        .compile("cosa_libsolv_shim");
    // pool_parserpmrichdep (rich dependencies) lives in libsolvext.
    println!("cargo:rustc-link-lib=solvext");
    println!("cargo:rustc-link-lib=solv");
}
