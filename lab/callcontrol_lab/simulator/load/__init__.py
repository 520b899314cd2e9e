"""``callcontrol-sim load``: many simulated calls at a given rate, each checked afterwards
against the daemon's own records (decision, billing, recording).

mix.py (what kinds of call, and what each must end as), plan.py (which cell places which call
when), provision.py (the load prison in the database), runner.py (SIPp at the rate, progress,
CPU and memory), check.py (each call against the daemon's records), report.py (figures, JSON,
chart), command.py (the command line).
"""
