"""The dashboard on a static host (frontend/Dockerfile's nginx, Render's static site) is public-only and keyless.

Its config.json comes from scripts/write-config.mjs or the nginx template; neither may carry a read key (issue
13: the template put MDSTACK_API_KEY into the JSON, unescaped), both say `public: true`, and the pages carry
the same security headers as the gateway's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from services.realtime_gateway.headers import SECURITY_HEADERS

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TEMPLATE = (FRONTEND / "docker" / "default.conf.template").read_text()
CONFIG_KEYS = {"apiBaseUrl", "streamUrl", "public"}  # what the gateway's /config.json holds (dashboard.py)


@pytest.mark.e2e
def test_write_config_writes_no_key_even_when_one_is_in_the_environment(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI (make test builds the dashboard with it)")
        pytest.skip("node is not installed here (CI has Node 20)")
    env = {
        **os.environ,
        "MDSTACK_API_URL": "https://api.example/",
        "MDSTACK_STREAM_URL": "https://gw.example/stream",
        "MDSTACK_API_KEY": "secret-read-key",
        "API_KEY": "secret-read-key",
    }
    subprocess.run([node, "scripts/write-config.mjs", str(tmp_path)], cwd=FRONTEND, env=env, check=True)
    written = (tmp_path / "config.json").read_text()
    assert json.loads(written) == {
        "apiBaseUrl": "https://api.example",
        "streamUrl": "https://gw.example/stream",
        "public": True,
    }
    assert "secret-read-key" not in written


def test_the_nginx_template_reads_no_key_and_serves_a_public_config() -> None:
    assert set(re.findall(r"\$\{(\w+)\}", TEMPLATE)) == {"MDSTACK_API_URL", "MDSTACK_STREAM_URL"}
    body = re.search(r"location = /config\.json \{.*?return 200 '(.*?)';", TEMPLATE, re.S)
    assert body
    urls = {"MDSTACK_API_URL": "https://api.example", "MDSTACK_STREAM_URL": "https://gw.example/stream"}
    config = json.loads(re.sub(r"\$\{(\w+)\}", lambda m: urls[m.group(1)], body.group(1)))
    assert set(config) == CONFIG_KEYS
    assert config["public"] is True


def test_every_nginx_location_sends_the_gateways_security_headers() -> None:
    csp = re.search(r'set \$csp "(.*?)";', TEMPLATE)
    assert csp
    # The same policy as the gateway's, but the page connects to the API's and the stream's origins.
    assert csp.group(1) == SECURITY_HEADERS["content-security-policy"].replace(
        "connect-src 'self'", "connect-src 'self' ${MDSTACK_API_URL} ${MDSTACK_STREAM_URL}"
    )
    locations = re.findall(r"location [^{]*\{(.*?)\n    \}", TEMPLATE, re.S)
    assert len(locations) == 3
    for block in locations:
        added = dict(re.findall(r"add_header ([\w-]+) (.*?) always;", block))
        assert {name.lower(): value for name, value in added.items() if name != "Cache-Control"} == {
            "content-security-policy": "$csp",
            **{
                name: value.replace("'", "")
                for name, value in SECURITY_HEADERS.items()
                if name != "content-security-policy"
            },
        }
