#!/bin/sh
# Builds a dnf installroot (testbeds.md B) over a repository made by
# ../make-rpm-repo.sh:
#   make-dnf-root.sh REPO_DIR OUT_DIR [rhel|al2023]
#   OUT_DIR/home      HOME for rpm and dnf: .rpmmacros with %_dbpath /var/lib/rpm
#   OUT_DIR/root      the installroot:
#     etc/dnf/dnf.conf          reposdir, cachedir inside the root, keepcache,
#                               gpgcheck=0, no plugins
#     etc/yum.repos.d/tb.repo   [tb] baseurl=file://REPO_DIR
#     etc/yum.repos.d/off.repo  [off] a disabled repository (never read)
#     etc/os-release            RHEL 9.3 (default) or Amazon Linux 2023
#     var/cache/dnf/tb-<hash>/  what `dnf makecache` cached
#     var/lib/rpm               tb-hello 1.0-1, tb-tool 1:2.0-1, tb-kernel 1.0-1
#                               installed by `dnf install`
# Nothing outside OUT_DIR is written: every dnf call has --installroot, the
# root's --config, --noplugins (generate_completion_cache ignores the
# installroot and writes the host's /var/cache/dnf/packages.db).
# Needs dnf (Debian: dnf) and rpm.
set -eu
REPO=${1:?usage: make-dnf-root.sh REPO_DIR OUT_DIR [rhel|al2023]}
T=${2:?usage: make-dnf-root.sh REPO_DIR OUT_DIR [rhel|al2023]}
FLAVOUR=${3:-rhel}
for p in "$REPO" "$T"; do
    case "$p" in /*) ;; *) echo "make-dnf-root.sh: absolute paths required" >&2; exit 2 ;; esac
done
for tool in dnf rpm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-dnf-root.sh: $tool not found" >&2; exit 3; }
done
export HOME="$T/home" TZ=UTC LC_ALL=C
R="$T/root"
mkdir -p "$HOME" "$R/etc/dnf" "$R/etc/yum.repos.d" "$R/var/lib/rpm"
echo "%_dbpath /var/lib/rpm" > "$HOME/.rpmmacros"

cat > "$R/etc/dnf/dnf.conf" <<CONF
[main]
gpgcheck=0
installonly_limit=3
best=True
skip_if_unavailable=False
keepcache=True
plugins=0
reposdir=/etc/yum.repos.d
cachedir=/var/cache/dnf
CONF
cat > "$R/etc/yum.repos.d/tb.repo" <<REPO
[tb]
name=TestBed
baseurl=file://$REPO
gpgcheck=0
metadata_expire=0
REPO
cat > "$R/etc/yum.repos.d/off.repo" <<REPO
[off]
name=Disabled
baseurl=file:///nonexistent
enabled=0
REPO
case "$FLAVOUR" in
rhel) printf '%s\n' 'NAME="Red Hat Enterprise Linux"' 'ID="rhel"' 'ID_LIKE="fedora"' \
    'VERSION_ID="9.3"' 'PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"' > "$R/etc/os-release" ;;
al2023) printf '%s\n' 'NAME="Amazon Linux"' 'ID="amzn"' 'ID_LIKE="fedora"' \
    'VERSION_ID="2023"' 'PRETTY_NAME="Amazon Linux 2023"' > "$R/etc/os-release" ;;
*) echo "make-dnf-root.sh: unknown flavour $FLAVOUR" >&2; exit 2 ;;
esac

DNF="dnf -y -q --installroot=$R --config=$R/etc/dnf/dnf.conf --releasever=9 --noplugins"
rpm --root "$R" --dbpath /var/lib/rpm --initdb
$DNF makecache >"$T/makecache.log" 2>&1 || { cat "$T/makecache.log" >&2; exit 4; }
$DNF install tb-hello-1.0-1 tb-tool-2.0-1 tb-kernel-1.0-1 >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; exit 5; }
