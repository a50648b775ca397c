#!/usr/bin/env bash
# Unpacks two real documentation folders from Debian packages, for benchmarks and the QA dev set:
#   scripts/fetch-debian-docs.sh DEST   -> DEST/python-3.11    (Python 3.11 HTML docs, with Sphinx's
#                                                                reST copies under _sources/)
#                                          DEST/postgresql-15  (PostgreSQL 15 HTML docs)
# Needs apt-get and dpkg (a Debian or Ubuntu system); runs `apt-get update` once if the download
# fails. Nothing is installed: the packages are downloaded into a temporary folder and unpacked.
set -euo pipefail
dest=${1:?usage: scripts/fetch-debian-docs.sh DEST}
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download python3.11-doc postgresql-doc-15 >/dev/null 2>&1 ) || {
  apt-get update >/dev/null && ( cd "$work" && apt-get download python3.11-doc postgresql-doc-15 >/dev/null ); }
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
rm -rf "$dest/python-3.11" "$dest/postgresql-15"
cp -r "$work/x/usr/share/doc/python3.11/html" "$dest/python-3.11"
cp -r "$work/x/usr/share/doc/postgresql-doc-15/html" "$dest/postgresql-15"
echo "python-3.11: $(find "$dest/python-3.11" -name '*.html' | wc -l) HTML pages"
echo "postgresql-15: $(find "$dest/postgresql-15" -name '*.html' | wc -l) HTML pages"
