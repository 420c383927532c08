"""CI check: the hashed locks pin every dependency of pyproject.toml within its range, every pin
carries hashes, and no package-registry host name appears in the repository's tracked files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("requirements.lock", "requirements-cpu.lock")
# host names assembled from parts so this file does not contain them itself
FORBIDDEN_HOSTS = [
    "pypi" + ".org",
    "pythonhosted" + ".org",
    "registry." + "npmjs",
    "deb." + "debian.org",
    "download." + "pytorch.org",
    "huggingface" + ".co/",
]


def read_pins(lock: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    lines = lock.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", line)
        if m:
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if "--hash=sha256:" not in nxt:
                sys.exit(f"error: {lock.name}: {m.group(1)} has no --hash line; regenerate with: bash tools/lock.sh")
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    for name in LOCKS:
        lock = ROOT / name
        if not lock.is_file():
            sys.exit(f"error: {name} missing; generate it with: bash tools/lock.sh")
        pins = read_pins(lock)
        for req in wanted:
            key = req.name.lower().replace("_", "-")
            if key not in pins:
                sys.exit(f"error: {name} does not pin {req.name} (pyproject.toml); regenerate with: bash tools/lock.sh")
            if not req.specifier.contains(Version(pins[key]), prereleases=True):
                sys.exit(f"error: {name} pins {req.name}=={pins[key]} outside {req.specifier}; run: bash tools/lock.sh")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        path = ROOT / rel
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        text = path.read_text(errors="ignore").lower()
        for host in FORBIDDEN_HOSTS:
            if host in text:
                sys.exit(f"error: {rel} names the registry host {host!r}; remove it (no index hosts in the repo)")
    print(f"locks ok: {', '.join(LOCKS)} pin all {len(wanted)} requirements with hashes; no registry hosts")


if __name__ == "__main__":
    main()
