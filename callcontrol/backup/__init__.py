"""A site's backup and its restore (`callcontrol backup`, `callcontrol restore`).

manifest.py: the list of a backup's files with their SHA-256, written last and checked first.
site.py: what a site is made of (the database, the recordings, the keys kept outside the
database) and how it is copied out and put back. The database copy itself is
adapters/db/dump.py's.
"""
