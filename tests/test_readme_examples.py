"""The README's console API examples, run as written with bash and curl against the whole
local stack (`python -m local`): every call answers the status and fields its comment names.

Each fenced ```bash block of the section runs as one script; the shell variables of the
first are handed to the second, and the phone step the README asks a person to do between
them is done here by a WeChat phone (as admin-01, on the sandbox) over HTTP. A `curl`
shell function records each call's status, content type and body for the checks.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.local_stack import ROOT

README = ROOT / "README.md"
SECTION = "### The binding flow by hand"
README_API = "http://127.0.0.1:8000"
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN")
RECORDING_CURL = """set -eo pipefail
curl() {
  local body meta
  body=$(mktemp)
  meta=$(command curl -o "$body" -w '%{http_code}\\t%{content_type}' "$@")
  printf '%s\\t%s\\n' "$body" "$meta" >> "$CURL_LOG"
  cat "$body"
}
"""

pytestmark = pytest.mark.stack


@dataclass
class Expected:
    """What a call's README comment says it answers: `# 403 code` or `# 201 {"key", "key": "value"}`."""
    line: str
    status: int | None
    error_code: str | None
    keys: list[str]
    values: dict[str, str]
    content_type: str | None


def section_blocks(text: str, heading: str) -> list[str]:
    start = text.index(heading + "\n") + len(heading)
    following = re.search(r"^#{2,3} ", text[start:], flags=re.MULTILINE)
    section = text[start:start + following.start()] if following else text[start:]
    return re.findall(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def expected_calls(block: str) -> list[Expected]:
    calls = []
    for line in block.replace("\\\n", " ").splitlines():
        if not re.search(r"\bcurl -", line):
            continue
        comment = line.partition("  # ")[2] if "  # " in line else ""
        status = re.match(r"(\d{3})\b", comment)
        rest = comment[status.end():].strip() if status else comment
        error_code = rest if re.fullmatch(r"[a-z_]+", rest) else None
        pairs = re.findall(r'"(\w+)"(?:\s*:\s*"([^"]*)")?', rest)
        calls.append(Expected(line.strip(), int(status.group(1)) if status else None, error_code,
                              [key for key, _ in pairs], {key: value for key, value in pairs if value},
                              "image/png" if "image/png" in rest else None))
    return calls


def assigned_names(block: str) -> list[str]:
    return re.findall(r"^([A-Z_]+)=", block, flags=re.MULTILINE)


def _run_bash(script: str, tmp_path: Path, log: Path) -> str:
    done = subprocess.run(["bash", "-c", RECORDING_CURL + script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "CURL_LOG": str(log)})
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


def _recorded(log: Path) -> list[tuple[int, str, bytes]]:
    calls = []
    for row in log.read_text().splitlines():
        body_path, status, content_type = row.split("\t")
        calls.append((int(status), content_type, Path(body_path).read_bytes()))
    return calls


def _confirm_on_the_phone_as_admin_01(url: str) -> None:
    with httpx.Client(follow_redirects=True, timeout=10, headers={"User-Agent": WECHAT_UA},
                      cookies={"sandbox_wechat_user": "admin-01"}) as phone:
        page = phone.get(url)
        assert 'data-page="binding-confirm"' in page.text, page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        done = phone.post(httpx.URL(str(page.url)).join(action), data={"csrf": csrf})
        assert 'data-page="binding-done"' in done.text, done.text


def _check(expected: Expected, status: int, content_type: str, body: bytes) -> None:
    if expected.status is None:
        assert 200 <= status < 300, (expected.line, status, body)
    else:
        assert status == expected.status, (expected.line, status, body)
    if expected.content_type:
        assert content_type == expected.content_type and body.startswith(b"\x89PNG"), expected.line
        return
    assert content_type == "application/json", (expected.line, content_type)
    answer = json.loads(body)
    if status >= 400:
        assert set(answer["error"]) == {"type", "code", "message", "param"}, (expected.line, answer)
        assert answer["error"]["code"] == expected.error_code, (expected.line, answer)
    assert all(key in answer for key in expected.keys), (expected.line, answer)
    assert all(answer[key] == value for key, value in expected.values.items()), (expected.line, answer)


def test_the_readme_binding_flow_runs_as_written_and_every_call_answers_what_its_comment_says(stack,
                                                                                               tmp_path):
    before, after = [block.replace(README_API, stack["api"]) for block in section_blocks(README.read_text(), SECTION)]
    log = tmp_path / "curl.log"

    _run_bash(before + f"declare -p {' '.join(assigned_names(before))} > vars.sh\n", tmp_path, log)
    [code_url] = [json.loads(body)["url"] for _, _, body in _recorded(log)
                  if body.startswith(b"{") and "url" in json.loads(body)]
    _confirm_on_the_phone_as_admin_01(code_url)
    _run_bash("source vars.sh\n" + after, tmp_path, log)

    expected = expected_calls(before) + expected_calls(after)
    recorded = _recorded(log)
    assert len(recorded) == len(expected)
    for call, (status, content_type, body) in zip(expected, recorded):
        _check(call, status, content_type, body)
    assert (tmp_path / "code.png").read_bytes().startswith(b"\x89PNG")
