"""`make types`: frontend/src/api/schema.gen.ts from the API's OpenAPI document (openapi-typescript).

The document is the one `/openapi.json` serves, built from `create_app()` without starting a server; the
generator is frontend/scripts/openapi-types (installed by `npm ci` in frontend/). `--check` writes nothing
and fails when the committed file differs from what the document gives (tests/contract runs it in CI).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "frontend" / "scripts" / "openapi-types"
TARGET = ROOT / "frontend" / "src" / "api" / "schema.gen.ts"
TIMEOUT_S = 120


class GeneratorMissing(RuntimeError):
    """node, or the generator's packages, are not installed here."""


def document() -> dict[str, object]:
    """The API's OpenAPI document, as /openapi.json serves it."""
    sys.path.insert(0, str(ROOT))
    from services.common.settings import Settings
    from services.orchestrator_api.app import create_app

    return create_app(Settings(MDSTACK_ENV="test")).openapi()


def generate() -> str:
    """The TypeScript that the current document gives."""
    node = shutil.which("node")
    if node is None:
        raise GeneratorMissing("node is not installed (Node 20, as for the dashboard)")
    if not (GENERATOR / "node_modules" / "openapi-typescript").is_dir():
        raise GeneratorMissing("the generator is not installed: run `npm ci` in frontend/")
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "openapi.json", Path(tmp) / "schema.gen.ts"
        source.write_text(json.dumps(document(), indent=2))
        subprocess.run([node, str(GENERATOR / "gen.mjs"), str(source), str(out)], check=True, timeout=TIMEOUT_S)
        return out.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed file is stale; write nothing")
    check = parser.parse_args().check
    try:
        fresh = generate()
    except GeneratorMissing as exc:
        sys.stdout.write(f"cannot generate the API types: {exc}\n")
        return 2
    name = TARGET.relative_to(ROOT)
    if not check:
        TARGET.write_text(fresh)
        sys.stdout.write(f"wrote {name}\n")
        return 0
    if TARGET.exists() and TARGET.read_text() == fresh:
        sys.stdout.write(f"{name} matches the API's OpenAPI document\n")
        return 0
    sys.stdout.write(f"{name} is stale: the API's contract changed; run `make types` and commit it\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
