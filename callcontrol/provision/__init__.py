"""Provisioning files for real desk phones: a cell's SIP account and a locked-down keypad.

`callcontrol handset provision CELL --model M` (cli/provision.py) writes the file a desk phone
fetches from its provisioning server. profile.py holds what goes into it (pure values, checked);
render.py fills the per-family templates in callcontrol/data/provision/.
"""
