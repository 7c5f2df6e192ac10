//! Compiles the C shim of `benches/c/` that calls the reference
//! implementations (librpm's `rpmvercmp`, libdpkg's `dpkg_version_compare`)
//! for the `vercmp` bench.
//!
//! The C libraries are optional for the rest of this crate: when the
//! headers are missing (packages librpm-dev and libdpkg-dev), the shim is
//! skipped with a warning and the bench measures only the Rust code, so
//! that other benches in this crate still build on a bare machine.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=c/vercmp_shim.c");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(c_vercmp)");

    let have_rpm = Path::new("/usr/include/rpm/rpmver.h").exists();
    let have_dpkg = Command::new("pkg-config")
        .args(["--exists", "libdpkg"])
        .status()
        .is_ok_and(|s| s.success());
    if !(have_rpm && have_dpkg) {
        println!(
            "cargo::warning=vercmp bench: C reference implementations not built \
             (install the Debian packages librpm-dev and libdpkg-dev to compare against them)"
        );
        return;
    }

    cc::Build::new()
        .file("c/vercmp_shim.c")
        .opt_level(2)
        .warnings(true)
        .compile("patchfleet_vercmp_shim");
    // libdpkg ships only as a static archive; librpmio as a shared library.
    println!("cargo::rustc-link-lib=static:-bundle=dpkg");
    println!("cargo::rustc-link-lib=dylib=rpmio");
    println!("cargo::rustc-cfg=c_vercmp");
}
