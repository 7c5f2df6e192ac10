#!/bin/sh
# Builds a zypper root (testbeds.md C) over a repository made by
# ../make-rpm-repo.sh:
#   make-zypper-root.sh REPO_DIR OUT_DIR
#   OUT_DIR/home     HOME for rpm and zypper: .rpmmacros with %_dbpath
#                    /var/lib/rpm (Debian's rpm defaults to ~/.rpmdb, and
#                    libzypp's librpm reads these macros)
#   OUT_DIR/root     the root:
#     etc/os-release              SLES 15 SP5
#     etc/zypp/needreboot         tb-kernel, as SLES lists its kernels there:
#                                 libzypp writes run/reboot-needed after
#                                 installing it
#     etc/zypp/repos.d/tb.repo    alias tb, baseurl file://REPO_DIR, no gpgcheck
#     etc/zypp/repos.d/off.repo   alias off, disabled (never read)
#     var/cache/zypp/raw/tb/      what `zypper refresh` cached (rpm-md)
#     var/lib/rpm                 tb-hello 1.0-1, tb-tool 1:2.0-1,
#                                 tb-kernel 1.0-1, installed by zypper
#     var/log/zypper.log          zypper's log (ZYPP_LOGFILE)
#     run/zypp.pid                libzypp's lock, left behind (stale: free)
# Nothing outside OUT_DIR is written: zypper always gets --root (without
# it, it takes the host's /run/zypp.pid) and ZYPP_LOGFILE (--root does not
# move the log from the host's /var/log/zypper.log).
# Needs zypper (Debian: zypper) and rpm.
set -eu
REPO=${1:?usage: make-zypper-root.sh REPO_DIR OUT_DIR}
T=${2:?usage: make-zypper-root.sh REPO_DIR OUT_DIR}
for p in "$REPO" "$T"; do
    case "$p" in /*) ;; *) echo "make-zypper-root.sh: absolute paths required" >&2; exit 2 ;; esac
done
for tool in zypper rpm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-zypper-root.sh: $tool not found" >&2; exit 3; }
done
R="$T/root"
export HOME="$T/home" TZ=UTC LC_ALL=C.UTF-8 LANG=C.UTF-8 ZYPP_LOGFILE="$R/var/log/zypper.log"
mkdir -p "$HOME" "$R/etc/zypp/repos.d" "$R/var/lib/rpm" "$R/var/log"
echo "%_dbpath /var/lib/rpm" > "$HOME/.rpmmacros"
printf '%s\n' 'NAME="SLES"' 'VERSION="15-SP5"' 'VERSION_ID="15.5"' 'ID="sles"' \
    'ID_LIKE="suse"' 'PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"' > "$R/etc/os-release"
echo tb-kernel > "$R/etc/zypp/needreboot"
rpm --root "$R" --dbpath /var/lib/rpm --initdb
zy() { zypper --root "$R" --non-interactive --no-color "$@"; }
{
    zy addrepo --no-gpgcheck "file://$REPO" tb
    zy addrepo --disable --no-gpgcheck file:///nonexistent off
    zy refresh
} >"$T/setup.log" 2>&1 || { cat "$T/setup.log" >&2; exit 4; }
zy install --no-recommends tb-hello=1.0-1 tb-tool=1:2.0-1 tb-kernel=1.0-1 >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; exit 5; }
# Installing tb-kernel 1.0-1 made libzypp flag a reboot: the node "rebooted"
# since (a reboot clears /run).
rm -f "$R/run/reboot-needed"
