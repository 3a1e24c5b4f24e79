"""Each peer's own virtualenv under ``bench/peers/.envs/<name>/``, built from ``requirements/<name>.txt``.

Peers pin dependencies that clash with Revloop's and with each other's (two Airbyte CDK majors, two
singer-python lines, an old ``stripe``), so each gets an interpreter of its own and nothing of theirs
enters Revloop's lock file.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

PEERS_DIR = Path(__file__).resolve().parent
ENVS_DIR = PEERS_DIR / ".envs"
REQUIREMENTS_DIR = PEERS_DIR / "requirements"
WRAPPERS_DIR = PEERS_DIR / "wrappers"
PYTHON_VERSION = "3.11"
_STAMP = ".requirements.sha256"


class PeerEnvironmentError(RuntimeError):
    """A peer's virtualenv could not be created."""


def env_dir(name: str) -> Path:
    return ENVS_DIR / name


def python_of(name: str) -> Path:
    """The interpreter of peer environment ``name``."""
    return env_dir(name) / "bin" / "python"


def executable_of(name: str, program: str) -> Path:
    """A console script installed in peer environment ``name``."""
    return env_dir(name) / "bin" / program


def _requirements(name: str) -> Path:
    path = REQUIREMENTS_DIR / f"{name}.txt"
    if not path.exists():
        raise PeerEnvironmentError(f"no pinned requirements for {name!r} at {path}")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_current(name: str) -> bool:
    """True when the environment exists and was built from the current requirements file."""
    stamp = env_dir(name) / _STAMP
    return python_of(name).exists() and stamp.exists() and stamp.read_text().strip() == _digest(_requirements(name))


def ensure(name: str, *, rebuild: bool = False) -> Path:
    """Create (or refresh) the environment of peer ``name``; returns its interpreter.

    Uses ``uv`` when available (seconds), else ``python -m venv`` and pip.
    """
    requirements = _requirements(name)
    target = env_dir(name)
    if not rebuild and is_current(name):
        return python_of(name)
    logger.info("installing %s into %s", name, target)
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--allow-existing", "--python", PYTHON_VERSION, str(target)])
        _run([uv, "pip", "install", "--quiet", "--python", str(python_of(name)), "-r", str(requirements)])
    else:
        if not python_of(name).exists():
            _run([sys.executable, "-m", "venv", str(target)])
        _run([str(python_of(name)), "-m", "pip", "install", "--quiet", "-r", str(requirements)])
    (target / _STAMP).write_text(_digest(requirements) + "\n")
    return python_of(name)


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PeerEnvironmentError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
