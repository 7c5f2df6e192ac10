#!/bin/sh
# Builds a small real rpm-md repository (testbeds.md B) under $1 (a fresh,
# absolute folder):
#   $1/rpms        six tiny reproducible noarch rpms, two versions each:
#                  tb-hello 1.0-1/1.1-1, tb-tool 1:2.0-1/1:2.1-1 (epoch 1),
#                  tb-kernel 1.0-1/1.1-1
#   $1/repo        createrepo_c over all six (revision 1700000000, gzip),
#                  plus updateinfo.xml (xz) added with modifyrepo_c:
#                  TBSA-2023:0001 security/Important for tb-kernel 1.1-1
#                  (CVE-2023-0001, bugzilla 1001, reboot suggested) and
#                  TBBA-2023:0002 bugfix for tb-tool 1:2.1-1; tb-hello 1.1-1
#                  is in no notice
#   $1/root        a throw-away root whose rpm database ($1/root/var/lib/rpm)
#                  holds the three 1.x/2.0 rpms (--justdb: no files, no scripts)
# Nothing outside $1 is written: HOME points into $1, and every rpm and
# rpmbuild call gets an explicit database path inside $1.
# Needs rpm, rpmbuild (Debian: rpm) and createrepo_c, modifyrepo_c
# (Debian: createrepo-c).
set -eu
T=${1:?usage: make-rpm-repo.sh OUT_DIR}
case "$T" in /*) ;; *) echo "make-rpm-repo.sh: absolute path required" >&2; exit 2 ;; esac
for tool in rpm rpmbuild createrepo_c modifyrepo_c xz; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-rpm-repo.sh: $tool not found" >&2; exit 3; }
done
export SOURCE_DATE_EPOCH=1700000000
export HOME="$T/home" TZ=UTC LC_ALL=C
mkdir -p "$HOME" "$T/build" "$T/rpms" "$T/repo" "$T/root"
# Debian's rpm keeps its database under ~; keep every database inside $T.
echo "%_dbpath $T/build/rpmdb" > "$HOME/.rpmmacros"

# --- rpms -------------------------------------------------------------------
mkrpm() { # name epoch version release summary
    spec="$T/build/$1-$3-$4.spec"
    {
        echo "Name: $1"
        [ "$2" = 0 ] || echo "Epoch: $2"
        echo "Version: $3"
        echo "Release: $4"
        echo "Summary: $5"
        echo "License: MIT"
        echo "BuildArch: noarch"
        echo "%description"
        echo "$5 (Patchfleet test bed)."
        echo "%install"
        echo "mkdir -p %{buildroot}/usr/share/$1"
        echo "echo '$1 $3-$4' > %{buildroot}/usr/share/$1/VERSION"
        echo "%files"
        echo "/usr/share/$1/VERSION"
    } > "$spec"
    rpmbuild -bb --quiet \
        --define "_topdir $T/build/top" --define "_rpmdir $T/rpms" \
        --define "_dbpath $T/build/rpmdb" --define "_tmppath $T/build/tmp" \
        --define "_buildhost testbed" --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" --define "_binary_payload w9.gzdio" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        "$spec" >"$T/build/rpmbuild.log" 2>&1 || { cat "$T/build/rpmbuild.log" >&2; exit 4; }
}
mkdir -p "$T/build/tmp"
mkrpm tb-hello 0 1.0 1 "Hello"
mkrpm tb-hello 0 1.1 1 "Hello"
mkrpm tb-tool 1 2.0 1 "A tool"
mkrpm tb-tool 1 2.1 1 "A tool"
mkrpm tb-kernel 0 1.0 1 "A kernel"
mkrpm tb-kernel 0 1.1 1 "A kernel"

# --- repository -------------------------------------------------------------
cp "$T"/rpms/*.rpm "$T/repo/"
# primary.xml records each file's mtime (<time file=…>): fix it.
touch -d "@$SOURCE_DATE_EPOCH" "$T"/repo/*.rpm
createrepo_c --quiet --revision 1700000000 --set-timestamp-to-revision --no-database \
    --general-compress-type=gz "$T/repo" >/dev/null

cat > "$T/build/updateinfo.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@testbed.invalid" status="final" type="security" version="2">
    <id>TBSA-2023:0001</id>
    <title>Important: tb-kernel security update</title>
    <issued date="2023-11-14 00:00:00"/>
    <updated date="2023-11-15 12:30:00"/>
    <rights>Copyright 2023 TestBed</rights>
    <release>TestBed 9</release>
    <pushcount>1</pushcount>
    <severity>Important</severity>
    <summary>An update for tb-kernel is now available.</summary>
    <description>Fixes CVE-2023-0001 &amp; friends.</description>
    <solution>Update and reboot.</solution>
    <references>
      <reference href="https://cve.example.invalid/CVE-2023-0001" id="CVE-2023-0001" title="CVE-2023-0001" type="cve"/>
      <reference href="https://bugzilla.example.invalid/1001" id="1001" title="tb-kernel: a flaw" type="bugzilla"/>
      <reference href="https://errata.example.invalid/TBSA-2023:0001" id="TBSA-2023:0001" title="TBSA-2023:0001" type="self"/>
    </references>
    <pkglist>
      <collection short="testbed-9">
        <name>TestBed 9</name>
        <package name="tb-kernel" version="1.1" release="1" epoch="0" arch="noarch" src="tb-kernel-1.1-1.src.rpm">
          <filename>tb-kernel-1.1-1.noarch.rpm</filename>
          <reboot_suggested>True</reboot_suggested>
        </package>
        <package name="tb-kernel" version="1.1" release="1" epoch="0" arch="src" src="tb-kernel-1.1-1.src.rpm">
          <filename>tb-kernel-1.1-1.src.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
  <update from="bugs@testbed.invalid" status="final" type="bugfix" version="2">
    <id>TBBA-2023:0002</id>
    <title>tb-tool bug fix update</title>
    <issued date="2023-11-14 00:00:00"/>
    <updated date="2023-11-14 00:00:00"/>
    <summary>tb-tool 2.1 fixes a crash.</summary>
    <references>
      <reference href="https://bugzilla.example.invalid/1002" id="1002" title="tb-tool crashes" type="bugzilla"/>
    </references>
    <pkglist>
      <collection short="testbed-9">
        <package name="tb-tool" version="2.1" release="1" epoch="1" arch="noarch" src="tb-tool-2.1-1.src.rpm">
          <filename>tb-tool-2.1-1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
XML
modifyrepo_c --mdtype=updateinfo --compress-type=xz "$T/build/updateinfo.xml" "$T/repo/repodata" >/dev/null
# modifyrepo_c stamps the current time: make repomd.xml reproducible.
sed -i '/<data type="updateinfo">/,/<\/data>/ s|<timestamp>[0-9]*</timestamp>|<timestamp>1700000000</timestamp>|' \
    "$T/repo/repodata/repomd.xml"

# --- installed: v1 into a throw-away database --------------------------------
# (Debian's rpm warns on stderr that it should not install packages.)
rpm --root "$T/root" --dbpath /var/lib/rpm --initdb
rpm --root "$T/root" --dbpath /var/lib/rpm -i --justdb --nodeps --noscripts --notriggers \
    --nosignature --nodigest --ignorearch --ignoreos \
    "$T/rpms/tb-hello-1.0-1.noarch.rpm" "$T/rpms/tb-tool-2.0-1.noarch.rpm" \
    "$T/rpms/tb-kernel-1.0-1.noarch.rpm" 2>"$T/build/rpm-install.log" \
    || { cat "$T/build/rpm-install.log" >&2; exit 5; }
