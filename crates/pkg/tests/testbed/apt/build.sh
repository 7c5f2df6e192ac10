#!/bin/sh
# Builds the APT test bed of testbeds.md A0/A1 under $1 (a fresh folder):
#   $1/debs   tiny reproducible debs tb-hello, tb-tool, tb-kernel (v1 and v2)
#   $1/repo   a dists/ repository: testbed (v1), testbed-security (tb-hello,
#             tb-kernel v2), testbed-updates (tb-tool v2), Release by
#             apt-ftparchive with a fixed Date, no signature ([trusted=yes])
#   $1/root   an APT_CONFIG root ($1/root/apt.conf, dpkg --root,
#             --force-script-chrootless) with v1 of all three installed and a
#             Debian 12 etc/os-release
# Nothing outside $1 is written: maintainer scripts write under $DPKG_ROOT
# only, and do nothing at all when it is unset.
set -eu
T=$1
case "$T" in /*) ;; *) echo "build.sh: absolute path required" >&2; exit 2 ;; esac
for tool in dpkg-deb dpkg-scanpackages apt-ftparchive apt-get gzip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: $tool not found" >&2; exit 3; }
done
export SOURCE_DATE_EPOCH=1700000000
DATE="Tue, 14 Nov 2023 22:13:20 UTC"
ARCH=$(dpkg --print-architecture)

mkdir -p "$T/debs" "$T/repo/pool/main"

# --- debs --------------------------------------------------------------------
mkdeb() { # name version description [postinst]
    d="$T/build/$1_$2"
    mkdir -p "$d/DEBIAN" "$d/usr/share/$1"
    echo "$1 $2" > "$d/usr/share/$1/VERSION"
    cat > "$d/DEBIAN/control" <<CTL
Package: $1
Version: $2
Architecture: all
Maintainer: TestBed <tb@example.invalid>
Priority: optional
Section: misc
Description: $3
CTL
    if [ -n "${4:-}" ]; then
        printf '%s\n' "$4" > "$d/DEBIAN/postinst"
        chmod 0755 "$d/DEBIAN/postinst"
    fi
    find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$d" "$T/repo/pool/main/$1_$2_all.deb" >/dev/null
}
REBOOT='#!/bin/sh
set -e
# Only ever inside the dpkg root: never the host.
if [ "$1" = configure ] && [ -n "${DPKG_ROOT:-}" ]; then
    mkdir -p "$DPKG_ROOT/var/run"
    touch "$DPKG_ROOT/var/run/reboot-required"
    echo "$DPKG_MAINTSCRIPT_PACKAGE" >> "$DPKG_ROOT/var/run/reboot-required.pkgs"
fi'
mkdeb tb-hello 1.0-1 "test bed hello"
mkdeb tb-hello 1.1-1 "test bed hello"
mkdeb tb-tool 2.0-1 "test bed tool"
mkdeb tb-tool 2.1-1 "test bed tool"
mkdeb tb-kernel 1.0-1 "test bed kernel" "$REBOOT"
mkdeb tb-kernel 1.1-1 "test bed kernel" "$REBOOT"

# --- repository ----------------------------------------------------------------
cd "$T/repo"
dpkg-scanpackages -m pool/main /dev/null 2>/dev/null > "$T/all.Packages"
suite() { # suite label codename suite-field "name_version ..."
    dir="dists/$1/main/binary-$ARCH"
    mkdir -p "$dir"
    : > "$dir/Packages"
    for nv in $5; do
        awk -v f="pool/main/${nv}_all.deb" 'BEGIN{RS=""; ORS="\n\n"} index($0, "Filename: " f "\n") {print}' \
            "$T/all.Packages" >> "$dir/Packages"
    done
    gzip -9n -k "$dir/Packages"
    apt-ftparchive \
        -o APT::FTPArchive::Release::Origin=TestBed \
        -o APT::FTPArchive::Release::Label="$2" \
        -o APT::FTPArchive::Release::Suite="$4" \
        -o APT::FTPArchive::Release::Codename="$3" \
        -o APT::FTPArchive::Release::Version=1.0 \
        -o APT::FTPArchive::Release::Architectures="$ARCH all" \
        -o APT::FTPArchive::Release::Components=main \
        -o APT::FTPArchive::Release::Date="$DATE" \
        release "dists/$1" > "$T/Release.tmp"
    mv "$T/Release.tmp" "dists/$1/Release"
}
suite testbed TestBed testbed stable "tb-hello_1.0-1 tb-tool_2.0-1 tb-kernel_1.0-1"
suite testbed-security TestBed-Security testbed-security stable-security "tb-hello_1.1-1 tb-kernel_1.1-1"
suite testbed-updates TestBed testbed-updates stable-updates "tb-tool_2.1-1"

# --- root ----------------------------------------------------------------------
R="$T/root"
mkdir -p "$R/etc/apt/apt.conf.d" "$R/etc/apt/preferences.d" "$R/etc/apt/sources.list.d" \
    "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" \
    "$R/var/lib/apt/lists/partial" "$R/var/cache/apt/archives/partial" \
    "$R/var/log/apt" "$R/var/run"
: > "$R/var/lib/dpkg/status"
cat > "$R/apt.conf" <<CONF
Dir "$R/";
Dir::State::status "$R/var/lib/dpkg/status";
APT::Architecture "$ARCH";
Acquire::Languages "none";
APT::Sandbox::User "root";
DPkg::Options { "--root=$R"; "--admindir=$R/var/lib/dpkg"; "--force-script-chrootless"; "--log=$R/var/log/dpkg.log"; };
CONF
cat > "$R/etc/apt/sources.list.d/testbed.sources" <<SRC
Types: deb
URIs: file:$T/repo
Suites: testbed testbed-security testbed-updates
Components: main
Trusted: yes
SRC
cat > "$R/etc/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
OS
export APT_CONFIG="$R/apt.conf"
apt-get -q update >/dev/null
apt-get -q install -y tb-hello=1.0-1 tb-tool=2.0-1 tb-kernel=1.0-1 >/dev/null
