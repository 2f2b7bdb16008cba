"""The input paths under test, each as a target: it makes the i-th input of a seed (the first
ones are the hostile constructions, in order; the rest random mixes) and runs it, reporting
what it saw (:class:`~.oracle.Seen`).

- ``jsonl``: a JSON Lines file through replay (``streams/replay.py``: the reader
  ``streams/sources.py``, the validator ``rules/events.py``, the engine);
- ``csv`` and ``xlsx``: spreadsheets through replay;
- ``http``: ``POST /api/events`` of the embedded service (``office/api.py`` on a
  ``streams.service.Service``), JSON, NDJSON and CSV bodies and multipart uploads, over a real
  socket on 127.0.0.1;
- ``drop``: files in ``Service.scan_drop_folder``'s folder;
- ``config``: ``rules/config.py`` ``load``, then a short run of the engine on what loaded.
"""
from __future__ import annotations

import asyncio
import json
import random
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from shian.rules.config import Config, load

from . import configs, hostile
from .events import World, batch, line_of
from .model import NOW, Case, Row
from .oracle import Failure, Seen, judge

REPO = Path(__file__).resolve().parents[2]


def fuzz_config(workdir: Path) -> Config:
    """The example county with a file outbox only and a service folder in ``workdir``."""
    import yaml

    data = configs.example()
    data["notifiers"] = {"outbox": "outbox.sqlite", "file": {"dir": "发件箱"}, "quiet_hours": False,
                         "group_wait_seconds": 0, "digest": None}
    data["service"] = {"listen": "127.0.0.1:0", "data_dir": "data", "drop_dir": "投放"}
    path = workdir / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load(path)


def crash_text(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if "/tests/fuzz/" not in f.filename] or frames
    at = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(e).__name__}: {str(e)[:200]} at {at}"


class Target:
    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = fuzz_config(workdir)
        self.world = World.of(self.config)

    def hostile(self) -> list[Any]:
        return []

    light = False  # only the hostile inputs that take well under a second (the fast test)

    def case(self, seed: int, index: int) -> Case:
        rng = random.Random(f"{seed}:{self.name}:{index}")
        built = [b for b in self.hostile() if not (self.light and getattr(b, "heavy", False))]
        if index < len(built):
            return built[index](rng, self.world, f"H{index}")
        return self.random_case(rng, index)

    def random_case(self, rng: random.Random, index: int) -> Case:
        raise NotImplementedError

    def run(self, case: Case) -> Seen:
        raise NotImplementedError

    def check(self, case: Case) -> list[Failure]:
        try:
            seen = self.run(case)
        except Exception as e:  # the fuzz's boundary: anything escaping the path is a crash
            return [Failure(case.path, "crash", case.label, "", crash_text(e))]
        return judge(case, seen)

    def close(self) -> None:
        pass


# -- replay ---------------------------------------------------------------------------------

class ReplayTarget(Target):
    """Files through :class:`shian.streams.replay.Replay`, the engine's admit watched."""

    suffix = ".jsonl"

    def run(self, case: Case) -> Seen:
        from shian.rules.engine import Status
        from shian.streams.replay import Replay

        path = self.workdir / case.extra.get("filename", f"input{self.suffix}")
        path.write_bytes(case.data)
        seen = Seen()
        replay = Replay(self.config, lambda n: None, lambda r: seen.rejects.append((r.line, r.reason)))
        admit = replay.engine.admit

        def watched(ev: Any, until: Any = None) -> str:
            status = admit(ev, until)
            if status == Status.ACCEPTED:
                seen.accepted[ev.id] += 1
            elif status == Status.DUPLICATE:
                seen.duplicates[ev.id] += 1
            return status

        replay.engine.admit = watched  # type: ignore[method-assign]
        try:
            replay.run([str(path)])
        finally:
            path.unlink(missing_ok=True)
        return seen


class JsonlTarget(ReplayTarget):
    name = "jsonl"

    def hostile(self) -> list[Any]:
        return hostile.JSONL

    def random_case(self, rng: random.Random, index: int) -> Case:
        rows = batch(rng, self.world, f"J{index}", rng.choice((1, 2, 5, 10, 20, 40)), live=False)
        data = jsonl_bytes(rng, rows)
        name = rng.choice(("events.jsonl", "events.ndjson", "events.json", "events", "EVENTS.JSONL"))
        return Case(self.name, f"random#{index}", rows, data, {"filename": name})


def jsonl_bytes(rng: random.Random, rows: list[Row], *, prefix: str = "") -> bytes:
    """The rows as JSON Lines with blank lines, CRLF, a BOM now and then; each row's line set."""
    out: list[bytes] = []
    bom = rng.random() < 0.1
    for row in rows:
        while rng.random() < 0.08:
            out.append(rng.choice((b"", b"   ", b"\t", b"\r")))
        text = line_of(row)
        out.append(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        row.line = f"{prefix}{len(out)}"
    end = rng.choice((b"\n", b"\r\n"))
    data = end.join(out) + (end if rng.random() < 0.8 else b"")
    return b"\xef\xbb\xbf" + data if bom else data


class CsvTarget(ReplayTarget):
    name = "csv"
    suffix = ".csv"

    def hostile(self) -> list[Any]:
        return hostile.CSV

    def random_case(self, rng: random.Random, index: int) -> Case:
        from .tables import csv_file, encode_csv

        text, sheet, stem = csv_file(rng, self.world, f"C{index}", live=False, size=rng.choice((1, 3, 8, 20)))
        data, encoding = encode_csv(rng, text)
        rows = [row for row, _, _ in sheet.events]
        return Case(self.name, f"random#{index}", rows, data, {"filename": f"{stem}.csv", "encoding": encoding})


class XlsxTarget(ReplayTarget):
    name = "xlsx"
    suffix = ".xlsx"

    def hostile(self) -> list[Any]:
        return hostile.XLSX

    def random_case(self, rng: random.Random, index: int) -> Case:
        from .tables import workbook, workbook_bytes

        sheets, rows = workbook(rng, self.world, f"X{index}", live=False, size=rng.choice((1, 3, 8, 15)))
        name = rng.choice(("导入.xlsx", "2026年4月.xlsx", "data.XLSX", "宏.xlsm"))
        return Case(self.name, f"random#{index}", rows, workbook_bytes(sheets), {"filename": name})


# -- the embedded service -------------------------------------------------------------------

class ServiceTarget(Target):
    """A :class:`~shian.streams.service.Service` on the fuzz folder, its wall clock at NOW."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        from shian.notifiers.settings import parse as delivery_settings
        from shian.office.settings import parse as service_settings
        from shian.streams.service import Service

        self.settings = service_settings(self.config, env={})
        self.service = Service(self.config, self.settings, delivery_settings(self.config, env={}), now=lambda: NOW)

    def marks(self) -> tuple[int, int]:
        db = self.service.store.db
        return (db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0],
                db.execute("SELECT COALESCE(MAX(seq), 0) FROM rejects").fetchone()[0])

    def stored(self, marks: tuple[int, int], seen: Seen, *, by_source: bool) -> None:
        """What the store took since ``marks``: journal ids, and rejects by (file:)line."""
        db = self.service.store.db
        seen.journal = Counter(eid for (eid,) in db.execute("SELECT id FROM events WHERE seq > ?", (marks[0],)))
        for source, line, reason in db.execute("SELECT source, line, reason FROM rejects WHERE seq > ? ORDER BY seq",
                                               (marks[1],)).fetchall():
            at = "" if line in (None, "", "0") else str(line)
            seen.rejects.append((f"{file_of(source)}:{at}" if by_source else at, reason))
        db.execute("DELETE FROM rejects")  # read: rejected lines of 1 MiB would pile up over 10,000 inputs

    def close(self) -> None:
        import asyncio

        asyncio.run(self.service.close())


def file_of(source: str) -> str:
    """The file name a record's source names (``api:open:抽检.csv``, a drop-folder path)."""
    if source.startswith("api:"):
        return source.split(":", 2)[2] if source.count(":") >= 2 else source
    return Path(source).name


class DropTarget(ServiceTarget):
    name = "drop"

    def hostile(self) -> list[Any]:
        return hostile.DROP

    def random_case(self, rng: random.Random, index: int) -> Case:
        from .files import drop_files

        return drop_files(rng, self.world, index)

    def run(self, case: Case) -> Seen:
        import os
        import time

        folder = self.settings.drop_dir
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        old = time.time() - 30
        for name, data in case.data:
            path = folder / name
            path.write_bytes(data)
            if name not in case.extra.get("fresh", ()):
                os.utime(path, (old, old))
        marks = self.marks()
        seen = Seen(duplicates=None)
        try:
            asyncio.run(self.service.scan_drop_folder())
            self.stored(marks, seen, by_source=True)
            seen.accepted = Counter(seen.journal or {})
            seen.crashes += self._left_behind(case, folder)
        finally:
            _empty(folder)
        return seen

    @staticmethod
    def _left_behind(case: Case, folder: Path) -> list[str]:
        """Every file the folder takes must have moved to 已处理/ or 无法读取/; others stay."""
        out = []
        kept = set(case.extra.get("ignored", ())) | set(case.extra.get("fresh", ()))
        for name, _ in case.data:
            there = (folder / name).exists()
            if there and name not in kept:
                out.append(f"{name!r} left in the drop folder after the scan")
            if not there and name in kept:
                out.append(f"{name!r} was taken though the folder should leave it")
        return out


def _empty(folder: Path) -> None:
    import shutil

    for p in folder.iterdir():
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


class HttpTarget(ServiceTarget):
    name = "http"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        import asyncio

        from aiohttp.test_utils import TestServer

        from shian.office.api import make_app

        self.loop = asyncio.new_event_loop()
        self.server = TestServer(make_app(self.service, self.settings), host="127.0.0.1")
        self.loop.run_until_complete(self.server.start_server())
        self.base = f"http://127.0.0.1:{self.server.port}"

    def hostile(self) -> list[Any]:
        return hostile.HTTP

    def random_case(self, rng: random.Random, index: int) -> Case:
        from .files import http_request

        return http_request(rng, self.world, index)

    def run(self, case: Case) -> Seen:
        marks = self.marks()
        status, body = self.loop.run_until_complete(self._send(case.data))
        seen = Seen()
        by_source = case.extra.get("by_source", True)
        self.stored(marks, seen, by_source=by_source)
        want = case.extra.get("status", 200)
        allowed = case.extra.get("or_status", ())
        if status >= 500:
            seen.crashes.append(f"HTTP {status}: {str(body)[:300]}")
            seen.halted = True
        elif status in allowed:  # refusing the whole request is a clean answer too
            seen.halted = True
            if seen.journal:
                seen.crashes.append(f"HTTP {status} but {sum(seen.journal.values())} events journaled")
        elif status != 200 and status != want:
            seen.refused = f"HTTP {status} (expected {want}): {str(body)[:300]}"
        elif status != 200:
            seen.rejects.append(("", body.get("error", "") if isinstance(body, dict) else str(body)))
        else:
            results = body.get("results", [])
            seen.accepted = Counter(r.get("id") for r in results if r.get("status") == "accepted")
            seen.duplicates = Counter(r.get("id") for r in results if r.get("status") == "duplicate")
            journaled = sum((seen.journal or Counter()).values())
            rejected = sum(r.get("status") == "rejected" for r in results)
            if body.get("accepted") != journaled or body.get("rejected") != rejected:
                seen.crashes.append(f"answer disagrees with itself or the journal: {body.get('accepted')} accepted, "
                                    f"{journaled} journaled, {body.get('rejected')} rejected of {rejected}")
        return seen

    async def _send(self, request: dict[str, Any]) -> tuple[int, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.post(self.base + request.get("url", "/api/events"), data=request["body"],
                                    headers=request.get("headers", {}), skip_auto_headers=("Content-Type",)) as r:
                raw = await r.read()
                try:
                    return r.status, json.loads(raw)
                except ValueError:
                    return r.status, raw[:300]

    def close(self) -> None:
        self.loop.run_until_complete(self.server.close())
        self.loop.run_until_complete(self.service.close())
        self.loop.close()


# -- config ---------------------------------------------------------------------------------

class ConfigTarget(Target):
    name = "config"

    def case(self, seed: int, index: int) -> Case:
        built = [c for c in configs.hostile() if not (self.light and c.heavy)]
        if index < len(built):
            made = built[index]
        else:
            made = configs.random_case(random.Random(f"{seed}:{self.name}:{index}"), index)
        return Case(self.name, made.label, [], made.data, {"expect": made.expect, "why": made.why})

    def check(self, case: Case) -> list[Failure]:
        from shian.rules.config import ConfigError

        path = self.workdir / "fuzz-config.yaml"
        path.write_bytes(case.data)
        fail = lambda kind, detail: [Failure(case.path, kind, case.label, case.extra["why"], detail)]  # noqa: E731
        try:
            config = load(path)
        except ConfigError as e:
            if case.extra["expect"] == configs.LOAD:
                return fail("wrong_reject", f"refused a good config: {e.problems[:3]}")
            unnamed = [p for p in e.problems if not p.startswith(str(path)) or not _CJK(p)]
            return fail("wrong_reason", f"a problem without the file or in no Chinese: {unnamed[:2]}") if unnamed else []
        except Exception as e:  # anything but ConfigError is a crash of the loader
            return fail("crash", crash_text(e))
        out = fail("wrong_accept", "loaded a config the contract refuses") if case.extra["expect"] == configs.REFUSE else []
        try:
            smoke(config, self.world)
        except Exception as e:  # a config that loads must run
            out += fail("crash", f"loaded, then the engine failed: {crash_text(e)}")
        return out


def _CJK(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def smoke(config: Config, world: World) -> None:
    """A few events of every kind through an engine on ``config``, then a year of clock."""
    from datetime import timedelta

    from shian.notifiers.routing import recipients
    from shian.rules.engine import Engine
    from shian.rules.events import Rejected, Validator

    from .events import MAKERS

    validator = Validator(config.known())
    engine = Engine(config, recipients, lambda n: None)
    rng = random.Random(0)
    here = World.of(config)
    for n, (kind, make) in enumerate(MAKERS.items()):
        obj = make(rng, here, f"smoke-{n}", NOW - timedelta(days=20 - n), lambda t: t.isoformat())
        if kind == "sampling_result":
            obj["items"] = [{"item": "克伦特罗", "value": 1.0, "limit": 0}]
        try:
            engine.admit(validator.from_object(obj))
        except Rejected:
            pass
    engine.finish(NOW + timedelta(days=400))


TARGETS = {t.name: t for t in (JsonlTarget, CsvTarget, XlsxTarget, HttpTarget, DropTarget, ConfigTarget)}
