#!/bin/sh
# Captures real `zypper --xmlout` outputs (testbeds.md C) into $1 (an
# absolute folder, created if missing):
#   list-patches.xml      zypper --xmlout list-patches --all
#   search.xml            zypper --xmlout search -s (every solvable: the
#                         tb-* packages, installed and not, and the patches)
#   info-patch.txt        zypper info -t patch TBSA-2023:0001 (plain text,
#                         for reference: where the packages of a patch are
#                         named, as Conflicts; list-patches does not name them)
# The temporary folder's path is replaced by /TESTBED in the outputs, so
# they are reproducible.
# The repository is built by ../make-rpm-repo.sh in a temporary folder
# (removed on exit); zypper only ever runs with --root inside it, so this
# machine's /run/zypp.pid, /etc/zypp/repos.d and rpm database are untouched;
# ZYPP_LOGFILE keeps zypper's log out of the host's /var/log/zypper.log
# (which --root does not move).
# Needs zypper (Debian: zypper) and make-rpm-repo.sh's tools.
set -eu
OUT=${1:?usage: capture.sh OUT_DIR}
case "$OUT" in /*) ;; *) echo "capture.sh: absolute path required" >&2; exit 2 ;; esac
command -v zypper >/dev/null 2>&1 || { echo "capture.sh: zypper not found (Debian: apt-get install zypper)" >&2; exit 3; }
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/zypper-capture.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
"$HERE/../make-rpm-repo.sh" "$T/tb"
mkdir -p "$OUT"
export HOME="$T/tb/home" TZ=UTC LC_ALL=C.UTF-8 LANG=C.UTF-8 ZYPP_LOGFILE="$T/zypper.log"
ROOT="$T/tb/root"
zy() { zypper --root "$ROOT" --non-interactive --no-color "$@"; }
zy addrepo --no-gpgcheck "file://$T/tb/repo" tb >"$T/log" 2>&1 || { cat "$T/log" >&2; exit 4; }
zy refresh >"$T/log" 2>&1 || { cat "$T/log" >&2; exit 4; }
# list-patches exits 0 here; patch-check style codes (100/101) are not used.
zy --xmlout list-patches --all >"$OUT/list-patches.xml" 2>"$T/log" || { cat "$T/log" >&2; exit 5; }
zy --xmlout search -s >"$OUT/search.xml" 2>"$T/log" || { cat "$T/log" >&2; exit 5; }
zy info -t patch TBSA-2023:0001 >"$OUT/info-patch.txt" 2>"$T/log" || { cat "$T/log" >&2; exit 5; }
sed -i "s|$T|/TESTBED|g" "$OUT/list-patches.xml" "$OUT/search.xml" "$OUT/info-patch.txt"
