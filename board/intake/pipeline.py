"""311 intake: NYC Open Data rows become jobs, through the one write path, exactly once.

`board.intake.rows` parses; this module decides what each row does to the board:

* a non-NYPD row is skipped (counted);
* a row that cannot be used goes to the quarantine with its reason and raw content, never
  dropped, never stopping the import; the admin lists and retries it (`quarantine_rows`,
  `retry`). That includes a CSV line cut short (it "ends before the Agency column"), a row with
  no agency column, a cell over 128 KiB, a key that is a JSON list or object, and dates before
  2003, more than a day ahead, or a close before the creation;
* a new 311 unique key becomes a job, routed and prioritised by the write path; a new key the
  city has already closed becomes a history job (closed, with the city's times and resolution,
  never dispatched) unless the run says otherwise (replay simulates the officers instead);
* a known key whose 311 fields changed updates those fields only (`Dispatch.update_311_fields`);
  the dispatch history is never touched; an identical row changes nothing and writes nothing.
* text longer than its column is cut to fit, and the cut is recorded: in the job's
  `cut_to_fit` field and in the counts (`Counts.cut`), never silently.

Rows are handled in batches: the existing jobs of a batch's keys are read in one query, the
priority rules once per `Intake`, and the batch's new jobs are written by one
`Dispatch.create_jobs` (N jobs + N events, one transaction). Files are streamed: memory stays
flat however long the file. `import_file` streams the file once to check it before writing
anything, so a broken file (unreadable, empty, malformed JSON, a quote that never closes) stops
with a clear `FileError` and no half-import, then streams it again to import. A file of a
megabyte or more is checked, read and parsed in a second process (`board.intake.aside`) while this
one writes: parsing a row (`prepare`) is pure, writing a batch of them (`Intake.write`) is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from board.domain.access import SYSTEM, Actor
from board.geo.routing import Route
from board.intake import dates as intake_dates
from board.intake import rows as nyc311
from board.intake.rows import BadRow, Request311
from board.intake.text import MAX_TEXT, clean_text
from board.storage import db
from board.storage.schema import jobs, quarantine
from board.usecases import Dispatch, Invalid, NewJob, NotFound

__all__ = [
    "IMPORT_ACTOR",
    "JOB_SOURCE",
    "Counts",
    "FileError",
    "Intake",
    "Outcome",
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
#: The job field that says which columns were cut to fit, and from what length.
CUT_FIELD = "cut_to_fit"
#: Distinct quarantine reasons kept in a run's counts (reasons quote bad values).
MAX_REASONS = 200
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
    history: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_not_nypd: int = 0
    quarantined: int = 0
    unrouted: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: Columns cut to fit (new or updated jobs): column -> rows.
    cut: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "new": self.new, "history": self.history,
                "updated": self.updated, "unchanged": self.unchanged,
                "skipped_not_nypd": self.skipped_not_nypd, "quarantined": self.quarantined,
                "unrouted": self.unrouted}

    def summary(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.as_dict().items())


@dataclass(frozen=True)
class Outcome:
    """What one row did. `job_id` / `request` are set for new, history, updated and unchanged
    rows (`request` is not, for a row `import_file` parsed in its second process: it keeps
    counts, not outcomes)."""

    kind: str  # new | history | updated | unchanged | skipped_not_nypd | quarantined
    job_id: int | None = None
    request: Request311 | None = None
    precinct: str | None = None
    route: str | None = None
    reason: str | None = None


# --------------------------------------------------------------------------- row -> NewJob


def _fit(value: str | None, limit: int, name: str, cut: dict[str, int]) -> str:
    """What `usecases._text` would keep, cut to the column: stored value == compared value.
    A cut is noted in `cut` (column -> length before it, at least the parser's own cut)."""
    text = value or ""
    if not text.isprintable():
        text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    text = text.strip()
    if len(text) <= limit:
        return text
    cut[name] = max(len(text), cut.get(name, 0))
    return text[:limit].rstrip()


def _cut_note(cut: Mapping[str, int], limits: Mapping[str, int]) -> str:
    """'address: 5,000 characters, kept 300; …' for the job page."""
    return "; ".join(f"{name}: {length:,} characters, kept {limits.get(name, MAX_TEXT):,}"
                     for name, length in sorted(cut.items()))


def _canonical_date(value: str) -> str:
    """Export dates ("05/01/2022 12:00:03 AM") and API dates ("2022-05-01T00:00:03.000") of the
    same moment must compare equal, or every CSV-then-API row would look changed."""
    try:
        return intake_dates.new_york_text(value)
    except (ValueError, OverflowError, TypeError):
        return value


def _system_names(keys: tuple[Any, ...]) -> frozenset[str]:
    """Socrata system columns (":updated_at", ":id") among a row's keys, by field name."""
    return frozenset(nyc311.normalise_header(k) for k in keys
                     if isinstance(k, str) and k[:1] == ":")


@lru_cache(maxsize=256)
def _kept_names(raw_keys: tuple[Any, ...], names: tuple[str, ...]
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Of a request's field names (in order), those its job keeps, and the dates among them:
    once per file layout, not once per row."""
    dropped = _system_names(raw_keys) | _NOT_FIELDS
    kept = tuple(name for name in names if name not in dropped)
    return kept, tuple(name for name in kept if name.endswith("_date"))


def _job_fields(req: Request311, raw: Mapping[Any, Any]) -> dict[str, str]:
    fields = req.fields
    kept, dates = _kept_names(tuple(raw), tuple(fields))
    out = {name: fields[name] for name in kept}
    for name in dates:
        out[name] = _canonical_date(out[name])
    return out


def to_new_job(req: Request311, raw: Mapping[Any, Any] | None = None,
               key_prefix: str = "", *, history: bool = False) -> NewJob:
    """A parsed 311 request as the write path's NewJob; BadRow if it cannot be a job.
    `history`: a request the city has closed becomes a history job (its close and resolution)."""
    key = key_prefix + req.unique_key
    if len(key) > KEY_LIMIT:
        raise BadRow(f"unique key longer than {KEY_LIMIT} characters")
    cut: dict[str, int] = {}  # column -> length before the cut
    # the raw field a column comes from, where named apart
    source = {"external_status": "status", "address": "incident_address"}

    def fit(name: str, value: str) -> str:
        text = _fit(value, _LIMITS[name], name, cut)
        if name in cut:  # the parser may have cut the raw field already: say how long it was
            cut[name] = max(cut[name], req.cut.get(source.get(name, name), 0))
        return text

    complaint = fit("complaint_type", req.complaint_type)
    if not complaint:
        raise BadRow("missing complaint type")
    fields = _job_fields(req, raw or {})
    new = NewJob(
        complaint_type=complaint,
        descriptor=fit("descriptor", req.descriptor),
        location_type=fit("location_type", req.location_type),
        address=fit("address", req.address),
        borough=fit("borough", req.borough),
        lat=req.lat, lon=req.lon, external_key=key, created_at=req.created_at,
        fields=fields, media=tuple(req.media_urls),
        external_status=fit("external_status", req.status) or None,
        **({"closed_at": req.closed_at, "resolution": req.resolution}
           if history and nyc311.closed_by_city(req) else {}),
    )
    if cut or req.cut:  # seldom: skip the bookkeeping (two comprehensions a row) otherwise
        fitted_from = {source.get(name, name) for name in cut}
        cut.update({name: n for name, n in req.cut.items()
                    if name not in fitted_from and name not in _NOT_FIELDS})
    if cut:
        fields[CUT_FIELD] = _cut_note(cut, _LIMITS)
    return new


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
    """The raw row as JSON (keys as strings), so the quarantine keeps exactly what came in:
    the cells a cut-off line has (not the reader's marker, which a retry would trip on)."""
    if isinstance(raw, Mapping):
        raw = {("" if k is None else str(k)): v for k, v in raw.items()
               if k != nyc311.SHORT_ROW}
    return json.loads(json.dumps(raw, default=str))


def _digest(raw: Any) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _raw_key(raw: Any) -> str | None:
    """The row's 311 key if it has a usable one (for listing and auto-resolving)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        value = nyc311.normalise_row(raw).get("unique_key")
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None  # a list or object is no key ('["AUD-J3"]' would match nothing real)
        key = clean_text(value)
    except Exception:  # a quarantined row is by definition odd; never fail on it here
        return None
    return key[:KEY_LIMIT] or None


# --------------------------------------------------------------------------- one row


#: A row made ready for the write path: (raw row, its request, its new job, None), or (raw row,
#: None, None, the outcome decided already: quarantined with its reason, or not NYPD's).
Prepared = tuple[Any, Request311 | None, NewJob | None, Outcome | None]


def prepare(raw: Any, now: datetime, key_prefix: str = "", history: bool = True) -> Prepared:
    """Parse one raw row for the write path. Pure (no database, no counts): a second process
    can do it while this one writes (`import_file`)."""
    if not isinstance(raw, Mapping):
        return raw, None, None, Outcome("quarantined", reason="row is not a JSON object")
    if raw.get(nyc311.SHORT_ROW):  # a cut-off line: whatever it lacks, it is not "not NYPD"
        return raw, None, None, Outcome("quarantined", reason=nyc311.short_row_reason(raw))
    if not nyc311.is_nypd(raw):
        if not nyc311.has_agency(raw):
            return raw, None, None, Outcome("quarantined", reason="row has no Agency column")
        return raw, None, None, Outcome("skipped_not_nypd")
    try:
        req = nyc311.parse_row(raw)
        nyc311.check_dates(req, now)
        return raw, req, to_new_job(req, raw, key_prefix, history=history), None
    except BadRow as e:
        return raw, None, None, Outcome("quarantined", reason=e.reason)


# --------------------------------------------------------------------------- the importer


class Intake:
    """Feeds raw 311 rows into the board; one instance per import / poll / replay run."""

    def __init__(self, dispatch: Dispatch, *, actor: Actor = IMPORT_ACTOR,
                 job_source: str = JOB_SOURCE, quarantine_source: str = "import",
                 key_prefix: str = "", batch_size: int = 500,
                 progress: Callable[[Counts], None] | None = None,
                 progress_every: int = 5000,
                 created_at: Callable[[Request311], datetime | None] | None = None,
                 keep_bad: bool = True, history: bool = True) -> None:
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
        #: A new key the city already closed becomes a history job (False: a job to dispatch,
        #: as replay wants, whose simulated officers close it).
        self.history = history
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
        now = self.dispatch.clock()
        return self.write([self._prepare(raw, now) for raw in rows])

    def write(self, prepared: Sequence[Prepared],
              routes: Sequence[Route | None] = ()) -> list[Outcome]:
        """Import one batch of prepared rows (`prepare`); one outcome per row, in order.
        `routes`: each new job's route, if routed already (`_parsed`); else the write path's."""
        before = self.counts.rows
        self.counts.rows += len(prepared)
        for *_, done in prepared:
            if done is not None:
                self._tally(done)
        keys = [new.external_key for _, _, new, _ in prepared if new is not None]
        known = self._existing(keys)
        outcomes: list[Outcome | None] = [done for *_, done in prepared]
        creating: list[int] = []  # rows whose new jobs are written together
        creating_keys: set[str] = set()
        for i, (raw, req, new, done) in enumerate(prepared):
            if done is not None:
                continue
            assert new is not None and new.external_key is not None
            if new.external_key in creating_keys:  # the same key twice in one batch: the
                self._create(creating, prepared, outcomes, known, routes)  # first creates it
                creating, creating_keys = [], set()
            if new.external_key in known:
                outcomes[i] = self._known(raw, req, new, known)
            else:
                creating.append(i)
                creating_keys.add(new.external_key)
        self._create(creating, prepared, outcomes, known, routes)
        done_outcomes = [o for o in outcomes if o is not None]
        assert len(done_outcomes) == len(prepared)
        if self.keep_bad:
            self._flush_quarantine(done_outcomes, prepared)
        ok_keys = [new.external_key for (_, _, new, _), o in zip(prepared, done_outcomes,
                                                                  strict=True)
                   if new is not None and o.kind in ("new", "history", "updated", "unchanged")]
        self._resolve_quarantined(ok_keys)
        every = self.progress_every
        if self.progress and self.counts.rows // every > before // every:
            self.progress(self.counts)
        return done_outcomes

    # -- internals -----------------------------------------------------------------------------

    def _prepare(self, raw: Any, now: datetime) -> Prepared:
        raw, req, new, done = prepare(raw, now, self.key_prefix, self.history)
        if new is not None and self.created_at is not None:
            new = dataclasses.replace(new, created_at=self.created_at(req))
        return raw, req, new, done

    def _tally(self, decided: Outcome) -> None:
        """Count a row decided before the write path (not NYPD's, or quarantined)."""
        if decided.kind == "skipped_not_nypd":
            self.counts.skipped_not_nypd += 1
        else:
            self._bad(None, decided.reason or "")

    def _bad(self, raw: Any, reason: str) -> Outcome:
        self.counts.quarantined += 1
        if reason in self.counts.reasons or len(self.counts.reasons) < MAX_REASONS:
            self.counts.reasons[reason] += 1
        else:
            self.counts.reasons["(other reasons)"] += 1
        return Outcome("quarantined", reason=reason)

    def _create(self, indices: list[int], prepared: Sequence[Prepared],
                outcomes: list[Outcome | None],
                known: dict[str, tuple[int, dict[str, Any] | NewJob]],
                routes: Sequence[Route | None] = ()) -> None:
        """Write the new jobs of these rows in one transaction; one at a time if that fails,
        so a row the write path refuses costs only itself."""
        if not indices:
            return
        news = [prepared[i][2] for i in indices]
        given = [routes[i] for i in indices] if routes else []
        try:
            evs = self.dispatch.create_jobs(self.actor, news, source=self.job_source,
                                            rules=self.rules, routes=given or None)
        except (Invalid, sa.exc.IntegrityError):
            if len(indices) > 1:
                for i in indices:
                    self._create([i], prepared, outcomes, known, routes)
                return
            [i] = indices
            raw, req, new, _ = prepared[i]
            try:
                evs = self.dispatch.create_jobs(self.actor, [new], source=self.job_source,
                                                rules=self.rules, routes=given or None)
            except Invalid as e:
                outcomes[i] = self._bad(raw, str(e))
                return
            except sa.exc.IntegrityError:
                # Another writer (the poller, a second import) created this key in between.
                known.update(self._existing([new.external_key]))
                if new.external_key not in known:
                    raise
                outcomes[i] = self._known(raw, req, new, known)
                return
        for i, ev in zip(indices, evs, strict=True):
            raw, req, new, _ = prepared[i]
            known[new.external_key] = (ev["job_id"], new)  # its snapshot if it comes again
            self._count_cut(new)
            if ev["kind"] == "history":
                self.counts.history += 1
                outcomes[i] = Outcome("history", ev["job_id"], req, ev.get("precinct"),
                                      ev["payload"].get("route"))
                continue
            route = ev["payload"].get("route")
            self.counts.new += 1
            if route == "unrouted":
                self.counts.unrouted += 1
            outcomes[i] = Outcome("new", ev["job_id"], req, ev.get("precinct"), route)

    def _count_cut(self, new: NewJob) -> None:
        note = new.fields.get(CUT_FIELD)
        if note:
            self.counts.cut.update(part.split(":", 1)[0] for part in note.split("; "))

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

    def _known(self, raw: Any, req: Request311 | None, new: NewJob,
               known: dict[str, tuple[int, dict[str, Any] | NewJob]]) -> Outcome:
        """A key the board has: update its 311 fields if they changed, else nothing."""
        key = new.external_key
        assert key is not None
        job_id, current = known[key]
        if isinstance(current, NewJob):  # created earlier in this batch
            current = _new_snapshot(current)
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
        self._count_cut(new)
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


