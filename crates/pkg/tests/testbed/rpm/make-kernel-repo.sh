#!/bin/sh
# A second repository for the install tests, beside make-rpm-repo.sh's (whose
# bytes golden files pin): the install-only `kernel`, as dnf treats it.
#   make-kernel-repo.sh OUT_DIR
#   OUT_DIR/rpms   kernel 5.14.0-1 and 5.14.0-2 (noarch, reproducible); the
#                  payload is /boot/vmlinuz-<V>-<R>, so that both versions
#                  can be installed side by side (no file conflict), and a
#                  `%post -p <lua>` appends `kernel` to
#                  /var/run/reboot-required(.pkgs): an installroot has no
#                  /bin/sh, and rpm runs the script chrooted in the root
#                  tb-kmod 1.0-1 and 1.1-1, the latter requiring
#                  kernel >= 5.14.0-2: upgrading it pulls the new kernel in
#                  as a dependency
#   OUT_DIR/repo   createrepo_c over all four (revision 1700000000)
# Nothing outside OUT_DIR is written (HOME and every database inside it).
# Needs rpmbuild (Debian: rpm) and createrepo_c (Debian: createrepo-c).
set -eu
T=${1:?usage: make-kernel-repo.sh OUT_DIR}
case "$T" in /*) ;; *) echo "make-kernel-repo.sh: absolute path required" >&2; exit 2 ;; esac
for tool in rpmbuild createrepo_c; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-kernel-repo.sh: $tool not found" >&2; exit 3; }
done
export SOURCE_DATE_EPOCH=1700000000
export HOME="$T/home" TZ=UTC LC_ALL=C
mkdir -p "$HOME" "$T/build/tmp" "$T/rpms" "$T/repo"
echo "%_dbpath $T/build/rpmdb" > "$HOME/.rpmmacros"

for rel in 1 2; do
    spec="$T/build/kernel-$rel.spec"
    cat > "$spec" <<SPEC
Name: kernel
Version: 5.14.0
Release: $rel
Summary: A kernel
License: MIT
BuildArch: noarch
%description
A kernel (Patchfleet test bed).
%install
mkdir -p %{buildroot}/boot
echo 'kernel 5.14.0-$rel' > %{buildroot}/boot/vmlinuz-5.14.0-$rel
%post -p <lua>
posix.mkdir("/var")
posix.mkdir("/var/run")
local f = io.open("/var/run/reboot-required", "a")
if f then f:close() end
local p = io.open("/var/run/reboot-required.pkgs", "a")
if p then p:write("kernel\n") p:close() end
%files
/boot/vmlinuz-5.14.0-$rel
SPEC
    rpmbuild -bb --quiet \
        --define "_topdir $T/build/top" --define "_rpmdir $T/rpms" \
        --define "_dbpath $T/build/rpmdb" --define "_tmppath $T/build/tmp" \
        --define "_buildhost testbed" --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" --define "_binary_payload w9.gzdio" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        "$spec" >"$T/build/rpmbuild.log" 2>&1 || { cat "$T/build/rpmbuild.log" >&2; exit 4; }
done
for rel in 1 2; do
    spec="$T/build/tb-kmod-$rel.spec"
    {
        echo "Name: tb-kmod"
        echo "Version: 1.$((rel - 1))"
        echo "Release: 1"
        echo "Summary: A kernel module"
        echo "License: MIT"
        echo "BuildArch: noarch"
        [ "$rel" = 1 ] || echo "Requires: kernel >= 5.14.0-2"
        echo "%description"
        echo "A kernel module (Patchfleet test bed)."
        echo "%install"
        echo "mkdir -p %{buildroot}/usr/share/tb-kmod"
        echo "echo 'tb-kmod 1.$((rel - 1))-1' > %{buildroot}/usr/share/tb-kmod/VERSION"
        echo "%files"
        echo "/usr/share/tb-kmod/VERSION"
    } > "$spec"
    rpmbuild -bb --quiet \
        --define "_topdir $T/build/top" --define "_rpmdir $T/rpms" \
        --define "_dbpath $T/build/rpmdb" --define "_tmppath $T/build/tmp" \
        --define "_buildhost testbed" --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" --define "_binary_payload w9.gzdio" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        "$spec" >"$T/build/rpmbuild.log" 2>&1 || { cat "$T/build/rpmbuild.log" >&2; exit 4; }
done
cp "$T"/rpms/*.rpm "$T/repo/"
touch -d "@$SOURCE_DATE_EPOCH" "$T"/repo/*.rpm
createrepo_c --quiet --revision 1700000000 --set-timestamp-to-revision --no-database \
    --general-compress-type=gz "$T/repo" >/dev/null
