"""311 intake: NYC Open Data rows become jobs, through the one write path, exactly once.

`board.nyc311` parses; this module decides what each row does to the board:

* a non-NYPD row is skipped (counted);
* a row that cannot be parsed goes to the quarantine with its reason and raw content, never
  dropped, never stopping the import; the admin lists and retries it (`quarantine_rows`,
  `retry`);
* a new 311 unique key becomes a job (`Dispatch.create_job`, routed and prioritised there);
* a known key whose 311 fields changed updates those fields only (`Dispatch.update_311_fields`);
  the dispatch history is never touched; an identical row changes nothing and writes nothing.

Rows are handled in batches: the existing jobs of a batch's keys are read in one query, and the
priority rules once per `Intake`, so a long file costs about one write transaction per new job.
The file import (`import_file`) reads the whole file once before writing anything, so a broken
file (unreadable, malformed JSON, a runaway CSV cell) stops with a clear `FileError` and no
half-import.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from board import db, nyc311
from board.access import SYSTEM, Actor
from board.nyc311 import NEW_YORK, BadRow, Request311
from board.schema import jobs, quarantine
from board.usecases import Dispatch, Invalid, NewJob, NotFound

__all__ = [
    "IMPORT_ACTOR",
    "JOB_SOURCE",
    "Counts",
    "FileError",
    "Intake",
    "Outcome",
    "QuarantineRow",
    "check_file",
    "import_file",
    "quarantine_rows",
    "retry",
    "retry_all",
    "to_new_job",
]

#: Who writes imported jobs (events say "311 import via intake").
IMPORT_ACTOR = dataclasses.replace(SYSTEM, name="311 import", source="intake")
#: The jobs.source of a job that came from the city's 311 feed (file or API).
JOB_SOURCE = "nyc311"

# Column limits of the jobs table: values are cut to fit *before* they reach the write path, so
# that what is stored equals what the next import compares against (idempotence).
_LIMITS = {"complaint_type": 120, "descriptor": 200, "location_type": 200, "address": 300,
           "borough": 40, "external_status": 40}
KEY_LIMIT = 40
# The 311 fields `Dispatch.update_311_fields` compares and rewrites.
_311_FIELDS = ("complaint_type", "descriptor", "location_type", "address", "borough", "fields",
               "media", "external_status")
# Columns kept out of a job's `fields`: Socrata system fields change on every city-side refresh
# and carry no 311 content; the point itself lives in jobs.lat / jobs.lon.
_NOT_FIELDS = frozenset({"location"})


class FileError(Exception):
    """The file itself is unusable (not a row problem): nothing, or nothing more, is imported."""

    def __init__(self, message: str, counts: Counts | None = None) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass
class Counts:
    """What an import did, row by row."""

    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_not_nypd: int = 0
    quarantined: int = 0
    unrouted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "new": self.new, "updated": self.updated,
                "unchanged": self.unchanged, "skipped_not_nypd": self.skipped_not_nypd,
                "quarantined": self.quarantined, "unrouted": self.unrouted}

    def summary(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.as_dict().items())


@dataclass(frozen=True)
class Outcome:
    """What one row did. `job_id` / `request` are set for new, updated and unchanged rows."""

    kind: str  # new | updated | unchanged | skipped_not_nypd | quarantined
    job_id: int | None = None
    request: Request311 | None = None
    precinct: str | None = None
    route: str | None = None
    reason: str | None = None


# --------------------------------------------------------------------------- row -> NewJob


def _fit(value: str | None, limit: int) -> str:
    """What `usecases._text` would keep, cut to the column: stored value == compared value."""
    text = "".join(ch for ch in (value or "") if ch.isprintable() or ch in "\n\t").strip()
    return text[:limit].rstrip()


def _canonical_date(value: str) -> str:
    """Export dates ("05/01/2022 12:00:03 AM") and API dates ("2022-05-01T00:00:03.000") of the
    same moment must compare equal, or every CSV-then-API row would look changed."""
    try:
        return nyc311.parse_datetime(value).astimezone(NEW_YORK).isoformat()
    except (ValueError, OverflowError, TypeError):
        return value


def _job_fields(req: Request311, raw: Mapping[Any, Any]) -> dict[str, str]:
    system = {nyc311.normalise_header(k) for k in raw if isinstance(k, str) and k.startswith(":")}
    out = {}
    for name, value in req.fields.items():
        if name in system or name in _NOT_FIELDS:
            continue
        out[name] = _canonical_date(value) if name.endswith("_date") else value
    return out


def to_new_job(req: Request311, raw: Mapping[Any, Any] | None = None,
               key_prefix: str = "") -> NewJob:
    """A parsed 311 request as the write path's NewJob; BadRow if it cannot be a job."""
    key = key_prefix + req.unique_key
    if len(key) > KEY_LIMIT:
        raise BadRow(f"unique key longer than {KEY_LIMIT} characters")
    complaint = _fit(req.complaint_type, _LIMITS["complaint_type"])
    if not complaint:
        raise BadRow("missing complaint type")
    return NewJob(
        complaint_type=complaint,
        descriptor=_fit(req.descriptor, _LIMITS["descriptor"]),
        location_type=_fit(req.location_type, _LIMITS["location_type"]),
        address=_fit(req.address, _LIMITS["address"]),
        borough=_fit(req.borough, _LIMITS["borough"]),
        lat=req.lat, lon=req.lon, external_key=key, created_at=req.created_at,
        fields=_job_fields(req, raw or {}), media=tuple(req.media_urls),
        external_status=_fit(req.status, _LIMITS["external_status"]) or None,
    )


def _snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    """The 311 fields as stored (media as a list, like the JSON column hands it back)."""
    snap = {name: values[name] for name in _311_FIELDS}
    snap["media"] = list(snap["media"] or [])
    snap["fields"] = dict(snap["fields"] or {})
    return snap


def _new_snapshot(new: NewJob) -> dict[str, Any]:
    return _snapshot({name: getattr(new, name) for name in _311_FIELDS})


# --------------------------------------------------------------------------- quarantine helpers


def _jsonable(raw: Any) -> Any:
    """The raw row as JSON (keys as strings), so the quarantine keeps exactly what came in."""
    if isinstance(raw, Mapping):
        raw = {("" if k is None else str(k)): v for k, v in raw.items()}
    return json.loads(json.dumps(raw, default=str))


def _digest(raw: Any) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _raw_key(raw: Any) -> str | None:
    """The row's 311 key if it has a usable one (for listing and auto-resolving)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        key = nyc311.clean_text(nyc311.normalise_row(raw).get("unique_key"))
    except Exception:  # a quarantined row is by definition odd; never fail on it here
        return None
    return key[:KEY_LIMIT] or None


# --------------------------------------------------------------------------- the importer


class Intake:
    """Feeds raw 311 rows into the board; one instance per import / poll / replay run."""

    def __init__(self, dispatch: Dispatch, *, actor: Actor = IMPORT_ACTOR,
                 job_source: str = JOB_SOURCE, quarantine_source: str = "import",
                 key_prefix: str = "", batch_size: int = 500,
                 progress: Callable[[Counts], None] | None = None,
                 progress_every: int = 5000,
                 created_at: Callable[[Request311], datetime | None] | None = None,
                 keep_bad: bool = True) -> None:
        self.dispatch = dispatch
        self.actor = actor
        self.job_source = job_source
        self.quarantine_source = quarantine_source[:60]
        self.key_prefix = key_prefix
        self.progress = progress
        self.progress_every = max(1, progress_every)
        # progress is reported between batches: keep batches no longer than its interval
        self.batch_size = max(1, min(batch_size, self.progress_every) if progress else batch_size)
        #: Replay puts jobs on today's timeline instead of their historical creation time.
        self.created_at = created_at
        #: False when the caller keeps bad rows itself (a quarantine retry updates its own row).
        self.keep_bad = keep_bad
        self.counts = Counts()
        self.rules = dispatch.rules()  # once per run, not once per row
        self._quarantined: set[str] | None = None  # digests of unresolved quarantine rows
        self._open_keys: set[str] | None = None  # their 311 keys (to resolve on a good row)

    # -- public --------------------------------------------------------------------------------

    def feed(self, rows: Iterable[Any]) -> Counts:
        """Import every row (in batches); returns the running counts."""
        batch: list[Any] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.batch_size:
                self.batch(batch)
                batch = []
        if batch:
            self.batch(batch)
        return self.counts

    def batch(self, rows: Sequence[Any]) -> list[Outcome]:
        """Import one batch; one outcome per row, in order."""
        before = self.counts.rows
        prepared: list[tuple[Any, Request311 | None, NewJob | None, Outcome | None]] = []
        for raw in rows:
            self.counts.rows += 1
            if not isinstance(raw, Mapping):
                prepared.append((raw, None, None, self._bad(raw, "row is not a JSON object")))
                continue
            if not nyc311.is_nypd(raw):
                self.counts.skipped_not_nypd += 1
                prepared.append((raw, None, None, Outcome("skipped_not_nypd")))
                continue
            try:
                req = nyc311.parse_row(raw)
                new = to_new_job(req, raw, self.key_prefix)
            except BadRow as e:
                prepared.append((raw, None, None, self._bad(raw, e.reason)))
                continue
            if self.created_at is not None:
                new = dataclasses.replace(new, created_at=self.created_at(req))
            prepared.append((raw, req, new, None))

        keys = [new.external_key for _, _, new, _ in prepared if new is not None]
        known = self._existing(keys)
        outcomes = []
        for raw, req, new, done in prepared:
            if done is None:
                assert req is not None and new is not None
                done = self._one(raw, req, new, known)
            outcomes.append(done)
        if self.keep_bad:
            self._flush_quarantine(outcomes, prepared)
        ok_keys = [new.external_key for (_, _, new, _), o in zip(prepared, outcomes, strict=True)
                   if new is not None and o.kind in ("new", "updated", "unchanged")]
        self._resolve_quarantined(ok_keys)
        every = self.progress_every
        if self.progress and self.counts.rows // every > before // every:
            self.progress(self.counts)
        return outcomes

    # -- internals -----------------------------------------------------------------------------

    def _bad(self, raw: Any, reason: str) -> Outcome:
        self.counts.quarantined += 1
        self.counts.reasons[reason] += 1
        return Outcome("quarantined", reason=reason)

    def _existing(self, keys: list[str | None]) -> dict[str, tuple[int, dict[str, Any]]]:
        wanted = sorted({k for k in keys if k})
        known: dict[str, tuple[int, dict[str, Any]]] = {}
        if not wanted:
            return known
        cols = [jobs.c.id, jobs.c.external_key, *(jobs.c[name] for name in _311_FIELDS)]
        with db.read(self.dispatch.engine) as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                for row in conn.execute(sa.select(*cols).where(jobs.c.external_key.in_(chunk))):
                    known[row.external_key] = (row.id, _snapshot(row._mapping))
        return known

    def _one(self, raw: Any, req: Request311, new: NewJob,
             known: dict[str, tuple[int, dict[str, Any]]]) -> Outcome:
        key = new.external_key
        assert key is not None
        if key not in known:
            try:
                ev = self.dispatch.create_job(self.actor, new, source=self.job_source,
                                              rules=self.rules)
            except Invalid as e:
                return self._bad(raw, str(e))
            except sa.exc.IntegrityError:
                # Another writer (the poller, a second import) created this key in between.
                known.update(self._existing([key]))
                if key not in known:
                    raise
            else:
                known[key] = (ev["job_id"], _new_snapshot(new))
                route = ev["payload"].get("route")
                self.counts.new += 1
                if route == "unrouted":
                    self.counts.unrouted += 1
                return Outcome("new", ev["job_id"], req, ev.get("precinct"), route)
        job_id, current = known[key]
        wanted = _new_snapshot(new)
        if wanted == current:
            self.counts.unchanged += 1
            return Outcome("unchanged", job_id, req)
        try:
            ev = self.dispatch.update_311_fields(self.actor, job_id, new)
        except NotFound:  # vanished in between: nothing of ours to update
            return self._bad(raw, "job for this key disappeared during the import")
        known[key] = (job_id, wanted)
        if ev is None:
            self.counts.unchanged += 1
            return Outcome("unchanged", job_id, req)
        self.counts.updated += 1
        return Outcome("updated", job_id, req)

    def _flush_quarantine(self, outcomes: list[Outcome],
                          prepared: list[tuple[Any, Any, Any, Any]]) -> None:
        """Keep every bad row of the batch, once: the same bad row imported again is not new."""
        bad = [(raw, o.reason) for (raw, *_), o in zip(prepared, outcomes, strict=True)
               if o.kind == "quarantined"]
        if not bad:
            return
        if self._quarantined is None:
            with db.read(self.dispatch.engine) as conn:
                stored = conn.execute(sa.select(quarantine.c.raw)
                                      .where(quarantine.c.resolved_at.is_(None))).scalars()
                self._quarantined = {_digest(r) for r in stored}
        now = self.dispatch.clock()
        values = []
        for raw, reason in bad:
            data = _jsonable(raw)
            digest = _digest(data)
            if digest in self._quarantined:
                continue
            self._quarantined.add(digest)
            values.append({"source": self.quarantine_source, "external_key": _raw_key(data),
                           "reason": (reason or "unusable row")[:300], "raw": data,
                           "created_at": now})
        if self._open_keys is not None:
            self._open_keys.update(v["external_key"] for v in values if v["external_key"])
        if values:
            with db.write(self.dispatch.engine) as conn:
                conn.execute(quarantine.insert(), values)

    def _resolve_quarantined(self, keys: list[str | None]) -> None:
        """A key that now imports cleanly (fixed upstream) resolves its quarantined rows."""
        if self._open_keys is None:  # read once per run: most runs have nothing to resolve
            with db.read(self.dispatch.engine) as conn:
                self._open_keys = set(conn.execute(
                    sa.select(quarantine.c.external_key).where(
                        quarantine.c.resolved_at.is_(None),
                        quarantine.c.external_key.is_not(None))).scalars())
        wanted = sorted({k for k in keys if k} & self._open_keys)
        if not wanted:
            return
        with db.write(self.dispatch.engine) as conn:
            for start in range(0, len(wanted), 500):
                conn.execute(quarantine.update().where(
                    quarantine.c.external_key.in_(wanted[start:start + 500]),
                    quarantine.c.resolved_at.is_(None)).values(resolved_at=self.dispatch.clock()))
        self._open_keys.difference_update(wanted)
        self._quarantined = None  # re-read lazily: some digests are resolved now


# --------------------------------------------------------------------------- files


def _file_error(path: Path, exc: BaseException, rows: int) -> FileError:
    where = f"after {rows} rows" if rows else "before the first row"
    if isinstance(exc, FileNotFoundError):
        return FileError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return FileError(f"{path}: is a directory, not a file")
    if isinstance(exc, PermissionError):
        return FileError(f"{path}: permission denied")
    if isinstance(exc, UnicodeDecodeError):
        return FileError(f"{path}: not UTF-8 text ({where}); export the file as UTF-8")
    if isinstance(exc, csv.Error):
        return FileError(f"{path}: broken CSV {where}: {exc} (a runaway cell usually means an "
                         "unbalanced quote)")
    if isinstance(exc, RecursionError):
        return FileError(f"{path}: JSON nested too deeply {where}")
    if isinstance(exc, json.JSONDecodeError):
        return FileError(f"{path}: malformed JSON ({exc})")
    if isinstance(exc, OSError):
        return FileError(f"{path}: cannot read it ({exc.strerror or exc})")
    return FileError(f"{path}: {exc}")


_FILE_ERRORS = (OSError, ValueError, csv.Error, RecursionError)


def check_file(path: str | Path) -> int:
    """Read the whole file once without writing; the number of rows, or FileError.

    Also refuses a file with rows but no agency column at all: every row would be "skipped as
    non-NYPD", which hides a wrong file (or a wrong export) behind a successful-looking import.
    """
    path = Path(path)
    rows = 0
    has_agency = False
    try:
        for row in nyc311.read_rows(path):
            rows += 1
            if not has_agency and isinstance(row, Mapping):
                has_agency = any(isinstance(k, str) and nyc311.normalise_header(k) == "agency"
                                 for k in row)
    except _FILE_ERRORS as exc:
        raise _file_error(path, exc, rows) from None
    if rows and not has_agency:
        raise FileError(f"{path}: no Agency column in any row; is this an NYC 311 export? "
                        "(columns are matched by header name)")
    return rows


def import_file(dispatch: Dispatch, path: str | Path, *, actor: Actor = IMPORT_ACTOR,
                batch_size: int = 500, progress: Callable[[Counts], None] | None = None,
                progress_every: int = 5000) -> Counts:
    """Import a CSV export or Socrata JSON file. Same file twice: the second changes nothing."""
    path = Path(path)
    check_file(path)  # a broken file stops here, before any write
    intake = Intake(dispatch, actor=actor, quarantine_source=f"file:{path.name}",
                    batch_size=batch_size, progress=progress, progress_every=progress_every)
    try:
        return intake.feed(nyc311.read_rows(path))
    except _FILE_ERRORS as exc:  # changed under our feet between the check and the import
        err = _file_error(path, exc, intake.counts.rows)
        raise FileError(f"{err} — imported so far: {intake.counts.summary()}",
                        intake.counts) from None


# --------------------------------------------------------------------------- quarantine


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    source: str
    external_key: str | None
    reason: str
    raw: Any
    created_at: datetime
    resolved_at: datetime | None


def quarantine_rows(engine: sa.Engine, include_resolved: bool = False) -> list[QuarantineRow]:
    """The quarantine, oldest first (the admin page and `board quarantine list` read this)."""
    q = sa.select(quarantine).order_by(quarantine.c.id)
    if not include_resolved:
        q = q.where(quarantine.c.resolved_at.is_(None))
    with db.read(engine) as conn:
        return [QuarantineRow(r.id, r.source, r.external_key, r.reason, r.raw, r.created_at,
                              r.resolved_at) for r in conn.execute(q)]


def retry(dispatch: Dispatch, quarantine_id: int, raw_override: Mapping[str, Any] | None = None,
          actor: Actor = IMPORT_ACTOR) -> Outcome:
    """Import a quarantined row again, as stored or as an admin edited it.

    Success (or a row that is no longer NYPD's) resolves it; a row still bad stays in the
    quarantine with the new reason, and keeps the admin's edit so the next try starts there.
    """
    with db.read(dispatch.engine) as conn:
        row = conn.execute(sa.select(quarantine)
                           .where(quarantine.c.id == quarantine_id)).first()
    if row is None:
        raise NotFound(f"no quarantined row {quarantine_id}")
    if row.resolved_at is not None:
        raise Invalid({"id": f"quarantined row {quarantine_id} is resolved already"})
    raw = _jsonable(raw_override) if raw_override is not None else row.raw
    intake = Intake(dispatch, actor=actor, quarantine_source=row.source, keep_bad=False)
    outcome = intake.batch([raw])[0]
    with db.write(dispatch.engine) as conn:
        if outcome.kind == "quarantined":
            conn.execute(quarantine.update().where(quarantine.c.id == row.id).values(
                reason=(outcome.reason or "unusable row")[:300], raw=raw,
                external_key=_raw_key(raw)))
        else:
            conn.execute(quarantine.update().where(quarantine.c.id == row.id).values(
                raw=raw, external_key=_raw_key(raw), resolved_at=dispatch.clock()))
    return outcome


def retry_all(dispatch: Dispatch, actor: Actor = IMPORT_ACTOR) -> Counter[str]:
    """Retry every unresolved row as stored (after a fix in the importer); outcome counts."""
    done: Counter[str] = Counter()
    for row in quarantine_rows(dispatch.engine):
        try:
            done[retry(dispatch, row.id, actor=actor).kind] += 1
        except (NotFound, Invalid):  # resolved meanwhile (e.g. by a key imported just now)
            done["already_resolved"] += 1
    return done
