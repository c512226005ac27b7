"""Probes' schedules, states, results and hourly rollups.

A run is claimed by moving the probe's `next_run_at` one interval ahead with a conditional
UPDATE on the value just read (rows locked with SKIP LOCKED on PostgreSQL), so on several
replicas each run happens once. Raw results age out into one rollup row per probe and hour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.probes import Uptime
from store.models import ProbeResultRow, ProbeRollupRow, ProbeStateRow
from store.session import insert_or_ignore

UNKNOWN, UP, DOWN = "unknown", "up", "down"


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    ok: bool
    latency_ms: float
    status_code: int | None
    error: str | None
    cert_days: int | None


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0..1) of `values` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class ProbeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure(self, first_runs: Mapping[str, datetime]) -> None:
        """Create the rows of probes that have none yet, first due at the given instants."""
        known = set(
            await self.session.scalars(
                select(ProbeStateRow.id).where(ProbeStateRow.id.in_(list(first_runs)))
            )
        )
        for probe_id, at in first_runs.items():
            if probe_id not in known:
                await insert_or_ignore(
                    self.session,
                    ProbeStateRow,
                    {
                        "id": probe_id,
                        "next_run_at": at,
                        "status": UNKNOWN,
                        "consecutive_failures": 0,
                        "latency_anomaly": False,
                        "error_anomaly": False,
                        "cert_expiring": False,
                        "latency_calm": 0,
                        "error_calm": 0,
                        "burn_level": 0,
                    },
                )

    async def claim_due(
        self, *, ids: Collection[str], now: datetime, intervals: Mapping[str, timedelta], limit: int
    ) -> list[tuple[str, datetime]]:
        """Claim the due runs among `ids`: (probe id, the deadline it was due at). Each claim
        moves the deadline one interval ahead (past `now` when runs were missed)."""
        if not ids:
            return []
        rows = (
            await self.session.execute(
                select(ProbeStateRow.id, ProbeStateRow.next_run_at)
                .where(ProbeStateRow.next_run_at <= now, ProbeStateRow.id.in_(list(ids)))
                .order_by(ProbeStateRow.next_run_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        claimed: list[tuple[str, datetime]] = []
        for probe_id, due in rows:
            interval = intervals[probe_id]
            following = due + interval
            if following <= now:  # missed runs (the service was down): keep the phase
                following += interval * ((now - following) // interval + 1)
            result = await self.session.execute(
                update(ProbeStateRow)
                .where(ProbeStateRow.id == probe_id, ProbeStateRow.next_run_at == due)
                .values(next_run_at=following)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append((probe_id, due))
        return claimed

    async def lock(self, probe_id: str) -> ProbeStateRow | None:
        return await self.session.scalar(
            select(ProbeStateRow)
            .where(ProbeStateRow.id == probe_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def states(self, ids: Collection[str] | None = None) -> list[ProbeStateRow]:
        query = select(ProbeStateRow).order_by(ProbeStateRow.id)
        if ids is not None:
            query = query.where(ProbeStateRow.id.in_(list(ids)))
        return list(await self.session.scalars(query))

    async def add_result(self, probe_id: str, sample: Sample) -> None:
        self.session.add(
            ProbeResultRow(
                probe_id=probe_id,
                at=sample.at,
                ok=sample.ok,
                latency_ms=sample.latency_ms,
                status_code=sample.status_code,
                error=sample.error,
                cert_days=sample.cert_days,
            )
        )
        await self.session.flush()

    async def recent(self, probe_id: str, limit: int) -> list[Sample]:
        """The last `limit` results, oldest first."""
        rows = await self.session.scalars(
            select(ProbeResultRow)
            .where(ProbeResultRow.probe_id == probe_id)
            .order_by(ProbeResultRow.at.desc(), ProbeResultRow.id.desc())
            .limit(limit)
        )
        return [_sample(r) for r in reversed(list(rows))]

    async def window_counts(
        self, probe_id: str, *, now: datetime, windows: Sequence[timedelta]
    ) -> dict[timedelta, tuple[int, int]]:
        """(runs, failures) of the probe's raw results over each window ending `now` (one
        query; the windows must lie within raw_retention)."""
        columns = []
        for w in windows:
            recent = ProbeResultRow.at > now - w
            columns.append(func.sum(case((recent, 1), else_=0)))
            columns.append(func.sum(case((and_(recent, ~ProbeResultRow.ok), 1), else_=0)))
        longest = max(windows)
        row = (
            await self.session.execute(
                select(*columns).where(
                    ProbeResultRow.probe_id == probe_id, ProbeResultRow.at > now - longest
                )
            )
        ).one()
        return {w: (int(row[2 * i] or 0), int(row[2 * i + 1] or 0)) for i, w in enumerate(windows)}

    async def latencies(self, probe_id: str, *, since: datetime, limit: int) -> list[float]:
        """Successful runs' latencies (ms) since `since`, the latest `limit` of them."""
        return list(
            await self.session.scalars(
                select(ProbeResultRow.latency_ms)
                .where(
                    ProbeResultRow.probe_id == probe_id,
                    ProbeResultRow.at >= since,
                    ProbeResultRow.ok.is_(True),
                )
                .order_by(ProbeResultRow.at.desc())
                .limit(limit)
            )
        )

    async def results(self, probe_id: str, *, since: datetime, limit: int) -> list[Sample]:
        """Results at or after `since`, oldest first, at most `limit`."""
        rows = await self.session.scalars(
            select(ProbeResultRow)
            .where(ProbeResultRow.probe_id == probe_id, ProbeResultRow.at >= since)
            .order_by(ProbeResultRow.at, ProbeResultRow.id)
            .limit(limit)
        )
        return [_sample(r) for r in rows]

    async def uptime(self, *, since: datetime, until: datetime | None = None) -> dict[str, Uptime]:
        """Runs and failures per probe since `since`: raw results, plus the rollups of hours
        that start at or after `since` (aged-out hours)."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        raw = await self.session.execute(
            select(
                ProbeResultRow.probe_id,
                func.count(),
                func.sum(func.cast(~ProbeResultRow.ok, type_=ProbeRollupRow.runs.type)),
            )
            .where(
                ProbeResultRow.at >= since,
                *([ProbeResultRow.at < until] if until is not None else []),
            )
            .group_by(ProbeResultRow.probe_id)
        )
        for probe_id, runs, failures in raw:
            counts[probe_id][0] += runs
            counts[probe_id][1] += failures or 0
        rolled = await self.session.execute(
            select(
                ProbeRollupRow.probe_id,
                func.sum(ProbeRollupRow.runs),
                func.sum(ProbeRollupRow.failures),
            )
            .where(
                ProbeRollupRow.hour >= since,
                *([ProbeRollupRow.hour < until] if until is not None else []),
            )
            .group_by(ProbeRollupRow.probe_id)
        )
        for probe_id, runs, failures in rolled:
            counts[probe_id][0] += runs or 0
            counts[probe_id][1] += failures or 0
        return {k: Uptime(runs=v[0], failures=v[1]) for k, v in counts.items()}

    async def roll_up(self, *, before: datetime, drop_rollups_before: datetime) -> int:
        """Turn the oldest whole hour of raw results older than `before` into rollups (one row
        per probe) and delete them; drop rollups older than `drop_rollups_before`. Returns how
        many raw results were rolled up (0: nothing left to do). The delete returns the rows
        it removed, so two replicas never count one result twice."""
        await self.session.execute(
            delete(ProbeRollupRow).where(ProbeRollupRow.hour < drop_rollups_before)
        )
        oldest = await self.session.scalar(
            select(func.min(ProbeResultRow.at)).where(ProbeResultRow.at < before)
        )
        if oldest is None:
            return 0
        hour = oldest.replace(minute=0, second=0, microsecond=0)
        end = min(hour + timedelta(hours=1), before)  # `before` is a whole hour
        removed = (
            await self.session.execute(
                delete(ProbeResultRow)
                .where(ProbeResultRow.at >= hour, ProbeResultRow.at < end)
                .returning(ProbeResultRow.probe_id, ProbeResultRow.ok, ProbeResultRow.latency_ms)
            )
        ).all()
        by_probe: dict[str, list[tuple[bool, float]]] = defaultdict(list)
        for probe_id, ok, latency in removed:
            by_probe[probe_id].append((ok, latency))
        for probe_id, runs in by_probe.items():
            latencies = [latency for _, latency in runs]
            values: dict[str, float] = {
                "runs": len(runs),
                "failures": sum(1 for ok, _ in runs if not ok),
                "latency_sum_ms": math.fsum(latencies),
                "latency_max_ms": max(latencies),
                "latency_p50_ms": percentile(latencies, 0.5),
                "latency_p95_ms": percentile(latencies, 0.95),
            }
            self.session.add(ProbeRollupRow(probe_id=probe_id, hour=hour, **values))
        await self.session.flush()
        return len(removed)

    async def rollups(self, probe_id: str, *, since: datetime) -> list[ProbeRollupRow]:
        return list(
            await self.session.scalars(
                select(ProbeRollupRow)
                .where(ProbeRollupRow.probe_id == probe_id, ProbeRollupRow.hour >= since)
                .order_by(ProbeRollupRow.hour)
            )
        )


def _sample(row: ProbeResultRow) -> Sample:
    return Sample(
        at=row.at,
        ok=row.ok,
        latency_ms=row.latency_ms,
        status_code=row.status_code,
        error=row.error,
        cert_days=row.cert_days,
    )


__all__ = ["DOWN", "UNKNOWN", "UP", "ProbeRepository", "Sample", "Uptime", "percentile"]
