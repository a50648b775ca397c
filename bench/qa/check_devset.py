#!/usr/bin/env python
"""Validate a QA dev set (bench/qa/*.jsonl) against the HTML docs it was written for.

Usage: python bench/qa/check_devset.py DOCS_DIR [--devset PATH] [--exclude DIR]...
                                       [--skip-scan REGEX] [-v]

DOCS_DIR is a folder of HTML pages (a Sphinx or asciidoc build). Without --devset the set is
chosen by the folder's name (DEVSETS): ``python-3.11`` -> python311_dev.jsonl, ``git`` ->
git_dev.jsonl. Folders named by --exclude (default: Sphinx's ``_sources``, its reST copies of
every page) are never accepted as gold sources and are not scanned.

Checks (any failure -> exit status 1):
  * every line is a JSON object with exactly the keys id, question,
    gold_sources, answers, unanswerable and the right types;
  * ids are unique and non-empty, questions are unique;
  * at least 60 questions (or --min-questions), at least 8 of them unanswerable;
  * answerable questions have 1-8 gold sources (more than the first few came from pooled
    judging, see pooled_judgments.jsonl) and 1-4 short answers;
    unanswerable questions have no gold sources and no answers;
  * every gold source is an existing .html file under DOCS_DIR (not in an excluded folder);
  * for every answerable question, EVERY gold source page contains at least
    one of the acceptable answers (case-insensitive substring of the page's
    visible text, script/style stripped, whitespace collapsed).
Warnings (do not fail): key terms of an unanswerable question that occur in
the docs, so a human can double-check that the docs really do not answer it. A term
found in at least half of the scanned pages (e.g. "Python" in the Python docs, "Git" in
the Git docs) is what the whole corpus is about, so it is not reported.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cache
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

HERE = Path(__file__).resolve().parent
# The dev set of each known docs folder, by the folder's name (the names
# scripts/fetch-debian-docs.sh gives them).
DEVSETS = {
    "python-3.11": HERE / "python311_dev.jsonl",
    "git": HERE / "git_dev.jsonl",
    "apache-2.4": HERE / "apache_dev.jsonl",
    "nodejs-18": HERE / "nodejs_dev.jsonl",
}
# Sphinx copies every page's reST source to _sources/: the same text again, never gold.
DEFAULT_EXCLUDE = ["_sources"]
KEYS = {"id": str, "question": str, "gold_sources": list, "answers": list, "unanswerable": bool}
MIN_QUESTIONS = 60
MIN_UNANSWERABLE = 8
MAX_ANSWER_LEN = 40
# Pages that merely list every term (Sphinx's indexes, search page) are ignored in
# the unanswerable-term scan.
SKIP_SCAN = r"^(genindex|py-modindex|search|contents)"
# A key term in at least this share of the scanned pages is corpus-wide: not a warning.
CORPUS_WIDE_SHARE = 0.5

STOPWORDS = set(
    """a an and are as at be by can could do does for from get how i if in into is it its
    me my of on or should so that the their then this to use using what when where which
    who why will with without would you your""".split()
)


# Block-level elements get a trailing space so that words of adjacent blocks do
# not run together; inline elements (e.g. the <span>s of highlighted code) are
# joined without a separator so code reads as written (``{math.pi:.3f}``).
BLOCKS = (
    "address, article, aside, blockquote, br, caption, dd, div, dl, dt, figcaption, "
    "figure, footer, form, h1, h2, h3, h4, h5, h6, header, hr, li, nav, ol, p, pre, "
    "section, table, tbody, td, tfoot, th, thead, tr, ul"
)


GENERIC = {"us", "i"}


def visible_text(path: Path) -> str:
    """Visible text of a page (script/style stripped), whitespace collapsed."""
    tree = LexborHTMLParser(path.read_text(encoding="utf-8", errors="replace"))
    for node in tree.css("script, style"):
        node.decompose()
    for node in tree.css(BLOCKS):
        node.insert_after(" ")
    root = tree.body or tree.root
    text = root.text(separator="") if root is not None else ""
    return " ".join(text.split())


def is_identifier(term: str) -> bool:
    """Dotted, underscored, @, =, CamelCase, or a long option (``--comment``)."""
    return term.startswith("--") or bool(re.search(r"[._@=]|[a-z][A-Z]", term))


def key_terms(question: str) -> list[str]:
    """Distinctive terms of a question: identifiers (is_identifier) and proper
    nouns / acronyms (capitalised, not sentence-initial), minus pronouns that
    read as proper nouns (GENERIC)."""
    terms = []
    words = re.findall(r"(?:--)?[@\w][\w.@=()-]*", question)
    for i, w in enumerate(words):
        w = w.rstrip(".()-")
        if not w or w.lower() in STOPWORDS or w.lower() in GENERIC:
            continue
        ident = is_identifier(w)
        proper = i > 0 and w[0].isupper()
        if ident or proper:
            terms.append(w)
    return terms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs_dir", help="the HTML docs folder the dev set was written for")
    ap.add_argument(
        "--devset",
        help="the dev set (default: by the docs folder's name: "
        + ", ".join(f"{k} -> {v.name}" for k, v in DEVSETS.items())
        + ")",
    )
    ap.add_argument(
        "--exclude",
        action="append",
        metavar="DIR",
        help="a folder name whose pages are never gold and not scanned (repeatable; "
        f"default: {' '.join(DEFAULT_EXCLUDE)})",
    )
    ap.add_argument(
        "--skip-scan",
        default=SKIP_SCAN,
        metavar="REGEX",
        help="pages (relative paths) left out of the unanswerable-term scan "
        f"(default: {SKIP_SCAN})",
    )
    ap.add_argument(
        "--min-questions",
        type=int,
        default=MIN_QUESTIONS,
        metavar="N",
        help=f"the fewest questions a set may have (default: {MIN_QUESTIONS}; the check sets "
        "over the Apache and Node.js docs have 48)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print a line per question")
    args = ap.parse_args(argv)

    docs = Path(args.docs_dir)
    if not docs.is_dir():
        print(f"FAIL: docs dir {docs} not found")
        return 1
    if args.devset is None and docs.resolve().name not in DEVSETS:
        print(f"FAIL: no default dev set for docs folder {docs.resolve().name!r}; give --devset")
        return 1
    devset = Path(args.devset) if args.devset else DEVSETS[docs.resolve().name]
    if not devset.is_file():
        print(f"FAIL: dev set {devset} not found")
        return 1
    excluded = set(args.exclude or DEFAULT_EXCLUDE)
    skip_scan = re.compile(args.skip_scan)

    errors: list[str] = []
    warnings: list[str] = []

    @cache
    def raw_text(rel: str) -> str:
        return visible_text(docs / rel)

    def page_text(rel: str) -> str:
        return raw_text(rel).lower()

    rows = []
    for lineno, line in enumerate(devset.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {lineno}: blank line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {lineno}: invalid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            errors.append(f"line {lineno}: not a JSON object")
            continue
        if set(obj) != set(KEYS):
            errors.append(f"line {lineno}: keys {sorted(obj)} != {sorted(KEYS)}")
            continue
        bad = [k for k, t in KEYS.items() if not isinstance(obj[k], t)]
        if bad:
            errors.append(f"line {lineno}: wrong type for {bad}")
            continue
        if not all(isinstance(x, str) and x.strip() for x in obj["gold_sources"] + obj["answers"]):
            errors.append(f"line {lineno}: gold_sources/answers must be non-empty strings")
            continue
        rows.append((lineno, obj))

    ids = [o["id"] for _, o in rows]
    dup_ids = sorted({i for i in ids if ids.count(i) > 1})
    if dup_ids:
        errors.append(f"duplicate ids: {dup_ids}")
    if any(not i.strip() for i in ids):
        errors.append("empty id")
    qs = [o["question"].strip().lower() for _, o in rows]
    dup_qs = sorted({q for q in qs if qs.count(q) > 1})
    if dup_qs:
        errors.append(f"duplicate questions: {dup_qs}")

    n_unans = sum(o["unanswerable"] for _, o in rows)
    if len(rows) < args.min_questions:
        errors.append(f"only {len(rows)} valid questions (< {args.min_questions})")
    if n_unans < MIN_UNANSWERABLE:
        errors.append(f"only {n_unans} unanswerable questions (< {MIN_UNANSWERABLE})")

    pages_used: set[str] = set()
    for _lineno, o in rows:
        qid, golds, answers = o["id"], o["gold_sources"], o["answers"]
        if not o["question"].strip():
            errors.append(f"{qid}: empty question")
        if o["unanswerable"]:
            if golds or answers:
                errors.append(f"{qid}: unanswerable but has gold_sources/answers")
            continue
        if not 1 <= len(answers) <= 4:
            errors.append(f"{qid}: needs 1-4 answers, has {len(answers)}")
        if not 1 <= len(golds) <= 8:
            errors.append(f"{qid}: needs 1-8 gold sources, has {len(golds)}")
        for a in answers:
            if len(a) > MAX_ANSWER_LEN:
                errors.append(f"{qid}: answer too long for substring matching: {a!r}")
        hit_any = False
        for g in golds:
            if (
                excluded.intersection(Path(g).parts)
                or not g.endswith(".html")
                or Path(g).is_absolute()
                or ".." in g
            ):
                errors.append(
                    f"{qid}: gold source {g!r} must be a relative .html path outside "
                    f"{', '.join(sorted(excluded))}"
                )
                continue
            if not (docs / g).is_file():
                errors.append(f"{qid}: gold source {g} does not exist")
                continue
            pages_used.add(g)
            text = page_text(g)
            found = [a for a in answers if a.lower() in text]
            if found:
                hit_any = True
                if args.verbose:
                    print(f"ok   {qid} {g}: {found}")
            else:
                errors.append(f"{qid}: none of {answers} found in gold source {g}")
        if golds and not hit_any:
            errors.append(f"{qid}: no gold source contains any acceptable answer")

    # Unanswerable questions: warn when their key terms appear in the docs.
    unans = [o for _, o in rows if o["unanswerable"]]
    corpus_wide: set[str] = set()
    if unans:
        pages = sorted(
            p.relative_to(docs).as_posix()
            for p in docs.rglob("*.html")
            if not excluded.intersection(p.relative_to(docs).parts)
            and not skip_scan.match(p.relative_to(docs).as_posix())
        )
        for o in unans:
            terms = key_terms(o["question"])
            if not terms:
                warnings.append(f"{o['id']}: no key terms extracted from {o['question']!r}")
                continue
            counts = {}
            for t in terms:
                # identifiers: case-insensitive; proper nouns/acronyms: case-sensitive;
                # both on word boundaries (so 'Rust' does not match 'trust', and an
                # option '--comment' does not match '--comment-lines').
                ident = is_identifier(t)
                end = r"(?![\w-])" if t.startswith("--") else r"(?![\w])"
                pat = re.compile(r"(?<![\w.])" + re.escape(t) + end, re.I if ident else 0)
                hits = [p for p in pages if pat.search(raw_text(p))]
                if len(hits) >= CORPUS_WIDE_SHARE * len(pages):
                    corpus_wide.add(t)
                elif hits:
                    counts[t] = hits
            for t, hits in counts.items():
                warnings.append(
                    f"{o['id']}: term {t!r} occurs in {len(hits)} page(s), "
                    f"e.g. {', '.join(hits[:3])}"
                )
            if len(counts) >= 2:
                together = set.intersection(*(set(h) for h in counts.values()))
                if together:
                    warnings.append(
                        f"{o['id']}: terms {sorted(counts)} co-occur in "
                        f"{sorted(together)[:3]} - check by hand"
                    )

    n_ans = len(rows) - n_unans
    print(
        f"questions: {len(rows)} (answerable {n_ans}, unanswerable {n_unans}); "
        f"distinct gold pages: {len(pages_used)}"
    )
    if unans and corpus_wide and args.verbose:
        print(f"corpus-wide terms, not reported: {sorted(corpus_wide)}")
    for w in warnings:
        print(f"WARN {w}")
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        print(f"{len(errors)} error(s)")
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
