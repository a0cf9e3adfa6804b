"""Drive Debian's Chromium headless over the DevTools protocol, on a pipe.

``--remote-debugging-pipe`` makes Chromium read protocol commands from file
descriptor 3 and write answers and events to descriptor 4, NUL-terminated
JSON: no WebDriver, no websocket library, nothing downloaded, and no port
to find or leave open. The browser runs in its own session with a
throwaway profile and is stopped by PID (``harness.processes``), its
renderer and helper processes with it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.processes import descendant_pids, stop_process_tree

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_COMMANDS_FD, _EVENTS_FD = 3, 4


class DevToolsError(RuntimeError):
    """The browser answered a command with an error, or went away."""


@dataclass
class PageProblems:
    """What went wrong while a page loaded: console errors, failed requests."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


class Chromium:
    """One headless browser; ``open_page`` gives a tab with its problems."""

    def __init__(self, profile: Path) -> None:
        commands_r, self._commands = os.pipe()
        self._events, events_w = os.pipe()
        # The child must find the pipes at 3 and 4 exactly; moved to free
        # descriptors above 9 first so dup2 cannot overwrite one with the other.
        high_r = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(events_w, fcntl.F_DUPFD, 10)
        os.close(commands_r)
        os.close(events_w)

        def at_3_and_4() -> None:
            os.dup2(high_r, _COMMANDS_FD)
            os.dup2(high_w, _EVENTS_FD)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",  # tests run as root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--metrics-recording-only",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(_COMMANDS_FD, _EVENTS_FD),
            # Only two dup2 calls between fork and exec: safe with threads.
            preexec_fn=at_3_and_4,
            start_new_session=True,
        )
        os.close(high_r)
        os.close(high_w)
        self._buffer = b""
        self._next_id = 0
        self._pending_events: list[dict[str, Any]] = []
        self.leftover: list[int] = []

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method}
        message["params"] = params
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._events, 1 << 20)
            if not chunk:
                raise DevToolsError("the browser closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
    ) -> dict[str, Any]:
        """Send a command and wait for its answer; events meanwhile are kept."""
        wanted = self._send(method, params or {}, session)
        while True:
            message = self._read()
            if message.get("id") == wanted:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._pending_events.append(message)

    def events(self) -> Iterator[dict[str, Any]]:
        """Events already received, then every further one as it arrives."""
        while True:
            if self._pending_events:
                yield self._pending_events.pop(0)
            else:
                yield self._read()

    def close(self) -> list[int]:
        """Ask the browser to quit, then stop what is left of its process tree
        by PID; return the PIDs that had to be killed (empty: clean)."""
        tree = descendant_pids(self.process.pid)
        with contextlib.suppress(DevToolsError, OSError):
            self._send("Browser.close", {}, None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.leftover = stop_process_tree(self.process, also=tree)
        for fd in (self._commands, self._events):
            with contextlib.suppress(OSError):
                os.close(fd)
        return self.leftover


@contextlib.contextmanager
def chromium() -> Iterator[Chromium]:
    with tempfile.TemporaryDirectory(prefix="churn-ab-chromium-") as profile:
        browser = Chromium(Path(profile))
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A page in the browser, with what its load reported."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session
        self.problems = PageProblems()

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": mobile,
            },
        )

    def navigate(self, url: str) -> None:
        """Load ``url`` and collect problems until its load event."""
        self.call("Page.navigate", {"url": url})
        for event in self.browser.events():
            if event.get("sessionId") != self.session:
                continue
            self._note(event)
            if event["method"] == "Page.loadEventFired":
                return

    def _note(self, event: dict[str, Any]) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "assert",
        ):
            texts = [str(a.get("value", a.get("description"))) for a in params["args"]]
            self.problems.console_errors.append(" ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.problems.console_errors.append(str(details.get("text")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.problems.console_errors.append(f"{entry.get('url')}: {entry['text']}")
        elif method == "Network.loadingFailed":
            self.problems.failed_requests.append(
                f"{params.get('requestId')}: {params.get('errorText')}"
            )
        elif method == "Network.responseReceived":
            response = params["response"]
            if response.get("status", 0) >= 400:
                self.problems.failed_requests.append(
                    f"{response['url']}: HTTP {response['status']}"
                )

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int) -> None:
        """A PNG of the whole page at ``width`` CSS pixels."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.resize(width, height)
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))


def open_tab(browser: Chromium, width: int, height: int) -> Tab:
    target = browser.call("Target.createTarget", {"url": "about:blank"})
    attached = browser.call(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
    )
    tab = Tab(browser, attached["sessionId"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        tab.call(f"{domain}.enable")
    tab.resize(width, height)
    return tab
