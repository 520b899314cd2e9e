"""One load run from start to verdict: provision, place the calls, check each, report.

``callcontrol-sim load`` and the benchmark (``make bench``) both run a ``LoadJob``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcontrol.config import Settings
from callcontrol_lab.simulator.call import Endpoints
from callcontrol_lab.simulator.load import check, mix, plan, provision, report, runner
from callcontrol_lab.simulator.sipp import RunDir, find_sipp


@dataclass
class LoadJob:
    settings: Settings
    config: str | None  # the daemon's config file, for `callcontrol asterisk sync`
    plan: plan.LoadPlan
    weights: dict[mix.Kind, float]
    endpoints: Endpoints
    out: Path
    provision: bool = True
    sync: bool = True
    # False: Asterisk alone decides (the benchmark's static dialplan): a call is judged by SIPp
    # alone, connected or failed, with no daemon records to check.
    verify: bool = True
    settle_timeout_s: float = 60.0
    chart: bool = True
    say: Callable[[str], None] = field(default=lambda msg: None)
    progress: bool = True
    command: str = ""


async def run_job(job: LoadJob) -> tuple[dict[str, Any], list[check.Verdict]]:
    """Run the job; its figures (also in OUT/load.json) and each call's verdict."""
    settings, the_plan, say = job.settings, job.plan, job.say
    job.out.mkdir(parents=True, exist_ok=True)
    if job.provision:
        say(f"provisioning {len(the_plan.cells)} cells ({the_plan.needed} needed by the plan)")
        done = await provision.provision(settings, the_plan)
        passwords = done.passwords
        say(
            f"  added {done.cells_added} cells, {done.prisoners_added} prisoners, "
            f"{done.contacts_added} contacts; topped up {done.topped_up_pence}p"
        )
        if job.sync:
            await provision.sync_asterisk(job.config)
    else:
        passwords = await provision.passwords(settings, the_plan)
    watch = {
        "asterisk": runner.pid_listening(settings.ami.port),
        "daemon": runner.pid_listening(settings.agi.port),
    }
    total = len(the_plan.calls)
    say(
        f"placing {total} calls at {the_plan.rate:g}/s ({mix.describe(job.weights)}); "
        f"asterisk pid {watch['asterisk']}, daemon pid {watch['daemon']}"
    )
    from callcontrol.config import recordings_spool

    prefix = find_sipp(settings)
    run = RunDir.create(prefix, "callcontrol-load-")
    try:
        result = await runner.run_load(
            the_plan,
            passwords,
            job.endpoints,
            accept_digit=settings.billing.accept_digit,
            watch=watch,
            on_progress=runner.print_progress(total) if job.progress else None,
            spool=recordings_spool(settings),
            prefix=prefix,
            run=run,
        )
        if job.progress and sys.stderr.isatty():
            print(file=sys.stderr)
        return await _judge(job, result)
    finally:  # the SIPp logs are kept whatever happened: they say what went wrong
        keep_logs(run.host, job.out / "sipp")
        run.remove()


async def _judge(
    job: LoadJob, result: runner.RunOutput
) -> tuple[dict[str, Any], list[check.Verdict]]:
    settings, the_plan, say = job.settings, job.plan, job.say
    total = len(the_plan.calls)
    dtmf_ms = the_plan.timing.dtmf_ms
    sip = check.sip_facts(result.run.host, result.call_id_prefix, the_plan.calls, dtmf_ms)
    if job.verify:
        say("waiting for every call to be settled and recorded, then checking each")
        db, problems, settle_s = await check.db_facts(
            settings, [s.call_id for s in sip], job.settle_timeout_s, result.spooled
        )
        verdicts = [
            check.judge(p, s, db.get(s.call_id, check.DbFacts()))
            for p, s in zip(the_plan.calls, sip, strict=True)
        ]
    else:
        problems, settle_s = [], 0.0
        verdicts = [check.judge_sip_only(p, s) for p, s in zip(the_plan.calls, sip, strict=True)]
    figs = report.figures(
        verdicts,
        result.progress,
        result.watches,
        settings={
            "cells": len(the_plan.cells),
            "rate": the_plan.rate,
            "calls": total,
            "hold_s": the_plan.timing.hold_s,
            "mix": mix.describe(job.weights),
            "asterisk": f"{job.endpoints.host}:{job.endpoints.port}",
            "verified_against_the_daemon": job.verify,
            "command": job.command,
        },
        settle_s=settle_s,
        store_problems=problems,
        started_at=result.started_at,
        ended_at=result.ended_at,
    )
    report.write_json(job.out / "load.json", figs, verdicts)
    if job.chart:
        try:
            report.chart(
                job.out / "load.png",
                verdicts,
                result.progress,
                result.watches,
                result.started_at,
                f"{total} calls at {the_plan.rate:g}/s, hold {the_plan.timing.hold_s:g} s",
            )
        except ImportError:
            say("no chart: matplotlib is not installed (pip install 'callcontrol[sim]')")
    return figs, verdicts


def keep_logs(run_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in run_dir.iterdir():
        # Not the injection file (handset.csv): it holds the cells' SIP passwords.
        if f.suffix in (".log", ".csv", ".out") and f.name != "handset.csv":
            shutil.copyfile(f, dest / f.name)
