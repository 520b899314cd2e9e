"""A prison's history for the benchmark: prisoners with months of calls, decisions and money,
generated inside PostgreSQL (``INSERT ... SELECT generate_series(...)``), never row by row.

``HistorySpec`` says how big: ``prisoners`` (each in a cell of their own, ``bench-history-N``,
with four contacts: the benchmark's landline and a mobile approved, a legal contact approved, a
social one pending) and ``rows``, the calls, decisions and ledger entries in all, spread over the
``days`` before now. Every past call has its decision, its reservation (settled, or released
when nobody answered) and, when it cost something, its charge entry; some decisions are
refusals (a wrong PIN, with its ``pin_failures`` row; a number not approved or pending; the
caller hanging up). Each prisoner is topped up to ``TOPUP_TO_PENCE`` before the first call and
then every week by what the week's calls cost, so every balance stays between 0 and the cap and
every ``balance_after`` is the running sum of the account's ledger. Calls of one prisoner never
overlap; all are ended and settled. Ids follow time, as they would in a real prison.

Only the tables it fills are named here (cells, prisoners, contacts, contact_changes, accounts,
call_decisions, calls, reservations, ledger_entries, pin_failures): a migration that adds a
table leaves the generator as it is. Recordings are not generated (their rows need files and a
hash chain, and no decision reads them).

``history_sql(spec)`` is the list of statements (pure); ``build_history(url, spec)`` runs them on
a migrated, empty PostgreSQL database. The module cache.py keeps the result for the next run.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from callcontrol.adapters.db.engine import normalise_url
from callcontrol_lab.bench.micro.errors import BenchmarkError
from callcontrol_lab.bench.micro.provision import CONTACT_LABEL, HISTORY_CELL_PREFIX

PRISON_NUMBER_PREFIX = "H"
CONTACT_E164 = "+442079460000"  # the micro-benchmark's CONTACT_DIALLED, normalised
TOPUP_TO_PENCE = 5000  # the default [billing] max_balance_pence: never more
MAX_SECONDS = 1800  # the default [billing] max_call_s: what each call reserved for
RATES = {"uk_landline": 310, "uk_mobile": 688}  # the default tariffs (migration 0002)
SETUP_S = 15  # from the decision to the called party's acceptance
MAX_TALK_S = 1200  # calls last at most 20 minutes, fewer where the weekly top-up needs it
WEEK_S = 7 * 86400
# Bump when the data generated changes (a cache key: cache.py).
GENERATOR_VERSION = 4
FILLED_TABLES = (
    "cells", "prisoners", "contacts", "contact_changes", "accounts", "call_decisions", "calls",
    "reservations", "ledger_entries", "pin_failures",
)  # fmt: skip
REFUSALS = ("wrong_pin", "not_approved", "contact_pending", "caller_hung_up")


def charged_calls(calls: int) -> int:
    """Calls with a charge entry: answered (not every tenth) and not privileged (the first of
    every twenty, to the legal contact: free)."""
    return calls - calls // 10 - (calls + 19) // 20


@dataclass(frozen=True)
class HistorySpec:
    prisoners: int = 10_000
    rows: int = 5_000_000  # calls + decisions + ledger entries, about
    days: int = 60

    def __post_init__(self) -> None:
        if self.prisoners < 1 or self.days < 7:
            raise BenchmarkError("a history needs at least 1 prisoner and 7 days")
        if self.rows < 10 * self.prisoners:
            raise BenchmarkError("a history needs at least 10 rows a prisoner")
        if self.slot_s < 2 * (SETUP_S + MAX_TALK_S + 60):
            raise BenchmarkError(
                f"{self.calls_per_prisoner} calls a prisoner in {self.days} days do not fit: "
                "more days or fewer rows"
            )

    @property
    def weeks(self) -> int:
        """Weekly top-ups after the first (week boundaries within the history)."""
        return (self.days * 86400 - 3600) // WEEK_S

    @property
    def topups_at_most(self) -> int:
        return self.prisoners * (1 + self.weeks)

    def total(self, calls: int) -> int:
        """The rows a history of ``calls`` calls makes (about: weeks without a charge have no
        top-up)."""
        return calls + calls + calls // 10 + charged_calls(calls) + self.topups_at_most

    @property
    def calls(self) -> int:
        low, high = 1, self.rows
        while low < high:  # the most calls whose history stays within ``rows``
            mid = (low + high + 1) // 2
            low, high = (mid, high) if self.total(mid) <= self.rows else (low, mid - 1)
        return low

    @property
    def refusals(self) -> int:
        return self.calls // 10

    @property
    def calls_per_prisoner(self) -> int:
        return math.ceil(self.calls / self.prisoners)

    @property
    def slot_s(self) -> int:
        """Each prisoner's calls are one to a slot of this many seconds."""
        return (self.days * 86400 - 3600) // self.calls_per_prisoner

    @property
    def talk_max_s(self) -> int:
        """The longest talk, such that a week of calls at the dearest rate costs less than the
        top-up (balances never fall below 0)."""
        per_week = WEEK_S // self.slot_s + 2
        afford = (TOPUP_TO_PENCE - 1) * 6000 // (per_week * max(RATES.values())) - 30
        return max(60, min(MAX_TALK_S, afford))


def _charge(talk: str, rate: str) -> str:
    """Pence for ``talk`` seconds at ``rate`` (hundredths of a penny a minute), per second,
    halves up: domain/tariffs.py's rule for the default rounding."""
    return f"(({talk})::bigint * ({rate}) + 3000) / 6000"


def history_sql(spec: HistorySpec) -> list[str]:
    """The statements that generate ``spec``'s history into a migrated, empty database, in
    order, each its own transaction (temporary tables: one session)."""
    p, c, r, days = spec.prisoners, spec.calls, spec.refusals, spec.days
    slot, talk_max = spec.slot_s, spec.talk_max_s
    land, mobile = RATES["uk_landline"], RATES["uk_mobile"]
    mix = "((i::bigint * 2654435761) % 1000003)"  # a cheap, repeatable scatter of i
    tables = ", ".join(f"'{t}'" for t in FILLED_TABLES)
    return [
        "SET work_mem = '256MB'",
        "SET maintenance_work_mem = '512MB'",
        "SET synchronous_commit = off",  # a crash loses the history, which is rebuilt anyway
        # The filled tables' plain indexes are built once at the end, quicker than kept up row
        # by row; those of constraints (keys, UNIQUE) stay and check every row as it goes in.
        f"""CREATE TEMP TABLE h_indexes AS SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename IN ({tables})
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        """DO $$ DECLARE n text; BEGIN
            FOR n IN SELECT indexname FROM h_indexes LOOP
              EXECUTE format('DROP INDEX %I', n); END LOOP; END $$""",
        # The end of the history: an hour ago, to the second. t0: its start.
        f"""CREATE TEMP TABLE h_time AS SELECT date_trunc('second', now()) - interval '1 hour'
            AS t_end, date_trunc('second', now()) - interval '1 hour' - interval '{days} days'
            + interval '1 hour' AS t0""",
        # --- the prison: cells, prisoners, contacts, their history -------------------------
        f"""INSERT INTO cells (id, name, wing, sip_username, sip_realm, sip_md5_cred, enabled,
            disabled_reason, created_at, updated_at)
            SELECT n, '{HISTORY_CELL_PREFIX}' || lpad(n::text, 5, '0'), chr(65 + n % 6),
            '{HISTORY_CELL_PREFIX}' || lpad(n::text, 5, '0'), 'callcontrol',
            md5('{HISTORY_CELL_PREFIX}' || lpad(n::text, 5, '0') || ':callcontrol:history-' || n),
            true, '',
            t0 - interval '1 day', t0 - interval '1 day'
            FROM generate_series(1, {p}) n, h_time""",
        f"""INSERT INTO prisoners (id, prison_number, name, pin_hash, cell_id, active,
            suspended_reason, max_call_s, created_at, updated_at)
            SELECT n, '{PRISON_NUMBER_PREFIX}' || lpad(n::text, 6, '0'), 'History Prisoner ' || n,
            'h2$00000000$' || md5('pin' || n) || md5('nip' || n), n, true, '', NULL,
            t0 - interval '1 day', t0 - interval '1 day'
            FROM generate_series(1, {p}) n, h_time""",
        # Four contacts each: 4n-3 the benchmark's landline, 4n-2 a mobile, 4n-1 a legal
        # landline (all approved), 4n a mobile still pending.
        f"""CREATE TEMP TABLE h_contacts AS
            SELECT 4 * n - 4 + j AS id, n AS prisoner_id,
            CASE j WHEN 1 THEN '{CONTACT_E164}'
                   WHEN 2 THEN '+447700' || lpad((n % 900000)::text, 6, '0')
                   WHEN 3 THEN '+44161496' || lpad((n % 10000)::text, 4, '0')
                   ELSE '+447911' || lpad((n % 900000)::text, 6, '0') END AS number,
            CASE j WHEN 3 THEN 'legal' ELSE 'social' END AS kind,
            CASE j WHEN 4 THEN 'pending' ELSE 'approved' END AS status,
            CASE j WHEN 1 THEN '{CONTACT_LABEL}' WHEN 3 THEN 'solicitor' ELSE 'family' END
              AS label,
            t0 - interval '1 day' + j * interval '1 minute' AS at
            FROM generate_series(1, {p}) n, generate_series(1, 4) j, h_time""",
        """INSERT INTO contacts (id, prisoner_id, number, kind, status, label, max_call_s,
            created_at, updated_at)
            SELECT id, prisoner_id, number, kind, status, label, NULL, at, at FROM h_contacts""",
        """INSERT INTO contact_changes (contact_id, prisoner_id, number, action, old_status,
            new_status, changed_by, changed_at, note)
            SELECT id, prisoner_id, number, 'added', '', 'pending', 'history', at, ''
            FROM h_contacts
            UNION ALL
            SELECT id, prisoner_id, number, 'approved', 'pending', 'approved', 'history',
            at + interval '1 hour', '' FROM h_contacts WHERE status = 'approved'
            ORDER BY 8""",
        # --- the calls: call i is prisoner (i-1) % P + 1's ((i-1) / P)-th, in its slot ----
        f"""CREATE TEMP TABLE h_calls AS
            SELECT i, (i - 1) % {p} + 1 AS prisoner_id,
            t0 + ((((i - 1) / {p}) * {slot} + 60 + {mix} % ({slot} - {SETUP_S + MAX_TALK_S + 120})
              ) * interval '1 second') + ({mix} % 997) * interval '1 millisecond' AS at,
            i % 10 <> 0 AS answered, i % 20 = 1 AS privileged,
            60 + ({mix} / 7) % ({talk_max} - 59) AS talk,
            ((i - 1) % {p}) * 4 + CASE WHEN i % 20 = 1 THEN 3 WHEN i % 2 = 0 THEN 1 ELSE 2 END
              AS contact_id
            FROM generate_series(1, {c}) i, h_time""",
        f"""CREATE TEMP TABLE h_refusals AS
            SELECT r, (r::bigint * 7919) % {p} + 1 AS prisoner_id,
            t0 + ((r::bigint * ({days} * 86400 - 7200)) / {max(r, 1)}) * interval '1 second'
              + (r % 1000) * interval '1 millisecond' AS at,
            (ARRAY{list(REFUSALS)!r})[r % {len(REFUSALS)} + 1] AS reason
            FROM generate_series(1, {r}) r, h_time""",
        # Decision ids follow time: allowed (kind 0) and refused (kind 1) together.
        """CREATE TEMP TABLE h_decisions AS
            SELECT row_number() OVER (ORDER BY at, kind, n) AS id, kind, n, prisoner_id, at
            FROM (SELECT 0 AS kind, i AS n, prisoner_id, at FROM h_calls
                  UNION ALL SELECT 1, r, prisoner_id, at FROM h_refusals) d""",
        "CREATE INDEX ON h_decisions (kind, n)",
        "ANALYZE h_calls",
        "ANALYZE h_refusals",
        "ANALYZE h_decisions",
        f"""CREATE TEMP TABLE h_call_rows AS
            SELECT x.*, CASE WHEN x.answered AND NOT x.privileged
              THEN {_charge("x.talk", "x.rate")} ELSE 0 END AS charge
            FROM (SELECT row_number() OVER (ORDER BY c.at, c.i) AS id, d.id AS decision_id,
              c.*, k.number, k.kind AS contact_kind,
              CASE WHEN k.number LIKE '+447%' THEN 'uk_mobile' ELSE 'uk_landline' END AS class,
              CASE WHEN k.number LIKE '+447%' THEN {mobile} ELSE {land} END AS rate,
              CASE WHEN c.answered THEN c.at + interval '15 seconds' END AS answered_at,
              CASE WHEN c.answered THEN c.at + (15 + c.talk) * interval '1 second'
                   ELSE c.at + interval '35 seconds' END AS ended_at
              FROM h_calls c JOIN h_decisions d ON d.kind = 0 AND d.n = c.i
              JOIN h_contacts k ON k.id = c.contact_id) x""",
        "CREATE INDEX ON h_call_rows (i)",
        "ANALYZE h_call_rows",
        f"""INSERT INTO call_decisions (id, at, handset, cell_id, prisoner_id, dialled, number,
            outcome, reason, detail, privileged, channel, uniqueid, sip_call_id, decision_ms)
            SELECT d.id, d.at, '{HISTORY_CELL_PREFIX}' || lpad(d.prisoner_id::text, 5, '0'),
            d.prisoner_id, d.prisoner_id,
            CASE WHEN d.kind = 0 THEN '0' || substr(c.number, 4)
                 WHEN f.reason = 'contact_pending'
                 THEN '07911' || lpad((d.prisoner_id % 900000)::text, 6, '0')
                 ELSE '07400' || lpad((d.n % 900000)::text, 6, '0') END,
            CASE WHEN d.kind = 0 THEN c.number
                 WHEN f.reason = 'contact_pending'
                 THEN '+447911' || lpad((d.prisoner_id % 900000)::text, 6, '0')
                 WHEN f.reason = 'not_approved' THEN '+447400' || lpad((d.n % 900000)::text, 6, '0')
                 END,
            CASE WHEN d.kind = 0 THEN 'allow' ELSE 'refuse' END,
            CASE WHEN d.kind = 0 THEN 'approved_contact' ELSE f.reason END, '',
            coalesce(c.privileged, false),
            'PJSIP/{HISTORY_CELL_PREFIX}' || lpad(d.prisoner_id::text, 5, '0') || '-'
              || lpad(to_hex(d.id::int), 8, '0'),
            floor(extract(epoch FROM d.at))::bigint || '.' || d.id,
            md5('call' || d.id) || '@10.0.0.1', 4 + (d.id % 170) / 10.0
            FROM h_decisions d LEFT JOIN h_call_rows c ON d.kind = 0 AND c.i = d.n
            LEFT JOIN h_refusals f ON d.kind = 1 AND f.r = d.n
            ORDER BY d.id""",
        """INSERT INTO pin_failures (prisoner_id, cell_id, at)
            SELECT NULL, prisoner_id, at FROM h_refusals WHERE reason = 'wrong_pin' ORDER BY at""",
        """INSERT INTO calls (id, decision_id, prisoner_id, cell_id, number, privileged, channel,
            uniqueid, started_at, ended_at, hangup_cause, answered_at, talk_seconds, dial_status,
            disconnect_cause, ended_by, charge_pence, settled_at, accepted, recording_note)
            SELECT c.id, c.decision_id, c.prisoner_id, c.prisoner_id, c.number, c.privileged,
            d.channel, d.uniqueid, c.at, c.ended_at, '16', c.answered_at,
            CASE WHEN c.answered THEN c.talk ELSE 0 END,
            CASE WHEN c.answered THEN 'ANSWER' ELSE 'NOANSWER' END, '16',
            CASE WHEN c.answered AND c.i % 3 = 0 THEN 'called' ELSE 'caller' END,
            c.charge, c.ended_at + interval '1 second', c.answered,
            CASE WHEN c.privileged
                 THEN 'not recorded: privileged (an approved legal contact)' ELSE '' END
            FROM h_call_rows c JOIN call_decisions d ON d.id = c.decision_id ORDER BY c.id""",
        f"""INSERT INTO reservations (id, prisoner_id, call_id, amount_pence, max_seconds, rate,
            destination_class, rounding, free, status, created_at, closed_at)
            SELECT id, prisoner_id, id,
            CASE WHEN privileged THEN 0 ELSE (rate::bigint * {MAX_SECONDS} + 5999) / 6000 END,
            {MAX_SECONDS}, rate, class, 'per_second', privileged,
            CASE WHEN answered THEN 'settled' ELSE 'released' END, at,
            ended_at + interval '1 second'
            FROM h_call_rows ORDER BY id""",
        # --- the money: a top-up to the cap first, then each week what the last one cost ---
        """CREATE TEMP TABLE h_money AS
            SELECT prisoner_id, 1 AS kind, c.id AS call_id, -c.charge AS amount,
            c.ended_at + interval '1 second' AS at, 0 AS week
            FROM h_call_rows c WHERE c.charge > 0""",
        f"""UPDATE h_money SET week = floor(extract(epoch FROM at - t0) / {WEEK_S})::int + 1
            FROM h_time""",
        f"""INSERT INTO h_money
            SELECT n, 0, NULL::bigint, {TOPUP_TO_PENCE}, t0 - interval '1 day', 0
            FROM generate_series(1, {p}) n, h_time
            UNION ALL
            SELECT m.prisoner_id, 0, NULL::bigint, -sum(m.amount)::int,
            t0 + m.week * interval '{WEEK_S} seconds', m.week
            FROM h_money m, h_time
            WHERE m.kind = 1 AND t0 + m.week * interval '{WEEK_S} seconds' <= t_end
            GROUP BY m.prisoner_id, m.week, t0""",
        """INSERT INTO ledger_entries (id, prisoner_id, kind, amount_pence, balance_after,
            idempotency_key, reference, call_id, created_at, created_by)
            SELECT row_number() OVER w, prisoner_id,
            CASE kind WHEN 0 THEN 'topup' ELSE 'charge' END, amount,
            sum(amount) OVER (PARTITION BY prisoner_id ORDER BY at, kind, call_id),
            CASE kind WHEN 0 THEN 'topup:history-' || prisoner_id || '-' || week
                 ELSE 'call:' || call_id || ':charge' END,
            CASE kind WHEN 0 THEN 'weekly top-up' ELSE 'call ' || call_id END,
            call_id, at, CASE kind WHEN 0 THEN 'history' ELSE 'system' END
            FROM h_money WINDOW w AS (ORDER BY at, kind, call_id, prisoner_id)
            ORDER BY at, kind, call_id, prisoner_id""",
        """INSERT INTO accounts (prisoner_id, balance_pence, reserved_pence, updated_at)
            SELECT DISTINCT ON (prisoner_id) prisoner_id, balance_after, 0, created_at
            FROM ledger_entries WHERE prisoner_id IN (SELECT id FROM prisoners)
            ORDER BY prisoner_id, id DESC""",
        # --- the indexes again, the sequences past the ids given, the planner's statistics -
        """DO $$ DECLARE d text; BEGIN
            FOR d IN SELECT indexdef FROM h_indexes LOOP EXECUTE d; END LOOP; END $$""",
        *(
            f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
            for t in FILLED_TABLES
            if t != "accounts"
        ),
        *(f"VACUUM ANALYZE {t}" for t in FILLED_TABLES),
    ]


async def table_counts(url: str, tables: tuple[str, ...] = FILLED_TABLES) -> dict[str, int]:
    engine = create_async_engine(normalise_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return {
                t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
                for t in tables
            }
    finally:
        await engine.dispose()


async def build_history(
    url: str, spec: HistorySpec, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Generate ``spec``'s history into the migrated PostgreSQL database ``url``, which must
    hold no prisoner, cell or call yet. Returns the seconds it took and the rows of each table
    filled."""
    u = normalise_url(url)
    if u.get_backend_name() != "postgresql":
        raise BenchmarkError("the history is generated in PostgreSQL only")
    before = await table_counts(url, ("cells", "prisoners", "calls"))
    if any(before.values()):
        raise BenchmarkError(f"the history needs an empty database, this one has {before}")
    started = time.perf_counter()
    engine = create_async_engine(u, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            statements = history_sql(spec)
            for n, statement in enumerate(statements, 1):
                began = time.perf_counter()
                await conn.exec_driver_sql(statement)
                took = time.perf_counter() - began
                if progress is not None and (n % 5 == 0 or took > 10):
                    what = " ".join(statement.split()[:4])
                    progress(
                        f"history: {n} of {len(statements)} statements in "
                        f"{time.perf_counter() - started:.0f} s ({what}...: {took:.0f} s)"
                    )
    finally:
        await engine.dispose()
    seconds = time.perf_counter() - started
    counts = await table_counts(url)
    return {
        "prisoners": spec.prisoners,
        "days": spec.days,
        "rows_asked": spec.rows,
        "rows": counts["calls"] + counts["call_decisions"] + counts["ledger_entries"],
        "tables": counts,
        "generated_s": round(seconds, 1),
    }


def add_history_options(parser: argparse.ArgumentParser, *, default: bool) -> None:
    """--history/--no-history and the size of the history, for the micro-benchmark's command
    and make bench's (the same words in both)."""
    d = HistorySpec()
    group = parser.add_argument_group("history (cost flat as history grows)")
    group.add_argument(
        "--history",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="also run the micro-benchmark on a PostgreSQL database holding a prison's history "
        "(generated inside PostgreSQL once, then kept as a template database and a pg_dump "
        "under ~/.cache/callcontrol for the day) and report both rates and their ratio "
        f"(default: {'on' if default else 'off'})",
    )
    group.add_argument(
        "--history-prisoners",
        type=_at_least_one,
        default=d.prisoners,
        help=f"prisoners in the history (default: {d.prisoners:,})",
    )
    group.add_argument(
        "--history-rows",
        type=_at_least_one,
        default=d.rows,
        help=f"calls, decisions and ledger entries in all, about (default: {d.rows:,})",
    )
    group.add_argument("--history-days", type=_at_least_one, default=d.days,
                       help=f"days of history, ending an hour ago (default: {d.days})")  # fmt: skip


def spec_from(args: argparse.Namespace) -> HistorySpec:
    """The HistorySpec of parsed options (BenchmarkError when they cannot make one)."""
    return HistorySpec(args.history_prisoners, args.history_rows, args.history_days)


def _at_least_one(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
