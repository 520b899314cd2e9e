"""Simulated cell handsets and called parties (SIPp) for the Asterisk lab.

``calls.place_call`` (one await) and ``callcontrol-sim call`` (``cli``) place one call;
``call`` holds the core (``place_call(HandsetCall, ...)`` and ``CallResult``), ``sipp`` finds
SIPp and builds its command lines, ``logs`` reads what the scenarios log and writes their
injection file, ``audio`` makes the test tones. The scenarios and audio are in ``sim/``.
"""
