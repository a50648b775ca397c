#!/usr/bin/env bash
# Unpacks five real documentation folders from Debian packages, for benchmarks and the QA dev sets:
#   scripts/fetch-debian-docs.sh DEST   -> DEST/python-3.11    (Python 3.11 HTML docs, with Sphinx's
#                                                                reST copies under _sources/)
#                                          DEST/postgresql-15  (PostgreSQL 15 HTML docs)
#                                          DEST/git            (Git 2.39 HTML docs from git-doc: man
#                                                                pages, guides, user manual, howto/,
#                                                                technical/; HTML pages only)
#                                          DEST/apache-2.4     (Apache HTTP Server 2.4 manual from
#                                                                apache2-doc, English pages only)
#                                          DEST/nodejs-18      (Node.js 18 API docs from nodejs-doc,
#                                                                one page per module; all.html, every
#                                                                page again on one, is left out)
# git-doc also ships the asciidoc .txt sources of every page and an index.html symlink to git.html;
# only the regular *.html files are copied, so no page is in the folder twice.
# Needs apt-get and dpkg (a Debian or Ubuntu system); runs `apt-get update` once if the download
# fails. Nothing is installed: the packages are downloaded into a temporary folder and unpacked.
set -euo pipefail
dest=${1:?usage: scripts/fetch-debian-docs.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkgs=(python3.11-doc postgresql-doc-15 git-doc apache2-doc nodejs-doc)
( cd "$work" && apt-get download "${pkgs[@]}" >/dev/null 2>&1 ) || {
  apt-get update >/dev/null && ( cd "$work" && apt-get download "${pkgs[@]}" >/dev/null ); }
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
rm -rf "$dest/python-3.11" "$dest/postgresql-15" "$dest/git" "$dest/apache-2.4" "$dest/nodejs-18"
cp -r "$work/x/usr/share/doc/python3.11/html" "$dest/python-3.11"
cp -r "$work/x/usr/share/doc/postgresql-doc-15/html" "$dest/postgresql-15"
mkdir -p "$dest/git"
( cd "$work/x/usr/share/doc/git-doc" && find . -type f -name '*.html' -exec cp --parents {} "$dest/git" \; )
mkdir -p "$dest/apache-2.4" "$dest/nodejs-18"
( cd "$work/x/usr/share/doc/apache2-doc/manual/en" && find . -type f -name '*.html' -exec cp --parents {} "$dest/apache-2.4" \; )
( cd "$work/x/usr/share/doc/nodejs/api" && find . -maxdepth 1 -type f -name '*.html' ! -name all.html -exec cp {} "$dest/nodejs-18" \; )
echo "python-3.11: $(find "$dest/python-3.11" -name '*.html' | wc -l) HTML pages"
echo "postgresql-15: $(find "$dest/postgresql-15" -name '*.html' | wc -l) HTML pages"
echo "git: $(find "$dest/git" -name '*.html' | wc -l) HTML pages"
echo "apache-2.4: $(find "$dest/apache-2.4" -name '*.html' | wc -l) HTML pages"
echo "nodejs-18: $(find "$dest/nodejs-18" -name '*.html' | wc -l) HTML pages"
