//! Finds libuvasync: an installed 1.x through pkg-config, else builds the
//! static library from the C sources with CMake.
//!
//! Sources, in order: `UVASYNC_SRC_DIR`, this repository (`../..`), then the
//! crate's own `vendor/` (in the repository, symlinks to the tree's sources;
//! in the packaged crate, their copies). `UVASYNC_NO_VENDOR=1` forces the
//! installed library; `UVASYNC_VENDOR=1` skips pkg-config and always builds
//! from source. On docs.rs (`DOCS_RS` set) nothing is built or linked:
//! documenting the declarations needs no library (and docs.rs has no libuv).
use std::env;
use std::path::{Path, PathBuf};

fn main() {
    for var in ["UVASYNC_NO_VENDOR", "UVASYNC_VENDOR", "UVASYNC_SRC_DIR", "DOCS_RS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var_os("DOCS_RS").is_some() {
        return;
    }
    let force_system = env::var_os("UVASYNC_NO_VENDOR").is_some_and(|v| v != "0");
    let force_vendor = env::var_os("UVASYNC_VENDOR").is_some_and(|v| v != "0");

    if !force_vendor {
        // The ABI grows within a major version: any 1.x at least as new as
        // the headers we were written against.
        match pkg_config::Config::new().range_version("1.0.0".."2.0.0").probe("uvasync") {
            Ok(lib) => {
                for inc in &lib.include_paths {
                    println!("cargo:include={}", inc.display());
                }
                return;
            }
            Err(e) if force_system => {
                panic!("UVASYNC_NO_VENDOR is set but pkg-config found no uvasync 1.x: {e}")
            }
            Err(_) => {}
        }
    }

    let src = source_dir();
    for part in ["src", "include", "CMakeLists.txt", "cmake"] {
        println!("cargo:rerun-if-changed={}", src.join(part).display());
    }
    let dst = cmake::Config::new(&src)
        .define("UVA_BUILD_TESTS", "OFF")
        .define("UVA_BUILD_EXAMPLES", "OFF")
        .define("UVA_BUILD_BENCH", "OFF")
        .define("CMAKE_BUILD_TYPE", "Release")
        .define("CMAKE_POSITION_INDEPENDENT_CODE", "ON")
        .build_target("uvasync_a")
        .build();
    let build = dst.join("build");
    println!("cargo:rustc-link-search=native={}", build.display());
    println!("cargo:rustc-link-lib=static=uvasync");
    println!("cargo:root={}", dst.display());
    println!("cargo:include={}", src.join("include").display());
    // The static library needs libuv and the C++ runtime, and OpenSSL when
    // CMake found it (TLS): its uvasync-static.pc says which.
    pkg_config::Config::new().probe("libuv").expect("libuv (libuv1-dev) is needed to link the static uvasync library");
    let pc = std::fs::read_to_string(build.join("uvasync-static.pc")).unwrap_or_default();
    if pc.lines().any(|l| l.starts_with("Requires:") && l.contains("openssl")) {
        pkg_config::Config::new().probe("openssl").expect("uvasync was built with TLS: OpenSSL (libssl-dev) is needed");
    } else if pc.lines().any(|l| l.starts_with("Libs:") && l.contains("-lssl")) {
        println!("cargo:rustc-link-lib=dylib=ssl");
        println!("cargo:rustc-link-lib=dylib=crypto");
    }
    println!("cargo:rustc-link-lib=dylib=stdc++");
}

fn source_dir() -> PathBuf {
    if let Some(dir) = env::var_os("UVASYNC_SRC_DIR") {
        return PathBuf::from(dir);
    }
    // The repository first (in a checkout vendor/ points there anyway); a
    // packaged crate has no repository around it and takes its vendor/.
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest.join("../..");
    if has_sources(&repo) {
        return repo;
    }
    let vendored = manifest.join("vendor");
    if has_sources(&vendored) {
        return vendored;
    }
    panic!("no uvasync C sources: install libuvasync (pkg-config uvasync) or set UVASYNC_SRC_DIR");
}

fn has_sources(dir: &Path) -> bool {
    dir.join("CMakeLists.txt").is_file() && dir.join("include/uvasync.h").is_file()
}
